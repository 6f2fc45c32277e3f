"""CPBD: cumulative probability of blur detection (Narvekar and Karam 2009), SPEC section 5.

A no-reference sharpness metric of one grayscale image; higher means sharper. The paper
(N. D. Narvekar and L. J. Karam, "A no-reference perceptual image sharpness metric based on a
cumulative probability of blur detection", QoMEX 2009; journal version "A no-reference image
blur metric based on the cumulative probability of blur detection (CPBD)", IEEE TIP 20(9),
2011) defines it as follows.

1. Split the image into 64x64 blocks (the remainder at the right and bottom is not used).
   A block is an *edge block* when more than 0.2% of its pixels (9 of 4096) are Canny edges.
2. In every edge block, measure the width ``w(e)`` of each edge pixel ``e`` along its
   gradient direction (Marziliano et al. 2002): from the edge pixel, walk left and right along
   the row while the intensity keeps changing monotonically, at most 100 steps each way.
3. The block contrast ``C`` (max - min grey level) sets the just-noticeable-blur width:
   ``w_JNB = 5`` for ``C <= 50`` and ``w_JNB = 3`` for ``C >= 51``.
4. Probability of detecting blur at ``e`` (paper, Eq. 3, with beta = 3.6)::

       P_blur(e) = 1 - exp(-|w(e) / w_JNB|^beta)

5. CPBD is the cumulative probability of P_blur up to the just-noticeable level P_JNB = 63%
   (paper, Eq. 6), over all edge pixels of all edge blocks::

       CPBD = P(P_blur <= P_JNB) = sum_{p=0}^{63} hist(round(100 * P_blur))[p] / #edges

   An image with no edge pixel in any edge block scores 0.

Reference implementation. The numbers match the PyPI package ``cpbd`` 1.0.7 (the Python
port of the authors' MATLAB code that talking-face papers use) to 1e-3 on the same grayscale
frame; ``tests/test_metric_cpbd.py`` checks that. Its details, all reproduced here:

* Canny edges (block classification): ``skimage.feature.canny`` with its defaults (sigma 1,
  absolute thresholds 0.1 and 0.2, zero-padded Gaussian with border renormalisation, bilinear
  non-maximum suppression, 8-connected hysteresis). Re-implemented in torch below so that the
  whole metric runs batched on the GPU; edge maps agree with scikit-image's.
* Edge pixels whose width is measured: a vertical Sobel-type filter (Octave's ``edge`` "sobel":
  horizontal derivative, kernel / 8, reflected borders), squared, thresholded at
  ``2 * sqrt(mean(strength^2))``, then thinned (a local maximum along the row or the column).
* Gradient angle from ``np.gradient``: ``atan2(gy, gx)`` in degrees where ``gx != 0``, else 0,
  quantised to multiples of 45 degrees (round half to even). Widths are measured only for
  angles 0 and +-180 (horizontal gradients) at pixels not on the image border, and only if
  some pixel of the image has a non-zero angle.
* The intensity scale is whatever the caller passes: the package casts the input to float64
  without rescaling. The Canny thresholds (0.1, 0.2) and the JNB contrast table (indexed by
  ``int(max - min)`` in 0..255) are absolute, so an 8-bit image gives a different value as
  uint8 (0..255) than as float in [0, 1] (every block then has contrast 0 or 1, hence
  ``w_JNB = 5``, and Canny sees a gradient 255 times smaller).

Grayscale conversion (talkbench's choice). The paper works on 8-bit grayscale images: its JNB
widths come from experiments on 8-bit grey levels (contrast 50 is an 8-bit step), and the
authors' MATLAB code takes the ``uint8`` grey image (``rgb2gray`` of an RGB frame, ITU-R
BT.601 luma). The package's own command line reads images with ``imread(path, mode='L')``,
i.e. Pillow's ``convert('L')``: BT.601 luma ``L = (19595 R + 38470 G + 7471 B + 2^15) >> 16``,
rounded to uint8. talkbench uses exactly that conversion (:func:`rgb_to_gray`) and passes the
grey levels 0..255 (the "uint8" route). The float [0, 1] route of the package is supported by
:func:`cpbd_gray` for comparisons, but no talkbench metric uses it.

Frames smaller than 64 pixels on either side contain no block; the package silently returns
0.0 for them. :class:`CPBD` instead reports such clips as unavailable, with the reason.

Per clip, CPBD is the mean over the generated frames; over the test set, the mean over clips
(seed 003, Tables 4-6, reports the same for generated and real videos).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from bench.metrics.base import (
    Column,
    Metric,
    MetricUnavailable,
    Sample,
    resolve_device,
    to_device_frames,
)

BLOCK_SIZE = 64
"""Blocks are BLOCK_SIZE x BLOCK_SIZE pixels."""

EDGE_BLOCK_FRACTION = 0.002
"""A block is an edge block when more than this fraction of its pixels are Canny edges."""

BETA = 3.6
"""Exponent of the psychometric blur-detection function (paper, Eq. 3)."""

JNB_CONTRAST_LIMIT = 50
"""Block contrast (8-bit grey levels) up to which the JNB width is 5; above it, 3."""

JNB_WIDTH_LOW_CONTRAST = 5.0
JNB_WIDTH_HIGH_CONTRAST = 3.0

P_JNB_PERCENT = 63
"""The cumulative sum runs over the P_blur histogram buckets 0..63 (percent)."""

MAX_WALK = 100
"""Edge-width walk: at most this many extra steps on each side (width <= 101 per side)."""

CANNY_SIGMA = 1.0
CANNY_TRUNCATE = 4.0
CANNY_LOW = float(np.float32(0.1))
"""scikit-image's default low threshold; its NMS receives it as a C float, hence float32."""
CANNY_HIGH = 0.2
"""scikit-image's default high threshold (a Python float, compared in float64)."""

CHUNK_PIXELS = {"cpu": 2**17, "cuda": 2**22}
"""Pixels per batch of frames. The batch has ~40 float64 intermediates per pixel: on the CPU,
about 8 frames of 128x128 were measured fastest (they stay in cache); on a GPU, 2^22 pixels
keep it busy with ~1.3 GB of intermediates."""

GRAY_WEIGHTS = (19595, 38470, 7471)
"""BT.601 luma weights in 16-bit fixed point, as Pillow's ``convert('L')``."""


# ---------------------------------------------------------------------------------------------
# Grayscale


def rgb_to_gray(frames: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) uint8 RGB -> (T, H, W) uint8 grey, exactly as Pillow's ``convert('L')``.

    ``L = (19595 R + 38470 G + 7471 B + 32768) >> 16`` (ITU-R BT.601 luma, rounded).
    """
    rgb = frames.to(torch.int32)
    wr, wg, wb = GRAY_WEIGHTS
    gray = (rgb[:, 0] * wr + rgb[:, 1] * wg + rgb[:, 2] * wb + (1 << 15)) >> 16
    return gray.to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# Small shift helpers on (B, H, W) tensors


def _pad(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Pad the last two axes by ``size`` on every side ('constant' zeros or 'replicate')."""
    padded = F.pad(x.unsqueeze(1), (size, size, size, size), mode=mode)
    return padded.squeeze(1)


def _correlate_symmetric(x: torch.Tensor, weights: list[float], axis: int,
                         mode: str) -> torch.Tensor:
    """1-D correlation with a symmetric kernel ``weights = [w0, w1, ..., wr]`` along ``axis``
    (1 = rows, 2 = columns), summed as ``scipy.ndimage.correlate1d`` does::

        out[i] = x[i] * w0 + (x[i-r] + x[i+r]) * wr + ... + (x[i-1] + x[i+1]) * w1

    ``mode`` is 'constant' (zeros outside) or 'replicate' (= ndimage 'reflect' for r = 1).
    """
    r = len(weights) - 1
    pad = (0, 0, r, r) if axis == 1 else (r, r, 0, 0)
    p = F.pad(x.unsqueeze(1), pad, mode=mode).squeeze(1)
    n = x.shape[axis]

    def shifted(offset: int) -> torch.Tensor:
        return p.narrow(axis, r + offset, n)

    out = shifted(0) * weights[0]
    for j in range(r, 0, -1):
        out = out + (shifted(-j) + shifted(j)) * weights[j]
    return out


def _difference(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``x[i+1] - x[i-1]`` along ``axis`` with replicated borders (ndimage 'reflect', [-1,0,1])."""
    p = F.pad(x.unsqueeze(1), (0, 0, 1, 1) if axis == 1 else (1, 1, 0, 0),
              mode="replicate").squeeze(1)
    n = x.shape[axis]
    return p.narrow(axis, 2, n) - p.narrow(axis, 0, n)


def _gaussian_weights(sigma: float, truncate: float) -> list[float]:
    """Half of scipy.ndimage's Gaussian kernel, ``[w0, w1, ..., wr]``.

    ``r = int(truncate * sigma + 0.5)``; ``w_k = exp(-k^2 / (2 sigma^2))`` normalised to sum 1.
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi = phi / phi.sum()
    return [float(v) for v in phi[radius:]]


# ---------------------------------------------------------------------------------------------
# Canny (scikit-image's algorithm, batched)


def _gaussian_smooth(x: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Zero-padded separable Gaussian (rows first, then columns), as ndimage.gaussian_filter."""
    return _correlate_symmetric(_correlate_symmetric(x, weights, 1, "constant"), weights, 2,
                                "constant")


def canny_edges(gray: torch.Tensor, sigma: float = CANNY_SIGMA, low: float = CANNY_LOW,
                high: float = CANNY_HIGH) -> torch.Tensor:
    """Canny edge map of (B, H, W) float64 images, as ``skimage.feature.canny(image)``.

    Steps (Canny 1986, in scikit-image's form):

    1. Gaussian smoothing with zero padding, divided by the smoothed all-ones image (+ eps) so
       that the border is not darkened;
    2. Sobel gradients ``isobel`` (along rows) and ``jsobel`` (along columns), reflected
       borders; magnitude ``m = sqrt(isobel^2 + jsobel^2)``;
    3. non-maximum suppression with bilinear interpolation of the magnitude at the two
       neighbours along the gradient, on every pixel but the 1-pixel border; ``m >= low``;
    4. hysteresis: keep the 8-connected components of step 3 that contain a pixel ``>= high``.
    """
    weights = _gaussian_weights(sigma, CANNY_TRUNCATE)
    eps = float(np.finfo(np.float64).eps)
    bleed = _gaussian_smooth(torch.ones_like(gray[:1]), weights) + eps
    smoothed = _gaussian_smooth(gray, weights) / bleed

    # ndimage.sobel: derivative [-1, 0, 1] along the axis, then smoothing [1, 2, 1] across it
    isobel = _correlate_symmetric(_difference(smoothed, 1), [2.0, 1.0], 2, "replicate")
    jsobel = _correlate_symmetric(_difference(smoothed, 2), [2.0, 1.0], 1, "replicate")
    magnitude = torch.sqrt(isobel * isobel + jsobel * jsobel)

    # Non-maximum suppression on the interior pixels (x = row, y = column).
    m = magnitude[:, 1:-1, 1:-1]
    gi = isobel[:, 1:-1, 1:-1]
    gj = jsobel[:, 1:-1, 1:-1]
    abs_i, abs_j = gi.abs(), gj.abs()

    def at(dx: int, dy: int) -> torch.Tensor:  # magnitude[x + dx, y + dy] of interior pixels
        h, w = magnitude.shape[1:]
        return magnitude[:, 1 + dx:h - 1 + dx, 1 + dy:w - 1 + dy]

    # scikit-image's four cases: the gradient lies in the first/third quadrant (same_sign) or
    # not, and is closer to the row axis (rows_major) or to the column axis; the magnitude is
    # interpolated between the near neighbour and the diagonal one on both sides.
    same_sign = (gi <= 0) == (gj <= 0)
    rows_major = torch.where(same_sign, abs_i > abs_j, abs_i >= abs_j)
    w = torch.where(rows_major, abs_j / abs_i, abs_i / abs_j)  # 0/0 only where m == 0
    n1_near = torch.where(rows_major, torch.where(same_sign, at(1, 0), at(-1, 0)), at(0, 1))
    n2_near = torch.where(rows_major, torch.where(same_sign, at(-1, 0), at(1, 0)), at(0, -1))
    n1_diag = torch.where(same_sign, at(1, 1), at(-1, 1))
    n2_diag = torch.where(same_sign, at(-1, -1), at(1, -1))
    plus_ok = n1_diag * w + n1_near * (1.0 - w) <= m
    minus_ok = n2_diag * w + n2_near * (1.0 - w) <= m
    low_inner = (m >= low) & plus_ok & minus_ok

    low_mask = torch.zeros_like(gray, dtype=torch.bool)
    low_mask[:, 1:-1, 1:-1] = low_inner
    high_mask = torch.zeros_like(low_mask)
    high_mask[:, 1:-1, 1:-1] = low_inner & (m >= high)
    return _hysteresis(low_mask, high_mask)


def _hysteresis(low_mask: torch.Tensor, high_mask: torch.Tensor) -> torch.Tensor:
    """Pixels of ``low_mask`` 8-connected (within ``low_mask``) to a pixel of ``high_mask``.

    Grows the strong edges by 3x3 dilations restricted to ``low_mask`` until nothing changes;
    equivalent to scikit-image's labelling of the components of ``low_mask``.
    """
    if not bool((low_mask & ~high_mask).any()):
        return high_mask  # every candidate is strong: nothing to link
    edges = high_mask
    while True:
        grown = _dilate3x3(edges) & low_mask
        if torch.equal(grown, edges):
            return edges
        edges = grown


def _dilate3x3(x: torch.Tensor) -> torch.Tensor:
    """Binary dilation of (B, H, W) bool images by a 3x3 square (outside = False)."""
    rows = x.clone()
    rows[:, 1:] |= x[:, :-1]
    rows[:, :-1] |= x[:, 1:]
    out = rows.clone()
    out[:, :, 1:] |= rows[:, :, :-1]
    out[:, :, :-1] |= rows[:, :, 1:]
    return out


# ---------------------------------------------------------------------------------------------
# Edge widths (Marziliano et al. 2002, as the cpbd package measures them)


def sobel_edges(gray: torch.Tensor) -> torch.Tensor:
    """Edge pixels for the width measurement, as ``cpbd.octave.sobel``: (B, H, W) bool.

    Horizontal derivative ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8`` (reflected borders),
    squared, zeroed where ``<= 2 * sqrt(mean)``, then kept where it is a strict local maximum
    along its row or along its column (zeros outside the image).
    """
    p = _pad(gray, 1, "replicate")
    h, w = gray.shape[1:]

    def at(dx: int, dy: int) -> torch.Tensor:
        return p[:, 1 + dx:1 + dx + h, 1 + dy:1 + dy + w]

    # terms summed in ndimage.convolve's order (kernel flipped, nonzero taps in C order)
    strength = at(-1, -1) * -0.125
    strength = strength + at(-1, 1) * 0.125
    strength = strength + at(0, -1) * -0.25
    strength = strength + at(0, 1) * 0.25
    strength = strength + at(1, -1) * -0.125
    strength = strength + at(1, 1) * 0.125
    strength2 = strength * strength
    thresh = 2.0 * torch.sqrt(strength2.mean(dim=(1, 2), keepdim=True))
    strength2 = torch.where(strength2 <= thresh, torch.zeros_like(strength2), strength2)

    z = _pad(strength2, 1, "constant")
    s = strength2
    along_row = (s > z[:, 1:-1, :-2]) & (s > z[:, 1:-1, 2:])
    along_col = (s > z[:, :-2, 1:-1]) & (s > z[:, 2:, 1:-1])
    return along_row | along_col


def _np_gradient(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``np.gradient`` along ``axis``: central differences / 2 inside, one-sided at the ends."""
    n = x.shape[axis]
    first = x.narrow(axis, 1, 1) - x.narrow(axis, 0, 1)
    inner = (x.narrow(axis, 2, n - 2) - x.narrow(axis, 0, n - 2)) / 2.0
    last = x.narrow(axis, n - 1, 1) - x.narrow(axis, n - 2, 1)
    return torch.cat([first, inner, last], dim=axis)


def _runs(flags: torch.Tensor, reverse: bool) -> torch.Tensor:
    """Length of the run of True values ending at each position (looking leftwards), or
    starting at it (looking rightwards, ``reverse=True``), along the last axis."""
    if reverse:
        return _runs(flags.flip(-1), reverse=False).flip(-1)
    n = flags.shape[-1]
    idx = torch.arange(n, device=flags.device, dtype=torch.int32).expand_as(flags)
    last_false = torch.where(flags, torch.full_like(idx, -1), idx).cummax(dim=-1).values
    return idx - last_false


def edge_widths(gray: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Width of every edge pixel along its row, 0 elsewhere: (B, H, W) int32.

    For a pixel at column c with quantised gradient angle 0 (intensity rising to the right),
    ``width = left + right`` where ``left = 1 + min(100, n)`` and ``n`` counts the consecutive
    rising steps ``gray[c-2-k] < gray[c-1-k]`` (k = 0, 1, ...) that stay in the image, and
    ``right = 1 + min(100, n')`` with ``n'`` the rising steps ``gray[c+1+k] < gray[c+2+k]``.
    Angle +-180 (intensity falling to the right) is the same with falling steps.
    """
    b, h, w = gray.shape
    gy = _np_gradient(gray, 1)
    gx = _np_gradient(gray, 2)
    angle = torch.where(gx != 0, torch.atan2(gy, gx) * (180.0 / math.pi),
                        torch.where(gy == math.pi / 2, torch.full_like(gy, 90.0),
                                    torch.zeros_like(gy)))
    has_angle = (angle != 0).flatten(1).any(dim=1).view(b, 1, 1)
    octant = torch.round(angle / 45.0)  # round half to even, as np.round
    rising = octant == 0
    falling = octant.abs() == 4

    diff = gray[:, :, 1:] - gray[:, :, :-1]  # diff[j] = gray[j+1] - gray[j], j = 0..W-2
    steps = torch.stack([diff > 0, diff < 0])  # (2, B, H, W-1): rising, falling steps
    steps = torch.cat([steps, torch.zeros_like(steps[..., :1])], dim=-1)  # W-1: off the image
    left_runs = _runs(steps, reverse=False).clamp(max=MAX_WALK)
    right_runs = _runs(steps, reverse=True).clamp(max=MAX_WALK)
    # the left walk from column c starts at step c-2 (none for c = 1); the right one at c+1
    width = torch.full_like(left_runs, 2)
    width[..., 2:] += left_runs[..., :-2]
    width[..., :-1] += right_runs[..., 1:]
    widths = torch.where(rising, width[0], torch.where(falling, width[1], 0))

    interior = torch.zeros_like(edges)
    interior[:, 1:-1, 1:-1] = True
    measured = edges & interior & (rising | falling) & has_angle
    return torch.where(measured, widths, 0)


# ---------------------------------------------------------------------------------------------
# CPBD


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, nH, nW, 64*64): the full 64x64 blocks, row-major."""
    b, h, w = x.shape
    nh, nw = h // BLOCK_SIZE, w // BLOCK_SIZE
    x = x[:, :nh * BLOCK_SIZE, :nw * BLOCK_SIZE]
    x = x.reshape(b, nh, BLOCK_SIZE, nw, BLOCK_SIZE).transpose(2, 3)
    return x.reshape(b, nh, nw, BLOCK_SIZE * BLOCK_SIZE)


MAX_WIDTH = 2 * (MAX_WALK + 1)
"""Largest possible edge width (101 on each side)."""


@functools.cache
def _sharp_table_cpu() -> torch.Tensor:
    """``table[k, w]``: is an edge of width ``w`` "sharp" (P_blur <= P_JNB) in a block whose
    JNB width is 3 (k = 0, contrast > 50) or 5 (k = 1, contrast <= 50)?

    P_blur = 1 - exp(-|w / w_JNB|^beta) (paper, Eq. 3) is put in histogram bin
    round(100 * P_blur) (round half to even, as the package) and counted when the bin is
    <= 63. Widths are integers, so the test is tabulated once.
    """
    widths = np.arange(MAX_WIDTH + 1, dtype=np.float64)
    rows = []
    for jnb in (JNB_WIDTH_HIGH_CONTRAST, JNB_WIDTH_LOW_CONTRAST):
        p_blur = 1.0 - np.exp(-np.abs(widths / jnb) ** BETA)
        rows.append(np.round(p_blur * 100.0) <= P_JNB_PERCENT)
    return torch.from_numpy(np.stack(rows))


def _sharp_table(device: torch.device) -> torch.Tensor:
    return _sharp_table_cpu().to(device)


def _cpbd_batch(gray: torch.Tensor) -> torch.Tensor:
    """CPBD of each (B, H, W) float64 image; see the module docstring."""
    canny = canny_edges(gray)
    widths = edge_widths(gray, sobel_edges(gray))

    canny_blocks = _blocks(canny)
    is_edge_block = canny_blocks.sum(dim=-1) > BLOCK_SIZE * BLOCK_SIZE * EDGE_BLOCK_FRACTION
    gray_blocks = _blocks(gray)
    contrast = torch.floor(gray_blocks.amax(dim=-1) - gray_blocks.amin(dim=-1))

    width_blocks = _blocks(widths).to(torch.int64)  # widths 2..202, 0 = no edge here
    counted = (width_blocks != 0) & is_edge_block.unsqueeze(-1)
    low_contrast = (contrast <= JNB_CONTRAST_LIMIT).unsqueeze(-1).expand_as(width_blocks)
    table = _sharp_table(gray.device)  # [JNB index, width] -> P_blur rounds to <= 63%
    sharp = counted & table[low_contrast.to(torch.int64), width_blocks]
    n_edges = counted.flatten(1).sum(dim=1)
    n_sharp = sharp.flatten(1).sum(dim=1)
    cpbd = n_sharp.to(torch.float64) / n_edges.clamp(min=1).to(torch.float64)
    return torch.where(n_edges > 0, cpbd, torch.zeros_like(cpbd))


def cpbd_gray(gray: np.ndarray | torch.Tensor,
              device: str | torch.device | None = None) -> np.ndarray:
    """Per-image CPBD (float64) of grayscale images ``(T, H, W)`` or one image ``(H, W)``.

    Values are used as given, cast to float64, like ``cpbd.compute``: pass grey levels 0..255
    (uint8) as talkbench does; float images in [0, 1] give the package's [0, 1] behaviour.
    Images smaller than 64 pixels on a side have no block and score 0.0 (as the package).
    The work runs on ``device`` (``None``: where a tensor is, else CUDA when available).
    """
    if isinstance(gray, torch.Tensor):
        tensor = gray if device is None else gray.to(device)
    else:
        tensor = torch.from_numpy(np.array(gray, copy=True)).to(resolve_device(device))
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 3:
        raise ValueError(f"expected (T, H, W) or (H, W) grayscale, got {tuple(tensor.shape)}")
    n, h, w = tensor.shape
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if h < BLOCK_SIZE or w < BLOCK_SIZE:
        return np.zeros(n, dtype=np.float64)
    step = max(1, CHUNK_PIXELS.get(tensor.device.type, CHUNK_PIXELS["cpu"]) // (h * w))
    out = [_cpbd_batch(tensor[start:start + step].to(torch.float64))
           for start in range(0, n, step)]
    return torch.cat(out).cpu().numpy()


def cpbd_frames(frames: np.ndarray | torch.Tensor,
                device: str | torch.device | None = None) -> np.ndarray:
    """Per-frame CPBD (float64, shape (T,)) of uint8 RGB frames.

    ``frames``: a numpy array ``(T, H, W, 3)`` (talkbench's frame layout) or a tensor
    ``(T, 3, H, W)`` (as :func:`bench.metrics.base.to_device_frames` gives). Each frame is
    converted to grey with Pillow's ``convert('L')`` formula (:func:`rgb_to_gray`) and scored on
    grey levels 0..255, i.e. ``cpbd.compute(np.asarray(Image.fromarray(frame).convert('L')))``.
    """
    if isinstance(frames, torch.Tensor):
        tensor = frames if device is None else frames.to(device)
    else:
        arr = np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"expected (T, H, W, 3) RGB frames, got shape {arr.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(arr)).to(resolve_device(device))
        tensor = tensor.permute(0, 3, 1, 2)
    if tensor.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {tensor.dtype}")
    return cpbd_gray(rgb_to_gray(tensor))


class CPBD(Metric):
    """Sharpness of the generated frames (no reference needed); higher is sharper.

    Per clip: the mean CPBD over its frames. Frames smaller than 64x64 raise
    :class:`MetricUnavailable` (they contain no 64x64 block, the package would give 0.0).
    """

    name = "cpbd"
    columns = (Column("cpbd", "CPBD", higher_is_better=True),)
    needs = frozenset()
    on_ground_truth = True  # the sharpness of the real videos is reported (seed 003 Table 4)
    version = "1"

    def score(self, sample: Sample) -> dict[str, float]:
        frames = to_device_frames(sample, "pred", self.device, dtype=torch.uint8)  # (T,3,H,W)
        h, w = frames.shape[-2:]
        if h < BLOCK_SIZE or w < BLOCK_SIZE:
            raise MetricUnavailable(
                f"CPBD needs frames of at least {BLOCK_SIZE}x{BLOCK_SIZE} pixels (it works on "
                f"{BLOCK_SIZE}x{BLOCK_SIZE} blocks); these are {w}x{h}")
        return {"cpbd": float(np.mean(cpbd_frames(frames)))}

    def provenance(self) -> dict[str, str]:
        return {
            **super().provenance(),
            "reference": "cpbd 1.0.7 (PyPI) cpbd.compute on the same grey frame, matched to "
                         "1e-3",
            "settings": "grey = Pillow convert('L') (BT.601 luma, uint8), values 0..255; "
                        "64x64 blocks, Canny edge blocks (>0.2% edges), JNB width 5 (contrast "
                        "<= 50) / 3, beta 3.6, P_JNB 63%; clip value = mean over frames; "
                        "dataset value = mean over clips",
            "judge": "none",
        }
