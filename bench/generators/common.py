"""Pieces every reimplemented generator shares: training data in memory, audio windows per
video frame, image conversions, the face's mouth region, the VGG-19 perceptual loss with its
stand-in, and a time-capped training loop.

Conventions (all generators):

- images are float tensors ``(N, 3, H, W)`` in ``[-1, 1]`` (``to_tensor`` / ``to_uint8``);
- frame ``t`` of a clip covers audio samples ``[640 t, 640 (t + 1))`` (SPEC 4.1); the audio
  window of frame ``t`` is centred on that span (:func:`audio_windows`, :func:`mfcc_windows`);
- prepared clips are talkbench's aligned crops (:mod:`bench.data.preprocess`): the canonical
  face sits at the same place in every frame, so the mouth region is a fixed box
  (:func:`mouth_box`, :func:`mouth_weights`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import SAMPLES_PER_FRAME

MOUTH_POINTS = slice(48, 68)
"""dlib's 68-point indices of the outer and inner lip contours."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; ``None`` picks CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------
# Images


def to_tensor(frames: np.ndarray | torch.Tensor, size: int | tuple[int, int] | None = None,
              device: str | torch.device | None = "cpu") -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., 3, h, w)`` float32 in ``[-1, 1]``, resized to
    ``size`` (antialiased bilinear) when given."""
    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray)
                        else frames).to(device)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if size is not None:
        x = resize(x, size)
    return x.reshape(*lead, *x.shape[1:])


def to_uint8(images: torch.Tensor, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """``(..., 3, h, w)`` float in ``[-1, 1]`` -> ``(..., H, W, 3)`` uint8 RGB (resized to
    ``size`` first when given)."""
    lead = images.shape[:-3]
    x = images.detach().reshape(-1, *images.shape[-3:]).float()
    if size is not None:
        x = resize(x, size)
    x = ((x.clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[-2:], 3).cpu().numpy()


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C, *size)``, bilinear with antialiasing when shrinking."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == hw:
        return images
    shrink = hw[0] < images.shape[-2] or hw[1] < images.shape[-1]
    return F.interpolate(images, size=hw, mode="bilinear", align_corners=False,
                         antialias=shrink)


# ---------------------------------------------------------------------------------------------
# The face's regions in talkbench's aligned crops


def template_points(size: int) -> np.ndarray:
    """The canonical face's 68 landmarks in a ``size`` x ``size`` crop, ``(68, 2)`` (x, y),
    as :class:`bench.data.preprocess.PrepParams` places them (scaled from its crop size)."""
    from bench.data.preprocess import PrepParams

    params = PrepParams()
    return (params.template_pixels() + 0.5) * (size / params.size) - 0.5


def mouth_box(size: int, pad: float = 0.35) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` pixel bounds of the mouth in a ``size`` crop: the lip
    landmarks' box grown by ``pad`` of its size on each side."""
    lips = template_points(size)[MOUTH_POINTS]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    top, bottom = max(0, math.floor(y0 - dy)), min(size, math.ceil(y1 + dy) + 1)
    left, right = max(0, math.floor(x0 - dx)), min(size, math.ceil(x1 + dx) + 1)
    return top, bottom, left, right


def mouth_weights(size: int, sigma_fraction: float = 0.12, peak: float = 1.0) -> torch.Tensor:
    """``(1, 1, size, size)`` Gaussian centred on the mouth (mean of the lip landmarks), standard
    deviation ``sigma_fraction * size``, maximum ``peak``: the weight map of a mouth-region
    loss such as Eskimez et al.'s MRM."""
    cx, cy = template_points(size)[MOUTH_POINTS].mean(0)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    sigma = sigma_fraction * size
    g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
    return (peak * g)[None, None]


def lower_half_mask(size: int) -> torch.Tensor:
    """``(1, 1, size, size)``: 1 on the lower half of the face crop (below the template's nose
    tip, landmark 33, rounded up to the crop's middle at most), 0 above."""
    nose_y = template_points(size)[33, 1]
    cut = int(min(size // 2, round(nose_y)))
    mask = torch.zeros(1, 1, size, size)
    mask[..., cut:, :] = 1.0
    return mask


# ---------------------------------------------------------------------------------------------
# Audio per video frame


def audio_windows(audio: np.ndarray, num_frames: int, window: int) -> np.ndarray:
    """Raw audio around each video frame: ``(num_frames, window)`` float32, row ``t`` the
    ``window`` samples centred on frame ``t``'s span ``[640 t, 640 (t + 1))``, zero-padded
    beyond the clip's ends (a 0.2 s window is ``window = 3200``)."""
    audio = np.asarray(audio, dtype=np.float32)
    half = window // 2
    pad_left = half
    pad_right = half + window + SAMPLES_PER_FRAME * num_frames
    padded = np.pad(audio, (pad_left, max(0, pad_right - audio.shape[0])))
    starts = SAMPLES_PER_FRAME * np.arange(num_frames) + SAMPLES_PER_FRAME // 2  # + half - half
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    return np.ascontiguousarray(view[starts])


def mfcc_windows(audio: np.ndarray, num_frames: int, window: int,
                 coefficients: slice = slice(0, 13)) -> np.ndarray:
    """MFCCs around each video frame: ``(num_frames, n_coeff, window)`` float32.

    MFCCs as :func:`bench.judges.mfcc.mfcc` computes them (python_speech_features' defaults:
    25 ms windows every 10 ms, 13 coefficients, on the int16 scale), four per video frame;
    row ``t`` holds the ``window`` MFCC frames centred on frame ``t``'s four (a 0.35 s window,
    as in Speech2Vid, is ``window = 35``), edge-padded with the clip's first/last MFCC frame.
    """
    from bench.judges.mfcc import audio_to_int16, mfcc

    feats = mfcc(audio_to_int16(np.asarray(audio)))[:, coefficients].astype(np.float32)
    centre = 4 * np.arange(num_frames) + 2  # the middle of frame t's four MFCC frames
    index = centre[:, None] - window // 2 + np.arange(window)[None, :]
    index = np.clip(index, 0, feats.shape[0] - 1)
    return np.ascontiguousarray(feats[index].transpose(0, 2, 1))


# ---------------------------------------------------------------------------------------------
# Training data in memory


@dataclass
class ClipBank:
    """Training clips at the generator's resolution: per clip, frames ``(T, 3, s, s)`` uint8,
    audio ``(T * 640,)`` float32, and the emotion label (or None)."""

    frames: list[torch.Tensor]
    audio: list[np.ndarray]
    emotions: list[str | None]
    clip_ids: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def total_frames(self) -> int:
        return int(sum(f.shape[0] for f in self.frames))

    def images(self, clip: int, index: np.ndarray | Sequence[int] | slice,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Frames of one clip as float images in ``[-1, 1]``: ``(n, 3, s, s)``."""
        return self.frames[clip][index].to(device).float().div_(127.5).sub_(1.0)


def load_bank(clips: Sequence[Any], size: int, min_frames: int = 1,
              max_clips: int | None = None, progress: bool = False) -> ClipBank:
    """Read prepared clips once (``Clip.frames`` aligned crops, ``Clip.audio``), resize the
    frames to ``size`` x ``size`` and keep them as uint8. Clips shorter than ``min_frames`` are
    left out; ``max_clips`` keeps the first ones only."""
    n = len(clips) if max_clips is None else min(len(clips), max_clips)
    iterator: Any = range(n)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="load clips", unit="clip", leave=False)
    bank = ClipBank(frames=[], audio=[], emotions=[], clip_ids=[])
    for i in iterator:
        clip = clips[i]
        if clip.num_frames < min_frames:
            continue
        x = torch.from_numpy(np.ascontiguousarray(clip.frames)).permute(0, 3, 1, 2)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = resize(x.float(), size).round_().clamp_(0, 255).to(torch.uint8)
        bank.frames.append(x.contiguous())
        bank.audio.append(np.asarray(clip.audio, dtype=np.float32))
        bank.emotions.append(clip.emotion)
        bank.clip_ids.append(clip.clip_id)
    if not len(bank):
        raise ValueError(f"no training clip has at least {min_frames} frames "
                         f"(of {n} clips)")
    return bank


# ---------------------------------------------------------------------------------------------
# Perceptual loss: VGG-19 from a local file, or a named stand-in

VGG19_WEIGHTS_NAME = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG-19 weights file (``torchvision.models.VGG19_Weights``)."""

VGG19_WEIGHTS_ENV = "TALKBENCH_VGG19_WEIGHTS"

VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
"""Index (in ``torchvision.models.vgg19().features``) of the layer after each named ReLU."""

STAND_IN_VGG = "stand-in: VGG-19 with seeded random weights (no ImageNet file found)"


def find_vgg19_weights() -> Path | None:
    """``$TALKBENCH_VGG19_WEIGHTS``, else ``<weights dir>/vgg19-dcbb9e9d.pth``, else None.
    Nothing is downloaded."""
    from bench.judges.weights import weights_dir

    env = os.environ.get(VGG19_WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${VGG19_WEIGHTS_ENV} names {path}, which does not exist")
        return path
    path = weights_dir() / VGG19_WEIGHTS_NAME
    return path if path.is_file() else None


class VGGPerceptualLoss(nn.Module):
    """Mean L1 distance between VGG-19 feature maps of two image batches (``[-1, 1]`` in,
    ImageNet normalisation inside), summed over ``layers`` with equal weights.

    The ImageNet weights load from a local file (:func:`find_vgg19_weights`); without one, a
    VGG-19 with seeded random (Kaiming) weights stands in, and :attr:`source` says so: the run
    records it. The network is frozen."""

    def __init__(self, layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4"),
                 seed: int = 0) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        path = find_vgg19_weights()
        if path is not None:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            from bench.judges.weights import sha256_of_file

            self.source = f"ImageNet VGG-19 from {path} (sha256 {sha256_of_file(path)[:12]})"
        else:
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for m in net.features:
                    if isinstance(m, nn.Conv2d):
                        m.weight.normal_(0, math.sqrt(2.0 / m.weight[0].numel()),
                                         generator=generator)
                        m.bias.zero_()
            self.source = f"{STAND_IN_VGG}, seed {seed}"
        self.cuts = sorted(VGG19_LAYERS[name] + 1 for name in layers)
        self.features = net.features[:self.cuts[-1]].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # always eval (frozen)
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x = torch.cat([fake, real])
        x = ((x + 1) / 2 - self.mean) / self.std
        loss = x.new_zeros(())
        start = 0
        for cut in self.cuts:
            x = self.features[start:cut](x)
            start = cut
            a, b = x.chunk(2)
            loss = loss + (a - b.detach()).abs().mean()
        return loss


# ---------------------------------------------------------------------------------------------
# Training loop


@dataclass
class TrainLog:
    """What a training run did (plain JSON via :meth:`as_dict`)."""

    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    first: dict[str, float] | None = None
    last: dict[str, float] | None = None
    desc: str = "train"
    step_seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds of each step (the GPU synchronised first when one was used)."""

    @property
    def median_step_seconds(self) -> float | None:
        """Median step time leaving out the first step (warm-up) when there are more."""
        times = self.step_seconds[1:] if len(self.step_seconds) > 1 else self.step_seconds
        return float(np.median(times)) if times else None

    def as_dict(self) -> dict[str, Any]:
        median = self.median_step_seconds
        return {"steps": self.steps, "seconds": round(self.seconds, 2),
                "median_step_s": None if median is None else round(median, 4),
                "stopped_early": self.stopped_early, "losses_first": self.first,
                "losses_last": self.last}


_RECORDERS: list[list[TrainLog]] = []


@contextlib.contextmanager
def recording_training() -> Iterator[list[TrainLog]]:
    """Collect the :class:`TrainLog` of every :func:`run_steps` call made inside the block
    (``bench profile`` uses it to time each training stage of an adapter's ``fit``)."""
    logs: list[TrainLog] = []
    _RECORDERS.append(logs)
    try:
        yield logs
    finally:
        _RECORDERS.remove(logs)


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def run_steps(step: Callable[[int], dict[str, float]], steps: int,
              max_seconds: float | None = None, progress: bool = False,
              desc: str = "train", average: int = 20) -> TrainLog:
    """Call ``step(i)`` for ``i = 1..steps`` (each returns its losses as floats), stopping
    early once ``max_seconds`` have passed. The log keeps the losses averaged over the first
    and last ``average`` steps."""
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=desc, unit="step", leave=False)
    history: list[dict[str, float]] = []
    log = TrainLog(desc=desc)
    for recorder in _RECORDERS:
        recorder.append(log)
    start = time.perf_counter()
    try:
        for i in range(1, steps + 1):
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                log.stopped_early = True
                break
            began = time.perf_counter()
            history.append({k: float(v) for k, v in step(i).items()})  # float() waits for the GPU
            _synchronize()
            log.step_seconds.append(time.perf_counter() - began)
            log.steps = i
            if bar is not None:
                bar.update(1)
                if i % 10 == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in history[-1].items()})
    finally:
        if bar is not None:
            bar.close()
    log.seconds = time.perf_counter() - start

    def mean(rows: list[dict[str, float]]) -> dict[str, float] | None:
        if not rows:
            return None
        return {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}

    log.first = mean(history[:average])
    log.last = mean(history[-average:])
    return log


def count_parameters(module: nn.Module) -> int:
    """Trainable and frozen parameters of ``module``."""
    return int(sum(p.numel() for p in module.parameters()))
