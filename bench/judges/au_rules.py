"""The harness's landmark rules for the speech-related AUs (seed 004): moved to
:mod:`bench.core.au_rules` (pure landmark geometry, which the ``au-tcsan`` generator's
training labels also need, and generators may not import ``bench.judges``). Every name stays
importable from here, so the AU metric, the AU classifier judge and the OpenFace reader keep
their imports."""

from __future__ import annotations

from bench.core.au_rules import (
    AUS,
    COUNT_NAMES,
    MIN_FRAMES,
    REST_PERCENTILE,
    THRESHOLDS,
    AULabels,
    au_counts,
    au_rules,
    au_scores,
    describe,
    eye_frame,
    face_geometry,
    rest_frames,
)

__all__ = ["AUS", "COUNT_NAMES", "MIN_FRAMES", "REST_PERCENTILE", "THRESHOLDS", "AULabels",
           "au_counts", "au_rules", "au_scores", "describe", "eye_frame", "face_geometry",
           "rest_frames"]
