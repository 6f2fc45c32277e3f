"""Training of Wav2Lip's generator (Prajwal et al. 2020, Sect. 3.3-3.4; public code
``wav2lip_train.py``, the variant without the visual-quality discriminator), the network of
:mod:`bench.generators.wav2lip`; :mod:`bench.generators.emotion_wav2lip_training` extends it.

1. The expert lip-sync discriminator (:mod:`bench.generators.lip_sync_expert`) is pre-trained
   on the train split for ``expert_steps`` and frozen.
2. Each generator step draws ``batch`` windows of 5 consecutive frames (a random clip, a
   random start). Inputs per frame: the target frame with its lower half zeroed and a
   reference frame: frame ``t`` of another random 5-frame window of the same clip (the code's
   ``wrong_window``: pose and identity, not the mouth of the moment), and the frame's mel
   window. The loss is ``(1 - a) L1 + a E_sync``: L1 between generated and real frames (all
   pixels, ``[0, 1]`` images), and ``E_sync = -log P_sync`` of the frozen expert on the lower
   halves of the 5 generated frames with the window's mel (label 1). ``a`` is 0 until the
   mean ``E_sync`` of the generator on validation windows falls below ``sync_gate`` (0.75),
   checked at step 1 and every ``eval_every`` steps; then ``a = sync_weight`` for the rest of
   training (the paper's 0.03, our choice over the 0.01 of ``wav2lip_train.py``). Adam
   (``lr``, ``betas``).

Choices the paper and code leave open here: validation windows come from the split's
validation clips (the training clips when a run gives none, e.g. ``bench profile``); the
training length is a step count (the code runs until stopped by hand); clips shorter than 5
frames are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.training import run_steps
from bench.generators.lip_sync_expert import (
    SYNC_T,
    MelBank,
    SyncNetColor,
    draw_starts,
    expert_loss,
    lower_halves,
    other_start,
    pretrain_expert,
)
from bench.generators.wav2lip import (
    Wav2LipConfig,
    Wav2LipGenerator,
    expert_config,
    mask_lower_half,
)
from bench.generators.wav2lip_audio import frame_windows, sync_window


def _num(x: torch.Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


@dataclass
class WindowBatch:
    """``B`` windows of ``T = 5`` frames, images in ``[0, 1]`` on the device."""

    target: torch.Tensor  # (B, T, 3, s, s)
    reference: torch.Tensor  # (B, T, 3, s, s)
    mels: torch.Tensor  # (B, T, 1, 80, 16): each frame's window
    sync_mel: torch.Tensor  # (B, 1, 80, 16): the window of the 5 frames together
    label: torch.Tensor  # (B,) emotion index, -1 for none

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, ...)`` -> ``(B * T, ...)`` (frame-major within each window)."""
        return x.reshape(-1, *x.shape[2:])


class WindowSampler:
    """Draws :class:`WindowBatch` es. ``reference``: ``"clip"`` (Wav2Lip: another window of the
    same clip) or ``"speaker"`` (a window of another clip of the same speaker when there is
    one; seed 002's model, :mod:`bench.generators.emotion_wav2lip_training`)."""

    def __init__(self, bank: MelBank, cfg: Wav2LipConfig, device: torch.device,
                 rng: np.random.Generator, reference: str = "clip") -> None:
        if reference not in ("clip", "speaker"):
            raise ValueError(f"reference must be 'clip' or 'speaker', not {reference!r}")
        self.bank, self.cfg, self.device, self.rng = bank, cfg, device, rng
        self.reference = reference
        self.same_speaker = [[j for j, s in enumerate(bank.speakers) if s == speaker and j != i]
                             for i, speaker in enumerate(bank.speakers)]

    def reference_window(self, clip: int, start: int) -> tuple[int, int]:
        rng, bank = self.rng, self.bank
        if self.reference == "speaker" and self.same_speaker[clip]:
            other = int(rng.choice(self.same_speaker[clip]))
            return other, int(rng.integers(0, bank.frames[other].shape[0] - SYNC_T + 1))
        return clip, other_start(bank.frames[clip].shape[0], start, 1, rng)

    def sample(self, n: int | None = None) -> WindowBatch:
        bank, cfg, device = self.bank, self.cfg, self.device
        n = n or cfg.batch
        clips, starts = draw_starts(bank, self.rng, n)
        targets, refs, mels, sync = [], [], [], []
        for c, s in zip(clips, starts, strict=True):
            s = int(s)
            targets.append(bank.window(c, s))
            rc, rs = self.reference_window(int(c), s)
            refs.append(bank.window(rc, rs))
            mels.append(frame_windows(bank.mels[c], s + np.arange(SYNC_T), cfg.window_offset))
            sync.append(sync_window(bank.mels[c], s)[0])
        labels = torch.tensor([bank.labels[c] for c in clips], device=device)
        return WindowBatch(
            target=torch.stack(targets).to(device), reference=torch.stack(refs).to(device),
            mels=torch.from_numpy(np.stack(mels))[:, :, None].to(device),
            sync_mel=torch.from_numpy(np.stack(sync))[:, None].to(device), label=labels)


class Wav2LipTrainer:
    """The expert, the optimiser and the losses around a generator (module docstring)."""

    reference = "clip"
    name = "wav2lip"

    def __init__(self, generator: Wav2LipGenerator, cfg: Wav2LipConfig, train: MelBank,
                 val: MelBank | None, device: torch.device, seed: int) -> None:
        self.g, self.cfg, self.device, self.seed = generator, cfg, device, seed
        self.train_bank = train
        self.sampler = WindowSampler(train, cfg, device, np.random.default_rng([seed, 2]),
                                     self.reference)
        self.val_bank = val if val is not None and len(val) else train
        self.expert = SyncNetColor(expert_config(cfg)).to(device)
        self.opt = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.alpha = 0.0
        self.gate_log: list[dict[str, float]] = []

    # -- pieces ------------------------------------------------------------------------------
    def faces(self, batch: WindowBatch) -> torch.Tensor:
        """The face encoder's input ``(B * T, 6, s, s)``: masked target, reference."""
        return torch.cat([mask_lower_half(batch.flat(batch.target)),
                          batch.flat(batch.reference)], 1)

    def condition(self, batch: WindowBatch) -> torch.Tensor | None:
        return None

    def generate(self, batch: WindowBatch) -> torch.Tensor:
        """Generated windows ``(B, T, 3, s, s)`` in ``[0, 1]``."""
        out = self.g(batch.flat(batch.mels), self.faces(batch), self.condition(batch))
        return out.view(batch.target.shape)

    def sync_loss(self, fake: torch.Tensor, batch: WindowBatch) -> torch.Tensor:
        """``E_sync`` of the frozen expert on the generated windows (label 1)."""
        a, v = self.expert(batch.sync_mel, lower_halves(fake))
        return expert_loss(a, v, torch.ones(fake.shape[0], device=self.device))

    def losses(self, fake: torch.Tensor, batch: WindowBatch) -> dict[str, torch.Tensor]:
        parts = {"l1": F.l1_loss(fake, batch.target)}
        if self.alpha > 0:
            parts["sync"] = self.sync_loss(fake, batch)
        return parts

    def total(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return (1 - self.alpha) * parts["l1"] + self.alpha * parts.get("sync", 0.0)

    # -- steps -------------------------------------------------------------------------------
    def draw(self) -> WindowBatch:
        """The step's training batch."""
        return self.sampler.sample()

    def generator_step(self, i: int) -> dict[str, float]:
        self.g.train()
        batch = self.draw()
        fake = self.generate(batch)
        parts = self.losses(fake, batch)
        loss = self.total(parts)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        out = {"g_total": _num(loss), **{f"g_{k}": _num(v) for k, v in parts.items()}}
        out.update(self.after_generator_step(fake.detach(), batch))
        if i == 1 or i % self.cfg.eval_every == 0:
            self.check_gate(i)
        out["sync_weight"] = self.alpha
        return out

    def after_generator_step(self, fake: torch.Tensor, batch: WindowBatch) -> dict[str, float]:
        """Other networks' updates on the step's batch (none for Wav2Lip)."""
        return {}

    @torch.no_grad()
    def validation_sync_loss(self) -> float:
        """Mean ``E_sync`` of the generator (eval mode) on ``eval_batches`` batches of
        validation windows (drawn from a fixed seed every time)."""
        sampler = WindowSampler(self.val_bank, self.cfg, self.device,
                                np.random.default_rng([self.seed, 3]), self.reference)
        self.g.eval()
        losses = [float(self.sync_loss(self.generate(b := sampler.sample()), b))
                  for _ in range(max(1, self.cfg.eval_batches))]
        self.g.train()
        return float(np.mean(losses))

    def check_gate(self, step: int) -> None:
        """The validation pass: open the sync loss once its value falls below the gate."""
        value = self.validation_sync_loss()
        self.gate_log.append({"step": step, "val_sync": round(value, 4)})
        if self.alpha == 0 and value < self.cfg.sync_gate:
            self.alpha = self.cfg.sync_weight

    # -- the schedule ------------------------------------------------------------------------
    def pretrain(self, progress: bool) -> dict[str, Any]:
        """Stages before the generator's (the expert's pre-training)."""
        return {"expert": pretrain_expert(self.expert, self.train_bank, expert_config(self.cfg),
                                          self.device, self.seed, progress,
                                          desc=f"{self.name}: expert")}

    def fit(self, progress: bool = False) -> dict[str, Any]:
        stages = self.pretrain(progress)
        log = run_steps(self.generator_step, self.cfg.steps, None, progress,
                        desc=f"{self.name}: generator")
        stages["generator"] = log.as_dict()
        opened = next((g["step"] for g in self.gate_log
                       if g["val_sync"] < self.cfg.sync_gate), None)
        return {"stages": stages,
                "steps": int(sum(s["steps"] for s in stages.values())),
                "seconds": round(sum(s["seconds"] for s in stages.values()), 2),
                "sync_gate": {"opened_at_step": opened, "checks": self.gate_log}}


def window_l1(trainer: Wav2LipTrainer, batches: int = 2) -> float:
    """Mean L1 of the trainer's generator (eval mode) on validation windows (a fixed seed)."""
    sampler = WindowSampler(trainer.val_bank, trainer.cfg, trainer.device,
                            np.random.default_rng([trainer.seed, 4]), trainer.reference)
    trainer.g.eval()
    with torch.no_grad():
        out = [float(F.l1_loss(trainer.generate(b := sampler.sample()), b.target))
               for _ in range(batches)]
    return float(np.mean(out))
