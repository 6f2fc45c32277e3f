"""The clip record that flows through the whole harness (SPEC 4.1).

A clip is a speaker's utterance: video frames (T, H, W, 3) uint8 RGB at 25 fps and mono
float32 audio at 16 kHz, aligned so that frame ``t`` covers audio samples
``[640 t, 640 (t + 1))``.

Alignment rule (``align_audio``): the video defines the clip's length. Audio longer than
``T * 640`` samples is cut at the end; shorter audio is padded at the end with zeros. The
number of samples cut (positive) or padded (negative) is kept in ``Clip.audio_offset_samples``
so a large mismatch is visible rather than silently absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import SAMPLES_PER_FRAME, VIDEO_FPS


@dataclass(frozen=True)
class ClipRef:
    """Where a clip lives on disk and what its name says; no media is read."""

    dataset: str
    speaker: str
    clip_id: str
    video: Path | None
    audio: Path | None = None  # separate audio file (CREMA-D AudioWAV); None: the video's track
    emotion: str | None = None
    intensity: str | None = None
    transcript: str | None = None
    truth: Path | None = None  # synthetic corpus only: JSON with what was synthesised

    @property
    def key(self) -> str:
        """Unique name of the clip within its dataset."""
        return self.clip_id


@dataclass
class Clip:
    """One utterance: frames and audio aligned at 25 fps / 16 kHz, plus its labels."""

    speaker: str
    clip_id: str
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, 25 fps
    audio: np.ndarray  # (T * 640,) float32 mono, 16 kHz
    emotion: str | None = None
    intensity: str | None = None
    transcript: str | None = None
    landmarks: np.ndarray | None = None  # (T, 68, 2) float32 (x, y), or None
    audio_offset_samples: int = 0  # >0: samples cut from the end; <0: zeros padded
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be (T,H,W,3) uint8, got {self.frames.shape} "
                             f"{self.frames.dtype}")
        expected = self.frames.shape[0] * SAMPLES_PER_FRAME
        if self.audio.shape != (expected,):
            raise ValueError(f"audio must have {expected} samples for {self.frames.shape[0]} "
                             f"frames, got {self.audio.shape}; use align_audio()")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / VIDEO_FPS


def align_audio(audio: np.ndarray, num_frames: int) -> tuple[np.ndarray, int]:
    """Cut or zero-pad ``audio`` at its end to ``num_frames * 640`` samples.

    Returns the aligned float32 audio and the offset (samples cut, or minus samples padded).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    target = num_frames * SAMPLES_PER_FRAME
    offset = audio.shape[0] - target
    if offset >= 0:
        return audio[:target].copy(), offset
    return np.concatenate([audio, np.zeros(-offset, np.float32)]), offset


def frames_for_audio(num_samples: int) -> int:
    """Number of 25 fps frames that an audio of ``num_samples`` at 16 kHz spans (rounded up)."""
    return max(1, -(-int(num_samples) // SAMPLES_PER_FRAME))
