"""speech2vid (Chung, Jamaludin, Zisserman 2017): shapes, the L1 step, save/load, paper sizes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bench.adapters import adapter_class
from bench.adapters.speech2vid import Speech2Vid
from bench.data.clip import Clip
from bench.generators.speech2vid import (
    Speech2VidNets,
    TrainingData,
    clip_mfcc,
    l1_step,
    learning_rate,
    load_training_data,
    make_optimizer,
    mfcc_statistics,
)

torch.set_num_threads(1)


def make_clip(i: int, frames: int = 30, size: int = 128) -> Clip:
    """A tiny clip: a coloured square face whose 'mouth' brightens with the audio's loudness."""
    rng = np.random.default_rng(i)
    t = np.arange(frames * 640) / 16000
    envelope = np.repeat(rng.random(frames) > 0.5, 640).astype(np.float32)
    audio = (0.3 * envelope * np.sin(2 * np.pi * (150 + 40 * i) * t)).astype(np.float32)
    video = np.zeros((frames, size, size, 3), np.uint8)
    video[:] = rng.integers(40, 200, 3, dtype=np.uint8)
    video[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 180
    open_ = envelope.reshape(frames, 640)[:, 0] > 0
    video[open_, 5 * size // 8: 11 * size // 16, 3 * size // 8: 5 * size // 8] = 20
    return Clip(clip_id=f"c{i}", speaker=f"s{i}", frames=video, audio=audio,
                emotion=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Speech2Vid, str]:
    model = Speech2Vid(seed=3)
    log = model.fit([make_clip(i) for i in range(3)], [make_clip(9)], "smoke")
    assert log["steps"] == 3 and log["val_l1"] is not None
    assert "mfcc" in model.notes and "deblur" in model.notes
    path = tmp_path_factory.mktemp("s2v")
    model.save(path)
    return model, str(path)


def test_registered():
    assert adapter_class("speech2vid") is Speech2Vid
    assert not Speech2Vid.needs_emotion


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 21000])
def test_generate_shapes_and_range(trained, samples):
    model, _ = trained
    image = make_clip(5).frames[0]
    audio = np.random.default_rng(samples).normal(0, 0.1, samples).astype(np.float32)
    frames = model.generate(image, audio, None)
    assert frames.shape == (math.ceil(samples / 640), 128, 128, 3)
    assert frames.dtype == np.uint8
    assert frames.min() >= 0 and frames.max() <= 255
    small = model.generate(image[:96, :96], audio, "HAP")
    assert small.shape == (math.ceil(samples / 640), 96, 96, 3)


def test_save_load_round_trip(trained):
    model, path = trained
    other = Speech2Vid(seed=3)
    other.load(path)
    image, audio = make_clip(7).frames[0], make_clip(7).audio
    a, b = model.generate(image, audio, None), other.generate(image, audio, None)
    assert np.array_equal(a, b)
    assert np.array_equal(a, model.generate(image, audio, None))  # deterministic
    stats = other.nets["audio"].mfcc_mean
    assert torch.equal(stats, model.nets["audio"].mfcc_mean) and stats.abs().sum() > 0


def test_audio_changes_the_output(trained):
    model, _ = trained
    image = make_clip(4).frames[0]
    loud = model.generate(image, make_clip(4).audio, None).astype(int)
    silent = model.generate(image, np.zeros(30 * 640, np.float32), None).astype(int)
    assert np.abs(loud - silent).max() > 0


def test_l1_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = dataclasses.replace(Speech2Vid.configs["smoke"], lr=3e-3, lr_final=3e-3)
    nets = Speech2VidNets(cfg)
    data = load_training_data([make_clip(i) for i in range(2)], cfg)
    batch = data.sample(8, np.random.default_rng(0), torch.device("cpu"))
    optimizer = make_optimizer(nets.parameters(), cfg)
    nets.train()
    losses = [l1_step(nets, optimizer, *batch) for _ in range(15)]
    assert losses[-1] < 0.8 * losses[0]


def test_mfcc_windows_and_statistics():
    cfg = Speech2Vid.configs["paper"]
    clip = make_clip(1)
    windows = clip_mfcc(clip.audio, clip.num_frames, cfg)
    assert windows.shape == (30, 12, 35)  # 12 coefficients x 0.35 s at 100 Hz
    mean, std = mfcc_statistics([windows])
    assert mean.shape == std.shape == (12,) and (std > 0).all()


def test_training_pairs_and_augmentation():
    cfg = dataclasses.replace(Speech2Vid.configs["smoke"], identity_first=1.0)
    data = load_training_data([make_clip(0), make_clip(1)], cfg)
    ident, mfcc, target = data.sample(6, np.random.default_rng(1), torch.device("cpu"))
    assert ident.shape == target.shape == (6, 3, 32, 32) and mfcc.shape == (6, 12, 35)
    firsts = torch.stack([f[0] for f in data.bank.frames]).float() / 127.5 - 1
    assert all(any(torch.equal(x, f) for f in firsts) for x in ident)
    augmented = TrainingData(data.bank, data.mfcc, augment=0.3, identity_first=1.0)
    a, _, b = augmented.sample(6, np.random.default_rng(1), torch.device("cpu"))
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, ident)


def test_gaussian_blur_keeps_constants_and_smooths_edges():
    from bench.core.blur import gaussian_blur

    x = torch.zeros(2, 3, 16, 16)
    x[:, :, :, 8:] = 1.0
    y = gaussian_blur(x, torch.tensor([0.5, 2.0]))
    assert y.shape == x.shape
    assert torch.allclose(y[:, :, :, :2], torch.zeros(2, 3, 16, 2), atol=1e-6)
    assert 0 < y[1, 0, 0, 7] < 0.5 and y[1, 0, 0, 7] > y[0, 0, 0, 7]


def test_deblur_network_trains_and_runs():
    model = Speech2Vid(seed=1, deblur_layers=3, deblur_steps=2)
    log = model.fit([make_clip(i) for i in range(2)], None, "smoke")
    assert log["deblur"]["steps"] == 2 and log["val_l1"] is None
    assert "deblur" in model.nets
    frames = model.generate(make_clip(0).frames[0], make_clip(0).audio, None)
    assert frames.shape == (30, 128, 128, 3)


def test_learning_rate_decays_logarithmically():
    cfg = Speech2Vid.configs["paper"]
    assert learning_rate(1, cfg) == pytest.approx(1e-2)
    assert learning_rate(cfg.steps, cfg) == pytest.approx(1e-4)
    assert learning_rate((cfg.steps + 1) // 2, cfg) == pytest.approx(1e-3, rel=1e-3)


def test_paper_budget_layer_sizes():
    counts = Speech2Vid.parameter_counts("paper")
    assert set(counts) == {"audio", "identity", "decoder", "deblur", "total"}
    cfg = Speech2Vid.configs["paper"]
    assert cfg.size == 112 and cfg.mfcc_window == 35 and cfg.mfcc_count == 12
    with torch.device("meta"):
        nets = Speech2VidNets(cfg)
    audio, identity = nets["audio"], nets["identity"]
    assert audio.features[0][0].weight.shape == (64, 1, 3, 3)
    assert audio.features[5][0].weight.shape == (512, 256, 3, 3)
    assert audio.fc[1][0].weight.shape == (512, 512 * 4 * 8)  # fc6 on the 4x8 pool5 map
    assert audio.fc[2][0].weight.shape == (256, 512)  # fc7: 256-d audio embedding
    assert identity.conv1[0].weight.shape == (96, 3, 7, 7)
    assert identity.conv2[0].weight.shape == (256, 96, 5, 5)
    assert identity.fc[1][0].weight.shape == (512, 512 * 7 * 7)
    assert identity.fc[2][0].weight.shape == (256, 512)
    assert nets["decoder"].fc[0].weight.shape[1] == 512  # joint embedding 256 + 256
    total = sum(p.numel() for p in nets.parameters())
    assert counts["total"] == total
    # a real forward pass at the paper's sizes (batch 2, BN in eval mode)
    small = dataclasses.replace(cfg, deblur_layers=3)
    nets = Speech2VidNets(small).eval()
    with torch.no_grad():
        id_embed, skips = nets["identity"](torch.zeros(2, 3, 112, 112))
        assert id_embed.shape == (2, 256)
        assert [tuple(s.shape[1:]) for s in skips] == [(256, 14, 14), (96, 28, 28),
                                                       (96, 56, 56)]
        assert nets["audio"](torch.zeros(2, 12, 35)).shape == (2, 256)
        out = nets.generate_frames(torch.zeros(2, 3, 112, 112), torch.zeros(2, 12, 35))
        assert out.shape == (2, 3, 112, 112)
