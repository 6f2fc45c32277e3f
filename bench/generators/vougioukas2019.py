"""Vougioukas, Petridis and Pantic 2019, "Realistic Speech-Driven Facial Animation with GANs"
(IJCV; seed 003): a temporal GAN that turns one still image and a speech signal into a video.

Frames (Sect. 3.1.1 and Eq. 6): the paper's frames are 96x128, which we read as W x H (Eq. 6
writes a frame's dimensions ``W x H``; aligned faces are taller than wide), so ``frame_hw =
(128, 96)``. talkbench's aligned crops are square: the network works on the square crop
resized to ``frame_hw`` (squeezed horizontally; the output is stretched back), so every pixel
of the crop is generated and no background strip has to be pasted. The smaller budgets keep
the 4:3 aspect (64x48, 32x24).

Generator (Sect. 3.1, Fig. 3), four sub-networks:

- Identity Encoder (3.1.1): strided 2-D convolutions with batch normalisation and ReLU; the
  first ``len(id_channels)`` halve the frame (4x4 kernels, stride 2) down to ``4 x 3``, the
  last one (kernel ``4 x 3``) maps it to the ``id_dim`` = 128 encoding z_id: at 128x96, five
  plus one = the paper's six layers. Widths are ours (the paper gives none). *Choice:* the
  embedding layer ends in tanh without batch normalisation (batch statistics of a ``1 x 1``
  map over a handful of identities are degenerate). Each halving layer's output is a U-Net
  skip (3.1.4).
- Content Encoder (3.1.2): each video frame's 0.2 s of raw audio (3200 samples at 16 kHz,
  centred on the frame, zero-padded at the clip's ends, stride 640 = Eq. 1;
  :func:`bench.generators.common.audio_windows`) goes through 1-D convolutions with batch
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
  :func:`bench.generators.common.lower_half_mask`'s cut) or the mouth box
  (``sync_region = "mouth"``, :func:`bench.generators.common.mouth_box`), the 5 frames stacked
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
demo budget uses them (:func:`reconstruction` says why). A weight of 0 leaves a
discriminator out entirely (ablations as in the paper's Table 5).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import SAMPLES_PER_FRAME
from bench.generators.common import (
    audio_windows,
    load_bank,
    lower_half_mask,
    mouth_box,
    resize,
    run_steps,
)


@dataclass(frozen=True)
class VougioukasConfig:
    """Sizes, loss weights and schedule (module docstring; defaults are the paper budget)."""

    size: int = 128
    """Square side the adapter resizes the identity image to (talkbench's crop)."""
    frame_hw: tuple[int, int] = (128, 96)
    """Network frame (height, width): the paper's 96x128 (W x H)."""
    id_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    """Identity encoder halving layers (height -> 4); one more layer makes z_id."""
    id_dim: int = 128
    audio_window: int = 3200
    """Samples per audio frame (0.2 s at 16 kHz)."""
    audio_kernel: int = 250
    audio_stride: int = 50
    audio_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Content encoder: the large-kernel layer, then halving layers down to 4 steps."""
    audio_dim: int = 256
    content_dim: int = 256
    noise_dim: int = 10
    noise_var: float = 0.6
    noise_hidden: int = 10
    dec_channels: tuple[int, ...] = (512, 256, 128, 64, 64)
    """Frame decoder widths at 4x3, 8x6, ..., H/2 (ours: the encoder's, mirrored)."""
    img_disc_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
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
    w_rec: float = 600.0
    w_rec_upper: float = 0.0
    """L1 weight on the upper half (0 in the paper; see :func:`reconstruction`)."""
    w_rec_mouth: float = 0.0
    """Extra L1 weight on the mouth box (0 in the paper; see :func:`reconstruction`)."""
    w_img: float = 1.0
    w_sync: float = 0.8
    w_seq: float = 0.2
    lr_g: float = 1e-4
    lr_img: float = 1e-4
    lr_seq: float = 1e-5
    lr_sync: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.999)
    decay_epochs: float = 10.0
    g_decay: float = 0.98
    d_decay: float = 0.90
    batch: int = 8
    """Sequences per step."""
    seq_len: int = 75
    """Frames per sequence (3 s, a GRID video)."""
    img_samples: int = 4
    """Frames per sequence the frame discriminator sees."""
    sync_samples: int = 2
    """0.2 s snippets per sequence the synchronisation discriminator sees."""
    mirror: bool = True
    steps: int = 500_000
    max_seconds: float | None = None
    val_clips: int = 8
    """Validation clips whose lower-half L1 is logged after training."""
    decode_chunk: int = 64
    """Frames decoded at once in generation (bounds memory for long clips)."""


def halvings(frame_hw: tuple[int, int]) -> int:
    """Stride-2 layers that take a frame down to height 4."""
    return int(round(math.log2(frame_hw[0] / 4)))


def check_widths(cfg: Any, frame_names: Sequence[str], audio_names: Sequence[str]) -> None:
    """Raise ValueError unless ``cfg.frame_hw`` halves down to height 4 and the width lists
    ``frame_names`` have one entry per halving, and unless the audio frame encoders' width
    lists ``audio_names`` fit ``audio_window / audio_stride`` (a power of two, one width for
    the large-kernel layer and one per halving down to 4 steps)."""
    h, w = cfg.frame_hw
    n = halvings(cfg.frame_hw)
    if n < 1 or h != 4 * 2 ** n or w % 2 ** n:
        raise ValueError(f"frame_hw {cfg.frame_hw}: height must be 4 * 2**n (n >= 1) and the "
                         "width a multiple of 2**n")
    for name in frame_names:
        if len(getattr(cfg, name)) != n:
            raise ValueError(f"{name} needs {n} widths for frame height {h}, got "
                             f"{len(getattr(cfg, name))}")
    steps = cfg.audio_window / cfg.audio_stride
    if steps != int(steps) or int(steps) < 4 or int(steps) & (int(steps) - 1):
        raise ValueError("audio_window / audio_stride must be a power of two >= 4")
    layers = int(round(math.log2(steps / 4))) + 1
    for name in audio_names:
        if len(getattr(cfg, name)) != layers:
            raise ValueError(f"{name} needs {layers} widths, got {len(getattr(cfg, name))}")


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


def lower_half_row(height: int) -> int:
    """First row of the lower half of the face (:func:`lower_half_mask`'s cut)."""
    return int(lower_half_mask(height)[0, 0, :, 0].nonzero()[0, 0])


def mouth_box_hw(frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """:func:`mouth_box` of the square crop carried to a ``frame_hw`` frame (the square crop
    is resized to it): ``(top, bottom, left, right)``."""
    h, w = frame_hw
    top, bottom, left, right = mouth_box(h)
    return top, bottom, math.floor(left * w / h), min(w, math.ceil(right * w / h))


def sync_box(cfg: VougioukasConfig) -> tuple[int, int, int, int]:
    """The region the synchronisation discriminator sees: ``(top, bottom, left, right)``."""
    h, w = cfg.frame_hw
    if cfg.sync_region == "mouth":
        return mouth_box_hw(cfg.frame_hw)
    return lower_half_row(h), h, 0, w


def lower_half_l1(fake: torch.Tensor, real: torch.Tensor, row: int) -> torch.Tensor:
    """Eq. 6: mean absolute difference over the pixels of the lower half (rows ``row:``)."""
    return (fake[..., row:, :] - real[..., row:, :]).abs().mean()


def reconstruction(fake: torch.Tensor, real: torch.Tensor, row: int, w_rec: float,
                   w_upper: float = 0.0, w_mouth: float = 0.0,
                   mouth: tuple[int, int, int, int] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_rec`` x Eq. 6 (lower half) + ``w_upper`` x the same L1 on the upper half +
    ``w_mouth`` x the same L1 on the ``mouth`` box; returns the weighted sum and the
    lower-half L1 alone.

    The paper has only the lower-half term (``w_upper = w_mouth = 0``, the paper budget): over
    its week of training the adversarial losses shape the upper face and the synchronisation
    discriminator the mouth. *Demo-budget choice:* after ~100 s of CPU training neither
    discriminator has learnt enough, so a small ``w_upper`` keeps the upper face on the
    identity and ``w_mouth`` makes the mouth, a small part of the lower half, count more."""
    lower = lower_half_l1(fake, real, row)
    total = w_rec * lower
    if w_upper > 0:
        total = total + w_upper * (fake[..., :row, :] - real[..., :row, :]).abs().mean()
    if w_mouth > 0 and mouth is not None:
        top, bottom, left, right = mouth
        total = total + w_mouth * (fake[..., top:bottom, left:right]
                                   - real[..., top:bottom, left:right]).abs().mean()
    return total, lower


# ---------------------------------------------------------------------------------------------
# Generator


class AudioFrameEncoder(nn.Module):
    """1-D convolutions on raw 0.2 s audio frames (Sect. 3.1.2): a large-kernel strided layer,
    kernel-4 stride-2 layers down to 4 steps, a kernel-4 layer to one ``out_dim`` vector.
    Batch norm and ``act`` after each layer but the last; ``final`` after the last."""

    def __init__(self, channels: Sequence[int], out_dim: int, kernel: int, stride: int,
                 act: str = "relu", final: str = "relu") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, cout in enumerate(channels):
            if i == 0:
                conv = nn.Conv1d(cin, cout, kernel, stride, padding=(kernel - stride) // 2)
            else:
                conv = nn.Conv1d(cin, cout, 4, 2, padding=1)
            layers += [conv, nn.BatchNorm1d(cout), activation(act)]
            cin = cout
        layers.append(nn.Conv1d(cin, out_dim, 4))
        if final != "none":
            layers.append(activation(final))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """``(..., window)`` -> ``(..., out_dim)``."""
        lead = windows.shape[:-1]
        x = self.net(windows.reshape(-1, 1, windows.shape[-1]))
        return x.reshape(*lead, self.out_dim)


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "tanh": nn.Tanh()}[name]


class IdentityEncoder(nn.Module):
    """Sect. 3.1.1: halving convolutions (batch norm, ReLU) and an embedding layer;
    ``forward`` returns z_id ``(N, id_dim)`` and the skips ``[H/2, H/4, ..., 4]``."""

    def __init__(self, frame_hw: tuple[int, int], channels: Sequence[int], dim: int) -> None:
        super().__init__()
        blocks = []
        cin = 3
        for cout in channels:
            blocks.append(nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout),
                                        nn.ReLU()))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        n = len(channels)
        last = (frame_hw[0] >> n, frame_hw[1] >> n)
        self.embed = nn.Sequential(nn.Conv2d(cin, dim, last), nn.Tanh())

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = image
        for block in self.blocks:
            x = block(x)
            skips.append(x)
        return self.embed(x).flatten(1), skips


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


def draw_noise(n: int, t: int, dim: int, variance: float, device: torch.device | str,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, t, dim)`` Gaussian samples, mean 0, variance ``variance``."""
    noise = torch.randn(n, t, dim, device=device, generator=generator)
    return noise * math.sqrt(variance)


class FrameDecoder(nn.Module):
    """Sect. 3.1.4: latent -> ``4 x 3`` map -> strided transposed convolutions with U-Net skips
    from the identity encoder -> frame in ``[-1, 1]``."""

    def __init__(self, frame_hw: tuple[int, int], id_channels: Sequence[int],
                 channels: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        n = len(id_channels)
        first = (frame_hw[0] >> n, frame_hw[1] >> n)
        c0 = channels[0]
        self.project = nn.Sequential(nn.ConvTranspose2d(latent_dim, c0, first),
                                     nn.BatchNorm2d(c0), nn.ReLU())
        skips = list(reversed(id_channels))  # widths at 4x3, 8x6, ..., H/2
        ups: list[nn.Module] = []
        cin = c0
        for i, skip in enumerate(skips):
            if i + 1 < n:
                cout = channels[i + 1]
                ups.append(nn.Sequential(nn.ConvTranspose2d(cin + skip, cout, 4, 2, 1),
                                         nn.BatchNorm2d(cout), nn.ReLU()))
                cin = cout
            else:
                ups.append(nn.Sequential(nn.ConvTranspose2d(cin + skip, 3, 4, 2, 1),
                                         nn.Tanh()))
        self.ups = nn.ModuleList(ups)

    def forward(self, z: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """``z`` ``(M, latent)``, ``skips`` ``[(M, C, H/2, W/2), ..., (M, C, 4, 3)]`` ->
        ``(M, 3, H, W)``."""
        x = self.project(z[:, :, None, None])
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            x = up(torch.cat([x, skip], 1))
        return x


def repeat_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    """``(N, ...)`` -> ``(N * t, ...)``, each row repeated ``t`` times in a row."""
    return x[:, None].expand(x.shape[0], t, *x.shape[1:]).reshape(-1, *x.shape[1:])


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


def decode_frames(identity_encoder: nn.Module, decoder: nn.Module, identity: torch.Tensor,
                  latents: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """z_id and skips of ``identity`` joined with per-frame ``latents`` ``(N, T, L)`` and
    decoded (``chunk`` frames at a time) -> ``(N, T, 3, H, W)``."""
    z_id, skips = identity_encoder(identity)
    n, t = latents.shape[:2]
    chunk = chunk or t
    out = []
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        z = torch.cat([repeat_frames(z_id, b - a), latents[:, a:b].reshape(n * (b - a), -1)], 1)
        frames = decoder(z, [repeat_frames(s, b - a) for s in skips])
        out.append(frames.view(n, b - a, *frames.shape[1:]))
    return torch.cat(out, 1)


def synthesize_with(net: nn.Module, cfg: Any, image: torch.Tensor, audio: np.ndarray,
                    num_frames: int, generator: torch.Generator) -> torch.Tensor:
    """Generation shared by the temporal and the static generator: the square identity is
    resized to ``frame_hw``, audio frames are cut per video frame, noise comes from
    ``generator``; the frames are resized back to the square ``(T, 3, s, s)``."""
    device = image.device
    identity = resize(image, cfg.frame_hw)
    windows = torch.from_numpy(audio_windows(audio, num_frames, cfg.audio_window))
    noise = draw_noise(1, num_frames, cfg.noise_dim, cfg.noise_var, device, generator)
    frames = net(identity, windows[None].to(device), noise, chunk=cfg.decode_chunk)[0]
    return resize(frames, image.shape[-2:])


# ---------------------------------------------------------------------------------------------
# Discriminators


def down_blocks(cin: int, channels: Sequence[int], dims: int = 2) -> tuple[nn.Sequential, int]:
    """Halving 4x4 convolutions with LeakyReLU(0.2), batch norm from the second layer (2-D);
    for ``dims = 3`` the kernels are ``3 x 4 x 4`` with stride ``(1, 2, 2)`` (time kept)."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(channels):
        if dims == 2:
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1))
            norm: nn.Module = nn.BatchNorm2d(cout)
        else:
            layers.append(nn.Conv3d(cin, cout, (3, 4, 4), (1, 2, 2), (1, 1, 1)))
            norm = nn.BatchNorm3d(cout)
        if i > 0:
            layers.append(norm)
        layers.append(nn.LeakyReLU(0.2))
        cin = cout
    return nn.Sequential(*layers), cin


class FrameDiscriminator(nn.Module):
    """Sect. 3.2.1: frame + still frame (6 channels) -> halving convolutions -> a last
    ``4 x 3`` convolution -> one logit per frame."""

    def __init__(self, frame_hw: tuple[int, int], channels: Sequence[int]) -> None:
        super().__init__()
        self.body, cout = down_blocks(6, channels)
        n = len(channels)
        self.head = nn.Conv2d(cout, 1, (frame_hw[0] >> n, frame_hw[1] >> n))

    def forward(self, frames: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """``(M, 3, H, W)`` frames and their still frames -> ``(M,)`` logits."""
        return self.head(self.body(torch.cat([frames, identity], 1))).flatten()


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


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against all-real or all-fake labels."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


# ---------------------------------------------------------------------------------------------
# Training data


@dataclass
class FrameBank:
    """Training clips at the network's frame size: frames ``(T, 3, H, W)`` uint8 and the
    audio zero-padded by half a window in front (so frame ``t``'s audio frame starts at
    sample ``640 t + 320``)."""

    frames: list[torch.Tensor]
    padded_audio: list[np.ndarray]
    window: int

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def total_frames(self) -> int:
        return int(sum(f.shape[0] for f in self.frames))

    def windows(self, clip: int, start: int, length: int) -> np.ndarray:
        """Audio frames of frames ``start .. start + length - 1``: ``(length, window)``,
        equal to rows of :func:`audio_windows` of the clip."""
        a = SAMPLES_PER_FRAME * start + SAMPLES_PER_FRAME // 2
        b = a + SAMPLES_PER_FRAME * (length - 1) + self.window
        segment = self.padded_audio[clip][a:b]
        if segment.shape[0] < b - a:
            segment = np.pad(segment, (0, b - a - segment.shape[0]))
        view = np.lib.stride_tricks.sliding_window_view(segment, self.window)
        return view[::SAMPLES_PER_FRAME][:length]


def load_frame_bank(clips: Sequence[Any], size: int, frame_hw: tuple[int, int], window: int,
                    min_frames: int) -> FrameBank:
    """Clips with at least ``min_frames`` frames, resized to ``size`` (square) and then to
    ``frame_hw``, with their padded audio."""
    bank = load_bank(clips, size, min_frames=min_frames)
    frames = []
    for x in bank.frames:
        if tuple(x.shape[-2:]) != tuple(frame_hw):
            x = resize(x.float(), frame_hw).round_().clamp_(0, 255).to(torch.uint8)
        frames.append(x.contiguous())
    half = window // 2
    padded = [np.pad(a, (half, half + window)).astype(np.float32) for a in bank.audio]
    return FrameBank(frames=frames, padded_audio=padded, window=window)


def sequence_length(clips: Sequence[Any], wanted: int, least: int = 1) -> int:
    """``wanted``, or the longest clip's length when no clip is that long (at least
    ``least``)."""
    longest = max((c.num_frames for c in clips), default=0)
    if longest < least:
        raise ValueError(f"no training clip has at least {least} frames")
    return max(least, min(wanted, longest))


@dataclass
class Batch:
    """A training batch: still frames ``(B, 3, H, W)``, frames ``(B, L, 3, H, W)``, audio
    frames ``(B, L, window)`` (float tensors on the device), and where each sequence came from."""

    identity: torch.Tensor
    frames: torch.Tensor
    windows: torch.Tensor
    clips: np.ndarray
    starts: np.ndarray


class SequenceSampler:
    """Random runs of ``length`` consecutive frames from random clips, with the clip's first
    frame as the still image; mirrored with probability 1/2 when ``mirror``."""

    def __init__(self, bank: FrameBank, length: int, mirror: bool, device: torch.device,
                 rng: np.random.Generator) -> None:
        self.bank, self.length, self.mirror = bank, length, mirror
        self.device, self.rng = device, rng

    def sample(self, batch: int) -> Batch:
        bank, length = self.bank, self.length
        clips = self.rng.integers(0, len(bank), batch)
        starts = np.array([self.rng.integers(0, bank.frames[c].shape[0] - length + 1)
                           for c in clips])
        frames = torch.stack([bank.frames[c][s:s + length] for c, s in zip(clips, starts,
                                                                             strict=True)])
        identity = torch.stack([bank.frames[c][0] for c in clips])
        windows = np.stack([bank.windows(c, s, length) for c, s in zip(clips, starts,
                                                                         strict=True)])
        frames = frames.to(self.device).float().div_(127.5).sub_(1.0)
        identity = identity.to(self.device).float().div_(127.5).sub_(1.0)
        if self.mirror:
            flip = torch.from_numpy(self.rng.random(batch) < 0.5).to(self.device)
            frames = torch.where(flip[:, None, None, None, None], frames.flip(-1), frames)
            identity = torch.where(flip[:, None, None, None], identity.flip(-1), identity)
        return Batch(identity=identity, frames=frames,
                     windows=torch.from_numpy(windows).to(self.device), clips=clips,
                     starts=starts)


def sample_frames(batch: Batch, count: int, rng: np.random.Generator) -> np.ndarray:
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
        epoch = max(1, math.ceil(bank.total_frames / (cfg.batch * length)))
        self.decay_every = max(1, round(cfg.decay_epochs * epoch))

    def discriminators(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {}
        if self.d_img is not None:
            out["img"] = self.d_img
        if self.d_seq is not None:
            out["seq"] = self.d_seq
        if self.d_sync is not None:
            out["sync"] = self.d_sync
        return out

    def decay(self) -> None:
        """Sect. 3.3: generator x0.98, discriminators x0.90 every ``decay_epochs`` epochs."""
        for opt, rate in ((self.opt_g, self.cfg.g_decay), (self.opt_img, self.cfg.d_decay),
                          (self.opt_seq, self.cfg.d_decay), (self.opt_sync, self.cfg.d_decay)):
            if opt is None:
                continue
            for group in opt.param_groups:
                group["lr"] *= rate

    def sync_pairs(self, batch: Batch) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
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
        if i > 1 and (i - 1) % self.decay_every == 0:
            self.decay()
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


@torch.no_grad()
def validation_l1(net: nn.Module, clips: Sequence[Any], cfg: Any,
                  device: torch.device, seed: int = 0) -> float | None:
    """Mean lower-half L1 (Eq. 6) of whole generated validation clips (first ``val_clips``;
    identity = the clip's first frame, seeded noise); None without validation clips."""
    clips = list(clips)[:cfg.val_clips]
    if not clips:
        return None
    net.eval()
    row = lower_half_row(cfg.frame_hw[0])
    values = []
    for clip in clips:
        frames = torch.from_numpy(np.ascontiguousarray(clip.frames)).permute(0, 3, 1, 2)
        real = resize(resize(frames.float(), cfg.size), cfg.frame_hw).div(127.5).sub(1).to(
            device)
        windows = torch.from_numpy(audio_windows(clip.audio, real.shape[0], cfg.audio_window))
        generator = torch.Generator(device=device).manual_seed(seed)
        noise = draw_noise(1, real.shape[0], cfg.noise_dim, cfg.noise_var, device, generator)
        fake = net(real[:1], windows[None].to(device), noise, chunk=cfg.decode_chunk)[0]
        values.append(float(lower_half_l1(fake, real, row)))
    return float(np.mean(values))
