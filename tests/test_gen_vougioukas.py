"""``vougioukas`` (seed 003): generate's contract, training on a fixed batch, save/load,
seeded noise, the temporal generator's dependence on the past, and the paper's layer sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.adapters import adapter_class
from bench.adapters.vougioukas import PAPER, Vougioukas
from bench.data.clip import Clip
from bench.generators import vougioukas2019 as vg
from bench.generators.audio_frames import audio_windows
from bench.generators.blocks import FrameDiscriminator, draw_noise
from bench.generators.clip_banks import load_frame_bank
from bench.generators.face_regions import lower_half_mask, lower_half_row, mouth_box, mouth_box_hw


def tiny_clips(n: int = 3, frames: int = 24, seed: int = 0) -> list[Clip]:
    """Clips whose lower half brightens with the audio's loudness (a learnable pattern)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        loud = rng.random(frames) < 0.5
        audio = (rng.standard_normal(frames * 640) * np.repeat(np.where(loud, 0.3, 0.01), 640))
        base = rng.integers(40, 200, (1, 128, 128, 3))
        video = np.repeat(base, frames, 0)
        video[loud, 70:100, 40:90] = 250
        out.append(Clip(speaker=f"s{i}", clip_id=f"c{i}", frames=video.astype(np.uint8),
                        audio=audio.astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def trained() -> Vougioukas:
    torch.set_num_threads(1)
    adapter = Vougioukas(seed=3, steps=2)
    log = adapter.fit(tiny_clips(), tiny_clips(1, seed=5), "smoke")
    assert log["steps"] == 2 and log["discriminators"] == ["img", "seq", "sync"]
    assert log["val_lower_half_l1"] is not None
    return adapter


def test_registered():
    assert adapter_class("vougioukas") is Vougioukas
    assert not Vougioukas.needs_emotion


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 12345])
def test_generate_shapes_and_range(trained, samples):
    rng = np.random.default_rng(samples)
    audio = rng.standard_normal(samples).astype(np.float32) * 0.1
    image = tiny_clips(1)[0].frames[0]
    frames = trained.generate(image, audio, None)
    assert frames.shape == (int(np.ceil(samples / 640)), 128, 128, 3)
    assert frames.dtype == np.uint8 and frames.std() > 0
    small = trained.generate(image[:96, :96], audio, None)  # resized back to the image's size
    assert small.shape == (frames.shape[0], 96, 96, 3)


def test_noise_comes_from_the_seeded_generator(trained):
    net, cfg = trained.nets, trained.cfg
    image = torch.zeros(1, 3, cfg.size, cfg.size)
    audio = np.random.default_rng(0).standard_normal(6400).astype(np.float32)

    def run(seed: int) -> torch.Tensor:
        return net.synthesize(image, audio, 10, torch.Generator().manual_seed(seed))

    torch.manual_seed(123)  # the global RNG must not matter
    a = run(0)
    torch.manual_seed(456)
    assert torch.equal(a, run(0))
    assert not torch.equal(a, run(1))


def test_content_encoder_is_temporal(trained):
    """The GRUs carry the past: changing only the first frames' audio changes later frames."""
    net, cfg = trained.nets, trained.cfg
    image = torch.zeros(1, 3, cfg.size, cfg.size)
    audio = np.random.default_rng(0).standard_normal(640 * 20).astype(np.float32)
    changed = audio.copy()
    changed[:640 * 3] = 0.0  # frames 0-2; their 0.2 s windows reach frame 5 at most
    a = net.synthesize(image, audio, 20, torch.Generator().manual_seed(0))
    b = net.synthesize(image, changed, 20, torch.Generator().manual_seed(0))
    assert not torch.allclose(a[10:], b[10:])


def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path)
    other = Vougioukas(seed=3)
    other.load(tmp_path)
    assert other.cfg == trained.cfg and other.budget == "smoke"
    audio = np.random.default_rng(2).standard_normal(9000).astype(np.float32) * 0.1
    image = tiny_clips(1)[0].frames[0]
    assert np.array_equal(other.generate(image, audio, None),
                          trained.generate(image, audio, None))


def test_training_lowers_the_loss_on_a_fixed_batch():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    adapter = Vougioukas(seed=0)
    cfg = adapter.config_for("smoke")
    adapter.nets = adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    batch = trainer.sampler.sample(cfg.batch)
    trainer.sampler.sample = lambda n: batch  # the same batch every step
    losses = [trainer.step(i + 1) for i in range(12)]
    assert {"d_img", "d_seq", "d_sync", "g_img", "g_seq", "g_sync"} <= set(losses[0])
    assert np.mean([x["rec"] for x in losses[-3:]]) < 0.8 * losses[0]["rec"]


def test_bank_windows_match_audio_windows():
    clip = tiny_clips(1, frames=15)[0]
    bank = load_frame_bank([clip], 32, (32, 24), 3200, 1)
    assert bank.frames[0].shape == (15, 3, 32, 24)
    full = audio_windows(clip.audio, 15, 3200)
    assert np.array_equal(bank.windows(0, 0, 15), full)
    assert np.array_equal(bank.windows(0, 6, 4), full[6:10])
    assert np.array_equal(bank.windows(0, 13, 2), full[13:15])


def test_shifted_audio_stays_in_the_clip_and_off_sync():
    rng = np.random.default_rng(0)
    for start in range(0, 20):
        other = vg.shifted_start(rng, start, 25, 5, (3, 15))
        assert 0 <= other <= 20 and abs(other - start) >= 3


def test_regions_follow_the_square_crop():
    assert lower_half_row(128) == int(lower_half_mask(128)[0, 0, :, 0].argmax())
    top, bottom, left, right = mouth_box_hw((128, 96))
    sq = mouth_box(128)
    assert (top, bottom) == sq[:2] and left == int(sq[2] * 0.75) and right > left
    assert vg.sync_box(PAPER) == (lower_half_row(128), 128, 0, 96)  # the paper: lower half


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="id_channels"):
        vg.check_config(vg.VougioukasConfig(id_channels=(8, 8)))
    with pytest.raises(ValueError, match="frame_hw"):
        vg.check_config(vg.VougioukasConfig(frame_hw=(96, 128)))
    with pytest.raises(ValueError, match="sync_region"):
        vg.check_config(vg.VougioukasConfig(sync_region="eyes"))


def test_paper_budget_has_the_papers_sizes():
    cfg = Vougioukas().config_for("paper")
    assert cfg.frame_hw == (128, 96) and cfg.size == 128
    assert (cfg.w_rec, cfg.w_img, cfg.w_sync, cfg.w_seq) == (600, 1, 0.8, 0.2)
    assert (cfg.lr_g, cfg.lr_img, cfg.lr_seq, cfg.lr_sync) == (1e-4, 1e-4, 1e-5, 1e-5)
    assert (cfg.noise_dim, cfg.noise_var, cfg.audio_window) == (10, 0.6, 3200)
    counts = Vougioukas.parameter_counts("paper")
    assert set(counts) == {"identity_encoder", "content_encoder", "noise_generator",
                           "frame_decoder", "total"}
    with torch.device("meta"):
        net = vg.VougioukasGenerator(cfg)
    identity = net["identity_encoder"]
    convs = [m for m in identity.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.stride == (2, 2) for c in convs[:5])  # six layers
    assert convs[-1].out_channels == 128 and convs[-1].kernel_size == (4, 3)  # z_id: 128
    content = net["content_encoder"]
    assert isinstance(content.rnn, nn.GRU) and content.rnn.num_layers == 1
    assert content.rnn.hidden_size == 256  # z_c: 256
    noise = net["noise_generator"].rnn
    assert noise.input_size == 10 and noise.num_layers == 1
    first = [m for m in content.audio.modules() if isinstance(m, nn.Conv1d)][0]
    assert first.kernel_size == (250,)  # a large first kernel
    # a real forward at the paper's frame size: (N, T, 3, 128, 96)
    torch.manual_seed(0)
    net = vg.VougioukasGenerator(cfg).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 128, 96), torch.zeros(1, 2, 3200),
                  draw_noise(1, 2, 10, 0.6, "cpu"))
    assert out.shape == (1, 2, 3, 128, 96)
    d_img = FrameDiscriminator(cfg.frame_hw, cfg.img_disc_channels)
    assert len([m for m in d_img.modules() if isinstance(m, nn.Conv2d)]) == 6


def test_noise_has_the_papers_variance():
    noise = draw_noise(4, 500, 10, 0.6, "cpu", torch.Generator().manual_seed(0))
    assert abs(float(noise.var()) - 0.6) < 0.02 and abs(float(noise.mean())) < 0.02
