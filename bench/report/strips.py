"""Frame strips: PNG images of generated frames over real ones, for people to look at.

``strip_<clip>.png`` in a model's run folder shows the generated frames (top) over the
ground-truth frames, every 5th frame; for a model that uses the emotion under the emotion
sweep, ``strip_<clip>_emotions.png`` has one row per requested emotion (`bench.EMOTIONS`
order) and the real clip last. Each row is labelled on its left.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import EMOTIONS
from bench.fileio import usual_mode

STRIP_LABEL_WIDTH = 84
"""Pixels of the white band on the left of a strip that names each row."""

STRIP_EVERY = 5
"""Every how many frames a strip shows one."""

STRIP_FRAMES = 12
"""Frames per strip row at most."""


def write_strips(model_dir: Path, clip_id: str, pred: np.ndarray, real: np.ndarray,
                 by_emotion: dict[str, np.ndarray] | None = None,
                 real_emotion: str | None = None) -> list[Path]:
    """The strips of one clip in ``model_dir``; ``by_emotion`` (requested emotion -> frames)
    adds the emotion strip. Returns the files written."""
    idx = np.arange(0, min(len(pred), len(real)), STRIP_EVERY)[:STRIP_FRAMES]
    paths = [model_dir / f"strip_{clip_id}.png"]
    save_png(paths[0], strip([pred, real], idx, ["generated", "real"]))
    if by_emotion:
        paths.append(model_dir / f"strip_{clip_id}_emotions.png")
        save_png(paths[1], strip([by_emotion[e] for e in EMOTIONS] + [real], idx,
                                 [f"as {e}" for e in EMOTIONS] + [f"real ({real_emotion})"]))
    return paths


def strip(videos: Sequence[np.ndarray], idx: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Frames ``idx`` of each video side by side, one video per row, each row named by its
    label on a white band on the left."""
    from PIL import Image, ImageDraw

    rows = []
    for video, label in zip(videos, labels, strict=True):
        row = np.concatenate(list(video[idx]), axis=1)
        band = Image.new("RGB", (STRIP_LABEL_WIDTH, row.shape[0]), "white")
        ImageDraw.Draw(band).text((4, row.shape[0] // 2 - 6), label, fill="black")
        rows.append(np.concatenate([np.asarray(band), row], axis=1))
    return np.concatenate(rows, axis=0)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically, through a temporary name unique to this call."""
    from PIL import Image

    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        Image.fromarray(image).save(tmp, format="PNG")
        usual_mode(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
