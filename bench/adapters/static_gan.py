"""``static-gan``: the static GAN baseline of Vougioukas, Petridis and Pantic 2019 (seed 003,
Sect. 6.2 and Table 6; :mod:`bench.generators.static_gan`): a per-frame generator trained
with the lower-half L1 and a frame adversarial loss, no temporal model.

Budgets (same code path, only sizes and schedules change):

- ``paper``: the proposed model's per-frame parts at its sizes (128x96 frames, z_id 128,
  256-d audio encoding, 10-d white noise of variance 0.6), weights 600 / 1, Adam 1e-4 with
  the paper's decay; 8 clips x 8 frames per step (not in the paper; ours);
- ``demo``: 64x48 frames, narrow layers, 8 clips x 4 frames per step, 500 steps (about
  25 s of CPU training on a 2-core box), with the demo's upper-half and mouth L1 terms;
- ``smoke``: 32x24, a few steps (tests).
"""

from __future__ import annotations

from bench.adapters.frame_gan import FrameGANAdapter
from bench.generators.static_gan import StaticGANConfig, StaticGANTrainer, StaticGenerator

PAPER = StaticGANConfig()

DEMO = StaticGANConfig(
    size=64, frame_hw=(64, 48), id_channels=(32, 32, 64, 64), id_dim=64,
    audio_channels=(16, 16, 32, 32, 64), content_dim=64, dec_channels=(64, 64, 32, 32),
    img_disc_channels=(16, 32, 64, 64), w_rec_upper=300.0, w_rec_mouth=3000.0, lr_g=1e-3,
    lr_img=1e-4, batch=8, frames_per_clip=4, steps=500, val_clips=4)

SMOKE = StaticGANConfig(
    size=32, frame_hw=(32, 24), id_channels=(8, 8, 16), id_dim=16,
    audio_channels=(4, 4, 8, 8, 16), content_dim=16, noise_dim=4, dec_channels=(16, 8, 8),
    img_disc_channels=(8, 8, 16), lr_g=1e-3, lr_img=1e-3, batch=2, frames_per_clip=3,
    steps=3, val_clips=1)


class StaticGAN(FrameGANAdapter):
    """Adapter for :mod:`bench.generators.static_gan`."""

    name = "static-gan"
    paper = ("static GAN baseline (L1 + frame adversarial loss) of Vougioukas, Petridis, "
             "Pantic 2019, Realistic speech-driven facial animation with GANs, IJCV (seed 003)")
    needs_emotion = False
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the paper states no parameter counts
    sequence_field = "frames_per_clip"  # batch clips x frames_per_clip frames per step

    generator_class = StaticGenerator
    trainer_class = StaticGANTrainer
