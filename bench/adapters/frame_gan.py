"""Base class of the adapters of Vougioukas et al. 2019's two generators (seed 003): the
temporal GAN (:mod:`bench.adapters.vougioukas`) and its static baseline
(:mod:`bench.adapters.static_gan`). Both train on talkbench's square crops resized to the
network's ``frame_hw`` (:func:`bench.generators.clip_banks.load_frame_bank`), with runs of
``sequence_field`` consecutive frames per clip, log the lower-half L1 of whole generated
validation clips, and generate through the generator's ``synthesize``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from bench.adapters.torch_base import TorchAdapter
from bench.data.clip import Clip
from bench.generators.clip_banks import load_frame_bank, sequence_length
from bench.generators.frame_gan import validation_lower_half_l1


class FrameGANAdapter(TorchAdapter):
    """A seed-003 generator (``generator_class``, built from the budget's config) and its
    trainer (``trainer_class(nets, cfg, bank, length, device, seed)`` with ``fit()``)."""

    generator_class: ClassVar[type[nn.ModuleDict]]
    trainer_class: ClassVar[type]

    def build(self, cfg: Any) -> nn.ModuleDict:
        return self.generator_class(cfg)

    def make_trainer(self, train: Sequence[Clip], cfg: Any) -> Any:
        """Training data and discriminators around ``self.nets``."""
        length = sequence_length(train, getattr(cfg, self.sequence_field), least=1)
        bank = load_frame_bank(train, cfg.size, cfg.frame_hw, cfg.audio_window, length)
        self.notes["frames"] = (f"square crop resized to {cfg.frame_hw[0]}x{cfg.frame_hw[1]} "
                                "(H x W) for the network, output resized back")
        assert isinstance(self.nets, self.generator_class)
        return self.trainer_class(self.nets, cfg, bank, length, self.torch_device, self.seed)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: Any) -> dict[str, Any]:
        trainer = self.make_trainer(train, cfg)
        log = trainer.fit()
        log["val_lower_half_l1"] = validation_lower_half_l1(
            self.nets, list(val or []), cfg, self.torch_device, self.seed)
        return log

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        assert isinstance(self.nets, self.generator_class)
        return self.nets.synthesize(image, audio, num_frames, generator)
