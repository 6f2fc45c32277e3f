"""Regions of the face in talkbench's aligned crops that the generators' losses single out.

Prepared clips are talkbench's aligned crops (:mod:`bench.data.preprocess`): the canonical face
(:mod:`bench.core.face_template`) sits at the same place in every frame, so the mouth and the
lower half of the face are fixed boxes of the crop at any size (:func:`mouth_box`,
:func:`mouth_weights`, :func:`lower_half_mask`), and of a crop resized to another aspect
(:func:`lower_half_row`, :func:`mouth_box_hw`).
"""

from __future__ import annotations

import math

import torch

from bench.core.face_template import MOUTH_POINTS, template_at


def mouth_box(size: int, pad: float = 0.35) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` pixel bounds of the mouth in a ``size`` crop: the lip
    landmarks' box grown by ``pad`` of its size on each side."""
    lips = template_at(size)[MOUTH_POINTS]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    top, bottom = max(0, math.floor(y0 - dy)), min(size, math.ceil(y1 + dy) + 1)
    left, right = max(0, math.floor(x0 - dx)), min(size, math.ceil(x1 + dx) + 1)
    return top, bottom, left, right


def mouth_weights(size: int, sigma_fraction: float = 0.12, peak: float = 1.0) -> torch.Tensor:
    """``(1, 1, size, size)`` Gaussian centred on the mouth (mean of the lip landmarks), standard
    deviation ``sigma_fraction * size``, maximum ``peak``: the weight map of a mouth-region
    loss such as Eskimez et al.'s MRM."""
    cx, cy = template_at(size)[MOUTH_POINTS].mean(0)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    sigma = sigma_fraction * size
    g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
    return (peak * g)[None, None]


def lower_half_mask(size: int) -> torch.Tensor:
    """``(1, 1, size, size)``: 1 on the lower half of the face crop (below the template's nose
    tip, landmark 33, rounded up to the crop's middle at most), 0 above."""
    nose_y = template_at(size)[33, 1]
    cut = int(min(size // 2, round(nose_y)))
    mask = torch.zeros(1, 1, size, size)
    mask[..., cut:, :] = 1.0
    return mask


def lower_half_row(height: int) -> int:
    """First row of the lower half of the face (:func:`lower_half_mask`'s cut)."""
    return int(lower_half_mask(height)[0, 0, :, 0].nonzero()[0, 0])


def mouth_box_hw(frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """:func:`mouth_box` of the square crop carried to a ``frame_hw`` frame (the square crop
    is resized to it): ``(top, bottom, left, right)``."""
    h, w = frame_hw
    top, bottom, left, right = mouth_box(h)
    return top, bottom, math.floor(left * w / h), min(w, math.ceil(right * w / h))
