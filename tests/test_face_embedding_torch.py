"""dlib's face ResNet evaluated in torch (`bench.judges.dlib_resnet`, issue 13): the reader
finds dlib's architecture in the real model file, and the torch descriptors equal dlib's own
on real faces, faces without a landmark row stay NaN, and a damaged file is refused."""

from __future__ import annotations

import re

import numpy as np
import pytest
import skimage.data

from bench.core import dlib_models
from bench.core.landmarks import detect_landmarks
from bench.judges import dlib_resnet
from bench.judges.face_embedding import face_descriptor, face_descriptors

TOLERANCE = 2e-6
"""Per component; measured 3-4e-7 (float32 in both, summed in another order)."""


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    try:
        return dlib_models.face_recognition_path().read_bytes()
    except dlib_models.ModelMissing as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def faces(synth_native_root) -> tuple[np.ndarray, np.ndarray]:
    """Frames of two synthetic speakers (aligned-crop size) and the astronaut photograph at
    two scales, with their landmarks."""
    from bench.data.datasets import open_dataset
    from bench.data.media import read_media

    clips = open_dataset("synthetic", synth_native_root).scan().clips[:2]
    frames = [read_media(ref.video, audio=False).frames[::20][:3] for ref in clips]
    out = []
    for group in frames:
        points = detect_landmarks(group, detect_max_side=max(group.shape[1:3]), upsample=1)
        out += [(f, p) for f, p in zip(group, points, strict=True)]
    photo = skimage.data.astronaut()
    points = detect_landmarks(photo[None], detect_max_side=max(photo.shape[:2]))[0]
    out.append((photo, points))
    return [(f, p) for f, p in out if np.isfinite(p).all()]


def test_reader_finds_dlibs_architecture(model_bytes):
    convs, affines, fc = dlib_resnet.read_layers(model_bytes)
    assert len(convs) == len(affines) == 29 and fc.shape == (256, 128)
    first = convs[0]
    assert first.weight.shape == (32, 3, 7, 7) and first.stride == 2 and first.padding == 0
    widths = [c.weight.shape[0] for c in convs[1:]]
    assert widths == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 6 + [256] * 2
    strides = [c.stride for c in convs[1:]]
    assert strides.count(2) == 4  # the first convolution of each down block
    assert all(g.shape == b.shape == (c.weight.shape[0],)
               for c, (g, b) in zip(convs, affines, strict=True))


def test_torch_descriptors_equal_dlibs_own(faces):
    frames = [f for f, _ in faces]
    points = np.stack([p for _, p in faces])
    assert len(frames) >= 5
    got = face_descriptors(frames, points)
    reference = np.stack([face_descriptor(f, p) for f, p in faces])
    assert np.abs(got - reference).max() < TOLERANCE
    assert np.abs(face_descriptors(frames, points, backend="dlib") - reference).max() < 1e-6
    # a real face's descriptor has norm ~1; distances keep dlib's scale
    assert 0.5 < np.linalg.norm(reference[0]) < 2


def test_rows_without_a_face_stay_nan_and_bad_backends_are_refused(faces):
    frames = [f for f, _ in faces[:3]]
    points = np.stack([p for _, p in faces[:3]])
    points[1] = np.nan
    got = face_descriptors(frames, points)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    with pytest.raises(ValueError, match="backend"):
        face_descriptors(frames, np.stack([p for _, p in faces[:3]]), backend="other")


def test_a_file_that_is_not_the_model_is_refused(model_bytes):
    with pytest.raises(dlib_resnet.FormatError):  # cut in the middle of a tensor
        dlib_resnet.read_layers(model_bytes[: len(model_bytes) // 2])
    sixth = [m.start() for m in re.finditer(rb"\x01\x05con_4", model_bytes)][5]
    with pytest.raises(dlib_resnet.FormatError, match="found 5 convolutions"):
        dlib_resnet.read_layers(model_bytes[:sixth])  # whole layers, but only five of them
    with pytest.raises(dlib_resnet.FormatError):
        dlib_resnet.read_layers(b"not a model")
