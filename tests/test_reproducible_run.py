"""Reproducibility (issue 13): the main job's command, at the smoke budget, run twice on fresh
caches and fresh run folders gives identical leaderboards, every registered model included.
Budgets are step counts, so nothing depends on how fast the machine is; scoring runs in worker
processes both times (``--workers 2``), so the check covers the parallel scoring path too. The
first run trains its judges and models side by side in two processes of one training thread
(`bench.stages.train_pool`; with the default two threads that takes 4 cores), the second one
after another in the test's process, so the check also covers that a checkpoint does not
depend on where it was trained. The demo-budget check is the slow test below."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main


def _run(root: Path, out: Path, budget: str, *extra: str) -> tuple[str, str]:
    args = ["run", "--model", "all", "--budget", budget, "--runs-dir", str(out / "runs"),
            "--leaderboard-dir", str(out / "lb"), "--cache-dir", str(out / "cache"), "--quiet",
            "--workers", "2", *extra]
    if root is not None:
        args += ["--root", str(root)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    md = next((out / "lb").glob("*.md"))
    csv = md.with_suffix(".csv")
    return md.read_text(), csv.read_text()


def _without_paths(text: str, out: Path) -> str:
    return re.sub(re.escape(str(out)), "<out>", text)


def test_smoke_main_job_twice_on_fresh_caches_gives_the_same_leaderboard(synth_crema_root,
                                                                         tmp_path, monkeypatch):
    from bench.core.devices import TRAIN_THREADS_ENV
    from bench.stages import train_pool

    monkeypatch.setenv(TRAIN_THREADS_ENV, "1")
    monkeypatch.setattr(train_pool, "cpu_cores", lambda: 2)
    extra = ("--dataset", "crema-d", "--max-test-clips", "3")
    side_by_side: list[list[str]] = []
    real_train_in_parallel = train_pool.train_in_parallel

    def recording(ws, models):
        done = real_train_in_parallel(ws, models)
        side_by_side.append(done)
        return done

    monkeypatch.setattr("bench.runner.train_in_parallel", recording)
    first = _run(synth_crema_root, tmp_path / "a", "smoke", *extra)
    assert len(side_by_side) == 1 and "syncnet" in side_by_side[0]
    assert {"wav2lip", "static-gan"} <= set(side_by_side[0])
    monkeypatch.setattr("bench.runner.train_in_parallel", lambda ws, models: [])
    second = _run(synth_crema_root, tmp_path / "b", "smoke", *extra)
    assert "| still-image |" in first[0]
    for one, two in zip(first, second, strict=True):
        assert _without_paths(one, tmp_path / "a") == _without_paths(two, tmp_path / "b")


@pytest.mark.slow
def test_demo_main_job_twice_on_fresh_caches_gives_the_same_leaderboard(tmp_path):
    first = _run(None, tmp_path / "a", "demo", "--dataset", "synthetic")
    second = _run(None, tmp_path / "b", "demo", "--dataset", "synthetic")
    for one, two in zip(first, second, strict=True):
        assert _without_paths(one, tmp_path / "a") == _without_paths(two, tmp_path / "b")
