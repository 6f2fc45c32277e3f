"""The static GAN baseline of Vougioukas, Petridis and Pantic 2019 (IJCV; seed 003, Sect. 6.2
and Table 6): "a GAN-based method that uses a combination of an L1 loss and an adversarial
loss on individual frames", which the paper calls a *static* method: each frame is generated
from the still image and that frame's audio alone, with no knowledge of the previous frames.

The paper gives no more detail, so we build it from the proposed model's per-frame parts
(:mod:`bench.generators.vougioukas2019`; the parts are :mod:`bench.generators.blocks` and
:mod:`bench.generators.frame_gan`), leaving out everything temporal:

- Identity Encoder (Sect. 3.1.1) and U-Net Frame Decoder (3.1.4) as in the proposed model;
- the audio frame encoder of the Content Encoder (3.1.2, 1-D convolutions on each frame's
  0.2 s of raw audio) *without* its GRU: its output is the frame's content encoding;
- white noise: the 10-d Gaussian of variance 0.6 of Sect. 3.1.3, drawn independently for
  every frame and fed to the decoder directly (no noise GRU). The paper notes that the
  baseline "is capable of producing frames with closed eyes but these exhibit no continuity"
  (Sect. 6.3), which is what frame-independent noise gives;
- the Frame Discriminator (3.2.1, conditioned on the still frame) as the only
  discriminator: no sequence and no synchronisation discriminator;
- losses: ``w_rec`` x the lower-half L1 of Eq. 6 + ``w_img`` x the frame adversarial loss
  of Eq. 2 (non-saturating for the generator), the proposed model's weights (600 and 1), so
  that the two models differ only in the temporal parts; Adam 1e-4 for both networks with the
  paper's decay (2 % and 10 % every 10 epochs) and mirrored training videos.

*Choices:* the frames are 128x96 (H x W) as for the proposed model; a training step draws
``batch`` clips and ``frames_per_clip`` consecutive frames of each (the frames are generated
independently; drawing several per clip only saves identity encodings), with the clip's
first frame as the still image; the demo budget adds the same small upper-half and mouth L1
terms as the proposed model's demo budget (:func:`bench.generators.frame_gan.reconstruction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.training import run_steps
from bench.generators import blocks, frame_gan
from bench.generators.clip_banks import FrameBank, SequenceSampler
from bench.generators.face_regions import lower_half_row, mouth_box_hw


@dataclass(frozen=True)
class StaticGANConfig(frame_gan.FrameGANConfig):
    """Sizes, loss weights and schedule of the static baseline (defaults: paper budget): the
    proposed model's per-frame parts (:class:`~bench.generators.frame_gan.FrameGANConfig`;
    ``content_dim`` is the audio frame encoder's output, the per-frame content encoding) and
    how many frames of each clip a step generates."""

    frames_per_clip: int = 8
    """Frames per clip per step (generated independently); ``batch`` clips per step."""


def check_config(cfg: StaticGANConfig) -> None:
    """Raise ValueError when the sizes do not fit together."""
    blocks.check_widths(cfg, ("id_channels", "dec_channels", "img_disc_channels"),
                        ("audio_channels",))


class StaticGenerator(nn.ModuleDict):
    """Per-frame generator: keys ``identity_encoder``, ``audio_encoder``, ``frame_decoder``;
    frame ``t`` depends on the still image, audio frame ``t`` and noise ``t`` only."""

    def __init__(self, cfg: StaticGANConfig) -> None:
        check_config(cfg)
        latent = cfg.id_dim + cfg.content_dim + cfg.noise_dim
        super().__init__({
            "identity_encoder": blocks.IdentityEncoder(cfg.frame_hw, cfg.id_channels,
                                                       cfg.id_dim),
            "audio_encoder": blocks.AudioFrameEncoder(cfg.audio_channels, cfg.content_dim,
                                                      cfg.audio_kernel, cfg.audio_stride),
            "frame_decoder": blocks.FrameDecoder(cfg.frame_hw, cfg.id_channels,
                                                 cfg.dec_channels, latent)})
        self.cfg = cfg

    def forward(self, identity: torch.Tensor, windows: torch.Tensor, noise: torch.Tensor,
                chunk: int | None = None) -> torch.Tensor:
        """identity ``(N, 3, H, W)``, audio frames ``(N, T, window)``, white noise
        ``(N, T, noise_dim)`` -> frames ``(N, T, 3, H, W)`` in ``[-1, 1]``."""
        latents = torch.cat([self["audio_encoder"](windows), noise], 2)
        return blocks.decode_frames(self["identity_encoder"], self["frame_decoder"], identity,
                                    latents, chunk)

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, audio: np.ndarray, num_frames: int,
                   generator: torch.Generator) -> torch.Tensor:
        """One identity ``(1, 3, s, s)`` + 16 kHz audio -> ``(T, 3, s, s)``."""
        return frame_gan.synthesize_with(self, self.cfg, image, audio, num_frames, generator)


class StaticGANTrainer:
    """L1 (lower half) + frame adversarial loss, alternating one discriminator and one
    generator update per step."""

    def __init__(self, net: StaticGenerator, cfg: StaticGANConfig, bank: FrameBank,
                 frames_per_clip: int, device: torch.device, seed: int) -> None:
        self.net, self.cfg, self.device = net, cfg, device
        self.rng = np.random.default_rng(seed)
        self.sampler = SequenceSampler(bank, frames_per_clip, cfg.mirror, device, self.rng)
        self.row = lower_half_row(cfg.frame_hw[0])
        self.mouth = mouth_box_hw(cfg.frame_hw)
        self.d_img = blocks.FrameDiscriminator(cfg.frame_hw, cfg.img_disc_channels).to(device)
        self.opt_g = torch.optim.Adam(net.parameters(), cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.d_img.parameters(), cfg.lr_img, betas=cfg.betas)
        self.decay = frame_gan.lr_decay(cfg, bank.total_frames, cfg.batch * frames_per_clip,
                                        self.opt_g, [self.opt_d])

    def step(self, i: int) -> dict[str, float]:
        cfg, net = self.cfg, self.net
        self.decay(i)  # the proposed model's decay (Sect. 3.3)
        batch = self.sampler.sample(cfg.batch)
        b, k = batch.frames.shape[:2]
        noise = blocks.draw_noise(b, k, cfg.noise_dim, cfg.noise_var, self.device)
        net.train()
        self.d_img.train()
        fake = net(batch.identity, batch.windows, noise)
        cond = batch.identity[:, None].expand_as(batch.frames).flatten(0, 1)
        real_frames, fake_frames = batch.frames.flatten(0, 1), fake.flatten(0, 1)

        d_loss = (frame_gan.bce(self.d_img(real_frames, cond), True)
                  + frame_gan.bce(self.d_img(fake_frames.detach(), cond), False))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        rec_total, rec = frame_gan.reconstruction(fake, batch.frames, self.row, cfg.w_rec,
                                                  cfg.w_rec_upper, cfg.w_rec_mouth, self.mouth)
        adv = frame_gan.bce(self.d_img(fake_frames, cond), True)
        total = rec_total + cfg.w_img * adv
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        return {"d_img": d_loss.item(), "rec": rec.item(), "g_img": adv.item(),
                "g_total": total.item()}

    def fit(self, progress: bool = False) -> dict[str, Any]:
        log = run_steps(self.step, self.cfg.steps, self.cfg.max_seconds, progress=progress,
                        desc="static-gan")
        return {**log.as_dict(), "frames_per_clip": self.sampler.length}

