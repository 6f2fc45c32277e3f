"""``still-image``: repeats the identity image for every frame.

The lower bound every table should show: no motion, no sync, perfect identity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.adapters.base import Adapter
from bench.data.clip import Clip


class StillImage(Adapter):
    name = "still-image"
    paper = "baseline: the identity image repeated (no generator)"
    trainable = False

    def fit(self, train: Sequence[Clip], val: Sequence[Clip] | None, budget: str) -> dict:
        return {"steps": 0, "note": "nothing to learn"}

    def generate(self, image: np.ndarray, audio: np.ndarray, emotion: str | None) -> np.ndarray:
        image = np.asarray(image, dtype=np.uint8)
        return np.repeat(image[None], self.num_frames(audio), axis=0)

    def save(self, directory: Path) -> None:
        (Path(directory) / "still_image.json").write_text(json.dumps(self.config()))

    def load(self, directory: Path) -> None:
        json.loads((Path(directory) / "still_image.json").read_text())
