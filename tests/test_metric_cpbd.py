"""CPBD against its reference, the PyPI package ``cpbd`` 1.0.7 (SPEC section 5: 1e-3).

The package cannot be imported with current SciPy: ``cpbd/compute.py`` does
``from scipy.ndimage import imread`` (removed in SciPy 1.2; only its command line uses it).
:func:`import_cpbd` inserts a stand-in ``imread`` for the duration of the import; this shim
lives in the tests only.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.feature import canny

from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.cpbd import (
    CPBD,
    canny_edges,
    cpbd_frames,
    cpbd_gray,
    edge_widths,
    rgb_to_gray,
    sobel_edges,
)

TOLERANCE = 1e-3


def import_cpbd() -> types.SimpleNamespace:
    """Import the reference package with a stand-in for the removed ``scipy.ndimage.imread``.

    Returns ``compute`` (the metric), ``marziliano_method`` (edge widths) and ``sobel``.
    """
    added = not hasattr(scipy.ndimage, "imread")
    if added:
        def _imread_removed(*args: object, **kwargs: object) -> None:
            raise NotImplementedError("scipy.ndimage.imread was removed in SciPy 1.2")

        scipy.ndimage.imread = _imread_removed
    try:
        import cpbd
        from cpbd.compute import marziliano_method
        from cpbd.octave import sobel
    except ImportError as err:
        pytest.skip(f"reference package cpbd not importable: {err}")
    finally:
        if added:
            del scipy.ndimage.imread
    return types.SimpleNamespace(compute=cpbd.compute, marziliano_method=marziliano_method,
                                 sobel=sobel)


@pytest.fixture(scope="module")
def ref() -> types.SimpleNamespace:
    return import_cpbd()


def pil_gray(rgb: np.ndarray) -> np.ndarray:
    """What the package's own command line feeds it: ``imread(path, mode='L')`` (Pillow)."""
    return np.asarray(Image.fromarray(rgb).convert("L"))


def natural_grays() -> dict[str, np.ndarray]:
    return {
        "astronaut": pil_gray(skimage.data.astronaut()),
        "camera": skimage.data.camera(),
        "chelsea": pil_gray(skimage.data.chelsea()),
        "coffee": pil_gray(skimage.data.coffee()),
    }


def blurred(gray: np.ndarray, sigma: float) -> np.ndarray:
    return np.round(gaussian_filter(gray.astype(np.float64), sigma)).clip(0, 255).astype(np.uint8)


def reference_images() -> list[tuple[str, np.ndarray]]:
    """Crops of 128x128 up to 360x288, blurred versions, random textures (uint8 grey)."""
    rng = np.random.default_rng(1)
    out = []
    for name, gray in natural_grays().items():
        out.append((f"{name} 128x128", gray[60:188, 100:228]))
        out.append((f"{name} 360x288", gray[20:308, 30:390]))
        out.append((f"{name} 200x150 blur1", blurred(gray[100:250, 80:280], 1.0)))
        out.append((f"{name} 256x256 blur2", blurred(gray[:256, :256], 2.0)))
    noise = rng.integers(0, 256, (160, 192), dtype=np.uint8)
    out.append(("uniform noise 192x160", noise))
    out.append(("smooth noise 256x256",
                blurred(rng.integers(0, 256, (256, 256)).astype(np.uint8), 3.0)))
    stripes = ((np.arange(128)[None, :] // 6) % 2 * 200 + 20).repeat(128, 0).astype(np.uint8)
    out.append(("stripes 128x128", stripes))
    return out


# ---------------------------------------------------------------------------------------------
# Against the package


def test_cpbd_matches_reference_uint8(ref: types.SimpleNamespace) -> None:
    diffs = {}
    for name, gray in reference_images():
        expected = ref.compute(gray)
        got = cpbd_gray(gray, device="cpu")[0]
        diffs[name] = abs(got - expected)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOLERANCE, f"{worst}: {diffs[worst]}"


def test_cpbd_matches_reference_float01(ref: types.SimpleNamespace) -> None:
    """The package's other input route: the same frame as float in [0, 1]."""
    for name, gray in reference_images()[::3]:
        scaled = gray.astype(np.float64) / 255.0
        assert abs(cpbd_gray(scaled, device="cpu")[0] - ref.compute(scaled)) <= TOLERANCE, name


def test_uint8_and_float_routes_differ(ref: types.SimpleNamespace) -> None:
    """Why the input scale must be fixed: the package gives different numbers for the two."""
    gray = natural_grays()["astronaut"][20:308, 30:390]
    as_uint8 = ref.compute(gray)
    as_float = ref.compute(gray.astype(np.float64) / 255.0)
    assert abs(as_uint8 - as_float) > 0.1
    assert cpbd_gray(gray)[0] == pytest.approx(as_uint8, abs=TOLERANCE)


def test_rgb_frames_match_reference_on_pillow_gray(ref: types.SimpleNamespace) -> None:
    rgb = skimage.data.astronaut()
    frames = np.stack([rgb[i * 40:i * 40 + 128, i * 30:i * 30 + 160] for i in range(4)])
    got = cpbd_frames(frames, device="cpu")
    expected = [ref.compute(pil_gray(frame)) for frame in frames]
    assert got.dtype == np.float64 and got.shape == (4,)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)


def test_gray_is_pillow_convert_l() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    gray = rgb_to_gray(torch.from_numpy(rgb).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_array_equal(gray, np.stack([pil_gray(f) for f in rgb]))


# ---------------------------------------------------------------------------------------------
# The building blocks, exactly


@pytest.mark.parametrize("scale", [1.0, 1 / 255.0])
def test_canny_equals_skimage(scale: float) -> None:
    for name, gray in natural_grays().items():
        image = gray[:200, :260].astype(np.float64) * scale
        got = canny_edges(torch.from_numpy(image)[None])[0].numpy()
        np.testing.assert_array_equal(got, canny(image), err_msg=name)


def test_sobel_edges_and_widths_equal_package(ref: types.SimpleNamespace) -> None:
    for name, gray in natural_grays().items():
        image = gray[100:196, 150:278].astype(np.float64)
        tensor = torch.from_numpy(image)[None]
        edges = ref.sobel(image)
        np.testing.assert_array_equal(sobel_edges(tensor)[0].numpy(), edges, err_msg=name)
        widths = ref.marziliano_method(edges, image)
        got = edge_widths(tensor, sobel_edges(tensor))[0].numpy()
        np.testing.assert_array_equal(got, widths, err_msg=name)


# ---------------------------------------------------------------------------------------------
# The metric class


def test_class_is_mean_over_frames() -> None:
    rgb = skimage.data.chelsea()
    frames = np.stack([rgb[i * 10:i * 10 + 128, i * 20:i * 20 + 128] for i in range(5)])
    metric = CPBD(device="cpu")
    row = metric.update(Sample(clip_id="a", pred=frames))
    assert row["cpbd"] == pytest.approx(float(np.mean(cpbd_frames(frames))), abs=1e-12)
    assert metric.compute()["cpbd"] == pytest.approx(row["cpbd"])
    assert CPBD.on_ground_truth and CPBD.columns[0].higher_is_better


def test_sharper_scores_higher() -> None:
    gray = natural_grays()["coffee"][:256, :256]
    sharp = cpbd_gray(gray)[0]
    soft = cpbd_gray(blurred(gray, 2.0))[0]
    assert sharp > soft + 0.1


def test_small_frames_are_unavailable(ref: types.SimpleNamespace) -> None:
    frames = np.full((3, 48, 96, 3), 128, dtype=np.uint8)
    assert ref.compute(frames[0, :, :, 0]) == 0.0  # the package: a silent 0.0
    with pytest.raises(MetricUnavailable, match="64x64"):
        CPBD(device="cpu").update(Sample(clip_id="small", pred=frames))


def test_bad_input_is_unavailable() -> None:
    with pytest.raises(MetricUnavailable):
        CPBD(device="cpu").update(Sample(clip_id="x", pred=np.zeros((0, 64, 64, 3), np.uint8)))
    with pytest.raises(MetricUnavailable):
        CPBD(device="cpu").update(Sample(clip_id="x", pred=np.zeros((2, 64, 64), np.uint8)))


def test_flat_frame_scores_zero() -> None:
    assert cpbd_gray(np.full((128, 128), 90, dtype=np.uint8))[0] == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    grays = np.stack([gray[:256, :256] for gray in natural_grays().values()])
    np.testing.assert_allclose(cpbd_gray(grays, device="cuda"), cpbd_gray(grays, device="cpu"),
                               atol=TOLERANCE)
