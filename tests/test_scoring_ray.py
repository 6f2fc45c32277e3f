"""Scoring on Ray (issue 19): the Ray pool keeps the local pool's contract (order, errors, lost
workers retried by Ray), and `bench run` / `bench score` with ``--executor ray`` on a local
instance with 2 CPUs give the per-clip values, the FID and the leaderboard of a
single-process run."""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main

ray = pytest.importorskip("ray")
pytest.importorskip("pytorch_fid")

from test_metric_fid import WEIGHTS_NAME, random_reference_state_dict  # noqa: E402

from bench.stages.ray_pool import RayScoringPool  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the toy job below


@dataclass(frozen=True)
class _Job:
    offset: int
    marker: str = ""  # a file: the first call on item 7 kills its worker, the retry succeeds

    def build_metrics(self) -> list:
        return [self.offset]


def _add(job: _Job, metrics: list, item: int) -> tuple[int, int]:
    if item < 0:
        raise ValueError(f"negative item {item}")
    if item == 7 and job.marker and not os.path.exists(job.marker):
        Path(job.marker).touch()
        os._exit(1)  # a lost worker: Ray restarts the actor and retries the call
    return item + metrics[0], os.getpid()


def test_ray_pool_order_errors_and_lost_workers(tmp_path):
    with RayScoringPool(2, device="cpu") as pool:
        out = list(pool.map(_add, _Job(10), [3, 1, 2, 5, 4]))
        assert [item for item, _ in out] == [3, 1, 2, 5, 4]
        assert [value for _, (value, _) in out] == [13, 11, 12, 15, 14]
        assert all(pid != os.getpid() for _, (_, pid) in out)
        assert pool.workers == 2 and ray.is_initialized()
        with pytest.raises(ValueError, match="negative item -1"):
            list(pool.map(_add, _Job(0), [1, -1, 2]))
        marker = tmp_path / "killed"
        out = list(pool.map(_add, _Job(1, str(marker)), [6, 7, 8]))
        assert marker.exists()  # the worker did die on item 7 ...
        assert [value for _, (value, _) in out] == [7, 8, 9]  # ... and the call was retried
    assert not ray.is_initialized()  # the local instance this pool started is shut down


# ---------------------------------------------------------------------------------------------
# bench run / bench score, local vs Ray


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> Path:
    """Seeded random weights of pytorch-fid's Inception, in pytorch-fid's file format."""
    path = tmp_path_factory.mktemp("fid") / WEIGHTS_NAME
    torch.save(random_reference_state_dict(), path)
    return path


METRICS = "psnr,ssim,blinks,fid"


def _run(root: Path, base: Path, cache: Path, weights: Path, *extra: str) -> None:
    args = ["run", "--model", "still-image", "--dataset", "synthetic", "--root", str(root),
            "--budget", "smoke", "--metrics", METRICS, "--max-test-clips", "2",
            "--runs-dir", str(base / "runs"), "--leaderboard-dir", str(base / "lb"),
            "--cache-dir", str(cache), "--fid-weights", str(weights), "--quiet", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


def _records(run_dir: Path) -> dict[str, dict]:
    """Per-clip records of every row, without the seconds each metric took."""
    out = {}
    for path in sorted(run_dir.glob("*/*/scores/*.json")):
        record = json.loads(path.read_text())
        for entry in record["metrics"].values():
            entry.pop("seconds", None)
        out[str(path.relative_to(run_dir))] = record
    return out


def _assert_close(a, b, where: str = "") -> None:
    """Equal structures, floats to 1e-9."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_close(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _assert_csv_close(a: Path, b: Path) -> None:
    rows_a, rows_b = _csv_rows(a), _csv_rows(b)
    assert len(rows_a) == len(rows_b) and rows_a
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            try:
                x, y = float(row_a[key]), float(row_b[key])
            except ValueError:
                assert row_a[key] == row_b[key], key
                continue
            assert x == pytest.approx(y, rel=1e-9, abs=1e-9, nan_ok=True), key


@pytest.mark.slow  # about 130 s here: FID's Inception on every frame, twice
def test_bench_run_on_ray_equals_one_process(synth_native_root, fid_weights, tmp_path):
    cache = tmp_path / "cache"  # shared: the clips are prepared once
    _run(synth_native_root, tmp_path / "local", cache, fid_weights, "--workers", "1")
    _run(synth_native_root, tmp_path / "ray", cache, fid_weights, "--workers", "2",
         "--executor", "ray")
    local = tmp_path / "local" / "runs" / "synthetic"
    on_ray = tmp_path / "ray" / "runs" / "synthetic"
    records = _records(local)
    assert len(records) == 4  # ground truth and still-image, 2 test clips each
    _assert_close(records, _records(on_ray))
    # FID: per-clip features equal, and the set-level value merged from them
    states = sorted(local.glob("*/still-image/states/fid/*.npz"))
    assert len(states) == 2
    for path in states:
        other = on_ray / path.relative_to(local)
        with np.load(path) as a, np.load(other) as b:
            for key in ("pred", "gt"):
                np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-9)
    summaries = [json.loads(next(base.glob("*/still-image/summary.json")).read_text())
                 for base in (local, on_ray)]
    fid = [s["aggregate"]["fid"] for s in summaries]
    assert "value" in fid[0], fid[0]  # a number, not an "unavailable" reason
    _assert_close(fid[0], fid[1])
    _assert_close(summaries[0]["aggregate"], summaries[1]["aggregate"])
    assert summaries[1]["timing"]["workers"] == 2
    _assert_csv_close(tmp_path / "local" / "lb" / "synthetic.csv",
                      tmp_path / "ray" / "lb" / "synthetic.csv")


def test_bench_score_on_ray_equals_one_process(synth_native_root, fid_weights, tmp_path):
    """Three short clips (5 frames of 64x64 crops, already aligned), noisy copies scored
    against the originals: per-clip values, per-clip FID features and FID equal."""
    from bench.data.media import read_media, write_video

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    for i, path in enumerate(sorted(Path(synth_native_root).glob("spk*/*.mp4"))[:3]):
        media = read_media(path)
        frames = np.ascontiguousarray(media.frames[:5, 100:164, 140:204])
        audio = media.audio[: 5 * 640]
        write_video(gt / f"c{i}.mp4", frames, audio)
        noisy = np.clip(frames.astype(int) + rng.integers(-20, 21, frames.shape), 0, 255)
        write_video(pred / f"c{i}.mp4", noisy.astype(np.uint8), audio)
    outs = {}
    for name, extra in (("one", ["--workers", "1"]),
                        ("ray", ["--workers", "2", "--executor", "ray"])):
        outs[name] = tmp_path / name
        result = CliRunner().invoke(main, [
            "score", "--pred", str(pred), "--gt", str(gt), "--metrics", "psnr,ssim,fid",
            "--align", "none", "--fid-weights", str(fid_weights), "--out", str(outs[name]),
            "--quiet", *extra])
        assert result.exit_code == 0, result.output
    _assert_csv_close(outs["one"] / "scores.csv", outs["ray"] / "scores.csv")
    states = sorted((outs["one"] / "states" / "fid").glob("*.npz"))
    assert len(states) == 3
    for path in states:
        with np.load(path) as a, np.load(outs["ray"] / "states" / "fid" / path.name) as b:
            np.testing.assert_allclose(a["pred"], b["pred"], rtol=1e-9, atol=1e-9)
    summaries = [json.loads((outs[n] / "summary.json").read_text()) for n in ("one", "ray")]
    assert "value" in summaries[0]["aggregate"]["fid"], summaries[0]["aggregate"]["fid"]
    _assert_close(summaries[0]["aggregate"], summaries[1]["aggregate"])
    assert summaries[1]["timing"]["workers"] == 2 and summaries[1]["n_scored"] == 3
    assert (outs["one"] / "leaderboard.md").read_text() == \
        (outs["ray"] / "leaderboard.md").read_text()


def test_executor_choice():
    from bench.stages.executors import make_scoring_pool
    from bench.stages.workers import ScoringPool

    assert isinstance(make_scoring_pool(2, "cpu"), ScoringPool)
    pool = make_scoring_pool(None, "cpu", "ray", "10.0.0.1:6379")
    assert isinstance(pool, RayScoringPool) and pool.address == "10.0.0.1:6379"
    assert pool.workers == 0 and not ray.is_initialized()  # nothing started before map
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        make_scoring_pool(None, "cpu", "local", "auto")
    with pytest.raises(ValueError, match="unknown executor"):
        make_scoring_pool(None, "cpu", "dask")
