"""Fault injection, scoring and leaderboard side (issue 12): every case below is a way the
pipeline used to let a wrong or misleading number through without a word, or to stop with a
traceback; each test reproduces it as the issue describes and checks what happens now.

1. coverage: clips that leave a metric's mean are said, per clip and in every cell;
   rankings compare rows on the clips they all scored;
2. silent audio: the audio metrics are unavailable, by the rule `bench prepare` applies;
4. test sets: rows scored on different test clips are not ranked together;
5. damaged files: a truncated state file heals, unreadable summaries are listed, a dataset
   without runs is one line and writes nothing;
8. files and messages: CSV written by pandas with reasons, exit codes, closing quotes;
9. judges that did not learn mark the cells they produced.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.media import read_media, write_video
from bench.metrics.base import Column, Metric, MetricUnavailable, Sample
from bench.results import Aggregation


def _stderr(result) -> str:
    return result.stderr if hasattr(result, "stderr") else result.output


@pytest.fixture(scope="module")
def noise_pair(synth_native_root, tmp_path_factory) -> tuple[Path, Path]:
    """gt/: two real clips; pred/: ``good`` (a copy of its real clip) and ``noise`` (random
    noise frames: no face, the real clip's audio)."""
    videos = sorted(Path(synth_native_root).glob("spk*/*.mp4"))[:2]
    base = tmp_path_factory.mktemp("noise_pair")
    gt, pred = base / "gt", base / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    for name, path in zip(("good", "noise"), videos, strict=True):
        media = read_media(path)
        write_video(gt / f"{name}.mp4", media.frames, media.audio)
        frames = media.frames if name == "good" else rng.integers(
            0, 256, media.frames.shape, dtype=np.uint8)
        write_video(pred / f"{name}.mp4", frames, media.audio)
    return pred, gt


# -- 1. coverage --------------------------------------------------------------------------

def test_noise_video_cells_say_their_coverage_and_why(noise_pair, tmp_path):
    """Issue 12.1: one good pair and one random-noise pair used to print no line, say
    "scored 2/2", and show the good clip's ACD and AU numbers as the model's."""
    pred, gt = noise_pair
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt),
                                       "--metrics", "psnr,acd,au", "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_scored"] == 2
    assert summary["aggregate"]["acd"]["n"] == 1 and summary["aggregate"]["psnr"]["n"] + \
        summary["aggregate"]["psnr"]["n_infinite"] == 2
    assert set(summary["clips"]["missing"]["acd"]) == {"noise"}
    assert set(summary["clips"]["missing"]["au_acc"]) == {"noise"}
    # one line per clip at scoring time, naming the clip, the metric and the reason
    line = next(x for x in _stderr(result).splitlines() if x.startswith("noise: unavailable"))
    assert "acd (no face" in line and "au (" in line
    # the summary line does not claim every metric scored both clips
    assert "scored 2/2" not in result.output
    assert "ACD (dlib) 1/2" in result.output and "AU Acc (%) 1/2" in result.output
    md = (out / "leaderboard.md").read_text()
    acd_cell = next(c for c in md.splitlines() if c.startswith("| pred |")).split("|")
    assert any("(1/2)" in cell for cell in acd_cell)
    assert "1 of 2 clips left out: noise: no face" in md
    assert "not every metric scored all 2 clips" in md
    # the per-clip CSV says why the noise clip's cells are empty
    with open(out / "scores.csv", newline="") as f:
        rows = {row["clip_id"]: row for row in csv.DictReader(f)}
    assert rows["noise"]["acd"] == "" and "acd: no face" in rows["noise"]["unavailable"]
    assert rows["good"]["unavailable"] == "" and float(rows["good"]["acd"]) >= 0


def test_two_frame_and_one_pixel_clips_show_coverage(noise_pair, tmp_path):
    """Issue 12.1: a 2-frame or 1x1 clip's "unavailable" existed only in summary.json; the
    Markdown said 2/2."""
    pred_src, gt_src = noise_pair
    good = read_media(gt_src / "good.mp4")
    for name, frames in (("two", good.frames[:2]),
                         ("pixel", good.frames[:, :1, :1].copy())):
        pred, gt = tmp_path / name / "pred", tmp_path / name / "gt"
        pred.mkdir(parents=True)
        gt.mkdir()
        write_video(pred / "good.mp4", good.frames, good.audio)
        write_video(gt / "good.mp4", good.frames, good.audio)
        write_video(pred / "tiny.mp4", frames, good.audio[: len(frames) * 640])
        write_video(gt / "tiny.mp4", frames, good.audio[: len(frames) * 640])
        out = tmp_path / name / "out"
        result = CliRunner().invoke(main, [
            "score", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,ssim,cpbd,blinks",
            "--align", "none", "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "summary.json").read_text())
        short = [c for c in ("ssim", "cpbd", "blinks_per_s")
                 if "tiny" in summary["clips"]["missing"][c]]
        assert short, summary["clips"]["missing"]
        assert any(x.startswith("tiny: unavailable:") for x in _stderr(result).splitlines())
        md = (out / "leaderboard.md").read_text()
        assert "(1/2)" in md and "tiny:" in md
        assert "scored 2/2" not in result.output


def _summary(model: str, values: dict[str, dict[str, float]], *, split: str = "s",
             kind: str = "model", test_set: str | None = "T", judge: str | None = None,
             ids: tuple[str, ...] = ("c1", "c2")) -> dict:
    """A hand-made summary: ``values`` column -> clip -> value (clips absent: unavailable)."""
    from bench.results import ClipResult, mean_over_clips

    columns, aggregate, missing, per_clip = {}, {}, {}, {}
    for column, by_clip in values.items():
        clips = [ClipResult(c, values={column: by_clip[c]}) if c in by_clip else
                 ClipResult(c, unavailable="no face found") for c in ids]
        aggregate[column] = mean_over_clips(clips, column).to_dict()
        columns[column] = {"label": column.upper(), "higher_is_better": column != "acd",
                           "fmt": ".3f", "detail": False, "metric": column,
                           "aggregation": "mean"}
        missing[column] = {c: "no face found" for c in ids if c not in by_clip}
        per_clip[column] = [by_clip.get(c) for c in ids]
    provenance: dict = {"metrics": {}}
    if test_set is not None:
        provenance["test_set"] = test_set
    if judge is not None:
        provenance["metrics"]["emoacc"] = {"judge": judge}
    return {"model": model, "kind": kind, "dataset": "d", "split": split, "budget": "smoke",
            "n_test": len(ids), "n_scored": len(ids), "skipped": {}, "columns": columns,
            "aggregate": aggregate, "provenance": provenance,
            "clips": {"ids": list(ids), "missing": missing, "values": per_clip}}


def test_ranks_compare_rows_on_the_clips_they_all_scored():
    """Issue 12.1: a generator that produces no face on a clip could rank above one that
    does, its mean taken over the easy clip alone."""
    from bench.leaderboard import build_table, rank_models, render_markdown

    # a: both clips, 0.1 and 0.5 (mean 0.3); b: only c1 (the other has no face), 0.2.
    # On their own clips b (0.2) beats a (0.3); on the common clip c1, a (0.1) beats b (0.2).
    summaries = [_summary("a", {"acd": {"c1": 0.1, "c2": 0.5}}),
                 _summary("b", {"acd": {"c1": 0.2}})]
    rows, cols = build_table("d", summaries, reported=[])
    notes: list[str] = []
    ranks = rank_models(rows, cols, notes)
    by_model = {r.model: ranks[id(r)] for r in rows}
    assert by_model["a"]["acd"] == 1.0 and by_model["b"]["acd"] == 2.0
    assert any("ranked on the 1 clips every ranked row scored" in n for n in notes)
    md = render_markdown("d", rows, cols)
    assert "0.200 (1/2)" in md and "ranked on the 1 clips" in md


def test_pooled_columns_of_different_clips_are_not_ranked():
    from bench.leaderboard import build_table, rank_models

    summaries = [_summary("a", {"x": {"c1": 1.0, "c2": 2.0}}),
                 _summary("b", {"x": {"c1": 3.0}})]
    for s in summaries:  # a pooled value: no per-clip values to recompute it from
        s["columns"]["x"]["aggregation"] = Aggregation.POOLED.value
        del s["clips"]["values"]["x"]
    rows, cols = build_table("d", summaries, reported=[])
    notes: list[str] = []
    ranks = rank_models(rows, cols, notes)
    assert all("x" not in r for r in ranks.values())
    assert any("not ranked" in n and "pooled" in n for n in notes)


# -- 4. test sets -------------------------------------------------------------------------

def test_rows_of_different_test_sets_are_not_ranked_together():
    """Issue 12.4: still-image on 1 clip was ranked above speech2vid on 3."""
    from bench.leaderboard import build_table, leaderboard_frame, rank_models, render_markdown

    summaries = [_summary("one-clip", {"psnr": {"c1": 30.0}}, test_set="A", ids=("c1",)),
                 _summary("three", {"psnr": {"c1": 20.0, "c2": 21.0, "c3": 22.0}},
                          test_set="B", ids=("c1", "c2", "c3")),
                 _summary("three-too", {"psnr": {"c1": 25.0, "c2": 20.0, "c3": 20.0}},
                          test_set="B", ids=("c1", "c2", "c3"))]
    summaries[0]["provenance"]["max_test_clips"] = 1
    rows, cols = build_table("d", summaries, reported=[])
    ranks = {r.model: rank_models(rows, cols)[id(r)] for r in rows}
    assert ranks["one-clip"] == {}  # alone in its test set: not ranked
    assert ranks["three-too"]["psnr"] == 1.0 and ranks["three"]["psnr"] == 2.0
    md = render_markdown("d", rows, cols)
    assert "ranked only against rows of the same test set" in md
    assert "--max-test-clips 1" in md
    frame = leaderboard_frame(rows, cols)
    assert set(frame["test_set"]) == {"A", "B"}
    # rows that recorded no test set form one shared set (older summaries)
    old = [_summary("p", {"psnr": {"c1": 1.0, "c2": 1.0}}, test_set=None),
           _summary("q", {"psnr": {"c1": 2.0, "c2": 2.0}}, test_set=None)]
    rows, cols = build_table("d", old, reported=[])
    assert all(r.get("psnr") for r in rank_models(rows, cols).values())


# -- 2. silent audio ------------------------------------------------------------------------

class _AudioMetric(Metric):
    """A stand-in audio-driven metric (any metric whose ``needs`` has "audio")."""

    name = "audio-energy"
    columns = (Column("energy", "Energy", True, aggregation=Aggregation.MEAN_OVER_CLIPS),)
    needs = frozenset({"audio"})

    def score(self, sample: Sample) -> dict[str, float]:
        return {"energy": float(np.abs(sample.audio).mean())}


def test_silent_audio_makes_audio_metrics_unavailable(tmp_path):
    """Issue 12.2: LSE scored a zeroed track (LSE-C 0.446) that `bench prepare` rejects."""
    from bench.aggregate import UnavailableLog, score_sample
    from bench.core.audio import SILENCE_PEAK, silence_reason
    from bench.data import preprocess
    from bench.metrics.lse import LSE

    assert preprocess.SILENCE_PEAK is SILENCE_PEAK  # one rule: prepare uses the same
    frames = np.full((10, 8, 8, 3), 128, np.uint8)
    lines: list[str] = []
    log = UnavailableLog(lines.append)
    for name, audio in (("zeros", np.zeros(6400, np.float32)),
                        ("near", np.full(6400, SILENCE_PEAK / 2, np.float32)),
                        ("speech", np.sin(np.arange(6400) / 5).astype(np.float32) * 0.3)):
        entries = score_sample([_AudioMetric()], Sample(name, frames, audio=audio),
                               tmp_path, log)
        if name == "speech":
            assert silence_reason(audio) is None and "values" in entries["audio-energy"]
        else:
            assert "audio is silent" in entries["audio-energy"]["unavailable"]
    assert [x.split(":")[0] for x in lines] == ["zeros", "near"]
    # LSE itself refuses silent audio before it looks for a SyncNet
    with pytest.raises(MetricUnavailable, match="audio is silent"):
        LSE(device="cpu").score(Sample("z", np.zeros((30, 64, 64, 3), np.uint8),
                                       audio=np.zeros(30 * 640, np.float32)))


def test_bench_score_silent_track_is_not_scored_by_lse(noise_pair, tmp_path):
    """Issue 12.2, through `bench score`: the zeroed track's LSE columns are unavailable
    with the reason (whatever SyncNet there is)."""
    pred_src, gt_src = noise_pair
    good = read_media(gt_src / "good.mp4")
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    write_video(pred / "silent.mp4", good.frames, np.zeros_like(good.audio))
    write_video(gt / "silent.mp4", good.frames, np.zeros_like(good.audio))
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt),
                                       "--metrics", "lse,psnr", "--out", str(tmp_path / "o"),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    for column in ("lse_d", "lse_c", "av_offset"):
        assert "audio is silent" in summary["aggregate"][column]["unavailable"]
    assert "silent: unavailable: lse (audio is silent" in _stderr(result)


# -- 5. damaged files -----------------------------------------------------------------------

class _PooledMetric(Metric):
    name = "pooled-test"
    columns = (Column("pooled", "Pooled", True, aggregation=Aggregation.POOLED),)

    def clip_state(self, sample: Sample) -> dict[str, np.ndarray]:
        return {"x": np.asarray([float(sample.pred.mean())])}

    def compute_from_states(self, states):
        return {"pooled": float(np.mean([s["x"][0] for s, _ in states]))}


@pytest.mark.parametrize("damage", ["truncated", "zero-byte"])
def test_damaged_state_file_is_reported_removed_and_recomputed(tmp_path, damage):
    """Issue 12.5: a truncated ``states/<metric>/<clip>.npz`` gave a traceback on every
    rerun."""
    from bench.aggregate import is_cached, score_sample, state_path, summarise_records

    metric = _PooledMetric()
    sample = Sample("c1", np.full((4, 8, 8, 3), 100, np.uint8))
    record = {"emotion": None, "metrics": score_sample([metric], sample, tmp_path)}
    path = state_path(tmp_path, metric, "c1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    lines: list[str] = []
    # at summary time: one line, the file removed, the clip counted as unavailable (no crash)
    _, aggregate, _ = summarise_records([metric], {"c1": record}, tmp_path, echo=lines.append)
    assert "unavailable" in aggregate["pooled"] and "state file" in aggregate["pooled"][
        "unavailable"]
    assert len(lines) == 1 and str(path) in lines[0] and "removed" in lines[0]
    assert not path.exists()
    # at scoring time (the next run): not cached, so it is scored again and heals
    path.write_bytes(data[:10])
    lines.clear()
    assert not is_cached(record, metric, tmp_path, "c1", lines.append)
    assert len(lines) == 1 and "unreadable" in lines[0] and not path.exists()
    record["metrics"].update(score_sample([metric], sample, tmp_path))
    assert is_cached(record, metric, tmp_path, "c1", lines.append)
    _, aggregate, _ = summarise_records([metric], {"c1": record}, tmp_path)
    assert aggregate["pooled"]["value"] == pytest.approx(100.0)


def _write_runs(runs: Path) -> None:
    folder = runs / "d" / "s"
    (folder / "good").mkdir(parents=True)
    (folder / "good" / "summary.json").write_text(
        json.dumps(_summary("good", {"psnr": {"c1": 20.0, "c2": 22.0}})))
    (folder / "broken").mkdir()
    text = json.dumps(_summary("broken", {"psnr": {"c1": 30.0, "c2": 32.0}}))
    (folder / "broken" / "summary.json").write_text(text[: len(text) // 2])


def test_leaderboard_lists_the_rows_it_could_not_read(tmp_path):
    """Issue 12.5: `bench leaderboard` silently dropped a model whose summary.json could not
    be read."""
    _write_runs(tmp_path / "runs")
    result = CliRunner().invoke(main, ["leaderboard", "--dataset", "d", "--runs-dir",
                                       str(tmp_path / "runs"), "--leaderboard-dir",
                                       str(tmp_path / "lb")])
    assert result.exit_code == 0, result.output
    broken = str(tmp_path / "runs" / "d" / "s" / "broken" / "summary.json")
    assert f"warning: {broken}: cannot be read" in _stderr(result)
    md = (tmp_path / "lb" / "d.md").read_text()
    assert f"not shown: {broken} could not be read" in md and "| good |" in md
    assert "Traceback" not in result.output


def test_leaderboard_of_a_dataset_without_runs_is_one_line_and_writes_nothing(tmp_path):
    """Issue 12.8: `bench leaderboard --dataset nosuch` wrote empty files."""
    _write_runs(tmp_path / "runs")
    result = CliRunner().invoke(main, ["leaderboard", "--dataset", "nosuch", "--runs-dir",
                                       str(tmp_path / "runs"), "--leaderboard-dir",
                                       str(tmp_path / "lb")])
    assert result.exit_code == 1
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "no runs of dataset 'nosuch'" in lines[0]
    assert not (tmp_path / "lb").exists()


# -- 8. files and messages ------------------------------------------------------------------

def test_leaderboard_csv_is_pandas_csv_with_blank_unavailable_and_reasons():
    """Issue 12.8: numeric columns held the string "unavailable"; names with commas broke
    rows."""
    from bench.leaderboard import build_table, render_csv

    summaries = [_summary("a,b", {"acd": {"c1": 0.1, "c2": 0.3}, "psnr": {}}),
                 _summary("c", {"acd": {"c1": 0.2}, "psnr": {"c1": 1.0, "c2": 2.0}})]
    rows, cols = build_table("d", summaries, reported=[])
    table = list(csv.DictReader(io.StringIO(render_csv(rows, cols))))
    by_model = {row["model"]: row for row in table}
    assert set(by_model) == {"a,b", "c"}
    assert by_model["a,b"]["psnr"] == "" and by_model["a,b"]["psnr_n"] == "0"
    assert by_model["a,b"]["psnr_unavailable"] == "no face found"
    assert by_model["c"]["acd_n"] == "1" and "c2: no face found" in by_model["c"][
        "acd_unavailable"]
    assert by_model["a,b"]["acd_n"] == "2" and by_model["a,b"]["acd_unavailable"] == ""
    for row in table:  # every numeric cell is a number or blank, never a word
        for key in ("psnr", "acd", "acd_ci_low", "psnr_n"):
            assert row[key] == "" or not math.isnan(float(row[key]))


def test_score_exits_non_zero_when_nothing_was_scored(tmp_path):
    """Issue 12.8: `bench score` exited 0 when nothing was scored."""
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "broken.mp4").write_text("not a video")
    write_video(pred / "faceless.mp4", np.zeros((5, 32, 32, 3), np.uint8), None)
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--metrics", "psnr",
                                       "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 1
    assert "nothing was scored: no clip of 2 could be scored" in result.output
    assert "Traceback" not in result.output


def test_error_messages_keep_their_closing_quote():
    """Issue 12.8: a KeyError's message lost its closing quote on the way to the user."""
    import click

    from bench.cli import user_errors

    @click.command()
    @user_errors
    def failing() -> None:
        raise KeyError("unknown thing 'nosuch'")

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown thing 'nosuch'"


# -- 9. judges that did not learn -----------------------------------------------------------

JUDGE = "talkbench-trained emotion on d/s train (4 clips, smoke budget), weights sha256 abc"


@pytest.mark.parametrize("accuracy, marked", [(0.0, True), (1 / 6, True), (0.5, False)])
def test_cells_of_a_judge_below_chance_are_marked(tmp_path, accuracy, marked):
    """Issue 12.9: a smoke emotion judge scoring 0.000 on the real test clips (chance 0.167)
    still filled EmoAcc silently."""
    from bench.leaderboard import JUDGE_QUALITY, write_leaderboard

    runs = tmp_path / "runs"
    for model, judge in (("uses-it", JUDGE), ("other-judge", JUDGE.replace("abc", "def"))):
        folder = runs / "d" / "s" / model
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps(
            _summary(model, {"emoacc": {"c1": 1.0, "c2": 0.0}}, judge=judge)))
    report = {"emotion": {"judge": JUDGE, "n_test": 2,
                          "test": {"figure": "accuracy", "accuracy": accuracy}}}
    (runs / "d" / "s" / "judges.json").write_text(json.dumps(report))
    csv_path, md = write_leaderboard("d", runs, tmp_path / "lb", reported=[])
    text = md.read_text()
    rows = {r["model"]: r for r in csv.DictReader(csv_path.open(newline=""))}
    assert rows["uses-it"]["emoacc"] == "0.5"  # the number stays, marked
    assert rows["other-judge"]["emoacc_flag"] == ""  # another judge made these
    if marked:
        assert rows["uses-it"]["emoacc_flag"] == "judge below chance"
        assert "judge below chance: the emotion judge's accuracy on 2 real test clips" in text
        assert "chance 0.167" in text
    else:
        assert rows["uses-it"]["emoacc_flag"] == "" and "below chance" not in text
    assert JUDGE_QUALITY["emotion"].figure == "accuracy"
    assert JUDGE_QUALITY["syncnet"].figure == "offset_accuracy"
    assert JUDGE_QUALITY["au"].figure == "avg_f1"


def test_a_reason_every_row_shares_is_spelt_out_once_per_run():
    """Missing weights make a metric unavailable on every clip of every row: the run's log
    spells the reason out for the first clips only and then counts, row after row."""
    from bench.aggregate import UnavailableLog

    lines: list[str] = []
    shown: dict = {}
    missing = {"fid": {"unavailable": "FID needs weights " + "x" * 100}}
    for row in ("a", "b"):
        log = UnavailableLog(lines.append, prefix=f"{row}: ", shown=shown)
        for clip in range(5):
            log.clip(f"c{clip}", {**missing, "acd": {"unavailable": f"no face in c{clip}"}}
                     if clip == 4 and row == "b" else missing)
        log.close()
    spelt = [line for line in lines if "FID needs weights" in line and "more clips" not in line]
    assert [line.split(":")[:2] for line in spelt] == [["a", " c0"], ["a", " c1"], ["a", " c2"]]
    assert lines[3] == ("a: fid: unavailable on 2 more clips for the same reason as above "
                        "(FID needs weights " + "x" * 51 + "…)")
    assert "b: c4: unavailable: acd (no face in c4)" in lines  # a new reason is still told
    assert lines[-1].startswith("b: fid: unavailable on 5 more clips")
