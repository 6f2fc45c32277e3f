"""ACD: average content distance (Tulyakov et al. 2018), as seed 003 uses it (SPEC section 5).

Seed 003 (Vougioukas et al., Sect. 5 "Content metrics", Tables 5 and 6) verifies the speaker's
identity with the average content distance of MoCoGAN (Tulyakov et al. 2018, Sect. 4): the
mean Euclidean distance between the face embedding of the still identity image and the
embedding of each generated frame::

    ACD = 1/|F| * sum_{t in F} || e(identity) - e(frame_t) ||_2

where ``F`` are the frames in which a face is found. Lower is better (the identity is kept).

Embedder. Seed 003 used OpenFace (Amos et al. 2016) and reports values around 1e-4; talkbench
uses dlib's face-recognition ResNet (``bench.judges.face_embedding``; 128-d, same-person pairs
about 0.6 or closer), so the numbers are on another scale and not comparable with the paper's:
the column is labelled "ACD (dlib)". The landmarks that place dlib's aligned face chip are the
clip's shared 68-point landmarks (`bench.metrics.shared.sample_landmarks`); the identity
image's landmarks are detected the same way.

Frames without a face are left out of the mean; how many were used is returned with each
clip's values (``acd_frames``, ``acd_frames_without_face``) and summed by `ACD.compute`.
No face in the identity image or in any frame raises MetricUnavailable. Per clip: the mean
over its frames; over the test set: the mean over clips. On the ground-truth row the real
frames are compared with the identity image (the clip's first real frame), leaving out the
frames identical to the identity image (the identity frame itself, whose distance 0 would pull
the real videos' ACD down; `real_video_identity_frames`).
"""

from __future__ import annotations

import numpy as np

from bench.metrics.base import Column, Metric, MetricUnavailable, Sample, check_frames
from bench.metrics.shared import SMALL_FRAME_SIDE, sample_landmarks


def identity_landmarks(sample: Sample) -> np.ndarray:
    """(68, 2) landmarks of the identity image, detected as `sample_landmarks` does for
    frames; cached in ``sample.shared.landmarks["identity"]``. MetricUnavailable if no face."""
    cache = sample.shared.landmarks
    if "identity" not in cache:
        from bench.core.landmarks import detect_landmarks

        if sample.identity is None:
            raise MetricUnavailable("no identity image for this clip")
        image = check_frames(np.asarray(sample.identity)[None], "identity image")
        side = max(image.shape[1:3])
        cache["identity"] = detect_landmarks(
            image, detect_max_side=side, upsample=1 if side < SMALL_FRAME_SIDE else 0)[0]
    points = cache["identity"]
    if not np.isfinite(points).all():
        raise MetricUnavailable("no face found in the identity image")
    return points


def sample_embeddings(sample: Sample, key: str = "pred") -> np.ndarray:
    """dlib face descriptors (T, 128) float64 of ``sample.<key>`` frames, NaN rows where no
    face; cached in ``sample.shared.face_embeddings[key]``."""
    cache = sample.shared.face_embeddings
    if key not in cache:
        from bench.judges.face_embedding import face_descriptors

        frames = check_frames(getattr(sample, key), key)
        cache[key] = face_descriptors(frames, sample_landmarks(sample, key))
    return cache[key]


def identity_embedding(sample: Sample) -> np.ndarray:
    """dlib face descriptor (128,) of the identity image (cached in
    ``sample.shared.face_embeddings["identity"]``)."""
    cache = sample.shared.face_embeddings
    if "identity" not in cache:
        from bench.judges.face_embedding import face_descriptors

        points = identity_landmarks(sample)
        image = np.asarray(sample.identity)
        cache["identity"] = face_descriptors(image[None], points[None])[0]
    return cache["identity"]


def real_video_identity_frames(sample: Sample) -> np.ndarray:
    """(T,) bool: on a real video (``pred`` equal to ``gt``, the ground-truth row), the
    frames pixel-identical to the identity image; all False on generated videos (a still
    generator's frames may equal the identity and must count)."""
    pred, gt, identity = sample.pred, sample.gt, sample.identity
    none = np.zeros(len(pred), dtype=bool)
    if gt is None or identity is None or pred.shape != np.shape(gt):
        return none
    if not (pred is gt or np.array_equal(pred, gt)):
        return none
    if pred.shape[1:] != np.shape(identity):
        return none
    return (pred == np.asarray(identity)[None]).reshape(len(pred), -1).all(axis=1)


def content_distances(identity: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """L2 distance (float64) from the identity embedding (D,) to each frame's (T, D); NaN
    stays NaN (frames without a face)."""
    diff = np.asarray(frames, dtype=np.float64) - np.asarray(identity, dtype=np.float64)
    return np.sqrt(np.einsum("td,td->t", diff, diff))


class ACD(Metric):
    """Average content distance between the identity image and the generated frames."""

    name = "acd"
    columns = (Column("acd", "ACD (dlib)", higher_is_better=False, fmt=".3f"),)
    needs = frozenset({"identity"})
    on_ground_truth = True  # the real frames against the identity image (seed 003 Table 5)
    version = "2"  # 2: the ground-truth row leaves out the identity frame itself

    def __init__(self, device=None) -> None:
        super().__init__(device)
        self._frames_used = 0
        self._frames_without_face = 0

    def score(self, sample: Sample) -> dict[str, float]:
        check_frames(sample.pred, "generated video")
        reference = identity_embedding(sample)  # raises first when the identity is unusable
        distances = content_distances(reference, sample_embeddings(sample, "pred"))
        used = np.isfinite(distances) & ~real_video_identity_frames(sample)
        if not used.any():
            raise MetricUnavailable("no face found in any frame of the generated video")
        return {"acd": float(distances[used].mean()), "acd_frames": float(used.sum()),
                "acd_frames_without_face": float((~used).sum())}

    def update(self, sample: Sample) -> dict[str, float]:
        values = super().update(sample)
        self._frames_used += int(values["acd_frames"])
        self._frames_without_face += int(values["acd_frames_without_face"])
        return values

    def compute(self) -> dict[str, float]:
        """Mean ACD over clips, and the frames used / left out (no face) over all clips."""
        out = super().compute()
        out["acd_frames"] = float(self._frames_used)
        out["acd_frames_without_face"] = float(self._frames_without_face)
        return out

    def reset(self) -> None:
        super().reset()
        self._frames_used = self._frames_without_face = 0

    def provenance(self) -> dict[str, str]:
        from bench.judges.face_embedding import describe

        return {
            **super().provenance(),
            "reference": "seed 003 Sect. 5 (Tulyakov et al. 2018): mean L2 distance between "
                         "the identity image's face embedding and each frame's; seed 003 used "
                         "OpenFace embeddings (values ~1e-4), not comparable with dlib's",
            "settings": "68 dlib landmarks per frame (shared), frames without a face left out "
                        "(counted in acd_frames_without_face); clip value = mean over frames; "
                        "dataset value = mean over clips",
            "judge": describe(),
            "device": "cpu (dlib)",
        }
