"""Wav2Lip's expert lip-sync discriminator (SyncNet_color) and the parts the Wav2Lip family
shares: the convolution blocks, the mel-spectrogram encoder and the training clips with their
spectrograms. Used by :mod:`bench.generators.wav2lip` (Prajwal et al. 2020) and
:mod:`bench.generators.emotion_wav2lip` (seed 002, Goyal et al., built on Wav2Lip).

The expert (Prajwal et al. 2020, Sect. 3.2 "lip-sync expert"; public code
``models/syncnet.py``, ``color_syncnet_train.py``): a face encoder on the lower halves of
``T_v = 5`` consecutive RGB frames stacked to 15 channels (rows ``H // 2 ..`` of the face
crop) and an audio encoder on one ``1 x 80 x 16`` mel window (0.2 s,
:mod:`bench.generators.wav2lip_audio`) each give an embedding (ReLU outputs, L2-normalised);
their cosine similarity is the probability that the pair is in sync, trained with binary
cross-entropy on in-sync pairs (label 1) and off-sync pairs (label 0) drawn half and half: the
mel window of a random start frame with the frames of either that start or another random
start of the same clip (the code's rule; ``min_offset`` frames apart at least, 1 in the
code). Adam (``expert_lr``; the code's 1e-4, batch 64). After pre-training on the split's
train part the expert is frozen and kept in eval mode (the public code sets
``requires_grad = False`` but leaves BatchNorm in train mode; we use the running statistics).

Layers (paper budget = the public 96x96 model): every convolution is conv + BatchNorm + ReLU,
"residual" blocks add their input before the ReLU. Face encoder (input 15 x 48 x 96): 7x7
(32); 5x5 stride (1, 2) (64) + 2 residual; 3x3 s2 (128) + 3 res; 3x3 s2 (256) + 2 res; 3x3
s2 (512) + 2 res; 3x3 s2 (512), 3x3 valid (512), 1x1 (512) -> 512 x 1 x 1. Audio encoder
(1 x 80 x 16): 3x3 (32) + 2 res; s(3, 1) (64) + 2 res; s3 (128) + 2 res; s(3, 2) (256) +
``audio_res[3]`` res; 3x3 valid (512); 1x1 (512) -> 512 x 1 x 1 (the generator's audio
encoder is the same with one residual block in the 256 stage). Smaller budgets narrow the
channels and, for smaller faces, drop stride-2 stages; the last valid convolution's kernel is
whatever spatial size is left (3x3 at the paper's size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import EMOTIONS
from bench.core.training import run_steps
from bench.generators.clip_banks import load_bank
from bench.generators.wav2lip_audio import melspectrogram, sync_window

SYNC_T = 5
"""Frames per expert window (``syncnet_T``)."""


# ---------------------------------------------------------------------------------------------
# Blocks


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm + ReLU; ``residual``: the input is added before the ReLU (Wav2Lip's
    ``models/conv.py`` ``Conv2d``)."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.residual:
            out = out + x
        return F.relu(out)


class DeconvBlock(nn.Module):
    """ConvTranspose2d + BatchNorm + ReLU (``Conv2dTranspose``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int,
                 output_padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def stage(cin: int, cout: int, kernel: int | tuple[int, int], stride: int | tuple[int, int],
          padding: int | tuple[int, int], residual: int) -> list[nn.Module]:
    """One convolution then ``residual`` 3x3 residual blocks at ``cout`` channels."""
    return [ConvBlock(cin, cout, kernel, stride, padding),
            *[ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(residual)]]


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class MelEncoder(nn.Sequential):
    """The mel-window encoder of Wav2Lip's generator and expert: ``(N, 1, 80, 16)`` ->
    ``(N, channels[-1], 1, 1)``. ``channels``: the four strided stages then the valid 3x3
    convolution's width (the 1x1 keeps it); ``residual``: residual blocks of the four stages."""

    STRIDES = (1, (3, 1), 3, (3, 2))

    def __init__(self, channels: Sequence[int], residual: Sequence[int]) -> None:
        if len(channels) != 5 or len(residual) != 4:
            raise ValueError("MelEncoder: 5 channel counts and 4 residual counts")
        layers: list[nn.Module] = []
        cin = 1
        for cout, stride, res in zip(channels[:4], self.STRIDES, residual, strict=True):
            layers += stage(cin, cout, 3, stride, 1, res)
            cin = cout
        layers += [ConvBlock(cin, channels[4], 3, 1, 0), ConvBlock(channels[4], channels[4], 1)]
        super().__init__(*layers)


# ---------------------------------------------------------------------------------------------
# The expert


@dataclass(frozen=True)
class ExpertConfig:
    """Sizes and pre-training schedule of the expert (module docstring)."""

    size: int = 96
    """Side of the face crop; the expert sees its lower half, ``size // 2 x size``."""
    face_channels: tuple[int, ...] = (32, 64, 128, 256, 512, 512)
    """7x7 stem, the stride-(1, 2) stage, the stride-2 stages; the last is the final stage
    (stride 2, valid, 1x1)."""
    face_residual: tuple[int, ...] = (0, 2, 3, 2, 2, 0)
    audio_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    audio_residual: tuple[int, ...] = (2, 2, 2, 2)
    batch: int = 64
    lr: float = 1e-4
    steps: int = 100_000
    min_offset: int = 1
    """Off-sync windows start at least this many frames from the in-sync one (code: 1)."""


class SyncNetColor(nn.Module):
    """The expert: ``(mel (N, 1, 80, 16), faces (N, 15, s/2, s))`` -> unit embeddings
    ``(audio (N, D), face (N, D))``."""

    def __init__(self, cfg: ExpertConfig) -> None:
        super().__init__()
        ch, res = cfg.face_channels, cfg.face_residual
        if len(ch) < 3 or len(res) != len(ch):
            raise ValueError("expert face encoder: at least 3 stages, one residual count each")
        if ch[-1] != cfg.audio_channels[-1]:
            raise ValueError("expert: face and audio embeddings must have the same width")
        h, w = cfg.size // 2, cfg.size
        layers = stage(3 * SYNC_T, ch[0], 7, 1, 3, res[0])
        layers += stage(ch[0], ch[1], 5, (1, 2), 1, res[1])
        h, w = conv_out(h, 5, 1, 1), conv_out(w, 5, 2, 1)
        for cin, cout, r in zip(ch[1:-2], ch[2:-1], res[2:-1], strict=True):
            layers += stage(cin, cout, 3, 2, 1, r)
            h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        layers += stage(ch[-2], ch[-1], 3, 2, 1, res[-1])
        h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        if h < 1 or w < 1:
            raise ValueError(f"expert: a {cfg.size}px face is too small for "
                             f"{len(ch) - 2} stride-2 stages")
        layers += [ConvBlock(ch[-1], ch[-1], (h, w), 1, 0), ConvBlock(ch[-1], ch[-1], 1)]
        self.face_encoder = nn.Sequential(*layers)
        self.audio_encoder = MelEncoder(cfg.audio_channels, cfg.audio_residual)

    def forward(self, mel: torch.Tensor, faces: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.normalize(self.audio_encoder(mel).flatten(1), p=2, dim=1)
        v = F.normalize(self.face_encoder(faces).flatten(1), p=2, dim=1)
        return a, v


def lower_halves(frames: torch.Tensor) -> torch.Tensor:
    """``(N, 5, 3, s, s)`` frames in ``[0, 1]`` -> the expert's ``(N, 15, s - s//2, s)``:
    rows ``s // 2 ..`` of each frame, frames stacked along the channels in time order."""
    n, t, c, h, w = frames.shape
    return frames[..., h // 2:, :].reshape(n, t * c, h - h // 2, w)


def sync_probability(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of unit embeddings as a probability (clamped into ``(0, 1)``; ReLU
    embeddings make it non-negative)."""
    return (a * v).sum(1).clamp(1e-7, 1 - 1e-7)


def expert_loss(a: torch.Tensor, v: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the cosine similarity against ``label`` (1: in sync)
    (``cosine_loss`` of the code). With label 1 on generated frames it is the sync loss
    ``E_sync`` of the generator."""
    return F.binary_cross_entropy(sync_probability(a, v), label.float())


# ---------------------------------------------------------------------------------------------
# Training clips


@dataclass
class MelBank:
    """Clips at the model's size: frames ``(T, 3, s, s)`` uint8, the whole clip's mel
    spectrogram ``(80, n)``, and labels."""

    frames: list[torch.Tensor]
    mels: list[np.ndarray]
    emotions: list[str | None]
    speakers: list[str]
    clip_ids: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    def window(self, clip: int, start: int, length: int = SYNC_T,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Frames ``start .. start + length - 1`` of one clip in ``[0, 1]``:
        ``(length, 3, s, s)``."""
        x = self.frames[clip][start:start + length]
        return x.to(device).float().div_(255.0)

    @property
    def labels(self) -> list[int]:
        """Emotion index per clip (-1: none)."""
        return [EMOTIONS.index(e) if e in EMOTIONS else -1 for e in self.emotions]


def load_mel_bank(clips: Sequence[Any], size: int, min_frames: int = SYNC_T,
                  max_clips: int | None = None) -> MelBank:
    """Prepared clips resized to ``size`` (:func:`bench.generators.clip_banks.load_bank`) with
    their Wav2Lip mel spectrograms; clips shorter than ``min_frames`` are left out."""
    bank = load_bank(clips, size, min_frames=min_frames, max_clips=max_clips)
    speaker_of = {}
    n = len(clips) if max_clips is None else min(len(clips), max_clips)
    for i in range(n):
        clip = clips[i]
        speaker_of[clip.clip_id] = clip.speaker
    return MelBank(frames=bank.frames, mels=[melspectrogram(a) for a in bank.audio],
                   emotions=bank.emotions, speakers=[speaker_of[c] for c in bank.clip_ids],
                   clip_ids=bank.clip_ids)


def draw_starts(bank: MelBank, rng: np.random.Generator, n: int,
                length: int = SYNC_T) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (clip, start frame) pairs with ``length`` frames from the start."""
    clips = rng.integers(0, len(bank), n)
    starts = np.array([rng.integers(0, bank.frames[c].shape[0] - length + 1) for c in clips])
    return clips, starts


def other_start(length: int, start: int, min_offset: int, rng: np.random.Generator) -> int:
    """A random window start of a ``length``-frame clip at least ``min_offset`` frames from
    ``start`` (the farthest one when the clip is too short for that)."""
    last = length - SYNC_T
    choices = [s for s in range(last + 1) if abs(s - start) >= max(1, min_offset)]
    if not choices:
        return 0 if start > last - start else last
    return int(rng.choice(choices))


def expert_batch(bank: MelBank, cfg: ExpertConfig, rng: np.random.Generator,
                 device: torch.device, n: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pre-training batch (``color_syncnet_train.py``'s sampling): ``(mel (N, 1, 80, 16),
    faces (N, 15, s/2, s), label (N,))``, half in sync."""
    n = n or cfg.batch
    clips, starts = draw_starts(bank, rng, n)
    faces, mels, labels = [], [], []
    for c, s in zip(clips, starts, strict=True):
        in_sync = bool(rng.random() < 0.5)
        v = s if in_sync else other_start(bank.frames[c].shape[0], s, cfg.min_offset, rng)
        faces.append(bank.window(c, v))
        mels.append(sync_window(bank.mels[c], s)[0])
        labels.append(float(in_sync))
    mel = torch.from_numpy(np.stack(mels))[:, None].to(device)
    return (mel, lower_halves(torch.stack(faces).to(device)),
            torch.tensor(labels, device=device))


def pretrain_expert(expert: SyncNetColor, bank: MelBank, cfg: ExpertConfig,
                    device: torch.device, seed: int, progress: bool = False,
                    desc: str = "wav2lip: expert") -> dict[str, Any]:
    """Pre-train ``expert`` for ``cfg.steps`` steps (Adam ``cfg.lr``), then freeze it in eval
    mode. Returns the :class:`~bench.core.training.TrainLog` as a dict."""
    rng = np.random.default_rng([seed, 1])
    opt = torch.optim.Adam(expert.parameters(), lr=cfg.lr)
    expert.train()

    def step(i: int) -> dict[str, float]:
        mel, faces, label = expert_batch(bank, cfg, rng, device)
        a, v = expert(mel, faces)
        loss = expert_loss(a, v, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"expert_bce": float(loss.detach())}

    log = run_steps(step, cfg.steps, None, progress, desc=desc)
    freeze(expert)
    return log.as_dict()


def freeze(net: nn.Module) -> None:
    """No gradients, eval mode (BatchNorm running statistics)."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)


@torch.no_grad()
def expert_sync_accuracy(expert: SyncNetColor, bank: MelBank, shift: int = 10,
                         device: torch.device | str = "cpu", per_clip: int = 8,
                         seed: int = 0) -> dict[str, float]:
    """How well the expert separates in-sync windows from windows whose audio is ``shift``
    frames later: on up to ``per_clip`` random windows per clip (those with a shifted
    window inside the clip), the accuracy of the 0.5 threshold on both kinds of pair
    (``accuracy``, chance 0.5) and the share of windows whose in-sync probability beats the
    shifted one (``ranking``, chance 0.5)."""
    rng = np.random.default_rng(seed)
    expert.eval()
    sync_p, shift_p = [], []
    for c in range(len(bank)):
        length = bank.frames[c].shape[0]
        last = length - SYNC_T - shift
        if last < 0:
            continue
        starts = rng.choice(last + 1, size=min(per_clip, last + 1), replace=False)
        faces = lower_halves(torch.stack([bank.window(c, int(s), device=device)
                                          for s in starts]))
        for offset, out in ((0, sync_p), (shift, shift_p)):
            mel = torch.from_numpy(sync_window(bank.mels[c], starts + offset))[:, None]
            a, v = expert(mel.to(device), faces)
            out.append(sync_probability(a, v).cpu())
    if not sync_p:
        return {"n": 0}
    p1, p0 = torch.cat(sync_p), torch.cat(shift_p)
    accuracy = 0.5 * ((p1 > 0.5).float().mean() + (p0 <= 0.5).float().mean())
    return {"n": int(p1.numel()), "shift": shift, "accuracy": round(float(accuracy), 4),
            "ranking": round(float((p1 > p0).float().mean()), 4),
            "p_sync": round(float(p1.mean()), 4), "p_shifted": round(float(p0.mean()), 4)}
