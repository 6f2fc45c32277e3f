"""PSNR: peak signal-to-noise ratio per frame on uint8 RGB (SPEC section 5).

Definition, for one frame of N = H*W*3 values with data range R = 255::

    MSE  = sum((gt - pred)^2) / N
    PSNR = 10 * log10(R^2 / MSE)          (+inf when the frames are identical)

This is `skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=255)` frame by frame;
`tests/test_metrics_psnr_ssim.py` checks the match to 1e-6.

On the CPU the squared error of each frame comes from OpenCV's ``cv2.norm(pred, gt,
NORM_L2SQR)``: one SIMD pass over the uint8 frames with an exact integer sum (a frame's sum of
squared differences is an integer far below 2^53, so the float64 result is exact and equals
scikit-image's float64 sum). On a GPU the torch path below runs, in float64.

Per clip, PSNR is the mean over the clip's frames with a finite value: identical frames have an
infinite PSNR and are left out rather than averaged in as inf. A clip whose frames are all
identical scores +inf; `PSNR.compute()` leaves such clips out of the mean and counts them in
``"psnr_identical_clips"``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.metrics.base import (
    Column,
    Metric,
    Sample,
    as_frames_tensor,
    check_pair,
    frame_chunks,
    to_device_frames,
)

DATA_RANGE = 255.0


def psnr_frames(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor,
                device: str | torch.device | None = None) -> torch.Tensor:
    """Per-frame PSNR (float64, on the CPU) of two uint8 videos of the same shape (T, ...).

    Any layout of the per-frame axes works ((T, H, W, 3) or (T, 3, H, W)): the MSE is a mean
    over all of them. Identical frames give +inf. The math runs on ``device`` (``None``: where
    the tensors are, or CUDA when available for numpy input) in float64, in chunks of frames.
    """
    pred_t = as_frames_tensor(pred, device)
    gt_t = as_frames_tensor(gt, pred_t.device)
    if pred_t.shape != gt_t.shape:
        raise ValueError(f"shape mismatch: pred {tuple(pred_t.shape)} vs gt {tuple(gt_t.shape)}")
    if pred_t.ndim < 2:
        raise ValueError(f"expected (T, ...) frames, got shape {tuple(pred_t.shape)}")
    n_frames = pred_t.shape[0]
    values_per_frame = pred_t[0].numel()
    out = []
    for chunk in frame_chunks(n_frames, values_per_frame, pred_t.device):
        diff = pred_t[chunk].to(torch.float64) - gt_t[chunk].to(torch.float64)
        mse = diff.square().reshape(diff.shape[0], -1).mean(dim=1)
        out.append(10.0 * torch.log10(DATA_RANGE**2 / mse))  # mse == 0 -> +inf
    return torch.cat(out).cpu()


def clip_psnr(per_frame: torch.Tensor) -> float:
    """A clip's PSNR: the mean over its finite frames; +inf when every frame is identical."""
    finite = per_frame[torch.isfinite(per_frame)]
    if finite.numel() == 0:
        return math.inf
    return float(finite.mean())


def psnr_frames_cpu(pred: np.ndarray, gt: np.ndarray) -> torch.Tensor:
    """Per-frame PSNR (float64) of two uint8 videos of the same shape on the CPU, through
    OpenCV's exact sum of squared differences (``cv2.norm(..., NORM_L2SQR)``)."""
    import cv2

    pred = np.ascontiguousarray(pred)
    gt = np.ascontiguousarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs gt {gt.shape}")
    if pred.dtype != np.uint8 or gt.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {pred.dtype} and {gt.dtype}")
    n_values = pred[0].size
    sse = np.array([cv2.norm(p.reshape(-1), g.reshape(-1), cv2.NORM_L2SQR)
                    for p, g in zip(pred, gt, strict=True)], dtype=np.float64)
    with np.errstate(divide="ignore"):
        return torch.from_numpy(10.0 * np.log10(DATA_RANGE**2 / (sse / n_values)))


class PSNR(Metric):
    """PSNR of the generated frames against the ground-truth frames (needs ``gt``)."""

    name = "psnr"
    columns = (Column("psnr", "PSNR", higher_is_better=True, fmt=".2f"),)
    needs = frozenset({"gt"})
    on_ground_truth = False  # PSNR of the real video against itself is +inf
    version = "1"

    def score(self, sample: Sample) -> dict[str, float]:
        pred_np, gt_np = check_pair(sample)
        if torch.device(self.device).type == "cpu":
            return {"psnr": clip_psnr(psnr_frames_cpu(pred_np, gt_np))}
        pred = to_device_frames(sample, "pred", self.device, dtype=torch.uint8)
        gt = to_device_frames(sample, "gt", self.device, dtype=torch.uint8)
        return {"psnr": clip_psnr(psnr_frames(pred, gt))}

    def compute(self) -> dict[str, float]:
        """Mean PSNR over clips with a finite value, plus how many clips were all-identical."""
        out = super().compute()
        values = np.asarray(self._values["psnr"], dtype=np.float64)
        out["psnr_identical_clips"] = float(np.isinf(values).sum())
        return out

    def provenance(self) -> dict[str, str]:
        return {
            **super().provenance(),
            "reference": "skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=255), "
                         "per frame, matched to 1e-6",
            "settings": "uint8 RGB, data range 255, float64; clip value = mean over frames "
                        "with finite PSNR (identical frames left out); dataset value = mean "
                        "over clips with finite PSNR",
            "judge": "none",
        }
