"""LMD (Chen et al. 2018): M-LMD and F-LMD on a hand-computed case, the frame rules, and known
truth on the synthetic corpus (a translation by d pixels is an LMD of about d)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.lmd import LMD, inter_ocular, landmark_distances


def _face(n: int) -> np.ndarray:
    """(n, 68, 2) landmarks: points on a grid, the eyes' centres at x = 30 and x = 70."""
    points = np.stack([np.arange(68) % 10 * 10.0, np.arange(68) // 10 * 10.0], axis=1)
    points[36:42] = [[30.0, 40.0]] * 6
    points[42:48] = [[70.0, 40.0]] * 6
    return np.repeat(points[None], n, axis=0).astype(np.float32)


def _sample(fake: np.ndarray, real: np.ndarray) -> Sample:
    frames = np.zeros((len(fake), 16, 16, 3), np.uint8)
    sample = Sample("c", pred=frames, gt=frames.copy())
    sample.shared.landmarks["pred"] = fake
    sample.shared.landmarks["gt"] = real
    return sample


def test_hand_computed_mouth_and_face_distance():
    real = _face(3)
    fake = real.copy()
    fake[:, 48:68] += [3.0, 4.0]  # every mouth point 5 px away
    fake[1, 0] += [0.0, 12.0]  # one jaw point 12 px away in frame 1
    assert inter_ocular(real).tolist() == [40.0, 40.0, 40.0]
    values = LMD(device="cpu").update(_sample(fake, real))
    assert values["m_lmd"] == pytest.approx(5.0)
    # F-LMD: (3 frames * 20 points * 5 + 12) / (3 * 68)
    assert values["f_lmd"] == pytest.approx((3 * 20 * 5 + 12) / (3 * 68))
    assert values["m_lmd_iod"] == pytest.approx(5.0 / 40)
    assert values["f_lmd_iod"] == pytest.approx((3 * 20 * 5 + 12) / (3 * 68) / 40)


def test_frames_without_a_face_are_left_out_and_lengths_must_match():
    real, fake = _face(4), _face(4)
    fake[:, 48:68] += [0.0, 2.0]
    fake[0, 48:68] += [0.0, 100.0]  # frame 0 is far off ...
    real[0] = np.nan  # ... but has no real face: left out
    values = landmark_distances(fake, real)
    assert values["m_lmd"] == pytest.approx(2.0) and values["lmd_frames"] == 3
    with pytest.raises(MetricUnavailable, match="no frame has a face"):
        landmark_distances(fake[:1], real[:1])
    metric = LMD(device="cpu")
    short = Sample("s", pred=np.zeros((3, 16, 16, 3), np.uint8),
                   gt=np.zeros((4, 16, 16, 3), np.uint8))
    with pytest.raises(MetricUnavailable, match="frame by frame"):
        metric.update(short)


def test_translation_by_d_pixels_is_an_lmd_of_about_d(synth_native_root):
    """Known truth on the synthetic corpus: the real frames against the same frames moved
    right by 3 px (edge columns repeated) have every landmark ~3 px away; against
    themselves, 0."""
    pytest.importorskip("dlib")
    from bench.data.datasets import open_dataset
    from bench.data.media import read_media

    ref = open_dataset("synthetic", synth_native_root).scan().clips[0]
    real = read_media(ref.video, audio=False).frames[:12]
    moved = np.concatenate([np.repeat(real[:, :, :1], 3, axis=2), real[:, :, :-3]], axis=2)
    metric = LMD(device="cpu")
    same = metric.score(Sample("same", pred=real, gt=real.copy()))
    assert same["m_lmd"] == 0.0 and same["f_lmd"] == 0.0
    shifted = metric.score(Sample("moved", pred=moved, gt=real))
    print(f"\n3 px translation: M-LMD {shifted['m_lmd']:.3f}, F-LMD {shifted['f_lmd']:.3f}")
    assert 2.0 < shifted["f_lmd"] < 4.0 and 2.0 < shifted["m_lmd"] < 4.5
