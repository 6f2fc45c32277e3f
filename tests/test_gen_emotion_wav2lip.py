"""emotion-wav2lip (seed 002, Goyal et al.): the published layer table at the paper budget (SEQ
and END), the emotion discriminator's frame-by-frame layout, the augmentations drawn once per
window, the loss weights, training on a fixed batch, the emotion discriminator learning, the
emotion changing the output, and save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_gen_wav2lip import talking_clip
from torch import nn

from bench import EMOTIONS
from bench.adapters import adapter_class
from bench.adapters.emotion_wav2lip import PAPER, EmotionWav2Lip
from bench.data.clip import Clip
from bench.generators.emotion_wav2lip import (
    EmotionDiscriminator,
    EmotionWav2LipGenerator,
    augment_windows,
    emotion_onehot,
)

torch.set_num_threads(1)


def emotional_clip(i: int, emotion: str, frames: int = 40, size: int = 48) -> Clip:
    """`talking_clip` whose brow line height and the brightness below it follow the emotion label (a
    learnable expression; emotions differ only there)."""
    clip = talking_clip(i, frames=frames, size=size)
    k = EMOTIONS.index(emotion)
    video = clip.frames.copy()
    row = int((0.22 + 0.03 * k) * size)
    video[:, row:row + 2, size // 3:2 * size // 3] = 10
    video[:, size // 4:] = np.clip(video[:, size // 4:].astype(int) + 20 * k - 50, 0,
                                   255).astype(np.uint8)
    return Clip(speaker=clip.speaker, clip_id=f"{clip.clip_id}-{emotion}", frames=video,
                audio=clip.audio, emotion=emotion)


def training_clips(n: int = 12) -> list[Clip]:
    return [emotional_clip(i, EMOTIONS[i % 6]) for i in range(n)]


@pytest.fixture(scope="module")
def trained() -> EmotionWav2Lip:
    adapter = EmotionWav2Lip(seed=3)
    log = adapter.fit(training_clips(6), [emotional_clip(20, "SAD")], "smoke")
    assert log["stages"]["generator"]["steps"] == 3
    assert log["stages"]["emotion_d"]["steps"] == 2
    return adapter


def test_registered():
    assert adapter_class("emotion-wav2lip") is EmotionWav2Lip
    assert EmotionWav2Lip.needs_emotion


def test_paper_layers_seq_and_end():
    """Sect. 2.2: the emotion encoder is 6 -> 512 -> 512 (two linear layers); SEQ joins it
    with the 512-d audio embedding, so the decoder's first convolution takes 1024 channels; END
    makes a 1x96x96 map joined to the decoder's 80-channel output (81 channels)."""
    seq = EmotionWav2LipGenerator(PAPER)
    enc = seq["emotion_encoder"]
    assert (enc.fc1.in_features, enc.fc1.out_features, enc.fc2.out_features) == (6, 512, 512)
    first_decoder_conv = next(m for m in seq["face_decoder"].modules()
                              if isinstance(m, nn.Conv2d | nn.ConvTranspose2d))
    assert first_decoder_conv.in_channels == 1024
    end = EmotionWav2LipGenerator(PAPER.__class__(**{**PAPER.__dict__, "concat": "end"}))
    assert end["emotion_encoder"].fc2.out_features == 96 * 96
    first_output_conv = next(m for m in end["output_block"].modules()
                             if isinstance(m, nn.Conv2d))
    assert first_output_conv.in_channels == 81
    # forward shapes: 5 frames of 6 channels, 5 mel windows, 5 one-hot rows
    mel, faces = torch.zeros(5, 1, 80, 16), torch.zeros(5, 6, 96, 96)
    onehot = emotion_onehot(["HAP"] * 5)
    for net in (seq, end):
        assert net(mel, faces, onehot).shape == (5, 3, 96, 96)


def test_emotion_discriminator_paper_layers_and_frame_layout():
    """Sect. 2.5 / ``models/emo_disc.py``: five stride-2 convolutions to 512x3x3 = 4608, a
    4608 -> 2048 -> 512 projector, an LSTM of 512 and 6 logits. Each frame goes through the
    convolutions on its own 3 channels (EmoGen's ``.view`` over (B, C, T, H, W) mixed time and
    channels): a frame's features do not depend on the other frames."""
    d = EmotionDiscriminator(PAPER)
    assert [c.out_channels for c in d.convs] == [64, 128, 256, 512, 512]
    assert d.projector[0].in_features == 4608 and d.projector[0].out_features == 2048
    assert d.projector[2].out_features == 512 and d.lstm.hidden_size == 512
    assert d.classify.out_features == 6
    small = EmotionDiscriminator(EmotionWav2Lip().config_for("smoke"))
    torch.manual_seed(0)
    video = torch.rand(2, 5, 3, 24, 24)
    seen: list[torch.Tensor] = []
    hook = small.projector.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    assert small(video).shape == (2, 6)
    hook.remove()
    x = video[1, 3:4]  # sample 1, frame 3, alone
    for conv in small.convs:
        x = torch.nn.functional.leaky_relu(conv(x), 0.3)
    torch.testing.assert_close(seen[0][1, 3], x.reshape(-1))


def test_augmentations_are_drawn_once_per_window():
    """Sect. 2.1: the same augmentation on every frame of a window; windows differ."""
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(4, 1, 3, 16, 16)
    video = frame.expand(-1, 5, -1, -1, -1).clone()  # 4 windows of 5 identical frames
    out = augment_windows(video, g, p=1.0, p_each=1.0)
    assert not torch.equal(out, video)
    for w in range(4):
        for f in range(1, 5):
            assert torch.equal(out[w, f], out[w, 0])
    assert not torch.allclose(out[0, 0] - video[0, 0], out[1, 0] - video[1, 0])
    assert torch.equal(augment_windows(video, g, p=0.0), video)  # the chain's probability
    assert out.min() >= 0 and out.max() <= 1


def test_loss_weights_as_configured():
    """Eq. 1 at the paper budget: alpha (sync) 0 until the expert gate, then 0.03; beta
    (perceptual) 0.01; gamma (emotion) 0.001 (the paper; EmoGen's code: 0.01); L1 gets the
    rest."""
    assert (PAPER.w_perc, PAPER.w_emo, PAPER.betas, PAPER.emo_lr, PAPER.lr) == (
        0.01, 0.001, (0.5, 0.999), 1e-6, 1e-4)
    _, trainer = smoke_trainer(w_perc=0.01, w_emo=0.001)
    parts = {"l1": torch.tensor(0.5), "perc": torch.tensor(2.0), "emo": torch.tensor(3.0)}
    assert trainer.alpha == 0
    assert float(trainer.total(parts)) == pytest.approx(0.989 * 0.5 + 0.01 * 2 + 0.001 * 3)
    trainer.alpha = 0.03
    parts["sync"] = torch.tensor(4.0)
    assert float(trainer.total(parts)) == pytest.approx(
        0.959 * 0.5 + 0.01 * 2 + 0.001 * 3 + 0.03 * 4)


def smoke_trainer(**options):
    adapter = EmotionWav2Lip(seed=0, **options)
    cfg = adapter.config_for("smoke")
    adapter.cfg, adapter.nets = cfg, adapter.build(cfg)
    return adapter, adapter.make_trainer(training_clips(6), [emotional_clip(20, "SAD")], cfg)


def test_training_inputs_mask_the_whole_face():
    _, trainer = smoke_trainer()
    batch = trainer.sampler.sample(3)
    faces = trainer.faces(batch)
    assert faces.shape[1] == 6 and (faces[:, :3] == 0).all()
    onehot = trainer.condition(batch)
    assert onehot.shape == (faces.shape[0], 6)
    assert torch.equal(onehot.sum(1), torch.ones(faces.shape[0]))  # every clip has a label


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    _, trainer = smoke_trainer(lr=3e-3, eval_every=1000, augment_p=0.0)
    batch = trainer.sampler.sample()
    trainer.draw = lambda: batch
    first = trainer.generator_step(2)["g_l1"]
    for i in range(30):
        last = trainer.generator_step(3 + i)["g_l1"]
    assert last < 0.6 * first


def test_emotion_discriminator_learns_its_training_data():
    """Smoke-size pre-training on clips whose brow line and brightness follow the emotion: the
    discriminator's accuracy on its own training windows beats chance (1/6) clearly."""
    torch.manual_seed(0)
    _, trainer = smoke_trainer(emo_pretrain_steps=100, emo_pretrain_lr=3e-3, augment_p=0.0,
                               emo_pretrain_batch=16,
                               expert_steps=1)
    before = trainer.emotion_d_accuracy(trainer.train_bank)
    trainer.pretrain(progress=False)
    after = trainer.emotion_d_accuracy(trainer.train_bank)
    print(f"\nemotion D on its training windows: {before} -> {after}")
    assert after >= 0.6 and after > before


def test_a_different_emotion_changes_the_output(trained: EmotionWav2Lip):
    clip = emotional_clip(30, "NEU")
    happy = trained.generate(clip.frames[0], clip.audio[:6400], "HAP")
    sad = trained.generate(clip.frames[0], clip.audio[:6400], "SAD")
    assert happy.shape == (10, 48, 48, 3)
    assert np.abs(happy.astype(int) - sad.astype(int)).max() > 0
    assert np.array_equal(happy, trained.generate(clip.frames[0], clip.audio[:6400], "HAP"))
    with pytest.raises(ValueError, match="unknown emotion"):
        trained.generate(clip.frames[0], clip.audio[:6400], "BORED")


def test_save_load_round_trip(trained: EmotionWav2Lip, tmp_path):
    clip = emotional_clip(31, "ANG")
    trained.save(tmp_path)
    other = EmotionWav2Lip(seed=3)
    other.load(tmp_path)
    assert other.cfg == trained.cfg and other.notes == trained.notes
    assert isinstance(other.nets, EmotionWav2LipGenerator)
    a = trained.generate(clip.frames[0], clip.audio, "FEA")
    assert np.array_equal(a, other.generate(clip.frames[0], clip.audio, "FEA"))
