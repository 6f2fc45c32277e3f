"""Adapter registry and contract; leaderboard rendering from summaries."""

from __future__ import annotations

import numpy as np
import pytest

from bench.adapters import adapter_class, model_names
from bench.adapters.base import Adapter, check_generated
from bench.leaderboard import build_table, render_csv, render_markdown, write_leaderboard
from bench.registry import UnknownName


def test_still_image_contract(tmp_path):
    cls = adapter_class("still-image")
    adapter = cls()
    image = np.random.default_rng(0).integers(0, 256, (32, 24, 3), dtype=np.uint8)
    audio = np.zeros(16_000 + 1, np.float32)
    frames = adapter.generate(image, audio, None)
    check_generated(frames, image, audio)
    assert frames.shape == (26, 32, 24, 3) and (frames == image).all()
    adapter.save(tmp_path)
    cls().load(tmp_path)
    assert "still-image" in model_names()


def test_adapter_by_module_path_and_unknown_name():
    assert adapter_class("bench.adapters.still_image:StillImage").name == "still-image"
    with pytest.raises(UnknownName, match="did you mean 'still-image'"):
        adapter_class("still-imag")
    with pytest.raises(TypeError):
        adapter_class("bench.data.clip:Clip")


def test_check_generated_rejects_wrong_shapes():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        check_generated(np.zeros((1, 8, 8, 3), np.float32), image, np.zeros(640, np.float32))
    with pytest.raises(ValueError):
        check_generated(np.zeros((2, 8, 8, 3), np.uint8), image, np.zeros(640, np.float32))
    assert Adapter.num_frames(np.zeros(1281)) == 3


def _summary(model, kind="model", psnr=20.0, skipped=None):
    return {
        "model": model, "kind": kind, "split": "vougioukas2019", "budget": "demo",
        "n_test": 4, "n_scored": 4 - len(skipped or {}), "skipped": skipped or {},
        "columns": {"psnr": {"label": "PSNR", "higher_is_better": True, "fmt": ".3f"}},
        "aggregate": {"psnr": {"kind": "mean", "value": psnr, "ci_low": psnr - 1,
                               "ci_high": psnr + 1, "n": 4, "n_infinite": 0,
                               "n_unavailable": 0}},
        "provenance": {"git_commit": "abc", "seed": 0, "device": "cpu", "split_version": 1,
                       "dataset_hash": "f" * 64,
                       "metrics": {"psnr": {"reference": "skimage"}}},
    }


def test_leaderboard_has_model_gt_and_reported_rows(tmp_path):
    summaries = [_summary("still-image", skipped={"1015_IEO_HAP_HI": "1015_IEO_HAP_HI: no face "
                                                                     "found in 75/75 frames"}),
                 {**_summary("ground-truth", kind="ground-truth"), "aggregate": {}}]
    rows, cols = build_table("crema-d", summaries)
    md = render_markdown("crema-d", rows, cols)
    assert "| still-image |" in md and "| ground truth |" in md
    assert "20.000 [19.000, 21.000]" in md
    assert "reported: seed003 Table 6" in md and "reported: seed000 Table I" in md
    assert "23.565" in md and "23.57" in md  # seed 003 / seed 000 values for CREMA-D
    assert "PSNR ↑" in md and "3/4" in md and "1 of 4 test clips skipped" in md
    csv_text = render_csv(rows, cols)
    assert csv_text.splitlines()[0].startswith("kind,model,source,split,n_clips")
    assert "reported,vougioukas" in csv_text


def test_write_leaderboard_from_runs_dir(tmp_path):
    import json

    run = tmp_path / "runs" / "synthetic" / "speakers-70-15-15" / "still-image"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(_summary("still-image")))
    csv_path, md = write_leaderboard("synthetic", tmp_path / "runs", tmp_path / "lb")
    text = md.read_text()
    assert "still-image" in text and "reported:" not in text
    assert csv_path.exists()


def test_small_reported_values_are_not_shown_as_zero():
    from bench.leaderboard import _cell
    from bench.results import ColumnResult

    assert _cell(ColumnResult("reported", 1.4e-4), ".3f") == "0.00014"
    assert _cell(ColumnResult("reported", 0.0), ".3f") == "0.000"
    assert _cell(ColumnResult("reported", 23.565), ".2f") == "23.57"


def test_models_are_ranked_per_column_by_value():
    """Rank 1 = best; ≈GT columns rank by distance to the ground-truth row; ties share; no
    mean over the columns (issue 18)."""
    def with_blink(summary, rate):
        summary["columns"]["blinks"] = {"label": "Blinks/s", "higher_is_better": None}
        summary["aggregate"]["blinks"] = {"kind": "mean", "value": rate, "n": 4}
        return summary

    summaries = [with_blink(_summary("a", psnr=20.0), 0.9),
                 with_blink(_summary("b", psnr=25.0), 0.35),
                 with_blink(_summary("c", psnr=25.0), 0.1),
                 with_blink(_summary("ground-truth", kind="ground-truth", psnr=99.0), 0.3)]
    rows, cols = build_table("synthetic", summaries)
    from bench.leaderboard import rank_models

    ranks = {r.model: rank_models(rows, cols)[id(r)] for r in rows if r.kind == "model"}
    assert ranks["a"]["psnr"] == 3.0 and ranks["b"]["psnr"] == ranks["c"]["psnr"] == 1.5
    assert (ranks["b"]["blinks"], ranks["c"]["blinks"], ranks["a"]["blinks"]) == (1, 2, 3)
    assert "mean_rank" not in ranks["b"]
    md = render_markdown("synthetic", rows, cols)
    line_b = next(x for x in md.splitlines() if x.startswith("| b |"))
    assert "**0.350**" in line_b
    assert "mean_rank" not in render_csv(rows, cols).splitlines()[0]


def _clip_summary(model: str, values: dict[str, list[float]], kind: str = "model") -> dict:
    """A summary with per-clip values (``values``: column -> one value per clip c0, c1, ...),
    as `bench.aggregate.coverage` writes them."""
    from bench.results import ClipResult, mean_over_clips

    labels = {"psnr": ("PSNR", True, "psnr"), "lse_d": ("LSE-D", False, "lse"),
              "lse_c": ("LSE-C", True, "lse"), "av_offset": ("AV offset", None, "lse")}
    ids = [f"c{i}" for i in range(len(next(iter(values.values()))))]
    summary = _summary(model, kind=kind)
    summary.update(n_test=len(ids), n_scored=len(ids), columns={}, aggregate={},
                   clips={"ids": ids, "missing": {}, "values": {}})
    for column, per_clip in values.items():
        label, higher, metric = labels[column]
        summary["columns"][column] = {"label": label, "higher_is_better": higher,
                                      "metric": metric, "aggregation": "mean"}
        clips = [ClipResult(c, values={column: v}) for c, v in zip(ids, per_clip, strict=True)]
        summary["aggregate"][column] = mean_over_clips(clips, column).to_dict()
        summary["clips"]["missing"][column] = {}
        summary["clips"]["values"][column] = list(per_clip)
    return summary


def test_headline_ranks_are_per_family_with_ties_from_paired_tests():
    """Issue 18: a still photo wins PSNR and LSE-D against moving faces; it must not lead the
    table. Sync is ranked on LSE-C (and AV offset) by paired tests: two generators that
    differ by noise tie at 1, still-image is 3."""
    rng = np.random.default_rng(0)
    n = 12
    hard = rng.normal(0.0, 1.0, n)  # what every model finds hard on each clip
    still = {"psnr": 32 + hard, "lse_d": 15 + hard, "lse_c": 2.4 + 0.5 * hard,
             "av_offset": np.zeros(n)}
    a = {"psnr": 28 + hard, "lse_d": 23 + hard, "lse_c": 3.0 + 0.5 * hard
         + rng.normal(0, 0.02, n), "av_offset": np.zeros(n)}
    b = {k: v + (rng.normal(0, 0.02, n) if k == "lse_c" else 0) for k, v in a.items()}
    truth = {"lse_d": 9 + hard, "lse_c": 6 + hard, "av_offset": np.zeros(n)}
    summaries = [_clip_summary("still-image", {k: list(v) for k, v in still.items()}),
                 _clip_summary("a", {k: list(v) for k, v in a.items()}),
                 _clip_summary("b", {k: list(v) for k, v in b.items()}),
                 _clip_summary("ground-truth", {k: list(v) for k, v in truth.items()},
                               kind="ground-truth")]
    rows, cols = build_table("synthetic", summaries, reported=[])
    md = render_markdown("synthetic", rows, cols)
    lines = md.splitlines()
    header = next(x for x in lines if x.startswith("| Model |"))
    assert "| Sync | Identity & quality |" in header and "Rank" not in header
    table = {x.split(" | ")[0][2:]: x.split(" | ") for x in lines if x.startswith("| ")
             and x.split(" | ")[0][2:] in ("a", "b", "still-image")}
    order = [x.split(" | ")[0][2:] for x in lines if x.split(" | ")[0][2:] in table]
    assert order == ["a", "b", "still-image"]  # by sync rank (a, b tie: by name)
    assert table["a"][4] == table["b"][4] == "1" and table["still-image"][4] == "3"
    assert table["still-image"][5] == "1" and table["a"][5] == "2"  # it does win PSNR
    lse_c = header.split(" | ").index("LSE-C ↑")
    cells = sorted([table["a"][lse_c], table["b"][lse_c]])
    assert cells[0].startswith("**") and cells[1].startswith("*") and \
        not cells[1].startswith("**")  # best bold, the tie italic
    assert not table["still-image"][lse_c].startswith("*")
    under = lines[lines.index(next(x for x in lines if x.startswith("| ground truth |"))) + 2]
    assert under.startswith("Ranks are per metric family (Sync: LSE-C, AV offset; Identity & "
                            "quality: PSNR)") and "Holm" in under and "Wilcoxon" in under
    assert "LSE-D is shown but not ranked" in md
    import csv
    import io

    csv_rows = list(csv.DictReader(io.StringIO(render_csv(rows, cols))))
    ranks = {r["model"]: (r["rank_sync"], r["rank_quality"]) for r in csv_rows}
    assert ranks["still-image"] == ("3", "1") and ranks["a"] == ("1", "2")
    assert ranks["ground truth"] == ("", "")


def test_rows_without_per_clip_values_are_not_ranked_and_say_why():
    rows, cols = build_table("synthetic", [_summary("a", psnr=20.0), _summary("b", psnr=25.0)],
                             reported=[])
    md = render_markdown("synthetic", rows, cols)
    line = next(x for x in md.splitlines() if x.startswith("| b |"))
    assert line.split(" | ")[4] == "—" and "**25.000" in line  # best by value, not ranked
    assert "not ranked (shown only): PSNR" in md


def test_model_footnote_says_how_long_it_trained_and_with_which_perceptual_network():
    trained = _summary("vougioukas")
    trained["provenance"]["train_log"] = {
        "steps": 536, "wall_s": 105.1, "perceptual": "stand-in: VGG-19 with seeded random "
        "weights", "stages": {"joint": {"steps": 536, "stopped_early": True}}}
    rows, cols = build_table("synthetic", [trained, _summary("still-image")])
    md = render_markdown("synthetic", rows, cols)
    line = next(x for x in md.splitlines() if x.startswith("- vougioukas: code"))
    assert "trained 536 steps (stopped at the budget's time limit)" in line and "105" not in line
    assert "perceptual loss: stand-in: VGG-19" in line
    still = next(x for x in md.splitlines() if x.startswith("- still-image: code"))
    assert "trained" not in still


def _write_run(runs, split, model, summary):
    import json

    run = runs / "crema-d" / split / model
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({**summary, "split": split}))


def test_columns_judged_differently_from_the_reported_rows_are_marked():
    """Issue 17: LSE from a harness-trained SyncNet beside the papers' LSE gets a marker in
    the header, one footnote, and ``lse_c_comparable`` False in the CSV; with the official
    syncnet_v2.model it is comparable and unmarked. PSNR (computed as the papers do) never."""
    import csv
    import io

    from bench.leaderboard import MARKER, render_csv

    def board(source: str) -> tuple[str, dict]:
        summary = _summary("still-image")
        summary["columns"]["lse_c"] = {"label": "LSE-C", "higher_is_better": True,
                                       "metric": "lse"}
        summary["aggregate"]["lse_c"] = {"kind": "mean", "value": 1.5, "ci_low": 1.0,
                                         "ci_high": 2.0, "n": 4}
        summary["provenance"]["metrics"]["lse"] = {"source": source}
        rows, cols = build_table("crema-d", [summary])
        table = list(csv.DictReader(io.StringIO(render_csv(rows, cols))))
        return render_markdown("crema-d", rows, cols), {r["model"]: r for r in table
                                                        if r["kind"] == "model"}

    md, table = board("talkbench-trained syncnet on crema-d")
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert f"LSE-C ↑ {MARKER}1" in header and MARKER not in header.split("LSE-C")[0]
    assert md.count(f"1. {MARKER} LSE-C: LSE and the AV offset come from a SyncNet") == 1
    assert table["still-image"]["lse_c_comparable"] == "False"
    assert table["still-image"]["psnr_comparable"] == "True"
    md, table = board("syncnet_python syncnet_v2.model (user-supplied)")
    assert MARKER not in md and table["still-image"]["lse_c_comparable"] == "True"


def test_stand_in_renderer_and_speech_emotion_are_footnoted():
    """ventriloquist (issue 16): its frames come from a renderer trained here (a stand-in the
    paper did not use) and its emotion from the speech; the leaderboard says both."""
    summary = _summary("ventriloquist")
    summary["columns"]["emoacc"] = {"label": "EmoAcc", "higher_is_better": True,
                                    "metric": "emoacc"}
    summary["aggregate"]["emoacc"] = {"kind": "mean", "value": 0.2, "ci_low": 0.1,
                                      "ci_high": 0.3, "n": 4}
    summary["provenance"]["train_log"] = {"renderer": "the stand-in renderer",
                                          "emotion_source": "speech"}
    rows, cols = build_table("crema-d", [summary, _summary("still-image")])
    md = render_markdown("crema-d", rows, cols)
    assert "ventriloquist: frames drawn by the stand-in renderer" in md
    assert md.count("the requested emotion is ignored") == 1
    line = next(x for x in md.splitlines() if x.startswith("| ventriloquist"))
    assert "[" in line.split("|")[1]  # the model cell carries the footnote number


def test_write_leaderboard_name_splits_metrics_and_reported(tmp_path):
    """A protocol's leaderboard: its own file name, one split, its metrics, its reported rows."""
    from bench.reported import Reported

    runs = tmp_path / "runs"
    for split in ("goyal2023", "vougioukas2019"):
        summary = _summary("still-image")
        summary["columns"]["lse_c"] = {"label": "LSE-C", "higher_is_better": True,
                                       "metric": "lse"}
        summary["aggregate"]["lse_c"] = {"kind": "mean", "value": 1.5, "ci_low": 1.0,
                                         "ci_high": 2.0, "n": 4}
        _write_run(runs, split, "still-image", summary)
    (runs / "crema-d" / "goyal2023" / "judges.json").write_text("{}")
    mine = [Reported("seed002", "Table 1", "crema-d", "goyal2023 test", "emotion-wav2lip",
                     "lse_c", 7.25),
            Reported("seed002", "Table 1", "crema-d", "goyal2023 test", "emotion-wav2lip",
                     "fid", 9.5)]
    csv_path, md = write_leaderboard("crema-d", runs, tmp_path / "lb", name="crema-d-goyal2023",
                                     splits={"goyal2023"}, metrics=["lse"], reported=mine)
    assert md == tmp_path / "lb" / "crema-d-goyal2023.md"
    assert csv_path == tmp_path / "lb" / "crema-d-goyal2023.csv"
    text = md.read_text()
    assert text.startswith("# talkbench leaderboard: crema-d-goyal2023\n")
    assert "| goyal2023 |" in text and "vougioukas2019" not in text
    assert "LSE-C ↑" in text and "PSNR" not in text and "FID" not in text
    assert "7.250" in text and "reported: seed002 Table 1" in text and "seed003" not in text
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[7:] == ["test_set", "rank_sync", "lse_c", "lse_c_ci_low", "lse_c_ci_high",
                          "lse_c_n", "lse_c_unavailable", "lse_c_flag", "lse_c_comparable"]

    # by column name too; no reported rows
    _, md = write_leaderboard("crema-d", runs, tmp_path / "lb", name="only-psnr",
                              metrics={"psnr"}, reported=[])
    text = md.read_text()
    assert "PSNR ↑" in text and "LSE-C" not in text and "reported:" not in text
    assert text.count("| still-image |") == 2  # both splits
    # the defaults are unchanged: every split, metric and reported row of the dataset
    _, md = write_leaderboard("crema-d", runs, tmp_path / "lb")
    text = md.read_text()
    assert md.name == "crema-d.md" and "reported: seed003 Table 6" in text
    assert "PSNR ↑" in text and "LSE-C ↑" in text


def test_leaderboard_reads_strict_json_non_finite_values(tmp_path):
    """summary.json writes a mean whose every clip was infinite as "nan" (strict JSON); the
    leaderboard shows it as it did the NaN before."""
    import csv

    from bench.fileio import atomic_write_json
    from bench.leaderboard import load_summaries

    summary = _summary("still-image")
    summary["aggregate"]["psnr"] = {"kind": "mean", "value": float("nan"),
                                    "ci_low": float("nan"), "ci_high": float("nan"), "n": 0,
                                    "n_infinite": 4, "n_unavailable": 0}
    atomic_write_json(tmp_path / "runs" / "synthetic" / "s" / "still-image" / "summary.json",
                      summary)
    assert '"value": "nan"' in next((tmp_path / "runs").rglob("summary.json")).read_text()
    rows, cols = build_table("synthetic", load_summaries(tmp_path / "runs", "synthetic"))
    assert "| n/a (+4 inf) |" in render_markdown("synthetic", rows, cols)
    row = next(csv.DictReader(render_csv(rows, cols).splitlines()))
    assert row["psnr"] == row["psnr_ci_low"] == "nan"


def test_au_judge_note_shows_its_per_au_f1_against_synthesised_truth():
    """Issue 17: the AU judge's footnote gives its F1 against the synthesised AU states, per
    AU (AU14 included, it is measured; the average leaves it out) and averaged."""
    from bench.leaderboard import judge_notes

    report = {"judge": "talkbench-trained au", "n_test": 12,
              "test": {"figure": "truth_avg_f1", "chance": 0.377, "truth_avg_f1": 0.542,
                       "truth_f1": {"AU10": 0.445, "AU14": None, "AU20": 0.293},
                       "prevalence": {"AU10": 0.1}}}
    (line,) = judge_notes({"split": {"au": report}})
    assert "truth_f1 (AU10 0.445, AU14 n/a, AU20 0.293)" in line
    assert "truth_avg_f1 0.542" in line
    assert "prevalence" not in line and "below chance" not in line
