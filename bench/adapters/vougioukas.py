"""``vougioukas``: Vougioukas, Petridis and Pantic 2019, the temporal GAN of seed 003
(:mod:`bench.generators.vougioukas2019`).

Budgets (same code path, only sizes and schedules change):

- ``paper``: 128x96 (H x W) frames (the paper's 96x128, W x H; the square crop is resized to
  it), z_id 128, z_c 256, 10-d noise of variance 0.6, loss weights 600 / 1 / 0.8 / 0.2, Adam
  1e-4 (generator, frame discriminator) and 1e-5 (sequence, synchronisation discriminators)
  with the paper's decay, synchronisation discriminator on the lower half of the face; 8
  sequences of 75 frames (3 s) per step (batch and sequence length are not in the paper; ours);
- ``demo``: 64x48 frames, narrow layers, 4 sequences of 12 frames, learning rates raised for
  a short run: 350 steps (about 25 s of CPU training on a 2-core box; a step count, so every
  machine trains the same weights), synchronisation discriminator on the mouth box;
- ``smoke``: 32x24, a few steps (tests).
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.adapters.frame_gan import FrameGANAdapter
from bench.data.clip import Clip
from bench.generators.vougioukas2019 import (
    VougioukasConfig,
    VougioukasGenerator,
    VougioukasTrainer,
)

PAPER = VougioukasConfig()

DEMO = VougioukasConfig(
    size=64, frame_hw=(64, 48), id_channels=(32, 32, 64, 64), id_dim=64,
    audio_channels=(16, 16, 32, 32, 64), audio_dim=64, content_dim=64,
    dec_channels=(64, 64, 32, 32), img_disc_channels=(16, 32, 64, 64),
    seq_disc_channels=(16, 32, 32), seq_disc_pool=2, seq_disc_audio_channels=(8, 8, 16, 16, 32),
    seq_disc_audio_dim=32, seq_disc_hidden=64, sync_region="mouth",
    sync_video_channels=(16, 32, 64), sync_audio_channels=(8, 16, 32, 32, 64), sync_dim=64,
    w_rec_upper=300.0, w_rec_mouth=3000.0, lr_g=1e-3, lr_img=1e-4, lr_seq=1e-4, lr_sync=1e-3,
    batch=4, seq_len=8, img_samples=2, sync_samples=2, steps=350,
    val_clips=4)

SMOKE = VougioukasConfig(
    size=32, frame_hw=(32, 24), id_channels=(8, 8, 16), id_dim=16,
    audio_channels=(4, 4, 8, 8, 16), audio_dim=16, content_dim=16, noise_dim=4,
    noise_hidden=4, dec_channels=(16, 8, 8), img_disc_channels=(8, 8, 16),
    seq_disc_channels=(4, 8, 8), seq_disc_audio_channels=(4, 4, 4, 8, 8),
    seq_disc_audio_dim=8, seq_disc_hidden=8, sync_region="mouth", sync_video_channels=(8, 8),
    sync_audio_channels=(4, 4, 4, 8, 8), sync_dim=8, lr_g=1e-3, lr_img=1e-3, lr_seq=1e-3,
    lr_sync=1e-3, batch=2, seq_len=6, img_samples=1, sync_samples=1, steps=3,
    val_clips=1)


class Vougioukas(FrameGANAdapter):
    """Adapter for :mod:`bench.generators.vougioukas2019`."""

    name = "vougioukas"
    paper = ("Vougioukas, Petridis, Pantic 2019, Realistic speech-driven facial animation "
             "with GANs, IJCV (seed 003)")
    needs_emotion = False
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the paper states no parameter counts

    generator_class = VougioukasGenerator
    trainer_class = VougioukasTrainer

    def make_trainer(self, train: Sequence[Clip], cfg: VougioukasConfig) -> VougioukasTrainer:
        trainer = super().make_trainer(train, cfg)
        self.notes["sync_region"] = cfg.sync_region
        return trainer
