"""The metric suite on one 3 s clip (issue 13): wall and CPU time of scoring one clip.

Run with ``pytest tests/benchmarks/test_bench_suite.py --benchmark-enable``. One clip of 75
aligned 128x128 face frames (crops of scikit-image's astronaut photograph drifting by a pixel a
frame, the harness's aligned-crop size) and a noisy copy as the "generated" video, scored the
way `bench run` scores a clip (`bench.aggregate.score_sample`, a fresh `Sample` per round so
the shared landmark pass is paid every time):

* ``classic``: PSNR, SSIM, CPBD and blinks (EAR from the shared 68-landmark pass): every metric
  without a neural judge; the issue's target is at most 2 s of CPU time for these on one clip;
* ``with-acd``: the same plus ACD (the face-embedding network on every frame).

LSE (SyncNet) and the FID / emotion / AU networks have benchmarks of their own
(``test_bench_lse.py``, ``test_bench_cpbd_fid.py``). Each result's ``extra_info`` holds the
CPU seconds of one round (``time.process_time``, all threads) and the frames/s.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from bench.aggregate import score_sample
from bench.metrics import get_metric
from bench.metrics.base import Sample

NUM_FRAMES = 75  # the shared face clip (conftest.face_clip)

SUITES = {"classic": ("psnr", "ssim", "cpbd", "blinks"),
          "with-acd": ("psnr", "ssim", "cpbd", "blinks", "acd")}


@pytest.fixture(scope="module")
def clip(face_clip) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred): the shared face clip and a noisy copy of it."""
    noise = np.random.default_rng(0).integers(-10, 11, face_clip.shape)
    return face_clip, np.clip(face_clip.astype(int) + noise, 0, 255).astype(np.uint8)


def _score(names: tuple[str, ...], clip, tmp_path) -> dict[str, dict]:
    gt, pred = clip
    sample = Sample("bench", pred, gt, identity=gt[0])
    metrics = [get_metric(name, device="cpu") for name in names]
    entries = score_sample(metrics, sample, tmp_path)
    return entries


@pytest.mark.parametrize("suite", list(SUITES))
def test_metric_suite_one_clip(benchmark, suite, clip, tmp_path):
    names = SUITES[suite]
    benchmark.group = "metric suite, one 3 s clip (75 frames, 128x128)"
    cpu: list[float] = []

    def timed() -> dict[str, dict]:
        start = time.process_time()
        out = _score(names, clip, tmp_path)
        cpu.append(time.process_time() - start)
        return out

    entries = benchmark(timed)
    assert set(entries) == set(names)
    assert all("unavailable" not in e for e in entries.values()), entries
    if benchmark.stats is not None:
        benchmark.extra_info["cpu_s_per_clip"] = float(np.median(cpu))
        benchmark.extra_info["frames_per_s"] = NUM_FRAMES / benchmark.stats.stats.median
        benchmark.extra_info["torch_threads"] = torch.get_num_threads()
