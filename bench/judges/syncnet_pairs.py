"""Training batches of the harness-trained SyncNet (:mod:`bench.judges.syncnet_train`; Chung and
Zisserman 2016, "Out of time", Sect. 3: genuine and false audio-visual pairs).

- :class:`SyncBank` (:func:`build_bank`): every training clip read once, its face crops and
  MFCCs, and which of its windows are speech (:func:`speech_windows`);
- :func:`draw_pairs`: a batch's lip windows, each with its in-sync audio window and audio
  shifted by ``MIN_SHIFT`` to ``MAX_SHIFT`` frames (false pairs), and
  :func:`network_inputs`, the network's inputs of those windows (:mod:`bench.core.sync_windows`,
  the LSE metric's inputs);
- the frozen trunk of the ``smoke`` and ``demo`` budgets: the trunk's features cached once
  (:func:`cache_features`, :func:`feature_inputs`) and the heads trained on them
  (:func:`head_lip`, :func:`head_audio`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.sync_windows import (
    LIP_WINDOW,
    MFCC_PER_FRAME,
    MFCC_WINDOW,
    audio_window,
    clip_mfcc,
    lip_window_batch,
    num_windows,
)
from bench.core.training import progress_range
from bench.judges.syncnet import SyncNet, full_fp32_convolutions

MIN_SHIFT = 2
"""Smallest audio shift, in frames, used as a false pair."""

MAX_SHIFT = 15
"""Largest audio shift, in frames, used as a false pair (the LSE offset search's vshift)."""

SPEECH_NATS = 3.0
"""An MFCC frame is speech when its log energy exceeds the clip's quietest frame by this."""

TRUNK_LAYERS = 18
"""``netcnnlip[:18]`` / ``netcnnaud[:18]`` (conv1-conv5 with their BatchNorm and pooling): the
part a frozen-trunk budget does not train."""

MAX_BANK_BYTES = 6 * 2**30
"""Most bytes of training frames kept in memory (beyond it, each clip keeps a random run)."""


class PairPlan(Protocol):
    """What batches take from a training budget (:class:`bench.judges.syncnet_train.Budget`)."""

    batch: int
    group: int
    speech_fraction: float
    trunk_windows: int


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


def build_bank(clips: Sequence[Any], rng: np.random.Generator, progress: bool = False,
               max_bytes: int = MAX_BANK_BYTES) -> SyncBank:
    """Read every clip once; keep its frames, MFCCs and speech windows.

    Clips with fewer than ``2 * MIN_SHIFT + 1`` windows are skipped (listed with the reason).
    When the frames exceed ``max_bytes``, every clip keeps one random run of consecutive frames
    of the same length, with the MFCC frames of that run (cut from the whole clip's MFCCs,
    so the windows are the metric's).
    """
    frames: list[torch.Tensor] = []
    mfccs: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    for i in progress_range(len(clips), progress, "syncnet: load clips"):
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


def draw_pairs(bank: SyncBank, plan: PairPlan, rng: np.random.Generator,
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
    return lip_window_batch(lips, device), audio.to(device)


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
def cache_features(net: SyncNet, bank: SyncBank, plan: PairPlan, rng: np.random.Generator,
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
                feats.append(lip_trunk(lip_window_batch(frames, device)).flatten(1))
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
