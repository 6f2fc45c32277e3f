"""One content-addressed cache for every stage of a run (SPEC 7: cached by content, resumable).

A cached result is one file (or one folder) per record, and it carries the *key* it was
computed for: a hash of everything the result depends on (``bench.provenance.stable_hash`` of
configs, split versions, the cache keys of the input clips, ...). Reading asks for a key and
gets the record only when the stored key equals it; a missing file, an unreadable file and a
file of another key all read as "not cached", so the caller recomputes and overwrites it.
Writes are atomic (a temporary file or folder renamed into place), so a killed run leaves
either the finished record or none.

Three shapes, one rule:

- JSON records: ``{"key": ..., **record}`` (per-clip scores, judge reports);
- ``.npz`` arrays with a ``key`` array beside the data (generated frames, metric states);
- folders with a ``done.json`` marker written last (checkpoints).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.fileio import atomic_save_npz, atomic_write_json

DONE = "done.json"
"""The marker file of a cached folder, written after everything else in it."""


Report = Callable[[str], None]
"""Where a damaged record is reported (one line), e.g. the run's ``echo``."""

UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What reading a damaged (truncated, zero-byte, overwritten) file can raise."""


def default_cache_dir() -> Path:
    """The cache root of every stage and judge: ``$TALKBENCH_CACHE`` or
    ``~/.cache/talkbench``."""
    return Path(os.environ.get("TALKBENCH_CACHE", Path.home() / ".cache" / "talkbench"))


def report_damaged(path: Path, err: BaseException, report: Report | None) -> None:
    """A record that exists but cannot be read: say so in one line and remove it, so that it
    is recomputed (a missing record is simply not cached and says nothing)."""
    if report is not None:
        report(f"warning: {path}: unreadable ({type(err).__name__}: "
               f"{str(err).splitlines()[0] if str(err) else 'no detail'}); removed, recomputing")
    Path(path).unlink(missing_ok=True)


def read_json(path: Path, key: str, report: Report | None = None) -> dict[str, Any] | None:
    """The JSON record at ``path`` when it was written for ``key``; else None."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except UNREADABLE as err:
        report_damaged(path, err, report)
        return None
    if not isinstance(record, dict):
        report_damaged(path, ValueError("not a JSON object"), report)
        return None
    return record if record.get("key") == key else None


def write_json(path: Path, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` with its ``key`` atomically; returns what was written."""
    record = {"key": key, **{k: v for k, v in record.items() if k != "key"}}
    atomic_write_json(path, record)
    return record


def npz_key(path: Path, report: Report | None = None) -> str | None:
    """The key stored in an ``.npz`` record; None when missing or unreadable."""
    try:
        with np.load(path) as data:
            return str(data["key"])
    except FileNotFoundError:
        return None
    except UNREADABLE as err:
        report_damaged(path, err, report)
        return None


def read_npz(path: Path, key: str, report: Report | None = None
             ) -> dict[str, np.ndarray] | None:
    """The arrays of the ``.npz`` record at ``path`` when it was written for ``key``."""
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                return None
            return {name: data[name] for name in data.files if name != "key"}
    except FileNotFoundError:
        return None
    except UNREADABLE as err:
        report_damaged(path, err, report)
        return None


def write_npz(path: Path, key: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and their ``key`` as one compressed ``.npz``, atomically."""
    atomic_save_npz(path, key=np.array(key), **arrays)


def read_folder(folder: Path, key: str, report: Report | None = None) -> dict[str, Any] | None:
    """The ``done.json`` record of a cached folder written for ``key``; else None."""
    return read_json(Path(folder) / DONE, key, report)


def write_folder(folder: Path, key: str, fill: Callable[[Path], dict[str, Any] | None]
                 ) -> dict[str, Any]:
    """Build a cached folder: ``fill(tmp)`` writes the content into an empty temporary folder
    beside ``folder`` and returns the record for ``done.json``; the marker is written last and
    the temporary folder replaces ``folder``. The temporary name is unique per call, so two
    processes filling the same folder do not write into each other's files."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(folder.parent)
    tmp = folder.with_name(f".{folder.name}-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        record = write_json(tmp / DONE, key, fill(tmp) or {})
        _swap_in(tmp, folder, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def _swap_in(tmp: Path, folder: Path, key: str, attempts: int = 5) -> None:
    """Put the finished ``tmp`` in ``folder``'s place. A directory cannot be renamed onto a
    non-empty one, so the old folder is first moved aside; when another process swaps in its
    own folder in between, that one stays if it was written for the same key (it holds the same
    result), else the swap is tried again."""
    for _ in range(attempts):
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(folder, old)
        except FileNotFoundError:
            pass  # no old folder (or another process just moved it aside)
        try:
            os.replace(tmp, folder)
            return
        except OSError:
            if read_folder(folder, key) is not None:
                return  # another process finished the same record first
        finally:
            shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"{folder}: could not be replaced (other processes keep writing it)")


STALE_TEMP = re.compile(r"^\..+-(tmp|old)-(\d+)(-[0-9a-f]+)?$")
"""Temporary names of atomic folder writes: ``.<name>-tmp-<pid>[-<random>]`` and
``.<name>-old-<pid>-<random>`` (`write_folder`, the judge store)."""


def sweep_stale(directory: Path) -> list[Path]:
    """Remove the temporary folders that killed processes left in ``directory`` (names of
    `STALE_TEMP` whose pid no longer runs); returns what was removed. Those of running
    processes are left alone."""
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for path in entries:
        match = STALE_TEMP.match(path.name)
        if match and not pid_running(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def pid_running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
