"""Face embeddings with dlib's face-recognition ResNet (128-d), from 68-point landmarks.

The network is dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet-29 trained on
about 3 million faces for face verification; two faces of the same person are about 0.6 or
closer). dlib computes a descriptor from an image and a ``full_object_detection`` (the
landmarks of one face): it cuts a 150x150 chip aligned on the landmarks (padding 0.25) and
runs the network on it. ``face_descriptors`` builds the detections from landmarks the harness
already has (``bench.metrics.shared.sample_landmarks``), so no second face search is needed.

By default (``backend="torch"``) dlib cuts the chips (``dlib.get_face_chip``, the chip
``compute_face_descriptor`` uses) and the network runs in torch on a batch of chips with the
weights read from the same file (`bench.judges.dlib_resnet`): about 7 times faster than dlib's
network on one CPU core, on a GPU when asked, and equal to dlib's descriptors to ~4e-7 per
component (both float32). ``backend="dlib"`` sends the frames through dlib's batched overload
``compute_face_descriptor(list_of_images, list_of_detections)`` instead (the reference).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

from bench.core import dlib_models

EMBEDDING_DIM = 128
BATCH = 32
"""Frames per dlib call: bounds the chips held at once (150x150x3 float each)."""

CHIP_PADDING = 0.25
"""dlib's default padding around the aligned face chip (as ``face_recognition`` uses it)."""


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


def face_descriptors(frames: np.ndarray | Sequence[np.ndarray], landmarks: np.ndarray,
                     batch: int = BATCH, backend: str = "torch",
                     device: str | None = None) -> np.ndarray:
    """128-d dlib descriptors (N, 128) float64 of the face in each frame.

    ``frames``: (N, H, W, 3) uint8 RGB (or a sequence of such images, sizes may differ);
    ``landmarks``: (N, 68, 2) (x, y) in each frame's pixels, NaN rows where there is no face.
    Rows without a face are NaN in the output. ``backend``: ``"torch"`` (default) cuts each
    face chip with dlib and runs dlib's network in torch (`bench.judges.dlib_resnet`, the same
    weights file, on ``device``, ~7x faster on a CPU core, equal to ~4e-7), ``"dlib"`` runs
    dlib's own network. Frames go through ``batch`` at a time; a frame
    identical to an earlier one (pixels and rounded landmarks, which are all dlib sees) reuses
    its descriptor instead of running the network again.
    """
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
    dlib = dlib_models.import_dlib()
    if backend == "torch":
        import torch

        from bench.judges import dlib_resnet

        net = dlib_resnet.load(str(dlib_models.face_recognition_path())).to(device or "cpu")
        for start in range(0, len(unique), batch):
            idx = unique[start:start + batch]
            chips = np.stack([dlib.get_face_chip(_as_image(frames[i]),
                                                 full_object_detection(lm[i]),
                                                 size=dlib_resnet.CHIP_SIZE, padding=CHIP_PADDING)
                              for i in idx])
            with torch.no_grad():
                x = torch.from_numpy(chips).permute(0, 3, 1, 2).to(net.mean.device)
                out[idx] = net(x).double().cpu().numpy()
    elif backend == "dlib":
        model = dlib_models.face_recognition_model()
        for start in range(0, len(unique), batch):
            idx = unique[start:start + batch]
            images = [_as_image(frames[i]) for i in idx]
            shapes = []
            for i in idx:
                dets = dlib.full_object_detections()
                dets.append(full_object_detection(lm[i]))
                shapes.append(dets)
            vectors = model.compute_face_descriptor(images, shapes, 0, CHIP_PADDING)
            out[idx] = np.array([np.array(v[0]) for v in vectors], dtype=np.float64)
    else:
        raise ValueError(f"backend must be 'torch' or 'dlib', got {backend!r}")
    for i, source in repeats:
        out[i] = out[source]
    return out


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


def describe() -> str:
    """One line naming the embedder and its weights, for provenance."""
    path = dlib_models.face_recognition_path()
    return (f"dlib {dlib_models.import_dlib().__version__} face_recognition_model_v1 "
            f"({path.name}, sha256 {model_sha256()[:16]}), 150x150 chip aligned on the 68 "
            f"landmarks, padding {CHIP_PADDING}, no jitter; network evaluated in torch from the "
            f"same file (bench.judges.dlib_resnet, equal to dlib's to ~4e-7)")
