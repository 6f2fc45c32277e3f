"""OpenFace 2.x FeatureExtraction CSVs for tests (issue 15): written from per-frame AU
occurrence, e.g. the synthetic corpus's synthesised AU truth, in the layout
`bench.core.openface.read_openface_csv` reads (", " separators, so the names after the first
carry a leading space; AU intensity ``_r`` and presence ``_c`` columns in OpenFace's order)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench.core.au_rules import AUS
from bench.data.clip import ClipRef

_AU_R = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23",
         "25", "26", "45")
_AU_C = _AU_R[:-1] + ("28", "45")


def write_openface_csv(path: str | Path, occurrence: np.ndarray,
                       success: np.ndarray | None = None) -> Path:
    """One FeatureExtraction CSV: ``occurrence`` ``(T, 5)`` (AU10, 14, 20, 25, 26 in `AUS`
    order) as the ``AUxx_c`` presence columns, every other AU absent; ``success`` ``(T,)``
    (default: all 1) marks the frames OpenFace tracked."""
    occurrence = np.asarray(occurrence).astype(bool)
    n = occurrence.shape[0]
    ok = np.ones(n, dtype=bool) if success is None else np.asarray(success, dtype=bool)
    names = (["frame", "face_id", "timestamp", "confidence", "success"]
             + [f"AU{a}_r" for a in _AU_R] + [f"AU{a}_c" for a in _AU_C])
    lines = [", ".join(names)]
    for t in range(n):
        present = {f"AU{a}_c": 0.0 for a in _AU_C}
        for i, au in enumerate(AUS):
            present[f"{au}_c"] = float(occurrence[t, i])
        row = [str(t + 1), "0", f"{t * 0.04:.3f}", "0.98" if ok[t] else "0.00",
               str(int(ok[t]))]
        row += [f"{2.0 * present.get(f'AU{a}_c', 0.0):.2f}" for a in _AU_R]
        row += [f"{present[f'AU{a}_c']:.2f}" for a in _AU_C]
        lines.append(", ".join(row))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def truth_occurrence(ref: ClipRef) -> np.ndarray:
    """The synthetic clip's synthesised AU occurrence (its truth JSON's ``au``, 25 fps):
    ``(T, 5)`` bool in `AUS` order."""
    if ref.truth is None:
        raise ValueError(f"{ref.clip_id}: no truth JSON (not a synthetic clip)")
    au = json.loads(Path(ref.truth).read_text())["au"]
    return np.stack([np.asarray(au[name], dtype=bool) for name in AUS], axis=1)


def truth_as_openface(refs: Iterable[ClipRef], folder: str | Path) -> Path:
    """``folder/<clip_id>.csv`` for every synthetic clip, its truth written as OpenFace
    output (what a perfect OpenFace would say)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for ref in refs:
        write_openface_csv(folder / f"{ref.clip_id}.csv", truth_occurrence(ref))
    return folder
