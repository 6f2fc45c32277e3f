"""End to end: synthetic CREMA-D tree -> still-image run -> leaderboard; resume; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.media import write_video, write_wav
from bench.metrics.base import Aggregation, Column, Metric


def _bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def crema_tree(synth_crema_root, tmp_path) -> Path:
    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    return root


def _run_args(root: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--model", "still-image", "--dataset", "crema-d", "--root", str(root),
            "--runs-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--workers", "1",
            "--metrics", "psnr,ssim", *extra]


def _add_bad_clips(root: Path) -> dict[str, str]:
    """A truncated flv, a clip without audio, a face-less clip: all test-split actors."""
    rng = np.random.default_rng(0)
    videos = sorted((root / "VideoFlash").glob("1015_*.flv"))
    data = videos[0].read_bytes()
    (root / "VideoFlash" / "1015_TSI_NEU_XX.flv").write_bytes(data[: len(data) // 3])
    shutil.copy(root / "AudioWAV" / f"{videos[0].stem}.wav",
                root / "AudioWAV" / "1015_TSI_NEU_XX.wav")
    noise = rng.integers(0, 256, (40, 360, 480, 3), dtype=np.uint8)
    write_video(root / "VideoFlash" / "1020_WSI_NEU_XX.flv", noise, None, fps=30)
    write_wav(root / "AudioWAV" / "1020_WSI_NEU_XX.wav",
              0.1 * rng.standard_normal(25_600).astype(np.float32))
    write_video(root / "VideoFlash" / "1015_WSI_SAD_XX.flv", noise, None, fps=30)
    return {"1015_TSI_NEU_XX": "truncated", "1020_WSI_NEU_XX": "no face",
            "1015_WSI_SAD_XX": "no audio"}


def test_crema_d_run_writes_leaderboard_and_resumes(crema_tree, tmp_path):
    bad = _add_bad_clips(crema_tree)
    code, out = _bench(*_run_args(crema_tree, tmp_path))
    assert code == 0, out
    md = (tmp_path / "lb" / "crema-d.md").read_text()
    assert "| still-image |" in md and "| ground truth |" in md
    assert "reported: seed003 Table 6" in md and "reported: seed000 Table I" in md
    assert "3 of" in md and "test clips skipped" in md
    for clip_id, reason in bad.items():
        assert clip_id in out and reason in out.split(clip_id, 1)[1].splitlines()[0]
    run_dir = tmp_path / "runs" / "crema-d" / "vougioukas2019" / "still-image"
    generated = sorted((run_dir / "generated").glob("*.npz"))
    assert generated and (run_dir / "summary.json").exists()
    assert list(run_dir.glob("strip_*.png"))

    # a killed run: the summary and one score record are gone; generation must not be redone
    stamps = {p: p.stat().st_mtime_ns for p in generated}
    (run_dir / "summary.json").unlink()
    next((run_dir / "scores").glob("*.json")).unlink()
    (tmp_path / "lb" / "crema-d.md").unlink()
    code, out = _bench(*_run_args(crema_tree, tmp_path))
    assert code == 0, out
    assert {p: p.stat().st_mtime_ns for p in generated} == stamps
    assert (tmp_path / "lb" / "crema-d.md").read_text() == md


def test_missing_root_and_wrong_layout_are_one_line(tmp_path):
    code, out = _bench("run", "--model", "still-image", "--dataset", "crema-d",
                       "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code != 0 and "--root is required" in out and "Traceback" not in out
    (tmp_path / "notcrema").mkdir()
    code, out = _bench(*_run_args(tmp_path / "notcrema", tmp_path))
    assert code != 0 and "VideoFlash" in out and len(out.strip().splitlines()) == 1
    code, out = _bench(*_run_args(tmp_path / "nowhere", tmp_path))
    assert code != 0 and "does not exist" in out



class MeanAbsDifference(Metric):
    """A dataset-level test metric: mean |pred - gt| over every pixel of every clip, pooled
    from per-clip sums (its ``clip_state``), to check the runner's state cache."""

    name = "test-mean-abs"
    columns = (Column("test_mad", "MAD", higher_is_better=False,
                      aggregation=Aggregation.SET_LEVEL),)
    on_ground_truth = False

    def clip_state(self, sample):
        diff = np.abs(sample.pred.astype(np.float64) - sample.gt.astype(np.float64))
        return {"sum": np.array(diff.sum()), "count": np.array(diff.size)}

    def compute_from_states(self, states):
        total = sum(float(state["sum"]) for state, _ in states)
        return {"test_mad": total / sum(int(state["count"]) for state, _ in states)}


def test_dataset_level_metric_from_cached_states(synth_native_root, tmp_path):
    from bench.data.datasets import open_dataset
    from bench.data.preprocess import PrepParams, load_prepared
    from bench.metrics import METRICS

    if "test-mean-abs" not in METRICS:
        METRICS.add("test-mean-abs", "test_runner:MeanAbsDifference")
    args = ["run", "--model", "still-image", "--dataset", "synthetic",
            "--root", str(synth_native_root), "--runs-dir", str(tmp_path / "runs"),
            "--leaderboard-dir", str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--workers", "1", "--metrics", "psnr,test-mean-abs"]
    code, out = _bench(*args)
    assert code == 0, out
    model_dir = next((tmp_path / "runs" / "synthetic").glob("*/still-image"))
    summary = json.loads((model_dir / "summary.json").read_text())
    states = sorted((model_dir / "states" / "test-mean-abs").glob("*.npz"))
    assert len(states) == summary["n_scored"] > 0

    refs = {r.clip_id: r for r in open_dataset("synthetic", synth_native_root).scan().clips}
    total = count = 0.0
    for path in states:  # recomputed from the generated and the prepared real frames
        with np.load(model_dir / "generated" / path.name) as data:
            pred = data["frames"].astype(np.float64)
        gt = load_prepared(refs[path.stem], tmp_path / "cache" / "prepared", PrepParams()).frames
        total += np.abs(pred - gt).sum()
        count += pred.size
    agg = summary["aggregate"]["test_mad"]
    assert agg["kind"] == "set" and agg["n"] == len(states)
    assert agg["value"] == pytest.approx(total / count, rel=1e-12)
    assert 0 < agg["value"] < 255
    assert f"{agg['value']:.3f}" in (tmp_path / "lb" / "synthetic.md").read_text()

    mtimes = [p.stat().st_mtime_ns for p in states]  # a second run reuses the cached states
    code, out = _bench(*args)
    assert code == 0, out
    assert [p.stat().st_mtime_ns for p in states] == mtimes


@pytest.fixture
def brightness_judge():
    """The test judge and its metric, registered for one test only (a judge left registered
    would be checked by the tests of every registered judge that run after it)."""
    from bench.judges.store import JUDGES
    from bench.metrics import METRICS

    JUDGES.add("test-brightness", "judge_fixture")
    METRICS.add("test-brightness", "judge_fixture:BrightnessOffset")
    yield
    JUDGES.remove("test-brightness")
    METRICS.remove("test-brightness")


def test_missing_judge_is_trained_reported_and_footnoted(synth_native_root, tmp_path,
                                                        brightness_judge):
    import judge_fixture

    from bench.judges.store import trained_judge

    calls = judge_fixture.CALLS["train"]
    args = ["run", "--model", "still-image", "--dataset", "synthetic",
            "--root", str(synth_native_root), "--runs-dir", str(tmp_path / "runs"),
            "--leaderboard-dir", str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--workers", "1", "--metrics", "test-brightness"]
    code, out = _bench(*args)
    assert code == 0, out
    assert judge_fixture.CALLS["train"] == calls + 1
    judge = trained_judge("test-brightness", "synthetic", tmp_path / "cache")
    assert judge is not None and judge.record["n_train"] > 0
    assert judge.record["log"]["n_clips"] == judge.record["n_train"]
    assert len(judge.record["weights_sha256"]) == 64
    report = json.loads(next((tmp_path / "runs" / "synthetic").glob("*/judges.json"))
                        .read_text())
    assert report["test-brightness"]["test"]["mean_abs_error"] > 0
    md = (tmp_path / "lb" / "synthetic.md").read_text()
    assert "judge test-brightness" in md and "talkbench-trained test-brightness" in md
    summary = json.loads(next((tmp_path / "runs" / "synthetic").glob(
        "*/ground-truth/summary.json")).read_text())
    assert "value" in summary["aggregate"]["brightness_offset"]

    code, out = _bench(*args)  # cached: no second training
    assert code == 0, out
    assert judge_fixture.CALLS["train"] == calls + 1


def test_every_registered_metric_in_one_run(synth_native_root, tmp_path, monkeypatch):
    """The main job's path with every metric (smoke budget): the run finishes, and every column
    of the ground-truth and model rows holds a value or an "unavailable" reason."""
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.delenv("TALKBENCH_SYNCNET_WEIGHTS", raising=False)
    from bench.metrics import METRICS

    names = [n for n in METRICS.names() if not n.startswith("test-")]
    args = ["run", "--model", "all", "--dataset", "synthetic", "--budget", "smoke",
            "--root", str(synth_native_root), "--runs-dir", str(tmp_path / "runs"),
            "--leaderboard-dir", str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--workers", "1", "--max-test-clips", "2", "--metrics", ",".join(names)]
    code, out = _bench(*args)
    assert code == 0, out
    for summary_path in (tmp_path / "runs" / "synthetic").glob("*/*/summary.json"):
        summary = json.loads(summary_path.read_text())
        assert summary["n_scored"] == 2, summary_path
        for column, agg in summary["aggregate"].items():
            assert "value" in agg or agg.get("unavailable"), (summary_path, column, agg)
    md = (tmp_path / "lb" / "synthetic.md").read_text()
    assert "| ground truth |" in md
    # No official SyncNet weights here: a SyncNet was trained on the train split, LSE has
    # numbers, and they say which SyncNet made them.
    gt = json.loads(next((tmp_path / "runs" / "synthetic").glob("*/ground-truth/summary.json"))
                    .read_text())
    assert "value" in gt["aggregate"]["lse_c"], gt["aggregate"]["lse_c"]
    assert "talkbench-trained syncnet on synthetic" in json.dumps(gt["provenance"]["metrics"])
    assert "judge syncnet" in md


def test_summary_times_every_stage_and_metric(crema_tree, tmp_path):
    """Issue 13: per-stage and per-metric timing in every summary.json."""
    code, out = _bench(*_run_args(crema_tree, tmp_path))
    assert code == 0, out
    run_dir = tmp_path / "runs" / "crema-d" / "vougioukas2019"
    model = json.loads((run_dir / "still-image" / "summary.json").read_text())
    timing = model["timing"]
    assert set(timing["stages_s"]) == {"train", "generate", "score"}
    assert all(seconds >= 0 for seconds in timing["stages_s"].values())
    assert set(timing["metrics"]) == {"psnr", "ssim"}
    for metric in timing["metrics"].values():
        assert metric["clips_timed"] == model["n_scored"]
        assert metric["s_per_clip"] > 0
        assert abs(metric["s_total"] - metric["s_per_clip"] * metric["clips_timed"]) < 1e-4
    truth = json.loads((run_dir / "ground-truth" / "summary.json").read_text())
    assert set(truth["timing"]["stages_s"]) == {"score"}
    assert truth["timing"]["device"].startswith("cpu")
