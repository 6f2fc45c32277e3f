"""Vougioukas, Petridis and Pantic 2019, "Realistic Speech-Driven Facial Animation with GANs"
(IJCV; seed 003): a temporal GAN that turns one still image and a speech signal into a video.

Frames (Sect. 3.1.1 and Eq. 6): the paper's frames are 96x128, which we read as W x H (Eq. 6
writes a frame's dimensions ``W x H``; aligned faces are taller than wide), so ``frame_hw =
(128, 96)``. talkbench's aligned crops are square: the network works on the square crop
resized to ``frame_hw`` (squeezed horizontally; the output is stretched back), so every pixel
of the crop is generated and no background strip has to be pasted. The smaller budgets keep
the 4:3 aspect (64x48, 32x24).

Generator (Sect. 3.1, Fig. 3), four sub-networks (the blocks the static baseline shares are
in :mod:`bench.generators.blocks`):

- Identity Encoder (3.1.1): strided 2-D convolutions with batch normalisation and ReLU; the
  first ``len(id_channels)`` halve the frame (4x4 kernels, stride 2) down to ``4 x 3``, the
  last one (kernel ``4 x 3``) maps it to the ``id_dim`` = 128 encoding z_id: at 128x96, five
  plus one = the paper's six layers. Widths are ours (the paper gives none). *Choice:* the
  embedding layer ends in tanh without batch normalisation (batch statistics of a ``1 x 1``
  map over a handful of identities are degenerate). Each halving layer's output is a U-Net
  skip (3.1.4).
- Content Encoder (3.1.2): each video frame's 0.2 s of raw audio (3200 samples at 16 kHz,
  centred on the frame, zero-padded at the clip's ends, stride 640 = Eq. 1;
  :func:`bench.generators.audio_frames.audio_windows`) goes through 1-D convolutions with batch
  normalisation and ReLU: a first layer with a large kernel (``audio_kernel`` = 250 samples,
  stride 50: 64 steps), then kernel-4 stride-2 layers down to 4 steps and a kernel-4 layer to
  one ``audio_dim`` vector (widths ours); a one-layer GRU turns the sequence of these into
  the 256-element content encoding z_c.
- Noise Generator (3.1.3): a 10-d Gaussian vector per frame, mean 0, variance 0.6, through a
  one-layer GRU (hidden size ``noise_hidden`` = 10, ours) -> temporally coherent noise z_n.
  The noise is drawn outside the module so that generation draws it from a seeded
  ``torch.Generator`` (deterministic output).
- Frame Decoder (3.1.4): ``[z_id, z_c, z_n]`` per frame -> transposed convolution to a
  ``4 x 3`` map, then strided transposed convolutions (4x4, stride 2, batch norm, ReLU), each
  fed the concatenation of the previous map and the identity encoder's skip of that
  resolution (U-Net), the last one to 3 channels with tanh.

Discriminators (Sect. 3.2), all ending in a logit (Eqs. 2-4 are the standard GAN log loss;
binary cross-entropy on logits):

- Frame Discriminator (3.2.1): six-layer CNN (halving 4x4 convolutions, LeakyReLU 0.2, batch
  norm from the second, and a last ``4 x 3`` convolution to one logit) on a frame concatenated
  channel-wise with the still frame x_1 (the condition). It sees ``img_samples`` frames drawn
  uniformly from each sequence (S(x) in Eq. 2).
- Sequence Discriminator (3.2.2): spatio-temporal convolutions (3-D, temporal kernel 3,
  stride 1, spatial 4x4 stride 2, on the frames or, with ``seq_disc_pool`` > 1, on frames
  average-pooled by that factor: a cost choice of the demo budget) give a feature vector per
  time step; Eq. 4 conditions it on
  the audio ``D_seq(x, a)``, so each step's vector is concatenated with an encoding of that
  frame's 0.2 s audio window (an audio stream like the content encoder's, our reading of
  Eq. 4); a one-layer GRU runs over the steps and a single linear layer on the last step
  classifies the sequence.
- Synchronisation Discriminator (3.2.3, Fig. 5): 0.2 s snippets = ``sync_frames`` = 5 video
  frames and the 3200 audio samples they span. Video stream: the snippet's lower half of the
  face (the paper; ``sync_region = "lower_half"``, rows below
  :func:`bench.generators.face_regions.lower_half_mask`'s cut) or the mouth box
  (``sync_region = "mouth"``, :func:`bench.generators.face_regions.mouth_box`), the 5 frames stacked
  as channels, through halving 2-D convolutions and a linear layer; audio stream: 1-D
  convolutions as in the content encoder; the Euclidean distance between the two embeddings
  goes through a single-layer perceptron (``Linear(1, 1)``) to the in-sync logit. It is
  trained (Eq. 3, Fig. 6) on real in-sync pairs (weight 1), real pairs with audio shifted by
  ``sync_shift`` frames within the clip (weight 1/2) and generated pairs with their own audio
  (weight 1/2).

Losses (Sect. 3.3): the generator minimises ``w_rec * L1 + w_img * L_img + w_sync * L_sync +
w_seq * L_seq`` (Eqs. 5 and 7; weights 600, 1, 0.8, 0.2). The adversarial terms use the
non-saturating form (the generator maximises ``log D(fake)``; the paper writes the minimax
game). The reconstruction loss (Eq. 6) is L1 on the lower half of the frame only, averaged
over those pixels (Eq. 6 writes a sum; a mean keeps ``w_rec = 600`` independent of the frame
size, and a sum would make the adversarial terms vanish beside it). Two extra L1 terms,
``w_rec_upper`` (upper half) and ``w_rec_mouth`` (mouth box), are 0 in the paper budget; the
demo budget uses them (:func:`bench.generators.frame_gan.reconstruction` says why). A weight
of 0 leaves a discriminator out entirely (ablations as in the paper's Table 5).

Training (Sect. 3.3 and 4): Adam, 1e-4 for the generator and the frame discriminator, 1e-5
for the sequence and synchronisation discriminators; the generator's learning rate decays by
2 % and the discriminators' by 10 % every 10 epochs (an epoch: as many steps as it takes to
show every training frame once). Mirrored videos as augmentation (Sect. 4): each sequence of a
batch is flipped horizontally with probability 1/2. *Choices where the paper is silent:*
Adam betas (0.5, 0.999); a sample is ``seq_len`` consecutive frames of one clip with the
clip's first frame as the still image x_1 (the paper trains on whole videos; at test time
the identity is a clip's first frame); each step updates every discriminator once on the
step's generated (detached) batch, then the generator once; ``sync_samples`` snippets per
sequence; the shift of the out-of-sync audio is 3 to 15 frames either way, within the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.training import run_steps
from bench.generators.blocks import (
    AudioFrameEncoder,
    FrameDecoder,
    FrameDiscriminator,
    IdentityEncoder,
    check_widths,
    decode_frames,
    down_blocks,
    draw_noise,
    halvings,
    repeat_frames,
)
from bench.generators.clip_banks import FrameBank, SequenceBatch, SequenceSampler
from bench.generators.face_regions import lower_half_row, mouth_box_hw
from bench.generators.frame_gan import (
    FrameGANConfig,
    bce,
    lr_decay,
    reconstruction,
    synthesize_with,
)


@dataclass(frozen=True)
class VougioukasConfig(FrameGANConfig):
    """Sizes, loss weights and schedule (module docstring; defaults are the paper budget): the
    per-frame parts' settings (:class:`~bench.generators.frame_gan.FrameGANConfig`) and the
    temporal model's own."""

    audio_dim: int = 256
    """Output of the content encoder's audio frame encoder (its GRU makes z_c,
    ``content_dim``)."""
    noise_hidden: int = 10
    seq_disc_channels: tuple[int, ...] = (32, 64, 128, 256, 256)
    """Sequence discriminator halving layers (on frames average-pooled by
    ``seq_disc_pool``) down to height 4."""
    seq_disc_pool: int = 1
    """Factor the sequence discriminator's frames are average-pooled by (1: full frames)."""
    seq_disc_audio_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    seq_disc_audio_dim: int = 256
    seq_disc_hidden: int = 256
    sync_region: str = "lower_half"
    """``lower_half`` (the paper) or ``mouth`` (the mouth box)."""
    sync_frames: int = 5
    sync_video_channels: tuple[int, ...] = (64, 128, 256, 512)
    sync_audio_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    sync_dim: int = 256
    sync_shift: tuple[int, int] = (3, 15)
    """Smallest and largest shift (frames) of the out-of-sync audio."""
    w_sync: float = 0.8
    w_seq: float = 0.2
    lr_seq: float = 1e-5
    lr_sync: float = 1e-5
    seq_len: int = 75
    """Frames per sequence (3 s, a GRID video)."""
    img_samples: int = 4
    """Frames per sequence the frame discriminator sees."""
    sync_samples: int = 2
    """0.2 s snippets per sequence the synchronisation discriminator sees."""


def check_config(cfg: VougioukasConfig) -> None:
    """Raise ValueError when the sizes do not fit together."""
    check_widths(cfg, ("id_channels", "dec_channels", "img_disc_channels"),
                 ("audio_channels", "seq_disc_audio_channels", "sync_audio_channels"))
    h, w = cfg.frame_hw
    pooled = (h // cfg.seq_disc_pool, w // cfg.seq_disc_pool)
    if pooled[0] * cfg.seq_disc_pool != h or len(cfg.seq_disc_channels) != halvings(pooled):
        raise ValueError(f"seq_disc_channels needs {halvings(pooled)} widths for frames "
                         f"pooled to {pooled}")
    if cfg.sync_region not in ("lower_half", "mouth"):
        raise ValueError(f"sync_region must be lower_half or mouth, got {cfg.sync_region!r}")


# ---------------------------------------------------------------------------------------------
# Regions of the frame


def sync_box(cfg: VougioukasConfig) -> tuple[int, int, int, int]:
    """The region the synchronisation discriminator sees: ``(top, bottom, left, right)``."""
    h, w = cfg.frame_hw
    if cfg.sync_region == "mouth":
        return mouth_box_hw(cfg.frame_hw)
    return lower_half_row(h), h, 0, w


# ---------------------------------------------------------------------------------------------
# Generator


class ContentEncoder(nn.Module):
    """Sect. 3.1.2: the audio frame encoder and a one-layer GRU -> z_c per frame."""

    def __init__(self, cfg: VougioukasConfig) -> None:
        super().__init__()
        self.audio = AudioFrameEncoder(cfg.audio_channels, cfg.audio_dim, cfg.audio_kernel,
                                       cfg.audio_stride)
        self.rnn = nn.GRU(cfg.audio_dim, cfg.content_dim, batch_first=True)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """``(N, T, window)`` -> ``(N, T, content_dim)``."""
        out, _ = self.rnn(self.audio(windows))
        return out


class NoiseGenerator(nn.Module):
    """Sect. 3.1.3: Gaussian noise (drawn by :func:`draw_noise`) through a one-layer GRU."""

    def __init__(self, cfg: VougioukasConfig) -> None:
        super().__init__()
        self.rnn = nn.GRU(cfg.noise_dim, cfg.noise_hidden, batch_first=True)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(noise)
        return out


class VougioukasGenerator(nn.ModuleDict):
    """The temporal generator (Fig. 3): keys ``identity_encoder``, ``content_encoder``,
    ``noise_generator``, ``frame_decoder``."""

    def __init__(self, cfg: VougioukasConfig) -> None:
        check_config(cfg)
        latent = cfg.id_dim + cfg.content_dim + cfg.noise_hidden
        super().__init__({
            "identity_encoder": IdentityEncoder(cfg.frame_hw, cfg.id_channels, cfg.id_dim),
            "content_encoder": ContentEncoder(cfg),
            "noise_generator": NoiseGenerator(cfg),
            "frame_decoder": FrameDecoder(cfg.frame_hw, cfg.id_channels, cfg.dec_channels,
                                          latent)})
        self.cfg = cfg

    def latents(self, windows: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-frame ``[z_c, z_n]`` ``(N, T, content_dim + noise_hidden)``."""
        return torch.cat([self["content_encoder"](windows), self["noise_generator"](noise)], 2)

    def forward(self, identity: torch.Tensor, windows: torch.Tensor, noise: torch.Tensor,
                chunk: int | None = None) -> torch.Tensor:
        """identity ``(N, 3, H, W)``, audio frames ``(N, T, window)``, noise
        ``(N, T, noise_dim)`` -> frames ``(N, T, 3, H, W)`` in ``[-1, 1]``."""
        return decode_frames(self["identity_encoder"], self["frame_decoder"], identity,
                             self.latents(windows, noise), chunk)

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, audio: np.ndarray, num_frames: int,
                   generator: torch.Generator) -> torch.Tensor:
        """One identity ``(1, 3, s, s)`` + 16 kHz audio -> ``(T, 3, s, s)``."""
        return synthesize_with(self, self.cfg, image, audio, num_frames, generator)


# ---------------------------------------------------------------------------------------------
# Discriminators


class SequenceDiscriminator(nn.Module):
    """Sect. 3.2.2 and Eq. 4: spatio-temporal convolutions per step, joined with the step's
    audio encoding, a one-layer GRU and a linear classifier on the last step."""

    def __init__(self, cfg: VougioukasConfig) -> None:
        super().__init__()
        self.pool = cfg.seq_disc_pool
        self.body, cout = down_blocks(3, cfg.seq_disc_channels, dims=3)
        n = len(cfg.seq_disc_channels)
        h, w = cfg.frame_hw[0] // self.pool, cfg.frame_hw[1] // self.pool
        flat = cout * (h >> n) * (w >> n)
        self.audio = AudioFrameEncoder(cfg.seq_disc_audio_channels, cfg.seq_disc_audio_dim,
                                       cfg.audio_kernel, cfg.audio_stride, act="lrelu",
                                       final="lrelu")
        self.rnn = nn.GRU(flat + cfg.seq_disc_audio_dim, cfg.seq_disc_hidden, batch_first=True)
        self.head = nn.Linear(cfg.seq_disc_hidden, 1)

    def forward(self, frames: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """``(N, T, 3, H, W)`` frames and ``(N, T, window)`` audio frames -> ``(N,)``."""
        x = frames.transpose(1, 2)  # (N, 3, T, H, W)
        if self.pool > 1:
            x = F.avg_pool3d(x, (1, self.pool, self.pool))
        x = self.body(x)  # (N, C, T, h, w)
        x = x.transpose(1, 2).flatten(2)  # (N, T, C h w)
        out, _ = self.rnn(torch.cat([x, self.audio(windows)], 2))
        return self.head(out[:, -1]).flatten()


class SyncDiscriminator(nn.Module):
    """Sect. 3.2.3 and Fig. 5: video and audio streams, their Euclidean distance, and a
    single-layer perceptron -> in-sync logit."""

    def __init__(self, cfg: VougioukasConfig) -> None:
        super().__init__()
        top, bottom, left, right = sync_box(cfg)
        self.box = (top, bottom, left, right)
        self.video, cout = down_blocks(3 * cfg.sync_frames, cfg.sync_video_channels)
        n = len(cfg.sync_video_channels)
        h, w = bottom - top, right - left
        for _ in range(n):
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"sync region {bottom - top}x{right - left} is too small for "
                             f"{n} halving layers")
        self.video_fc = nn.Linear(cout * h * w, cfg.sync_dim)
        self.audio = AudioFrameEncoder(cfg.sync_audio_channels, cfg.sync_dim, cfg.audio_kernel,
                                       cfg.audio_stride, act="lrelu", final="none")
        self.classify = nn.Linear(1, 1)
        with torch.no_grad():  # a larger distance means out of sync
            self.classify.weight.fill_(-1.0)
            self.classify.bias.fill_(1.0)

    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.box
        return frames[..., top:bottom, left:right]

    def forward(self, snippets: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``(M, sync_frames, 3, H, W)`` video snippets and their ``(M, 3200)`` audio ->
        ``(M,)`` logits."""
        v = self.video(self.crop(snippets).flatten(1, 2))
        v = self.video_fc(v.flatten(1))
        a = self.audio(audio)
        distance = (v - a).pow(2).sum(1).add(1e-8).sqrt()
        return self.classify(distance[:, None]).flatten()


# ---------------------------------------------------------------------------------------------
# Training samples


def sample_frames(batch: SequenceBatch, count: int, rng: np.random.Generator) -> np.ndarray:
    """S(x): ``count`` frame indices per sequence, uniformly at random: ``(B, count)``."""
    return rng.integers(0, batch.frames.shape[1], (batch.frames.shape[0], count))


def gather_frames(frames: torch.Tensor, index: np.ndarray) -> torch.Tensor:
    """``(B, L, ...)`` and ``(B, k)`` indices -> ``(B * k, ...)``."""
    rows = torch.arange(frames.shape[0])[:, None].expand(index.shape).reshape(-1)
    return frames[rows, torch.from_numpy(index).reshape(-1)]


def shifted_start(rng: np.random.Generator, start: int, length: int, span: int,
                  shift: tuple[int, int]) -> int:
    """A start ``start + d`` with ``shift[0] <= |d| <= shift[1]`` frames and room for
    ``span`` frames in a clip of ``length``; when none fits, the farthest start there is."""
    lo, hi = shift
    options = [start + d for d in range(-hi, hi + 1)
               if abs(d) >= lo and 0 <= start + d <= length - span]
    if options:
        return int(rng.choice(options))
    far = 0 if start >= (length - span) / 2 else length - span
    return int(far)


# ---------------------------------------------------------------------------------------------
# Training


class VougioukasTrainer:
    """Sect. 3.3: the discriminators, their optimisers and the alternating updates around a
    :class:`VougioukasGenerator`. A weight of 0 leaves its discriminator out."""

    def __init__(self, net: VougioukasGenerator, cfg: VougioukasConfig, bank: FrameBank,
                 length: int, device: torch.device, seed: int) -> None:
        self.net, self.cfg, self.bank, self.device = net, cfg, bank, device
        self.rng = np.random.default_rng(seed)
        self.sampler = SequenceSampler(bank, length, cfg.mirror, device, self.rng)
        self.length = length
        self.row = lower_half_row(cfg.frame_hw[0])
        self.mouth = mouth_box_hw(cfg.frame_hw)
        self.d_img = (FrameDiscriminator(cfg.frame_hw, cfg.img_disc_channels).to(device)
                      if cfg.w_img > 0 else None)
        self.d_seq = SequenceDiscriminator(cfg).to(device) if cfg.w_seq > 0 else None
        use_sync = cfg.w_sync > 0 and length >= cfg.sync_frames
        self.d_sync = SyncDiscriminator(cfg).to(device) if use_sync else None
        self.opt_g = torch.optim.Adam(net.parameters(), cfg.lr_g, betas=cfg.betas)
        self.opt_img = (torch.optim.Adam(self.d_img.parameters(), cfg.lr_img, betas=cfg.betas)
                        if self.d_img is not None else None)
        self.opt_seq = (torch.optim.Adam(self.d_seq.parameters(), cfg.lr_seq, betas=cfg.betas)
                        if self.d_seq is not None else None)
        self.opt_sync = (torch.optim.Adam(self.d_sync.parameters(), cfg.lr_sync,
                                          betas=cfg.betas)
                         if self.d_sync is not None else None)
        self.decay = lr_decay(cfg, bank.total_frames, cfg.batch * length, self.opt_g,
                              [self.opt_img, self.opt_seq, self.opt_sync])

    def discriminators(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {}
        if self.d_img is not None:
            out["img"] = self.d_img
        if self.d_seq is not None:
            out["seq"] = self.d_seq
        if self.d_sync is not None:
            out["sync"] = self.d_sync
        return out

    def sync_pairs(self, batch: SequenceBatch) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """Snippet starts within each sequence ``(B, k)``, their in-sync audio and audio
        shifted within the clip, each ``(B * k, window)``."""
        k, span = self.cfg.sync_samples, self.cfg.sync_frames
        starts = self.rng.integers(0, self.length - span + 1, (len(batch.clips), k))
        synced, shifted = [], []
        mid = span // 2  # the 0.2 s audio frame of a snippet's middle frame spans the snippet
        for b, clip in enumerate(batch.clips):
            clip_len = self.bank.frames[clip].shape[0]
            for j in range(k):
                start = int(batch.starts[b] + starts[b, j])
                other = shifted_start(self.rng, start, clip_len, span, self.cfg.sync_shift)
                synced.append(self.bank.windows(clip, start + mid, 1)[0])
                shifted.append(self.bank.windows(clip, other + mid, 1)[0])
        to = self.device
        return (starts, torch.from_numpy(np.stack(synced)).to(to),
                torch.from_numpy(np.stack(shifted)).to(to))

    def snippets(self, frames: torch.Tensor, starts: np.ndarray) -> torch.Tensor:
        """``(B, L, ...)`` frames -> ``(B * k, sync_frames, ...)`` snippets at ``starts``."""
        span = self.cfg.sync_frames
        index = starts[:, :, None] + np.arange(span)[None, None]  # (B, k, span)
        b, k = starts.shape
        return gather_frames(frames, index.reshape(b, k * span)).view(
            b * k, span, *frames.shape[2:])

    def step(self, i: int) -> dict[str, float]:
        cfg, net = self.cfg, self.net
        self.decay(i)  # Sect. 3.3: x0.98 (G) and x0.90 (D) every decay_epochs epochs
        batch = self.sampler.sample(cfg.batch)
        b, length = batch.frames.shape[:2]
        noise = draw_noise(b, length, cfg.noise_dim, cfg.noise_var, self.device)
        net.train()
        fake = net(batch.identity, batch.windows, noise)
        img_index = sample_frames(batch, cfg.img_samples, self.rng)
        cond = repeat_frames(batch.identity, cfg.img_samples)
        real_img, fake_img = gather_frames(batch.frames, img_index), gather_frames(fake,
                                                                                   img_index)
        sync = self.sync_pairs(batch) if self.d_sync is not None else None
        losses: dict[str, float] = {}

        # discriminators (Eqs. 2-4), on the detached generated batch
        for d in self.discriminators().values():
            d.train()
        if self.d_img is not None and self.opt_img is not None:
            d_img = (bce(self.d_img(real_img, cond), True)
                     + bce(self.d_img(fake_img.detach(), cond), False))
            self.opt_img.zero_grad(set_to_none=True)
            d_img.backward()
            self.opt_img.step()
            losses["d_img"] = d_img.item()
        if self.d_seq is not None and self.opt_seq is not None:
            d_seq = (bce(self.d_seq(batch.frames, batch.windows), True)
                     + bce(self.d_seq(fake.detach(), batch.windows), False))
            self.opt_seq.zero_grad(set_to_none=True)
            d_seq.backward()
            self.opt_seq.step()
            losses["d_seq"] = d_seq.item()
        if self.d_sync is not None and self.opt_sync is not None and sync is not None:
            starts, synced, shifted = sync
            real_snip = self.snippets(batch.frames, starts)
            fake_snip = self.snippets(fake.detach(), starts)
            d_sync = (bce(self.d_sync(real_snip, synced), True)
                      + 0.5 * bce(self.d_sync(real_snip, shifted), False)
                      + 0.5 * bce(self.d_sync(fake_snip, synced), False))
            self.opt_sync.zero_grad(set_to_none=True)
            d_sync.backward()
            self.opt_sync.step()
            losses["d_sync"] = d_sync.item()

        # generator (Eq. 7)
        rec_total, rec = reconstruction(fake, batch.frames, self.row, cfg.w_rec,
                                        cfg.w_rec_upper, cfg.w_rec_mouth, self.mouth)
        total = rec_total
        losses["rec"] = rec.item()
        if self.d_img is not None:
            adv_img = bce(self.d_img(fake_img, cond), True)
            total = total + cfg.w_img * adv_img
            losses["g_img"] = adv_img.item()
        if self.d_seq is not None:
            adv_seq = bce(self.d_seq(fake, batch.windows), True)
            total = total + cfg.w_seq * adv_seq
            losses["g_seq"] = adv_seq.item()
        if self.d_sync is not None and sync is not None:
            starts, synced, _ = sync
            adv_sync = bce(self.d_sync(self.snippets(fake, starts), synced), True)
            total = total + cfg.w_sync * adv_sync
            losses["g_sync"] = adv_sync.item()
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        losses["g_total"] = total.item()
        return losses

    def fit(self, progress: bool = False) -> dict[str, Any]:
        log = run_steps(self.step, self.cfg.steps, self.cfg.max_seconds, progress=progress,
                        desc="vougioukas")
        return {**log.as_dict(), "sequence_length": self.length,
                "discriminators": sorted(self.discriminators())}
