"""``ventriloquist``: Das, Khan and Cremers, Ventriloquist-Net (seed 001)
(:mod:`bench.generators.ventriloquist`, training in
:mod:`bench.generators.ventriloquist_training`, frames from the stand-in renderer of
:mod:`bench.generators.landmark_renderer`).

The emotion is inferred from the speech: ``generate`` ignores its ``emotion`` argument
(``needs_emotion = False``, ``emotion_source = "speech"``). The identity image's landmarks
come from dlib (the canonical face when dlib finds none); the renderer is a stand-in trained
here, named in the run's notes and the paper text.

Budgets (same code path, only sizes and schedules change):

- ``paper``: the paper's and the authors' code's network sizes (30 MFCCs, 80 mel bands, Sp2Emo
  32-32-64-128, G's mel CNN 32...512, lip branch 512-272-272, biLSTMs 32/8), batch 32,
  Adam 1e-3 / 1e-4 (Sp2Emo / Exp2Emo, step decays every 20 epochs, Exp2Emo from epoch 40),
  G 1e-4, D 4e-5; 100 epochs (16,400 steps) per stage, counted on the CREMA-D train split;
  renderer (ours) at 128 px, 100,000 steps of 16 pairs, four VGG-19 layers;
- ``demo``: the same architecture, narrow (32 mel bands, Sp2Emo 8-8-16-32, mel CNN
  8-16-16-32-32-32, lip branch 64-64-64, emotion branch 32-32, biLSTMs 16/8), larger learning
  rates so a few hundred steps get somewhere (Sp2Emo 3e-3, Exp2Emo 3e-3 from step 100, G 2e-3,
  D 8e-4), 400 emotion steps (batch 32), 1,000 GAN steps (batch 16), 300 renderer steps of 12
  pairs at 64 px (U-Net 16-32-64-96, one VGG layer), warping the 128 px identity;
- ``smoke``: tiny, a few steps (tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from bench.adapters.torch_base import TorchAdapter
from bench.data.clip import Clip
from bench.generators.images import to_tensor, to_uint8
from bench.generators.landmark_renderer import RENDERER_NAME, identity_landmarks
from bench.generators.perceptual import VGGPerceptualLoss
from bench.generators.ventriloquist import VentriloquistConfig, VentriloquistNets
from bench.generators.ventriloquist_training import (
    emotion_accuracy,
    mouth_distance,
    train_ventriloquist,
)

PAPER = VentriloquistConfig()

DEMO = dataclasses.replace(
    PAPER, n_mels=32, sp2emo_channels=(8, 8, 16, 32), sp2emo_fc=(32, 16),
    dropout=0.0, exp2emo_hidden=(16, 8), exp2emo_fc=(32, 16),
    mel_channels=(8, 16, 16, 32, 32, 32),
    lip_channels=(64, 64, 64), emo_channels=(32, 32), disc_hidden=(16, 8), disc_fc=(32, 8),
    emo_batch=32, emo_steps=400, sp2emo_lr=3e-3, sp2emo_decay_steps=200, exp2emo_start=100,
    exp2emo_lr=3e-3, exp2emo_decay=0.5, exp2emo_decay_steps=200,
    batch=16, gan_steps=1000, lr_g=2e-3, lr_d=8e-4,
    size=64, render_channels=(16, 32, 64, 96), render_batch=12, render_steps=300,
    render_lr=2e-3, w_perc=0.1, perc_layers=("relu1_2",), perc_frames=4)

SMOKE = dataclasses.replace(
    DEMO, n_mels=16, mfcc_mels=32, n_mfcc=12, sp2emo_channels=(4, 4, 4, 8), sp2emo_fc=(8,),
    exp2emo_hidden=(4, 4), exp2emo_fc=(8,), mel_channels=(4, 4, 4, 4, 4, 4),
    lip_channels=(8,), emo_channels=(8,), disc_hidden=(4, 4), disc_fc=(8,),
    emo_batch=4, emo_steps=3, exp2emo_start=1, batch=4, gan_steps=3, size=32,
    render_channels=(4, 8), render_batch=2, render_steps=3, val_clips=2)


class Ventriloquist(TorchAdapter):
    """Adapter for :mod:`bench.generators.ventriloquist`."""

    name = "ventriloquist"
    paper = ("Das, Khan, Cremers 2022, Ventriloquist-Net: leveraging speech cues for emotive "
             "talking head generation, ICIP (seed 001); emotion inferred from speech; frames "
             f"by the {RENDERER_NAME}")
    needs_emotion = False
    emotion_source: ClassVar[str] = "speech"
    """Where the generated expression's emotion comes from: the speech (Sp2Emo), not the
    ``emotion`` argument."""
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the paper states no parameter counts
    side_stages = ("ventriloquist: emotion nets", "ventriloquist: landmark GAN")

    def profile_options(self, steps: int) -> dict[str, Any]:
        return {"emo_steps": steps, "gan_steps": steps, "render_steps": steps}

    def frames_per_step(self, cfg: VentriloquistConfig, train: Sequence[Clip]) -> int:
        """Frames the renderer makes in one step (the landmark stages make no frames)."""
        return int(cfg.render_batch)

    def build(self, cfg: VentriloquistConfig) -> nn.ModuleDict:
        return VentriloquistNets(cfg)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: VentriloquistConfig) -> dict[str, Any]:
        perceptual = None
        if cfg.w_perc > 0:
            perceptual = VGGPerceptualLoss(layers=cfg.perc_layers).to(self.torch_device)
            self.notes["perceptual"] = perceptual.source
        else:
            self.notes["perceptual"] = "not used (w_perc = 0)"
        self.notes["renderer"] = RENDERER_NAME
        self.notes["emotion"] = ("inferred from the speech by Sp2Emo; the emotion argument "
                                 "is ignored")
        self.notes["emotion_source"] = self.emotion_source
        self.notes["identity_landmarks"] = ("dlib 68 points on the identity image (the "
                                            "canonical face when none is found)")
        log = train_ventriloquist(self.nets, train, cfg, self.torch_device, self.seed,
                                  perceptual)
        held_out = list(val or [])[:cfg.val_clips]
        log["val_emotion"] = emotion_accuracy(self.nets, held_out)
        log["val_mouth"] = mouth_distance(self.nets, held_out)
        return log

    @torch.no_grad()
    def generate(self, image: np.ndarray, audio: np.ndarray, emotion: str | None) -> np.ndarray:
        """Frames for ``audio`` looking like ``image``; ``emotion`` is ignored (it comes from
        the speech). Square images are rendered at their own resolution (the renderer warps
        the full-size identity); others are resized to a square first."""
        if self.nets is None:
            raise RuntimeError(f"{self.name}: call fit() or load() before generate()")
        image = np.asarray(image, dtype=np.uint8)
        audio = np.asarray(audio, dtype=np.float32)
        self.nets.eval()
        h, w = image.shape[:2]
        side = h if h == w else self.cfg.size
        points, _ = identity_landmarks(image)
        points = points * np.array([side / w, side / h], np.float32) + np.array(
            [0.5 * side / w - 0.5, 0.5 * side / h - 0.5], np.float32)
        x = to_tensor(image[None], None if h == w else side, self.torch_device)
        frames = self.nets.synthesize(x, torch.from_numpy(points).to(self.torch_device),
                                      audio, self.num_frames(audio))
        return to_uint8(frames, image.shape[:2])

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        """Frames from a ``(1, 3, s, s)`` identity whose landmarks are taken to be the
        canonical face (``generate`` finds the identity's own landmarks instead)."""
        from bench.core.face_template import template_at

        points = torch.from_numpy(template_at(image.shape[-1]).astype(np.float32))
        return self.nets.synthesize(image, points.to(image.device), audio, num_frames)
