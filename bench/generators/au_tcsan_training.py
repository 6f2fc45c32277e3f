"""Training of seed 004's model (:mod:`bench.generators.au_tcsan`), in the paper's three stages
(Sect. 4.2):

1. **Audio2AU pre-training** (:func:`pretrain_audio2au`): the five heads learn their AU's
   occurrence from the MFCC window of each labelled training frame ("pre-trained with paired
   audio and AU data", Sect. 3.1); loss: each head's BCE with the positive class weighted by
   (1 - r_i) / r_i (ours, the paper does not give it). The audio standardisation is set from
   the training frames first.
2. **AU-classifier pre-training** (:func:`pretrain_au_classifier`): the generator's own AU
   classifier on the lower half of real training frames and their labels, with the AU loss of
   Eqs. 5-7 (Sect. 5.1 and Table 1 do this on GRID).
3. **Full model** (:class:`FullModelTrainer`): Eq. 11,
   ``1.5 L_rec + 1.5 L_id + 0.07 L_per + 0.02 L_au``; Adam (beta1 0.5) at 2e-4 for the
   encoders, TCSAN and decoder, while the Audio2AU heads are fine-tuned at 1e-6 and the AU
   classifier at 1e-7 (Sect. 4.2), each with its own Adam; the frozen VGG-19 gives L_per.
   *Ours where the paper is silent:* one backward pass of the whole Eq. 11 loss per step, so
   the Audio2AU heads (part of the generator's graph) get the gradient of every term, not only
   of L_au, and the AU classifier (in L_au only) gets L_au's; a step is ``batch`` sequences of
   ``seq_len`` consecutive frames of random training clips, each with its clip's first frame
   as the identity image; the perceptual loss may see a subset of the frames
   (``perc_frames``) to save time at small budgets.

Each stage's length is a step count: ``*_epochs`` epochs over the training frames when set
(the paper budget: 20 epochs of the full model, Sect. 4.2), else ``*_steps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.training import run_steps
from bench.generators.au_tcsan import (
    AUTCSANConfig,
    AUTCSANNets,
    AUTrainingData,
    au_loss,
    class_weights,
    epoch_steps,
    f1_and_chance,
    id_loss,
    lower_half,
    rec_loss,
)
from bench.generators.clip_banks import ClipBank


def positive_weights(rates: np.ndarray, min_rate: float) -> torch.Tensor:
    """BCE weight of the positive class per AU for the Audio2AU pre-training:
    ``(1 - r) / r`` with ``r`` floored at ``min_rate`` (and at most ``1 - min_rate``)."""
    r = np.clip(np.asarray(rates, dtype=np.float64), min_rate, 1 - min_rate)
    return torch.from_numpy((1 - r) / r).float()


def pretrain_audio2au(nets: AUTCSANNets, data: AUTrainingData, cfg: AUTCSANConfig,
                      rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    """Stage 1: the five Audio2AU heads on (MFCC window, AU label) pairs of the labelled
    training frames; sets the MFCC standardisation first."""
    nets["mfcc"].fit(data.mfcc)
    heads = nets["a2au"]
    pos_weight = positive_weights(data.rates(), cfg.min_rate).to(device)
    optimizer = torch.optim.Adam(heads.parameters(), lr=cfg.a2au_lr, betas=cfg.betas)
    steps = epoch_steps(cfg.a2au_epochs, cfg.a2au_steps, data.labelled_frames, cfg.a2au_batch)

    def step(_: int) -> dict[str, float]:
        mfcc, y = data.mfcc_labels(data.frames_sample(cfg.a2au_batch, rng), device)
        logits = heads(nets["mfcc"](mfcc))
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"bce": loss.item()}

    heads.train()
    return run_steps(step, steps, desc="au-tcsan: Audio2AU").as_dict()


def pretrain_au_classifier(nets: AUTCSANNets, data: AUTrainingData, cfg: AUTCSANConfig,
                           weights: torch.Tensor, rng: np.random.Generator,
                           device: torch.device) -> dict[str, Any]:
    """Stage 2: the generator's AU classifier on the lower half of real labelled training
    frames, with Eqs. 5-7."""
    classifier = nets["au_classifier"]
    optimizer = torch.optim.Adam(classifier.parameters(), lr=cfg.auc_lr, betas=cfg.betas)
    steps = epoch_steps(cfg.auc_epochs, cfg.auc_steps, data.labelled_frames, cfg.auc_batch)

    def step(_: int) -> dict[str, float]:
        x, y = data.images_labels(data.frames_sample(cfg.auc_batch, rng), device)
        losses = au_loss(classifier(lower_half(x)), y, weights, eps=cfg.dice_eps)
        optimizer.zero_grad(set_to_none=True)
        losses["au"].backward()
        optimizer.step()
        return {k: v.item() for k, v in losses.items()}

    classifier.train()
    return run_steps(step, steps, desc="au-tcsan: AU classifier").as_dict()


class FullModelTrainer:
    """Stage 3: Eq. 11 on sequences (module docstring). ``perceptual`` is a
    :class:`bench.generators.perceptual.VGGPerceptualLoss` (or None when ``w_perc`` is 0)."""

    def __init__(self, nets: AUTCSANNets, data: AUTrainingData, cfg: AUTCSANConfig,
                 weights: torch.Tensor, perceptual: torch.nn.Module | None,
                 rng: np.random.Generator, device: torch.device) -> None:
        self.nets, self.data, self.cfg, self.rng, self.device = nets, data, cfg, rng, device
        self.weights = weights.to(device)
        self.perceptual = perceptual.to(device) if perceptual is not None else None
        generator = [p for name in ("identity", "audio", "tcsan", "decoder")
                     for p in nets[name].parameters()]
        self.opt_g = torch.optim.Adam(generator, lr=cfg.lr, betas=cfg.betas)
        self.opt_a2au = torch.optim.Adam(nets["a2au"].parameters(), lr=cfg.lr_a2au,
                                         betas=cfg.betas)
        self.opt_auc = torch.optim.Adam(nets["au_classifier"].parameters(), lr=cfg.lr_auc,
                                        betas=cfg.betas)
        self.optimizers = (self.opt_g, self.opt_a2au, self.opt_auc)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every term of Eq. 11 for one batch of sequences, and the weighted ``total``."""
        cfg = self.cfg
        fake = self.nets(batch["identity"], batch["mfcc"])
        real = batch["frames"]
        out = {"rec": rec_loss(fake, real), "id": id_loss(fake, batch["identity"])}
        flat_fake, flat_real = fake.flatten(0, 1), real.flatten(0, 1)
        if cfg.w_perc > 0 and self.perceptual is not None:
            pick = slice(None)
            if 0 < cfg.perc_frames < flat_fake.shape[0]:
                pick = torch.from_numpy(self.rng.choice(flat_fake.shape[0], cfg.perc_frames,
                                                        replace=False)).to(self.device)
            out["perc"] = self.perceptual(flat_fake[pick], flat_real[pick])
        else:
            out["perc"] = fake.new_zeros(())
        logits = self.nets["au_classifier"](lower_half(flat_fake))
        out.update(au_loss(logits, batch["labels"].flatten(0, 1), self.weights,
                           batch["valid"].flatten(), cfg.dice_eps))
        out["total"] = (cfg.w_rec * out["rec"] + cfg.w_id * out["id"]
                        + cfg.w_perc * out["perc"] + cfg.w_au * out["au"])
        return out

    def step(self, _: int = 0) -> dict[str, float]:
        batch = self.data.sequences(self.cfg.batch, self.cfg.seq_len, self.rng, self.device)
        losses = self.losses(batch)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        for optimizer in self.optimizers:
            optimizer.step()
        return {k: v.item() for k, v in losses.items()}

    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        frames = self.data.bank.total_frames
        steps = epoch_steps(cfg.epochs, cfg.steps, frames, cfg.batch * cfg.seq_len)
        self.nets.train()
        return run_steps(self.step, steps, desc="au-tcsan: full model").as_dict()


def train_au_tcsan(nets: AUTCSANNets, data: AUTrainingData, cfg: AUTCSANConfig,
                   perceptual: torch.nn.Module | None, device: torch.device,
                   seed: int) -> dict[str, Any]:
    """All three stages on ``data``; returns their logs, the AU weights w_i and the
    occurrence rates they come from."""
    if not data.labelled_frames:
        raise ValueError("au-tcsan needs per-frame AU labels for its Audio2AU and AU "
                         "classifier: no training frame has one")
    rng = np.random.default_rng(seed)
    rates = data.rates()
    weights = class_weights(rates, cfg.min_rate)
    log: dict[str, Any] = {"frames": data.bank.total_frames, "clips": len(data.bank),
                           "labelled_frames": data.labelled_frames,
                           "au_rates": [round(float(r), 4) for r in rates],
                           "au_weights": [round(float(w), 4) for w in weights]}
    log["audio2au"] = pretrain_audio2au(nets, data, cfg, rng, device)
    log["au_classifier"] = pretrain_au_classifier(nets, data, cfg, weights, rng, device)
    log.update(FullModelTrainer(nets, data, cfg, weights, perceptual, rng, device).fit())
    nets.eval()
    return log


# ---------------------------------------------------------------------------------------------
# Held-out checks


@torch.no_grad()
def audio2au_scores(nets: AUTCSANNets, data: AUTrainingData,
                    device: torch.device) -> dict[str, Any]:
    """The Audio2AU heads (sigmoid of their last FC) on every labelled frame of ``data``:
    per-AU F1, all-positive F1 (chance) and balanced accuracy."""
    nets.eval()
    pairs = data.labelled
    probs, ys = [], []
    for i in range(0, len(pairs), 512):
        mfcc, y = data.mfcc_labels(pairs[i:i + 512], device)
        probs.append(torch.sigmoid(nets["a2au"](nets["mfcc"](mfcc))).cpu())
        ys.append(y.cpu())
    return f1_and_chance(torch.cat(probs).numpy(), torch.cat(ys).numpy())


@torch.no_grad()
def au_classifier_scores(nets: AUTCSANNets, data: AUTrainingData,
                         device: torch.device) -> dict[str, Any]:
    """The generator's AU classifier on the real labelled frames of ``data``."""
    nets.eval()
    pairs = data.labelled
    probs, ys = [], []
    for i in range(0, len(pairs), 256):
        x, y = data.images_labels(pairs[i:i + 256], device)
        probs.append(torch.sigmoid(nets["au_classifier"](lower_half(x))).cpu())
        ys.append(y.cpu())
    return f1_and_chance(torch.cat(probs).numpy(), torch.cat(ys).numpy())


@torch.no_grad()
def validation_l1(nets: AUTCSANNets, bank: ClipBank, clips: Sequence[int] | None,
                  device: torch.device) -> float | None:
    """Mean L1 of clips generated from their first frame and audio, as at test time."""
    nets.eval()
    index = range(len(bank)) if clips is None else clips
    errors = []
    for c in index:
        real = bank.images(c, slice(None), device)
        fake = nets.synthesize(real[:1], bank.audio[c], real.shape[0])
        errors.append(float((fake - real).abs().mean()))
    return float(np.mean(errors)) if errors else None
