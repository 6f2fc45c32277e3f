"""Eskimez, Zhang and Duan 2021 (IEEE TMM; arXiv 2008.03592) as seed 000 (Bhagat et al.) describes
it in its Sect. III: the losses and the training of the generator of
:mod:`bench.generators.eskimez2021` (its networks; the module docstring there covers Sect. III-A
and III-B).

Losses (III-C): the generator minimises ``w_mrm * MRM + w_perc * perceptual + w_adv * frame
WGAN + w_emo * emotion``.

- MRM (III-C-1): L1 between generated and real frames weighted per pixel by a 2-D Gaussian
  centred on the mean mouth position (:func:`bench.generators.face_regions.mouth_weights`; the
  aligned crop puts the mouth at a fixed place). *Choice:* the weight map is
  ``mrm_floor + mrm_peak * gaussian``: the seed gives only the Gaussian; the floor makes the
  rest of the face (brows, where the synthetic corpus shows emotion) count as well.
- Perceptual (III-C-2): distance of VGG-19 features (:class:`VGGPerceptualLoss`; the seed
  says "mean-squared", the shared loss is L1 over the layers; ImageNet weights when present,
  else the named stand-in), on ``perc_frames`` random frames of the batch (0: all).
- Frame WGAN (III-C-3): ``-D_frame(fake, identity)``.
- Emotion (III-C-4): the emotion discriminator learns real sequences -> their label and
  generated ones -> fake (cross-entropy over 7 classes); the generator minimises the
  cross-entropy of its sequences against the *requested* label.

Training (choices where the papers are silent): a sample is a run of ``seq_len`` consecutive
frames of one clip (the target; it carries the clip's emotion), the clip's audio around it,
the clip's emotion label (the generator's condition and the emotion discriminator's target),
and an identity image: the first frame (``identity_frames``) of a random clip of the same
speaker, as at generation time, whose identity image is a clip's first frame. Because that
clip usually has another emotion, the target's expression must come from the label, not
from the identity image (with one clip per speaker it is the same clip). The emotion
discriminator is first pre-trained as an emotion classifier on real sequences for
``emo_pretrain_steps`` (at most ``emo_pretrain_fraction`` of the time; seed 000, Sect. IV-C:
the baseline was trained jointly with a pre-trained discriminator); then each step updates
the discriminators once on the step's generated batch (detached) and the generator once
against the updated discriminators. Adam for all networks (``lr_speech`` for the speech
encoder, see the config). Frames: ``perc_frames`` / ``adv_frames`` random frames of the
batch go to the perceptual loss / frame critic (0: all; the demo budget saves time there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench import EMOTIONS, SAMPLES_PER_FRAME
from bench.core.training import run_steps
from bench.generators.clip_banks import ClipBank, load_bank
from bench.generators.eskimez2021 import (
    FAKE_CLASS,
    EmotionDiscriminator,
    EskimezConfig,
    EskimezGenerator,
    FrameDiscriminator,
    emotion_onehot,
    speech_8k,
    speech_segment,
)
from bench.generators.face_regions import mouth_weights
from bench.generators.perceptual import VGGPerceptualLoss

# ---------------------------------------------------------------------------------------------
# Losses


def mrm_loss(fake: torch.Tensor, real: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Seed 000 Sect. III-C-1, mouth region mask loss: mean of ``weights * |fake - real|``
    (``weights`` ``(1, 1, s, s)``, broadcast over frames and channels)."""
    return (weights * (fake - real).abs()).mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP term ``(||grad critic(x_hat)|| - 1)^2`` at random interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ---------------------------------------------------------------------------------------------
# Training


def _num(x: torch.Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


@dataclass
class Batch:
    """One training batch (module docstring, "Training")."""

    identity: torch.Tensor  # (B, 3, s, s)
    target: torch.Tensor  # (B, T, 3, s, s)
    wave: torch.Tensor  # (B, (T + 2 margin) * 320)
    onehot: torch.Tensor  # (B, 6)
    label: torch.Tensor  # (B,) long, -1 where the clip has no emotion


class ClipSampler:
    """Draws :class:`Batch` es from the training clips (see the module docstring)."""

    def __init__(self, bank: ClipBank, speakers: Sequence[str], cfg: EskimezConfig,
                 device: torch.device, seed: int) -> None:
        self.bank, self.cfg, self.device = bank, cfg, device
        self.rng = np.random.default_rng(seed)
        self.waves = [speech_8k(a, f.shape[0]) for a, f in zip(bank.audio, bank.frames,
                                                               strict=True)]
        self.same_speaker = [[j for j, s in enumerate(speakers) if s == speaker]
                             for speaker in speakers]

    def sample(self, batch: int | None = None) -> Batch:
        cfg, bank, rng = self.cfg, self.bank, self.rng
        n = batch or cfg.batch
        identities, targets, waves, emotions = [], [], [], []
        for c in rng.integers(0, len(bank), n):
            length = bank.frames[c].shape[0]
            start = int(rng.integers(0, length - cfg.seq_len + 1))
            targets.append(bank.images(c, slice(start, start + cfg.seq_len), self.device))
            other = int(rng.choice(self.same_speaker[c]))
            first = bank.frames[other].shape[0]
            if cfg.identity_frames > 0:
                first = min(first, cfg.identity_frames)
            frame = int(rng.integers(0, first))
            identities.append(bank.images(other, [frame], self.device)[0])
            waves.append(speech_segment(self.waves[c], start, cfg.seq_len, cfg.speech_margin))
            emotions.append(bank.emotions[c])
        label = torch.tensor([EMOTIONS.index(e) if e in EMOTIONS else -1 for e in emotions],
                             device=self.device)
        return Batch(identity=torch.stack(identities), target=torch.stack(targets),
                     wave=torch.from_numpy(np.stack(waves)).to(self.device),
                     onehot=emotion_onehot(emotions, self.device), label=label)


def load_training_data(train: Sequence[Any], cfg: EskimezConfig, device: torch.device,
                       seed: int) -> ClipSampler:
    """The clips (at ``cfg.size``, at least ``seq_len`` frames) and their sampler."""
    bank = load_bank(train, cfg.size, min_frames=cfg.seq_len)
    speaker_of = {clip.clip_id: clip.speaker for clip in train}
    speakers = [speaker_of[clip_id] for clip_id in bank.clip_ids]
    return ClipSampler(bank, speakers, cfg, device, seed)


class EskimezTrainer:
    """The discriminators, the losses and the optimisers around a generator; one method per
    kind of update. ``steps`` used by :meth:`fit` are ``cfg.steps`` within
    ``cfg.max_seconds``."""

    def __init__(self, generator: EskimezGenerator, cfg: EskimezConfig, sampler: ClipSampler,
                 perceptual: VGGPerceptualLoss | None, device: torch.device) -> None:
        self.g, self.cfg, self.sampler, self.device = generator, cfg, sampler, device
        self.d_frame = FrameDiscriminator(cfg).to(device)
        self.d_emo = EmotionDiscriminator(cfg).to(device)
        self.perceptual = perceptual.to(device) if perceptual is not None else None
        self.weights = (cfg.mrm_floor + mouth_weights(cfg.size, cfg.mrm_sigma,
                                                      cfg.mrm_peak)).to(device)
        speech = list(self.g["speech_encoder"].parameters())
        in_speech = {id(p) for p in speech}
        rest = [p for p in self.g.parameters() if id(p) not in in_speech]
        self.opt_g = torch.optim.Adam(
            [{"params": rest}, {"params": speech, "lr": cfg.lr_speech or cfg.lr_g}],
            lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.d_frame.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.opt_e = torch.optim.Adam(self.d_emo.parameters(), lr=cfg.lr_d, betas=cfg.betas)

    # -- pieces ------------------------------------------------------------------------------
    def generate(self, batch: Batch) -> torch.Tensor:
        noise = torch.randn(batch.target.shape[0], batch.target.shape[1], self.cfg.noise_dim,
                            device=self.device)
        return self.g(batch.identity, batch.wave, batch.onehot, noise)

    def reconstruction(self, fake: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """MRM and perceptual losses of generated sequences ``(B, T, 3, s, s)``."""
        cfg = self.cfg
        out = {"mrm": mrm_loss(fake, batch.target, self.weights)}
        if cfg.w_perc > 0 and self.perceptual is not None:
            pick = self._pick(fake.shape[0] * fake.shape[1], cfg.perc_frames)
            f, r = fake.flatten(0, 1), batch.target.flatten(0, 1)
            if pick is not None:
                f, r = f[pick], r[pick]
            out["perc"] = self.perceptual(f, r)
        return out

    def _pairs(self, frames: torch.Tensor, batch: Batch,
               pick: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame, identity) pairs for the frame discriminator: all ``B * T`` frames, or those
        at the flat indices ``pick``."""
        ident = batch.identity[:, None].expand(-1, frames.shape[1], -1, -1, -1).flatten(0, 1)
        frames = frames.flatten(0, 1)
        if pick is not None:
            frames, ident = frames[pick], ident[pick]
        return frames, ident

    def _pick(self, total: int, k: int) -> torch.Tensor | None:
        """``k`` random flat frame indices of ``total`` (None: all, when ``k`` is 0 or >=
        ``total``)."""
        if 0 < k < total:
            return torch.randperm(total, device=self.device)[:k]
        return None

    def d_update(self, fake: torch.Tensor, batch: Batch) -> dict[str, float]:
        """One update of both discriminators on real and (detached) generated sequences."""
        fake = fake.detach()
        pick = self._pick(fake.shape[0] * fake.shape[1], self.cfg.adv_frames)
        real_f, ident = self._pairs(batch.target, batch, pick)
        fake_f, _ = self._pairs(fake, batch, pick)
        wdist = self.d_frame(real_f, ident).mean() - self.d_frame(fake_f, ident).mean()
        gp = gradient_penalty(lambda x: self.d_frame(x, ident), real_f, fake_f)
        self.opt_d.zero_grad(set_to_none=True)
        (-wdist + self.cfg.w_gp * gp).backward()
        self.opt_d.step()
        emo = self.emotion_d_loss(batch.target, batch.label, fake)
        self.opt_e.zero_grad(set_to_none=True)
        emo.backward()
        self.opt_e.step()
        return {"d_wdist": _num(wdist), "d_gp": _num(gp), "d_emo": _num(emo)}

    def _seqs(self, n: int) -> torch.Tensor:
        """Indices of the sequences the emotion discriminator sees this step
        (``emo_seqs`` random ones, or all)."""
        k = self.cfg.emo_seqs
        if 0 < k < n:
            return torch.randperm(n, device=self.device)[:k]
        return torch.arange(n, device=self.device)

    def emotion_d_loss(self, real: torch.Tensor, label: torch.Tensor,
                       fake: torch.Tensor | None) -> torch.Tensor:
        """Cross-entropy: labelled real sequences -> their emotion, generated -> fake (the
        ``emo_seqs`` subset of the batch when ``fake`` is given)."""
        losses = []
        if fake is not None:
            pick = self._seqs(real.shape[0])
            real, label, fake = real[pick], label[pick], fake[pick]
        known = label >= 0
        if known.any():
            losses.append(F.cross_entropy(self.d_emo(real[known]), label[known]))
        if fake is not None:
            fake_class = torch.full((fake.shape[0],), FAKE_CLASS, device=self.device)
            losses.append(F.cross_entropy(self.d_emo(fake), fake_class))
        return torch.stack(losses).mean() if losses else real.new_zeros(())

    def g_update(self, fake: torch.Tensor, batch: Batch, adversarial: bool) -> dict[str, float]:
        """One generator update: reconstruction losses, plus the frame WGAN and emotion losses
        when ``adversarial``."""
        cfg = self.cfg
        parts = self.reconstruction(fake, batch)
        loss = cfg.w_mrm * parts["mrm"] + cfg.w_perc * parts.get("perc", 0.0)
        if adversarial:
            pick = self._pick(fake.shape[0] * fake.shape[1], cfg.adv_frames)
            fake_f, ident = self._pairs(fake, batch, pick)
            parts["adv"] = -self.d_frame(fake_f, ident).mean()
            seqs = self._seqs(fake.shape[0])
            label = batch.label[seqs]
            known = label >= 0
            parts["emo"] = (F.cross_entropy(self.d_emo(fake[seqs][known]), label[known])
                            if known.any() else fake.new_zeros(()))
            loss = loss + cfg.w_adv * parts["adv"] + cfg.w_emo * parts["emo"]
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"g_total": _num(loss), **{f"g_{k}": _num(v) for k, v in parts.items()}}

    # -- steps (each returns its losses) -----------------------------------------------------
    def emotion_pretrain_step(self, i: int) -> dict[str, float]:
        """The emotion discriminator as a classifier of real sequences only."""
        batch = self.sampler.sample(self.cfg.emo_pretrain_batch or self.cfg.batch)
        loss = self.emotion_d_loss(batch.target, batch.label, None)
        self.opt_e.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_e.step()
        return {"d_emo_real": _num(loss)}

    def generator_step(self, i: int) -> dict[str, float]:
        """Generator only, reconstruction losses (no discriminator)."""
        batch = self.sampler.sample()
        return self.g_update(self.generate(batch), batch, adversarial=False)

    def discriminator_step(self, i: int) -> dict[str, float]:
        """Discriminators only, against the current (fixed) generator."""
        batch = self.sampler.sample()
        with torch.no_grad():
            fake = self.generate(batch)
        return self.d_update(fake, batch)

    def joint_step(self, i: int) -> dict[str, float]:
        """Discriminators, then the generator, on one batch."""
        batch = self.sampler.sample()
        fake = self.generate(batch)
        return {**self.d_update(fake, batch), **self.g_update(fake, batch, adversarial=True)}

    def train_mode(self) -> None:
        self.g.train()
        self.d_frame.train()
        self.d_emo.train()

    def fit(self, progress: bool = False) -> dict[str, Any]:
        """Eskimez et al.'s schedule: emotion discriminator pre-training, then joint
        training, all within ``cfg.max_seconds``."""
        cfg = self.cfg
        self.train_mode()
        budget = cfg.max_seconds
        pre = run_steps(self.emotion_pretrain_step, cfg.emo_pretrain_steps,
                        None if budget is None else budget * cfg.emo_pretrain_fraction,
                        progress, desc="eskimez: emotion D")
        rest = None if budget is None else max(0.0, budget - pre.seconds)
        joint = run_steps(self.joint_step, cfg.steps, rest, progress, desc="eskimez: joint")
        return {"stages": {"emotion_pretrain": pre.as_dict(), "joint": joint.as_dict()},
                "steps": pre.steps + joint.steps,
                "seconds": round(pre.seconds + joint.seconds, 2)}


@torch.no_grad()
def validation_mrm(generator: EskimezGenerator, clips: Sequence[Any], cfg: EskimezConfig,
                   device: torch.device, max_clips: int = 4) -> float | None:
    """Mean MRM loss on the first ``seq_len`` frames of up to ``max_clips`` validation clips
    (identity = each clip's first frame, its own audio and emotion; noise seeded)."""
    if not clips:
        return None
    bank = load_bank(clips, cfg.size, max_clips=max_clips)
    weights = (cfg.mrm_floor + mouth_weights(cfg.size, cfg.mrm_sigma, cfg.mrm_peak)).to(device)
    was_training = generator.training
    generator.eval()
    losses = []
    gen = torch.Generator(device=device).manual_seed(0)
    for c in range(len(bank)):
        t = min(cfg.seq_len, bank.frames[c].shape[0])
        real = bank.images(c, slice(0, t), device)
        fake = generator.synthesize(real[:1], bank.audio[c][:t * SAMPLES_PER_FRAME],
                                    bank.emotions[c], t, gen)
        losses.append(float(mrm_loss(fake, real, weights)))
    generator.train(was_training)
    return float(np.mean(losses))
