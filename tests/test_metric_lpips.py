"""LPIPS against its reference, the ``lpips`` package (0.1.4), on the same weights.

The real AlexNet weights cannot be downloaded here, so the reference is built with a random
AlexNet (``lpips.LPIPS(net="alex", pnet_rand=True)``: no download; its lin layers load from the
package's own ``weights/v0.1/alex.pth``). Its AlexNet is saved in torchvision's state-dict
format and the package's lin file is copied beside it; talkbench loads the folder through its
own path (unverified: the random AlexNet is not the official file) and must agree with the
package to 1e-5 on random and on face-like images.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from bench.judges import lpips_net
from bench.judges.lpips_net import ALEXNET_NAME, LIN_NAME, LIN_SHA256, load_lpips, lpips_frames
from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.lpips import LPIPS

lpips = pytest.importorskip("lpips")

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@dataclass
class Reference:
    model: torch.nn.Module
    folder: Path


def package_lin_file() -> Path:
    return Path(lpips.__file__).parent / "weights" / "v0.1" / LIN_NAME


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The package's LPIPS with a seeded random AlexNet, and its weights in talkbench's folder."""
    torch.manual_seed(0)
    with warnings.catch_warnings():  # torchvision's note on lpips's `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    features = {}
    for name, tensor in model.net.state_dict().items():  # "slice2.3.weight" -> "features.3..."
        _, index, kind = name.split(".")
        features[f"features.{index}.{kind}"] = tensor.clone()
    assert sorted(features) == sorted(f"features.{i}.{k}" for i in (0, 3, 6, 8, 10)
                                      for k in ("weight", "bias"))
    folder = tmp_path_factory.mktemp("lpips_weights")
    torch.save(features, folder / ALEXNET_NAME)
    shutil.copyfile(package_lin_file(), folder / LIN_NAME)
    yield Reference(model=model, folder=folder)


def face_frames(n: int, size: int = 64) -> np.ndarray:
    """``n`` shifted crops around the astronaut's face, (n, size, size, 3) uint8."""
    image = skimage.data.astronaut()  # 512x512 RGB, face near rows 30-200, columns 150-330
    return np.stack([image[40 + 5 * i:40 + 5 * i + 2 * size:2,
                           170 + 3 * i:170 + 3 * i + 2 * size:2] for i in range(n)])


def reference_lpips(model: torch.nn.Module, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The package's LPIPS per frame pair, on its own input convention (lpips.im2tensor)."""
    x0 = torch.cat([lpips.im2tensor(frame) for frame in a])
    x1 = torch.cat([lpips.im2tensor(frame) for frame in b])
    with torch.no_grad():
        return model(x0, x1).flatten().double().numpy()


def test_package_lin_file_is_the_pinned_one():
    from bench.core.weights import sha256_of_file

    assert sha256_of_file(package_lin_file()) == LIN_SHA256


def test_matches_the_lpips_package_on_random_images(reference):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    net, provenance = load_lpips(reference.folder, verify=False)
    ours = lpips_frames(net, torch.from_numpy(a).permute(0, 3, 1, 2),
                        torch.from_numpy(b).permute(0, 3, 1, 2)).double().numpy()
    expected = reference_lpips(reference.model, a, b)
    assert expected.min() > 1e-3  # a real comparison, not two zeros
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
    assert provenance["verified"].startswith("NO")


def test_matches_the_lpips_package_on_faces(reference):
    faces = face_frames(6)
    pred, gt = faces[1:], faces[:-1]  # neighbouring crops: small, realistic differences
    metric = LPIPS(device="cpu", weights=str(reference.folder), verify=False)
    value = metric.update(Sample("c", pred=pred, gt=gt))["lpips"]
    expected = reference_lpips(reference.model, pred, gt)
    assert abs(value - expected.mean()) < 1e-5
    assert metric.update(Sample("d", pred=gt, gt=gt))["lpips"] == pytest.approx(0, abs=1e-7)


def test_env_folder_and_unverified_flag(reference, monkeypatch):
    monkeypatch.setenv("TALKBENCH_LPIPS_WEIGHTS", str(reference.folder))
    monkeypatch.setenv("TALKBENCH_LPIPS_UNVERIFIED", "1")
    faces = face_frames(3)
    assert LPIPS(device="cpu").update(Sample("c", pred=faces, gt=faces[::-1]))["lpips"] > 0


def test_unavailable_without_weights_names_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("TALKBENCH_LPIPS_WEIGHTS", raising=False)
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))  # an empty weights dir
    metric = LPIPS(device="cpu")
    faces = face_frames(2)
    with pytest.raises(MetricUnavailable) as err:
        metric.update(Sample("c", pred=faces, gt=faces))
    message = str(err.value)
    assert ALEXNET_NAME in message and LIN_NAME in message and "--lpips-weights" in message
    assert str(tmp_path / "lpips") in message
    with pytest.raises(MetricUnavailable, match=ALEXNET_NAME):  # the reason is kept
        metric.update(Sample("d", pred=faces, gt=faces))


def test_wrong_sha256_is_refused(reference, tmp_path, monkeypatch):
    monkeypatch.delenv("TALKBENCH_LPIPS_UNVERIFIED", raising=False)
    faces = face_frames(2)
    with pytest.raises(MetricUnavailable, match="does not start with 7be5be79"):
        LPIPS(device="cpu", weights=str(reference.folder)).update(
            Sample("c", pred=faces, gt=faces))
    # a lin file that is not the package's: refused even when the AlexNet file passes
    folder = tmp_path / "w"
    folder.mkdir()
    shutil.copyfile(reference.folder / ALEXNET_NAME, folder / ALEXNET_NAME)
    state = torch.load(package_lin_file(), map_location="cpu", weights_only=True)
    torch.save({k: v * 2 for k, v in state.items()}, folder / LIN_NAME)
    from bench.core.weights import sha256_of_file

    monkeypatch.setattr(lpips_net, "ALEXNET_HASH_PREFIX",
                        sha256_of_file(folder / ALEXNET_NAME)[:8])
    with pytest.raises(ValueError, match=f"is not {LIN_SHA256}"):
        load_lpips(folder)


def test_wrong_format_is_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / ALEXNET_NAME)
    shutil.copyfile(package_lin_file(), tmp_path / LIN_NAME)
    with pytest.raises(ValueError, match="not torchvision's AlexNet state dict"):
        load_lpips(tmp_path, verify=False)


def test_mismatched_frames_are_unavailable(reference):
    metric = LPIPS(device="cpu", weights=str(reference.folder), verify=False)
    faces = face_frames(4)
    with pytest.raises(MetricUnavailable, match="differ in shape"):
        metric.update(Sample("c", pred=faces, gt=faces[:3]))
    with pytest.raises(MetricUnavailable, match="differ in shape"):
        metric.update(Sample("d", pred=faces, gt=faces[:, :32, :32]))
    assert metric.n_updates == 0
