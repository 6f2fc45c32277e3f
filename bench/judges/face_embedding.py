"""Face embeddings with dlib's face-recognition ResNet (128-d), from 68-point landmarks.

The network is dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet-29 trained on
about 3 million faces for face verification; two faces of the same person are about 0.6 or
closer). dlib computes a descriptor from an image and a ``full_object_detection`` (the
landmarks of one face): it cuts a 150x150 chip aligned on the landmarks (padding 0.25) and
runs the network on it. ``face_descriptors`` builds the detections from landmarks the harness
already has (``bench.metrics.shared.sample_landmarks``), so no second face search is needed.

By default (``backend="torch"``) dlib still cuts the chips (``dlib.get_face_chip``, the very
chip ``compute_face_descriptor`` uses: both call ``get_face_chip_details(face, 150, padding)``
and ``extract_image_chip``), and the network runs in torch on batches of chips with the weights
parsed from the same file (`bench.judges.dlib_resnet`), on CUDA when present: on one CPU core
a clip of 75 aligned 128x128 frames takes 0.14 s instead of 4.3 s through dlib's per-frame
calls (~30x; tests/benchmarks/test_bench_acd.py). The torch descriptors equal dlib's to within
``TOLERANCE`` per component (measured <= 5.4e-7 over 340 faces; both float32, summed in
another order). ``backend="dlib"`` sends the frames through dlib's batched overload
``compute_face_descriptor(list_of_images, list_of_detections)`` instead; `face_descriptor` is
dlib's single-frame call, the per-frame reference.

Threads: the torch path uses torch's intra-op threads as the caller set them (the scoring
pool gives each worker process ``cores // workers``, see `bench.stages.workers`); dlib's chip
cutting runs on one thread. One thread is the right setting on a shared box: on this project's
2-core machine, busy with other work, two torch threads ran the clip above 5-25x slower than
one (each parallel region waits for a thread the scheduler has parked).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

from bench.core import dlib_models

EMBEDDING_DIM = 128
BATCH = 32
"""Frames per dlib call / chips per torch forward: bounds what is held at once (a chip's
first activations are 32x72x72 float32, 0.66 MB)."""

CHIP_PADDING = 0.25
"""dlib's default padding around the aligned face chip (as ``face_recognition`` uses it)."""

BACKENDS = ("torch", "dlib")
DEFAULT_BACKEND = "torch"

TOLERANCE = 2e-6
"""Largest difference per component allowed between the torch and dlib descriptors (the tests
check it); measured up to 5.4e-7 on the CPU over 340 synthetic-corpus faces, ACD values within
3e-7 of those from dlib's descriptors."""

_last_run: dict[str, str] = {}
"""Backend and device of this process's last `face_descriptors` call (for `describe`)."""


def full_object_detection(points: np.ndarray):
    """A dlib ``full_object_detection`` for one face from its (68, 2) landmarks (x, y).

    dlib points are integers: coordinates are rounded. The rectangle is the landmarks'
    bounding box (dlib's chip alignment uses only the parts).
    """
    dlib = dlib_models.import_dlib()
    pts = np.rint(np.asarray(points, dtype=np.float64)).astype(np.int64)
    left, top = pts.min(axis=0)
    right, bottom = pts.max(axis=0)
    rect = dlib.rectangle(int(left), int(top), int(right), int(bottom))
    return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])


def _as_image(frame: np.ndarray) -> np.ndarray:
    image = np.asarray(frame)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB images, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def resolve_device(device: str | None = None) -> str:
    """The torch device the network runs on: ``device``, or CUDA when present, else the CPU."""
    if device is not None:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def face_descriptors(frames: np.ndarray | Sequence[np.ndarray], landmarks: np.ndarray,
                     batch: int = BATCH, backend: str = DEFAULT_BACKEND,
                     device: str | None = None) -> np.ndarray:
    """128-d dlib descriptors (N, 128) float64 of the face in each frame.

    ``frames``: (N, H, W, 3) uint8 RGB (or a sequence of such images, sizes may differ);
    ``landmarks``: (N, 68, 2) (x, y) in each frame's pixels, NaN rows where there is no face.
    Rows without a face are NaN in the output. ``backend``: ``"torch"`` (default) cuts each
    face chip with dlib and runs dlib's network in torch (`bench.judges.dlib_resnet`, the same
    weights file) on ``device`` (`resolve_device`: CUDA when present), ``"dlib"`` runs dlib's
    own network. Frames go through ``batch`` at a time; a frame identical to an earlier one
    (pixels and rounded landmarks, which are all dlib sees) reuses its descriptor instead of
    running the network again.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {lm.shape}")
    if len(frames) != lm.shape[0]:
        raise ValueError(f"{len(frames)} frames but {lm.shape[0]} landmark rows")
    out = np.full((lm.shape[0], EMBEDDING_DIM), np.nan, dtype=np.float64)
    found = np.flatnonzero(np.isfinite(lm).all(axis=(1, 2)))
    if found.size == 0:
        return out
    # A frame identical to an earlier one (same pixels, same landmarks) has the same
    # descriptor: compute it once (a still image's video is one face repeated).
    first_of: dict[bytes, int] = {}
    repeats: list[tuple[int, int]] = []
    unique: list[int] = []
    for i in found:
        digest = hashlib.blake2b(_as_image(frames[i]).tobytes(), digest_size=16)
        digest.update(np.rint(lm[i]).astype(np.int64).tobytes())
        key = digest.digest()
        if key in first_of:
            repeats.append((int(i), first_of[key]))
        else:
            first_of[key] = int(i)
            unique.append(int(i))
    if backend == "torch":
        device = resolve_device(device)
        for start in range(0, len(unique), batch):
            idx = unique[start:start + batch]
            out[idx] = _torch_descriptors([frames[i] for i in idx], lm[idx], device)
    else:
        device = "cpu"
        for start in range(0, len(unique), batch):
            idx = unique[start:start + batch]
            out[idx] = _dlib_descriptors([frames[i] for i in idx], lm[idx])
    _last_run.update(backend=backend, device=device)
    for i, source in repeats:
        out[i] = out[source]
    return out


def face_chips(frames: Sequence[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
    """(N, 150, 150, 3) uint8 chips dlib cuts for its network: ``get_face_chip`` with the
    detection built from each frame's landmarks, size 150, padding 0.25."""
    from bench.judges.dlib_resnet import CHIP_SIZE

    dlib = dlib_models.import_dlib()
    return np.stack([dlib.get_face_chip(_as_image(frame), full_object_detection(points),
                                        size=CHIP_SIZE, padding=CHIP_PADDING)
                     for frame, points in zip(frames, landmarks, strict=True)])


def _torch_descriptors(frames: Sequence[np.ndarray], landmarks: np.ndarray,
                       device: str) -> np.ndarray:
    import torch

    from bench.judges import dlib_resnet

    net = dlib_resnet.network(str(dlib_models.face_recognition_path()), device)
    chips = torch.from_numpy(face_chips(frames, landmarks))
    with torch.inference_mode():
        x = chips.to(device).permute(0, 3, 1, 2)
        return net(x).double().cpu().numpy()


def _dlib_descriptors(frames: Sequence[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
    dlib = dlib_models.import_dlib()
    model = dlib_models.face_recognition_model()
    shapes = []
    for points in landmarks:
        dets = dlib.full_object_detections()
        dets.append(full_object_detection(points))
        shapes.append(dets)
    vectors = model.compute_face_descriptor([_as_image(f) for f in frames], shapes, 0,
                                            CHIP_PADDING)
    return np.array([np.array(v[0]) for v in vectors], dtype=np.float64)


def face_descriptor(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """One frame's descriptor through dlib's single-image call (the per-frame reference)."""
    model = dlib_models.face_recognition_model()
    vector = model.compute_face_descriptor(_as_image(frame), full_object_detection(points), 0,
                                           CHIP_PADDING)
    return np.array(vector, dtype=np.float64)


@functools.cache
def model_sha256() -> str:
    """sha256 of the face-recognition model file (for provenance)."""
    digest = hashlib.sha256()
    with open(dlib_models.face_recognition_path(), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(backend: str | None = None, device: str | None = None) -> str:
    """One line naming the embedder, its weights and the backend that computes it, for
    provenance: ``backend``/``device`` as given, else those of this process's last
    `face_descriptors` call, else the defaults (torch, CUDA when present)."""
    path = dlib_models.face_recognition_path()
    backend = backend or _last_run.get("backend", DEFAULT_BACKEND)
    if backend == "torch":
        from bench.judges.dlib_resnet import default_dtype

        device = device or _last_run.get("device") or resolve_device()
        dtype = str(default_dtype(device)).removeprefix("torch.")
        network = (f"network evaluated in torch on {device} ({dtype}) from the same file "
                   f"(bench.judges.dlib_resnet; equal to dlib's within {TOLERANCE:g} per "
                   f"component)")
    else:
        network = "network evaluated by dlib (compute_face_descriptor, CPU)"
    return (f"dlib {dlib_models.import_dlib().__version__} face_recognition_model_v1 "
            f"({path.name}, sha256 {model_sha256()[:16]}), 150x150 chip aligned on the 68 "
            f"landmarks, padding {CHIP_PADDING}, no jitter; backend {backend}: {network}")
