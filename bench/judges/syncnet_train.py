"""Train talkbench's own SyncNet (SPEC 5: "Without [syncnet_v2.model], the harness trains its own
SyncNet on the train split of the dataset (contrastive, as in the SyncNet paper), caches it,
and every LSE number says which SyncNet produced it").

A judge module of :mod:`bench.judges.store` (``train`` / ``load`` / ``evaluate``).

What is trained. The network is :class:`bench.judges.syncnet.SyncNet`, the exact module layout
of syncnet_python's ``S``, from scratch; the weights are saved as a plain state dict in
syncnet_python's format (``syncnet_talkbench.pt``, keys ``netcnnaud.0.weight`` ...) with a
provenance JSON beside it, and :func:`load` reads them through
:func:`bench.judges.syncnet.load_syncnet`, the code path of the official ``syncnet_v2.model``.
(Copying both files into the weights dir makes them the fallback SyncNet of every dataset.)

Inputs exactly as the LSE metric makes them (both take them from
:mod:`bench.core.sync_windows`), so that training and scoring see the same distribution: lip
window ``v`` is frames ``[v, v+5)`` of the aligned face crops, resized to 224x224 and put in
BGR order by :func:`bench.core.sync_windows.prepare_lip_frames`, raw 0-255 floats; audio
window ``u`` is MFCC frames ``[4u, 4u+20)`` of :func:`bench.core.audio.mfcc` over the whole
clip's int16 samples (:func:`bench.core.sync_windows.clip_mfcc`); a clip has
``min(T, samples // 640) - 5`` windows (:func:`bench.core.sync_windows.num_windows`).

Objective: Chung and Zisserman 2016 ("Out of time: automated lip sync in the wild", ACCV
workshops), Sect. 3: genuine pairs (a lip window and the audio window at the same time) and
false pairs (the audio shifted), with the contrastive loss on the Euclidean distance ``d``
between the two streams' outputs::

    E = 1/(2N) * sum_n [ y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2 ]

Each step draws ``batch`` lip windows (the batches: :mod:`bench.judges.syncnet_pairs`); each
is paired with its in-sync audio window (``y=1``)
and ``negatives`` false audio windows (``y=0``): the same clip's audio shifted by ``s`` frames,
``MIN_SHIFT <= |s| <= MAX_SHIFT`` (2..15, the range the LSE offset search covers; shifts of
one frame are too close to call false), or, for a ``other_clip`` fraction of them, a window
of another clip. The lip stream is about 60 times costlier than the audio stream, so several
false audio windows per lip window cost little and give more signal per step. Positives and
negatives are averaged separately (``E = (mean_pos + mean_neg) / 2``), which is the paper's
``E`` with as many false pairs as genuine ones. ``d`` is ``torch.nn.functional.
pairwise_distance`` (eps 1e-6), the distance LSE-D is made of.

Lip windows are drawn mostly (``speech_fraction``) where the in-sync audio is speech (MFCC
log-energy at least ``SPEECH_NATS`` above the clip's quietest frame for half the window): in
silence, shifted and in-sync pairs look the same (closed lips, silence), so they only add
label noise.

After training, the BatchNorm running statistics are re-estimated on ``bn_batches`` training
batches with the final weights (cumulative average), since the running averages made during
training lag behind the weights.

Budgets (:data:`BUDGETS`): ``smoke`` (a few steps, seconds: tests), ``demo`` (a few minutes on
a 2-core CPU; Adam) and ``paper`` (for a GPU: bigger batches, many more steps, the paper's
augmentation of mirrored faces and audio volume +-10%, validation every ``eval_every`` steps
keeping the best weights). Every budget trains the same full-size network on the same
224x224 inputs; they differ in schedule only.

Validation (:func:`evaluate`, also run on ``val`` after training): per clip, the LSE numbers
(``SyncNetInstance.evaluate``'s algorithm, :mod:`bench.judges.syncnet_offsets`, the LSE
metric's computation) of the real clip and
of the clip with its audio rolled by ``+-EVAL_SHIFT`` frames (:func:`shift_audio`), from one
pass of the lip stream: LSE-C in sync vs shifted, and how often the AV offset is found within
one frame (0 in sync, the shift otherwise).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import SAMPLES_PER_FRAME
from bench.core.audio import audio_to_int16, mfcc
from bench.core.devices import resolve_device
from bench.core.sync_windows import LIP_WINDOW, num_windows, prepare_lip_frames
from bench.core.training import (
    budget_plan,
    log_linear_lr,
    run_steps,
    set_learning_rate,
    state_snapshot,
)
from bench.core.weights import sha256_of_file
from bench.judges import syncnet_offsets as offsets
from bench.judges.syncnet import JUDGE_NAME, SyncNet, full_fp32_convolutions, load_syncnet
from bench.judges.syncnet_pairs import (
    MAX_SHIFT,
    MIN_SHIFT,
    FeatureBank,
    Pairs,
    build_bank,
    cache_features,
    draw_pairs,
    feature_inputs,
    head_audio,
    head_lip,
    head_modules,
    head_parameters,
    network_inputs,
)

WEIGHTS_FILE = "syncnet_talkbench.pt"
"""State dict in syncnet_python's format (same name as the weights-dir fallback file)."""

FORMAT_VERSION = 1

EVAL_SHIFT = 10
"""Frames by which :func:`evaluate` rolls the audio for its out-of-sync check."""

OFFSET_CHANCE = 3 / (2 * offsets.VSHIFT + 1)
"""Chance level of ``offset_accuracy`` (:func:`evaluate`): a random offset among the
``2 * VSHIFT + 1`` searched lands within one frame of the truth 3 times in 31."""

INIT_OUTPUT_SCALE = 0.1
"""Factor on the last linear layers' initial weights (embedding distances start near 4)."""


@dataclass(frozen=True)
class Budget:
    """How one budget trains (see the module docstring)."""

    steps: int
    batch: int
    """Lip windows per step."""
    lr: float
    lr_final: float
    """The learning rate decays log-linearly from ``lr`` to ``lr_final`` over the steps."""
    group: int = 4
    """Lip windows per clip in a batch (``batch / group`` clips per batch)."""
    optimizer: str = "adam"
    """``adam`` (betas 0.9, 0.999) or ``sgd`` (momentum 0.9, as the paper)."""
    weight_decay: float = 0.0
    margin: float = 10.0
    """Contrastive margin on the embedding distance."""
    speech_fraction: float = 0.9
    """Fraction of lip windows drawn from speech (see the module docstring)."""
    augment: bool = False
    """Paper's augmentation: mirror half of the lip windows, scale the volume by U(0.9, 1.1)."""
    bn_batches: int = 8
    """Batches for the final BatchNorm re-estimation (0: keep the running averages)."""
    val_clips: int = 8
    """Most validation clips evaluated (the first ones)."""
    eval_every: int = 0
    """Validate every this many steps and keep the best weights (0: once, at the end)."""
    max_seconds: float | None = None
    """Explicit opt-in only (no budget sets it: budgets are step counts, so the weights do not
    depend on the machine's load): stop training steps once this many seconds have passed
    since ``train`` started (logged as ``stopped_early``)."""
    frozen_trunk: bool = False
    """Keep the trunk (``netcnnlip[:18]``, ``netcnnaud[:18]``: conv1-conv5 of both streams)
    at its seeded random initialisation and train the rest on cached trunk features (see
    the module docstring)."""
    trunk_windows: int = 1200
    """Frozen trunk: lip windows whose trunk features are cached (spread over all clips)."""
    calib_batches: int = 4
    """Frozen trunk: training batches for the trunk's BatchNorm statistics."""


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(steps=2, batch=4, group=2, lr=1e-3, lr_final=1e-3, frozen_trunk=True,
                    trunk_windows=8, calib_batches=1, bn_batches=1, val_clips=1),
    "demo": Budget(steps=1500, batch=64, group=4, lr=1e-3, lr_final=1e-4, speech_fraction=0.5,
                   frozen_trunk=True, trunk_windows=1200, calib_batches=2, bn_batches=20,
                   val_clips=6),
    "paper": Budget(steps=30_000, batch=64, group=4, lr=1e-3, lr_final=1e-5,
                    speech_fraction=0.5, augment=True, bn_batches=32, val_clips=64,
                    eval_every=2_000),
}


# ---------------------------------------------------------------------------------------------
# The loss


def contrastive_loss(lip: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor,
                     margin: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The contrastive loss of the module docstring over the pairs ``labels`` marks (1
    genuine, 0 false, -1 unused), and the mean distances of genuine and false pairs.
    ``lip`` ``(B, D)``, ``audio`` ``(A, D)``, ``labels`` ``(B, A)``."""
    b, a = labels.shape
    dist = F.pairwise_distance(lip[:, None, :].expand(b, a, -1),
                               audio[None, :, :].expand(b, a, -1))
    d_pos = dist[labels == 1]
    # The LSE offset search compares lip windows near the clip's ends with zero audio
    # embeddings (its padding): those are false pairs too.
    d_pad = F.pairwise_distance(lip, torch.zeros_like(lip))
    d_neg = torch.cat([dist[labels == 0], d_pad])
    loss = 0.5 * (d_pos.pow(2).mean() + F.relu(margin - d_neg).pow(2).mean())
    return loss, {"d_pos": float(d_pos.detach().mean()), "d_neg": float(d_neg.detach().mean())}


# ---------------------------------------------------------------------------------------------
# Training


def _init_weights(net: SyncNet, generator: torch.Generator) -> None:
    """Kaiming-normal convolutions and linear layers (fan-in, ReLU gain), zero biases,
    BatchNorm at 1/0: a seeded from-scratch start."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_parameters()
        # Start with distances of a few units, below the margin, so that false pairs are
        # pushed apart from the first step instead of everything collapsing first.
        net.netfclip[-1].weight *= INIT_OUTPUT_SCALE
        net.netfcaud[-1].weight *= INIT_OUTPUT_SCALE


@torch.no_grad()
def recalibrate_batchnorm(modules: Sequence[nn.Module], batches: int,
                          forward: Callable[[], object]) -> None:
    """Re-estimate the running mean and variance of every BatchNorm in ``modules`` as the plain
    average over ``batches`` calls of ``forward`` (training batches through the current
    weights, with those modules in train mode); the modules are left in eval mode."""
    norms = [m for module in modules for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if batches <= 0 or not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    for module in modules:
        module.train()
    with full_fp32_convolutions():
        for _ in range(batches):
            forward()
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    for module in modules:
        module.eval()


def train(train: Sequence[Any], val: Sequence[Any] | None, out_dir: str | Path, *,
          budget: str = "demo", device: str | torch.device | None = None, seed: int = 0,
          progress: bool = False, plan: Budget | None = None,
          on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train a SyncNet from scratch on prepared clips (``Clip.frames`` aligned face crops,
    ``Clip.audio`` 16 kHz) and write ``syncnet_talkbench.pt`` (syncnet_python state dict) and
    its provenance JSON into ``out_dir``. ``plan`` overrides the budget's settings. Returns
    the training log (plain JSON values) with the validation quality of :func:`evaluate` on
    up to ``val_clips`` clips of ``val``.
    """
    if plan is None:
        plan = budget_plan(BUDGETS, budget)
    if plan.optimizer not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {plan.optimizer!r}")
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    start_time = time.perf_counter()
    timings: dict[str, float] = {}

    bank = build_bank(train, rng, progress)
    if not len(bank):
        raise ValueError(f"SyncNet training needs clips with at least {2 * MIN_SHIFT + 1} "
                         f"windows ({2 * MIN_SHIFT + 1 + LIP_WINDOW} frames of video and "
                         f"audio); none of the {len(train)} has (skipped: "
                         f"{dict(list(bank.skipped.items())[:3])})")
    timings["load_s"] = time.perf_counter() - start_time

    net = SyncNet()
    _init_weights(net, torch.Generator().manual_seed(seed))
    net.to(dev)

    def full_batch() -> tuple[Pairs, torch.Tensor, torch.Tensor]:
        pairs = draw_pairs(bank, plan, rng)
        lips, audio = network_inputs(bank, pairs, dev, rng if plan.augment else None)
        return pairs, net.forward_lip(lips), net.forward_aud(audio)

    features: FeatureBank | None = None
    if plan.frozen_trunk:
        # The trunk keeps its random initialisation; its BatchNorm statistics come from
        # training windows, then its outputs are computed once.
        recalibrate_batchnorm([net], plan.calib_batches, full_batch)
        net.eval()
        features = cache_features(net, bank, plan, rng, dev)
        timings["trunk_s"] = time.perf_counter() - start_time - timings["load_s"]
        trained_modules = head_modules(net)
        params = head_parameters(net)

        def batch() -> tuple[Pairs, torch.Tensor, torch.Tensor]:
            pairs = draw_pairs(bank, plan, rng, features.lip_windows)
            lips, audio = feature_inputs(features, pairs)
            return pairs, head_lip(net, lips.to(dev)), head_audio(net, audio.to(dev))
    else:
        trained_modules = [net]
        params = list(net.parameters())
        batch = full_batch
    if plan.optimizer == "sgd":
        optimiser: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=plan.lr, momentum=0.9, weight_decay=plan.weight_decay)
    else:
        optimiser = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay)

    losses: list[float] = []
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -math.inf, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    val_clips = [val[i] for i in range(min(len(val), plan.val_clips))] if val else []

    def step(i: int) -> dict[str, float]:
        nonlocal best, best_state
        set_learning_rate(optimiser, log_linear_lr(plan.lr, plan.lr_final, i, plan.steps))
        for module in trained_modules:
            module.train()
        pairs, lip, aud = batch()
        loss, dists = contrastive_loss(lip, aud, pairs.labels.to(dev), plan.margin)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(i, losses[-1])
        if val_clips and plan.eval_every and i % plan.eval_every == 0 and i < plan.steps:
            recalibrate_batchnorm(trained_modules, plan.bn_batches, batch)
            quality = evaluate(net, val_clips, device=dev)
            history.append({"step": i, "train_loss": float(np.mean(losses[-50:])),
                            **_headline(quality)})
            if _score(quality) > best["score"]:
                best = {"score": _score(quality), "step": i}
                best_state = state_snapshot(net)
        return {"loss": losses[-1], **dists}

    train_start = time.perf_counter()
    with full_fp32_convolutions():
        run = run_steps(step, plan.steps, plan.max_seconds, progress,
                        desc=f"syncnet: train ({budget})", started=start_time)
    steps_done = run.steps
    if steps_done == 0:
        raise RuntimeError("SyncNet training ran no step (max_seconds too small?)")
    timings["train_s"] = time.perf_counter() - train_start

    recalibrate_batchnorm(trained_modules, plan.bn_batches, batch)
    net.eval()
    val_start = time.perf_counter()
    val_quality = evaluate(net, val_clips, device=dev) if val_clips else None
    if val_quality is not None and best_state is not None and best["score"] > _score(val_quality):
        net.load_state_dict(best_state)
        val_quality = evaluate(net, val_clips, device=dev)
    else:
        best["step"] = steps_done
    timings["val_s"] = time.perf_counter() - val_start

    weights = out_dir / WEIGHTS_FILE
    torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, weights)
    sha256 = sha256_of_file(weights)
    trunk = ("trunk (conv1-conv5 of both streams) frozen at its seeded random initialisation, "
             f"BatchNorm statistics from {plan.calib_batches} training batches"
             if plan.frozen_trunk else "all layers trained")
    sidecar = {
        "source": f"talkbench-trained (bench.judges.syncnet_train, {budget} budget, "
                  f"{steps_done} steps, seed {seed}, {len(bank)} training clips)",
        "sha256": sha256, "format": FORMAT_VERSION, "budget": budget, "seed": seed,
        "steps": steps_done, "n_train_clips": len(bank), "training": trunk,
        "objective": "contrastive loss, Chung and Zisserman 2016 Sect. 3, margin "
                     f"{plan.margin}, false pairs shifted {MIN_SHIFT}..{MAX_SHIFT} frames",
    }
    (out_dir / (WEIGHTS_FILE + ".json")).write_text(json.dumps(sidecar, indent=2))

    first, last = run.first or {}, run.last or {}  # means over the first and last 20 steps
    log: dict[str, Any] = {
        "judge": JUDGE_NAME, "weights_file": WEIGHTS_FILE, "weights_sha256": sha256,
        "budget": budget, "plan": asdict(plan), "seed": seed, "device": str(dev),
        "training": trunk, "steps": steps_done, "stopped_early": run.stopped_early,
        "n_train_clips": len(bank), "n_train_windows": int(bank.windows.sum()),
        "n_cached_lip_windows": (int(sum(len(w) for w in features.lip_windows))
                                 if features is not None else 0),
        "skipped_train": dict(list(bank.skipped.items())[:5]),
        "n_skipped_train": len(bank.skipped),
        "train_loss_first": first["loss"], "train_loss_last": last["loss"],
        "train_d_pos_last": last["d_pos"], "train_d_neg_last": last["d_neg"],
        **{k: round(v, 3) for k, v in timings.items()},
    }
    if val_quality is not None:
        log["val"] = val_quality
        log["best_step"] = best["step"]
    if history:
        log["history"] = history
    return log


def _headline(quality: dict[str, Any]) -> dict[str, Any]:
    keys = ("lse_c", "lse_c_shifted", "offset_accuracy", "shifted_offset_accuracy")
    return {k: quality.get(k) for k in keys}


def _score(quality: dict[str, Any]) -> float:
    """Model selection: offset accuracy (in sync and shifted), ties broken by the LSE-C gap."""
    if not quality.get("n"):
        return -math.inf
    return (quality["offset_accuracy"] + quality["shifted_offset_accuracy"]
            + 1e-3 * (quality["lse_c"] - quality["lse_c_shifted"]))


# ---------------------------------------------------------------------------------------------
# Loading and evaluating


def weights_path(directory: str | Path) -> Path:
    """The weights file :func:`train` wrote into ``directory``."""
    return Path(directory) / WEIGHTS_FILE


def load_with_provenance(directory: str | Path, device: str | torch.device | None = None
                         ) -> tuple[SyncNet, dict[str, str]]:
    """The trained SyncNet and its provenance, through the official weights' loader
    (:func:`bench.judges.syncnet.load_syncnet`: strict state dict, sha256 checked against the
    provenance JSON)."""
    return load_syncnet(weights_path(directory), device)


def load(directory: str | Path, device: str | torch.device | None = None) -> SyncNet:
    """The SyncNet written by :func:`train` into ``directory``, in eval mode on ``device``."""
    return load_with_provenance(directory, device)[0]


def shift_audio(audio: np.ndarray, frames: int) -> np.ndarray:
    """The audio rolled so that it leads the video by ``frames`` frames (negative: lags):
    ``out[t] = audio[t + 640 * frames]`` (circularly). The LSE AV offset of the result is the
    clip's offset plus ``frames`` (:mod:`bench.judges.syncnet_offsets`: offset = vshift -
    argmin)."""
    return np.roll(np.asarray(audio), -SAMPLES_PER_FRAME * frames)


class ClipTooShort(ValueError):
    """A clip with fewer windows than the offset search needs (``offsets.VSHIFT + 1``)."""


@torch.inference_mode()
def clip_lse(net: SyncNet, frames: np.ndarray, audios: Sequence[np.ndarray],
             device: torch.device | None = None) -> list[offsets.LSEResult]:
    """LSE results of one video with each of ``audios`` (float, 16 kHz), computing the lip
    embeddings once. Exactly the metric's path: :func:`bench.core.sync_windows.prepare_lip_frames`,
    then :mod:`bench.judges.syncnet_offsets`' ``embed_lips``, ``embed_audio``,
    ``offset_distances`` and ``lse_from_distances``. Raises :class:`ClipTooShort` for a clip
    too short for the offset search (the metric calls it unavailable)."""
    dev = device or next(net.parameters()).device
    ints = [audio_to_int16(a) for a in audios]
    windows = min(num_windows(frames.shape[0], a.shape[0]) for a in ints)
    vshift = offsets.VSHIFT
    if windows < vshift + 1:
        raise ClipTooShort(f"clip too short for LSE: {max(windows, 0)} SyncNet windows; "
                           f"{vshift + 1} are needed for the +-{vshift}-frame offset search")
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(dev)
    lip = offsets.embed_lips(net, prepare_lip_frames(video), windows)
    results = []
    for audio in ints:
        emb = offsets.embed_audio(net, mfcc(audio), windows)
        results.append(offsets.lse_from_distances(offsets.offset_distances(lip, emb)))
    return results


def evaluate(judge: SyncNet, clips: Sequence[Any], *,
             device: str | torch.device | None = None, shift: int = EVAL_SHIFT
             ) -> dict[str, Any]:
    """The SyncNet's quality on real (in-sync) clips, by the LSE metric's algorithm:

    - ``lse_d``, ``lse_c``: means over clips of the real clips' values; ``av_offset``: mean
      of the absolute offsets (as the LSE metric's column), ``av_offset_signed`` the signed mean;
    - ``offset_accuracy``: fraction of clips whose AV offset is within one frame of 0;
    - ``lse_c_shifted``, ``lse_d_shifted``: the same with the audio rolled by ``+shift`` and
      ``-shift`` frames (:func:`shift_audio`), averaged over both;
    - ``shifted_offset_accuracy``: fraction of those whose offset is within one frame of the
      shift;
    - ``dist_gap``: mean over clips of (mean distance at the shifted audio's own offset ...) no:
      the mean distance at offsets at least ``MIN_SHIFT`` away from the true one minus the
      distance at the true one, for the real clips (how far apart false and genuine pairs are).

    ``figure`` names the quality figure (``offset_accuracy``) and ``chance`` its chance level:
    a SyncNet that learned nothing picks one of the ``2 * VSHIFT + 1`` offsets at random, so it
    lands within one frame of the truth with probability ``3 / (2 * VSHIFT + 1)`` (3/31; one
    exact offset: 1/31). Clips too short for the offset search are counted in ``n_skipped``.
    """
    dev = resolve_device(device) if device is not None else next(judge.parameters()).device
    judge = judge.to(dev).eval()
    rows: dict[str, list[float]] = {k: [] for k in (
        "lse_d", "lse_c", "av_offset", "av_offset_signed", "in_sync_ok", "lse_d_shifted",
        "lse_c_shifted", "shifted_ok", "dist_gap")}
    skipped: dict[str, str] = {}
    for i in range(len(clips)):
        clip = clips[i]
        audio = np.asarray(clip.audio)
        try:
            real, ahead, behind = clip_lse(judge, np.asarray(clip.frames),
                                           [audio, shift_audio(audio, shift),
                                            shift_audio(audio, -shift)], dev)
        except ClipTooShort as err:
            skipped[clip.clip_id] = str(err)
            continue
        rows["lse_d"].append(real.lse_d)
        rows["lse_c"].append(real.lse_c)
        rows["av_offset"].append(abs(real.av_offset))
        rows["av_offset_signed"].append(real.av_offset)
        rows["in_sync_ok"].append(float(abs(real.av_offset) <= 1))
        for result, expected in ((ahead, shift), (behind, -shift)):
            rows["lse_d_shifted"].append(result.lse_d)
            rows["lse_c_shifted"].append(result.lse_c)
            rows["shifted_ok"].append(float(abs(result.av_offset - expected) <= 1))
        vshift = (len(real.mean_dists) - 1) // 2
        offsets = vshift - np.arange(len(real.mean_dists))
        far = np.abs(offsets) >= MIN_SHIFT
        rows["dist_gap"].append(float(real.mean_dists[far].mean() - real.mean_dists[vshift]))
    n = len(rows["lse_c"])
    out: dict[str, Any] = {"n": n, "shift": shift, "figure": "offset_accuracy",
                           "chance": OFFSET_CHANCE, "n_skipped": len(skipped),
                           "skipped_examples": dict(list(skipped.items())[:3])}
    if n:
        mean = {k: float(np.mean(np.asarray(v, dtype=np.float64))) for k, v in rows.items()}
        out.update(lse_d=mean["lse_d"], lse_c=mean["lse_c"], av_offset=mean["av_offset"],
                   av_offset_signed=mean["av_offset_signed"],
                   offset_accuracy=mean["in_sync_ok"], lse_d_shifted=mean["lse_d_shifted"],
                   lse_c_shifted=mean["lse_c_shifted"],
                   shifted_offset_accuracy=mean["shifted_ok"], dist_gap=mean["dist_gap"])
    return out
