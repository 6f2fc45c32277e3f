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
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.fileio import atomic_save_npz, atomic_write_json

DONE = "done.json"
"""The marker file of a cached folder, written after everything else in it."""


def read_json(path: Path, key: str) -> dict[str, Any] | None:
    """The JSON record at ``path`` when it was written for ``key``; else None."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    return record


def write_json(path: Path, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` with its ``key`` atomically; returns what was written."""
    record = {"key": key, **{k: v for k, v in record.items() if k != "key"}}
    atomic_write_json(path, record)
    return record


def npz_key(path: Path) -> str | None:
    """The key stored in an ``.npz`` record; None when missing or unreadable."""
    try:
        with np.load(path) as data:
            return str(data["key"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def read_npz(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays of the ``.npz`` record at ``path`` when it was written for ``key``."""
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                return None
            return {name: data[name] for name in data.files if name != "key"}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def write_npz(path: Path, key: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and their ``key`` as one compressed ``.npz``, atomically."""
    atomic_save_npz(path, key=np.array(key), **arrays)


def read_folder(folder: Path, key: str) -> dict[str, Any] | None:
    """The ``done.json`` record of a cached folder written for ``key``; else None."""
    return read_json(Path(folder) / DONE, key)


def write_folder(folder: Path, key: str, fill: Callable[[Path], dict[str, Any] | None]
                 ) -> dict[str, Any]:
    """Build a cached folder: ``fill(tmp)`` writes the content into an empty temporary folder
    beside ``folder`` and returns the record for ``done.json``; the marker is written last and
    the temporary folder replaces ``folder``. The temporary name is unique per call, so two
    processes filling the same folder do not write into each other's files."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        record = write_json(tmp / DONE, key, fill(tmp) or {})
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record
