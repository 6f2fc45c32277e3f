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
    The judge's own quality on real clips (accuracy, F1, LSE of the real videos, ...) and the
    chance level of that figure (``chance``), so that a judge that learned nothing shows it;
    used by ``bench judges report`` on the test split, plain JSON values.

A module may also define ``FORMAT_VERSION`` and ``BUDGETS`` (name -> the budget's settings):
both go into the judge's key, so a change of the judge's code format or of a budget's settings
trains a new judge.

Keyed by what it saw. A trained judge is cached under
``<cache>/judges/<name>/<dataset>/<key>/`` with ``key = judge_key(name, identity)``: the
*train identity* (`train_identity`: dataset, the dataset root's hash, split name and version,
budget, seed, the cache keys of the train and validation clips) plus the judge's code version
and budget settings. Judges of other splits, budgets, roots or seeds live side by side and are
never reused for one another. ``done.json`` (written last) records the identity, the train and
validation speakers, the log, the wall time and a hash of every file.

Never on speakers it saw. `trained_judge` is given the speakers of the clips it will score
(``test_speakers``); a judge whose recorded train or validation speakers overlap them is
refused when it is loaded (`TrainedJudge.load` raises ``error``, one line naming the judge and
the speakers). Official weights files (SyncNet's ``syncnet_v2.model``, Inception) are not
harness-trained and are not looked up here.

Damaged judges heal. A ``done.json`` that cannot be read, or weights whose hash differs from
the one recorded (a truncated or zero-byte file), is reported in one line on stderr and the
judge folder removed; the lookup then says "not trained", and the runner trains it again.

Concurrency. Training writes into a temporary folder unique per process and call
(``.<key>-tmp-<pid>-<random>``) that replaces the judge folder only when finished
(`bench.core.cache.write_folder`); two processes training the same judge both end with one
complete folder. Temporary folders of processes that no longer run are swept before training
and at lookup.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core import cache
from bench.provenance import stable_hash
from bench.registry import Registry

JUDGES = Registry("judge")
"""Name -> module implementing train/load/evaluate (see the module docstring)."""
JUDGES.add("au", "bench.judges.au_classifier")
JUDGES.add("emotion", "bench.judges.emotion_classifier")
JUDGES.add("syncnet", "bench.judges.syncnet_train")
JUDGES.add("lipnet", "bench.judges.lipnet")

UNKEYED = "unkeyed"
"""Folder of a judge stored without a train identity (tests, hand-made judges)."""


class JudgeRefused(RuntimeError):
    """A judge asked to score clips of speakers it was trained (or validated) on."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TrainedJudge:
    """A judge found in the cache: its folder and its ``done.json`` record, and the speakers
    of the clips it is about to score (``test_speakers``; empty: unknown, nothing checked)."""

    name: str
    dataset: str
    directory: Path
    record: dict[str, Any]
    test_speakers: frozenset[str] = field(default_factory=frozenset)
    error: type[Exception] = JudgeRefused

    def seen_speakers(self) -> frozenset[str]:
        """The speakers whose clips trained or validated the judge (as recorded)."""
        rec = self.record
        return frozenset(str(s) for s in [*(rec.get("train_speakers") or []),
                                          *(rec.get("val_speakers") or [])])

    def refusal(self) -> str | None:
        """Why this judge must not score the test speakers (one line), or None."""
        overlap = sorted(self.seen_speakers() & {str(s) for s in self.test_speakers})
        if not overlap:
            return None
        shown = ", ".join(overlap[:12]) + (f" and {len(overlap) - 12} more"
                                           if len(overlap) > 12 else "")
        rec = self.record
        return (f"judge {self.name} ({self.directory.name}, trained on "
                f"{rec.get('dataset')}/{rec.get('split')} train) saw test speakers {shown}: "
                f"refused, a judge never scores speakers it trained on")

    def check(self) -> None:
        """Raise ``error`` when the judge saw any of the test speakers."""
        reason = self.refusal()
        if reason is not None:
            raise self.error(reason)

    def load(self, device: str | Any) -> Any:
        """The judge module's ``load`` on this folder (after `check`)."""
        self.check()
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


def judge_dir(name: str, dataset: str, cache_dir: Path | None = None) -> Path:
    """The folder holding every judge ``name`` trained on ``dataset`` (one sub-folder a key)."""
    return Path(cache_dir or cache.default_cache_dir()) / "judges" / name / dataset


# ---------------------------------------------------------------------------------------------
# Keys


def train_identity(*, dataset: str, root_hash: str, split: str, split_version: Any,
                   budget: str, seed: int, train_keys: Iterable[str],
                   val_keys: Iterable[str] = ()) -> str:
    """One hash of everything a judge trained on a run's train part depends on, besides the
    judge itself (see the module docstring)."""
    return stable_hash({"dataset": dataset, "root": root_hash, "split": split,
                        "split_version": split_version, "budget": budget, "seed": seed,
                        "train": sorted(train_keys), "val": sorted(val_keys)})


def judge_version(name: str, budget: str | None) -> str:
    """The judge's code format and the settings of ``budget`` (``FORMAT_VERSION`` and
    ``BUDGETS[budget]`` of its module, when it has them)."""
    module = judge_module(name)
    budgets = getattr(module, "BUDGETS", None)
    settings = repr(budgets.get(budget)) if isinstance(budgets, dict) else None
    return stable_hash([getattr(module, "FORMAT_VERSION", None), settings])[:12]


def judge_key(name: str, identity: str, budget: str | None) -> str:
    """The folder name of judge ``name`` trained with train identity ``identity``."""
    return stable_hash([name, identity, judge_version(name, budget)])[:20]


# ---------------------------------------------------------------------------------------------
# Lookup


_VERIFIED: dict[str, tuple] = {}
"""Judge folder -> the stat signature of its files when their hash was last checked."""


def _signature(folder: Path) -> tuple:
    return tuple(sorted((p.relative_to(folder).as_posix(), p.stat().st_size,
                         p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


def _read_judge(folder: Path, key: str | None, report: Callable[[str], None]
                ) -> dict[str, Any] | None:
    """The ``done.json`` record of a finished judge folder whose files are intact; a damaged
    one is reported, removed and reads as None."""
    done = folder / cache.DONE
    if not done.exists():
        return None
    try:
        for attempt in range(3):
            text = done.read_text()
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if key is not None and record.get("key") not in (None, key):
                return None
            signature = _signature(folder)
            if _VERIFIED.get(str(folder)) == signature:
                break
            expected = record.get("weights_sha256")
            if expected is None or folder_sha256(folder) == expected:
                _VERIFIED[str(folder)] = signature
                break
            if _signature(folder) == signature and done.read_text() == text:
                raise ValueError("its files differ from the recorded hash (truncated or "
                                 "overwritten weights)")
            time.sleep(0.1 * (attempt + 1))  # another process swapped the folder meanwhile
        else:
            return None  # still changing: not usable now, not called damaged
    except FileNotFoundError:
        return None  # another process swapping the folder: not there now
    except (OSError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        report(f"warning: judge folder {folder} is damaged ({detail}); removed, the judge "
               f"will be trained again")
        _VERIFIED.pop(str(folder), None)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return record


def trained_judge(name: str, dataset: str | None, cache_dir: Path | None = None, *,
                  key: str | None = None, test_speakers: Iterable[str] = (),
                  error: type[Exception] = JudgeRefused,
                  report: Callable[[str], None] = _stderr) -> TrainedJudge | None:
    """The finished judge ``name`` for ``dataset`` in the cache, or None.

    ``key`` (`judge_key`): exactly the judge trained with that identity; None: the most
    recently trained judge of the dataset, whatever it saw (``bench score --dataset``, which
    scores folders outside any split). ``test_speakers``: the speakers of the clips it will
    score; `TrainedJudge.load` raises ``error`` when the judge saw any of them.
    """
    if dataset is None:
        return None
    base = judge_dir(name, dataset, cache_dir)
    if not base.is_dir():
        return None
    cache.sweep_stale(base)
    if key is not None:
        candidates = [base / key]
    else:
        candidates = sorted((p for p in base.iterdir() if (p / cache.DONE).is_file()),
                            key=lambda p: (p / cache.DONE).stat().st_mtime_ns, reverse=True)
    for folder in candidates:
        record = _read_judge(folder, key, report)
        if record is not None:
            return TrainedJudge(name, dataset, folder, record, frozenset(test_speakers), error)
    return None


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
                  cache_dir: Path | None = None, key: str | None = None,
                  **train_kwargs: Any) -> TrainedJudge:
    """Run ``train_fn(out_dir=tmp, **train_kwargs)`` and install the result atomically as
    the judge ``<cache>/judges/<name>/<dataset>/<key>/`` (``key`` None: ``unkeyed``).

    ``record`` (split, train identity, speakers, budget, clip counts, ...) goes into
    ``done.json`` with the training log, the wall time and the weights' hash.
    """
    base = judge_dir(name, dataset, cache_dir)
    base.mkdir(parents=True, exist_ok=True)
    cache.sweep_stale(base)
    cache.sweep_stale(base.parent)  # the temporary folders of the one-folder-per-dataset layout
    final = base / (key or UNKEYED)

    def fill(tmp: Path) -> dict[str, Any]:
        start = time.perf_counter()
        log = train_fn(out_dir=tmp, **train_kwargs) or {}
        return {"judge": name, "dataset": dataset, **record, "log": log,
                "wall_s": round(time.perf_counter() - start, 3),
                "weights_sha256": folder_sha256(tmp),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    full = cache.write_folder(final, key or UNKEYED, fill)
    try:  # another process may have installed the same judge first: describe what is there
        installed = json.loads((final / cache.DONE).read_text())
    except (OSError, ValueError):
        installed = None
    return TrainedJudge(name, dataset, final, installed if isinstance(installed, dict)
                        else full)
