"""PSNR and SSIM against scikit-image, frame by frame (SPEC sections 5 and 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics import METRICS, get_metric
from bench.metrics.base import MetricUnavailable, Sample, frame_chunks, to_device_frames
from bench.metrics.psnr import PSNR, psnr_frames
from bench.metrics.ssim import SSIM, gaussian_taps, ssim_frames
from bench.registry import UnknownName

PSNR_TOL = 1e-6
SSIM_TOL = 1e-4


def sk_psnr(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # identical frames: skimage divides by zero -> inf
        return np.array([peak_signal_noise_ratio(g, p, data_range=255)
                         for p, g in zip(pred, gt, strict=True)])


def sk_ssim(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.array([
        structural_similarity(g, p, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=255, channel_axis=-1)
        for p, g in zip(pred, gt, strict=True)
    ])


def noisy_pair(rng: np.random.Generator, shape: tuple[int, ...], noise: float):
    """A smooth-ish ground truth and a noisy prediction of it."""
    t, h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 100 * np.sin(xx[None, :, :, None] / 7.0 + np.arange(t)[:, None, None, None])
    base = base * np.cos(yy[None, :, :, None] / 11.0) + rng.normal(0, 10, shape)
    gt = np.clip(base, 0, 255).astype(np.uint8)
    pred = np.clip(gt + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    return pred, gt


def cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for shape in [(3, 32, 32, 3), (2, 11, 11, 3), (2, 37, 53, 3), (2, 64, 48, 3), (1, 96, 96, 3)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = rng.integers(0, 256, shape, dtype=np.uint8)
        out.append((f"random{shape}", a, b))
    for noise in (2.0, 20.0):
        pred, gt = noisy_pair(rng, (3, 45, 61, 3), noise)
        out.append((f"structured-noise{noise}", pred, gt))
    # constant frames: one pair of different constants, one of equal constants
    const_a = np.full((2, 24, 24, 3), 40, np.uint8)
    const_b = np.full((2, 24, 24, 3), 200, np.uint8)
    out.append(("constant-different", const_a, const_b))
    # extremes: black vs white (largest possible error)
    out.append(("black-white", np.zeros((1, 16, 16, 3), np.uint8),
                np.full((1, 16, 16, 3), 255, np.uint8)))
    # a mix of identical and different frames
    pred, gt = noisy_pair(rng, (4, 40, 40, 3), 5.0)
    pred[1] = gt[1]
    out.append(("some-identical", pred, gt))
    return out


CASES = cases()
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,pred,gt", CASES, ids=IDS)
def test_psnr_frames_matches_skimage(name, pred, gt):
    ours = psnr_frames(pred, gt, device="cpu").numpy()
    ref = sk_psnr(pred, gt)
    assert ours.dtype == np.float64 and ours.shape == (len(pred),)
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    finite = np.isfinite(ref)
    assert np.abs(ours[finite] - ref[finite]).max(initial=0.0) < PSNR_TOL


@pytest.mark.parametrize("name,pred,gt", CASES, ids=IDS)
def test_ssim_frames_matches_skimage(name, pred, gt):
    ours = ssim_frames(pred, gt, device="cpu").numpy()
    ref = sk_ssim(pred, gt)
    assert ours.dtype == np.float64 and ours.shape == (len(pred),)
    assert np.abs(ours - ref).max() < SSIM_TOL


def test_ssim_is_exactly_skimage_in_float64():
    """Same math in float64: the differences are rounding only, far below the 1e-4 bar."""
    rng = np.random.default_rng(1)
    pred, gt = noisy_pair(rng, (3, 50, 70, 3), 15.0)
    assert np.abs(ssim_frames(pred, gt, device="cpu").numpy() - sk_ssim(pred, gt)).max() < 1e-12


def test_identical_and_constant_frames():
    frames = np.random.default_rng(2).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    assert torch.isinf(psnr_frames(frames, frames, device="cpu")).all()
    assert torch.allclose(ssim_frames(frames, frames, device="cpu"),
                          torch.ones(3, dtype=torch.float64), atol=1e-12)
    # two constant frames: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 40.0, 200.0, (0.01 * 255) ** 2
    const_a = np.full((1, 16, 16, 3), 40, np.uint8)
    const_b = np.full((1, 16, 16, 3), 200, np.uint8)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim_frames(const_a, const_b, device="cpu")[0]) == pytest.approx(expected,
                                                                                   abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_uniform_offset_has_known_psnr(k):
    """Every value off by +/-k: MSE = k^2, so PSNR = 20 log10(255 / k) exactly."""
    rng = np.random.default_rng(k)
    gt = rng.integers(k, 256 - k, (4, 30, 30, 3), dtype=np.uint8)
    sign = np.where(rng.random(gt.shape) < 0.5, -1, 1)
    pred = (gt.astype(np.int16) + sign * k).astype(np.uint8)
    expected = 20 * math.log10(255 / k)
    assert np.allclose(psnr_frames(pred, gt, device="cpu").numpy(), expected, atol=1e-9, rtol=0)
    assert PSNR(device="cpu").update(Sample("c", pred, gt))["psnr"] == pytest.approx(expected)


def test_gaussian_window_is_wang_et_al():
    taps = gaussian_taps()
    assert len(taps) == 11 and sum(taps) == pytest.approx(1.0)
    assert taps == pytest.approx(taps[::-1]) and max(taps) == taps[5]


def test_chunking_gives_the_same_values(monkeypatch):
    """Long clips are split into chunks; the result must not depend on the chunk size."""
    rng = np.random.default_rng(3)
    pred, gt = noisy_pair(rng, (7, 24, 24, 3), 10.0)
    whole_p, whole_s = psnr_frames(pred, gt, "cpu"), ssim_frames(pred, gt, "cpu")
    monkeypatch.setitem(__import__("bench.metrics.base").metrics.base.CHUNK_VALUES, "cpu", 1)
    assert len(frame_chunks(7, 24 * 24 * 3, torch.device("cpu"))) == 7
    assert torch.equal(psnr_frames(pred, gt, "cpu"), whole_p)
    assert torch.allclose(ssim_frames(pred, gt, "cpu"), whole_s, atol=1e-15, rtol=0)


def test_classes_update_and_compute():
    rng = np.random.default_rng(4)
    psnr, ssim = PSNR(device="cpu"), SSIM(device="cpu")
    per_clip_psnr, per_clip_ssim = [], []
    for i in range(3):
        pred, gt = noisy_pair(rng, (5, 32, 40, 3), 4.0 + 6 * i)
        pred[0] = gt[0]  # one identical frame per clip: left out of the clip's PSNR mean
        sample = Sample(f"clip{i}", pred, gt)
        row_p, row_s = psnr.update(sample), ssim.update(sample)
        assert set(row_p) == {"psnr"} and set(row_s) == {"ssim"}
        assert type(row_p["psnr"]) is float and type(row_s["ssim"]) is float
        assert row_p["psnr"] == pytest.approx(sk_psnr(pred, gt)[1:].mean(), abs=PSNR_TOL)
        assert row_s["ssim"] == pytest.approx(sk_ssim(pred, gt).mean(), abs=SSIM_TOL)
        # on the CPU both read the uint8 frames directly (OpenCV): no device copies made
        assert len(sample.shared.device_frames) == 0
        per_clip_psnr.append(row_p["psnr"])
        per_clip_ssim.append(row_s["ssim"])
    # a clip of identical frames scores inf and is counted apart, not averaged in
    same = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert psnr.update(Sample("same", same, same.copy()))["psnr"] == math.inf
    result = psnr.compute()
    assert result["psnr"] == pytest.approx(np.mean(per_clip_psnr), abs=1e-12)
    assert result["psnr_identical_clips"] == 1.0
    assert ssim.compute() == {"ssim": pytest.approx(np.mean(per_clip_ssim), abs=1e-12)}
    assert psnr.n_updates == 4
    psnr.reset()
    assert psnr.n_updates == 0 and math.isnan(psnr.compute()["psnr"])


def test_metric_attributes_and_provenance():
    for cls in (PSNR, SSIM):
        metric = cls(device="cpu")
        assert metric.needs == frozenset({"gt"}) and metric.on_ground_truth is False
        assert [c.name for c in metric.columns] == [metric.name]
        assert metric.columns[0].higher_is_better is True
        prov = metric.provenance()
        assert prov["device"] == "cpu" and prov["judge"] == "none"
        assert "skimage" in prov["reference"]
    assert get_metric("ssim").device.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("cls", [PSNR, SSIM])
def test_unavailable_reasons(cls):
    metric = cls(device="cpu")
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    cases = [
        (Sample("no-gt", frames), "no ground-truth video"),
        (Sample("len", frames, np.zeros((3, 16, 16, 3), np.uint8)), "differ in shape"),
        (Sample("size", frames, np.zeros((2, 16, 20, 3), np.uint8)), "differ in shape"),
        (Sample("empty", frames[:0], frames[:0]), "has no frames"),
        (Sample("dtype", frames.astype(np.float32), frames), "must be uint8"),
        (Sample("gray", frames[..., 0], frames[..., 0]), r"\(T, H, W, 3\)"),
    ]
    for sample, reason in cases:
        with pytest.raises(MetricUnavailable, match=reason) as err:
            metric.update(sample)
        assert "\n" not in str(err.value)
    assert metric.n_updates == 0


def test_ssim_unavailable_for_frames_smaller_than_the_window():
    tiny = np.zeros((2, 10, 32, 3), np.uint8)
    with pytest.raises(MetricUnavailable, match="11x11"):
        SSIM(device="cpu").update(Sample("tiny", tiny, tiny))
    assert math.isinf(PSNR(device="cpu").update(Sample("tiny", tiny, tiny))["psnr"])


def test_to_device_frames_caches_one_copy():
    frames = np.random.default_rng(5).integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    frames.flags.writeable = False  # read-only input must not warn
    sample = Sample("c", frames)
    raw = to_device_frames(sample, "pred", "cpu", dtype=torch.uint8)
    assert raw.shape == (2, 3, 8, 9) and raw.dtype == torch.uint8
    assert torch.equal(raw, torch.from_numpy(frames.copy()).permute(0, 3, 1, 2))
    assert to_device_frames(sample, "pred", "cpu", dtype=torch.uint8) is raw
    as_float = to_device_frames(sample, "pred", "cpu")
    assert as_float.dtype == torch.float64 and float(as_float.max()) == float(frames.max())
    assert to_device_frames(sample, "pred", "cpu") is as_float


def test_registry_lookup_and_did_you_mean():
    assert {"psnr", "ssim"} <= set(METRICS.names())
    assert METRICS.get("psnr") is PSNR and isinstance(get_metric("ssim", "cpu"), SSIM)
    with pytest.raises(UnknownName, match="did you mean 'ssim'"):
        get_metric("sssim")
    with pytest.raises(UnknownName, match="did you mean 'psnr'"):
        get_metric("pnsr")


@pytest.mark.parametrize("shape", [(3, 128, 128, 3), (2, 288, 360, 3), (2, 11, 17, 3)])
def test_cpu_paths_equal_skimage_and_the_torch_path(shape):
    """The CPU paths (OpenCV) against scikit-image and against the torch (GPU) path, on the
    harness's crop size, GRID's frame size and the smallest frame SSIM accepts."""
    from bench.metrics.psnr import psnr_frames_cpu
    from bench.metrics.ssim import ssim_frames_cpu

    rng = np.random.default_rng(sum(shape))
    pred, gt = noisy_pair(rng, shape, 9.0)
    np.testing.assert_allclose(psnr_frames_cpu(pred, gt).numpy(), sk_psnr(pred, gt), atol=1e-9)
    np.testing.assert_allclose(ssim_frames_cpu(pred, gt).numpy(), sk_ssim(pred, gt), atol=1e-12)
    np.testing.assert_allclose(ssim_frames_cpu(pred, gt).numpy(),
                               ssim_frames(pred, gt, "cpu").numpy(), atol=1e-12)
    same = psnr_frames_cpu(gt, gt).numpy()
    assert np.isinf(same).all() and (same > 0).all()
