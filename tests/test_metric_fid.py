"""FID against its reference, ``pytorch-fid`` 0.3.0, with the same weights (SPEC section 5).

The real weights (``pt_inception-2015-12-05-6726825d.pth``) cannot be downloaded here, so the
tests build pytorch-fid's own network with seeded random weights: ``fid_inception_v3()`` is
called with its ``load_state_dict_from_url`` replaced by a function that returns a random state
dict of the same architecture. That state dict is saved in pytorch-fid's file format and loaded
into talkbench's network, which must then agree with pytorch-fid on the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from PIL import Image

from bench import EMOTIONS
from bench.judges.inception import (
    FEATURE_DIM,
    WEIGHTS_NAME,
    FIDInceptionV3,
    load_fid_inception,
    pool3_features,
)
from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.fid import FID, FrechetStats, frechet_distance

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
pytorch_fid_score = pytest.importorskip("pytorch_fid.fid_score")


def random_reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random state dict of pytorch-fid's FID Inception architecture.

    Built from pytorch-fid's own blocks on torchvision's Inception3, as ``fid_inception_v3``
    builds it. Convolutions get He-normal weights and batch norms random affine parameters and
    running statistics, so activations stay of order one through the 94 layers.
    """
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None,
                                          init_weights=False)
    ref = pytorch_fid_inception
    net.Mixed_5b = ref.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = ref.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = ref.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = ref.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = ref.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = ref.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = ref.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = ref.FIDInceptionE_1(1280)
    net.Mixed_7c = ref.FIDInceptionE_2(2048)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=gen)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.uniform_(-0.2, 0.2, generator=gen)
                module.running_mean.uniform_(-0.2, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.01, generator=gen)
    return net.state_dict()


@dataclass
class Reference:
    state_dict: dict[str, torch.Tensor]
    weights: Path
    model: torch.nn.Module


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """pytorch-fid's ``InceptionV3([3])`` with random weights, and those weights on disk."""
    state_dict = random_reference_state_dict()
    weights = tmp_path_factory.mktemp("weights") / WEIGHTS_NAME
    torch.save(state_dict, weights)
    with pytest.MonkeyPatch.context() as mp:  # no download: hand it the random state dict
        mp.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                   lambda *args, **kwargs: state_dict)
        model = pytorch_fid_inception.InceptionV3([3]).eval()
    yield Reference(state_dict=state_dict, weights=weights, model=model)


def frames_of(image: np.ndarray, n: int, height: int, width: int, offset: int) -> np.ndarray:
    """``n`` overlapping (height, width) crops of an RGB image, as a (n, H, W, 3) uint8 clip."""
    return np.stack([image[offset + 9 * i:offset + 9 * i + height,
                           offset + 7 * i:offset + 7 * i + width] for i in range(n)])


def reference_activations(model: torch.nn.Module, frames: np.ndarray,
                          folder: Path) -> np.ndarray:
    """pytorch-fid's own pipeline: PNG files -> ``get_activations`` (PIL, ToTensor, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, frame in enumerate(frames):
        path = folder / f"{i:04d}.png"
        Image.fromarray(frame).save(path)
        files.append(path)
    return pytorch_fid_score.get_activations(files, model, batch_size=len(files), dims=2048,
                                             device="cpu", num_workers=0)


# ---------------------------------------------------------------------------------------------
# The network


def test_state_dict_format_is_pytorch_fids(reference: Reference) -> None:
    ours = FIDInceptionV3().state_dict()
    assert set(ours) == set(reference.state_dict)
    for key, value in reference.state_dict.items():
        assert ours[key].shape == value.shape, key
    net, provenance = load_fid_inception(reference.weights)  # strict=True inside
    assert provenance["sha256"] and provenance["verified"].startswith("NO")
    assert not net.training


def test_pool3_features_match(reference: Reference, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = np.concatenate([
        frames_of(skimage.data.astronaut(), 3, 96, 128, 40),
        rng.integers(0, 256, (2, 96, 128, 3), dtype=np.uint8),
    ])
    expected = reference_activations(reference.model, frames, tmp_path / "png")
    net, _ = load_fid_inception(reference.weights)
    got = pool3_features(net, frames).numpy()
    assert got.shape == (5, FEATURE_DIM) and got.dtype == np.float32
    assert np.abs(expected).mean() > 0.05  # the random network is not degenerate
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    # other frame sizes (64x64 and 128x128) straight through the model, no PNG round trip
    for size in (64, 128):
        clip = frames_of(skimage.data.coffee(), 2, size, size, 10)
        with torch.no_grad():
            tensor = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div(255)
            expected_small = reference.model(tensor)[0].flatten(1).numpy()
        np.testing.assert_allclose(pool3_features(net, clip).numpy(), expected_small,
                                   rtol=0, atol=1e-4)


def two_test_clips() -> list[tuple[np.ndarray, np.ndarray]]:
    """(generated, ground truth) pairs of two clips of different lengths."""
    astronaut, chelsea, coffee = (skimage.data.astronaut(), skimage.data.chelsea(),
                                  skimage.data.coffee())
    return [
        (frames_of(astronaut, 4, 96, 96, 0), frames_of(astronaut, 4, 96, 96, 60)),
        (frames_of(chelsea, 3, 96, 96, 20), frames_of(coffee, 3, 96, 96, 30)),
    ]


@pytest.fixture(scope="module")
def pipelines(reference: Reference, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[FID, np.ndarray, np.ndarray]:
    """talkbench's FID metric updated with the two clips, and pytorch-fid's activations of all
    their generated and all their ground-truth frames (PNG files, its own pipeline)."""
    clips = two_test_clips()
    metric = FID(device="cpu", weights=str(reference.weights))
    for i, (pred, gt) in enumerate(clips):
        assert metric.update(Sample(clip_id=f"c{i}", pred=pred, gt=gt)) == {}
    folder = tmp_path_factory.mktemp("png")
    act_pred = reference_activations(reference.model, np.concatenate([p for p, _ in clips]),
                                     folder / "pred")
    act_gt = reference_activations(reference.model, np.concatenate([g for _, g in clips]),
                                   folder / "gt")
    return metric, act_pred, act_gt


def test_fid_statistics_match_pytorch_fid_pipeline(
        pipelines: tuple[FID, np.ndarray, np.ndarray]) -> None:
    """All frames of both clips: mean and covariance as pytorch-fid's
    ``calculate_activation_statistics`` (np.mean, np.cov) computes them from its activations.
    The Frechet step on top is checked in the math tests below and, at 2048-d, in the slow
    end-to-end test."""
    metric, act_pred, act_gt = pipelines
    generated, real = metric.stats()
    assert (generated.n, real.n) == (7, 7)
    for stats, act in ((generated, act_pred), (real, act_gt)):
        np.testing.assert_allclose(stats.mu(), np.mean(act, axis=0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(stats.sigma(), np.cov(act, rowvar=False), rtol=0, atol=1e-6)
    assert metric.provenance()["frames"].startswith("7 generated, 7 ground truth")


@pytest.mark.slow
def test_fid_matches_pytorch_fid_end_to_end(
        pipelines: tuple[FID, np.ndarray, np.ndarray]) -> None:
    """The whole number: 2048x2048 matrix square roots (tens of seconds on a laptop CPU)."""
    metric, act_pred, act_gt = pipelines
    expected = pytorch_fid_score.calculate_frechet_distance(
        np.mean(act_pred, axis=0), np.cov(act_pred, rowvar=False),
        np.mean(act_gt, axis=0), np.cov(act_gt, rowvar=False))
    assert metric.compute()["fid"] == pytest.approx(expected, rel=1e-3, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# The math


@pytest.mark.parametrize("dim, n", [(8, 50), (64, 400), (256, 1000)])
def test_frechet_distance_matches_reference(dim: int, n: int) -> None:
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.3 + rng.normal(size=dim)
    b = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.3
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    expected = pytorch_fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6 * expected)


def test_frechet_of_known_gaussians() -> None:
    """1-D: (m1 - m2)^2 + s1^2 + s2^2 - 2 s1 s2 = (m1 - m2)^2 + (s1 - s2)^2."""
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]),
                             np.array([[9.0]]))
    assert value == pytest.approx(4.0 + 1.0)


def test_stats_are_np_cov_and_merge() -> None:
    rng = np.random.default_rng(3)
    features = rng.normal(loc=0.4, scale=0.3, size=(120, 32)).astype(np.float32)
    whole = FrechetStats(dim=32).add(features)
    np.testing.assert_allclose(whole.mu(), features.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.sigma(), np.cov(features.astype(np.float64), rowvar=False),
                               rtol=1e-9, atol=1e-12)
    parts = FrechetStats(dim=32).add(features[:50])
    parts.merge(FrechetStats(dim=32).add(torch.from_numpy(features[50:])))
    assert parts.n == 120
    np.testing.assert_allclose(parts.sigma(), whole.sigma(), rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# The metric's bookkeeping (features fed directly: no network needed)


def fake_features(rng: np.random.Generator, n: int, shift: float, dim: int = 16) -> np.ndarray:
    """Stand-in features, 16-d so that the matrix square roots are instant."""
    return (rng.normal(size=(n, dim)) * 0.1 + shift).astype(np.float32)


def test_per_emotion_fid_is_mean_over_six() -> None:
    rng = np.random.default_rng(0)
    metric = FID(device="cpu")
    for k, emotion in enumerate(EMOTIONS):
        metric.add_features(fake_features(rng, 30, 0.01 * k), fake_features(rng, 30, 0.0),
                            emotion)
    metric.add_features(fake_features(rng, 30, 0.5), fake_features(rng, 30, 0.0), None)
    per = metric.compute_per_emotion()
    assert set(per) == {*EMOTIONS, "mean"}
    assert per["mean"] == pytest.approx(np.mean([per[e] for e in EMOTIONS]))
    gen, real = metric.emotion_stats("HAP")
    assert per["HAP"] == pytest.approx(frechet_distance(gen.mu(), gen.sigma(), real.mu(),
                                                        real.sigma()))
    assert metric.stats()[0].n == 7 * 30  # the unlabelled clip counts in the overall FID
    assert metric.compute()["fid"] > per["mean"]
    metric.reset()
    with pytest.raises(MetricUnavailable, match="ANG"):
        metric.compute_per_emotion()


def test_too_few_frames_is_unavailable() -> None:
    rng = np.random.default_rng(0)
    metric = FID(device="cpu")
    with pytest.raises(MetricUnavailable, match="at least 2"):
        metric.compute()
    metric.add_features(fake_features(rng, 1, 0.0), fake_features(rng, 5, 0.0))
    with pytest.raises(MetricUnavailable, match="got 1 and 5"):
        metric.compute()


def test_missing_weights_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.delenv("TALKBENCH_FID_WEIGHTS", raising=False)
    clip = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    sample = Sample(clip_id="a", pred=clip, gt=clip)
    with pytest.raises(MetricUnavailable) as err:
        FID(device="cpu").update(sample)
    message = str(err.value)
    assert WEIGHTS_NAME in message and str(tmp_path) in message and "--fid-weights" in message
    with pytest.raises(MetricUnavailable, match="does not exist"):
        FID(device="cpu", weights=str(tmp_path / "nowhere.pth")).update(sample)
    monkeypatch.setenv("TALKBENCH_FID_WEIGHTS", str(tmp_path / "nowhere.pth"))
    with pytest.raises(MetricUnavailable, match="nowhere.pth"):
        FID(device="cpu").update(sample)


def test_unusable_weights_file_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / WEIGHTS_NAME
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    clip = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(MetricUnavailable, match="not pytorch-fid's"):
        FID(device="cpu", weights=str(bad)).update(Sample(clip_id="a", pred=clip, gt=clip))


def test_mismatched_or_missing_ground_truth_is_unavailable() -> None:
    metric = FID(device="cpu")
    pred = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(MetricUnavailable):
        metric.update(Sample(clip_id="a", pred=pred))
    with pytest.raises(MetricUnavailable, match="differ in size"):
        metric.update(Sample(clip_id="a", pred=pred, gt=np.zeros((2, 80, 64, 3), np.uint8)))
    assert metric.stats()[0].n == 0
    assert not FID.on_ground_truth and FID.needs == frozenset({"gt"})


def test_compute_from_states_overall_and_per_emotion_mean():
    """The runner's path: per-clip feature states -> FID over all clips and the mean of the
    six per-emotion FIDs (seed 002), each checked against the Frechet distance of numpy
    statistics; without every emotion, the per-emotion column is unavailable with a reason."""
    rng = np.random.default_rng(3)
    states = []
    for i, emotion in enumerate(EMOTIONS * 2):
        pred = rng.normal(0.1 * i, 1.0, (20, 6)).astype(np.float32)
        real = rng.normal(0.0, 1.0 + 0.05 * i, (20, 6)).astype(np.float32)
        states.append(({"pred": pred, "gt": real}, emotion))

    def fid_of(chosen):
        pred = np.concatenate([s["pred"] for s, _ in chosen]).astype(np.float64)
        real = np.concatenate([s["gt"] for s, _ in chosen]).astype(np.float64)
        return frechet_distance(pred.mean(0), np.cov(pred, rowvar=False),
                                real.mean(0), np.cov(real, rowvar=False))

    values = FID(device="cpu").compute_from_states(states)
    assert values["fid"] == pytest.approx(fid_of(states), rel=1e-6)
    per_emotion = [fid_of([s for s in states if s[1] == e]) for e in EMOTIONS]
    assert values["fid_emotion"] == pytest.approx(np.mean(per_emotion), rel=1e-6)

    partial = FID(device="cpu").compute_from_states([s for s in states if s[1] != "SAD"])
    assert isinstance(partial["fid_emotion"], MetricUnavailable)
    assert "SAD" in str(partial["fid_emotion"])

    # the metric's own reduction of cached clip results: set-level, no interval
    from bench.results import ClipResult

    clips = [ClipResult(f"c{i}", emotion=e, state=s) for i, (s, e) in enumerate(states)]
    reduced = FID(device="cpu").reduce(clips + [ClipResult("x", unavailable="no face")])
    assert reduced["fid"].to_dict() == {"kind": "set", "value": values["fid"], "ci_low": None,
                                        "ci_high": None, "n": 12, "n_infinite": 0,
                                        "n_unavailable": 1,
                                        "unavailable_examples": {"x": "no face"}}
    assert reduced["fid_emotion"].value == values["fid_emotion"]
