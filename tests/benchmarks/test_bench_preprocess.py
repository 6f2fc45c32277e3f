"""Preprocessing throughput (frames per second on one core).

Run with ``pytest tests/benchmarks --benchmark-enable``; the frames/s land in each result's
``extra_info``. Uses a real GRID sample when ../shared is present, else a synthetic portrait.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.data import preprocess as prep
from bench.data.clip import ClipRef
from bench.data.media import write_video

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                reason="dlib is not installed")

SHARED = Path(os.environ.get("TALKBENCH_SHARED", Path(__file__).resolve().parents[3] / "shared"))
GRID_SAMPLE = SHARED / "data" / "grid-samples" / "bbaf2n.mpg"


def _synthetic_clip(folder: Path, num: int = 75) -> Path:
    """The astronaut's face slowly moving, 224x224, 3 s with a tone."""
    from skimage.data import astronaut
    from skimage.transform import SimilarityTransform, warp

    image = astronaut()
    frames = []
    for t in range(num):
        phase = np.pi * t / num
        crop_to_image = SimilarityTransform(rotation=np.deg2rad(3 * np.sin(phase)),
                                            translation=(110 + 4 * np.sin(phase), 14))
        frames.append(warp(image, crop_to_image, output_shape=(224, 224), order=1,
                           preserve_range=True).round().astype(np.uint8))
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(num * 640) / 16_000)
    return write_video(folder / "astronaut.mp4", np.stack(frames), audio.astype(np.float32))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> ClipRef:
    if GRID_SAMPLE.is_file():
        return ClipRef(dataset="grid", speaker="s", clip_id=GRID_SAMPLE.stem, video=GRID_SAMPLE)
    path = _synthetic_clip(tmp_path_factory.mktemp("bench_media"))
    return ClipRef(dataset="synthetic", speaker="s", clip_id="astronaut", video=path)


@pytest.fixture
def one_core() -> Iterator[None]:
    """Pin this process (and the threads it starts) to one CPU while the benchmark runs."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _record_fps(benchmark, num_frames: int) -> None:
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["frames"] = num_frames
        benchmark.extra_info["frames_per_s"] = num_frames / benchmark.stats.stats.median


def test_bench_prepare_clip(benchmark, sample, tmp_path, one_core):
    """Whole preprocessing of one clip into an empty cache: decode, landmarks, warp, write."""
    prep.read_clip(sample)  # warm up: dlib models, codecs
    rounds = itertools.count()

    def fresh_cache():
        return (sample, tmp_path / f"cache{next(rounds)}"), {}

    entry = benchmark.pedantic(prep.prepare_clip, setup=fresh_cache, rounds=5, iterations=1,
                               warmup_rounds=1)
    assert prep.is_complete(entry)
    _record_fps(benchmark, prep.read_clip(sample).num_frames)


def test_bench_detect_landmarks(benchmark, sample, one_core):
    """Landmarks alone (detect + track) on decoded frames."""
    from bench.core.landmarks import detect_landmarks

    frames = prep.read_clip(sample).frames
    detect_landmarks(frames[:2])  # warm up: load the models
    marks = benchmark.pedantic(detect_landmarks, args=(frames,), rounds=5, iterations=1)
    assert not np.isnan(marks).any()
    _record_fps(benchmark, frames.shape[0])
