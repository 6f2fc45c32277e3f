"""``deformable-emotion``: seed 000 (Bhagat et al., "Emotional talking face generation using
deformable convolutional networks"): Eskimez et al.'s generator with deformable convolutions
and an attention mask in the image encoder, trained in three stages
(:mod:`bench.generators.deformable_emotion`).

Budgets (same code path, only sizes and schedules change):

- ``paper``: 128x128 frames, the layer widths of seed 000 Sect. III-A, deformable 2nd-4th
  encoder layers, attention on the image embedding, Adam 1e-4, stages 50/10/40 % of the steps
  (learning rates, batch, step counts and stage lengths are not given in seed 000; ours);
- ``demo``: the eskimez-emotion demo sizes and weights (48x48, narrow layers), deformable
  3rd and 4th encoder layers (12x12 and 6x6 outputs: ``deform_conv2d`` is slow on a CPU, and
  the 2nd layer's 24x24 output made every step about a quarter slower), attention on the
  embedding, 400 steps for the three stages together (50/10/40 % of them; about 25 s of
  CPU training on a 2-core box);
- ``smoke``: 32x32, a few steps (tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from bench.adapters.eskimez_emotion import DEMO as ESKIMEZ_DEMO
from bench.adapters.eskimez_emotion import SMOKE as ESKIMEZ_SMOKE
from bench.adapters.eskimez_emotion import EskimezEmotion
from bench.data.clip import Clip
from bench.generators.deformable_emotion import DeformableConfig, DeformableGenerator, fit_staged
from bench.generators.eskimez2021_training import validation_mrm

PAPER = DeformableConfig()

DEMO = DeformableConfig(**{**dataclasses.asdict(ESKIMEZ_DEMO), "deform_layers": (2, 3),
                           "attention_layers": (4,), "steps": 400})

SMOKE = DeformableConfig(**{**dataclasses.asdict(ESKIMEZ_SMOKE), "deform_layers": (1,),
                            "attention_layers": (3,), "steps": 6})


class DeformableEmotion(EskimezEmotion):
    """Adapter for :mod:`bench.generators.deformable_emotion`."""

    name = "deformable-emotion"
    paper = ("Bhagat, Shettiwar, Jain, Bansal, Mashkaria 2022, Emotional talking face "
             "generation using deformable convolutional networks (seed 000)")
    needs_emotion = True
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the seed states no parameter counts
    side_stages = ("eskimez: emotion D", "deformable: discriminator")

    def build(self, cfg: DeformableConfig) -> nn.ModuleDict:
        return DeformableGenerator(cfg)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: DeformableConfig) -> dict[str, Any]:
        trainer = self.make_trainer(train, cfg)
        log = fit_staged(trainer, cfg)
        log["val_mrm"] = validation_mrm(self.nets, list(val or []), cfg, self.torch_device)
        return log
