"""Bhagat, Shettiwar, Jain, Bansal, Mashkaria (seed 000), "Emotional talking face generation
using deformable convolutional networks": Eskimez et al.'s generator
(:mod:`bench.generators.eskimez2021` and :mod:`bench.generators.eskimez2021_training`, seed 000
Sect. III-A to III-C) with two additions to the image encoder and a three-stage schedule.

- Deformable convolution module (Sect. III-E, Fig. 2): three 2-D convolutions, ``offset_conv``
  (the ``2 k^2`` sampling offsets of Sect. II-B Eq. 2), ``modulator_conv`` (the ``k^2``
  modulation masks of deformable convolution v2) and the regular convolution whose weights
  ``torchvision.ops.deform_conv2d`` applies at the offset, modulated positions. *Choices:* the
  offset and modulator convolutions start at zero and the modulation is ``2 * sigmoid`` (so
  the module starts as the plain convolution it replaces); the seed does not say which encoder
  layers become deformable: ``deform_layers`` (paper budget: the 2nd, 3rd and 4th 3x3 layers,
  at 64x64 -> 32x32 ... 16x16 -> 8x8 for 128x128 input: mid-level facial features).
- Attention mask (Sect. III-D): ``M = sigmoid(conv_S(F))``, ``F = M * F``, with F "the feature
  vector from the output of the image encoder". *Choice:* applied to the outputs of the image
  encoder layers in ``attention_layers`` (each activated map before it goes on, and to the
  decoder when it is a skip); the paper budget applies it to the encoder's output, the 1x1
  image embedding, as the seed says (``conv_S`` is then a 1x1 convolution), and
  ``attention_kernel`` sets conv_S's size for spatial maps.
- Training (Sect. IV-B): "first we only train generator. Then we train only discriminator
  keeping generator weights fixed. In the third step, we jointly train generator and
  discriminator." Stage 1 updates the generator with the reconstruction losses (MRM +
  perceptual; there is no discriminator yet), stage 2 updates the frame and emotion
  discriminators against the fixed generator, stage 3 is Eskimez et al.'s joint step. The
  stages split ``steps`` and ``max_seconds`` by ``stage_fractions`` (the seed gives no
  lengths; time a stage leaves unused goes to the next). Stage 2 also trains the emotion
  discriminator on real sequences, so the baseline's separate emotion pre-training
  (``emo_pretrain_*``) is not run here (seed 000, Sect. IV-C: "we first trained the
  discriminator and used this pre trained discriminator, for the final joint training").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from bench.core.training import run_steps
from bench.generators.eskimez2021 import EskimezConfig, EskimezGenerator, ImageEncoder
from bench.generators.eskimez2021_training import EskimezTrainer


@dataclass(frozen=True)
class DeformableConfig(EskimezConfig):
    """Eskimez et al.'s configuration plus the deformable, attention and stage settings."""

    deform_layers: tuple[int, ...] = (1, 2, 3)
    """Image encoder layers (0-based) whose convolution is the deformable module."""
    attention_layers: tuple[int, ...] = (5,)
    """Image encoder layers whose output goes through the attention mask (5: the embedding)."""
    attention_kernel: int = 3
    """Size of conv_S on spatial maps (1 on the 1x1 embedding)."""
    stage_fractions: tuple[float, float, float] = (0.5, 0.1, 0.4)
    """Shares of ``steps`` and ``max_seconds`` of stages 1 (G), 2 (D) and 3 (joint)."""


class DeformableConv2d(nn.Module):
    """Seed 000 Sect. III-E: offset_conv + modulator_conv + regular_conv, combined by
    ``torchvision.ops.deform_conv2d`` (modulated deformable convolution)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.offset_conv = nn.Conv2d(cin, 2 * kernel * kernel, kernel, stride, padding)
        self.modulator_conv = nn.Conv2d(cin, kernel * kernel, kernel, stride, padding)
        self.regular_conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        for conv in (self.offset_conv, self.modulator_conv):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset_conv(x)
        mask = 2.0 * torch.sigmoid(self.modulator_conv(x))
        return deform_conv2d(x, offset, self.regular_conv.weight, self.regular_conv.bias,
                             stride=self.stride, padding=self.padding, mask=mask)


class AttentionMask(nn.Module):
    """Seed 000 Sect. III-D: ``M = sigmoid(conv_S(F))``, returns ``M * F``."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x)) * x


class DeformableImageEncoder(ImageEncoder):
    """Eskimez et al.'s image encoder with deformable convolutions in ``deform_layers`` and
    attention masks after ``attention_layers``."""

    def __init__(self, cfg: DeformableConfig) -> None:
        deform = set(cfg.deform_layers)

        def factory(i: int, cin: int, cout: int, k: int, s: int, p: int) -> nn.Module:
            if i in deform:
                return DeformableConv2d(cin, cout, k, s, p)
            return nn.Conv2d(cin, cout, k, stride=s, padding=p)

        super().__init__(cfg, factory)
        n = len(cfg.enc_channels)
        bad = [i for i in (*cfg.deform_layers, *cfg.attention_layers) if not 0 <= i < n]
        if bad:
            raise ValueError(f"encoder layers {bad} do not exist (0..{n - 1})")
        self.attention = nn.ModuleDict({
            str(i): AttentionMask(cfg.enc_channels[i], 1 if i == n - 1 else cfg.attention_kernel)
            for i in cfg.attention_layers})

    def refine(self, index: int, x: torch.Tensor) -> torch.Tensor:
        key = str(index)
        return self.attention[key](x) if key in self.attention else x


class DeformableGenerator(EskimezGenerator):
    """Eskimez et al.'s generator with :class:`DeformableImageEncoder`."""

    def __init__(self, cfg: DeformableConfig) -> None:
        super().__init__(cfg, DeformableImageEncoder(cfg))


def stage_budgets(cfg: DeformableConfig) -> list[tuple[int, float | None]]:
    """(steps, seconds) of the three stages."""
    total = sum(cfg.stage_fractions)
    out = []
    for share in cfg.stage_fractions:
        part = share / total
        steps = max(1, round(cfg.steps * part)) if share > 0 else 0
        out.append((steps, None if cfg.max_seconds is None else cfg.max_seconds * part))
    return out


def fit_staged(trainer: EskimezTrainer, cfg: DeformableConfig,
               progress: bool = False) -> dict[str, Any]:
    """Seed 000 Sect. IV-B: generator only, then discriminators only, then joint. Time a
    stage leaves unused goes to the next."""
    trainer.train_mode()
    stages = (("generator", trainer.generator_step), ("discriminator", trainer.discriminator_step),
              ("joint", trainer.joint_step))
    logs: dict[str, Any] = {}
    carry = 0.0
    for (name, step), (steps, seconds) in zip(stages, stage_budgets(cfg), strict=True):
        limit = None if seconds is None else seconds + carry
        log = run_steps(step, steps, limit, progress, desc=f"deformable: {name}")
        carry = 0.0 if limit is None else max(0.0, limit - log.seconds)
        logs[name] = log.as_dict()
    return {"stages": logs, "steps": sum(v["steps"] for v in logs.values()),
            "seconds": round(sum(v["seconds"] for v in logs.values()), 2)}
