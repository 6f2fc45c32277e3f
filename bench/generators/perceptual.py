"""Perceptual loss: VGG-19 features from a local ImageNet weights file, or a named stand-in.

Used by Eskimez et al.'s generator (seed 000, Sect. III-C-2) and the models built on it.
Nothing is downloaded: torchvision's ``vgg19-dcbb9e9d.pth`` is read from
``$TALKBENCH_VGG19_WEIGHTS`` or the weights folder (:mod:`bench.core.weights`); without it a
seeded random VGG-19 stands in and says so (:attr:`VGGPerceptualLoss.source`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from bench.core.weights import sha256_of_file, weights_dir

VGG19_WEIGHTS_NAME = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG-19 weights file (``torchvision.models.VGG19_Weights``)."""

VGG19_WEIGHTS_ENV = "TALKBENCH_VGG19_WEIGHTS"

VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
"""Index (in ``torchvision.models.vgg19().features``) of the layer after each named ReLU."""

STAND_IN_VGG = "stand-in: VGG-19 with seeded random weights (no ImageNet file found)"


def find_vgg19_weights() -> Path | None:
    """``$TALKBENCH_VGG19_WEIGHTS``, else ``<weights dir>/vgg19-dcbb9e9d.pth``, else None.
    Nothing is downloaded."""
    env = os.environ.get(VGG19_WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${VGG19_WEIGHTS_ENV} names {path}, which does not exist")
        return path
    path = weights_dir() / VGG19_WEIGHTS_NAME
    return path if path.is_file() else None


class VGGPerceptualLoss(nn.Module):
    """Mean L1 distance between VGG-19 feature maps of two image batches (``[-1, 1]`` in,
    ImageNet normalisation inside), summed over ``layers`` with equal weights.

    The ImageNet weights load from a local file (:func:`find_vgg19_weights`); without one, a
    VGG-19 with seeded random (Kaiming) weights stands in, and :attr:`source` says so: the run
    records it. The network is frozen."""

    def __init__(self, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4"),
                 seed: int = 0) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        path = find_vgg19_weights()
        if path is not None:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self.source = f"ImageNet VGG-19 from {path} (sha256 {sha256_of_file(path)[:12]})"
        else:
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for m in net.features:
                    if isinstance(m, nn.Conv2d):
                        m.weight.normal_(0, math.sqrt(2.0 / m.weight[0].numel()),
                                         generator=generator)
                        m.bias.zero_()
            self.source = f"{STAND_IN_VGG}, seed {seed}"
        self.cuts = sorted(VGG19_LAYERS[name] + 1 for name in layers)
        self.features = net.features[:self.cuts[-1]].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # always eval (frozen)
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x = torch.cat([fake, real])
        x = ((x + 1) / 2 - self.mean) / self.std
        loss = x.new_zeros(())
        start = 0
        for cut in self.cuts:
            x = self.features[start:cut](x)
            start = cut
            a, b = x.chunk(2)
            loss = loss + (a - b.detach()).abs().mean()
        return loss
