"""The OpenFace 2.x CSV reader (seed 004's labeller): moved to :mod:`bench.core.openface`
(plain file reading, which the ``au-tcsan`` generator's training labels also need, and
adapters may not import ``bench.judges``). Every name stays importable from here."""

from __future__ import annotations

from bench.core.openface import (
    PRESENCE_COLUMNS,
    REQUIRED,
    OpenFaceError,
    csv_digest,
    read_openface_csv,
)

__all__ = ["PRESENCE_COLUMNS", "REQUIRED", "OpenFaceError", "csv_digest", "read_openface_csv"]
