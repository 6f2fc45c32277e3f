"""PSNR and SSIM throughput: talkbench vs a scikit-image per-frame loop, same frames, same run.

Run with ``pytest tests/benchmarks/test_bench_psnr_ssim.py --benchmark-enable``. Each metric and
size (128x128 aligned crops and 360x288 GRID frames) is one benchmark group (75 frames = 3 s
at 25 fps), so the speed ratio reads off the table; the
frames/s land in each result's ``extra_info``. talkbench runs on CUDA when present, else on
the CPU with torch's threads ("talkbench") and pinned to one thread ("talkbench-1thread", the
fair per-core comparison with scikit-image, which is single-threaded). Without
``--benchmark-enable`` each case runs once as a test that checks the values agree.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics.base import Sample
from bench.metrics.psnr import PSNR
from bench.metrics.ssim import SSIM

NUM_FRAMES = 75


SIZES = {"128": (128, 128), "360x288": (288, 360)}
"""The harness's aligned crops (128 px) and full GRID frames (360x288, W x H)."""


@cache
def _frames(size: str) -> tuple[np.ndarray, np.ndarray]:
    """A smooth ground truth with texture, and a noisy prediction of it (uint8 RGB)."""
    height, width = SIZES[size]
    rng = np.random.default_rng(height * width)
    shape = (NUM_FRAMES, height, width, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    t = np.arange(NUM_FRAMES)[:, None, None, None]
    wave = np.sin(xx[None, :, :, None] / 9.0 + t / 10) * np.cos(yy[None, :, :, None] / 13.0)
    base = 128 + 90 * wave
    gt = np.clip(base + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)
    pred = np.clip(gt + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)
    return pred, gt


def _skimage_psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([peak_signal_noise_ratio(g, p, data_range=255)
                          for p, g in zip(pred, gt, strict=True)]))


def _skimage_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([structural_similarity(g, p, gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False, data_range=255,
                                                channel_axis=-1)
                          for p, g in zip(pred, gt, strict=True)]))


def _talkbench(metric: type) -> Callable[[np.ndarray, np.ndarray], float]:
    def run(pred: np.ndarray, gt: np.ndarray) -> float:
        sample = Sample("bench", pred, gt)  # fresh per round: no cached copy carries over
        value = metric().update(sample)[metric.name]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return value
    return run


REFERENCE = {"psnr": _skimage_psnr, "ssim": _skimage_ssim}
TOLERANCE = {"psnr": 1e-6, "ssim": 1e-4}
TALKBENCH = {"psnr": _talkbench(PSNR), "ssim": _talkbench(SSIM)}


@cache
def _reference(metric: str, size: str) -> float:
    """scikit-image's clip mean, computed once per metric and size for the checks."""
    return REFERENCE[metric](*_frames(size))


IMPLS: dict[str, int | None] = {"skimage": None, "talkbench": None, "talkbench-1thread": 1}
"""Implementation -> torch threads (None: torch's default). scikit-image is single-threaded,
so "talkbench-1thread" is the per-core comparison the issue asks for."""


@pytest.mark.parametrize("metric", ["psnr", "ssim"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl,torch_threads", list(IMPLS.items()),
                         indirect=["torch_threads"], ids=list(IMPLS))
def test_bench_psnr_ssim(benchmark, metric, size, impl, torch_threads):
    pred, gt = _frames(size)
    func = REFERENCE[metric] if impl == "skimage" else TALKBENCH[metric]
    benchmark.group = f"{metric} {NUM_FRAMES} frames {size}"
    func(pred[:2], gt[:2])  # warm up (CUDA context, allocator)
    value = benchmark.pedantic(func, args=(pred, gt), rounds=5, iterations=1, warmup_rounds=1)
    assert value == pytest.approx(_reference(metric, size), abs=TOLERANCE[metric])
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        benchmark.extra_info["frames_per_s"] = NUM_FRAMES / benchmark.stats.stats.median
