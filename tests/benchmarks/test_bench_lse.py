"""LSE throughput: talkbench's batched path vs a per-window loop like syncnet_python's.

Run with ``pytest tests/benchmarks/test_bench_lse.py --benchmark-enable``. One 3 s clip
(75 frames of 224x224 face crops + 16 kHz audio), SyncNet with seeded random weights (speed
does not depend on the weights), both sides on the same device in the same run: CUDA when
present, else the CPU with torch's threads. The frames/s land in each result's
``extra_info``; the ratio reads off the table. Without ``--benchmark-enable`` each side runs
once as a test and the numbers are checked to agree.

The loop side is ``SyncNetInstance.evaluate``'s computation: windows gathered one by one into
batches of 20 with ``torch.cat``, then one ``pairwise_distance`` call per window for the 31
shifts. The network forward passes dominate both, so the gap is mostly the distance loop and
the window gathering.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.core.audio import mfcc
from bench.judges.syncnet import random_syncnet, resolve_device
from bench.metrics.lse import lse_from_arrays

NUM_FRAMES = 75


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (NUM_FRAMES, 224, 224, 3), dtype=np.uint8)
    audio = (rng.standard_normal(NUM_FRAMES * 640) * 3000).astype(np.int16)
    return frames, audio


@pytest.fixture(scope="module")
def net():
    return random_syncnet(0, device=resolve_device(None))[0]


@pytest.fixture(scope="module")
def expected(clip, net) -> tuple[float, float, int]:
    """The loop's numbers, computed once, that both sides must reproduce."""
    return per_window_loop(*clip, net)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def per_window_loop(frames: np.ndarray, audio: np.ndarray, net, vshift: int = 15,
                    batch_size: int = 20) -> tuple[float, float, int]:
    """syncnet_python's evaluate: per-window gathering and per-window distances."""
    device = next(net.parameters()).device
    im = np.transpose(np.stack(list(frames), axis=3)[None], (0, 3, 4, 1, 2))
    imtv = torch.from_numpy(im.astype(float)).float()
    cct = torch.from_numpy(mfcc(audio, 16000).T[None, None].astype(float)).float()
    lastframe = min(len(frames), math.floor(len(audio) / 640)) - 5
    im_feat, cc_feat = [], []
    with torch.no_grad():
        for i in range(0, lastframe, batch_size):
            window_range = range(i, min(lastframe, i + batch_size))
            im_in = torch.cat([imtv[:, :, v:v + 5] for v in window_range], 0)
            im_feat.append(net.forward_lip(im_in.to(device)).cpu())
            cc_in = torch.cat([cct[:, :, :, v * 4:v * 4 + 20] for v in window_range], 0)
            cc_feat.append(net.forward_aud(cc_in.to(device)).cpu())
    im_feat, cc_feat = torch.cat(im_feat), torch.cat(cc_feat)
    win_size = 2 * vshift + 1
    feat2p = torch.nn.functional.pad(cc_feat, (0, 0, vshift, vshift))
    dists = [torch.nn.functional.pairwise_distance(im_feat[[i], :].repeat(win_size, 1),
                                                   feat2p[i:i + win_size, :])
             for i in range(len(im_feat))]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return float(minval), float(torch.median(mdist) - minval), vshift - int(minidx)


def _batched(frames, audio, net) -> tuple[float, float, int]:
    result = lse_from_arrays(frames, audio, net)
    _sync()
    return result.lse_d, result.lse_c, result.av_offset


@pytest.mark.benchmark(group="lse-3s-clip")
@pytest.mark.parametrize("side", ["talkbench-batched", "syncnet_python-loop"])
def test_bench_lse(benchmark, clip, net, expected, side):
    frames, audio = clip
    run = _batched if side == "talkbench-batched" else per_window_loop
    if not benchmark.disabled:
        run(frames, audio, net)  # warm up (cuDNN autotuning, allocator)
    value = benchmark.pedantic(run, args=(frames, audio, net), rounds=3, iterations=1)
    assert value[0] == pytest.approx(expected[0], abs=1e-3)  # LSE-D
    assert value[1] == pytest.approx(expected[1], abs=1e-3)  # LSE-C
    assert value[2] == expected[2]  # offset
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["device"] = str(next(net.parameters()).device)
        benchmark.extra_info["frames"] = NUM_FRAMES
        benchmark.extra_info["frames_per_s"] = NUM_FRAMES / benchmark.stats.stats.median
