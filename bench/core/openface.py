"""Read AU occurrence from OpenFace 2.x ``FeatureExtraction`` CSV files (seed 004's labeller).

Seed 004 (Chen et al., Sect. 4.1 and 5) labels the speech-related AUs of every frame, real and
generated, with OpenFace 2.0 (Baltrusaitis et al. 2018). talkbench cannot run OpenFace (a C++
tool), but reads the CSVs a user made with it, e.g.::

    FeatureExtraction -f clip.mp4 -aus -out_dir openface/

OpenFace writes one row per frame; the header separates names with ", ", so the names carry a
leading space (`` AU10_c``): ``frame`` (1-based), ``face_id`` (FeatureExtraction: 0),
``timestamp``, ``confidence``, ``success`` (0 when tracking failed), then the AU intensities
``AUxx_r`` (0-5) and the AU presence columns ``AUxx_c`` (0 or 1), among others. The presence
columns of AU10, AU14, AU20, AU25 and AU26 are the occurrence labels seed 004 uses.

Frames where ``success`` is 0 (or ``confidence`` is below the caller's minimum) carry no label
(``valid`` False): OpenFace writes zeros there, which would read as "AU absent".

Users: the AU metric (`bench.metrics.au`, ``bench score --openface-pred/--openface-gt``) and
the ``au-tcsan`` generator's training labels (`bench.adapters.au_tcsan`, ``--openface`` of
``bench run`` / ``bench train``). Pure file reading (numpy only), so it lives in
``bench.core``, which the adapter layer may import (`bench.judges.openface` re-exports it).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bench.core.au_rules import AUS, AULabels

PRESENCE_COLUMNS: tuple[str, ...] = tuple(f"{au}_c" for au in AUS)
"""OpenFace's presence column of each AU in `bench.core.au_rules.AUS` order."""

REQUIRED = ("frame", "success", *PRESENCE_COLUMNS)


class OpenFaceError(ValueError):
    """A CSV that cannot be read as OpenFace output; the message names the file and why."""


def read_openface_csv(path: str | Path, *, face_id: int | None = None,
                      min_confidence: float = 0.0) -> AULabels:
    """Per-frame occurrence of AU10, AU14, AU20, AU25, AU26 from an OpenFace CSV.

    Row ``frame`` k goes to index k - 1; frames the file does not list, frames with
    ``success`` 0 and frames with ``confidence`` below ``min_confidence`` are not valid.
    A presence value of 0.5 or more counts as present. Files of several faces
    (``FaceLandmarkVidMulti``) need ``face_id``. Raises OpenFaceError when a required column
    (``frame``, ``success``, ``AU10_c`` ... ``AU26_c``) is missing or a value is unreadable.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as err:
        raise OpenFaceError(f"{path}: cannot read ({err.strerror or err})") from err
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise OpenFaceError(f"{path}: empty file, expected an OpenFace CSV with a header")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in REQUIRED if name not in header]
    if min_confidence > 0 and "confidence" not in header:
        missing.append("confidence")
    if missing:
        raise OpenFaceError(f"{path}: not an OpenFace AU file, missing column(s) "
                            f"{', '.join(missing)} (run FeatureExtraction with -aus)")
    col = {name: header.index(name) for name in header}
    body = rows[1:]
    if not body:
        raise OpenFaceError(f"{path}: no frames (header only)")

    def numbers(name: str) -> np.ndarray:
        try:
            return np.array([float(row[col[name]]) for row in body], dtype=np.float64)
        except (ValueError, IndexError) as err:
            raise OpenFaceError(f"{path}: unreadable value in column {name} ({err})") from err

    if "face_id" in col:
        ids = numbers("face_id").astype(np.int64)
        distinct = sorted(set(ids.tolist()))
        if face_id is None and len(distinct) > 1:
            raise OpenFaceError(f"{path}: rows of {len(distinct)} faces (face_id "
                                f"{', '.join(map(str, distinct))}); choose one with face_id")
        keep = ids == (distinct[0] if face_id is None else face_id)
        if not keep.any():
            raise OpenFaceError(f"{path}: no rows with face_id {face_id}")
        body = [row for row, k in zip(body, keep, strict=True) if k]
    frames = numbers("frame").astype(np.int64)
    if frames.min() < 1:
        raise OpenFaceError(f"{path}: frame numbers start at 1 in OpenFace, found {frames.min()}")
    if np.unique(frames).size != frames.size:
        raise OpenFaceError(f"{path}: a frame number appears twice")
    ok = numbers("success") >= 0.5
    if min_confidence > 0:
        ok &= numbers("confidence") >= min_confidence
    present = np.stack([numbers(name) >= 0.5 for name in PRESENCE_COLUMNS], axis=1)

    n = int(frames.max())
    occurrence = np.zeros((n, len(AUS)), dtype=bool)
    valid = np.zeros(n, dtype=bool)
    occurrence[frames - 1] = present
    valid[frames - 1] = ok
    return AULabels(occurrence=occurrence, valid=valid, source="openface")


def csv_digest(paths: Iterable[str | Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (in the order given): what a model trained
    on their labels depends on, for its checkpoint key."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
