"""LMD: landmark distance between generated and real frames (Chen et al. 2018, "Lip Movements
Generation at a Glance", Sect. 4.2).

Per clip, over the frames where both videos have a face and every point ``p`` of the set
``P``::

    LMD = 1 / (T |P|) * sum_t sum_{p in P} || l_real(t, p) - l_fake(t, p) ||_2

with ``P`` the 20 mouth points 48-67 (**M-LMD**, the lip-sync figure) or all 68 points
(**F-LMD**, the whole face: pose and expression). The landmarks are the clip's shared dlib
68-point pass (`bench.metrics.shared.sample_landmarks`) on the harness's aligned face crops,
so the distances are in pixels of the aligned crop (the ``m_lmd``/``f_lmd`` columns); divided
frame by frame by the real frame's inter-ocular distance (between the eye centres, the means
of points 36-41 and 42-47) they are size-free (``m_lmd_iod``/``f_lmd_iod``, detail columns).
Generated and real videos are compared frame by frame and must have the same length. Per
clip: the mean over its frames; over the test set: the mean over clips. The real video
against itself is 0 by construction, so there is no ground-truth row.
"""

from __future__ import annotations

import numpy as np

from bench.metrics.base import Column, Metric, MetricUnavailable, Sample, check_frames
from bench.metrics.shared import sample_landmarks

MOUTH = slice(48, 68)
"""The 20 mouth points of the 68-point layout (outer lip 48-59, inner lip 60-67)."""

LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """(T,) distance between the eye centres of (T, 68, 2) landmarks."""
    return np.linalg.norm(landmarks[:, LEFT_EYE].mean(axis=1)
                          - landmarks[:, RIGHT_EYE].mean(axis=1), axis=1)


def landmark_distances(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """M-LMD and F-LMD of two (T, 68, 2) landmark sequences (NaN rows: no face), in pixels
    and per inter-ocular distance, over the frames with a face on both sides, and how many
    frames that was. MetricUnavailable when there is none."""
    fake, real = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    both = np.isfinite(fake).all(axis=(1, 2)) & np.isfinite(real).all(axis=(1, 2))
    if not both.any():
        raise MetricUnavailable("no frame has a face in both the generated and the real video")
    distance = np.linalg.norm(fake[both] - real[both], axis=2)  # (T', 68)
    iod = inter_ocular(real[both])[:, None]
    return {"m_lmd": float(distance[:, MOUTH].mean()), "f_lmd": float(distance.mean()),
            "m_lmd_iod": float((distance[:, MOUTH] / iod).mean()),
            "f_lmd_iod": float((distance / iod).mean()), "lmd_frames": float(both.sum())}


class LMD(Metric):
    """Mouth and face landmark distance of the generated frames to the real ones."""

    name = "lmd"
    columns = (
        Column("m_lmd", "M-LMD (px)", higher_is_better=False, fmt=".2f"),
        Column("f_lmd", "F-LMD (px)", higher_is_better=False, fmt=".2f"),
        Column("m_lmd_iod", "M-LMD / IOD", higher_is_better=False, fmt=".4f", detail=True),
        Column("f_lmd_iod", "F-LMD / IOD", higher_is_better=False, fmt=".4f", detail=True),
    )
    needs = frozenset({"gt"})
    on_ground_truth = False  # the real video against itself is 0
    version = "1"

    def score(self, sample: Sample) -> dict[str, float]:
        pred = check_frames(sample.pred, "generated video")
        gt = check_frames(sample.gt, "ground-truth video")
        if pred.shape[0] != gt.shape[0]:
            raise MetricUnavailable(f"generated video has {pred.shape[0]} frames and the "
                                    f"ground truth {gt.shape[0]}; LMD compares frame by frame")
        if pred.shape[1:3] != gt.shape[1:3]:
            raise MetricUnavailable(f"generated frames are {pred.shape[2]}x{pred.shape[1]} "
                                    f"and real ones {gt.shape[2]}x{gt.shape[1]}; LMD is in "
                                    f"pixels of one aligned crop")
        return landmark_distances(sample_landmarks(sample, "pred"),
                                  sample_landmarks(sample, "gt"))

    def provenance(self) -> dict[str, str]:
        return {
            **super().provenance(),
            "reference": "Chen et al. 2018 (Lip Movements Generation at a Glance) Sect. 4.2: "
                         "mean L2 distance of generated to real landmarks, mouth points 48-67 "
                         "(M-LMD) and all 68 (F-LMD)",
            "settings": "dlib 68 landmarks of the shared pass on the aligned crops; pixels of "
                        "the crop, and per real inter-ocular distance (detail); frames without "
                        "a face on either side left out; clip = mean over frames, test set = "
                        "mean over clips",
        }
