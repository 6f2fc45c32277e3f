"""What Vougioukas et al. 2019's two generators (seed 003: the temporal GAN,
:mod:`bench.generators.vougioukas2019`, and the static baseline,
:mod:`bench.generators.static_gan`) share beyond their blocks: the configuration of the
per-frame parts and the schedule (:class:`FrameGANConfig`), the losses (Sect. 3.3: the
lower-half L1 of Eq. 6 and the standard GAN log loss of Eqs. 2-4), generation from a still
image (:func:`synthesize_with`) and the validation L1 of whole generated clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.training import StepDecay
from bench.generators.audio_frames import audio_windows
from bench.generators.blocks import draw_noise
from bench.generators.face_regions import lower_half_row
from bench.generators.images import resize


@dataclass(frozen=True)
class FrameGANConfig:
    """Sizes, loss weights and schedule of the per-frame parts both seed-003 generators have
    (defaults: the paper budget; :mod:`bench.generators.vougioukas2019` explains each)."""

    size: int = 128
    """Square side the adapter resizes the identity image to (talkbench's crop)."""
    frame_hw: tuple[int, int] = (128, 96)
    """Network frame (height, width): the paper's 96x128 (W x H)."""
    id_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    """Identity encoder halving layers (height -> 4); one more layer makes z_id."""
    id_dim: int = 128
    audio_window: int = 3200
    """Samples per audio frame (0.2 s at 16 kHz)."""
    audio_kernel: int = 250
    audio_stride: int = 50
    audio_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Audio frame encoder: the large-kernel layer, then halving layers down to 4 steps."""
    content_dim: int = 256
    """Per-frame content encoding z_c that the frame decoder receives."""
    noise_dim: int = 10
    noise_var: float = 0.6
    dec_channels: tuple[int, ...] = (512, 256, 128, 64, 64)
    """Frame decoder widths at 4x3, 8x6, ..., H/2 (ours: the encoder's, mirrored)."""
    img_disc_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    w_rec: float = 600.0
    w_rec_upper: float = 0.0
    """L1 weight on the upper half (0 in the paper; see :func:`reconstruction`)."""
    w_rec_mouth: float = 0.0
    """Extra L1 weight on the mouth box (0 in the paper; see :func:`reconstruction`)."""
    w_img: float = 1.0
    lr_g: float = 1e-4
    lr_img: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_epochs: float = 10.0
    g_decay: float = 0.98
    d_decay: float = 0.90
    batch: int = 8
    """Sequences (clips) per step."""
    mirror: bool = True
    steps: int = 500_000
    max_seconds: float | None = None
    val_clips: int = 8
    """Validation clips whose lower-half L1 is logged after training."""
    decode_chunk: int = 64
    """Frames decoded at once in generation (bounds memory for long clips)."""


def lr_decay(cfg: FrameGANConfig, frames: int, frames_per_step: int,
             generator: torch.optim.Optimizer,
             discriminators: Sequence[torch.optim.Optimizer | None]) -> StepDecay:
    """Sect. 3.3: the generator's learning rate x ``g_decay`` (0.98) and the discriminators'
    x ``d_decay`` (0.90) every ``decay_epochs`` (10) epochs, an epoch being as many steps as
    it takes to show the ``frames`` training frames once."""
    return StepDecay.every_epochs(cfg.decay_epochs, frames, frames_per_step,
                                  [(generator, cfg.g_decay),
                                   *((d, cfg.d_decay) for d in discriminators)])


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against all-real or all-fake labels."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def lower_half_l1(fake: torch.Tensor, real: torch.Tensor, row: int) -> torch.Tensor:
    """Eq. 6: mean absolute difference over the pixels of the lower half (rows ``row:``)."""
    return (fake[..., row:, :] - real[..., row:, :]).abs().mean()


def reconstruction(fake: torch.Tensor, real: torch.Tensor, row: int, w_rec: float,
                   w_upper: float = 0.0, w_mouth: float = 0.0,
                   mouth: tuple[int, int, int, int] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_rec`` x Eq. 6 (lower half) + ``w_upper`` x the same L1 on the upper half +
    ``w_mouth`` x the same L1 on the ``mouth`` box; returns the weighted sum and the
    lower-half L1 alone.

    The paper has only the lower-half term (``w_upper = w_mouth = 0``, the paper budget): over
    its week of training the adversarial losses shape the upper face and the synchronisation
    discriminator the mouth. *Demo-budget choice:* after a few hundred CPU steps neither
    discriminator has learnt enough, so a small ``w_upper`` keeps the upper face on the
    identity and ``w_mouth`` makes the mouth, a small part of the lower half, count more."""
    lower = lower_half_l1(fake, real, row)
    total = w_rec * lower
    if w_upper > 0:
        total = total + w_upper * (fake[..., :row, :] - real[..., :row, :]).abs().mean()
    if w_mouth > 0 and mouth is not None:
        top, bottom, left, right = mouth
        total = total + w_mouth * (fake[..., top:bottom, left:right]
                                   - real[..., top:bottom, left:right]).abs().mean()
    return total, lower


# ---------------------------------------------------------------------------------------------
# Generation and validation


def synthesize_with(net: nn.Module, cfg: Any, image: torch.Tensor, audio: np.ndarray,
                    num_frames: int, generator: torch.Generator) -> torch.Tensor:
    """Generation shared by the temporal and the static generator: the square identity is
    resized to ``frame_hw``, audio frames are cut per video frame, noise comes from
    ``generator``; the frames are resized back to the square ``(T, 3, s, s)``."""
    device = image.device
    identity = resize(image, cfg.frame_hw)
    windows = torch.from_numpy(audio_windows(audio, num_frames, cfg.audio_window))
    noise = draw_noise(1, num_frames, cfg.noise_dim, cfg.noise_var, device, generator)
    frames = net(identity, windows[None].to(device), noise, chunk=cfg.decode_chunk)[0]
    return resize(frames, image.shape[-2:])


@torch.no_grad()
def validation_lower_half_l1(net: nn.Module, clips: Sequence[Any], cfg: Any,
                  device: torch.device, seed: int = 0) -> float | None:
    """Mean lower-half L1 (Eq. 6) of whole generated validation clips (first ``val_clips``;
    identity = the clip's first frame, seeded noise); None without validation clips."""
    clips = list(clips)[:cfg.val_clips]
    if not clips:
        return None
    net.eval()
    row = lower_half_row(cfg.frame_hw[0])
    values = []
    for clip in clips:
        frames = torch.from_numpy(np.ascontiguousarray(clip.frames)).permute(0, 3, 1, 2)
        real = resize(resize(frames.float(), cfg.size), cfg.frame_hw).div(127.5).sub(1).to(
            device)
        windows = torch.from_numpy(audio_windows(clip.audio, real.shape[0], cfg.audio_window))
        generator = torch.Generator(device=device).manual_seed(seed)
        noise = draw_noise(1, real.shape[0], cfg.noise_dim, cfg.noise_var, device, generator)
        fake = net(real[:1], windows[None].to(device), noise, chunk=cfg.decode_chunk)[0]
        values.append(float(lower_half_l1(fake, real, row)))
    return float(np.mean(values))
