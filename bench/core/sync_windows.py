"""SyncNet's input windows, as ``syncnet_python``'s ``SyncNetInstance.evaluate`` cuts them (Chung
and Zisserman 2016, "Out of time: automated lip sync in the wild"): the one definition that the
LSE metric (:mod:`bench.metrics.lse`) and the harness-trained SyncNet
(:mod:`bench.judges.syncnet_train`) share, so that training and scoring see the same inputs.

- A clip of ``T`` frames and ``S`` audio samples (16 kHz, 25 fps) has
  ``N = min(T, S // 640) - 5`` windows (:func:`num_windows`; the reference's ``lastframe``: it
  never uses the last complete window).
- Lip window ``v`` is frames ``[v, v + 5)`` of 224x224 face crops in BGR order, raw 0-255
  values (:func:`prepare_lip_frames`, :func:`lip_window_batch`).
- Audio window ``u`` is MFCC frames ``[4u, 4u + 20)`` of the whole clip's MFCCs
  (:func:`clip_mfcc`, :func:`audio_window`): 13 coefficients at 100 Hz, four per video frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bench import SAMPLES_PER_FRAME
from bench.core.audio import audio_to_int16, mfcc

FRAME_SIZE = 224
"""Height and width of the face crops the lip stream takes."""

LIP_WINDOW = 5
"""Video frames per lip window (0.2 s at 25 fps)."""

MFCC_WINDOW = 20
"""MFCC frames per audio window (0.2 s at 100 Hz)."""

MFCC_PER_FRAME = 4
"""MFCC frames per video frame (100 Hz / 25 fps)."""

NUM_MFCC = 13
"""MFCC coefficients per frame."""


def num_windows(num_frames: int, num_samples: int) -> int:
    """Windows the reference evaluates: ``min(frames, samples // 640) - 5``."""
    return min(num_frames, num_samples // SAMPLES_PER_FRAME) - LIP_WINDOW


# ---------------------------------------------------------------------------------------------
# Lip windows


def resize_frames(video: torch.Tensor, size: int = FRAME_SIZE) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` uint8 frames to ``(T, 3, size, size)`` uint8 with OpenCV's
    ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``, the call syncnet_python makes, so
    the pixels are OpenCV's own (fixed-point bilinear; torch's float bilinear differs by one
    grey level on about 12 % of pixels of real GRID crops and moves LSE-D by ~3e-3). Runs
    on the CPU; the result goes back to ``video``'s device.
    """
    if video.shape[-2:] == (size, size):
        return video
    if video.dtype != torch.uint8:
        raise ValueError(f"resize_frames takes uint8 frames, not {video.dtype}")
    import cv2

    frames = video.permute(0, 2, 3, 1).cpu().numpy()  # (T, H, W, 3)
    out = np.empty((frames.shape[0], size, size, frames.shape[3]), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(np.ascontiguousarray(frame), (size, size),
                            interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(video.device)


def prepare_lip_frames(video_rgb: torch.Tensor) -> torch.Tensor:
    """talkbench RGB face crops ``(T, 3, H, W)`` uint8 -> SyncNet input ``(T, 3, 224, 224)``
    uint8 in BGR order (resized as :func:`resize_frames` does)."""
    return resize_frames(video_rgb).flip(1)


def lip_window_batch(frames: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Stack 5-frame windows of talkbench RGB crops ``(5, 3, H, W)`` uint8 into the lip
    stream's input ``(B, 3, 5, 224, 224)`` float on ``device``, prepared by
    :func:`prepare_lip_frames` (resize to 224, BGR)."""
    stacked = torch.stack(list(frames)).to(device)  # (B, 5, 3, H, W)
    b = stacked.shape[0]
    video = prepare_lip_frames(stacked.flatten(0, 1))  # (B * 5, 3, 224, 224) uint8 BGR
    video = video.view(b, LIP_WINDOW, *video.shape[1:]).transpose(1, 2).float()
    layout = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
    return video.contiguous(memory_format=layout)


# ---------------------------------------------------------------------------------------------
# Audio windows


def clip_mfcc(audio: np.ndarray) -> np.ndarray:
    """MFCCs of a clip's float audio as the LSE metric computes them (int16 scale):
    ``(F, 13)`` float32."""
    return mfcc(audio_to_int16(audio)).astype(np.float32)


def audio_window(mfccs: torch.Tensor, u: int) -> torch.Tensor:
    """Audio window ``u`` of a clip's MFCCs ``(F, 13)``: ``(1, 13, 20)``, MFCC frames
    ``[4u, 4u + 20)`` transposed."""
    start = MFCC_PER_FRAME * u
    return mfccs[start:start + MFCC_WINDOW].T.unsqueeze(0)
