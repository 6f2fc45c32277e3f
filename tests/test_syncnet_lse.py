"""SyncNet judge, MFCC and the LSE-D / LSE-C / AV offset metric.

References: ``python_speech_features.mfcc`` for the MFCCs; syncnet_python's ``SyncNetModel.S``
(layer list written out below) for the network; ``SyncNetInstance.evaluate`` (re-written
below as a per-window loop, the way the reference does it) for the LSE numbers.
"""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.audio import audio_to_int16, mel_filterbank, mfcc
from bench.core.sync_windows import resize_frames
from bench.core.weights import WEIGHTS_DIR_ENV, sha256_of_file
from bench.judges import syncnet as sn
from bench.metrics import lse as lse_mod
from bench.metrics.base import MetricUnavailable, Sample
from bench.metrics.lse import (
    LSE,
    lse_from_arrays,
    min_frames,
    syncnet_crop,
)

psf = pytest.importorskip("python_speech_features")


# ---------------------------------------------------------------------------------------------
# MFCC


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(48_000) / 16_000
    return {
        "int16 noise 3 s": rng.integers(-32768, 32768, 48_000).astype(np.int16),
        "speech-like tone": (8000 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))),
        "odd length": rng.standard_normal(48_123) * 3000,
        "silence (energy floor)": np.zeros(16_000),
        "shorter than a frame": rng.standard_normal(399) * 100,
        "one frame + 1 sample": rng.standard_normal(401) * 100,
        "one sample": np.array([5.0]),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_mfcc_matches_python_speech_features(name):
    signal = _signals()[name]
    expected = psf.mfcc(signal, 16000)
    got = mfcc(signal, 16000)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-4)


def test_mfcc_frame_count_and_filterbank():
    # 1 + ceil((N - 400) / 160) frames: 3 s at 16 kHz -> 299, i.e. 4 per video frame - 1.
    assert mfcc(np.ones(48_000)).shape == (299, 13)
    np.testing.assert_array_equal(mel_filterbank(), psf.get_filterbanks(26, 512, 16000))


def test_audio_to_int16_inverts_the_decoder_and_clips():
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    decoded = (pcm / 32768.0).astype(np.float32)  # what PyAV gives for 16-bit audio
    np.testing.assert_array_equal(audio_to_int16(decoded), pcm)
    np.testing.assert_array_equal(audio_to_int16(np.array([1.5, -1.5])), [32767, -32768])


# ---------------------------------------------------------------------------------------------
# The network


def _conv(kind, c_in, c_out, kernel, stride, padding):
    return (kind, c_in, c_out, kernel, stride, padding)


# syncnet_python SyncNetModel.S, layer by layer (type, channels, kernel, stride, padding).
EXPECTED_LAYERS = {
    "netcnnaud": [
        _conv("Conv2d", 1, 64, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", 64), ("ReLU",),
        ("MaxPool2d", (1, 1), (1, 1), 0),
        _conv("Conv2d", 64, 192, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", 192), ("ReLU",),
        ("MaxPool2d", (3, 3), (1, 2), 0),
        _conv("Conv2d", 192, 384, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", 384), ("ReLU",),
        _conv("Conv2d", 384, 256, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", 256), ("ReLU",),
        _conv("Conv2d", 256, 256, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", 256), ("ReLU",),
        ("MaxPool2d", (3, 3), (2, 2), 0),
        _conv("Conv2d", 256, 512, (5, 4), (1, 1), (0, 0)), ("BatchNorm2d", 512), ("ReLU",),
    ],
    "netfcaud": [("Linear", 512, 512), ("BatchNorm1d", 512), ("ReLU",), ("Linear", 512, 1024)],
    "netfclip": [("Linear", 512, 512), ("BatchNorm1d", 512), ("ReLU",), ("Linear", 512, 1024)],
    "netcnnlip": [
        _conv("Conv3d", 3, 96, (5, 7, 7), (1, 2, 2), (0, 0, 0)), ("BatchNorm3d", 96), ("ReLU",),
        ("MaxPool3d", (1, 3, 3), (1, 2, 2), 0),
        _conv("Conv3d", 96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), ("BatchNorm3d", 256),
        ("ReLU",), ("MaxPool3d", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
        _conv("Conv3d", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)), ("BatchNorm3d", 256),
        ("ReLU",),
        _conv("Conv3d", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)), ("BatchNorm3d", 256),
        ("ReLU",),
        _conv("Conv3d", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)), ("BatchNorm3d", 256),
        ("ReLU",), ("MaxPool3d", (1, 3, 3), (1, 2, 2), 0),
        _conv("Conv3d", 256, 512, (1, 6, 6), (1, 1, 1), (0, 0, 0)), ("BatchNorm3d", 512),
        ("ReLU",),
    ],
}


def _describe(module: nn.Module) -> tuple:
    kind = type(module).__name__
    if isinstance(module, (nn.Conv2d, nn.Conv3d)):
        return _conv(kind, module.in_channels, module.out_channels, module.kernel_size,
                     module.stride, module.padding)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return (kind, module.num_features)
    if isinstance(module, (nn.MaxPool2d, nn.MaxPool3d)):
        return (kind, module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.Linear):
        return (kind, module.in_features, module.out_features)
    return (kind,)


def _expected_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Key names and shapes of the official state dict, derived from EXPECTED_LAYERS."""
    shapes = {}
    for branch, layers in EXPECTED_LAYERS.items():
        for index, layer in enumerate(layers):
            prefix = f"{branch}.{index}."
            if layer[0].startswith("Conv"):
                _, c_in, c_out, kernel, _, _ = layer
                shapes[prefix + "weight"] = (c_out, c_in, *kernel)
                shapes[prefix + "bias"] = (c_out,)
            elif layer[0] == "Linear":
                shapes[prefix + "weight"] = (layer[2], layer[1])
                shapes[prefix + "bias"] = (layer[2],)
            elif layer[0].startswith("BatchNorm"):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    shapes[prefix + name] = (layer[1],)
                shapes[prefix + "num_batches_tracked"] = ()
    return shapes


def test_architecture_is_syncnet_python_s():
    net = sn.SyncNet()
    for branch, layers in EXPECTED_LAYERS.items():
        assert [_describe(m) for m in getattr(net, branch)] == layers, branch
    state = net.state_dict()
    expected = _expected_state_dict_shapes()
    assert len(state) == 102
    assert list(state) == sorted(expected, key=list(state).index)  # same keys...
    assert {k: tuple(v.shape) for k, v in state.items()} == expected  # ...and shapes
    # Module order of the reference: audio CNN, audio FC, lip FC, lip CNN.
    assert [name for name, _ in net.named_children()] == list(EXPECTED_LAYERS)


def test_forward_shapes():
    net, _ = sn.random_syncnet(0, device="cpu")
    with torch.no_grad():
        assert net.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)


# ---------------------------------------------------------------------------------------------
# Weight files


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """An empty weights dir, no env override."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    monkeypatch.delenv(sn.SYNCNET_WEIGHTS_ENV, raising=False)
    return folder


def _assert_same_weights(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = net.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key].cpu(), value), key


def test_loads_state_dict_and_whole_model_files(tmp_path, monkeypatch):
    reference, _ = sn.random_syncnet(1, device="cpu")
    state = reference.state_dict()

    torch.save(state, tmp_path / "state.pt")  # what syncnet_v2.model is
    # A state dict from torch < 0.4.1 (no num_batches_tracked, no _metadata).
    torch.save({k: v for k, v in state.items() if "num_batches" not in k}, tmp_path / "old.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "checkpoint.pt")
    torch.save(reference, tmp_path / "whole_talkbench.pt")
    # Whole model pickled by syncnet_python's SyncNetModel.save: class SyncNetModel.S.
    fake_module = types.ModuleType("SyncNetModel")

    class S(sn.SyncNet):
        pass

    S.__module__, S.__qualname__ = "SyncNetModel", "S"
    fake_module.S = S
    monkeypatch.setitem(sys.modules, "SyncNetModel", fake_module)
    s_model = S()
    s_model.load_state_dict(state)
    torch.save(s_model, tmp_path / "whole_reference.pt")
    monkeypatch.delitem(sys.modules, "SyncNetModel")

    for name in ("state.pt", "old.pt", "checkpoint.pt", "whole_talkbench.pt",
                 "whole_reference.pt"):
        net, provenance = sn.load_syncnet(tmp_path / name, device="cpu")
        _assert_same_weights(net, state)
        assert not net.training
        assert provenance["sha256"] == sha256_of_file(tmp_path / name)
        assert provenance["source"] == "user-supplied file"


def test_rejects_wrong_architecture_and_unsafe_pickles(tmp_path):
    state = sn.SyncNet().state_dict()
    state["netfcaud.3.weight"] = torch.zeros(512, 512)  # 512-d embedding instead of 1024
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(RuntimeError, match="size mismatch"):
        sn.load_syncnet(tmp_path / "wrong.pt", device="cpu")

    torch.save({"not": "weights", "fn": print}, tmp_path / "unsafe.pt")
    with pytest.raises(ValueError, match="not a SyncNet weights file"):
        sn.load_syncnet(tmp_path / "unsafe.pt", device="cpu")


def test_weight_resolution_order_and_provenance(tmp_path, weights_env, monkeypatch):
    with pytest.raises(sn.SyncNetWeightsMissing, match="no SyncNet weights: put "
                       "syncnet_v2.model in .*bench judges train syncnet"):
        sn.find_syncnet_weights()

    net, _ = sn.random_syncnet(2, device="cpu")
    # A talkbench-trained SyncNet with its provenance JSON beside it.
    trained = weights_env / sn.TRAINED_WEIGHTS_NAME
    torch.save(net.state_dict(), trained)
    sidecar = trained.with_name(trained.name + ".json")
    sidecar.write_text(json.dumps({"source": "talkbench-trained", "dataset": "crema-d",
                                   "split": "train"}))
    assert sn.find_syncnet_weights() == trained
    _, provenance = sn.load_syncnet(device="cpu")
    assert provenance["source"] == "talkbench-trained"
    assert provenance["dataset"] == "crema-d"
    assert provenance["sha256"] == sha256_of_file(trained)

    # The official file wins over the trained one.
    official = weights_env / sn.OFFICIAL_WEIGHTS_NAME
    torch.save(net.state_dict(), official)
    assert sn.find_syncnet_weights() == official
    assert "syncnet_v2.model" in sn.load_syncnet(device="cpu")[1]["source"]

    # $TALKBENCH_SYNCNET_WEIGHTS wins over the weights dir, the argument over both.
    other = tmp_path / "other.model"
    torch.save(net.state_dict(), other)
    monkeypatch.setenv(sn.SYNCNET_WEIGHTS_ENV, str(other))
    assert sn.find_syncnet_weights() == other
    assert sn.find_syncnet_weights(trained) == trained
    with pytest.raises(sn.SyncNetWeightsMissing, match="does not exist"):
        sn.find_syncnet_weights(tmp_path / "missing.model")

    # A provenance JSON that names another file's hash is an error.
    sidecar.write_text(json.dumps({"source": "talkbench-trained", "sha256": "0" * 64}))
    with pytest.raises(ValueError, match="sha256"):
        sn.load_syncnet(trained, device="cpu")


# ---------------------------------------------------------------------------------------------
# LSE against the reference algorithm


def reference_evaluate(frames_bgr: np.ndarray, audio_int16: np.ndarray, net: sn.SyncNet,
                       vshift: int = 15, batch_size: int = 20):
    """SyncNetInstance.evaluate's math, window by window as the reference does it."""
    im = np.transpose(np.stack(list(frames_bgr), axis=3)[None], (0, 3, 4, 1, 2))
    imtv = torch.from_numpy(im.astype(float)).float()  # (1, 3, T, 224, 224)
    cc = mfcc(audio_int16, 16000).T[None, None]
    cct = torch.from_numpy(cc.astype(float)).float()  # (1, 1, 13, F)

    min_length = min(len(frames_bgr), math.floor(len(audio_int16) / 640))
    lastframe = min_length - 5
    im_feat, cc_feat = [], []
    with torch.no_grad():
        for i in range(0, lastframe, batch_size):
            frames_range = range(i, min(lastframe, i + batch_size))
            im_in = torch.cat([imtv[:, :, v:v + 5, :, :] for v in frames_range], 0)
            im_feat.append(net.forward_lip(im_in))
            cc_in = torch.cat([cct[:, :, :, v * 4:v * 4 + 20] for v in frames_range], 0)
            cc_feat.append(net.forward_aud(cc_in))
    im_feat, cc_feat = torch.cat(im_feat, 0), torch.cat(cc_feat, 0)

    win_size = vshift * 2 + 1
    feat2p = torch.nn.functional.pad(cc_feat, (0, 0, vshift, vshift))
    dists = [torch.nn.functional.pairwise_distance(im_feat[[i], :].repeat(win_size, 1),
                                                   feat2p[i:i + win_size, :])
             for i in range(len(im_feat))]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return float(minval), float(torch.median(mdist) - minval), vshift - int(minidx), mdist


def _random_clip(num_frames: int, seed: int = 0, size: int = 224):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
    audio = (rng.standard_normal(num_frames * 640) * 3000).astype(np.int16)
    return frames, audio


@pytest.mark.parametrize("num_frames", [40, pytest.param(100, marks=pytest.mark.slow)])
def test_batched_lse_matches_reference_loop(num_frames):
    net, _ = sn.random_syncnet(0, device="cpu")
    frames, audio = _random_clip(num_frames)
    got = lse_from_arrays(frames, audio, net)
    lse_d, lse_c, offset, mdist = reference_evaluate(frames, audio, net)
    assert got.lse_d == pytest.approx(lse_d, abs=1e-3)
    assert got.lse_c == pytest.approx(lse_c, abs=1e-3)
    assert got.av_offset == offset
    np.testing.assert_allclose(got.mean_dists, mdist.numpy(), atol=1e-3)


def test_audio_longer_or_shorter_than_video_uses_the_shorter():
    """min_length = min(frames, samples // 640), as in the reference."""
    net, _ = sn.random_syncnet(0, device="cpu")
    frames, audio = _random_clip(30)
    short_audio = audio[:27 * 640 + 300]  # 27 whole frames of audio
    got = lse_from_arrays(frames, short_audio, net)
    lse_d, lse_c, offset, _ = reference_evaluate(frames, short_audio, net)
    assert (got.lse_d, got.lse_c, got.av_offset) == pytest.approx((lse_d, lse_c, offset),
                                                                  abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Known truth


def test_designed_distances_give_designed_numbers(monkeypatch):
    """One-hot embeddings: lip window i equals audio window i - d, so the distance is 0 at
    offset d (except the first d windows, which meet the zero padding: distance 1), and
    sqrt(2) for mismatched real windows / 1 against padding at the other shifts."""
    num_windows, d = 40, 3
    eye = torch.eye(num_windows + 1)
    audio_emb = eye[:num_windows]
    lip_emb = torch.stack([eye[i - d] if i >= d else eye[num_windows]
                           for i in range(num_windows)])
    monkeypatch.setattr(lse_mod, "embed_lips", lambda net, video, n, batch: lip_emb[:n])
    monkeypatch.setattr(lse_mod, "embed_audio", lambda net, mfccs, n, batch: audio_emb[:n])
    frames, audio = _random_clip(num_windows + 5, size=224)

    result = lse_from_arrays(frames, audio, net=None)

    def mean_at_shift(s):  # lip i vs audio i + s, s != -d
        return ((num_windows - abs(s)) * math.sqrt(2) + abs(s)) / num_windows

    assert result.av_offset == d
    assert result.lse_d == pytest.approx(d / num_windows, abs=1e-4)
    # Sorted: min, then shifts |s| = 15, 15, 14, 14, ..., so the 16th of 31 is |s| = 8.
    assert result.lse_c == pytest.approx(mean_at_shift(8) - d / num_windows, abs=1e-4)
    offsets = 15 - np.arange(31)
    for s in range(-15, 16):
        if s != -d:
            assert result.mean_dists[offsets == -s][0] == pytest.approx(mean_at_shift(s),
                                                                         abs=1e-4)


class ToyJudge(nn.Module):
    """A 'perfect' judge: the lip embedding of a window is the brightness of its 5 frames,
    the audio embedding the loudness of its 5 frames of audio, both mapped to 0 (dark/quiet)
    .. 1 (bright/loud). Loudness: MFCC coefficient 0 (log frame energy) of MFCC frames
    0, 4, 8, 12, 16 of the window, the 25 ms frames that start with each video frame."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the functions a device

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 5, H, W)
        return (x.mean(dim=(1, 3, 4)) - 50.0) / 150.0

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 13, 20)
        log_energy = x[:, 0, 0, 0::4]
        # +-A noise after pre-emphasis has power (1 + 0.97^2) A^2; the one-sided power
        # spectrum of 400 samples sums to about half of 400 times that.
        low, high = (math.log(400 * (1 + 0.97**2) * amplitude**2 / 2)
                     for amplitude in (1000.0, 10000.0))
        return (log_energy - low) / (high - low)


def _toy_clip(num_frames: int, audio_delay: int, seed: int = 3):
    """Random on/off sequence: bright frames and loud audio where it is on; the audio carries
    the sequence ``audio_delay`` frames late."""
    rng = np.random.default_rng(seed)
    margin = 20
    pattern = rng.integers(0, 2, num_frames + 2 * margin)
    video_pattern = pattern[margin:margin + num_frames]
    audio_pattern = pattern[margin - audio_delay:margin - audio_delay + num_frames]
    frames = np.where(video_pattern[:, None, None, None] == 1, 200, 50)
    frames = np.broadcast_to(frames, (num_frames, 224, 224, 3)).astype(np.uint8)
    amplitude = np.repeat(np.where(audio_pattern == 1, 10000.0, 1000.0), 640)
    audio = amplitude * np.sign(rng.standard_normal(num_frames * 640))
    return frames, audio.astype(np.int16)


@pytest.mark.parametrize("audio_delay", [0, 3, -5, 9])
def test_delaying_the_audio_by_k_frames_gives_offset_minus_k(audio_delay):
    frames, audio = _toy_clip(80, audio_delay)
    result = lse_from_arrays(frames, audio, ToyJudge())
    assert result.av_offset == -audio_delay
    # Near-zero distances at the right shift (except the |k| windows that meet the zero
    # padding there), clearly lower than at the other shifts.
    assert result.lse_d < 0.05 + 0.03 * abs(audio_delay)
    assert result.lse_c > 1.0


# ---------------------------------------------------------------------------------------------
# Short clips, missing weights, the metric class


def test_short_clip_is_unavailable_with_reason():
    assert min_frames() == 21
    frames, audio = _toy_clip(21, 0)
    lse_from_arrays(frames, audio, ToyJudge())  # 16 windows: enough
    with pytest.raises(MetricUnavailable, match="clip too short for LSE: 20 frames"):
        lse_from_arrays(frames[:20], audio[:20 * 640], ToyJudge())
    with pytest.raises(MetricUnavailable, match="clip too short"):  # audio is the short one
        lse_from_arrays(frames, audio[:10 * 640], ToyJudge())
    with pytest.raises(MetricUnavailable, match="clip too short"):
        lse_from_arrays(frames[:3], audio[:3 * 640], ToyJudge())


def test_metric_without_weights_is_unavailable(weights_env):
    metric = LSE(device="cpu")
    rng = np.random.default_rng(0)
    sample = Sample(clip_id="c", pred=rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
                    audio=rng.normal(0, 0.1, 30 * 640).astype(np.float32))  # not silent
    with pytest.raises(MetricUnavailable, match="no SyncNet weights: put syncnet_v2.model"):
        metric.update(sample)
    assert "no SyncNet weights" in metric.provenance()["unavailable"]
    with pytest.raises(MetricUnavailable, match="audio"):
        metric.update(Sample(clip_id="c", pred=sample.pred))
    short = Sample(clip_id="s", pred=sample.pred[:10], audio=sample.audio[:10 * 640])
    with pytest.raises(MetricUnavailable, match="clip too short"):
        metric.update(short)


def test_metric_class_resizes_rgb_crops_and_averages(tmp_path, weights_env):
    net, _ = sn.random_syncnet(0, device="cpu")
    torch.save(net.state_dict(), tmp_path / "random.pt")
    metric = LSE(device="cpu", weights=tmp_path / "random.pt")
    assert [c.name for c in metric.columns] == ["lse_d", "lse_c", "av_offset",
                                                "av_offset_signed"]
    assert [c.higher_is_better for c in metric.columns] == [False, True, None, None]
    assert metric.needs == frozenset({"audio"}) and metric.on_ground_truth

    rows, expected = [], []
    for seed in (0, 1):
        rgb, pcm = _random_clip(26, seed=seed, size=48)
        audio = (pcm / 32768.0).astype(np.float32)
        rows.append(metric.update(Sample(clip_id=str(seed), pred=rgb, audio=audio)))
        video = torch.from_numpy(rgb).permute(0, 3, 1, 2)
        bgr = resize_frames(video).permute(0, 2, 3, 1).numpy()[..., ::-1]
        expected.append(lse_from_arrays(np.ascontiguousarray(bgr), pcm, net))
    for row, result in zip(rows, expected, strict=True):
        assert row["lse_d"] == pytest.approx(result.lse_d, abs=1e-4)
        assert row["lse_c"] == pytest.approx(result.lse_c, abs=1e-4)
        assert row["av_offset"] == abs(result.av_offset)
        assert row["av_offset_signed"] == result.av_offset
    total = metric.compute()
    assert total["lse_d"] == pytest.approx(np.mean([r["lse_d"] for r in rows]))
    provenance = metric.provenance()
    assert provenance["sha256"] == sha256_of_file(tmp_path / "random.pt")
    assert provenance["file"] == str(tmp_path / "random.pt")


def test_rows_scored_on_the_same_audio_embed_it_once_with_the_same_values(tmp_path,
                                                                         weights_env,
                                                                         monkeypatch):
    """Every leaderboard row is scored against the test clip's own audio: the metric embeds a
    track once (`AudioEmbeddings`), and each row's values equal a fresh computation."""
    from bench.metrics import lse as lse_module

    net, _ = sn.random_syncnet(0, device="cpu")
    torch.save(net.state_dict(), tmp_path / "random.pt")
    metric = LSE(device="cpu", weights=tmp_path / "random.pt")
    calls = []
    real_embed_audio = lse_module.embed_audio
    monkeypatch.setattr(lse_module, "embed_audio",
                        lambda *a, **k: calls.append(1) or real_embed_audio(*a, **k))
    real_rgb, pcm = _random_clip(26, seed=0, size=48)
    audio = (pcm / 32768.0).astype(np.float32)
    other_rgb, other_pcm = _random_clip(26, seed=1, size=48)
    rows = []
    for rgb in (real_rgb, other_rgb, real_rgb[::-1].copy()):  # three "models", one audio track
        rows.append(metric.update(Sample(clip_id="c", pred=rgb, audio=audio)))
    assert len(calls) == 1 and metric.audio_embeddings.hits == 2
    metric.update(Sample(clip_id="d", pred=real_rgb,
                         audio=(other_pcm / 32768.0).astype(np.float32)))
    assert len(calls) == 2  # another track is embedded anew
    for rgb, row in zip((real_rgb, other_rgb, real_rgb[::-1].copy()), rows, strict=True):
        fresh = LSE(device="cpu", weights=tmp_path / "random.pt")
        assert fresh.update(Sample(clip_id="c", pred=rgb, audio=audio)) == row
    assert rows[0] != rows[1]


# ---------------------------------------------------------------------------------------------
# Frames: resize and the syncnet_python crop


def test_resize_is_bilinear_with_pixel_centres():
    row = torch.tensor([0, 100], dtype=torch.uint8)
    video = row.reshape(1, 1, 1, 2).expand(1, 3, 2, 2).contiguous()
    out = resize_frames(video, size=4)
    # Source x of output pixel j: (j + 0.5) / 2 - 0.5, clamped to [0, 1].
    assert out[0, 0, 0].tolist() == [0, 25, 75, 100]
    assert resize_frames(out, size=4) is out  # already the size: untouched


def test_resize_is_opencvs_own_on_face_crops():
    """syncnet_python resizes with ``cv2.resize(img, (224, 224))`` (INTER_LINEAR): the same
    pixels here, to the grey level (torch's float bilinear missed by one on ~12 % of pixels)."""
    import cv2
    import skimage.data

    face = np.ascontiguousarray(skimage.data.astronaut()[30:158, 150:278])  # her face, 128 px
    rng = np.random.default_rng(0)
    frames = np.stack([face, np.clip(face + rng.integers(-40, 40, face.shape), 0, 255)
                       .astype(np.uint8)])
    out = resize_frames(torch.from_numpy(frames).permute(0, 3, 1, 2))
    for got, frame in zip(out.permute(0, 2, 3, 1).numpy(), frames, strict=True):
        assert np.array_equal(got, cv2.resize(frame, (224, 224)))
    torch_bilinear = torch.nn.functional.interpolate(
        torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=(224, 224),
        mode="bilinear", align_corners=False).round().to(torch.uint8)
    assert not torch.equal(torch_bilinear, out)  # the test can tell the two apart


def test_av_offset_column_is_the_mean_absolute_offset():
    """+k and -k must not cancel: the column is the mean |offset|, the signed mean a detail."""
    from bench.metrics.base import Aggregation

    metric = LSE(device="cpu")
    for signed in (2.0, -2.0):
        metric.score = lambda sample, k=signed: {"lse_d": 7.0, "lse_c": 1.0,
                                                 "av_offset": abs(k), "av_offset_signed": k}
        metric.update(Sample(clip_id=str(signed), pred=np.zeros((1, 8, 8, 3), np.uint8)))
    total = metric.compute()
    assert total["av_offset"] == 2.0 and total["av_offset_signed"] == 0.0
    detail = {c.name: c.detail for c in metric.columns}
    assert detail["av_offset_signed"] and not detail["av_offset"]
    assert all(c.aggregation == Aggregation.MEAN_OVER_CLIPS for c in metric.columns)


def test_syncnet_crop_cuts_the_reference_square():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 300, 400, 3), dtype=np.uint8)
    # bs = 80 -> a 2.8 * 80 = 224 px square: no resampling, so pixels can be compared.
    boxes = np.array([[100, 60, 260, 220], [150, 10, 310, 170]], dtype=float)
    crops = syncnet_crop(frames, boxes, smooth=False)
    assert crops.shape == (2, 224, 224, 3) and crops.dtype == np.uint8
    # Frame 0: centre (180, 140); rows 140 - 80 .. 140 + 144, cols 180 - 112 .. 180 + 112.
    np.testing.assert_array_equal(crops[0], frames[0, 60:284, 68:292])
    # Frame 1: centre (230, 90); rows 10 .. 234, cols 118 .. 342, all inside the frame.
    np.testing.assert_array_equal(crops[1], frames[1, 10:234, 118:342])
    # A box near the top-left corner pulls in the grey padding (110).
    corner = syncnet_crop(frames[:1], np.array([[0.0, 0.0, 160.0, 160.0]]), smooth=False)
    assert (corner[0, :, :32] == 110).all() and (corner[0, :, 32:] != 110).any()
