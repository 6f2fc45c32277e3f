"""ACD's face embeddings: talkbench (dlib's network in torch, batched) vs per-frame dlib calls.

Run with ``pytest tests/benchmarks/test_bench_acd.py --benchmark-enable``. One clip of 75
aligned 128x128 face frames (crops of scikit-image's astronaut photograph drifting by a pixel a
frame, every frame distinct so no descriptor is reused) with their 68 landmarks; one group, so
the ratio reads off the table:

* ``dlib-per-frame``: ``compute_face_descriptor(frame, detection, 0, 0.25)`` frame by frame
  (`bench.judges.face_embedding.face_descriptor`, the reference; dlib runs on one thread);
* ``dlib-batched``: dlib's batched overload (``backend="dlib"``);
* ``talkbench-1thread`` / ``talkbench-2threads``: `face_descriptors` on the CPU (dlib cuts the
  chips, the network runs in torch, 32 chips a forward) with 1 and 2 torch threads (the
  scoring stage runs one worker process per core, one torch thread each);
* ``talkbench-cuda``: the same on CUDA (skipped without a GPU).

Each timing covers the whole call: duplicate check, dlib's chip cutting, the network, the copy
back. Without ``--benchmark-enable`` each case runs once as a test that checks the descriptors
agree with dlib's per-frame ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

pytest.importorskip("dlib")

from bench.core.landmarks import detect_landmarks  # noqa: E402
from bench.judges.face_embedding import (  # noqa: E402
    TOLERANCE,
    face_descriptor,
    face_descriptors,
)

NUM_FRAMES = 75  # the shared face clip (conftest.face_clip)


@pytest.fixture(scope="module")
def clip(face_clip) -> tuple[np.ndarray, np.ndarray]:
    """The shared face clip (every frame distinct) and its 68 landmarks."""
    landmarks = detect_landmarks(face_clip, detect_max_side=128, upsample=1)
    assert np.isfinite(landmarks).all()
    return face_clip, landmarks


def _per_frame(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    return np.stack([face_descriptor(f, p) for f, p in zip(frames, landmarks, strict=True)])


def _on(device: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda f, p: face_descriptors(f, p, device=device)


IMPLS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int | None]] = {
    "dlib-per-frame": (_per_frame, None),
    "dlib-batched": (lambda f, p: face_descriptors(f, p, backend="dlib"), None),
    "talkbench-1thread": (_on("cpu"), 1),
    "talkbench-2threads": (_on("cpu"), 2),
    "talkbench-cuda": (_on("cuda"), None),
}


@pytest.fixture(scope="module")
def reference(clip) -> np.ndarray:
    return _per_frame(*clip)


@pytest.mark.parametrize("impl,torch_threads", [(k, v[1]) for k, v in IMPLS.items()],
                         indirect=["torch_threads"], ids=list(IMPLS))
def test_bench_acd_embeddings(benchmark, impl, torch_threads, clip, reference):
    if impl.endswith("cuda") and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    frames, landmarks = clip
    func = IMPLS[impl][0]
    benchmark.group = f"acd embeddings, {NUM_FRAMES} frames 128x128"
    # warm up: weights read, threads started, and (torch) the batch shapes of the timed run
    warm = NUM_FRAMES if impl.startswith("talkbench") else 2
    func(frames[:warm], landmarks[:warm])
    out = benchmark.pedantic(func, args=(frames, landmarks), rounds=3, iterations=1)
    assert np.abs(out - reference).max() < TOLERANCE
    if benchmark.stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["frames_per_s"] = NUM_FRAMES / benchmark.stats.stats.median
        benchmark.extra_info["torch_threads"] = torch.get_num_threads()
