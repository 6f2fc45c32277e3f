"""deformable-emotion (seed 000): the deformable convolution module and attention mask, the
three-stage schedule, the output contract, save/load, the paper's layer sizes, and the emotion
condition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench import EMOTIONS
from bench.adapters.deformable_emotion import PAPER, DeformableEmotion
from bench.adapters.eskimez_emotion import EskimezEmotion
from bench.data.clip import Clip
from bench.generators import deformable_emotion as dfm


def tiny_clips(n_speakers: int = 2, per_speaker: int = 3, frames: int = 10,
               size: int = 32) -> list[Clip]:
    """Random clips: per speaker a base colour, a mouth bar that grows with the audio energy
    and a brow bar whose height depends on the emotion."""
    rng = np.random.default_rng(0)
    clips = []
    for s in range(n_speakers):
        base = rng.integers(40, 200, 3)
        for k in range(per_speaker):
            emotion = EMOTIONS[(s + k) % len(EMOTIONS)]
            audio = rng.normal(0, 0.1, frames * 640) * np.repeat(rng.random(frames), 640)
            img = np.zeros((frames, size, size, 3), np.uint8)
            img[:] = base
            energy = np.sqrt((audio.reshape(frames, 640) ** 2).mean(1))
            for t in range(frames):
                top = int(size * 0.65)
                img[t, top:top + 1 + int(20 * energy[t]), size // 3:2 * size // 3] = 30
            img[:, int(size * 0.3) + EMOTIONS.index(emotion) % 3, size // 3:2 * size // 3] = 10
            clips.append(Clip(speaker=f"s{s}", clip_id=f"s{s}_{k}", frames=img,
                              audio=audio.astype(np.float32), emotion=emotion))
    return clips


@pytest.fixture(scope="module")
def trained() -> DeformableEmotion:
    torch.manual_seed(0)
    adapter = DeformableEmotion(seed=2)
    clips = tiny_clips()
    log = adapter.fit(clips, clips[:1], "smoke")
    assert list(log["stages"]) == ["generator", "discriminator", "joint"]
    assert all(stage["steps"] >= 1 for stage in log["stages"].values())
    assert log["steps"] == sum(stage["steps"] for stage in log["stages"].values())
    return adapter


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 20000 + 321])
def test_generate_contract(trained: DeformableEmotion, samples: int):
    rng = np.random.default_rng(samples)
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, samples).astype(np.float32)
    frames = trained.generate(image, audio, "SAD")
    assert frames.shape == (math.ceil(samples / 640), 40, 40, 3)
    assert frames.dtype == np.uint8 and frames.std() > 0


def test_emotion_changes_the_output_and_save_load(trained: DeformableEmotion, tmp_path):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 7000).astype(np.float32)
    angry, fearful = trained.generate(image, audio, "ANG"), trained.generate(image, audio, "FEA")
    assert np.abs(angry.astype(int) - fearful.astype(int)).max() > 0
    trained.save(tmp_path)
    other = DeformableEmotion(seed=2)
    other.load(tmp_path)
    assert isinstance(other.nets["image_encoder"], dfm.DeformableImageEncoder)
    assert (other.generate(image, audio, "ANG") == angry).all()


def test_deformable_module_starts_as_its_plain_convolution():
    torch.manual_seed(0)
    module = dfm.DeformableConv2d(4, 6, 3, 2, 1)
    x = torch.randn(2, 4, 9, 9)
    plain = F.conv2d(x, module.regular_conv.weight, module.regular_conv.bias, stride=2,
                     padding=1)
    assert torch.allclose(module(x), plain, atol=1e-5)  # zero offsets, modulation 1
    with torch.no_grad():
        module.offset_conv.bias.fill_(0.5)  # shift every sampling point by half a pixel
    assert not torch.allclose(module(x), plain, atol=1e-3)
    module(x).sum().backward()  # gradients reach the offsets and the modulator
    assert module.offset_conv.weight.grad.abs().sum() > 0
    assert module.modulator_conv.weight.grad.abs().sum() > 0


def test_attention_mask_scales_features_into_their_range():
    torch.manual_seed(0)
    attention = dfm.AttentionMask(5, 3)
    x = torch.rand(2, 5, 6, 6) + 0.1
    y = attention(x)
    ratio = y / x
    assert y.shape == x.shape and (ratio > 0).all() and (ratio < 1).all()


def test_discriminator_stage_leaves_the_generator_unchanged():
    torch.manual_seed(0)
    adapter = DeformableEmotion()
    cfg = adapter.config_for("smoke")
    adapter.cfg, adapter.nets = cfg, adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    before = {k: v.clone() for k, v in adapter.nets.state_dict().items()}
    d_before = [p.clone() for p in trainer.d_frame.parameters()]
    trainer.discriminator_step(1)
    assert all(torch.equal(before[k], v) for k, v in adapter.nets.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.d_frame.parameters(),
                                                      strict=True))
    trainer.generator_step(2)
    assert any(not torch.equal(before[k], v) for k, v in adapter.nets.state_dict().items())


def test_stage_budgets_split_steps_and_time():
    cfg = dfm.DeformableConfig(steps=100, max_seconds=50.0, stage_fractions=(0.4, 0.1, 0.5))
    assert dfm.stage_budgets(cfg) == [(40, 20.0), (10, 5.0), (50, 25.0)]
    untimed = dfm.DeformableConfig(steps=10, max_seconds=None, stage_fractions=(4, 1, 5))
    assert [s for s, _ in dfm.stage_budgets(untimed)] == [4, 1, 5]


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    adapter = DeformableEmotion(lr_g=3e-3)
    cfg = adapter.config_for("smoke")
    adapter.cfg, adapter.nets = cfg, adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    batch = trainer.sampler.sample()
    losses = []
    for _ in range(12):
        torch.manual_seed(1)
        losses.append(trainer.g_update(trainer.generate(batch), batch, adversarial=False)["g_mrm"])
    assert losses[-1] < 0.7 * losses[0]


def test_paper_budget_layer_sizes():
    with torch.device("meta"):
        g = DeformableEmotion().build(PAPER)
    encoder = g["image_encoder"]
    kinds = [type(c).__name__ for c in encoder.convs]
    assert kinds == ["Conv2d", "DeformableConv2d", "DeformableConv2d", "DeformableConv2d",
                     "Conv2d", "Conv2d"]
    deform = encoder.convs[1]
    assert deform.offset_conv.out_channels == 2 * 9 and deform.modulator_conv.out_channels == 9
    assert deform.regular_conv.out_channels == 256 and deform.stride == 2
    assert list(encoder.attention) == ["5"]
    assert encoder.attention["5"].conv.kernel_size == (1, 1)  # on the 1x1 image embedding
    counts = DeformableEmotion.parameter_counts("paper")
    base = EskimezEmotion.parameter_counts("paper")
    extra = sum(cin * (18 + 9) * 9 + 27 for cin in (128, 256, 512)) + 512 * 512 + 512
    assert counts["image_encoder"] == base["image_encoder"] + extra
    for key in ("speech_encoder", "emotion_encoder", "noise_encoder", "decoder"):
        assert counts[key] == base[key]
