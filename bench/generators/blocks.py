"""Building blocks of Vougioukas, Petridis and Pantic 2019 (IJCV; seed 003) that its temporal
GAN (:mod:`bench.generators.vougioukas2019`) and its static baseline
(:mod:`bench.generators.static_gan`) share; the paper's sections are cited per block:

- :class:`AudioFrameEncoder` (Sect. 3.1.2): 1-D convolutions on each frame's 0.2 s of raw
  audio, also the audio streams of the sequence and synchronisation discriminators;
- :class:`IdentityEncoder` (Sect. 3.1.1) and :class:`FrameDecoder` (Sect. 3.1.4, U-Net skips
  from the identity encoder), joined per frame by :func:`decode_frames`;
- :func:`draw_noise` (Sect. 3.1.3: Gaussian, mean 0, variance 0.6);
- :func:`down_blocks` and :class:`FrameDiscriminator` (Sect. 3.2.1).

Frames are ``frame_hw`` = (H, W) with H = 4 * 2**n: the encoders halve a frame n times down to
height 4 (:func:`halvings`, :func:`check_widths`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


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
