"""eskimez-emotion (Eskimez, Zhang, Duan 2021; seed 000 baseline): output contract, the speech
front-end's timing, training, save/load, the paper's layer sizes, and the emotion condition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench import EMOTIONS
from bench.adapters.eskimez_emotion import PAPER, EskimezEmotion
from bench.data.clip import Clip
from bench.generators import eskimez2021 as esk
from bench.generators.eskimez2021_training import mrm_loss
from bench.generators.face_regions import mouth_weights


def tiny_clips(n_speakers: int = 2, per_speaker: int = 3, frames: int = 10,
               size: int = 32) -> list[Clip]:
    """Random-pattern clips: a face-like bright disc whose lower part darkens with the audio
    energy, a brow stripe whose height depends on the emotion."""
    rng = np.random.default_rng(0)
    clips = []
    ys, xs = np.mgrid[:size, :size]
    for s in range(n_speakers):
        base = rng.integers(40, 200, 3)
        for k in range(per_speaker):
            emotion = EMOTIONS[(s + k) % len(EMOTIONS)]
            audio = (rng.normal(0, 0.1, frames * 640) * np.repeat(rng.random(frames), 640))
            img = np.zeros((frames, size, size, 3), np.uint8)
            img[:] = base
            disc = (ys - size / 2) ** 2 + (xs - size / 2) ** 2 < (size / 3) ** 2
            img[:, disc] = 220
            energy = np.sqrt((audio.reshape(frames, 640) ** 2).mean(1))
            for t in range(frames):
                mouth = slice(int(size * 0.65), int(size * 0.65) + 1 + int(20 * energy[t]))
                img[t, mouth, size // 3:2 * size // 3] = 30
            brow = int(size * 0.3) + EMOTIONS.index(emotion) % 3
            img[:, brow, size // 3:2 * size // 3] = 10
            clips.append(Clip(speaker=f"s{s}", clip_id=f"s{s}_{k}", frames=img,
                              audio=audio.astype(np.float32), emotion=emotion))
    return clips


@pytest.fixture(scope="module")
def trained() -> EskimezEmotion:
    torch.manual_seed(0)
    adapter = EskimezEmotion(seed=1)
    clips = tiny_clips()
    log = adapter.fit(clips, clips[:1], "smoke")
    assert log["steps"] >= 2 and log["stages"]["joint"]["steps"] >= 1
    assert log["perceptual"].startswith(("stand-in", "ImageNet"))
    return adapter


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 20000 + 321])
def test_generate_contract(trained: EskimezEmotion, samples: int):
    rng = np.random.default_rng(samples)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, samples).astype(np.float32)
    frames = trained.generate(image, audio, "HAP")
    assert frames.shape == (math.ceil(samples / 640), 48, 48, 3)
    assert frames.dtype == np.uint8
    assert frames.std() > 0  # not a constant image


def test_emotion_changes_the_output(trained: EskimezEmotion):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 6400).astype(np.float32)
    happy, sad = trained.generate(image, audio, "HAP"), trained.generate(image, audio, "SAD")
    assert np.abs(happy.astype(int) - sad.astype(int)).max() > 0
    # deterministic for a fixed seed
    assert (trained.generate(image, audio, "HAP") == happy).all()
    with pytest.raises(ValueError, match="unknown emotion"):
        trained.generate(image, audio, "JOY")


def test_save_load_round_trip(trained: EskimezEmotion, tmp_path):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 9000).astype(np.float32)
    trained.save(tmp_path)
    other = EskimezEmotion(seed=1)
    other.load(tmp_path)
    assert other.cfg == trained.cfg and other.notes == trained.notes
    assert (other.generate(image, audio, "ANG") == trained.generate(image, audio, "ANG")).all()


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    adapter = EskimezEmotion(lr_g=3e-3)
    cfg = adapter.config_for("smoke")
    adapter.cfg, adapter.nets = cfg, adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    batch = trainer.sampler.sample()
    losses = []
    for _ in range(12):
        torch.manual_seed(1)  # the same noise every step
        losses.append(trainer.g_update(trainer.generate(batch), batch, adversarial=True)["g_mrm"])
    assert losses[-1] < 0.7 * losses[0]


def test_discriminators_learn_real_versus_fake():
    torch.manual_seed(0)
    adapter = EskimezEmotion(lr_d=3e-3)
    cfg = adapter.config_for("smoke")
    adapter.cfg, adapter.nets = cfg, adapter.build(cfg)
    trainer = adapter.make_trainer(tiny_clips(), cfg)
    batch = trainer.sampler.sample(4)
    with torch.no_grad():
        fake = trainer.generate(batch)
    first = trainer.d_update(fake, batch)
    for _ in range(10):
        last = trainer.d_update(fake, batch)
    assert last["d_wdist"] > first["d_wdist"]  # the critic separates real from generated
    assert last["d_emo"] < first["d_emo"]  # emotion classes + fake


def test_speech_front_end_timing():
    """8 kHz input at unit RMS, 125 encoder steps per second, and frame t's context features
    change with the audio of frame t but not with audio far away."""
    wave = esk.speech_8k(np.random.default_rng(0).normal(0, 0.05, 6400), 10)
    assert wave.shape == (3200,) and abs(np.sqrt((wave ** 2).mean()) - 1) < 1e-4
    assert esk.speech_8k(np.zeros(100, np.float32), 2).shape == (640,)
    cfg = EskimezEmotion().config_for("smoke")
    enc = esk.SpeechEncoder(cfg).eval()
    frames = 12
    base = np.zeros((frames + 2 * cfg.speech_margin) * esk.SPEECH_PER_FRAME, np.float32)
    burst = base.copy()
    k = 6  # a burst inside frame 6's 8 kHz span
    lo = (cfg.speech_margin + k) * esk.SPEECH_PER_FRAME
    burst[lo:lo + esk.SPEECH_PER_FRAME] = np.random.default_rng(1).normal(0, 1, 320)
    with torch.no_grad():
        a = enc.context_features(torch.from_numpy(base)[None], frames)[0]
        b = enc.context_features(torch.from_numpy(burst)[None], frames)[0]
    changed = (a - b).abs().sum(1)
    assert changed[k] > 0
    assert changed[0] == 0 and changed[-1] == 0  # beyond the receptive field + context
    seg = esk.speech_segment(np.arange(10 * 320, dtype=np.float32), 0, 4, 2)
    assert seg.shape == (8 * 320,) and (seg[:640] == 0).all() and seg[640] == 0 and seg[641] == 1


def test_paper_budget_layer_sizes():
    with torch.device("meta"):
        g = EskimezEmotion().build(PAPER)
    convs = g["image_encoder"].convs
    assert [c.out_channels for c in convs] == [128, 256, 512, 512, 512, 512]
    assert [c.kernel_size[0] for c in convs] == [3, 3, 3, 3, 3, 4]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 2, 1]
    speech = g["speech_encoder"].convs
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in speech] == [
        (64, 63, 4), (128, 31, 4), (256, 17, 2), (512, 9, 2), (16, 1, 1)]
    assert g["speech_encoder"].lstm.num_layers == 2
    assert len(g["emotion_encoder"].fcs) == 2 and g["emotion_encoder"].fcs[0].in_features == 6
    assert g["noise_encoder"].lstm.num_layers == 1
    assert g["decoder"].project.out_features == PAPER.dec_channels[0] * 16  # a 4x4 map
    counts = EskimezEmotion.parameter_counts("paper")
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert counts["image_encoder"] == sum(
        cin * cout * k * k + cout for cin, cout, k in zip(
            (3, 128, 256, 512, 512, 512), (128, 256, 512, 512, 512, 512), (3, 3, 3, 3, 3, 4),
            strict=True))
    # one real forward pass at the paper's 128x128
    torch.manual_seed(0)
    g = EskimezEmotion().build(PAPER).eval()
    with torch.no_grad():
        out = g(torch.zeros(1, 3, 128, 128),
                torch.zeros(1, (1 + 2 * PAPER.speech_margin) * 320),
                esk.emotion_onehot(["NEU"]), torch.zeros(1, 1, PAPER.noise_dim))
    assert out.shape == (1, 1, 3, 128, 128)


def test_discriminator_shapes_and_mouth_weighting():
    cfg = EskimezEmotion().config_for("smoke")
    d_frame, d_emo = esk.FrameDiscriminator(cfg), esk.EmotionDiscriminator(cfg)
    video = torch.zeros(2, 4, 3, cfg.size, cfg.size)
    assert d_frame(video[:, 0], video[:, 0]).shape == (2,)
    assert d_emo(video).shape == (2, len(EMOTIONS) + 1)
    weights = cfg.mrm_floor + mouth_weights(cfg.size, cfg.mrm_sigma, cfg.mrm_peak)
    real = torch.zeros(1, 3, cfg.size, cfg.size)
    near, far = real.clone(), real.clone()
    y, x = np.unravel_index(int(weights.argmax()), (cfg.size, cfg.size))
    near[..., y, x] = 1
    far[..., 0, 0] = 1
    assert mrm_loss(near, real, weights) > 2 * mrm_loss(far, real, weights)


def test_config_checks():
    with pytest.raises(ValueError, match="does not fit"):
        esk.check_config(esk.EskimezConfig(size=100))
    with pytest.raises(ValueError, match="strides"):
        esk.check_config(esk.EskimezConfig(speech_strides=(4, 4, 2, 2, 2)))
