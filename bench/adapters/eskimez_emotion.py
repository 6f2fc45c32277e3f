"""``eskimez-emotion``: Eskimez, Zhang and Duan 2021, the emotion-conditioned talking face
generator that seed 000 uses as its baseline [24] (:mod:`bench.generators.eskimez2021`).

Budgets (same code path, only sizes and schedules change):

- ``paper``: 128x128 frames, the layer widths of seed 000 Sect. III-A, Adam 1e-4 (beta1 0.5),
  8 clips x 32 frames per step, the emotion discriminator pre-trained for 2000 steps
  (learning rates, batch and step counts are not given in seed 000; ours);
- ``demo``: 48x48 frames (four 3x3 encoder layers and a 3x3 bottom map instead of 4x4),
  narrow layers, 12 clips x 5 frames per step, Adam 3e-3 (speech encoder 5e-4), perceptual
  loss on 2 frames, frame critic on 4 frames and emotion discriminator on 3 sequences per
  step, small adversarial weights (0.002 frame WGAN, 0.02 emotion: in a few hundred steps the
  discriminators cannot yet teach the generator anything, and a pre-trained emotion
  discriminator at a large weight drove the generator to adversarial colour blotches),
  300 emotion-discriminator pre-training steps then 370 joint steps (about 25 s of CPU
  training on a 2-core box, in the default main job);
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
from bench.generators.eskimez2021 import EskimezConfig, EskimezGenerator
from bench.generators.eskimez2021_training import (
    EskimezTrainer,
    load_training_data,
    validation_mrm,
)
from bench.generators.perceptual import VGGPerceptualLoss

PAPER = EskimezConfig()

DEMO = EskimezConfig(
    size=48, enc_channels=(16, 32, 64, 64, 128), dec_channels=(64, 32, 16, 16),
    speech_channels=(16, 32, 64, 64, 16), speech_fc=64, speech_dim=64, emotion_dims=(32, 32),
    noise_hidden=8, frame_disc_channels=(16, 32, 64, 64, 64),
    emo_disc_channels=(16, 32, 64, 64, 64), emo_disc_embed=64, mrm_peak=10.0,
    perc_layers=("relu1_2",), perc_frames=2, adv_frames=4, emo_seqs=3, w_perc=0.1,
    w_adv=0.002, w_emo=0.02, lr_g=3e-3, lr_speech=5e-4, lr_d=1e-3, betas=(0.9, 0.999),
    batch=12, seq_len=5, steps=370,
    emo_pretrain_steps=300, emo_pretrain_batch=16,
    emo_pretrain_fraction=0.05)

SMOKE = EskimezConfig(
    size=32, enc_channels=(8, 8, 16, 16), dec_channels=(16, 8, 8),
    speech_channels=(8, 8, 8, 8, 4), speech_context=2, speech_fc=16, speech_dim=16,
    emotion_dims=(8, 8), noise_dim=4, noise_hidden=4, frame_disc_channels=(8, 8, 8, 8, 8),
    emo_disc_channels=(8, 8, 8, 8, 8), emo_disc_embed=16, perc_layers=("relu1_2",),
    perc_frames=2, adv_frames=2, lr_g=1e-3, lr_d=1e-3, batch=2, seq_len=4, steps=3,
    emo_pretrain_steps=1)


class EskimezEmotion(TorchAdapter):
    """Adapter for :mod:`bench.generators.eskimez2021`."""

    name = "eskimez-emotion"
    paper = ("Eskimez, Zhang, Duan 2021, Speech driven talking face generation from a single "
             "image and an emotion condition, IEEE TMM (seed 000 baseline [24])")
    needs_emotion = True
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # neither paper states parameter counts
    side_stages = ("eskimez: emotion D",)

    def profile_options(self, steps: int) -> dict[str, Any]:
        return {**super().profile_options(steps), "emo_pretrain_steps": steps}

    def build(self, cfg: EskimezConfig) -> nn.ModuleDict:
        return EskimezGenerator(cfg)

    def make_trainer(self, train: Sequence[Clip], cfg: EskimezConfig) -> EskimezTrainer:
        """Training data, perceptual network and discriminators around ``self.nets``."""
        sampler = load_training_data(train, cfg, self.torch_device, self.seed)
        perceptual = None
        if cfg.w_perc > 0:
            perceptual = VGGPerceptualLoss(layers=cfg.perc_layers)
            self.notes["perceptual"] = perceptual.source
        else:
            self.notes["perceptual"] = "not used (w_perc = 0)"
        self.notes["speech_input"] = "raw waveform resampled 16 kHz -> 8 kHz (125 steps/s)"
        return EskimezTrainer(self.nets, cfg, sampler, perceptual, self.torch_device)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: EskimezConfig) -> dict[str, Any]:
        trainer = self.make_trainer(train, cfg)
        log = trainer.fit()
        log["val_mrm"] = validation_mrm(self.nets, list(val or []), cfg, self.torch_device)
        return log

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        return self.nets.synthesize(image, audio, emotion, num_frames, generator)
