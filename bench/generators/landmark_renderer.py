"""A landmark-to-image renderer trained here: identity image + its 68 landmarks + target 68
landmarks -> the identity's face with the target's shape (mouth, jaw, brows, eyes).

Seed 001 (Ventriloquist-Net, Sect. 2 "Rendering module") renders its landmark sequences with
a public pre-trained one-shot renderer (Zakharov et al. 2020, "Fast bi-layer neural synthesis
of one-shot realistic head avatars", their [23]); talkbench has no such weights, so this
module is a **named stand-in** (:data:`RENDERER_NAME`), trained on the train split's real
frames and their landmarks, that any landmark-driven generator can use. Everything here is
ours (no paper specifies it):

- **Sketch** (:func:`landmark_sketch`): the 68 points drawn as six polyline channels (jaw,
  brows, nose, eyes, outer lips, inner lips), Gaussian dots along each segment.
- **Motion prior** (:func:`sparse_motion`): a backward warp from the target points to the
  identity points, interpolated between landmarks with Gaussian weights around the target
  points and faded to no motion away from the face (``background`` weight), as keypoint
  renderers build their sparse motion.
- **Network** (:class:`LandmarkRenderer`): a small U-Net on [identity warped by the prior,
  identity, target sketch, identity sketch] predicting a flow correction (added to the prior)
  and an RGB residual; the frame is the identity warped by the corrected flow plus the
  residual. The head starts at zero, so an untrained renderer is the prior warp.
- **Any resolution**: the network runs at ``size``; the flow (in normalised coordinates) and
  the residual are upsampled to the identity image's own resolution and the full-resolution
  identity is warped, so texture away from the mouth keeps the identity's sharpness.
- **Training** (:func:`train_renderer`): pairs of frames of one training clip (identity: the
  clip's first frame with probability ``first_frame``, else a random frame; target: a random
  frame) with their real landmarks; loss L1 + ``w_perc`` x VGG-19 perceptual loss on the
  first ``perc_frames`` pairs (:mod:`bench.generators.perceptual`: ImageNet weights from a
  local file or its named stand-in); Adam.
- **Identity landmarks at generation** (:func:`identity_landmarks`): dlib's 68 points on the
  identity image (upsampled first when small), or, when dlib finds no face, the canonical face
  of talkbench's aligned crop (:func:`bench.core.face_template.template_at`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.face_template import template_at
from bench.core.training import run_steps

RENDERER_NAME = ("talkbench landmark renderer (stand-in for the pre-trained bi-layer one-shot "
                 "renderer of Zakharov et al. 2020 that seed 001 used; trained here on the "
                 "train split's frames and landmarks, L1 + perceptual)")

SKETCH_CONTOURS: tuple[tuple[tuple[int, ...], bool], ...] = (
    ((tuple(range(0, 17)), False),),  # jaw
    ((tuple(range(17, 22)), False), (tuple(range(22, 27)), False)),  # brows
    ((tuple(range(27, 31)), False), (tuple(range(31, 36)), False)),  # nose
    ((tuple(range(36, 42)), True), (tuple(range(42, 48)), True)),  # eyes
    ((tuple(range(48, 60)), True),),  # outer lips
    ((tuple(range(60, 68)), True),),  # inner lips
)
"""Channels of the sketch: each a list of (point indices, closed) polylines."""


def _segments() -> tuple[np.ndarray, np.ndarray]:
    """Segment end points (index pairs) and each segment's channel."""
    pairs, channel = [], []
    for c, contours in enumerate(SKETCH_CONTOURS):
        for points, closed in contours:
            ends = list(zip(points[:-1], points[1:], strict=True))
            if closed:
                ends.append((points[-1], points[0]))
            pairs += ends
            channel += [c] * len(ends)
    return np.array(pairs), np.array(channel)


SEGMENTS, SEGMENT_CHANNEL = _segments()
SKETCH_CHANNELS = len(SKETCH_CONTOURS)
SKETCH_SAMPLES = 4
"""Gaussian dots drawn per segment of the sketch."""


@dataclass(frozen=True)
class RendererConfig:
    """Sizes and training schedule of the renderer (all ours; see the module docstring)."""

    size: int = 128
    """Side of the square frames the network works at."""
    channels: tuple[int, ...] = (64, 128, 256, 512)
    """U-Net widths: the first at full size, each next one after a stride-2 convolution."""
    sketch_sigma: float = 1.0
    """Sketch line width (Gaussian standard deviation) in pixels per 64 pixels of frame."""
    motion_sigma: float = 0.08
    """Motion prior's Gaussian around each target point, as a fraction of the frame side."""
    background: float = 0.05
    """Weight of "no motion" in the prior (larger: motion fades faster away from points)."""
    batch: int = 16
    steps: int = 100_000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    w_perc: float = 1.0
    perc_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
    perc_frames: int | None = None
    """Pairs of the batch the perceptual loss sees (None: all)."""
    first_frame: float = 0.5
    """Probability that a training pair's identity is its clip's first frame."""
    chunk: int = 32
    """Frames rendered at once in generation (bounds memory)."""


# ---------------------------------------------------------------------------------------------
# Geometry


def scale_points(points: np.ndarray | torch.Tensor, src: int | float,
                 dst: int | float) -> Any:
    """Pixel coordinates (pixel centres at integers) in a ``src``-pixel frame -> the same
    places in a ``dst``-pixel frame."""
    return (points + 0.5) * (dst / src) - 0.5


def _sketch_samples() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points sampled along every segment (``SKETCH_SAMPLES`` per segment): the two end
    indices, the fraction along the segment, and the channel of each sample."""
    t = np.arange(SKETCH_SAMPLES) / SKETCH_SAMPLES
    a = np.repeat(SEGMENTS[:, 0], SKETCH_SAMPLES)
    b = np.repeat(SEGMENTS[:, 1], SKETCH_SAMPLES)
    return a, b, np.tile(t, len(SEGMENTS)), np.repeat(SEGMENT_CHANNEL, SKETCH_SAMPLES)


def landmark_sketch(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """``(N, 68, 2)`` pixel coordinates in a ``size`` frame -> ``(N, 6, size, size)`` sketch
    in ``[0, 1]``: the polylines of :data:`SKETCH_CONTOURS` drawn as Gaussian dots
    (standard deviation ``sigma`` px) at ``SKETCH_SAMPLES`` places per segment, summed per
    channel and clipped at 1 (separable Gaussians: one batched matrix product)."""
    a, b, t, channel = (torch.as_tensor(v, device=points.device) for v in _sketch_samples())
    t = t.to(points.dtype)[None, :, None]
    samples = points[:, a] * (1 - t) + points[:, b] * t  # (N, K, 2)
    coords = torch.arange(size, dtype=points.dtype, device=points.device)
    gx = torch.exp(-(coords[None, None] - samples[..., :1]) ** 2 / (2 * sigma ** 2))
    gy = torch.exp(-(coords[None, None] - samples[..., 1:]) ** 2 / (2 * sigma ** 2))
    onehot = F.one_hot(channel, SKETCH_CHANNELS).to(points.dtype)  # (K, C)
    sketch = torch.einsum("nky,kc,nkx->ncyx", gy, onehot, gx)
    return sketch.clamp(max=1.0)


def base_grid(n: int, h: int, w: int, device: torch.device | str,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The identity sampling grid ``(n, h, w, 2)`` of ``grid_sample`` (align_corners=False)."""
    ys = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    xs = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(n, h, w, 2)


def sparse_motion(source: torch.Tensor, target: torch.Tensor, size: int, sigma: float,
                  background: float) -> torch.Tensor:
    """Backward displacement ``(N, 2, size, size)`` in normalised coordinates: at output pixel
    ``p``, ``sum_k w_k(p) (source_k - target_k) / (sum_k w_k(p) + background)`` with
    ``w_k(p) = exp(-|p - target_k|^2 / 2 sigma^2)`` (``sigma`` in pixels); sampling the
    source image at ``p + displacement`` moves each source point onto its target point."""
    coords = torch.arange(size, dtype=source.dtype, device=source.device)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    p = torch.stack([xs, ys], -1).reshape(1, -1, 1, 2)  # (1, P, 1, 2)
    w = torch.exp(-(p - target[:, None]).pow(2).sum(-1) / (2 * sigma ** 2))  # (N, P, K)
    shift = torch.einsum("npk,nkc->npc", w, source - target) / (w.sum(-1, keepdim=True)
                                                                 + background)
    shift = shift * (2.0 / size)  # pixels -> normalised coordinates
    return shift.permute(0, 2, 1).reshape(-1, 2, size, size)


# ---------------------------------------------------------------------------------------------
# Network


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))


class LandmarkRenderer(nn.Module):
    """Identity image + identity landmarks + target landmarks -> frame (module docstring)."""

    def __init__(self, cfg: RendererConfig) -> None:
        super().__init__()
        if cfg.size % 2 ** (len(cfg.channels) - 1):
            raise ValueError(f"renderer size {cfg.size} must be divisible by "
                             f"{2 ** (len(cfg.channels) - 1)}")
        self.cfg = cfg
        c = cfg.channels
        cin = 3 + 3 + 2 * SKETCH_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(cin, c[0], 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.downs = nn.ModuleList(_down(a, b) for a, b in zip(c[:-1], c[1:], strict=True))
        self.ups = nn.ModuleList(_up(c[i] + (c[i] if i < len(c) - 1 else 0), c[i - 1])
                                 for i in range(len(c) - 1, 0, -1))
        self.head = nn.Conv2d(2 * c[0], 5, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, identity: torch.Tensor, id_points: torch.Tensor,
                target_points: torch.Tensor) -> torch.Tensor:
        """``identity (N, 3, H, W)`` in ``[-1, 1]`` (square, any side), landmarks
        ``(N, 68, 2)`` in its pixel coordinates -> frames ``(N, 3, H, W)``."""
        cfg, s = self.cfg, self.cfg.size
        side = identity.shape[-1]
        small = identity if side == s else F.interpolate(
            identity, size=(s, s), mode="bilinear", align_corners=False, antialias=side > s)
        src, dst = scale_points(id_points, side, s), scale_points(target_points, side, s)
        half = s // 2  # the prior is smooth: computed at half size, upsampled
        prior = F.interpolate(
            sparse_motion(scale_points(src, s, half), scale_points(dst, s, half), half,
                          cfg.motion_sigma * half, cfg.background),
            size=(s, s), mode="bilinear", align_corners=False)
        grid0 = base_grid(identity.shape[0], s, s, identity.device, identity.dtype)
        warped = F.grid_sample(small, grid0 + prior.permute(0, 2, 3, 1), mode="bilinear",
                               padding_mode="border", align_corners=False)
        sigma = cfg.sketch_sigma * s / 64
        x = torch.cat([warped, small, landmark_sketch(dst, s, sigma),
                       landmark_sketch(src, s, sigma)], 1)
        x = self.stem(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], 1)
        out = self.head(x)
        flow, residual = prior + out[:, :2], out[:, 2:]
        if side != s:
            flow = F.interpolate(flow, size=(side, side), mode="bilinear", align_corners=False)
            residual = F.interpolate(residual, size=(side, side), mode="bilinear",
                                     align_corners=False)
        grid = base_grid(identity.shape[0], side, side, identity.device, identity.dtype)
        frame = F.grid_sample(identity, grid + flow.permute(0, 2, 3, 1), mode="bilinear",
                              padding_mode="border", align_corners=False)
        return (frame + residual).clamp(-1, 1)

    @torch.no_grad()
    def render(self, identity: torch.Tensor, id_points: torch.Tensor,
               target_points: torch.Tensor) -> torch.Tensor:
        """One identity ``(1, 3, H, W)`` + its points ``(68, 2)`` and a target sequence
        ``(T, 68, 2)`` -> ``(T, 3, H, W)``, in chunks of ``cfg.chunk`` frames."""
        out = []
        for start in range(0, target_points.shape[0], self.cfg.chunk):
            tgt = target_points[start:start + self.cfg.chunk]
            n = tgt.shape[0]
            out.append(self(identity.expand(n, -1, -1, -1), id_points[None].expand(n, -1, -1),
                            tgt))
        return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Identity landmarks at generation


def identity_landmarks(image: np.ndarray, min_side: int = 200) -> tuple[np.ndarray, str]:
    """dlib's 68 landmarks ``(68, 2)`` of the face in ``image`` (H, W, 3) uint8, in its pixel
    coordinates, and where they came from. Images whose longest side is below ``min_side``
    are upsampled first (dlib's detector needs faces of about 80 pixels). Without a face:
    the canonical face of talkbench's aligned crop at the image's size."""
    from bench.core.landmarks import detect_landmarks

    image = np.asarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    factor = max(1, math.ceil(min_side / max(h, w)))
    big = image
    if factor > 1:
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(h * factor, w * factor), mode="bilinear",
                          align_corners=False)
        big = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    points = detect_landmarks(np.ascontiguousarray(big)[None])[0]
    if not np.isnan(points).any():
        return ((points + 0.5) / factor - 0.5).astype(np.float32), "dlib"
    crop = template_at(128)
    template = np.stack([scale_points(crop[:, 0], 128, w), scale_points(crop[:, 1], 128, h)], 1)
    return template.astype(np.float32), "canonical face (dlib found no face)"


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class RenderBank:
    """Training frames ``(T, 3, s, s)`` uint8 and their landmarks ``(T, 68, 2)`` in pixel
    coordinates of the ``s`` frame, per clip."""

    frames: list[torch.Tensor]
    points: list[torch.Tensor]

    def sample(self, batch: int, first_frame: float, rng: np.random.Generator,
               device: torch.device) -> tuple[torch.Tensor, ...]:
        """(identity, identity points, target points, target frame) of ``batch`` pairs."""
        clips = rng.integers(len(self.frames), size=batch)
        idx = []
        for c in clips:
            n = self.frames[c].shape[0]
            i = 0 if rng.random() < first_frame else int(rng.integers(n))
            idx.append((i, int(rng.integers(n))))
        ident = torch.stack([self.frames[c][i] for c, (i, _) in zip(clips, idx, strict=True)])
        target = torch.stack([self.frames[c][t] for c, (_, t) in zip(clips, idx, strict=True)])
        id_pts = torch.stack([self.points[c][i] for c, (i, _) in zip(clips, idx, strict=True)])
        tg_pts = torch.stack([self.points[c][t] for c, (_, t) in zip(clips, idx, strict=True)])

        def images(x: torch.Tensor) -> torch.Tensor:
            return x.to(device).float().div_(127.5).sub_(1.0)

        return images(ident), id_pts.to(device), tg_pts.to(device), images(target)


def train_renderer(renderer: LandmarkRenderer, bank: RenderBank, cfg: RendererConfig,
                   perceptual: nn.Module | None, device: torch.device,
                   rng: np.random.Generator, desc: str = "renderer") -> dict[str, Any]:
    """Train ``renderer`` with L1 + ``w_perc`` x perceptual on pairs from ``bank``; the log."""
    optimizer = torch.optim.Adam(renderer.parameters(), lr=cfg.lr, betas=cfg.betas)

    def step(_: int) -> dict[str, float]:
        ident, id_pts, tg_pts, target = bank.sample(cfg.batch, cfg.first_frame, rng, device)
        fake = renderer(ident, id_pts, tg_pts)
        l1 = (fake - target).abs().mean()
        loss = l1
        losses = {"l1": l1.item()}
        if perceptual is not None and cfg.w_perc > 0:
            n = cfg.perc_frames or fake.shape[0]
            perc = perceptual(fake[:n], target[:n])
            loss = loss + cfg.w_perc * perc
            losses["perc"] = perc.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return losses

    renderer.train()
    log = run_steps(step, cfg.steps, desc=desc).as_dict()
    renderer.eval()
    return log
