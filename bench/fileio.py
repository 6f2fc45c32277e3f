"""Atomic file writes: a finished file or none, never a partial one; strict JSON.

JSON files written here are strict JSON (RFC 8259): no ``NaN``/``Infinity`` literals, so any
JSON parser reads them. A non-finite float is written as one of the strings ``"nan"``,
``"inf"`` or ``"-inf"`` (`strict_json_value`), wherever it occurs; a reader that expects a
number turns such a string back into the float with `json_number` (``float()`` accepts these
spellings too). Finite floats are written as Python's ``repr`` (round-trip
exact).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)  # read the process umask once (setting it is the only way to read it)


def usual_mode(tmp: str) -> None:
    """Give a ``mkstemp`` file (created 0600) the mode an ordinary ``open`` would give it."""
    os.chmod(tmp, 0o666 & ~_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
"""How non-finite floats are spelled in talkbench's JSON files, and their values."""


def _non_finite_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def strict_json_value(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``"nan"``, ``"inf"`` or ``"-inf"``;
    numpy scalars and arrays become Python numbers and lists, paths strings, tuples lists."""
    if isinstance(obj, dict):
        return {key: strict_json_value(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return strict_json_value(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return strict_json_value(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return _non_finite_text(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_number(value: Any) -> float | None:
    """A number read from talkbench JSON: ints and floats as floats, ``"nan"``/``"inf"``/
    ``"-inf"`` as the non-finite floats they stand for; anything else (None, other strings,
    booleans) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


def _json_default(value: Any) -> Any:
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps_json(obj: Any) -> str:
    """Strict JSON text of ``obj`` (indent 2, newline at the end); see the module docstring
    for how non-finite floats are written."""
    return json.dumps(strict_json_value(obj), indent=2, allow_nan=False,
                      default=_json_default) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON (`dumps_json`): non-finite floats become ``"nan"``,
    ``"inf"`` or ``"-inf"`` strings, never ``NaN``/``Infinity`` literals."""
    return atomic_write_text(path, dumps_json(obj))


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` to a temporary file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
