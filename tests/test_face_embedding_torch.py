"""dlib's face ResNet evaluated in torch (`bench.judges.dlib_resnet`, issue 13).

The parser reads dlib's real model file into dlib's architecture (and refuses damaged or
different files); the chip the torch path feeds is bit for bit the chip dlib's own descriptor
call uses; the torch descriptors equal dlib's own on real faces (synthetic-corpus frames, the
astronaut photograph) within ``TOLERANCE`` per component, and ACD with them equals ACD from
dlib's per-frame calls; frames without a face stay NaN rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

pytest.importorskip("dlib")

from bench.core import dlib_models  # noqa: E402
from bench.core.landmarks import detect_landmarks  # noqa: E402
from bench.judges import dlib_resnet  # noqa: E402
from bench.judges.face_embedding import (  # noqa: E402
    TOLERANCE,
    describe,
    face_chips,
    face_descriptor,
    face_descriptors,
)
from bench.metrics.acd import ACD  # noqa: E402
from bench.metrics.base import Sample  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread, as each scoring worker runs (on a shared 2-core box two threads can
    be 10x slower when the other core is busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    try:
        return dlib_models.face_recognition_path().read_bytes()
    except dlib_models.ModelMissing as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def faces(synth_native_root, model_bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, landmarks) of three frames of two synthetic speakers (aligned-crop size) and of
    the astronaut photograph (512x512)."""
    from bench.data.datasets import open_dataset
    from bench.data.media import read_media

    clips = open_dataset("synthetic", synth_native_root).scan().clips[:3:2]
    out = []
    for ref in clips:
        group = read_media(ref.video, audio=False).frames[::20][:3]
        points = detect_landmarks(group, detect_max_side=max(group.shape[1:3]), upsample=1)
        out += list(zip(group, points, strict=True))
    photo = skimage.data.astronaut()
    out.append((photo, detect_landmarks(photo[None], detect_max_side=512)[0]))
    out = [(f, p) for f, p in out if np.isfinite(p).all()]
    assert len(out) >= 5
    return out


@pytest.fixture(scope="module")
def reference(faces) -> np.ndarray:
    """dlib's own descriptors, one single-frame call per face."""
    return np.stack([face_descriptor(f, p) for f, p in faces])


def test_reader_finds_dlibs_architecture(model_bytes):
    net = dlib_resnet.read_network(model_bytes)
    kinds = [layer.spec.kind for layer in net.layers]
    assert len(kinds) == 130 and kinds[:4] == ["con", "affine", "relu", "max_pool"]
    assert kinds.count("affine") == 29 and kinds[-2:] == ["avg_pool", "fc"]
    assert kinds.count("add_prev") == 14  # one per residual block
    convs = net.convolutions
    first = convs[0]
    assert first.weight.shape == (32, 3, 7, 7) and first.bias.shape == (32,)
    assert (first.spec.stride, first.spec.padding) == (2, 0)
    assert [c.weight.shape[0] for c in convs[1:]] == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 8
    assert [c.weight.shape[1] for c in convs[1:]] == \
        [32] * 7 + [64] * 8 + [128] * 6 + [256] * 7  # the first of each level widens
    down = [c.spec.padding for c in convs[1:] if c.spec.stride == 2]
    assert down == [0, 0, 0, 0]  # one stride-2 3x3 per ares_down, unpadded; the rest pad 1
    assert all(c.spec.padding == 1 for c in convs[1:] if c.spec.stride == 1)
    fc = net.layers[-1].weight
    assert fc.shape == (256, 128) and fc.dtype == np.float32
    # the input layer's means, as dnn_face_recognition_ex.cpp's training set them
    np.testing.assert_allclose(net.mean, (122.782, 117.001, 104.298), atol=1e-5)
    assert net.loss == "loss_metric_2"
    assert net.margin == pytest.approx(0.04) and net.distance_threshold == pytest.approx(0.6)
    assert net.parameter_count == 5_614_592
    # the weights are real (a trained net), not zeros or garbage
    assert all(np.isfinite(c.weight).all() and 0 < np.abs(c.weight).max() < 100 for c in convs)


def test_a_damaged_or_different_file_is_refused(model_bytes):
    with pytest.raises(dlib_resnet.FormatError, match="file ends"):
        dlib_resnet.read_network(model_bytes[: len(model_bytes) // 2])
    with pytest.raises(dlib_resnet.FormatError, match="bytes after the network"):
        dlib_resnet.read_network(model_bytes + b"\x00")
    with pytest.raises(dlib_resnet.FormatError):
        dlib_resnet.read_network(b"not a model")
    # the stem convolution's stride (2 -> 3): its fields are the string "con_4" (7 bytes),
    # the params tensor (version 2 and dims 4736, 1, 1, 1: 11 bytes, then 4736 float32), then
    # the integers filters, nr, nc, stride_y (each a control byte and one byte)
    start = model_bytes.index(b"\x01\x05con_4")
    tensor_end = start + 7 + 11 + 4 * (32 * 3 * 7 * 7 + 32)
    fields = model_bytes[tensor_end:tensor_end + 8]
    assert fields == b"\x01\x20\x01\x07\x01\x07\x01\x02"
    changed = bytearray(model_bytes)
    changed[tensor_end + 7] = 3
    with pytest.raises(dlib_resnet.FormatError, match="convolution"):
        dlib_resnet.read_network(bytes(changed))


def test_add_prev_zero_pads_like_dlib():
    """dlib's add_prev on different shapes: the larger size in every dimension, each input
    zero-padded at the end (bottom, right, last channels)."""
    a = torch.arange(1, 10, dtype=torch.float32).view(1, 1, 3, 3)
    b = torch.full((1, 2, 4, 4), 10.0)
    out = dlib_resnet._add_prev(a, b)
    expected = torch.full((1, 2, 4, 4), 10.0)
    expected[0, 0, :3, :3] += torch.arange(1, 10, dtype=torch.float32).view(3, 3)
    assert torch.equal(out, expected)
    assert torch.equal(dlib_resnet._add_prev(b, a), expected)


def test_the_chip_is_the_one_dlibs_descriptor_uses(faces):
    """dlib's descriptor of the chip `face_chips` cuts (its aligned-chip overload) equals its
    descriptor from the image and the detection bit for bit: the torch path sees dlib's
    chip."""
    model = dlib_models.face_recognition_model()
    for frame, points in faces[-2:]:
        chip = face_chips([frame], points[None])[0]
        assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
        from_chip = np.array(model.compute_face_descriptor(chip))
        assert np.array_equal(from_chip, face_descriptor(frame, points))


def test_torch_descriptors_equal_dlibs_own(faces, reference):
    frames = [f for f, _ in faces]
    points = np.stack([p for _, p in faces])
    got = face_descriptors(frames, points, device="cpu")
    assert np.abs(got - reference).max() < TOLERANCE  # measured 2-5e-7
    assert "backend torch" in describe() and "on cpu" in describe()
    # batches of two give the same numbers
    np.testing.assert_allclose(face_descriptors(frames, points, batch=2, device="cpu"), got,
                               rtol=0, atol=TOLERANCE)
    assert np.abs(face_descriptors(frames, points, backend="dlib") - reference).max() < 1e-6
    assert "backend dlib" in describe()
    # a real face's descriptor has norm ~1.4 here; distances keep dlib's scale
    assert 0.5 < np.linalg.norm(reference[0]) < 2
    # two speakers: the descriptors separate them as dlib's do
    between = np.linalg.norm(got[0] - got[3])
    assert between == pytest.approx(np.linalg.norm(reference[0] - reference[3]), abs=1e-6)


def test_acd_with_torch_equals_acd_from_dlibs_per_frame_calls(faces, reference):
    frames = np.stack([f for f, _ in faces[:3]])
    identity = faces[3][0]
    sample = Sample("c", pred=frames, identity=identity)
    value = ACD(device="cpu").score(sample)["acd"]
    # the metric's own landmarks (detected, then tracked) place the chips; use the same ones
    points = sample.shared.landmarks["pred"]
    loop = np.stack([face_descriptor(f, p) for f, p in zip(frames, points, strict=True)])
    ident = face_descriptor(identity, sample.shared.landmarks["identity"])
    expected = np.mean(np.linalg.norm(loop - ident, axis=1))
    assert value > 0.3  # another speaker
    assert abs(value - expected) < 1e-6  # measured ~1e-7


def test_rows_without_a_face_stay_nan_and_bad_backends_are_refused(faces):
    frames = [f for f, _ in faces[:3]]
    points = np.stack([p for _, p in faces[:3]])
    points[1] = np.nan
    got = face_descriptors(frames, points)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    points[:] = np.nan
    assert np.isnan(face_descriptors(frames, points)).all()
    with pytest.raises(ValueError, match="backend"):
        face_descriptors(frames, points, backend="other")


def test_the_float64_network_a_gpu_runs_equals_dlibs_own(faces, reference):
    """On a GPU the network runs in float64 (`dlib_resnet.default_dtype`, no TF32); the same
    float64 network on the CPU equals dlib's float32 descriptors within the tolerance too."""
    assert dlib_resnet.default_dtype("cuda") == torch.float64
    assert dlib_resnet.default_dtype("cpu") == torch.float32
    net = dlib_resnet.network(str(dlib_models.face_recognition_path()), "cpu", torch.float64)
    chips = face_chips([f for f, _ in faces[-2:]], np.stack([p for _, p in faces[-2:]]))
    with torch.inference_mode():
        got = net(torch.from_numpy(chips).permute(0, 3, 1, 2))
    assert got.dtype == torch.float64
    assert np.abs(got.numpy() - reference[-2:]).max() < TOLERANCE


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_descriptors_equal_dlibs_own(faces, reference):
    """On a GPU too (float64 there: torch's cuDNN would otherwise run float32 in TF32)."""
    got = face_descriptors([f for f, _ in faces], np.stack([p for _, p in faces]),
                           device="cuda")
    assert np.abs(got - reference).max() < TOLERANCE
    assert "on cuda" in describe()
