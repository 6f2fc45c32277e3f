"""Frames of a clip: warp the identity, paint the open mouth, composite over the backdrop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.synth import motion
from bench.data.synth.faces import CANVAS, MOUTH_SLIT, Identity, backdrop, eye_centres
from bench.data.synth.warp import FaceWarper, apply_affine

BATCH = 16  # frames per warp batch

TEETH = np.array([0.86, 0.83, 0.76], np.float32)
MOUTH_DARK = np.array([0.16, 0.045, 0.05], np.float32)
MOUTH_EDGE = np.array([0.32, 0.1, 0.11], np.float32)
TONGUE = np.array([0.58, 0.25, 0.27], np.float32)


@dataclass
class Rendered:
    """A rendered clip and what was synthesised at each of its frames."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    landmarks: np.ndarray  # (T, 68, 2) in frame pixels
    channels: dict[str, np.ndarray]  # sampled synthesis channels, (T,) each
    inner_gap: np.ndarray  # (T,) inner-lip gap in canvas px (before head scale)
    eye_distance: float  # rest eye distance in canvas px


def _lip_line(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Lip line through ``points`` at ``xs``: a cubic Hermite curve left to right whose slopes
    are the mean of the neighbouring chords (zero at a local extremum, as in PCHIP)."""
    order = np.argsort(points[:, 0])
    px, py = points[order, 0], points[order, 1]
    keep = np.concatenate([[True], np.diff(px) > 1e-3])
    px, py = px[keep], py[keep]
    if px.size < 2:
        return np.full(np.shape(xs), py.mean())
    h = np.diff(px)
    chord = np.diff(py) / h
    slope = np.empty_like(px)
    slope[0], slope[-1] = chord[0], chord[-1]
    slope[1:-1] = np.where(chord[:-1] * chord[1:] > 0, (chord[:-1] + chord[1:]) / 2, 0.0)
    x = np.clip(xs, px[0], px[-1])
    i = np.clip(np.searchsorted(px, x) - 1, 0, px.size - 2)
    t = (x - px[i]) / h[i]
    t2, t3 = t * t, t * t * t
    return ((2 * t3 - 3 * t2 + 1) * py[i] + (t3 - 2 * t2 + t) * h[i] * slope[i]
            + (3 * t2 - 2 * t3) * py[i + 1] + (t3 - t2) * h[i] * slope[i + 1])


def paint_mouth(rgb: np.ndarray, lm: np.ndarray, jaw: float, eye_distance: float) -> None:
    """Draw the mouth interior and teeth between the inner lip lines (in place, canvas px).

    The opening is the region between the upper (60-64) and lower (60, 67-65, 64) inner lip
    lines, each a monotone cubic through its landmarks; edges are anti-aliased by 3x3
    supersampling.
    """
    upper, lower = lm[[60, 61, 62, 63, 64]], lm[[60, 67, 66, 65, 64]]
    h, w = rgb.shape[:2]
    xl, xr = sorted((float(lm[60, 0]), float(lm[64, 0])))
    x0, x1 = max(int(np.floor(xl)) - 1, 0), min(int(np.ceil(xr)) + 2, w)
    y0 = max(int(np.floor(upper[:, 1].min())) - 1, 0)
    y1 = min(int(np.ceil(lower[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    sub = 3
    xs = x0 + (np.arange((x1 - x0) * sub) + 0.5) / sub - 0.5
    ys = (y0 + (np.arange((y1 - y0) * sub) + 0.5) / sub - 0.5)[:, None]
    yu, yl = _lip_line(upper, xs), _lip_line(lower, xs)
    outside = (xs < xl) | (xs > xr)
    yu[outside], yl[outside] = np.inf, -np.inf
    gap = yl - yu
    if not np.any(gap > 0.3):
        return
    gap = np.maximum(gap, 1e-3)
    inside = (ys >= yu) & (ys <= yl)
    depth = np.clip((ys - yu) / gap, 0, 1)
    cx, half = (xl + xr) / 2, max((xr - xl) / 2, 1.0)
    lateral = np.broadcast_to(np.clip(np.abs(xs - cx) / half, 0, 1), depth.shape)
    colour = MOUTH_EDGE * (1 - depth[..., None]) + MOUTH_DARK * depth[..., None]
    colour = colour * (1 - 0.3 * (1 - np.abs(2 * depth - 1)))[..., None]
    tongue = (depth > 0.55) & (lateral < 0.6) & (gap > 0.18 * eye_distance)
    colour[tongue] = TONGUE * (0.8 + 0.2 * (1 - lateral[tongue]))[:, None]
    upper_teeth = (ys - yu) < np.minimum(0.07 * eye_distance, 0.45 * gap)
    lower_teeth = (yl - ys) < 0.04 * eye_distance * np.clip(gap / (0.2 * eye_distance) - 0.5,
                                                             0, 1)
    teeth = (upper_teeth | lower_teeth) & (lateral < 0.7)
    shade = (1 - 0.6 * (lateral / 0.7) ** 2)[..., None]
    colour = np.where(teeth[..., None], TEETH * shade, colour)
    # back to pixels: average the sub-samples (colour weighted by coverage)
    cov = inside.astype(np.float32)
    col = colour * cov[..., None]
    hh, ww = y1 - y0, x1 - x0
    cov_px = cov.reshape(hh, sub, ww, sub).mean((1, 3))
    col_px = col.reshape(hh, sub, ww, sub, 3).mean((1, 3))
    region = rgb[y0:y1, x0:x1]
    region[:] = region * (1 - cov_px[..., None]) + col_px


def render(identity: Identity, warper: FaceWarper, perf: motion.Performance, fps: float,
           n_frames: int, frame_size: tuple[int, int], head_offset: tuple[int, int],
           seed: int = 0) -> Rendered:
    """Render ``n_frames`` at ``fps`` (frame k shows time (k + 0.5) / fps) into frames of
    ``frame_size`` (height, width) with the head canvas at ``head_offset`` (x, y)."""
    height, width = frame_size
    ox, oy = head_offset
    times = (np.arange(n_frames) + 0.5) / fps
    f = perf.at(times)
    rest = identity.landmarks
    left, right = eye_centres(rest)
    eye_distance = float(np.hypot(*(right - left)))
    disp = motion.displacements(rest, f, MOUTH_SLIT)
    centre = tuple(rest[[27, 30, 33, 8]].mean(0))
    poses = motion.pose_matrices(f, centre)
    canvas_lm = np.stack([apply_affine(m, rest + d) for m, d in zip(poses, disp, strict=True)])
    target = rest[None] + disp
    inner_gap = (target[:, [65, 66, 67], 1] - target[:, [63, 62, 61], 1]).mean(1)

    bg, clothes_rgb, clothes_a = backdrop(identity.spec, height, width, head_offset, seed)
    clothes_rgb = clothes_rgb * clothes_a[..., None]  # premultiplied
    keep_below = 1 - clothes_a[..., None]
    y0, y1 = max(oy, 0), min(oy + CANVAS, height)
    x0, x1 = max(ox, 0), min(ox + CANVAS, width)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for start in range(0, n_frames, BATCH):
        stop = min(start + BATCH, n_frames)
        heads = warper.render(identity.rgba, disp[start:stop], poses[start:stop])
        for i in range(stop - start):
            paint_mouth(heads[i, ..., :3], canvas_lm[start + i], float(f["jaw"][start + i]),
                        eye_distance)
        batch = np.repeat(bg[None], stop - start, axis=0)
        part = heads[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        batch[:, y0:y1, x0:x1] = part[..., :3] + batch[:, y0:y1, x0:x1] * (1 - part[..., 3:])
        batch = clothes_rgb + batch * keep_below
        frames[start:stop] = np.clip(batch * 255 + 0.5, 0, 255).astype(np.uint8)
    landmarks = canvas_lm + np.array([ox, oy], np.float64)
    return Rendered(frames=frames, landmarks=landmarks, channels=f, inner_gap=inner_gap,
                    eye_distance=eye_distance)
