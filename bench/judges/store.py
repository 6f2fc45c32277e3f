"""Learned judges the harness trains itself, and where their weights live (SPEC 5).

A trainable judge (the SyncNet behind LSE, the emotion classifier behind EmoAcc, the AU
classifier) is one module with three functions, registered in `JUDGES` by one line:

``train(train, val, out_dir, *, budget, device, seed, progress) -> dict``
    Train from scratch on prepared clips (sequences of `bench.data.clip.Clip`, loaded lazily),
    write everything ``load`` needs into ``out_dir`` (it exists and is empty), and return a
    small log (plain JSON values; put the judge's own validation quality there).
``load(directory, device) -> object``
    The trained judge, ready for inference on ``device``.
``evaluate(judge, clips, *, device) -> dict``
    The judge's own quality on real clips (accuracy, F1, LSE of the real videos, ...); used by
    ``bench judges report`` on the test split, plain JSON values.

Trained judges are cached per dataset: ``<cache>/judges/<name>/<dataset>/`` holds the weights
and ``done.json`` (what it was trained on, the budget, the log, a hash of every file). Training
writes into a temporary folder that replaces the old one only when finished, so a killed
training never leaves a half-written judge. A metric asks `trained_judge` for the judge of
the dataset it is scoring and names it in its provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fileio import atomic_write_json
from bench.registry import Registry

JUDGES = Registry("judge")
"""Name -> module implementing train/load/evaluate (see the module docstring)."""
JUDGES.add("au", "bench.judges.au_classifier")
JUDGES.add("emotion", "bench.judges.emotion_classifier")
JUDGES.add("syncnet", "bench.judges.syncnet_train")


@dataclass(frozen=True)
class TrainedJudge:
    """A judge found in the cache: its folder and its ``done.json`` record."""

    name: str
    dataset: str
    directory: Path
    record: dict[str, Any]

    def load(self, device: str | Any) -> Any:
        """The judge module's ``load`` on this folder."""
        return judge_module(self.name).load(self.directory, device)

    def describe(self) -> str:
        """One line for provenance: what it is, what it was trained on, the weights' hash."""
        rec = self.record
        return (f"talkbench-trained {self.name} on {rec.get('dataset')}/{rec.get('split')} train "
                f"({rec.get('n_train')} clips, {rec.get('budget')} budget), weights sha256 "
                f"{rec.get('weights_sha256', '?')[:12]}")


def judge_module(name: str) -> Any:
    """The module registered as judge ``name`` (import on first use)."""
    return JUDGES.get(name)


def default_cache_dir() -> Path:
    """``$TALKBENCH_CACHE`` or ``~/.cache/talkbench``."""
    return Path(os.environ.get("TALKBENCH_CACHE", Path.home() / ".cache" / "talkbench"))


def judge_dir(name: str, dataset: str, cache_dir: Path | None = None) -> Path:
    """Where the judge ``name`` trained on ``dataset`` lives."""
    return Path(cache_dir or default_cache_dir()) / "judges" / name / dataset


def trained_judge(name: str, dataset: str | None,
                  cache_dir: Path | None = None) -> TrainedJudge | None:
    """The finished judge ``name`` for ``dataset`` in the cache, or None."""
    if dataset is None:
        return None
    folder = judge_dir(name, dataset, cache_dir)
    done = folder / "done.json"
    if not done.exists():
        return None
    try:
        record = json.loads(done.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return TrainedJudge(name, dataset, folder, record)


def folder_sha256(folder: Path) -> str:
    """One hash over every file in ``folder`` (names and bytes, sorted; done.json excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "done.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def store_trained(name: str, dataset: str, train_fn, *, record: dict[str, Any],
                  cache_dir: Path | None = None, **train_kwargs: Any) -> TrainedJudge:
    """Run ``train_fn(out_dir=tmp, **train_kwargs)`` and install the result atomically.

    ``record`` (split, train key, budget, clip counts, ...) goes into ``done.json`` with the
    training log, the wall time and the weights' hash.
    """
    final = judge_dir(name, dataset, cache_dir)
    tmp = final.with_name(f".{final.name}-tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        log = train_fn(out_dir=tmp, **train_kwargs) or {}
        full = {"judge": name, "dataset": dataset, **record, "log": log,
                "wall_s": round(time.perf_counter() - start, 3),
                "weights_sha256": folder_sha256(tmp),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write_json(tmp / "done.json", full)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TrainedJudge(name, dataset, final, full)
