"""The canonical face talkbench aligns every clip to, and the similarity transforms that put a
face onto it (SPEC 4.4; used by preprocessing, the AU classifier and the generators' face
regions).

Points are dlib's 68 landmarks (iBUG 300-W layout), (x, y) with pixel centres at integers.
:data:`CANONICAL_FACE` lives in a unit box; :func:`template_pixels` places it in a square crop
(``CROP_SIZE`` and ``CROP_MARGIN`` are the crop of ``bench.data.preprocess.PrepParams``'s
defaults, the crop every prepared clip has).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CROP_SIZE = 128
"""Side in pixels of talkbench's aligned face crop (``PrepParams.size``'s default)."""

CROP_MARGIN = 0.2
"""Fraction of the crop left on each side of the template's box (``PrepParams.margin``'s
default)."""

MOUTH_POINTS = slice(48, 68)
"""dlib's 68-point indices of the outer and inner lip contours."""

# Eye corners (36, 39, 42, 45) and the nose (27-35): points that move little with speech.
ALIGN_POINTS: tuple[int, ...] = (36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35)

# Canonical face: 68 dlib points (x, y) in a unit box (longest side of the points' bounding box
# spans [0, 1], centred on 0.5). Derived here with ``mean_face``: per-frame dlib landmarks of
# the three GRID samples (225 frames, three speakers) and skimage's astronaut image, a
# Procrustes mean per face, then across faces, symmetrised with its mirror image and rotated
# so the eyes are level.
CANONICAL_FACE: tuple[tuple[float, float], ...] = (
    (0.0285, 0.2154), (0.0383, 0.3437), (0.0512, 0.4697), (0.0698, 0.5987),
    (0.1075, 0.7198), (0.1711, 0.8269), (0.2631, 0.9155), (0.3720, 0.9808),
    (0.5000, 1.0000), (0.6280, 0.9808), (0.7369, 0.9155), (0.8289, 0.8269),
    (0.8925, 0.7198), (0.9302, 0.5987), (0.9488, 0.4697), (0.9617, 0.3437),
    (0.9715, 0.2154), (0.1044, 0.0952), (0.1560, 0.0235), (0.2430, 0.0000),
    (0.3340, 0.0121), (0.4212, 0.0429), (0.5788, 0.0429), (0.6660, 0.0121),
    (0.7570, 0.0000), (0.8440, 0.0235), (0.8956, 0.0952), (0.5000, 0.1474),
    (0.5000, 0.2284), (0.5000, 0.3081), (0.5000, 0.3912), (0.3982, 0.4729),
    (0.4482, 0.4855), (0.5000, 0.4980), (0.5518, 0.4855), (0.6018, 0.4729),
    (0.1981, 0.1707), (0.2495, 0.1390), (0.3154, 0.1381), (0.3740, 0.1805),
    (0.3133, 0.1922), (0.2464, 0.1955), (0.6260, 0.1805), (0.6846, 0.1381),
    (0.7505, 0.1390), (0.8019, 0.1707), (0.7536, 0.1955), (0.6867, 0.1922),
    (0.3141, 0.6552), (0.3806, 0.6191), (0.4515, 0.6007), (0.5000, 0.6143),
    (0.5485, 0.6007), (0.6194, 0.6191), (0.6859, 0.6552), (0.6218, 0.7198),
    (0.5542, 0.7470), (0.5000, 0.7530), (0.4458, 0.7470), (0.3782, 0.7198),
    (0.3436, 0.6566), (0.4497, 0.6465), (0.5000, 0.6517), (0.5503, 0.6465),
    (0.6564, 0.6566), (0.5504, 0.6879), (0.5000, 0.6916), (0.4496, 0.6879),
)

# Index of each point's mirror image in the 68-point layout (left <-> right).
MIRROR_68: tuple[int, ...] = (
    tuple(range(16, -1, -1)) + tuple(range(26, 16, -1)) + (27, 28, 29, 30)
    + (35, 34, 33, 32, 31) + (45, 44, 43, 42, 47, 46) + (39, 38, 37, 36, 41, 40)
    + (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55) + (64, 63, 62, 61, 60, 67, 66, 65))


def template_pixels(template: Sequence[Sequence[float]] = CANONICAL_FACE, size: int = CROP_SIZE,
                    margin: float = CROP_MARGIN) -> np.ndarray:
    """The unit-box ``template`` placed in a ``size`` x ``size`` crop with ``margin`` of the
    crop on each side: crop pixel coordinates, (68, 2) float64."""
    unit = np.asarray(template, dtype=np.float64)
    return (margin + unit * (1 - 2 * margin)) * size - 0.5


def template_at(size: int) -> np.ndarray:
    """The canonical face as it sits in talkbench's aligned crop (``CROP_SIZE``,
    ``CROP_MARGIN``) resized to ``size`` x ``size``: (68, 2) float64 pixel coordinates."""
    return (template_pixels() + 0.5) * (size / CROP_SIZE) - 0.5


# ---------------------------------------------------------------------------------------------
# Similarity transforms


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``dst ~ [[a, -b], [b, a]] src + (tx, ty)``; returns (a, b, tx, ty).

    Linear in the four unknowns, so ``np.linalg.lstsq`` solves it exactly (the same optimum
    as Umeyama's method without reflection).
    """
    x, y = src[:, 0], src[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    rows_x = np.stack([x, -y, ones, zeros], axis=1)  # a x - b y + tx = x'
    rows_y = np.stack([y, x, zeros, ones], axis=1)  # b x + a y + ty = y'
    design = np.concatenate([rows_x, rows_y])
    target = np.concatenate([dst[:, 0], dst[:, 1]])
    params, *_ = np.linalg.lstsq(design, target, rcond=None)
    return params


def similarity_matrix(params: np.ndarray) -> np.ndarray:
    """(a, b, tx, ty) as a 3x3 homogeneous matrix."""
    a, b, tx, ty = params
    return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points by a 3x3 (or 2x3) affine matrix."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


# ---------------------------------------------------------------------------------------------
# How CANONICAL_FACE was made


def _normalise_shape(shape: np.ndarray) -> np.ndarray:
    shape = shape - shape.mean(axis=0)
    return shape / np.sqrt((shape ** 2).sum(axis=1).mean())


def _procrustes_mean(shapes: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Generalised Procrustes mean of (N, 68, 2) shapes (centred, unit RMS spread)."""
    mean = _normalise_shape(shapes[0])
    for _ in range(iterations):
        aligned = [apply_transform(similarity_matrix(fit_similarity(s, mean)), s)
                   for s in shapes]
        mean = _normalise_shape(np.mean(aligned, axis=0))
    return mean


def mean_face(faces: list[np.ndarray]) -> np.ndarray:
    """A symmetric, upright mean face in the unit box from landmark tracks (T_i, 68, 2).

    Each track is averaged (Procrustes) first so every face weighs the same; the mean is then
    averaged with its mirror image, rotated to level eyes and scaled into the unit box.
    """
    per_face = np.stack([_procrustes_mean(np.asarray(f, np.float64)) for f in faces])
    mean = _procrustes_mean(per_face)
    mirrored = mean * np.array([-1.0, 1.0])
    mean = _procrustes_mean(np.stack([mean, mirrored[list(MIRROR_68)]]))
    right_eye, left_eye = mean[36:42].mean(axis=0), mean[42:48].mean(axis=0)
    angle = np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
    cos, sin = np.cos(-angle), np.sin(-angle)
    mean = mean @ np.array([[cos, -sin], [sin, cos]]).T
    low, high = mean.min(axis=0), mean.max(axis=0)
    return (mean - (low + high) / 2) / (high - low).max() + 0.5
