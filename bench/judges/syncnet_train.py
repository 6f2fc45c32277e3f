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

Inputs exactly as the LSE metric makes them (:mod:`bench.metrics.lse`), so that training and
scoring see the same distribution: lip window ``v`` is frames ``[v, v+5)`` of the aligned
face crops, resized to 224x224 and put in BGR order by
:func:`bench.metrics.lse.prepare_lip_frames`, raw 0-255 floats; audio window ``u`` is MFCC
frames ``[4u, 4u+20)`` of :func:`bench.judges.mfcc.mfcc` over the whole clip's int16 samples
(:func:`bench.judges.mfcc.audio_to_int16`); a clip has ``min(T, samples // 640) - 5`` windows
(:func:`bench.metrics.lse.num_windows`).

Objective: Chung and Zisserman 2016 ("Out of time: automated lip sync in the wild", ACCV
workshops), Sect. 3: genuine pairs (a lip window and the audio window at the same time) and
false pairs (the audio shifted), with the contrastive loss on the Euclidean distance ``d``
between the two streams' outputs::

    E = 1/(2N) * sum_n [ y_n d_n^2 + (1 - y_n) max(margin - d_n, 0)^2 ]

Each step draws ``batch`` lip windows; each is paired with its in-sync audio window (``y=1``)
and ``negatives`` false audio windows (``y=0``): the same clip's audio shifted by ``s`` frames,
``MIN_SHIFT <= |s| <= MAX_SHIFT`` (2..15, the range the LSE offset search covers; shifts of
one frame are too close to call false), or, for a ``other_clip`` fraction of them, a window
of another clip. The lip stream is about 60 times costlier than the audio stream, so several
false audio windows per lip window cost little and give more signal per step. Positives and
negatives are averaged separately (``E = (mean_pos + mean_neg) / 2``), which is the paper's
``E`` with as many false pairs as genuine ones. ``d`` is ``torch.nn.functional.
pairwise_distance`` (eps 1e-6), the distance LSE-D is made of.

Lip windows are drawn mostly (``speech_fraction``) where the in-sync audio is speech (MFCC
log-energy at least ``SPEECH_NATS`` above the clip's quietest frame for half the window):
in silence, shifted and in-sync pairs look the same (closed lips, silence), so they only add
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
(``SyncNetInstance.evaluate``'s algorithm, via :mod:`bench.metrics.lse`) of the real clip and
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

from bench.judges.mfcc import audio_to_int16, mfcc
from bench.judges.syncnet import (
    JUDGE_NAME,
    LIP_WINDOW,
    MFCC_PER_FRAME,
    MFCC_WINDOW,
    SyncNet,
    full_fp32_convolutions,
    load_syncnet,
    resolve_device,
)
from bench.judges.weights import sha256_of_file

WEIGHTS_FILE = "syncnet_talkbench.pt"
"""State dict in syncnet_python's format (same name as the weights-dir fallback file)."""

FORMAT_VERSION = 1

MIN_SHIFT = 2
"""Smallest audio shift, in frames, used as a false pair."""

MAX_SHIFT = 15
"""Largest audio shift, in frames, used as a false pair (the LSE offset search's vshift)."""

SPEECH_NATS = 3.0
"""An MFCC frame is speech when its log energy exceeds the clip's quietest frame by this."""

EVAL_SHIFT = 10
"""Frames by which :func:`evaluate` rolls the audio for its out-of-sync check."""

INIT_OUTPUT_SCALE = 0.1
"""Factor on the last linear layers' initial weights (embedding distances start near 4)."""

TRUNK_LAYERS = 18
"""``netcnnlip[:18]`` / ``netcnnaud[:18]`` (conv1-conv5 with their BatchNorm and pooling): the
part a frozen-trunk budget does not train."""

MAX_BANK_BYTES = 6 * 2**30
"""Most bytes of training frames kept in memory (beyond it, each clip keeps a random run)."""


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
    """Stop training steps once this many seconds have passed since ``train`` started (logged
    as ``stopped_early``)."""
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
                   val_clips=6, max_seconds=900.0),
    "paper": Budget(steps=30_000, batch=64, group=4, lr=1e-3, lr_final=1e-5,
                    speech_fraction=0.5, augment=True, bn_batches=32, val_clips=64,
                    eval_every=2_000),
}


# ---------------------------------------------------------------------------------------------
# Training data


@dataclass
class SyncBank:
    """Training clips in memory: per clip the face crops ``(T, 3, H, W)`` uint8 (network size
    is reached per batch), the MFCCs ``(F, 13)`` float32, and which of its windows are speech."""

    frames: list[torch.Tensor]
    mfccs: list[torch.Tensor]
    windows: np.ndarray
    """Number of windows per clip."""
    speech: list[np.ndarray]
    """Per clip, the indices of its speech windows."""
    skipped: dict[str, str]

    def __len__(self) -> int:
        return len(self.frames)


def clip_mfcc(audio: np.ndarray) -> np.ndarray:
    """MFCCs of a clip's float audio as the LSE metric computes them: ``(F, 13)``."""
    return mfcc(audio_to_int16(audio)).astype(np.float32)


def speech_windows(mfccs: np.ndarray, windows: int) -> np.ndarray:
    """Indices of the audio windows of which at least half the MFCC frames are speech."""
    if windows <= 0:
        return np.zeros(0, dtype=np.int64)
    energy = mfccs[:, 0]
    speech = (energy > energy.min() + SPEECH_NATS).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(speech)])
    starts = np.arange(windows) * MFCC_PER_FRAME
    share = (csum[starts + MFCC_WINDOW] - csum[starts]) / MFCC_WINDOW
    return np.flatnonzero(share >= 0.5)


def num_windows(num_frames: int, num_samples: int) -> int:
    """Windows of a clip, as the LSE metric counts them."""
    from bench.metrics.lse import num_windows as lse_num_windows

    return lse_num_windows(num_frames, num_samples)


def build_bank(clips: Sequence[Any], rng: np.random.Generator, progress: bool = False,
               max_bytes: int = MAX_BANK_BYTES) -> SyncBank:
    """Read every clip once; keep its frames, MFCCs and speech windows.

    Clips with fewer than ``2 * MIN_SHIFT + 1`` windows are skipped (listed with the reason).
    When the frames exceed ``max_bytes``, every clip keeps one random run of consecutive frames
    of the same length, with the MFCC frames of that run (cut from the whole clip's MFCCs,
    so the windows are the metric's).
    """
    iterator: Any = range(len(clips))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="syncnet: load clips", unit="clip", leave=False)
    frames: list[torch.Tensor] = []
    mfccs: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    for i in iterator:
        clip = clips[i]
        video = np.asarray(clip.frames)
        audio = np.asarray(clip.audio)
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
            skipped[clip.clip_id] = f"frames are not (T, H, W, 3) uint8: {video.shape}"
            continue
        n = num_windows(video.shape[0], audio.shape[0])
        if n < 2 * MIN_SHIFT + 1:
            skipped[clip.clip_id] = f"{max(n, 0)} SyncNet windows < {2 * MIN_SHIFT + 1}"
            continue
        usable = n + LIP_WINDOW  # frames that have audio too
        frames.append(torch.from_numpy(np.ascontiguousarray(video[:usable])).permute(0, 3, 1, 2))
        mfccs.append(clip_mfcc(audio))
    total = sum(f.numel() for f in frames)
    if frames and total > max_bytes:
        per_frame = frames[0][0].numel()
        keep = max(2 * MIN_SHIFT + 1 + LIP_WINDOW, max_bytes // (len(frames) * per_frame))
        for i, f in enumerate(frames):
            if f.shape[0] > keep:
                start = int(rng.integers(0, f.shape[0] - keep + 1))
                frames[i] = f[start:start + keep].clone()
                mfccs[i] = mfccs[i][MFCC_PER_FRAME * start:MFCC_PER_FRAME * (start + keep)]
    counts = np.array([f.shape[0] - LIP_WINDOW for f in frames], dtype=np.int64)
    # A cut run of ``keep`` frames holds 4 * keep MFCC frames: windows 0 .. keep - 5 fit.
    counts = np.minimum(counts, [(m.shape[0] - MFCC_WINDOW) // MFCC_PER_FRAME + 1
                                 for m in mfccs]) if frames else counts
    return SyncBank(frames=frames, mfccs=[torch.from_numpy(np.ascontiguousarray(m))
                                          for m in mfccs],
                    windows=counts, speech=[speech_windows(m, int(c))
                                            for m, c in zip(mfccs, counts, strict=True)],
                    skipped=skipped)


@dataclass
class Pairs:
    """Which windows a batch holds and which pairs are genuine.

    ``lips[i]`` and ``audio[j]`` are ``(clip, window)``; ``labels[i, j]`` is 1 when lip
    window ``i`` and audio window ``j`` are the same time of the same clip (in sync), 0 when
    they are of the same clip at least ``MIN_SHIFT`` frames apart (a false pair), -1 when the
    pair is not used (another clip, or one frame apart)."""

    lips: list[tuple[int, int]]
    audio: list[tuple[int, int]]
    labels: torch.Tensor


def draw_pairs(bank: SyncBank, plan: Budget, rng: np.random.Generator,
               candidates: Sequence[np.ndarray] | None = None) -> Pairs:
    """A batch's windows: ``batch / group`` distinct clips (probability proportional to their
    candidate windows), ``group`` distinct lip windows ``v`` of each (a speech window with
    probability ``speech_fraction``, while the clip has unused ones, else any candidate), and
    as audio windows each lip window's own and one shifted by a random ``s``,
    ``MIN_SHIFT <= |s| <= MAX_SHIFT``. Every lip window is compared with every audio window of
    its clip, so each meets about ``2 * group - 1`` false audio windows for the cost of two.

    ``candidates``: per clip, the windows lip windows may be drawn from (default: all).
    """
    if candidates is None:
        candidates = [np.arange(n) for n in bank.windows]
    sizes = np.array([len(c) for c in candidates], dtype=np.float64)
    n_clips = min(max(1, plan.batch // plan.group), int((sizes > 0).sum()))
    chosen = rng.choice(len(bank), size=n_clips, replace=False, p=sizes / sizes.sum())
    lips: list[tuple[int, int]] = []
    audio: list[tuple[int, int]] = []
    for clip in (int(c) for c in chosen):
        n = int(bank.windows[clip])
        pool_all = list(rng.permutation(candidates[clip]))
        pool_speech = list(rng.permutation(np.intersect1d(candidates[clip], bank.speech[clip])))
        picked: list[int] = []
        while len(picked) < min(plan.group, len(candidates[clip])):
            pool = pool_speech if pool_speech and rng.random() < plan.speech_fraction \
                else pool_all
            v = int(pool.pop())
            if v not in picked:
                picked.append(v)
        lips += [(clip, v) for v in picked]
        audio += [(clip, v) for v in picked]
        for v in picked:
            allowed = [s for s in range(-MAX_SHIFT, MAX_SHIFT + 1)
                       if abs(s) >= MIN_SHIFT and 0 <= v + s < n]
            audio.append((clip, v + int(rng.choice(allowed)) if allowed else v))
    lip_at = torch.tensor(lips)
    aud_at = torch.tensor(audio)
    same = lip_at[:, None, 0] == aud_at[None, :, 0]
    gap = (lip_at[:, None, 1] - aud_at[None, :, 1]).abs()
    labels = torch.full(same.shape, -1, dtype=torch.int8)
    labels[same & (gap >= MIN_SHIFT)] = 0
    labels[same & (gap == 0)] = 1
    return Pairs(lips=lips, audio=audio, labels=labels)


def lip_windows(frames: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Stack 5-frame windows of talkbench RGB crops ``(5, 3, H, W)`` uint8 into the lip
    stream's input ``(B, 3, 5, 224, 224)`` float on ``device``, prepared by the LSE metric's
    own :func:`~bench.metrics.lse.prepare_lip_frames` (resize to 224, BGR)."""
    from bench.metrics.lse import prepare_lip_frames

    stacked = torch.stack(list(frames)).to(device)  # (B, 5, 3, H, W)
    b = stacked.shape[0]
    video = prepare_lip_frames(stacked.flatten(0, 1))  # (B * 5, 3, 224, 224) uint8 BGR
    video = video.view(b, LIP_WINDOW, *video.shape[1:]).transpose(1, 2).float()
    layout = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
    return video.contiguous(memory_format=layout)


def audio_window(mfccs: torch.Tensor, u: int) -> torch.Tensor:
    """Audio window ``u`` of a clip's MFCCs ``(F, 13)``: ``(1, 13, 20)``, as
    :func:`bench.metrics.lse.embed_audio` cuts it."""
    start = MFCC_PER_FRAME * u
    return mfccs[start:start + MFCC_WINDOW].T.unsqueeze(0)


def network_inputs(bank: SyncBank, pairs: Pairs, device: torch.device,
                   rng: np.random.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs' lip windows ``(B, 3, 5, 224, 224)`` and audio windows ``(A, 1, 13, 20)`` on
    ``device``. With ``rng``, the paper's augmentation: half of the lip windows mirrored, the
    volume of each audio window scaled by U(0.9, 1.1) (which adds ``2 ln g`` to MFCC
    coefficient 0, the log frame energy)."""
    lips = torch.stack([bank.frames[c][v:v + LIP_WINDOW] for c, v in pairs.lips])
    audio = torch.stack([audio_window(bank.mfccs[c], u) for c, u in pairs.audio])
    if rng is not None:
        mirror = torch.from_numpy(rng.random(lips.shape[0]) < 0.5)
        lips[mirror] = lips[mirror].flip(-1)
        gain = torch.from_numpy(rng.uniform(0.9, 1.1, audio.shape[0])).float()
        audio = audio.clone()
        audio[:, 0, 0, :] += 2 * torch.log(gain)[:, None]
    return lip_windows(lips, device), audio.to(device)


# ---------------------------------------------------------------------------------------------
# Frozen trunk: cached features and the trained heads


def head_lip(net: SyncNet, features: torch.Tensor) -> torch.Tensor:
    """Lip embeddings from trunk features ``(B, 256 * 6 * 6)`` (``netcnnlip[:18]``'s output,
    flattened): ``netcnnlip[18:]`` then ``netfclip``. The last convolution's kernel covers its
    whole 1x6x6 input, so it is applied as the equivalent matrix product (same parameters)."""
    conv, norm, relu = net.netcnnlip[TRUNK_LAYERS:]
    x = F.linear(features, conv.weight.flatten(1), conv.bias)
    x = relu(norm(x[:, :, None, None, None])).flatten(1)
    return net.netfclip(x)


def head_audio(net: SyncNet, features: torch.Tensor) -> torch.Tensor:
    """Audio embeddings from trunk features ``(B, 256 * 5 * 4)`` (``netcnnaud[:18]``'s output,
    flattened), as :func:`head_lip` does for the lips."""
    conv, norm, relu = net.netcnnaud[TRUNK_LAYERS:]
    x = F.linear(features, conv.weight.flatten(1), conv.bias)
    x = relu(norm(x[:, :, None, None])).flatten(1)
    return net.netfcaud(x)


def head_parameters(net: SyncNet) -> list[nn.Parameter]:
    """What a frozen-trunk budget trains: both streams' last convolution block and FC layers."""
    modules = [net.netcnnlip[TRUNK_LAYERS:], net.netfclip, net.netcnnaud[TRUNK_LAYERS:],
               net.netfcaud]
    return [p for m in modules for p in m.parameters()]


def head_modules(net: SyncNet) -> list[nn.Module]:
    return [net.netcnnlip[TRUNK_LAYERS:], net.netfclip, net.netcnnaud[TRUNK_LAYERS:],
            net.netfcaud]


@dataclass
class FeatureBank:
    """Trunk features of the training windows: per clip, the lip windows with cached lip
    features (``lip_windows``, about ``trunk_windows`` over all clips) and their features
    ``(n, 9216)``, and the audio features of every window ``(N, 5120)``."""

    lip_windows: list[np.ndarray]
    lip: list[torch.Tensor]
    audio: list[torch.Tensor]


@torch.inference_mode()
def cache_features(net: SyncNet, bank: SyncBank, plan: Budget, rng: np.random.Generator,
                   device: torch.device, chunk: int = 16) -> FeatureBank:
    """Run the (eval-mode) trunk once over a random ``trunk_windows`` lip windows (the same
    fraction of every clip's windows, at least ``group``) and over every audio window."""
    lip_trunk, aud_trunk = net.netcnnlip[:TRUNK_LAYERS], net.netcnnaud[:TRUNK_LAYERS]
    fraction = min(1.0, plan.trunk_windows / max(1, int(bank.windows.sum())))
    lip_at, lip_feats, aud_feats = [], [], []
    with full_fp32_convolutions():
        for clip in range(len(bank)):
            n = int(bank.windows[clip])
            count = min(n, max(plan.group, int(round(n * fraction))))
            picked = np.sort(rng.choice(n, size=count, replace=False))
            feats = []
            for start in range(0, count, chunk):
                frames = [bank.frames[clip][v:v + LIP_WINDOW] for v in picked[start:start + chunk]]
                feats.append(lip_trunk(lip_windows(frames, device)).flatten(1))
            lip_at.append(picked)
            lip_feats.append(torch.cat(feats).clone())
            windows = torch.stack([audio_window(bank.mfccs[clip], u) for u in range(n)])
            aud_feats.append(aud_trunk(windows.to(device)).flatten(1).clone())
    return FeatureBank(lip_windows=lip_at, lip=lip_feats, audio=aud_feats)


def feature_inputs(features: FeatureBank, pairs: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs' cached trunk features: lips ``(B, 9216)``, audio ``(A, 5120)``."""
    rows = [int(np.searchsorted(features.lip_windows[c], v)) for c, v in pairs.lips]
    lips = torch.stack([features.lip[c][r] for (c, _), r in zip(pairs.lips, rows, strict=True)])
    audio = torch.stack([features.audio[c][u] for c, u in pairs.audio])
    return lips, audio


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


def _lr_at(plan: Budget, step: int, total: int) -> float:
    """Log-linear decay from ``lr`` (step 1) to ``lr_final`` (last step)."""
    if total <= 1:
        return plan.lr
    frac = (step - 1) / (total - 1)
    return float(plan.lr * (plan.lr_final / plan.lr) ** frac)


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
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
        plan = BUDGETS[budget]
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

    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=plan.steps, desc=f"syncnet: train ({budget})", unit="step", leave=False)
    losses: list[float] = []
    d_pos: list[float] = []
    d_neg: list[float] = []
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -math.inf, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    val_clips = [val[i] for i in range(min(len(val), plan.val_clips))] if val else []
    steps_done = 0
    stopped_early = False
    train_start = time.perf_counter()
    try:
        with full_fp32_convolutions():
            for step in range(1, plan.steps + 1):
                if plan.max_seconds is not None and \
                        time.perf_counter() - start_time > plan.max_seconds:
                    stopped_early = True
                    break
                for group in optimiser.param_groups:
                    group["lr"] = _lr_at(plan, step, plan.steps)
                for module in trained_modules:
                    module.train()
                pairs, lip, aud = batch()
                loss, dists = contrastive_loss(lip, aud, pairs.labels.to(dev), plan.margin)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                steps_done = step
                losses.append(float(loss.detach()))
                d_pos.append(dists["d_pos"])
                d_neg.append(dists["d_neg"])
                if on_step is not None:
                    on_step(step, losses[-1])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.2f}",
                                    d_pos=f"{np.mean(d_pos[-20:]):.2f}",
                                    d_neg=f"{np.mean(d_neg[-20:]):.2f}")
                if val_clips and plan.eval_every and step % plan.eval_every == 0 \
                        and step < plan.steps:
                    recalibrate_batchnorm(trained_modules, plan.bn_batches, batch)
                    quality = evaluate(net, val_clips, device=dev)
                    history.append({"step": step, "train_loss": float(np.mean(losses[-50:])),
                                    **_headline(quality)})
                    if _score(quality) > best["score"]:
                        best = {"score": _score(quality), "step": step}
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    finally:
        if bar is not None:
            bar.close()
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

    tail = max(1, min(len(losses), 20))
    log: dict[str, Any] = {
        "judge": JUDGE_NAME, "weights_file": WEIGHTS_FILE, "weights_sha256": sha256,
        "budget": budget, "plan": asdict(plan), "seed": seed, "device": str(dev),
        "training": trunk, "steps": steps_done, "stopped_early": stopped_early,
        "n_train_clips": len(bank), "n_train_windows": int(bank.windows.sum()),
        "n_cached_lip_windows": (int(sum(len(w) for w in features.lip_windows))
                                 if features is not None else 0),
        "skipped_train": dict(list(bank.skipped.items())[:5]),
        "n_skipped_train": len(bank.skipped),
        "train_loss_first": float(np.mean(losses[:tail])),
        "train_loss_last": float(np.mean(losses[-tail:])),
        "train_d_pos_last": float(np.mean(d_pos[-tail:])),
        "train_d_neg_last": float(np.mean(d_neg[-tail:])),
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
    clip's offset plus ``frames`` (:mod:`bench.metrics.lse`: offset = vshift - argmin)."""
    from bench.metrics.lse import SAMPLES_PER_FRAME

    return np.roll(np.asarray(audio), -SAMPLES_PER_FRAME * frames)


@torch.inference_mode()
def clip_lse(net: SyncNet, frames: np.ndarray, audios: Sequence[np.ndarray],
             device: torch.device | None = None) -> list[Any]:
    """LSE results (:class:`bench.metrics.lse.LSEResult`) of one video with each of
    ``audios`` (float, 16 kHz), computing the lip embeddings once. Exactly the metric's path:
    :func:`~bench.metrics.lse.prepare_lip_frames`, :func:`~bench.metrics.lse.embed_lips`,
    :func:`~bench.metrics.lse.embed_audio`, :func:`~bench.metrics.lse.offset_distances`,
    :func:`~bench.metrics.lse.lse_from_distances`. Raises ``MetricUnavailable`` for a clip
    too short for the offset search."""
    from bench.metrics import lse

    dev = device or next(net.parameters()).device
    ints = [audio_to_int16(a) for a in audios]
    windows = min(lse.check_length(frames.shape[0], a.shape[0]) for a in ints)
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(dev)
    lip = lse.embed_lips(net, lse.prepare_lip_frames(video), windows)
    results = []
    for audio in ints:
        emb = lse.embed_audio(net, mfcc(audio), windows)
        results.append(lse.lse_from_distances(lse.offset_distances(lip, emb)))
    return results


def evaluate(judge: SyncNet, clips: Sequence[Any], *,
             device: str | torch.device | None = None, shift: int = EVAL_SHIFT
             ) -> dict[str, Any]:
    """The SyncNet's quality on real (in-sync) clips, by the LSE metric's algorithm:

    - ``lse_d``, ``lse_c``, ``av_offset``: means over clips of the real clips' values;
    - ``offset_accuracy``: fraction of clips whose AV offset is within one frame of 0;
    - ``lse_c_shifted``, ``lse_d_shifted``: the same with the audio rolled by ``+shift`` and
      ``-shift`` frames (:func:`shift_audio`), averaged over both;
    - ``shifted_offset_accuracy``: fraction of those whose offset is within one frame of the
      shift;
    - ``dist_gap``: mean over clips of (mean distance at the shifted audio's own offset ...) no:
      the mean distance at offsets at least ``MIN_SHIFT`` away from the true one minus the
      distance at the true one, for the real clips (how far apart false and genuine pairs are).

    Clips too short for the offset search are counted in ``n_skipped``.
    """
    from bench.metrics.base import MetricUnavailable

    dev = resolve_device(device) if device is not None else next(judge.parameters()).device
    judge = judge.to(dev).eval()
    rows: dict[str, list[float]] = {k: [] for k in (
        "lse_d", "lse_c", "av_offset", "in_sync_ok", "lse_d_shifted", "lse_c_shifted",
        "shifted_ok", "dist_gap")}
    skipped: dict[str, str] = {}
    for i in range(len(clips)):
        clip = clips[i]
        audio = np.asarray(clip.audio)
        try:
            real, ahead, behind = clip_lse(judge, np.asarray(clip.frames),
                                           [audio, shift_audio(audio, shift),
                                            shift_audio(audio, -shift)], dev)
        except MetricUnavailable as err:
            skipped[clip.clip_id] = str(err)
            continue
        rows["lse_d"].append(real.lse_d)
        rows["lse_c"].append(real.lse_c)
        rows["av_offset"].append(real.av_offset)
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
    out: dict[str, Any] = {"n": n, "shift": shift, "n_skipped": len(skipped),
                           "skipped_examples": dict(list(skipped.items())[:3])}
    if n:
        mean = {k: float(np.mean(np.asarray(v, dtype=np.float64))) for k, v in rows.items()}
        out.update(lse_d=mean["lse_d"], lse_c=mean["lse_c"], av_offset=mean["av_offset"],
                   offset_accuracy=mean["in_sync_ok"], lse_d_shifted=mean["lse_d_shifted"],
                   lse_c_shifted=mean["lse_c_shifted"],
                   shifted_offset_accuracy=mean["shifted_ok"], dist_gap=mean["dist_gap"])
    return out
