"""ACD (average content distance, seed 003 Sect. 5) with dlib's face-recognition ResNet.

Reference: the same distances computed frame by frame through dlib's single-image
``compute_face_descriptor`` call; the synthetic corpus's speakers have distinct faces.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("dlib")

from bench.core import dlib_models  # noqa: E402
from bench.judges.face_embedding import face_descriptor, face_descriptors  # noqa: E402
from bench.metrics.acd import ACD, identity_embedding, sample_embeddings  # noqa: E402
from bench.metrics.base import MetricUnavailable, Sample  # noqa: E402
from bench.metrics.shared import sample_landmarks  # noqa: E402

FRAMES_PER_CLIP = 6


@pytest.fixture(scope="module")
def clips(synth_native_root) -> dict[str, list[np.ndarray]]:
    """speaker -> frames of each of its clips (every 8th frame, FRAMES_PER_CLIP of them)."""
    from bench.data.datasets import open_dataset
    from bench.data.media import read_media

    try:
        dlib_models.face_recognition_path()
    except dlib_models.ModelMissing as err:
        pytest.skip(str(err))
    out: dict[str, list[np.ndarray]] = {}
    for ref in open_dataset("synthetic", synth_native_root).scan().clips:
        frames = read_media(ref.video, audio=False).frames
        out.setdefault(ref.speaker, []).append(frames[::8][:FRAMES_PER_CLIP])
    return out


def test_a_frame_against_itself_is_zero(clips):
    frame = clips["spk01"][0][2]
    metric = ACD(device="cpu")
    values = metric.update(Sample("c", pred=frame[None], identity=frame))
    assert values["acd"] == 0.0
    assert values["acd_frames"] == 1 and values["acd_frames_without_face"] == 0


def test_real_video_does_not_count_the_identity_frame_against_itself(clips):
    """Ground-truth row: the real frames against the identity image, which is one of them;
    that frame (distance 0) is left out. A generated video whose frames equal the identity
    image (a still generator) still counts every frame."""
    frames = clips["spk02"][0]
    identity = frames[0]
    metric = ACD(device="cpu")
    sample = Sample("gt", pred=frames, gt=frames, identity=identity)
    real = metric.score(sample)
    embeddings, reference = sample_embeddings(sample), identity_embedding(sample)
    by_hand = np.linalg.norm(embeddings[1:] - reference, axis=1).mean()
    assert real["acd"] == pytest.approx(by_hand, abs=1e-12)
    assert real["acd_frames"] == len(frames) - 1
    all_frames = np.linalg.norm(embeddings - reference, axis=1).mean()
    assert real["acd"] > all_frames  # counting the zero would lower it
    still = np.repeat(identity[None], 4, axis=0)
    generated = metric.score(Sample("still", pred=still, gt=frames[:4], identity=identity))
    assert generated["acd_frames"] == 4 and generated["acd"] < 0.05


def test_other_speakers_are_farther_than_the_same_speaker(clips):
    identity = clips["spk01"][0][0]
    metric = ACD(device="cpu")
    same = metric.score(Sample("same", pred=clips["spk01"][1], identity=identity))["acd"]
    others = [metric.score(Sample(spk, pred=clips[spk][1], identity=identity))["acd"]
              for spk in ("spk02", "spk03", "spk04")]
    # measured: same speaker 0.23, the others 0.54-0.67 (dlib's same-person limit is ~0.6)
    assert 0.05 < same < 0.35
    assert min(others) > 0.45
    assert min(others) > same + 0.2


def test_batched_path_equals_a_per_frame_loop_of_dlib_calls(clips):
    frames = np.concatenate([clips["spk02"][0], clips["spk03"][1][:3]])
    identity = clips["spk02"][1][0]
    sample = Sample("mix", pred=frames, identity=identity)
    value = ACD(device="cpu").score(sample)["acd"]

    landmarks = sample_landmarks(sample, "pred")
    loop = np.stack([face_descriptor(f, p) for f, p in zip(frames, landmarks, strict=True)])
    np.testing.assert_allclose(sample_embeddings(sample), loop, rtol=0, atol=1e-6)
    ident = face_descriptor(identity, sample.shared.landmarks["identity"])
    np.testing.assert_allclose(identity_embedding(sample), ident, rtol=0, atol=1e-6)
    expected = np.mean([np.linalg.norm(ident - e) for e in loop])
    assert value == pytest.approx(expected, abs=1e-6)
    # batch size does not change the descriptors
    np.testing.assert_allclose(face_descriptors(frames, landmarks, batch=2), loop, atol=1e-6)


def test_repeated_frames_reuse_their_descriptor_and_equal_dlib(clips, monkeypatch):
    """A still video (one face repeated) cuts a chip and runs the network once per distinct
    frame, and every row still equals dlib's own per-frame descriptor."""
    a, b = clips["spk04"][0][0], clips["spk04"][0][3]
    points = sample_landmarks(Sample("ab", pred=np.stack([a, b])), "pred")
    frames = np.stack([a, b, a, a, b])
    landmarks = points[[0, 1, 0, 0, 1]]
    dlib = dlib_models.import_dlib()
    real = dlib.get_face_chip
    seen: list[int] = []

    def counting(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dlib, "get_face_chip", counting)
    got = face_descriptors(frames, landmarks)
    assert sum(seen) == 2  # two distinct frames
    loop = np.stack([face_descriptor(f, p) for f, p in zip(frames, landmarks, strict=True)])
    np.testing.assert_allclose(got, loop, rtol=0, atol=1e-6)
    assert np.array_equal(got[0], got[2]) and np.array_equal(got[1], got[4])


def test_frames_without_a_face_are_left_out_and_counted(clips):
    faces = clips["spk03"][0]
    blank = np.full((3, *faces.shape[1:]), 127, dtype=np.uint8)
    identity = clips["spk03"][1][0]
    metric = ACD(device="cpu")
    only_faces = metric.update(Sample("a", pred=faces, identity=identity))
    sample = Sample("b", pred=np.concatenate([faces[:2], blank, faces[2:]]), identity=identity)
    mixed = metric.update(sample)
    embeddings = sample_embeddings(sample)
    has_face = np.isfinite(embeddings).all(axis=1)
    np.testing.assert_array_equal(has_face, [True] * 2 + [False] * 3 + [True] * 4)
    distances = np.linalg.norm(embeddings[has_face] - identity_embedding(sample), axis=1)
    assert mixed["acd"] == pytest.approx(distances.mean(), abs=1e-12)
    # the faces after the gap are re-detected rather than tracked: nearly the same value
    assert mixed["acd"] == pytest.approx(only_faces["acd"], abs=0.01)
    assert mixed["acd_frames"] == len(faces) and mixed["acd_frames_without_face"] == 3
    total = metric.compute()
    assert total["acd"] == pytest.approx((only_faces["acd"] + mixed["acd"]) / 2, abs=1e-12)
    assert total["acd_frames"] == 2 * len(faces) and total["acd_frames_without_face"] == 3

    with pytest.raises(MetricUnavailable, match="no face"):
        metric.update(Sample("c", pred=blank, identity=identity))
    with pytest.raises(MetricUnavailable, match="identity image"):
        metric.update(Sample("d", pred=faces, identity=blank[0]))
    with pytest.raises(MetricUnavailable, match="identity"):
        metric.update(Sample("e", pred=faces, identity=None))
    assert metric.n_updates == 2


def test_column_and_provenance_name_the_embedder(clips):
    metric = ACD(device="cpu")
    (column,) = metric.columns
    assert column.name == "acd" and "dlib" in column.label
    assert column.higher_is_better is False
    assert ACD.on_ground_truth and "identity" in ACD.needs
    digest = hashlib.sha256(dlib_models.face_recognition_path().read_bytes()).hexdigest()
    judge = metric.provenance()["judge"]
    assert "dlib_face_recognition_resnet_model_v1.dat" in judge and digest[:16] in judge
