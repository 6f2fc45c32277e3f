"""LipNet, the lip reader behind WER / CER (SPEC 5), trained by the harness.

Seed 003 (Vougioukas et al.) measures intelligibility with LipNet (Assael et al. 2016,
"LipNet: End-to-End Sentence-level Lipreading", arXiv:1611.01599). The network (Sect. 3 and
Appendix A, Table 4):

- input: ``T`` mouth crops ``(N, 3, T, 50, 100)`` (RGB, values /255; GRID: ``T = 75``);
- three blocks of spatiotemporal convolution, batch norm, ReLU, spatial (channel) dropout
  and 3D max-pooling: ``Conv3d(3, 32, k=(3,5,5), s=(1,2,2), p=(1,2,2))``,
  ``Conv3d(32, 64, k=(3,5,5), s=1, p=(1,2,2))``, ``Conv3d(64, 96, k=(3,3,3), s=1, p=1)``, each
  pooled by ``(1,2,2)``; dropout 0.5 (the authors' code);
- two bidirectional GRUs of 256 per direction over the ``96 * 3 * 6 = 1728`` features a frame;
- a linear layer to 28 symbols per frame and CTC (Sect. 3.2).

Symbols (:data:`SYMBOLS`): index 0 is the CTC blank, 1-26 ``a``-``z``, 27 the space
(the authors put the blank last; PyTorch's CTC wants it first; the order is recorded).

Mouth crops (:func:`mouth_boxes`, :func:`mouth_crops`) as LipNet's public code crops them
(the Keras implementation ``rizkiarm/LipNet``, ``lipnet/lipreading/videos.py``,
``get_frames_mouth``; the paper names only dlib's landmarks and 100x50 crops, Sect. 4.1), from
the 20 mouth landmarks 48-67 of the 68:

- on the *first* frame, ``left = min(x) * (1 - 0.19)`` and ``right = max(x) * (1 + 0.19)``
  (the code multiplies the absolute x coordinates by the padding, so the margin grows with the
  mouth's distance from the frame's left edge; kept as is), and the scale
  ``r = W / (right - left)``, the same for every frame;
- per frame, the mouth centroid ``c`` (mean of the 20 points) is scaled by ``r``; the frame is
  resized by ``r`` and the box ``[int(r cx - W/2), int(r cx + W/2)) x
  [int(r cy - H/2), int(r cy + H/2))`` cut out (``W x H = 100 x 50``).

Here the resize and the cut are one bilinear sampling of the box from the original frame
(pixel centres, edge pixels repeated outside the frame); it equals resize-then-cut when
``r >= 1`` (the harness's 128x128 aligned crops give ``r`` about 1.5); the authors' scipy
``imresize`` filtered when shrinking. Frames without landmarks (NaN) take the nearest frame's.
The harness feeds its aligned face crops and their landmarks (training: ``Clip.landmarks``
from preprocessing; scoring: the shared dlib pass on the generated frames).

Decoding: greedy (:func:`greedy_decode`: best symbol per frame, repeats merged, blanks
dropped; Sect. 3.2) and, as an option, constrained to GRID's grammar (:func:`grid_decode`:
the best CTC path through six slots of 4/4/4/25/10/4 words, 51 words, Viterbi; the paper
decodes with a beam search and a language model, Sect. 4.2).

Budgets (:data:`BUDGETS`). ``paper``: LipNet's sizes, Adam lr 1e-4, batch 50 (Sect. 4.1),
60 epochs keeping the best validation WER, horizontal flips (Sect. 4.1's augmentation; the
word-level sub-sentences and frame jitter are left out). ``demo``: 48x24 crops (the same rule,
``W x H`` halved), 8/16/32 filters, GRUs of 64, dropout 0.2, Adam lr 3e-3, batch 16, 1500
steps keeping the best validation WER of every 250 (0.17 M parameters instead of 4.6 M), and
each clip's crops standardised (its mean crop subtracted, divided by its standard deviation:
``NetConfig.motion``, not in LipNet; without it 2000 steps learned only the word statistics):
about 5 minutes on one idle CPU core. On 10 synthetic GRID-layout speakers x 40 sentences
(7 train, 1 validation, 2 held out) it reads the held-out speakers at 59.6 % WER greedy,
47.9 % with the grammar, against 82.9 % for the most frequent word of each slot.
``smoke``: tiny, seconds. Sequences of any length work (the GRUs run on each clip's frames).

The judge contract of :mod:`bench.judges.store`: :func:`train`, :func:`load`, :func:`evaluate`;
:func:`transcribe` is the inference helper the WER metric uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.devices import resolve_device
from bench.core.training import budget_plan, progress_range, run_steps, state_snapshot
from bench.data import grid

JUDGE_NAME = "lipnet"
ARCHITECTURE = "LipNet (Assael et al. 2016): 3x STCNN+pool, 2x BiGRU, CTC over 28 symbols"
WEIGHTS_FILE = "lipnet.pt"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1

SYMBOLS = "_abcdefghijklmnopqrstuvwxyz "
"""CTC symbols by index: 0 blank (``_``), 1-26 ``a``-``z``, 27 space."""
BLANK = 0
MOUTH = slice(48, 68)
"""The 20 mouth points of the 68 landmarks."""
HORIZONTAL_PAD = 0.19
"""LipNet's code: ``left = min(x) * (1 - pad)``, ``right = max(x) * (1 + pad)``."""


# ---------------------------------------------------------------------------------------------
# Text <-> symbols


def normalise_text(text: str) -> str:
    """Lower case, only ``a``-``z`` and single spaces (what the 28 symbols can spell)."""
    kept = "".join(c if c in SYMBOLS[1:] else " " for c in text.lower())
    return " ".join(kept.split())


def encode(text: str) -> list[int]:
    """Symbol indices of ``normalise_text(text)``."""
    return [SYMBOLS.index(c) for c in normalise_text(text)]


def greedy_decode(probs: np.ndarray | torch.Tensor) -> str:
    """Best symbol per frame of ``(T, 28)`` scores, repeats merged, blanks dropped (CTC
    greedy decoding, Assael et al. Sect. 3.2)."""
    best = np.asarray(torch.as_tensor(probs).argmax(-1).cpu())
    out, prev = [], -1
    for k in best.tolist():
        if k != prev and k != BLANK:
            out.append(SYMBOLS[k])
        prev = k
    return " ".join("".join(out).split())


# ---------------------------------------------------------------------------------------------
# GRID-grammar decoding


def grid_slots() -> list[list[str]]:
    """The words of GRID's six slots (``bench.data.grid.GRAMMAR``): 4, 4, 4, 25, 10, 4."""
    return [sorted(table.values()) for table in grid.GRAMMAR]


@dataclass(frozen=True)
class _Lattice:
    symbol: np.ndarray  # (S,) symbol of each state
    preds: np.ndarray  # (S, P) predecessor states (self included), -1 padding
    starts: np.ndarray  # (S,) bool: may be the first state
    ends: np.ndarray  # (S,) bool: may be the last state
    word: list[tuple[int, str] | None]  # state -> (slot, word) for word characters


def _grammar_lattice(slots: Sequence[Sequence[str]]) -> _Lattice:
    """CTC states of a sentence of one word per slot, words separated by a space: blanks
    optional between symbols, required between equal symbols (the CTC topology)."""
    symbol: list[int] = []
    word: list[tuple[int, str] | None] = []
    preds: list[list[int]] = []

    def add(sym: int, tag: tuple[int, str] | None, incoming: list[int]) -> int:
        symbol.append(sym)
        word.append(tag)
        preds.append([len(symbol) - 1, *incoming])
        return len(symbol) - 1

    start_blank = add(BLANK, None, [])
    entry = [start_blank]  # states after which a word's first symbol may follow (blank)
    entry_sym: list[int] = []  # symbol states after which it may follow directly
    starts = [start_blank]
    for k, words in enumerate(slots):
        lasts: list[int] = []
        for w in words:
            codes = encode(w)
            first = add(codes[0], (k, w), entry + [s for s in entry_sym
                                                   if symbol[s] != codes[0]])
            if k == 0:
                starts.append(first)
            prev = first
            for c in codes[1:]:
                blank = add(BLANK, None, [prev])
                prev = add(c, (k, w), [blank] + ([prev] if symbol[prev] != c else []))
            lasts.append(prev)
        if k == len(slots) - 1:
            end_blank = add(BLANK, None, lasts)
            ends = [*lasts, end_blank]
            break
        blank_a = add(BLANK, None, lasts)
        space = add(SYMBOLS.index(" "), None, [blank_a, *lasts])
        blank_b = add(BLANK, None, [space])
        entry, entry_sym = [blank_b], [space]
    width = max(len(p) for p in preds)
    matrix = np.full((len(preds), width), -1, dtype=np.int64)
    for i, p in enumerate(preds):
        matrix[i, :len(p)] = p
    n = len(symbol)
    return _Lattice(np.array(symbol), matrix, np.isin(np.arange(n), starts),
                    np.isin(np.arange(n), ends), word)


def grid_decode(log_probs: np.ndarray | torch.Tensor,
                slots: Sequence[Sequence[str]] | None = None) -> str:
    """The sentence of GRID's grammar (one word of each slot of ``slots``, default
    :func:`grid_slots`) whose best CTC path scores highest on ``(T, 28)`` log-probabilities
    (Viterbi). Raises ValueError when the clip has too few frames for any sentence."""
    lat = _grammar_lattice(slots or grid_slots())
    logp = np.asarray(torch.as_tensor(log_probs, dtype=torch.float64).cpu())
    emit = logp[:, lat.symbol]  # (T, S)
    score = np.where(lat.starts, emit[0], -np.inf)
    back = np.zeros((logp.shape[0], len(lat.symbol)), dtype=np.int64)
    valid = lat.preds >= 0
    for t in range(1, logp.shape[0]):
        cand = np.where(valid, score[np.where(valid, lat.preds, 0)], -np.inf)
        best = cand.argmax(1)
        back[t] = lat.preds[np.arange(len(best)), best]
        score = cand[np.arange(len(best)), best] + emit[t]
    final = np.where(lat.ends, score, -np.inf)
    state = int(final.argmax())
    if not np.isfinite(final[state]):
        raise ValueError(f"{logp.shape[0]} frames are too few for a GRID sentence")
    words: dict[int, str] = {}
    for t in range(logp.shape[0] - 1, -1, -1):
        tag = lat.word[state]
        if tag is not None:
            words[tag[0]] = tag[1]
        state = int(back[t, state])
    return " ".join(words[k] for k in sorted(words))


# ---------------------------------------------------------------------------------------------
# Mouth crops


def fill_missing(landmarks: np.ndarray) -> np.ndarray:
    """``(T, 68, 2)`` landmarks with NaN frames replaced by the nearest frame with a face.
    Raises ValueError when no frame has one."""
    lm = np.asarray(landmarks, dtype=np.float64)
    found = np.flatnonzero(~np.isnan(lm).any(axis=(1, 2)))
    if found.size == 0:
        raise ValueError("no frame has landmarks: no mouth to crop")
    nearest = found[np.abs(np.arange(len(lm))[:, None] - found[None, :]).argmin(1)]
    return lm[nearest]


def mouth_boxes(landmarks: np.ndarray, width: int = 100, height: int = 50
                ) -> tuple[float, np.ndarray]:
    """LipNet's crop rule (module docstring): the scale ``r`` and, per frame, the box
    ``(left, top)`` in the resized frame's pixels, ``(T, 2)`` int; the box is ``width x
    height``."""
    lm = fill_missing(landmarks)
    mouth = lm[:, MOUTH]
    left = mouth[0, :, 0].min() * (1.0 - HORIZONTAL_PAD)
    right = mouth[0, :, 0].max() * (1.0 + HORIZONTAL_PAD)
    ratio = width / float(right - left)
    centre = mouth.mean(axis=1) * ratio
    box = np.stack([(centre[:, 0] - width / 2).astype(np.int64),
                    (centre[:, 1] - height / 2).astype(np.int64)], axis=1)
    return ratio, box


def mouth_crops(frames: np.ndarray | torch.Tensor, landmarks: np.ndarray, width: int = 100,
                height: int = 50) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 frames and their ``(T, 68, 2)`` landmarks -> ``(3, T, height,
    width)`` float mouth crops in [0, 1] (LipNet's rule, :func:`mouth_boxes`)."""
    video = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float().div(255.0)
    t, _, h, w = video.shape
    if landmarks.shape[0] != t:
        raise ValueError(f"{t} frames but {landmarks.shape[0]} landmark frames")
    ratio, box = mouth_boxes(landmarks, width, height)
    # pixel (i, j) of the box sits at (top + i, left + j) of the resized frame, i.e. at
    # ((top + i + 0.5) / r - 0.5, ...) of the original (pixel centres, as a bilinear resize)
    jj = (torch.as_tensor(box[:, 0:1], dtype=torch.float32) + torch.arange(width) + 0.5) / ratio
    ii = (torch.as_tensor(box[:, 1:2], dtype=torch.float32) + torch.arange(height) + 0.5) / ratio
    gx = (jj / w * 2 - 1)[:, None, :].expand(t, height, width)
    gy = (ii / h * 2 - 1)[:, :, None].expand(t, height, width)
    grid_xy = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(video, grid_xy, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.permute(1, 0, 2, 3).contiguous()


# ---------------------------------------------------------------------------------------------
# The network


@dataclass(frozen=True)
class NetConfig:
    """Shape of a :class:`LipNet`; the defaults are the paper's (Appendix A)."""

    width: int = 100
    height: int = 50
    filters: tuple[int, int, int] = (32, 64, 96)
    gru: int = 256
    dropout: float = 0.5
    motion: bool = False
    """Subtract each clip's mean crop and divide by its standard deviation (``demo``: the
    lips' motion without the speaker's look; not in LipNet)."""

    def features(self) -> int:
        """Features a frame after the three blocks (1728 for the paper's sizes)."""
        h, w = (self.height + 1) // 2, (self.width + 1) // 2  # conv1's stride 2
        for _ in range(3):  # the three (1, 2, 2) poolings
            h, w = h // 2, w // 2
        return self.filters[2] * h * w

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "filters": list(self.filters)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetConfig:
        return cls(**{**data, "filters": tuple(data["filters"])})


class LipNet(nn.Module):
    """LipNet (Assael et al. 2016, Sect. 3, Appendix A): ``forward((N, 3, T, H, W), lengths)``
    -> log-probabilities ``(T, N, 28)`` (the layout of ``F.ctc_loss``)."""

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or NetConfig()
        a, b, c = cfg.filters
        self.conv1 = nn.Conv3d(3, a, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2))
        self.conv2 = nn.Conv3d(a, b, (3, 5, 5), stride=1, padding=(1, 2, 2))
        self.conv3 = nn.Conv3d(b, c, (3, 3, 3), stride=1, padding=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm3d(a), nn.BatchNorm3d(b), nn.BatchNorm3d(c)
        self.drop = nn.Dropout3d(cfg.dropout)
        self.pool = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.gru1 = nn.GRU(cfg.features(), cfg.gru, bidirectional=True, batch_first=True)
        self.gru2 = nn.GRU(2 * cfg.gru, cfg.gru, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * cfg.gru, len(SYMBOLS))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = self.pool(self.drop(F.relu(bn(conv(x)))))
        n, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(n, t, c * h * w)
        if lengths is None:
            lengths = torch.full((n,), t, dtype=torch.long)
        for gru in (self.gru1, self.gru2):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            x, _ = nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True,
                                                    total_length=t)
        return F.log_softmax(self.fc(x), dim=-1).transpose(0, 1)


# ---------------------------------------------------------------------------------------------
# The judge object and inference


@dataclass
class LipReader:
    """A trained LipNet ready for inference (what :func:`load` returns)."""

    net: LipNet
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> NetConfig:
        return self.net.config


@torch.inference_mode()
def log_probs(judge: LipReader, frames: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
    """Per-frame log-probabilities ``(T, 28)`` of one clip (frames ``(T, H, W, 3)`` uint8 and
    their ``(T, 68, 2)`` landmarks)."""
    cfg = judge.config
    crops = net_input(mouth_crops(frames, landmarks, cfg.width, cfg.height), cfg)
    judge.net.eval()
    return judge.net(crops[None].to(judge.device))[:, 0].float().cpu()


def transcribe(judge: LipReader, frames: np.ndarray, landmarks: np.ndarray,
               grammar: bool = False) -> str:
    """What LipNet reads on the lips: greedy CTC decoding, or the best sentence of GRID's
    grammar when ``grammar``."""
    scores = log_probs(judge, frames, landmarks)
    return grid_decode(scores) if grammar else greedy_decode(scores)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class Budget:
    """How one budget trains (module docstring)."""

    net: NetConfig
    batch: int
    lr: float
    steps: int | None = None
    """Fixed number of optimiser steps; None: ``epochs`` epochs of ``ceil(n / batch)``."""
    epochs: int | None = None
    flip: bool = True
    """Mirror half of the clips left-right (Sect. 4.1)."""
    eval_every: int = 0
    """Validate every this many steps and keep the best weights (0: once, at the end)."""


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(net=NetConfig(width=32, height=16, filters=(4, 8, 8), gru=24, dropout=0.0),
                    batch=4, lr=3e-3, steps=3, flip=False),
    "demo": Budget(net=NetConfig(width=48, height=24, filters=(8, 16, 32), gru=64,
                                 dropout=0.2, motion=True),
                   batch=16, lr=3e-3, steps=1500, eval_every=250),
    "paper": Budget(net=NetConfig(), batch=50, lr=1e-4, epochs=60),
}


@dataclass
class Bank:
    """Training clips as mouth crops in memory (uint8) with their symbol sequences."""

    crops: list[torch.Tensor]  # (3, T, H, W) uint8
    targets: list[list[int]]
    texts: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


def build_bank(clips: Sequence[Any], cfg: NetConfig, progress: bool = False) -> Bank:
    """Mouth crops of every clip with a transcript and landmarks (others in ``skipped``)."""
    bank = Bank([], [], [])
    for i in progress_range(len(clips), progress, "lipnet: load clips"):
        clip = clips[i]
        text = normalise_text(clip.transcript or "")
        if not text:
            bank.skipped[clip.clip_id] = "no transcript"
            continue
        if clip.landmarks is None:
            bank.skipped[clip.clip_id] = "no landmarks"
            continue
        try:
            crops = mouth_crops(clip.frames, clip.landmarks, cfg.width, cfg.height)
        except ValueError as err:
            bank.skipped[clip.clip_id] = str(err)
            continue
        if crops.shape[1] < 2 * len(text) + 1:
            bank.skipped[clip.clip_id] = f"{crops.shape[1]} frames too few for {text!r}"
            continue
        bank.crops.append(crops.mul(255).round().to(torch.uint8))
        bank.targets.append(encode(text))
        bank.texts.append(text)
    return bank


def net_input(crops: torch.Tensor, cfg: NetConfig) -> torch.Tensor:
    """Mouth crops ``(3, T, H, W)`` in [0, 1] as the network takes them (``cfg.motion``)."""
    if not cfg.motion:
        return crops
    moving = crops - crops.mean(dim=1, keepdim=True)
    return moving / (moving.std() + 1e-3)


def collate(crops: Sequence[torch.Tensor], cfg: NetConfig, flip: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``(3, T_i, H, W)`` uint8 -> a zero-padded float batch ``(N, 3, T, H, W)`` and the
    lengths; ``flip`` mirrors the chosen clips left-right."""
    lengths = torch.tensor([c.shape[1] for c in crops])
    c, _, h, w = crops[0].shape
    batch = torch.zeros(len(crops), c, int(lengths.max()), h, w)
    for i, clip in enumerate(crops):
        x = net_input(clip.float().div(255.0), cfg)
        batch[i, :, :clip.shape[1]] = x.flip(-1) if flip is not None and flip[i] else x
    return batch, lengths


@torch.inference_mode()
def bank_wer(judge: LipReader, bank: Bank) -> float:
    """Word error rate (``jiwer``) of greedy transcripts of a bank, as a fraction."""
    import jiwer

    judge.net.eval()
    hyps = []
    for crops in bank.crops:
        x, lengths = collate([crops], judge.config)
        hyps.append(greedy_decode(judge.net(x.to(judge.device), lengths)[:, 0]))
    return float(jiwer.wer(bank.texts, hyps))


def train(train: Sequence[Any], val: Sequence[Any] | None, out_dir: str | Path, *,
          budget: str = "demo", device: str | torch.device | None = None, seed: int = 0,
          progress: bool = False, on_step: Callable[[int, float], None] | None = None
          ) -> dict[str, Any]:
    """Train LipNet from scratch with CTC on prepared clips (``Clip.frames``,
    ``Clip.landmarks``, ``Clip.transcript``) and write ``lipnet.pt`` and ``config.json`` into
    ``out_dir``. Returns the training log, with the validation WER when ``val`` has clips."""
    plan = budget_plan(BUDGETS, budget, JUDGE_NAME)
    cfg = plan.net
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    start_time = time.perf_counter()
    bank = build_bank(train, cfg, progress)
    if not bank.crops:
        raise ValueError("no training clip with a transcript, landmarks and enough frames")
    val_bank = build_bank(val, cfg, progress) if val else None
    load_s = time.perf_counter() - start_time

    net = LipNet(cfg).to(dev)
    judge = LipReader(net, dev)
    optimiser = torch.optim.Adam(net.parameters(), lr=plan.lr)
    steps_per_epoch = -(-len(bank.crops) // plan.batch)
    total = plan.steps if plan.steps is not None else (plan.epochs or 1) * steps_per_epoch
    eval_every = plan.eval_every or (steps_per_epoch if plan.epochs else 0)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    best: dict[str, float] = {"val_wer": float("inf"), "step": 0}
    best_state: dict[str, torch.Tensor] | None = None

    def step(i: int) -> dict[str, float]:
        nonlocal best, best_state
        net.train()
        pick = rng.choice(len(bank.crops), size=min(plan.batch, len(bank.crops)),
                          replace=False)
        flip = torch.as_tensor(rng.random(len(pick)) < 0.5) if plan.flip else None
        x, lengths = collate([bank.crops[k] for k in pick], cfg, flip)
        targets = [bank.targets[k] for k in pick]
        logp = net(x.to(dev), lengths)
        loss = F.ctc_loss(logp, torch.tensor(sum(targets, [])), lengths,
                          torch.tensor([len(t) for t in targets]), blank=BLANK,
                          zero_infinity=True)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(i, losses[-1])
        if val_bank is not None and val_bank.crops and (
                (eval_every and i % eval_every == 0) or i == total):
            wer = bank_wer(judge, val_bank)
            history.append({"step": i, "train_loss": float(np.mean(losses[-20:])),
                            "val_wer": wer})
            if wer < best["val_wer"]:
                best = {"val_wer": wer, "step": i}
                best_state = state_snapshot(net)
        return {"loss": losses[-1]}

    run_steps(step, total, progress=progress, desc=f"lipnet: train ({budget})")
    if best_state is not None:
        net.load_state_dict(best_state)

    out_dir = Path(out_dir)
    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, out_dir / WEIGHTS_FILE)
    config = {"format": FORMAT_VERSION, "judge": JUDGE_NAME, "architecture": ARCHITECTURE,
              "symbols": SYMBOLS, "net": cfg.to_json(), "budget": budget,
              "majority": majority_transcript(bank.texts),
              "input": f"RGB mouth crops {cfg.width}x{cfg.height} (LipNet's rule), values /255"}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    tail = max(1, min(len(losses), 20))
    log: dict[str, Any] = {
        "architecture": ARCHITECTURE, "budget": budget, "net": cfg.to_json(),
        "batch": plan.batch, "lr": plan.lr, "steps": total, "seed": seed, "device": str(dev),
        "n_train_clips": len(bank.crops), "n_val_clips": len(val_bank.crops) if val_bank else 0,
        "skipped_train": bank.skipped, "train_loss_first": losses[0],
        "train_loss_last": float(np.mean(losses[-tail:])),
        "load_s": round(load_s, 3),
        "train_s": round(time.perf_counter() - start_time - load_s, 3),
    }
    if history:
        log.update(val_wer=best["val_wer"], best_step=best["step"], history=history)
    return log


# ---------------------------------------------------------------------------------------------
# Loading and evaluating


def load(directory: str | Path, device: str | torch.device | None = None) -> LipReader:
    """The LipNet written by :func:`train` into ``directory``, in eval mode on ``device``."""
    directory = Path(directory)
    config = json.loads((directory / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT_VERSION or config.get("symbols") != SYMBOLS:
        raise ValueError(f"{directory}: not a LipNet of format {FORMAT_VERSION} over "
                         f"{SYMBOLS!r}")
    net = LipNet(NetConfig.from_json(config["net"]))
    state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    dev = resolve_device(device)
    net.eval().to(dev)
    return LipReader(net, dev, config)


def majority_transcript(texts: Sequence[str]) -> str:
    """The most frequent word of each position over ``texts`` (ties: alphabetical): the
    transcript of a reader that learned only the word statistics (GRID's six slots)."""
    from collections import Counter

    columns: list[Counter] = []
    for text in texts:
        for k, w in enumerate(normalise_text(text).split()):
            if k == len(columns):
                columns.append(Counter())
            columns[k][w] += 1
    return " ".join(min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for c in columns)


def evaluate(judge: LipReader, clips: Sequence[Any], *,
             device: str | torch.device | None = None, grammar: bool = False
             ) -> dict[str, Any]:
    """LipNet's own WER and CER (``jiwer``, in %) on real clips with transcripts and
    landmarks; ``chance`` is the WER of always answering the most frequent word of each
    position of the *training* transcripts (``majority`` in the judge's config; these clips'
    own when absent): what a reader that learned nothing from the lips scores."""
    import jiwer

    if device is not None and resolve_device(device) != judge.device:
        dev = resolve_device(device)
        judge = LipReader(judge.net.to(dev), dev, judge.info)
    refs, hyps, skipped = [], [], {}
    for i in range(len(clips)):
        clip = clips[i]
        text = normalise_text(clip.transcript or "")
        if not text or clip.landmarks is None:
            skipped[clip.clip_id] = "no transcript" if not text else "no landmarks"
            continue
        try:
            hyps.append(transcribe(judge, clip.frames, clip.landmarks, grammar))
        except ValueError as err:
            skipped[clip.clip_id] = str(err)
            continue
        refs.append(text)
    out: dict[str, Any] = {"figure": "wer", "n": len(refs), "n_skipped": len(skipped),
                           "skipped_examples": dict(list(skipped.items())[:3]),
                           "decoding": "grid grammar" if grammar else "greedy"}
    if refs:
        guess = judge.info.get("majority") or majority_transcript(refs)
        out.update(wer=100 * jiwer.wer(refs, hyps), cer=100 * jiwer.cer(refs, hyps),
                   chance=100 * jiwer.wer(refs, [guess] * len(refs)),
                   examples=[{"ref": r, "hyp": h} for r, h in zip(refs[:5], hyps[:5], strict=True)])
    return out
