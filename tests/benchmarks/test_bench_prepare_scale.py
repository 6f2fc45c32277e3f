"""Preprocessing at scale: frames/s on one core and on all cores, bytes per cached frame, and
the projected time and cache size of each full dataset on this machine.

Three clip shapes stand in for the three datasets (built from a real GRID sample when
../shared is present, else from skimage's astronaut):

- GRID: the sample itself, MPEG-1 360x288 25 fps with MP2 audio, 3 s;
- CREMA-D: the same face scaled into 480x360 at 30 fps, FLV1 + MP3 with a separate 16 kHz wav,
  2.5 s;
- TCD-TIMIT: scaled into 1920x1080 at 29.97 fps, H.264 + AAC, 3 s (the release's ~4 s clips
  are projected from frames/s).

Full datasets (frames after resampling to 25 fps): GRID 33 x 1000 x 75 = 2,475,000;
CREMA-D 7,442 clips x ~2.5 s = 465,125; TCD-TIMIT 6,913 straight-camera clips (59 volunteers
x ~98 + 3 lipspeakers x 377) x ~4 s = 691,300.

Run (slow; prints the table)::

    .venv/bin/pytest tests/benchmarks/test_bench_prepare_scale.py -m slow -s
    .venv/bin/python tests/benchmarks/test_bench_prepare_scale.py   # the same, as a script

``--benchmark-enable`` adds pytest-benchmark's timing of the one-core GRID case.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bench.data import preprocess as prep
from bench.data.clip import ClipRef
from bench.data.media import read_media, write_video, write_wav

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                 reason="dlib is not installed")]

SHARED = Path(os.environ.get("TALKBENCH_SHARED", Path(__file__).resolve().parents[3] / "shared"))
GRID_SAMPLES = SHARED / "data" / "grid-samples"

DATASET_FRAMES = {"grid": 33 * 1000 * 75, "crema-d": round(7442 * 2.5 * 25),
                  "tcd-timit": 6913 * 4 * 25}
SHAPES = {  # container suffix, (height, width), fps, seconds
    "grid": (".mpg", (288, 360), 25, 3.0),
    "crema-d": (".flv", (360, 480), 30, 2.5),
    "tcd-timit": (".mp4", (1080, 1920), Fraction(30000, 1001), 3.0),
}


def _source() -> tuple[np.ndarray, np.ndarray]:
    """25 fps frames (75, 288, 360, 3) and 16 kHz audio of a talking face."""
    sample = GRID_SAMPLES / "bbaf2n.mpg"
    if sample.is_file():
        media = read_media(sample)
        return media.frames, media.audio
    from skimage.data import astronaut
    from skimage.transform import SimilarityTransform, warp

    image, frames = astronaut(), []
    for t in range(75):
        phase = np.pi * t / 75
        m = SimilarityTransform(rotation=np.deg2rad(3 * np.sin(phase)), scale=0.5,
                                translation=(130 + 4 * np.sin(phase), 40))
        frames.append(warp(image, m, output_shape=(288, 360), order=1,
                           preserve_range=True).round().astype(np.uint8))
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(48_000) / 16_000)
    return np.stack(frames), audio.astype(np.float32)


def _reshape(frames: np.ndarray, size: tuple[int, int], fps, seconds: float,
             shade: int) -> np.ndarray:
    """The source frames scaled (aspect kept, padded) into ``size`` at ``fps`` for ``seconds``;
    ``shade`` brightens by a few levels so that every copy has its own content (cache key)."""
    from PIL import Image

    height, width = size
    n_out = int(round(seconds * float(fps)))
    pick = np.minimum((np.arange(n_out) * 25 / float(fps)).astype(int), frames.shape[0] - 1)
    scale = height / frames.shape[1]
    inner = (int(round(frames.shape[2] * scale)) // 2 * 2, height)
    pad = (width - inner[0]) // 2
    out = np.zeros((n_out, height, width, 3), np.uint8)
    for k, i in enumerate(pick):
        img = Image.fromarray(frames[i]).resize(inner, Image.BILINEAR)
        out[k, :, pad:pad + inner[0]] = np.asarray(img)
    return np.clip(out.astype(np.int16) + shade, 0, 255).astype(np.uint8)


def make_clips(folder: Path, shape: str, copies: int) -> list[ClipRef]:
    """``copies`` distinct clips of one dataset's shape."""
    frames, audio = _source()
    suffix, size, fps, seconds = SHAPES[shape]
    refs = []
    for k in range(copies):
        video = folder / shape / f"clip{k}{suffix}"
        n_audio = int(seconds * 16_000)
        wav = np.resize(audio, n_audio) if audio.shape[0] < n_audio else audio[:n_audio]
        if shape == "grid" and k == 0 and (GRID_SAMPLES / "bbaf2n.mpg").is_file():
            video.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(GRID_SAMPLES / "bbaf2n.mpg", video)
        else:
            write_video(video, _reshape(frames, size, fps, seconds, shade=k), wav, fps=fps)
        separate = None
        if shape == "crema-d":  # CREMA-D ships its audio as a separate wav
            separate = write_wav(video.with_suffix(".wav"), wav)
        refs.append(ClipRef(dataset=shape, speaker=f"s{k}", clip_id=f"{shape}-{k}",
                            video=video, audio=separate))
    return refs


def _entry_bytes(cache: Path) -> dict[str, int]:
    """Bytes of the cache entries by file name (frames.mp4, audio.npy, ...)."""
    sizes: dict[str, int] = {}
    for path in cache.glob("*/*/*"):
        sizes[path.name] = sizes.get(path.name, 0) + path.stat().st_size
    return sizes


def time_prepare(refs: list[ClipRef], cache: Path, workers: int) -> dict:
    """Prepare ``refs`` into an empty ``cache``: seconds, frames, frames/s, bytes/frame."""
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    report = prep.prepare_all(refs, cache, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    assert not report.failed, report.failed
    frames = sum(json.loads(e.read_text())["num_frames"] for e in cache.glob("*/*/meta.json"))
    sizes = _entry_bytes(cache)
    return {"workers": workers, "seconds": seconds, "frames": frames,
            "frames_per_s": frames / seconds,
            "bytes_per_frame": sum(sizes.values()) / frames,
            "bytes_per_frame_by_file": {k: round(v / frames) for k, v in sorted(sizes.items())}}


def _pin_one_core():
    if hasattr(os, "sched_setaffinity"):
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
        return before
    return None


def measure(folder: Path, copies: int | None = None) -> dict:
    """One core per shape, then all cores on GRID-shaped clips."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    results: dict = {"cores": cores, "one_core": {}, "all_cores": None}
    prep.read_clip(make_clips(folder / "warm", "grid", 1)[0])  # warm up dlib and codecs
    for shape in SHAPES:
        refs = make_clips(folder, shape, 1 if shape == "tcd-timit" else 2)
        before = _pin_one_core()
        try:
            results["one_core"][shape] = time_prepare(refs, folder / f"cache-{shape}", 1)
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)
    refs = make_clips(folder / "many", "grid", copies or 4 * cores)
    results["all_cores_one_worker"] = time_prepare(refs, folder / "cache-one", 1)
    results["all_cores"] = time_prepare(refs, folder / "cache-all", cores)
    # the pool's fixed cost (spawning workers that import dlib, hashing): the same run again,
    # every clip now cached
    start = time.perf_counter()
    again = prep.prepare_all(refs, folder / "cache-all", workers=cores, progress=False)
    overhead = time.perf_counter() - start
    assert again.reused == len(refs)
    run = results["all_cores"]
    run["fixed_overhead_s"] = overhead
    run["net_frames_per_s"] = run["frames"] / max(run["seconds"] - overhead, 1e-9)
    return results


def projection(results: dict) -> str:
    """The table: measured frames/s and bytes/frame, projected hours and GB per dataset."""
    run, one_core = results["all_cores"], results["one_core"]["grid"]
    speedup = run["net_frames_per_s"] / one_core["frames_per_s"]
    lines = [f"cores: {results['cores']}; GRID clips on all cores: {run['frames_per_s']:.1f} "
             f"frames/s ({run['net_frames_per_s']:.1f} without the pool's fixed "
             f"{run['fixed_overhead_s']:.1f} s), one unpinned worker "
             f"{results['all_cores_one_worker']['frames_per_s']:.1f}, one pinned core "
             f"{one_core['frames_per_s']:.1f}: speed-up {speedup:.2f}x",
             "bytes per frame (GRID): " + ", ".join(
                 f"{k} {v}" for k, v in one_core["bytes_per_frame_by_file"].items()),
             f"{'dataset':10s} {'fps/core':>9s} {'B/frame':>8s} {'frames':>10s} "
             f"{'h 1 core':>9s} {'h all':>7s} {'cache GB':>9s}"]
    for shape, frames in DATASET_FRAMES.items():
        one = results["one_core"][shape]
        hours_one = frames / one["frames_per_s"] / 3600
        lines.append(f"{shape:10s} {one['frames_per_s']:9.1f} {one['bytes_per_frame']:8.0f} "
                     f"{frames:10d} {hours_one:9.1f} {hours_one / speedup:7.1f} "
                     f"{frames * one['bytes_per_frame'] / 1e9:9.2f}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return measure(tmp_path_factory.mktemp("scale"))


def test_projection_table(results):
    table = projection(results)
    print("\n" + table)
    for shape, one in results["one_core"].items():
        assert one["frames_per_s"] > 0 and 500 < one["bytes_per_frame"] < 20_000, shape
    assert results["all_cores"]["frames"] == results["all_cores_one_worker"]["frames"]


def test_bench_prepare_grid_clip_one_core(benchmark, tmp_path):
    """pytest-benchmark timing of one GRID clip into an empty cache, on one core."""
    ref = make_clips(tmp_path, "grid", 1)[0]
    prep.read_clip(ref)
    rounds = iter(range(1000))
    before = _pin_one_core()
    try:
        entry = benchmark.pedantic(lambda: prep.prepare_clip(ref, tmp_path / f"c{next(rounds)}"),
                                   rounds=3, iterations=1)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    assert prep.is_complete(entry)
    if benchmark.stats is not None:
        frames = json.loads((entry / "meta.json").read_text())["num_frames"]
        benchmark.extra_info["frames_per_s"] = frames / benchmark.stats.stats.median


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else None)
        print(json.dumps(measured, indent=1))
        print(projection(measured))
