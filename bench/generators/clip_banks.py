"""Training clips in memory and the samplers that draw batches from them.

- :class:`ClipBank` (:func:`load_bank`): prepared clips at a generator's square size, frames
  kept as uint8, audio as float32 (every generator);
- :class:`FrameBank` (:func:`load_frame_bank`): the same at a ``frame_hw`` network frame with
  the audio padded for 0.2 s windows, and :class:`SequenceSampler` drawing runs of consecutive
  frames with the clip's first frame as the still image (Vougioukas et al. 2019's temporal GAN
  and its static baseline, seed 003).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import SAMPLES_PER_FRAME
from bench.core.training import progress_range
from bench.generators.images import resize


@dataclass
class ClipBank:
    """Training clips at the generator's resolution: per clip, frames ``(T, 3, s, s)`` uint8,
    audio ``(T * 640,)`` float32, and the emotion label (or None)."""

    frames: list[torch.Tensor]
    audio: list[np.ndarray]
    emotions: list[str | None]
    clip_ids: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def total_frames(self) -> int:
        return int(sum(f.shape[0] for f in self.frames))

    def images(self, clip: int, index: np.ndarray | Sequence[int] | slice,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Frames of one clip as float images in ``[-1, 1]``: ``(n, 3, s, s)``."""
        return self.frames[clip][index].to(device).float().div_(127.5).sub_(1.0)


def load_bank(clips: Sequence[Any], size: int, min_frames: int = 1,
              max_clips: int | None = None, progress: bool = False) -> ClipBank:
    """Read prepared clips once (``Clip.frames`` aligned crops, ``Clip.audio``), resize the
    frames to ``size`` x ``size`` and keep them as uint8. Clips shorter than ``min_frames`` are
    left out; ``max_clips`` keeps the first ones only."""
    n = len(clips) if max_clips is None else min(len(clips), max_clips)
    bank = ClipBank(frames=[], audio=[], emotions=[], clip_ids=[])
    for i in progress_range(n, progress, "load clips"):
        clip = clips[i]
        if clip.num_frames < min_frames:
            continue
        x = torch.from_numpy(np.ascontiguousarray(clip.frames)).permute(0, 3, 1, 2)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = resize(x.float(), size).round_().clamp_(0, 255).to(torch.uint8)
        bank.frames.append(x.contiguous())
        bank.audio.append(np.asarray(clip.audio, dtype=np.float32))
        bank.emotions.append(clip.emotion)
        bank.clip_ids.append(clip.clip_id)
    if not len(bank):
        raise ValueError(f"no training clip has at least {min_frames} frames "
                         f"(of {n} clips)")
    return bank


@dataclass
class FrameBank:
    """Training clips at the network's frame size: frames ``(T, 3, H, W)`` uint8 and the
    audio zero-padded by half a window in front (so frame ``t``'s audio frame starts at
    sample ``640 t + 320``)."""

    frames: list[torch.Tensor]
    padded_audio: list[np.ndarray]
    window: int

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def total_frames(self) -> int:
        return int(sum(f.shape[0] for f in self.frames))

    def windows(self, clip: int, start: int, length: int) -> np.ndarray:
        """Audio frames of frames ``start .. start + length - 1``: ``(length, window)``,
        equal to rows of :func:`audio_windows` of the clip."""
        a = SAMPLES_PER_FRAME * start + SAMPLES_PER_FRAME // 2
        b = a + SAMPLES_PER_FRAME * (length - 1) + self.window
        segment = self.padded_audio[clip][a:b]
        if segment.shape[0] < b - a:
            segment = np.pad(segment, (0, b - a - segment.shape[0]))
        view = np.lib.stride_tricks.sliding_window_view(segment, self.window)
        return view[::SAMPLES_PER_FRAME][:length]


def load_frame_bank(clips: Sequence[Any], size: int, frame_hw: tuple[int, int], window: int,
                    min_frames: int) -> FrameBank:
    """Clips with at least ``min_frames`` frames, resized to ``size`` (square) and then to
    ``frame_hw``, with their padded audio."""
    bank = load_bank(clips, size, min_frames=min_frames)
    frames = []
    for x in bank.frames:
        if tuple(x.shape[-2:]) != tuple(frame_hw):
            x = resize(x.float(), frame_hw).round_().clamp_(0, 255).to(torch.uint8)
        frames.append(x.contiguous())
    half = window // 2
    padded = [np.pad(a, (half, half + window)).astype(np.float32) for a in bank.audio]
    return FrameBank(frames=frames, padded_audio=padded, window=window)


def sequence_length(clips: Sequence[Any], wanted: int, least: int = 1) -> int:
    """``wanted``, or the longest clip's length when no clip is that long (at least
    ``least``)."""
    longest = max((c.num_frames for c in clips), default=0)
    if longest < least:
        raise ValueError(f"no training clip has at least {least} frames")
    return max(least, min(wanted, longest))


@dataclass
class SequenceBatch:
    """A training batch: still frames ``(B, 3, H, W)``, frames ``(B, L, 3, H, W)``, audio
    frames ``(B, L, window)`` (float tensors on the device), and where each sequence came from."""

    identity: torch.Tensor
    frames: torch.Tensor
    windows: torch.Tensor
    clips: np.ndarray
    starts: np.ndarray


class SequenceSampler:
    """Random runs of ``length`` consecutive frames from random clips, with the clip's first
    frame as the still image; mirrored with probability 1/2 when ``mirror``."""

    def __init__(self, bank: FrameBank, length: int, mirror: bool, device: torch.device,
                 rng: np.random.Generator) -> None:
        self.bank, self.length, self.mirror = bank, length, mirror
        self.device, self.rng = device, rng

    def sample(self, batch: int) -> SequenceBatch:
        bank, length = self.bank, self.length
        clips = self.rng.integers(0, len(bank), batch)
        starts = np.array([self.rng.integers(0, bank.frames[c].shape[0] - length + 1)
                           for c in clips])
        frames = torch.stack([bank.frames[c][s:s + length] for c, s in zip(clips, starts,
                                                                             strict=True)])
        identity = torch.stack([bank.frames[c][0] for c in clips])
        windows = np.stack([bank.windows(c, s, length) for c, s in zip(clips, starts,
                                                                         strict=True)])
        frames = frames.to(self.device).float().div_(127.5).sub_(1.0)
        identity = identity.to(self.device).float().div_(127.5).sub_(1.0)
        if self.mirror:
            flip = torch.from_numpy(self.rng.random(batch) < 0.5).to(self.device)
            frames = torch.where(flip[:, None, None, None, None], frames.flip(-1), frames)
            identity = torch.where(flip[:, None, None, None], identity.flip(-1), identity)
        return SequenceBatch(identity=identity, frames=frames,
                     windows=torch.from_numpy(windows).to(self.device), clips=clips,
                     starts=starts)
