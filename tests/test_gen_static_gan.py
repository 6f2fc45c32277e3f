"""``static-gan`` (seed 003's static baseline): generate's contract, per-frame generation
(no temporal model), training on a fixed batch, save/load, and the paper budget's sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.adapters import adapter_class
from bench.adapters.static_gan import StaticGAN
from bench.data.clip import Clip
from bench.generators import static_gan as sg


def tiny_clips(n: int = 3, frames: int = 20, seed: int = 0) -> list[Clip]:
    """Clips whose lower half brightens with the audio's loudness (a learnable pattern)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        loud = rng.random(frames) < 0.5
        audio = (rng.standard_normal(frames * 640) * np.repeat(np.where(loud, 0.3, 0.01), 640))
        video = np.repeat(rng.integers(40, 200, (1, 128, 128, 3)), frames, 0)
        video[loud, 70:100, 40:90] = 250
        out.append(Clip(speaker=f"s{i}", clip_id=f"c{i}", frames=video.astype(np.uint8),
                        audio=audio.astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def trained() -> StaticGAN:
    torch.set_num_threads(1)
    adapter = StaticGAN(seed=1, steps=2)
    log = adapter.fit(tiny_clips(), tiny_clips(1, seed=4), "smoke")
    assert log["steps"] == 2 and log["val_lower_half_l1"] is not None
    return adapter


def test_registered():
    assert adapter_class("static-gan") is StaticGAN
    assert not StaticGAN.needs_emotion


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 12345])
def test_generate_shapes_and_range(trained, samples):
    audio = np.random.default_rng(samples).standard_normal(samples).astype(np.float32) * 0.1
    image = tiny_clips(1)[0].frames[0]
    frames = trained.generate(image, audio, None)
    assert frames.shape == (int(np.ceil(samples / 640)), 128, 128, 3)
    assert frames.dtype == np.uint8 and frames.std() > 0
    assert trained.generate(image[:64, :80], audio, None).shape == (frames.shape[0], 64, 80, 3)


def test_frames_are_generated_independently(trained):
    """Static: frame t depends only on its own 0.2 s audio frame and its own noise."""
    net, cfg = trained.nets, trained.cfg
    image = torch.zeros(1, 3, cfg.size, cfg.size)
    audio = np.random.default_rng(0).standard_normal(640 * 20).astype(np.float32)
    changed = audio.copy()
    changed[:640 * 3] = 0.0  # frames 0-2; the windows of frames 0-4 see this span
    a = net.synthesize(image, audio, 20, torch.Generator().manual_seed(0))
    b = net.synthesize(image, changed, 20, torch.Generator().manual_seed(0))
    assert not torch.allclose(a[:2], b[:2])
    assert torch.allclose(a[6:], b[6:])
    assert not torch.equal(a, net.synthesize(image, audio, 20, torch.Generator().manual_seed(1)))
    assert not any(isinstance(m, (nn.GRU, nn.LSTM, nn.RNN)) for m in net.modules())


def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path)
    other = StaticGAN(seed=1)
    other.load(tmp_path)
    assert other.cfg == trained.cfg
    audio = np.random.default_rng(2).standard_normal(7000).astype(np.float32) * 0.1
    image = tiny_clips(1)[0].frames[0]
    assert np.array_equal(other.generate(image, audio, None),
                          trained.generate(image, audio, None))


def test_training_lowers_the_loss_on_a_fixed_batch():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    adapter = StaticGAN(seed=0)
    cfg = adapter.config_for("smoke")
    adapter.nets = adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    batch = trainer.sampler.sample(cfg.batch)
    trainer.sampler.sample = lambda n: batch
    losses = [trainer.step(i + 1) for i in range(12)]
    assert set(losses[0]) == {"d_img", "rec", "g_img", "g_total"}
    assert np.mean([x["rec"] for x in losses[-3:]]) < 0.8 * losses[0]["rec"]


def test_paper_budget_sizes():
    cfg = StaticGAN().config_for("paper")
    assert cfg.frame_hw == (128, 96) and (cfg.w_rec, cfg.w_img) == (600, 1)
    assert (cfg.lr_g, cfg.lr_img, cfg.noise_dim, cfg.noise_var) == (1e-4, 1e-4, 10, 0.6)
    counts = StaticGAN.parameter_counts("paper")
    assert set(counts) == {"identity_encoder", "audio_encoder", "frame_decoder", "total"}
    with torch.device("meta"):
        net = sg.StaticGenerator(cfg)
    convs = [m for m in net["identity_encoder"].modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and convs[-1].out_channels == 128
    torch.manual_seed(0)
    net = sg.StaticGenerator(cfg).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 128, 96), torch.zeros(1, 2, 3200), torch.zeros(1, 2, 10))
    assert out.shape == (1, 2, 3, 128, 96)
    with pytest.raises(ValueError, match="dec_channels"):
        sg.check_config(sg.StaticGANConfig(dec_channels=(8,)))
