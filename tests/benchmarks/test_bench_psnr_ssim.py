"""PSNR + SSIM throughput: talkbench vs a scikit-image per-frame loop, same frames, same run.

Run with ``pytest tests/benchmarks/test_bench_psnr_ssim.py --benchmark-enable``. Each size is
one benchmark group (75 frames = 3 s at 25 fps), so the speed ratio reads off the table; the
frames/s land in each result's ``extra_info``. talkbench runs on CUDA when present, else on
the CPU with torch's threads ("talkbench") and pinned to one thread ("talkbench-1thread", the
fair per-core comparison with scikit-image, which is single-threaded). Without
``--benchmark-enable`` each case runs once as a test that checks the values agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics.base import Sample
from bench.metrics.psnr import PSNR
from bench.metrics.ssim import SSIM

NUM_FRAMES = 75


@cache
def _frames(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth ground truth with texture, and a noisy prediction of it (uint8 RGB)."""
    rng = np.random.default_rng(size)
    shape = (NUM_FRAMES, size, size, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    t = np.arange(NUM_FRAMES)[:, None, None, None]
    wave = np.sin(xx[None, :, :, None] / 9.0 + t / 10) * np.cos(yy[None, :, :, None] / 13.0)
    base = 128 + 90 * wave
    gt = np.clip(base + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)
    pred = np.clip(gt + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)
    return pred, gt


def _skimage_loop(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    psnr = [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt, strict=True)]
    ssim = [structural_similarity(g, p, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255, channel_axis=-1)
            for p, g in zip(pred, gt, strict=True)]
    return float(np.mean(psnr)), float(np.mean(ssim))


@cache
def _reference(size: int) -> tuple[float, float]:
    """scikit-image's clip means, computed once per size for the checks."""
    return _skimage_loop(*_frames(size))


def _talkbench(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    sample = Sample("bench", pred, gt)  # fresh per round: no cached device copy carries over
    psnr = PSNR().update(sample)["psnr"]
    ssim = SSIM().update(sample)["ssim"]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return psnr, ssim


@pytest.fixture
def torch_threads(request) -> Iterator[None]:
    before = torch.get_num_threads()
    if request.param is not None:
        torch.set_num_threads(request.param)
    try:
        yield
    finally:
        torch.set_num_threads(before)


IMPLS: dict[str, tuple[Callable, int | None]] = {
    "skimage": (_skimage_loop, None),
    "talkbench": (_talkbench, None),
    "talkbench-1thread": (_talkbench, 1),
}


@pytest.mark.parametrize("size", [128, 256])
@pytest.mark.parametrize("impl,torch_threads", [(k, v[1]) for k, v in IMPLS.items()],
                         indirect=["torch_threads"], ids=list(IMPLS))
def test_bench_psnr_ssim(benchmark, size, impl, torch_threads):
    pred, gt = _frames(size)
    func = IMPLS[impl][0]
    benchmark.group = f"psnr+ssim {NUM_FRAMES}x{size}x{size}"
    func(pred[:2], gt[:2])  # warm up (CUDA context, allocator)
    psnr, ssim = benchmark.pedantic(func, args=(pred, gt), rounds=5, iterations=1,
                                    warmup_rounds=1)
    ref_psnr, ref_ssim = _reference(size)
    assert psnr == pytest.approx(ref_psnr, abs=1e-6)
    assert ssim == pytest.approx(ref_ssim, abs=1e-4)
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        benchmark.extra_info["frames_per_s"] = NUM_FRAMES / benchmark.stats.stats.median
