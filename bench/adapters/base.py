"""The adapter interface every generator implements (SPEC 6).

An adapter turns a generator into four calls the runner understands:

- ``fit(train, val, budget)``: train from scratch on prepared clips within a budget;
- ``generate(image, audio, emotion)``: identity image (H, W, 3) uint8, audio (N,) float32 at
  16 kHz, emotion (one of ``bench.EMOTIONS`` or None) -> frames (T, H, W, 3) uint8 at 25 fps,
  ``T = ceil(N / 640)``, at the identity image's size (the adapter resizes internally);
- ``save(directory)`` / ``load(directory)``.

A user's model plugs in by subclassing ``Adapter`` and registering it through the
``bench.adapters`` entry-point group or with ``--adapter module:Class``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.data.clip import Clip, frames_for_audio

BUDGETS: tuple[str, ...] = ("smoke", "demo", "paper")
"""smoke: seconds, tiny sizes (tests, CI); demo: minutes on a laptop CPU; paper: the paper's
sizes and schedules, for a GPU. Same code path, only sizes and step counts change."""


class Adapter:
    """Base class of every generator adapter."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""  # citation of the paper the generator reimplements
    needs_emotion: ClassVar[bool] = False  # True: generate() uses the emotion argument
    trainable: ClassVar[bool] = True  # False: fit() learns nothing (no training data needed)
    version: ClassVar[str] = "1"  # bump when a change alters what the adapter generates
    run_options: ClassVar[frozenset[str]] = frozenset()
    """Run-wide inputs the adapter takes as keyword options when the run has them
    (`bench.stages.train.fit_or_load`): ``openface``, the folder of OpenFace CSVs of the
    dataset's real videos (``--openface``), for models that learn from AU labels."""

    def __init__(self, seed: int = 0, device: str | None = None, **options: Any) -> None:
        self.seed = seed
        self.device = device
        self.options = options
        self.echo: Callable[[str], None] = _stderr
        """Where training reports a problem with its inputs, one line each (the runner sets
        the run's echo)."""

    def config(self) -> dict[str, Any]:
        """What identifies a trained model of this adapter (for caching and provenance)."""
        return {"name": self.name, "version": self.version, "seed": self.seed,
                "options": self.options}

    def data_key(self, clip_ids: Sequence[str]) -> dict[str, Any]:
        """What training on these clips depends on besides their media and `config` (e.g.
        label files from outside the dataset), for the checkpoint key; empty by default."""
        return {}

    def fit(self, train: Sequence[Clip], val: Sequence[Clip] | None, budget: str) -> dict:
        """Train on ``train`` (prepared, aligned clips); return a small training log."""
        raise NotImplementedError

    def generate(self, image: np.ndarray, audio: np.ndarray, emotion: str | None) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 at 25 fps for ``audio``, looking like ``image``."""
        raise NotImplementedError

    def save(self, directory: Path) -> None:
        """Write everything ``load`` needs into ``directory`` (which exists)."""
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        """Restore the state ``save`` wrote."""
        raise NotImplementedError

    @staticmethod
    def num_frames(audio: np.ndarray) -> int:
        """Frames a 25 fps video needs to cover ``audio`` (16 kHz)."""
        return frames_for_audio(np.asarray(audio).shape[0])


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def check_generated(frames: np.ndarray, image: np.ndarray, audio: np.ndarray) -> None:
    """Raise ValueError unless ``frames`` obey the ``generate`` contract."""
    expected = (Adapter.num_frames(audio), *image.shape)
    if frames.dtype != np.uint8 or frames.shape != expected:
        raise ValueError(f"generate() must return {expected} uint8 frames, "
                         f"got {frames.shape} {frames.dtype}")
