"""CPBD and FID-feature throughput: talkbench vs the reference packages, same frames, same run.

Run with ``pytest tests/benchmarks/test_bench_cpbd_fid.py --benchmark-enable``. Each group
holds talkbench and its reference on the same frames, so the ratio reads off the table; the
frames/s land in each result's ``extra_info``. Without ``--benchmark-enable`` each case runs
once as a test that checks the values agree.

* CPBD: ``cpbd.compute`` (PyPI ``cpbd`` 1.0.7, pure Python loops, one core) frame by frame on
  Pillow grey frames vs :func:`bench.metrics.cpbd.cpbd_frames` on the RGB frames (grey
  conversion included), on CUDA when present, else on the CPU with torch's threads
  ("talkbench") and with one thread ("talkbench-1thread", the per-core comparison).
* FID features: pytorch-fid's ``InceptionV3([3])`` forward on ``ToTensor``-style input vs
  :meth:`bench.metrics.fid.FID.features` (same network, same random weights, same device and
  threads). The 2048x2048 matrix square root of the final FID is the same scipy call in both
  and is not timed here.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import torch
from PIL import Image

from bench.judges.inception import WEIGHTS_NAME, FIDInceptionV3
from bench.metrics.cpbd import cpbd_frames
from bench.metrics.fid import FID

CPBD_FRAMES = 8
FID_FRAMES = 8


def _import_cpbd() -> types.ModuleType:
    """The reference package, imported with a stand-in for the removed scipy.ndimage.imread."""
    added = not hasattr(scipy.ndimage, "imread")
    if added:
        scipy.ndimage.imread = lambda *args, **kwargs: None
    try:
        import cpbd
    except ImportError as err:
        pytest.skip(f"reference package cpbd not importable: {err}")
    finally:
        if added:
            del scipy.ndimage.imread
    return cpbd


@cache
def _frames(height: int, width: int, num: int) -> np.ndarray:
    """``num`` crops of the astronaut photograph drifting across it: (num, H, W, 3) uint8."""
    image = skimage.data.astronaut()
    return np.stack([image[6 * i:6 * i + height, 5 * i + 40:5 * i + 40 + width]
                     for i in range(num)])


def _record(benchmark, num_frames: int) -> None:
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        benchmark.extra_info["frames_per_s"] = num_frames / benchmark.stats.stats.median


# ---------------------------------------------------------------------------------------------
# CPBD


def _cpbd_reference(frames: np.ndarray) -> np.ndarray:
    compute = _import_cpbd().compute
    return np.array([compute(np.asarray(Image.fromarray(f).convert("L"))) for f in frames])


def _cpbd_talkbench(frames: np.ndarray) -> np.ndarray:
    return cpbd_frames(frames)  # CUDA when available; the result is copied back (synchronised)


CPBD_IMPLS: dict[str, tuple[Callable, int | None]] = {
    "cpbd-package": (_cpbd_reference, None),
    "talkbench": (_cpbd_talkbench, None),
    "talkbench-1thread": (_cpbd_talkbench, 1),
}


@cache
def _cpbd_expected(height: int, width: int) -> np.ndarray:
    return _cpbd_reference(_frames(height, width, CPBD_FRAMES))


@pytest.mark.parametrize("height,width", [(128, 128), (288, 360)])
@pytest.mark.parametrize("impl,torch_threads", [(k, v[1]) for k, v in CPBD_IMPLS.items()],
                         indirect=["torch_threads"], ids=list(CPBD_IMPLS))
def test_bench_cpbd(benchmark, height, width, impl, torch_threads):
    frames = _frames(height, width, CPBD_FRAMES)
    func = CPBD_IMPLS[impl][0]
    benchmark.group = f"cpbd {CPBD_FRAMES}x{height}x{width}"
    func(frames[:1])  # warm up
    values = benchmark.pedantic(func, args=(frames,), rounds=3, iterations=1)
    np.testing.assert_allclose(values, _cpbd_expected(height, width), atol=1e-3)
    _record(benchmark, CPBD_FRAMES)


# ---------------------------------------------------------------------------------------------
# FID features


@pytest.fixture(scope="module")
def fid_models(tmp_path_factory) -> tuple[torch.nn.Module, FID]:
    """pytorch-fid's network and talkbench's FID metric with the same random weights."""
    inception = pytest.importorskip("pytorch_fid.inception")
    torch.manual_seed(0)
    state_dict = FIDInceptionV3().state_dict()  # same format as pytorch-fid's file
    path: Path = tmp_path_factory.mktemp("weights") / WEIGHTS_NAME
    torch.save(state_dict, path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with pytest.MonkeyPatch.context() as mp:  # no download
        mp.setattr(inception, "load_state_dict_from_url", lambda *a, **k: state_dict)
        reference = inception.InceptionV3([3]).eval().to(device)
    metric = FID(device=device, weights=str(path))
    metric.network()
    return reference, metric


@pytest.mark.parametrize("impl", ["pytorch-fid", "talkbench"])
def test_bench_fid_features(benchmark, fid_models, impl):
    reference, metric = fid_models
    frames = _frames(128, 128, FID_FRAMES)
    device = metric.device

    def pytorch_fid_features(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():  # as pytorch_fid.fid_score.get_activations, minus file reading
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()  # as ToTensor
            x = x.float().div(255).to(device)
            return reference(x)[0].squeeze(3).squeeze(2).cpu().numpy()

    func = pytorch_fid_features if impl == "pytorch-fid" else metric.features
    benchmark.group = f"fid features {FID_FRAMES}x128x128"
    func(frames[:2])  # warm up
    features = benchmark.pedantic(func, args=(frames,), rounds=3, iterations=1)
    if impl == "talkbench":
        np.testing.assert_allclose(features, pytorch_fid_features(frames), atol=1e-4)
    _record(benchmark, FID_FRAMES)
