"""The video emotion classifier behind EmoAcc (SPEC 5), trained by the harness.

Seed 002 (Goyal et al., "Emotionally Enhanced Talking Face Generation", supplementary, Sect.
6.1) evaluates emotion with "an emotion classifier [with] the same architecture as the emotion
discriminator in our main pipeline", trained on the CREMA-D train split (more than 90% accuracy
on its test split); the generated clip's *requested* emotion is the label. Their emotion
discriminator follows Eskimez et al. 2021 ("Speech driven talking face generation from a
single image and an emotion condition", IEEE TMM). The seed's text gives no layer list, so the
layers below are those of the authors' released code (``sahilg06/EmoGen``, ``models/emo_disc.py``
class ``DISCEMO``, trained by ``emotion_disc_train.py`` on ``datagen_aug.py`` windows); module
names are the same, so a state dict of that class has the same keys:

- input: a window of ``T = 5`` consecutive face crops (``emonet_T``), ``(N, 3, T, H, W)``,
  values in [0, 1], ``H = W = 96`` (EmoGen's ``hparams.img_size``; Eskimez et al. used 128);
- ``conv_1`` .. ``conv_5``: per frame, ``Conv2d(k=3, stride=2, padding=1)`` with 64, 128, 256,
  512, 512 channels, each followed by ``LeakyReLU(0.3)``; no normalisation (96 -> 3x3x512);
- ``projector``: ``Linear(4608, 2048)``, ``LeakyReLU(0.3)``, ``Linear(2048, 512)`` per frame;
- ``rnn_1``: one-layer unidirectional ``LSTM(512, 512)`` over the ``T`` frame embeddings;
- ``cls``: ``Linear(512, 6)`` on the last time step -> logits of ANG DIS FEA HAP NEU SAD
  (``bench.EMOTIONS``, the order of EmoGen's ``emotion_dict``).

Training (``budget="paper"``) follows ``emotion_disc_train.py``: cross-entropy; weights of every
Conv2d/Linear initialised ``xavier_uniform_`` (biases at PyTorch's default); Adam, lr 1e-6,
betas (0.5, 0.999) (the optimiser ``DISCEMO`` builds for itself, which the script steps), StepLR
every 150 epochs by 0.1; batches of 64 windows, each from a clip drawn at random with a random
start frame; an epoch is ``floor(n_train / 64)`` batches (``drop_last``); the same
augmentation on all frames of a window with probability 0.8 (see :func:`augment_windows`).

Gaps and choices, where the text and the code leave something open:

- Frame layout. ``DISCEMO.forward`` reshapes its ``(N, C, T, H, W)`` input with
  ``view(T * N, C, H, W)`` without moving the time axis first, so each "frame" its CNN sees is
  three consecutive (channel, time) planes of the window. We implement the evident intent: the
  CNN sees each RGB frame, then the LSTM runs over time. Weights trained by EmoGen's code would
  load (same keys and shapes) but would not give the same outputs.
- Channels: RGB (EmoGen reads frames with OpenCV, BGR); irrelevant when training from scratch.
- Face crops: talkbench's aligned 128x128 crops (``bench.data.preprocess``) resized to the
  network's input size (bilinear, antialiased), not EmoGen's S3FD boxes.
- Stopping: the script trains until stopped by hand (``num_epochs`` 10000); ``paper`` trains
  300 epochs (two StepLR stages) and keeps the weights of the best validation accuracy
  (checked every 5 epochs) when there are validation clips.
- Augmentation: albumentations' RandomBrightnessContrast, RandomGamma, ChannelShuffle,
  RGBShift and GaussNoise are re-implemented in torch (the five the seed lists in Sect. 2.1);
  CLAHE and HueSaturationValue of ``datagen_aug.py`` are left out.
- Training data in memory: every training clip's frames are decoded once and kept at the
  network's input size (uint8); when that would exceed ``MAX_BANK_BYTES``, each clip keeps one
  random run of consecutive frames (the same length for every clip).
- ``demo`` and ``smoke`` budgets keep the architecture (five stride-2 3x3 convolutions with
  LeakyReLU(0.3), a two-layer projector, a one-layer LSTM, a linear classifier on the last
  step, 5-frame windows) but are narrower and take smaller frames (``demo``: 64x64, widths
  16-128, 0.54 M parameters instead of 16.5 M), train with Adam at lr 1e-3 for a fixed number
  of steps, and ``demo`` mirrors half of its windows left-right instead of the photometric
  augmentation (more face variety from few training speakers), so that they train on a CPU in
  about a minute (``demo``) or seconds (``smoke``); see ``BUDGETS``. Only ``paper`` is the
  seed's classifier.

Clip-level prediction. The paper classifies 5-frame windows and does not say how a clip is
scored; here a clip is split into consecutive non-overlapping windows of ``T`` frames, plus
one window ending at the last frame when ``T`` does not divide the clip's length (so every
frame is seen), and the clip's prediction is the softmax of the windows' mean logits. A clip
shorter than ``T`` frames cannot be classified.

The judge contract of :mod:`bench.judges.store`: :func:`train`, :func:`load`, :func:`evaluate`;
:func:`classify` / :func:`classify_videos` are the inference helpers the EmoAcc metric uses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import EMOTIONS
from bench.core.devices import resolve_device
from bench.core.training import budget_plan, progress_range, run_steps, state_snapshot

JUDGE_NAME = "emotion"
ARCHITECTURE = ("DISCEMO video emotion classifier (Goyal et al. 2023 emotion discriminator, "
                "after Eskimez et al. 2021)")
WEIGHTS_FILE = "emotion_classifier.pt"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1

WINDOW = 5
"""Frames per classifier window (EmoGen's ``emonet_T``)."""

MAX_BANK_BYTES = 6 * 2**30
"""Most bytes of training frames kept in memory (see the module docstring)."""

INFERENCE_WINDOWS = {"cpu": 64, "cuda": 1024}
"""Windows per forward pass at inference (bounds memory for long clips)."""


# ---------------------------------------------------------------------------------------------
# The network


@dataclass(frozen=True)
class NetConfig:
    """Shape of a :class:`EmotionNet`; the defaults are EmoGen's ``DISCEMO``."""

    size: int = 96
    """Height and width of the input frames."""
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    """Output channels of the stride-2 3x3 convolutions ``conv_1`` ..."""
    hidden: int = 2048
    """Width of the projector's hidden layer."""
    embed: int = 512
    """Frame embedding size = LSTM hidden size."""
    window: int = WINDOW
    """Frames per window."""
    slope: float = 0.3
    """LeakyReLU negative slope."""

    def feature_side(self) -> int:
        """Spatial side of the last convolution's output (``ceil(size / 2)`` per layer)."""
        side = self.size
        for _ in self.widths:
            side = (side + 1) // 2
        return side

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetConfig:
        return cls(**{**data, "widths": tuple(data["widths"])})


class EmotionNet(nn.Module):
    """EmoGen's ``DISCEMO`` (module docstring): per-frame CNN, projector, LSTM, classifier.

    ``forward`` takes windows ``(N, 3, T, H, W)`` (EmoGen's layout), float in [0, 1], and
    returns logits ``(N, 6)`` in the order of ``bench.EMOTIONS``.
    """

    def __init__(self, config: NetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or NetConfig()
        prev = 3
        for i, width in enumerate(config.widths):
            setattr(self, f"conv_{i + 1}", nn.Sequential(
                nn.Conv2d(prev, width, kernel_size=3, stride=2, padding=1),
                nn.LeakyReLU(config.slope)))
            prev = width
        features = prev * config.feature_side() ** 2
        self.projector = nn.Sequential(nn.Linear(features, config.hidden),
                                       nn.LeakyReLU(config.slope),
                                       nn.Linear(config.hidden, config.embed))
        self.rnn_1 = nn.LSTM(config.embed, config.embed, 1, bidirectional=False,
                             batch_first=True)
        self.cls = nn.Sequential(nn.Linear(config.embed, len(EMOTIONS)))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """EmoGen's ``init_weights``: ``xavier_uniform_`` on every Conv2d and Linear weight."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight, generator=generator)

    def frame_embeddings(self, windows: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` -> per-frame embeddings ``(N, T, embed)``."""
        n, c, t, h, w = windows.shape
        x = windows.transpose(1, 2).reshape(n * t, c, h, w)
        for i in range(len(self.config.widths)):
            x = getattr(self, f"conv_{i + 1}")(x)
        return self.projector(x.reshape(n, t, -1))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn_1(self.frame_embeddings(windows))
        return self.cls(out[:, -1, :])


# ---------------------------------------------------------------------------------------------
# Frames -> windows


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``(T, 3, H, W)`` uint8 -> ``(T, 3, size, size)`` uint8 (bilinear, antialiased when
    shrinking; a non-square frame is stretched)."""
    if frames.shape[-2:] == (size, size):
        return frames
    shrink = frames.shape[-2] > size or frames.shape[-1] > size
    out = F.interpolate(frames.float(), size=(size, size), mode="bilinear",
                        align_corners=False, antialias=shrink)
    return out.round().clamp(0, 255).to(torch.uint8)


def frames_tensor(frames: np.ndarray | torch.Tensor, size: int,
                  device: torch.device) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 RGB frames -> ``(T, 3, size, size)`` uint8 on ``device``."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} "
                             f"{frames.dtype}")
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    tensor = frames.to(device).permute(0, 3, 1, 2)
    return resize_frames(tensor, size)


def window_starts(n_frames: int, window: int = WINDOW) -> list[int]:
    """Start frames of a clip's windows: every ``window`` frames, plus one window ending at
    the last frame when ``window`` does not divide ``n_frames`` (module docstring)."""
    if n_frames < window:
        raise ValueError(f"clip has {n_frames} frames; the emotion classifier needs at least "
                         f"{window} (one {window}-frame window)")
    starts = list(range(0, n_frames - window + 1, window))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return starts


def gather_windows(frames: torch.Tensor, starts: Sequence[int] | torch.Tensor,
                   window: int) -> torch.Tensor:
    """``(T, 3, S, S)`` uint8 and window starts -> ``(N, 3, window, S, S)`` float in [0, 1]."""
    starts = torch.as_tensor(starts, device=frames.device)
    index = starts[:, None] + torch.arange(window, device=frames.device)
    return frames[index].transpose(1, 2).float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# The judge object and inference


@dataclass
class EmotionClassifier:
    """A trained classifier ready for inference (what :func:`load` returns)."""

    net: EmotionNet
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> NetConfig:
        return self.net.config


@torch.inference_mode()
def window_logits(judge: EmotionClassifier, windows: torch.Tensor) -> torch.Tensor:
    """Logits ``(N, 6)`` float32 of windows ``(N, 3, T, S, S)``, in chunks."""
    chunk = INFERENCE_WINDOWS.get(judge.device.type, INFERENCE_WINDOWS["cpu"])
    judge.net.eval()
    outs = [judge.net(windows[i:i + chunk].to(judge.device))
            for i in range(0, windows.shape[0], chunk)]
    return torch.cat(outs)


@torch.inference_mode()
def classify_videos(judge: EmotionClassifier,
                    videos: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray:
    """Emotion probabilities ``(len(videos), 6)`` float64, one row per clip, in the order of
    ``bench.EMOTIONS``: softmax of the mean logits over the clip's windows (module docstring).
    All windows of all clips go through the network in shared batches.

    Raises ``ValueError`` for frames that are not ``(T, H, W, 3)`` uint8 or a clip shorter
    than one window.
    """
    cfg = judge.config
    windows, owners = [], []
    for k, video in enumerate(videos):
        frames = frames_tensor(video, cfg.size, judge.device)
        starts = window_starts(frames.shape[0], cfg.window)
        windows.append(gather_windows(frames, starts, cfg.window))
        owners.append(torch.full((len(starts),), k, dtype=torch.long))
    if not windows:
        return np.zeros((0, len(EMOTIONS)))
    logits = window_logits(judge, torch.cat(windows)).to(torch.float64)
    owner = torch.cat(owners).to(logits.device)
    sums = torch.zeros(len(videos), logits.shape[1], dtype=torch.float64, device=logits.device)
    sums.index_add_(0, owner, logits)
    counts = torch.bincount(owner, minlength=len(videos)).to(torch.float64)
    return torch.softmax(sums / counts[:, None], dim=1).cpu().numpy()


def classify(judge: EmotionClassifier, frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Emotion probabilities ``(6,)`` float64 of one clip ``(T, H, W, 3)`` uint8 (order of
    ``bench.EMOTIONS``); see :func:`classify_videos`."""
    return classify_videos(judge, [frames])[0]


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class Budget:
    """How one budget trains (module docstring)."""

    net: NetConfig
    batch: int
    lr: float
    steps: int | None = None
    """Fixed number of optimiser steps; None: ``epochs`` epochs of ``floor(n / batch)``."""
    epochs: int | None = None
    lr_step_epochs: int | None = None
    """StepLR: multiply the lr by 0.1 every this many epochs (None: constant)."""
    betas: tuple[float, float] = (0.5, 0.999)
    augment: bool = True
    flip: bool = False
    """Mirror half of the windows left-right (not in EmoGen; the demo uses it)."""
    eval_every: int = 0
    """Validate every this many steps and keep the best weights (0: once, at the end)."""


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(net=NetConfig(size=32, widths=(4, 8, 8, 16, 16), hidden=32, embed=16),
                    batch=4, lr=1e-3, steps=3, augment=True),
    "demo": Budget(net=NetConfig(size=64, widths=(16, 32, 64, 128, 128), hidden=256, embed=128),
                   batch=24, lr=1e-3, steps=400, augment=False, flip=True, eval_every=100),
    "paper": Budget(net=NetConfig(), batch=64, lr=1e-6, epochs=300, lr_step_epochs=150),
}


def augment_windows(windows: torch.Tensor, generator: torch.Generator,
                    p: float = 0.8, p_each: float = 0.2) -> torch.Tensor:
    """EmoGen's ``datagen_aug`` augmentation, in torch, on ``(N, 3, T, S, S)`` in [0, 1].

    With probability ``p`` per window, each of these is applied with probability ``p_each``,
    with the same parameters on every frame of the window (albumentations' defaults):
    brightness/contrast (``x * (1 + U(-.2, .2)) + U(-.2, .2)``), gamma (``x ** U(.8, 1.2)``),
    channel shuffle, RGB shift (``U(-20, 20) / 255`` per channel) and Gaussian noise (variance
    ``U(10, 50)`` on the 0-255 scale, independent per pixel).
    """
    n, dev = windows.shape[0], windows.device

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    active = draw(n) < p
    chosen = (draw(n, 5) < p_each) & active[:, None]
    x = windows
    shape = (n, 1, 1, 1, 1)
    on = chosen[:, 0].view(shape)
    alpha = 1 + (draw(n) * 0.4 - 0.2).view(shape)
    beta = (draw(n) * 0.4 - 0.2).view(shape)
    x = torch.where(on, x * alpha + beta, x).clamp(0, 1)
    on = chosen[:, 1].view(shape)
    gamma = (0.8 + draw(n) * 0.4).view(shape)
    x = torch.where(on, x.clamp_min(1e-6) ** gamma, x)
    on = chosen[:, 2].view(shape)
    perm = torch.argsort(draw(n, 3), dim=1)
    shuffled = torch.gather(x, 1, perm.view(n, 3, 1, 1, 1).expand_as(x))
    x = torch.where(on, shuffled, x)
    on = chosen[:, 3].view(shape)
    shift = ((draw(n, 3) * 40 - 20) / 255).view(n, 3, 1, 1, 1)
    x = torch.where(on, x + shift, x).clamp(0, 1)
    on = chosen[:, 4].view(shape)
    std = (torch.sqrt(10 + draw(n) * 40) / 255).view(shape)
    noise = torch.randn(x.shape, generator=generator).to(dev) * std
    return torch.where(on, x + noise, x).clamp(0, 1)


@dataclass
class FrameBank:
    """Training frames in memory at the network's size: one ``(T_i, 3, S, S)`` uint8 tensor
    and one label index per clip."""

    frames: list[torch.Tensor]
    labels: torch.Tensor
    skipped: dict[str, str]


def build_bank(clips: Sequence[Any], size: int, window: int, rng: np.random.Generator,
               progress: bool = False, max_bytes: int = MAX_BANK_BYTES) -> FrameBank:
    """Decode every clip once, resize it, keep its frames and label (module docstring).

    Clips without an emotion in ``bench.EMOTIONS`` or shorter than ``window`` are skipped
    (listed in ``skipped`` with the reason).
    """
    frames, labels, skipped = [], [], {}
    for i in progress_range(len(clips), progress, "emotion: load clips"):
        clip = clips[i]
        if clip.emotion not in EMOTIONS:
            skipped[clip.clip_id] = f"no emotion label ({clip.emotion!r})"
            continue
        if clip.frames.shape[0] < window:
            skipped[clip.clip_id] = f"{clip.frames.shape[0]} frames < {window}"
            continue
        frames.append(frames_tensor(clip.frames, size, torch.device("cpu")))
        labels.append(EMOTIONS.index(clip.emotion))
    total = sum(f.numel() for f in frames)
    if total > max_bytes:
        keep = max(window, max_bytes // (len(frames) * 3 * size * size))
        for i, f in enumerate(frames):
            if f.shape[0] > keep:
                start = int(rng.integers(0, f.shape[0] - keep + 1))
                frames[i] = f[start:start + keep].clone()
    return FrameBank(frames, torch.tensor(labels, dtype=torch.long), skipped)


def sample_batch(bank: FrameBank, batch: int, window: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows, each from a random clip at a random start (as ``datagen_aug``):
    ``(B, 3, window, S, S)`` float in [0, 1] and labels ``(B,)``, on the CPU."""
    which = rng.integers(0, len(bank.frames), size=batch)
    windows = []
    for k in which:
        f = bank.frames[k]
        start = int(rng.integers(0, f.shape[0] - window + 1))
        windows.append(f[start:start + window])
    x = torch.stack(windows).transpose(1, 2).float().div_(255.0)
    return x, bank.labels[torch.as_tensor(which)]


def clip_accuracy(judge: EmotionClassifier, bank: FrameBank) -> float:
    """Clip-level accuracy on a bank (all windows of each clip, mean logits)."""
    if not bank.frames:
        return math.nan
    correct = 0
    for frames, label in zip(bank.frames, bank.labels.tolist(), strict=True):
        starts = window_starts(frames.shape[0], judge.config.window)
        logits = window_logits(judge, gather_windows(frames, starts, judge.config.window))
        correct += int(int(logits.mean(0).argmax()) == label)
    return correct / len(bank.frames)


def train(train: Sequence[Any], val: Sequence[Any] | None, out_dir: str | Path, *,
          budget: str = "demo", device: str | torch.device | None = None, seed: int = 0,
          progress: bool = False, on_step: Callable[[int, float], None] | None = None
          ) -> dict[str, Any]:
    """Train the classifier from scratch on prepared clips (``Clip.frames`` aligned face
    crops, ``Clip.emotion`` the label) and write ``emotion_classifier.pt`` and ``config.json``
    into ``out_dir``. Returns the training log (plain JSON values), with the validation
    clip-level accuracy when ``val`` has clips.
    """
    plan = budget_plan(BUDGETS, budget)
    cfg = plan.net
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    start_time = time.perf_counter()

    bank = build_bank(train, cfg.size, cfg.window, rng, progress)
    if not bank.frames:
        raise ValueError("no training clip with an emotion label and at least "
                         f"{cfg.window} frames")
    val_bank = build_bank(val, cfg.size, cfg.window, rng, progress) if val else None
    load_s = time.perf_counter() - start_time

    net = EmotionNet(cfg)
    net.reset_parameters(gen)
    net.to(dev)
    judge = EmotionClassifier(net, dev)
    optimiser = torch.optim.Adam(net.parameters(), lr=plan.lr, betas=plan.betas)
    steps_per_epoch = max(1, len(bank.frames) // plan.batch)
    total = plan.steps if plan.steps is not None else (plan.epochs or 1) * steps_per_epoch
    scheduler = (torch.optim.lr_scheduler.StepLR(optimiser, plan.lr_step_epochs, gamma=0.1)
                 if plan.lr_step_epochs else None)
    eval_every = plan.eval_every or (5 * steps_per_epoch if plan.epochs else 0)

    history: list[dict[str, float]] = []
    best = {"val_accuracy": -1.0, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    losses: list[float] = []
    hits = 0
    seen = 0

    def step(i: int) -> dict[str, float]:
        nonlocal best, best_state, hits, seen
        net.train()
        x, y = sample_batch(bank, plan.batch, cfg.window, rng)
        if plan.augment:
            x = augment_windows(x, gen)
        if plan.flip:
            mirror = torch.rand(x.shape[0], generator=gen) < 0.5
            x[mirror] = x[mirror].flip(-1)
        x, y = x.to(dev), y.to(dev)
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        hits += int((logits.argmax(1) == y).sum())
        seen += y.numel()
        if scheduler is not None and i % steps_per_epoch == 0:
            scheduler.step()
        if on_step is not None:
            on_step(i, losses[-1])
        if val_bank is not None and val_bank.frames and (
                (eval_every and i % eval_every == 0) or i == total):
            acc = clip_accuracy(judge, val_bank)
            history.append({"step": i, "train_loss": float(np.mean(losses[-20:])),
                            "val_accuracy": acc})
            if acc > best["val_accuracy"]:
                best = {"val_accuracy": acc, "step": i}
                best_state = state_snapshot(net)
        return {"loss": losses[-1]}

    run_steps(step, total, progress=progress, desc=f"emotion: train ({budget})")
    if best_state is not None:
        net.load_state_dict(best_state)

    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, out_dir / WEIGHTS_FILE)
    config = {"format": FORMAT_VERSION, "judge": JUDGE_NAME, "architecture": ARCHITECTURE,
              "emotions": list(EMOTIONS), "net": cfg.to_json(), "budget": budget,
              "input": "RGB aligned face crops resized to net.size, values /255, "
                       f"windows of {cfg.window} consecutive frames",
              "clip_prediction": "softmax of the mean logits over non-overlapping windows "
                                 "(plus one ending at the last frame)"}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    tail = max(1, min(len(losses), steps_per_epoch))
    log: dict[str, Any] = {
        "architecture": ARCHITECTURE, "budget": budget, "net": cfg.to_json(),
        "batch": plan.batch, "lr": plan.lr, "final_lr": optimiser.param_groups[0]["lr"],
        "betas": list(plan.betas), "steps": total,
        "epochs": round(total / steps_per_epoch, 3), "lr_step_epochs": plan.lr_step_epochs,
        "augment": plan.augment, "seed": seed, "device": str(dev),
        "n_train_clips": len(bank.frames), "n_val_clips": len(val_bank.frames) if val_bank else 0,
        "skipped_train": bank.skipped,
        "train_loss_last": float(np.mean(losses[-tail:])),
        "train_window_accuracy": hits / max(seen, 1),
        "load_s": round(load_s, 3), "train_s": round(time.perf_counter() - start_time - load_s, 3),
    }
    if history:
        log.update(val_accuracy=best["val_accuracy"], best_step=best["step"], history=history)
    return log


# ---------------------------------------------------------------------------------------------
# Loading and evaluating


def load(directory: str | Path, device: str | torch.device | None = None) -> EmotionClassifier:
    """The classifier written by :func:`train` into ``directory``, in eval mode on ``device``."""
    directory = Path(directory)
    config = json.loads((directory / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT_VERSION or list(config.get("emotions", [])) != list(EMOTIONS):
        raise ValueError(f"{directory}: not an emotion classifier of format {FORMAT_VERSION} "
                         f"over {' '.join(EMOTIONS)}")
    net = EmotionNet(NetConfig.from_json(config["net"]))
    state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    dev = resolve_device(device)
    net.eval().to(dev)
    return EmotionClassifier(net, dev, config)


def evaluate(judge: EmotionClassifier, clips: Sequence[Any], *,
             device: str | torch.device | None = None) -> dict[str, Any]:
    """The classifier's own quality on real clips: clip-level accuracy, mean per-class
    accuracy, per-emotion accuracy and the confusion matrix (rows: true emotion, columns:
    predicted, order of ``bench.EMOTIONS``). ``figure`` names the quality figure
    (``accuracy``) and ``chance`` its chance level (1/6: a judge that learned nothing). Clips
    without a label or shorter than a window are counted in ``n_skipped``."""
    if device is not None and resolve_device(device) != judge.device:
        judge = replace(judge, net=judge.net.to(resolve_device(device)),
                        device=resolve_device(device))
    k = len(EMOTIONS)
    confusion = np.zeros((k, k), dtype=np.int64)
    skipped: dict[str, str] = {}
    for i in range(len(clips)):
        clip = clips[i]
        if clip.emotion not in EMOTIONS:
            skipped[clip.clip_id] = f"no emotion label ({clip.emotion!r})"
            continue
        try:
            probs = classify(judge, clip.frames)
        except ValueError as err:
            skipped[clip.clip_id] = str(err)
            continue
        confusion[EMOTIONS.index(clip.emotion), int(np.argmax(probs))] += 1
    return confusion_report(confusion) | {"figure": "accuracy", "n_skipped": len(skipped),
                                          "skipped_examples": dict(list(skipped.items())[:3])}


def confusion_report(confusion: np.ndarray) -> dict[str, Any]:
    """Accuracy, mean per-class accuracy and per-emotion accuracy of a confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.int64)
    n = int(confusion.sum())
    per_class = confusion.sum(1)
    per_emotion = {e: {"n": int(per_class[i]),
                       "accuracy": (float(confusion[i, i] / per_class[i]) if per_class[i]
                                    else None)}
                   for i, e in enumerate(EMOTIONS)}
    present = [float(confusion[i, i] / per_class[i]) for i in range(len(EMOTIONS))
               if per_class[i]]
    return {"n": n,
            "accuracy": float(np.trace(confusion) / n) if n else None,
            "mean_class_accuracy": float(np.mean(present)) if present else None,
            "chance": 1 / len(EMOTIONS),
            "per_emotion": per_emotion,
            "confusion": {"labels": list(EMOTIONS), "rows": "true", "columns": "predicted",
                          "matrix": confusion.tolist()}}
