"""Scoring in worker processes (issue 13): the same per-clip values with 1 and 2 workers, the
scoring pool's order and error handling, and `bench score --profile`'s table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.media import read_media, write_video
from bench.stages.workers import ScoringPool, default_workers


@dataclass(frozen=True)
class _Job:
    offset: int

    def build_metrics(self) -> list:
        return [self.offset]


def _add(job: _Job, metrics: list, item: int) -> tuple[int, int]:
    import os

    if item < 0:
        raise ValueError(f"negative item {item}")
    return item + metrics[0], os.getpid()


def test_pool_keeps_the_order_and_runs_in_other_processes():
    import os

    with ScoringPool(2) as pool:
        out = list(pool.map(_add, _Job(10), [3, 1, 2, 5]))
        assert [item for item, _ in out] == [3, 1, 2, 5]
        assert [value for _, (value, _) in out] == [13, 11, 12, 15]
        assert all(pid != os.getpid() for _, (_, pid) in out)
        with pytest.raises(ValueError, match="negative item -1"):
            list(pool.map(_add, _Job(0), [1, -1, 2]))
    with ScoringPool(1) as pool:  # one worker: this process
        assert [v for _, (v, pid) in pool.map(_add, _Job(1), [1, 2])] == [2, 3]
        assert pool.threads >= 1


def test_default_workers_one_per_core_on_cpu_one_on_gpu():
    assert default_workers("cuda") == 1
    assert default_workers("cpu") >= 1


@pytest.fixture(scope="module")
def pair_folders(synth_native_root, tmp_path_factory) -> tuple[Path, Path]:
    """gt/: three real clips; pred/: noisy copies (every metric has something to measure)."""
    videos = sorted(Path(synth_native_root).glob("spk*/*.mp4"))[:3]
    base = tmp_path_factory.mktemp("workers")
    gt, pred = base / "gt", base / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(1)
    for i, path in enumerate(videos):
        media = read_media(path)
        write_video(gt / f"c{i}.mp4", media.frames, media.audio)
        noise = rng.integers(-20, 21, media.frames.shape)
        noisy = np.clip(media.frames.astype(int) + noise, 0, 255).astype(np.uint8)
        write_video(pred / f"c{i}.mp4", noisy, media.audio)
    return pred, gt


def _score(pred: Path, gt: Path, out: Path, workers: int, *extra: str):
    return CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt),
                                     "--metrics", "psnr,ssim,cpbd,blinks,acd", "--out",
                                     str(out), "--quiet", "--workers", str(workers), *extra])


def test_bench_score_same_values_with_one_and_two_workers(pair_folders, tmp_path):
    pred, gt = pair_folders
    one = _score(pred, gt, tmp_path / "one", 1)
    two = _score(pred, gt, tmp_path / "two", 2, "--profile")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert (tmp_path / "one" / "scores.csv").read_text() == \
        (tmp_path / "two" / "scores.csv").read_text()
    timing = json.loads((tmp_path / "two" / "summary.json").read_text())["timing"]
    assert timing["workers"] == 2 and timing["frames"] > 0
    assert set(timing["metrics"]) == {"psnr", "ssim", "cpbd", "blinks", "acd"}
    # the profile table: a row per metric, slowest first, and the wall-time line
    lines = two.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    rows = [line.split()[0] for line in lines[header + 1:header + 6]]
    assert sorted(rows) == ["acd", "blinks", "cpbd", "psnr", "ssim"]
    seconds = [timing["metrics"][name]["s_total"] for name in rows]
    assert seconds == sorted(seconds, reverse=True)
    assert any(line.startswith("wall ") and "2 worker(s)" in line for line in lines)
