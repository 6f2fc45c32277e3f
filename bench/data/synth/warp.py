"""Thin-plate-spline warps: identity morphs and the fast per-frame animation warp.

A thin-plate spline (TPS) through control points ``c_j`` interpolates values ``v_j`` as
``f(q) = sum_j w_j U(|q - c_j|) + a0 + a1 x + a2 y`` with ``U(r) = r^2 log r^2``. For fixed
control points the map from values to interpolant is linear, so ``tps_operator`` returns a
matrix ``W`` (queries x controls) with ``f(q) = W @ v``.

Animation (``FaceWarper``): the identity's rest landmarks (plus fixed helper points around
the head) are the control points; ``W`` over every pixel of the head canvas is computed once
per identity. A frame's landmark displacements ``d`` (68 x 2) then give the *forward*
displacement field ``D = W[:, :68] @ d`` of the rest image (one matmul per batch of frames),
exact at the landmarks. Rendering needs the inverse (for each output pixel, where to sample
the rest image): three Newton steps on ``s + D(s) = p``, from the first-order guess
``p - D(p)``, on a half-resolution grid of output pixels (bilinearly interpolated to full
resolution), with the field and its Jacobian sampled by ``torch.nn.functional.grid_sample``.
Stretch (a mouth opening) and compression (an eyelid closing) both invert cleanly this way; a
fixed-point iteration would diverge where the field's gradient exceeds one. The head pose (a
similarity per frame) is composed in.
"""

from __future__ import annotations

import numpy as np


def _kernel(d2: np.ndarray) -> np.ndarray:
    """TPS radial function of squared distance: r^2 log r^2 (0 at r = 0)."""
    return d2 * np.log(np.maximum(d2, 1e-300))


def tps_operator(controls: np.ndarray, queries: np.ndarray, scale: float = 1.0,
                 regularization: float = 0.0) -> np.ndarray:
    """Matrix ``W`` (len(queries), len(controls)) with TPS interpolant = ``W @ values``.

    Coordinates are divided by ``scale`` for conditioning (the result does not depend on it
    when ``regularization`` is 0).
    """
    c = np.asarray(controls, np.float64) / scale
    q = np.asarray(queries, np.float64) / scale
    n = c.shape[0]
    k = _kernel(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    k[np.diag_indices(n)] += regularization
    p = np.concatenate([np.ones((n, 1)), c], axis=1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n], system[:n, n:], system[n:, :n] = k, p, p.T
    inverse = np.linalg.inv(system)[:, :n]  # (n+3, n): values -> (weights, affine)
    out = np.empty((q.shape[0], n))
    c2 = (c ** 2).sum(1)
    for start in range(0, q.shape[0], 16384):
        qq = q[start:start + 16384]
        d2 = np.maximum((qq ** 2).sum(1)[:, None] + c2[None, :] - 2.0 * qq @ c.T, 0.0)
        phi = _kernel(d2)
        out[start:start + 16384] = phi @ inverse[:n] + inverse[n] + qq @ inverse[n + 1:]
    return out


def pixel_grid(height: int, width: int) -> np.ndarray:
    """(H*W, 2) pixel centres (x, y), row-major."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def sample_image(image: np.ndarray, coords: np.ndarray, cval: float = 0.0) -> np.ndarray:
    """Bilinear samples of ``image`` (H, W, C) at ``coords`` (..., 2) = (x, y); ``cval`` outside."""
    from scipy.ndimage import map_coordinates

    flat = coords.reshape(-1, 2)
    chans = [map_coordinates(image[..., ch], [flat[:, 1], flat[:, 0]], order=1, mode="constant",
                             cval=cval) for ch in range(image.shape[-1])]
    return np.stack(chans, axis=-1).reshape(*coords.shape[:-1], image.shape[-1])


def tps_backward_warp(image: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray,
                      out_shape: tuple[int, int], cval: float = 0.0, step: int = 4) -> np.ndarray:
    """Warp ``image`` so that ``src_points`` land on ``dst_points`` (TPS, bilinear sampling).

    The spline is evaluated every ``step`` pixels and its (smooth) coordinate map is
    interpolated bilinearly in between.
    """
    from scipy.ndimage import map_coordinates

    h, w = out_shape
    gh, gw = -(-(h - 1) // step) + 1, -(-(w - 1) // step) + 1
    coarse = pixel_grid(gh, gw) * step
    op = tps_operator(dst_points, coarse, scale=max(out_shape))
    maps = (op @ np.asarray(src_points, np.float64)).reshape(gh, gw, 2)
    ys, xs = np.mgrid[0:h, 0:w] / step
    coords = np.stack([map_coordinates(maps[..., c], [ys, xs], order=1, mode="nearest")
                       for c in range(2)], axis=-1)
    return sample_image(image, coords, cval=cval)


class FaceWarper:
    """Per-identity TPS basis over a square head canvas; renders batches of warped frames.

    Control points: the 68 rest landmarks and ``helpers``, extra points whose displacement is
    a fixed linear mix of the landmark displacements (``mix`` rows, zero rows for anchors
    that never move; e.g. a point above each upper eyelid that follows the brow but not the
    lid keeps a blink from dragging the brow or a spectacle rim down).
    """

    def __init__(self, rest: np.ndarray, helpers: np.ndarray, mix: np.ndarray,
                 size: int) -> None:
        import torch

        self.size = size
        self.rest = np.asarray(rest, np.float64)
        n = len(self.rest)
        controls = np.concatenate([self.rest, helpers], axis=0)
        op = tps_operator(controls, pixel_grid(size, size), scale=size)
        op = op[:, :n] + op[:, n:] @ np.asarray(mix, np.float64)
        self.basis = torch.from_numpy(np.ascontiguousarray(op.T.astype(np.float32)))  # (68, S*S)

    def render(self, rgba: np.ndarray, displacements: np.ndarray, poses: np.ndarray,
               newton_steps: int = 3) -> np.ndarray:
        """Warp the rest image ``rgba`` (S, S, C float32) for each frame.

        ``displacements`` (T, 68, 2): landmark moves in the rest canvas. ``poses`` (T, 2, 3):
        affine maps from rest-canvas to output-canvas coordinates (head motion) applied after
        the landmark warp. Returns (T, S, S, C) float32.
        """
        import torch
        import torch.nn.functional as F

        s = self.size
        t = displacements.shape[0]
        d = torch.from_numpy(np.ascontiguousarray(
            np.asarray(displacements, np.float32).reshape(t, -1, 2).transpose(0, 2, 1)
            .reshape(2 * t, -1)))  # (T*2, 68)
        # stack: forward field D (Dx, Dy) and its Jacobian by central differences
        # (dDx/dx, dDy/dx, dDx/dy, dDy/dy), written in place
        stack = torch.empty(t, 6, s, s)
        stack[:, 0:2] = (d @ self.basis).view(t, 2, s, s)
        field = stack[:, 0:2]
        dx, dy = stack[:, 2:4], stack[:, 4:6]
        torch.sub(field[..., 2:], field[..., :-2], out=dx[..., 1:-1]).mul_(0.5)
        torch.sub(field[..., 1:2], field[..., 0:1], out=dx[..., 0:1])
        torch.sub(field[..., -1:], field[..., -2:-1], out=dx[..., -1:])
        torch.sub(field[..., 2:, :], field[..., :-2, :], out=dy[..., 1:-1, :]).mul_(0.5)
        torch.sub(field[..., 1:2, :], field[..., 0:1, :], out=dy[..., 0:1, :])
        torch.sub(field[..., -1:, :], field[..., -2:-1, :], out=dy[..., -1:, :])

        # output pixel -> pre-pose canvas point p (inverse of each frame's affine), in the
        # normalised [-1, 1] coordinates of grid_sample (align_corners=True)
        inv = np.stack([_invert_affine(m) for m in poses]).astype(np.float32)  # (T, 2, 3)
        half = (s - 1) / 2.0

        def targets(n: int) -> torch.Tensor:
            axis = torch.linspace(0, s - 1, n)
            xs, ys = axis.view(1, 1, n), axis.view(1, n, 1)
            m = torch.from_numpy(inv).view(t, 6, 1, 1)
            px = m[:, 0] * xs + m[:, 1] * ys + m[:, 2]
            py = m[:, 3] * xs + m[:, 4] * ys + m[:, 5]
            return torch.stack([px, py], dim=-1) / half - 1  # (T, n, n, 2)

        def newton(q: torch.Tensor, p: torch.Tensor, steps: int) -> torch.Tensor:
            for _ in range(steps):
                v = F.grid_sample(stack, q, mode="bilinear", padding_mode="border",
                                  align_corners=True)  # (T, 6, n, n), field in px per px
                rx = q[..., 0] + v[:, 0] / half - p[..., 0]  # residual of q + D(q) = p
                ry = q[..., 1] + v[:, 1] / half - p[..., 1]
                a, b = 1 + v[:, 2], v[:, 3]  # d(x+Dx)/dx, d(y+Dy)/dx
                c, e = v[:, 4], 1 + v[:, 5]  # d(x+Dx)/dy, d(y+Dy)/dy
                det = (a * e - b * c).clamp_(min=0.05)
                step = torch.stack([(e * rx - c * ry) / det, (a * ry - b * rx) / det], dim=-1)
                q = q - step.clamp_(-8.0 / half, 8.0 / half)
            return q

        # Newton on a half-resolution grid of output pixels, interpolated to full resolution
        # (a full-resolution refinement step changed no pixel outside the mouth opening)
        p_coarse = targets(s // 2)
        # first guess: q = p - D(p) (exact to first order for small displacements)
        first = F.grid_sample(stack[:, 0:2], p_coarse, mode="bilinear", padding_mode="border",
                              align_corners=True)
        q = p_coarse - first.permute(0, 2, 3, 1) / half
        q = newton(q, p_coarse, newton_steps)
        q = F.interpolate(q.permute(0, 3, 1, 2), size=(s, s), mode="bilinear",
                          align_corners=True).permute(0, 2, 3, 1)
        image = torch.from_numpy(np.ascontiguousarray(rgba.transpose(2, 0, 1)[None]))
        out = F.grid_sample(image.expand(t, -1, -1, -1), q, mode="bilinear",
                            padding_mode="zeros", align_corners=True)
        return out.permute(0, 2, 3, 1).numpy()


def _invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    (a, b, tx), (c, d, ty) = np.asarray(m, np.float64)
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])


def similarity(scale: float, angle_rad: float, tx: float, ty: float,
               center: tuple[float, float]) -> np.ndarray:
    """2x3 map: rotate by ``angle`` and scale about ``center``, then translate."""
    c, s_ = np.cos(angle_rad) * scale, np.sin(angle_rad) * scale
    cx, cy = center
    return np.array([[c, -s_, cx - c * cx + s_ * cy + tx],
                     [s_, c, cy - s_ * cx - c * cy + ty]])


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 map to (..., 2) points."""
    return points @ m[:, :2].T + m[:, 2]
