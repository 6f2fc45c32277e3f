"""Training of seed 002's emotion-conditioned Wav2Lip (Goyal et al., Sect. 2.5 and Eq. 1;
EmoGen's ``train.py`` and ``emotion_disc_train.py``): Wav2Lip's schedule
(:mod:`bench.generators.wav2lip_training`) with the emotion discriminator, the perceptual loss
and the augmentations of :mod:`bench.generators.emotion_wav2lip`.

1. Pre-training on the train split: the expert lip-sync discriminator (then frozen), and the
   emotion discriminator as a 6-way classifier of augmented real 5-frame windows
   (``emo_pretrain_steps``, Adam ``emo_pretrain_lr``, ``emo_betas``; EmoGen's
   ``emotion_disc_train.py``: 1e-6, betas (0.5, 0.999), batch 64).
2. Each step: a batch of 5-frame windows, target and reference frames augmented together;
   the generator (discriminator frozen) minimises Eq. 1,
   ``L = a E_sync + b L_perc + g L_emo + (1 - a - b - g) L_recon``, with ``L_recon`` the L1
   of the whole face, ``E_sync`` the frozen expert's sync loss on the lower halves (``a`` 0,
   then ``sync_weight`` = 0.03 once the validation sync loss is below 0.75, as in Wav2Lip),
   ``L_perc`` the VGG-19 perceptual loss of :mod:`bench.generators.perceptual` (ImageNet
   weights from a local file or the named stand-in; EmoGen's own is an MSE over five pooled
   VGG-19 maps, computed on a ``.view`` that mixes time and channels: here every generated
   frame is compared with its real frame), and ``L_emo`` the cross-entropy of the emotion
   discriminator on the generated window against the requested (the clip's) emotion.
   ``b`` = ``w_perc`` = 0.01 and ``g`` = ``w_emo`` = 0.001 at the paper budget (the paper's
   values; EmoGen's ``hparams.py`` has 0.01 for ``g``). Then the emotion discriminator takes
   one step on the real (augmented) window with its label (it keeps training on real frames
   only, as in EmoGen; Adam ``emo_lr`` = 1e-6). Generator: Adam ``lr`` = 1e-4, betas
   (0.5, 0.999).

Choices the paper leaves open: the reference frames come from another clip of the same
speaker (``reference="speaker"``: in CREMA-D and the synthetic corpus that clip has another
emotion, so the expression must come from the label, as at test time, where the identity
image's expression is not the requested one; EmoGen takes another window of the same clip);
clips without an emotion label train with an all-zero one-hot vector and no emotion loss;
the lengths of both pre-trainings and of the training are step counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.training import run_steps
from bench.generators.emotion_wav2lip import (
    EmotionDiscriminator,
    EmotionWav2LipConfig,
    EmotionWav2LipGenerator,
    augment_windows,
    onehot_of_labels,
)
from bench.generators.lip_sync_expert import SYNC_T, MelBank, draw_starts
from bench.generators.perceptual import VGGPerceptualLoss
from bench.generators.wav2lip_training import Wav2LipTrainer, WindowBatch, WindowSampler


def _num(x: torch.Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


@contextlib.contextmanager
def frozen(net: torch.nn.Module) -> Iterator[None]:
    """``net``'s parameters need no gradient inside the block."""
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class EmotionWav2LipTrainer(Wav2LipTrainer):
    """Wav2Lip's trainer with the emotion discriminator, perceptual loss and augmentations."""

    name = "emotion-wav2lip"
    cfg: EmotionWav2LipConfig

    def __init__(self, generator: EmotionWav2LipGenerator, cfg: EmotionWav2LipConfig,
                 train: MelBank, val: MelBank | None, device: torch.device, seed: int,
                 perceptual: VGGPerceptualLoss | None) -> None:
        self.reference = cfg.reference
        super().__init__(generator, cfg, train, val, device, seed)
        self.d_emo = EmotionDiscriminator(cfg).to(device)
        self.opt_e = torch.optim.Adam(self.d_emo.parameters(), lr=cfg.emo_lr,
                                      betas=cfg.emo_betas)
        self.perceptual = perceptual.to(device) if perceptual is not None else None
        self.aug = torch.Generator().manual_seed(int(seed) + 5)
        self.rng = np.random.default_rng([seed, 6])

    # -- inputs ------------------------------------------------------------------------------
    def draw(self) -> WindowBatch:
        """A training batch with target and reference frames augmented together."""
        batch = self.sampler.sample()
        if self.cfg.augment_p > 0:
            both = torch.cat([batch.target, batch.reference], 1)
            both = augment_windows(both, self.aug, self.cfg.augment_p, self.cfg.augment_each)
            batch.target, batch.reference = both[:, :SYNC_T], both[:, SYNC_T:]
        return batch

    def faces(self, batch: WindowBatch) -> torch.Tensor:
        ref = batch.flat(batch.reference)
        return torch.cat([torch.zeros_like(ref), ref], 1)

    def condition(self, batch: WindowBatch) -> torch.Tensor:
        onehot = onehot_of_labels(batch.label)
        return onehot[:, None].expand(-1, batch.target.shape[1], -1).reshape(-1, onehot.shape[1])

    # -- losses ------------------------------------------------------------------------------
    def emotion_loss(self, video: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        known = label >= 0
        if not bool(known.any()):
            return video.new_zeros(())
        return F.cross_entropy(self.d_emo(video[known]), label[known])

    def losses(self, fake: torch.Tensor, batch: WindowBatch) -> dict[str, torch.Tensor]:
        parts = super().losses(fake, batch)
        cfg = self.cfg
        if cfg.w_perc > 0 and self.perceptual is not None:
            f, r = batch.flat(fake), batch.flat(batch.target)
            if 0 < cfg.perc_frames < f.shape[0]:
                pick = torch.randperm(f.shape[0], device=self.device)[:cfg.perc_frames]
                f, r = f[pick], r[pick]
            parts["perc"] = self.perceptual(f * 2 - 1, r * 2 - 1)
        if cfg.w_emo > 0:
            with frozen(self.d_emo):
                parts["emo"] = self.emotion_loss(fake, batch.label)
        return parts

    def total(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        b = cfg.w_perc if "perc" in parts else 0.0
        g = cfg.w_emo if "emo" in parts else 0.0
        a = self.alpha
        return (a * parts.get("sync", 0.0) + b * parts.get("perc", 0.0)
                + g * parts.get("emo", 0.0) + (1 - a - b - g) * parts["l1"])

    def after_generator_step(self, fake: torch.Tensor, batch: WindowBatch) -> dict[str, float]:
        """The emotion discriminator's step on the real (augmented) windows."""
        loss = self.emotion_loss(batch.target, batch.label)
        if loss.requires_grad:
            self.opt_e.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_e.step()
        return {"d_emo_real": _num(loss)}

    # -- schedule ----------------------------------------------------------------------------
    def emotion_pretrain_step(self, i: int) -> dict[str, float]:
        cfg, bank = self.cfg, self.train_bank
        clips, starts = draw_starts(bank, self.rng, cfg.emo_pretrain_batch)
        video = torch.stack([bank.window(c, int(s)) for c, s in zip(clips, starts,
                                                                     strict=True)])
        video = augment_windows(video, self.aug, cfg.augment_p, cfg.augment_each)
        label = torch.tensor([bank.labels[c] for c in clips])
        loss = self.emotion_loss(video.to(self.device), label.to(self.device))
        if loss.requires_grad:
            self.opt_pre.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_pre.step()
        return {"d_emo_real": _num(loss)}

    def pretrain(self, progress: bool) -> dict[str, Any]:
        stages = super().pretrain(progress)
        self.opt_pre = torch.optim.Adam(self.d_emo.parameters(), lr=self.cfg.emo_pretrain_lr,
                                        betas=self.cfg.emo_betas)
        self.d_emo.train()
        stages["emotion_d"] = run_steps(self.emotion_pretrain_step,
                                        self.cfg.emo_pretrain_steps, None, progress,
                                        desc=f"{self.name}: emotion D").as_dict()
        return stages

    @torch.no_grad()
    def emotion_d_accuracy(self, bank: MelBank, windows: int = 64) -> float | None:
        """The emotion discriminator's accuracy on random real windows of ``bank``."""
        rng = np.random.default_rng([self.seed, 7])
        clips, starts = draw_starts(bank, rng, windows)
        labels = np.array([bank.labels[c] for c in clips])
        keep = labels >= 0
        if not keep.any():
            return None
        video = torch.stack([bank.window(c, int(s)) for c, s in zip(clips[keep], starts[keep],
                                                                     strict=True)])
        pred = self.d_emo(video.to(self.device)).argmax(1).cpu().numpy()
        return float((pred == labels[keep]).mean())


__all__ = ["EmotionWav2LipTrainer", "WindowSampler", "frozen"]
