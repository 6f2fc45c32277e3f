"""``speech2vid``: Chung, Jamaludin and Zisserman 2017, "You said that?" (BMVC), the static
L1 baseline of seeds 003 and 004 (:mod:`bench.generators.speech2vid`).

Budgets (same code path, only sizes and schedules change):

- ``paper``: 112x112 frames, the VGG-M-like encoders of Sect. 3 (audio conv 64-128-256-256-512,
  identity conv 96-256-512-512-512, fc 512 -> 256 each), 12x35 MFCC windows, L1 only, SGD
  momentum 0.9 with the learning rate decaying 1e-2 -> 1e-4, batch 64, then the deblurring CNN
  (10 layers of 64). Step counts are ours (the paper trains on tens of hours of video);
- ``demo``: 64x64, narrow layers, Adam 1e-3, 800 steps (about 25 s of CPU training on a
  2-core box), no deblurring CNN;
- ``smoke``: 32x32, a few steps (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.adapters.torch_base import TorchAdapter
from bench.data.clip import Clip
from bench.generators.speech2vid import (
    Speech2VidConfig,
    Speech2VidNets,
    train_speech2vid,
    validation_l1,
)

PAPER = Speech2VidConfig()

DEMO = Speech2VidConfig(
    size=64, audio_channels=(16, 32, 64, 64, 64), audio_fc=128,
    identity_channels=(32, 48, 64, 64, 64), identity_fc=128, embed_dim=64, decoder_base=64,
    decoder_channels=(64, 48, 32, 16), deblur_layers=0, optimizer="adam", lr=1e-3,
    lr_final=1e-3, weight_decay=0.0, batch=16, steps=800)

SMOKE = Speech2VidConfig(
    size=32, audio_channels=(4, 8, 8, 8, 8), audio_fc=16, identity_channels=(8, 8, 8, 8, 8),
    identity_fc=16, embed_dim=8, decoder_base=8, decoder_channels=(8, 8, 8, 8),
    deblur_layers=0, deblur_channels=8, optimizer="adam", lr=1e-3, lr_final=1e-3,
    weight_decay=0.0, batch=4, steps=3, deblur_steps=2, val_clips=2)


class Speech2Vid(TorchAdapter):
    """Adapter for :mod:`bench.generators.speech2vid`."""

    name = "speech2vid"
    paper = ("Chung, Jamaludin, Zisserman 2017, You said that?, BMVC (Speech2Vid; baseline "
             "of seeds 003 and 004)")
    needs_emotion = False
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the paper states no parameter counts
    side_stages = ("speech2vid: deblur",)

    def profile_options(self, steps: int) -> dict[str, Any]:
        return {**super().profile_options(steps), "deblur_steps": steps,
                "deblur_max_seconds": None}

    def build(self, cfg: Speech2VidConfig) -> nn.ModuleDict:
        return Speech2VidNets(cfg)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: Speech2VidConfig) -> dict[str, Any]:
        last = cfg.mfcc_first + cfg.mfcc_count - 1
        self.notes["mfcc"] = (f"coefficients {cfg.mfcc_first}..{last} of "
                              "python_speech_features' 13 (0 = log energy), "
                              f"{cfg.mfcc_window} frames at 100 Hz, standardised per "
                              "coefficient with training-set statistics")
        self.notes["deblur"] = ("deblurring CNN trained on Gaussian-blurred training frames"
                                if cfg.deblur_layers > 0 else "no deblurring CNN (L1 generator)")
        log = train_speech2vid(self.nets, train, cfg, self.torch_device, self.seed)
        log["val_l1"] = validation_l1(self.nets, list(val or []), cfg, self.torch_device)
        return log

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        # deterministic: Speech2Vid has no noise input, so ``generator`` is not needed
        return self.nets.synthesize(image, audio, num_frames)
