"""Resume across shapes (issue 19; SPEC 7: caches keyed per record, never per rank): a run
started with 2 scoring workers and killed part-way through scoring, resumed with 1 or 3
workers, finishes with the scores and leaderboard of an uninterrupted run, and scores only
the clips that had no record (the others' records and per-clip states are not rewritten)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.core import cache

METRICS = "psnr,ssim,blinks"  # blinks keeps a per-clip state (states/blinks/<clip>.npz)
N_CLIPS = 5  # test clips (one test speaker); records: ground truth + still-image = 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """2 speakers x 5 clips: the test speaker's 5 clips give 10 score records in all."""
    from bench.data.synth import build_corpus

    return build_corpus(tmp_path_factory.mktemp("resume_corpus"), layout="native",
                        workers=1, progress=False, seed=0, n_speakers=2, clips_per_speaker=5,
                        sentences=("IEO", "DFA", "TSI"))


def _args(root: Path, base: Path, cache_dir: Path, workers: int) -> list[str]:
    return ["run", "--model", "still-image", "--dataset", "synthetic", "--root", str(root),
            "--budget", "smoke", "--metrics", METRICS, "--runs-dir", str(base / "runs"),
            "--leaderboard-dir", str(base / "lb"), "--cache-dir", str(cache_dir), "--quiet",
            "--workers", str(workers)]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted run (1 worker): its base folder, and the shared cache folder."""
    base = tmp_path_factory.mktemp("reference")
    cache_dir = base / "cache"
    result = CliRunner().invoke(main, _args(corpus, base, cache_dir, 1))
    assert result.exit_code == 0, result.output
    return base, cache_dir


class Killed(Exception):
    """The injected failure: the run dies after ``k`` score records."""


class RecordWrites:
    """Counts the score records the run writes (``<row>/scores/<clip>.json``) and, when
    ``fail_after`` is set, kills the run when it is about to write one more."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.paths: list[Path] = []
        self._write = cache.write_json

    def __call__(self, path: Path, key: str, record: dict) -> dict:
        if Path(path).parent.name == "scores":
            if self.fail_after is not None and len(self.paths) >= self.fail_after:
                raise Killed(f"killed after {len(self.paths)} score records")
            self.paths.append(Path(path))
        return self._write(path, key, record)


def _stamps(run_root: Path) -> dict[Path, int]:
    """mtime of every score record of the run and of the per-clip state files of the clips
    that have one (a state whose record was not written yet belongs to unfinished work)."""
    records = list(run_root.glob("*/*/scores/*.json"))
    states = [p for p in run_root.glob("*/*/states/*/*.npz")
              if (p.parent.parent.parent / "scores" / f"{p.stem}.json").exists()]
    return {p: p.stat().st_mtime_ns for p in records + states}


def _kill_in_process(corpus: Path, base: Path, cache_dir: Path, monkeypatch) -> None:
    """2 workers; the run dies in the middle of scoring, after 3 of the 10 records."""
    writes = RecordWrites(fail_after=3)
    with monkeypatch.context() as patch:
        patch.setattr(cache, "write_json", writes)
        result = CliRunner().invoke(main, _args(corpus, base, cache_dir, 2))
    assert isinstance(result.exception, Killed), result.output
    assert len(writes.paths) == 3


def _kill_subprocess(corpus: Path, base: Path, cache_dir: Path) -> None:
    """``bench run --workers 2`` in a process group, SIGKILLed once the model row has 2 score
    records (its ground-truth row done), before it finishes."""
    command = [sys.executable, "-m", "bench.cli", *_args(corpus, base, cache_dir, 2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scores = base / "runs" / "synthetic"
    try:
        deadline = time.monotonic() + 300
        while len(list(scores.glob("*/still-image/scores/*.json"))) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no score records after 300 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (base / "lb" / "synthetic.csv").exists()  # killed before the end


@pytest.mark.parametrize("kill, resume_workers", [("inject", 1), ("inject", 3),
                                                  ("sigkill", 1)])
def test_killed_with_two_workers_resumes_with_another_count(corpus, reference, tmp_path,
                                                            monkeypatch, kill, resume_workers):
    ref_base, cache_dir = reference
    base = tmp_path / "run"
    if kill == "inject":
        _kill_in_process(corpus, base, cache_dir, monkeypatch)
    else:
        _kill_subprocess(corpus, base, cache_dir)
    run_root = base / "runs" / "synthetic"
    before = _stamps(run_root)
    done = {p for p in before if p.parent.name == "scores"}
    assert 0 < len(done) < 2 * N_CLIPS

    writes = RecordWrites()
    with monkeypatch.context() as patch:
        patch.setattr(cache, "write_json", writes)
        result = CliRunner().invoke(main, _args(corpus, base, cache_dir, resume_workers))
    assert result.exit_code == 0, result.output

    # only the clips without a record were scored: one write each, none for the others
    all_records = set(run_root.glob("*/*/scores/*.json"))
    assert len(all_records) == 2 * N_CLIPS
    assert sorted(writes.paths) == sorted(all_records - done)
    after = _stamps(run_root)
    assert {p: after[p] for p in before} == before  # records and states left untouched
    assert any(p.suffix == ".npz" for p in before)  # states were checked too

    # and the same results as the uninterrupted run
    ref_root = ref_base / "runs" / "synthetic"
    for table in sorted(ref_root.glob("*/*/scores.csv")):
        assert (run_root / table.relative_to(ref_root)).read_text() == table.read_text()
    assert (base / "lb" / "synthetic.csv").read_text() == \
        (ref_base / "lb" / "synthetic.csv").read_text()
