"""Chen, Liu, Liu and Wang 2022, "Talking head generation driven by speech-related facial
action units and audio based on multimodal representation fusion" (seed 004): the networks,
the AU loss and the training data. The training stages are
:mod:`bench.generators.au_tcsan_training`.

Inputs (Sect. 4.1, Fig. 6). Faces are talkbench's aligned crops resized to ``size`` (112x112 in
the paper); the identity image is the clip's first frame. Audio: MFCCs of 12 coefficients
without the energy term, in windows of 28 MFCC frames (280 ms at 100 Hz) centred on each
video frame (:func:`clip_mfcc`). *Which 12:* python_speech_features' 13 with coefficient 0
(replaced by the frame's log energy) left out, ``mfcc_first = 1`` (as ``speech2vid``). *Ours:*
each coefficient is standardised with its mean and standard deviation over the training
frames (buffers of :class:`MFCCNorm`, saved with the model). AU labels: per-frame occurrence
of AU10, AU14, AU20, AU25, AU26 (the adapter takes them from the harness's labeller).

Modules (Sect. 3.1, Fig. 2; every width, kernel and layout the text leaves open is a config
field, and the ``paper`` budget's values are ours unless the text gives them):

- :class:`IdentityEncoder` E_id: four 2D convolutions each followed by ReLU, then a fully
  connected layer to the 512-d f_id. *Ours:* 4x4 kernels of stride 2 (112 -> 56 -> 28 -> 14 ->
  7), channels 64-128-256-512, ReLU after the FC too; the four maps are the U-Net skips.
- :class:`AudioEncoder` E_a: five 2D convolutions on the 12x28 MFCC window, each followed by
  batch normalisation and ReLU, then two fully connected layers to the 512-d f_ak. *Ours:*
  3x3 kernels, strides (1,1), (1,2), (1,1), (2,2), (2,2) (12x28 -> 3x4), channels
  64-128-256-256-512, FC 512 with BN + ReLU, ReLU after the second FC.
- :class:`Audio2AU` (one per AU, five in all): the MFCC window is "convolved in the frequency
  domain and time domain", then two LSTM layers and three fully connected layers, sigmoid.
  After pre-training the last FC is dropped and the 64-d output of the penultimate FC is the
  AU feature f_au_i; the five concatenate to the 320-d f_au. *Ours:* a (3, 1) convolution over
  frequency then a (1, 3) one over time (32 channels each, BN + ReLU), the 28 time steps read
  by a 2-layer LSTM (hidden 128), its last step's output into FC 128 -> 64 -> 1 (ReLU between;
  the 64-d feature is taken after its ReLU).
- :class:`TCSAN` (Eqs. 1-4, Figs. 4-5): f_k = f_id + f_ak + f_au (512 + 512 + 320 = 1344 per
  frame) through residual attention blocks. Block n: a non-causal dilated convolution over
  frames (k = 3, d = 2^(n-1), zero padding d on both sides, Eq. 1) with ReLU gives Z_n; 4-head
  self-attention with Q = K = V = Z_n (Eqs. 2-4) gives Z^_n; the block returns
  ReLU(X_n + Z^_n). **Tokens** (the paper attends over "the elements of the cross-modal
  features in the frame", not over frames): each frame's feature vector is cut into tokens of
  ``token_dim`` = 64 consecutive channels, the width of one AU feature, so the 1344 channels
  are 21 tokens (f_id 8, f_a 8, f_au 5: one per AU) and attention mixes them within the frame,
  each frame on its own; the attention output goes back to the same channels (no position
  encoding: a token's slot is its position). *Ours:* 4 blocks (dilations 1, 2, 4, 8: 31 frames
  of receptive field), the width stays 1344, no normalisation layer (Fig. 5 is not in the text).
- :class:`ImageDecoder`: a fully connected layer and six transposed convolutions with U-Net
  skips from the identity encoder. *Ours:* FC 1344 -> 512 x 7 x 7 (ReLU); transposed convs
  3x3/1 (7, joined by E_id's 7x7 map), 4x4/2 to 14, 28, 56, 112 (each joined by E_id's map of
  that size, except 112), then 3x3/1 to RGB with tanh; BN + ReLU after the first five.
- :class:`AUClassifier` (the generator's own, inside the AU loss; it shares no weights with
  the metric's judge ``bench.judges.au_classifier``): four convolutions, a max-pool after every
  two, three fully connected layers, sigmoid; input the lower half of the frame (rows
  H/2..H, as Eq. 10's upper half). *Ours:* 3x3 convolutions 32-32-64-64 with ReLU, 2x2 pools,
  FC 256 -> 64 -> 5 with ReLU between.

AU loss (Eqs. 5-7, :func:`au_loss`): weighted BCE + weighted multi-label Dice with
w_i = (1 / r_i) n / sum_j (1 / r_j), r_i the AU's occurrence rate in the training labels.
*Ours:* rates below ``min_rate`` (0.05) count as ``min_rate`` (an AU the labeller almost never
fires would otherwise take all the weight); the Dice sums run over the frames of the batch per
AU with eps = 1 (JAA-Net's and V-Net's form, refs. [25], [56]); frames without a label are left
out. The Audio2AU pre-training loss is not given: ours is each head's BCE with the positive
class weighted by (1 - r_i) / r_i (the same floor), so rare AUs are not predicted absent.
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

from bench.generators.audio_frames import mfcc_windows
from bench.generators.clip_banks import ClipBank

N_AUS = 5
"""AU10, AU14, AU20, AU25, AU26 (seed 004, Fig. 3), in this order."""


@dataclass(frozen=True)
class AUTCSANConfig:
    """Sizes, losses and schedule of seed 004's model (module docstring); the defaults are the
    ``paper`` budget (values the paper gives, and ours where it is silent)."""

    size: int = 112
    """Frame side (identity input and output); a multiple of 16 (Sect. 4.1: 112)."""
    mfcc_window: int = 28
    """MFCC frames per window: 280 ms at 100 Hz (Sect. 4.1)."""
    mfcc_first: int = 1
    """First coefficient used (1: coefficient 0, the log energy, is left out)."""
    mfcc_count: int = 12
    id_channels: tuple[int, ...] = (64, 128, 256, 512)
    """The identity encoder's four convolutions (ours)."""
    id_dim: int = 512
    """f_id (Sect. 3.1: 512)."""
    audio_channels: tuple[int, ...] = (64, 128, 256, 256, 512)
    """The audio encoder's five convolutions (ours)."""
    audio_fc: int = 512
    """Its first fully connected layer (ours)."""
    audio_dim: int = 512
    """f_ak (Sect. 3.1: 512)."""
    a2au_channels: int = 32
    """Channels of each Audio2AU head's frequency and time convolutions (ours)."""
    a2au_hidden: int = 128
    """Hidden size of each head's two LSTM layers (ours)."""
    a2au_fc: int = 128
    """First FC of each head (ours); the second is ``au_dim``, the third has one output."""
    au_dim: int = 64
    """f_au_i, the penultimate FC of each Audio2AU head (Sect. 3.1: 64); also the token width
    of the self-attention."""
    tcsan_layers: int = 4
    """Residual attention blocks (ours); block n has dilation 2^(n-1)."""
    tcsan_kernel: int = 3
    """k of Eq. 1 (Sect. 3.1: 3)."""
    heads: int = 4
    """h of Eq. 3 (Sect. 3.1: 4)."""
    dec_base: int = 512
    """Channels of the decoder FC's s/16 map (ours)."""
    dec_channels: tuple[int, ...] = (512, 256, 128, 64, 64)
    """The first five transposed convolutions (the sixth gives RGB; ours)."""
    auc_channels: tuple[int, ...] = (32, 32, 64, 64)
    """The generator's AU classifier: four convolutions (ours)."""
    auc_fc: tuple[int, ...] = (256, 64)
    """Its first two FC layers (ours); the third has five outputs."""
    w_rec: float = 1.5
    """lambda_rec of Eq. 11 (Sect. 4.2)."""
    w_id: float = 1.5
    """lambda_id."""
    w_perc: float = 0.07
    """lambda_per."""
    w_au: float = 0.02
    """lambda_au."""
    perc_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
    """VGG-19 layers of Eq. 8 (the paper does not list them; ours)."""
    perc_frames: int = 0
    """Frames per step the perceptual loss sees (0: all)."""
    min_rate: float = 0.05
    """Floor of the occurrence rates in the AU weights (ours)."""
    dice_eps: float = 1.0
    """Smooth term of Eq. 6 (ours)."""
    lr: float = 2e-4
    """Adam learning rate of the generator (Sect. 4.2)."""
    betas: tuple[float, float] = (0.5, 0.999)
    """Adam betas (Sect. 4.2: beta1 0.5; beta2 PyTorch's default)."""
    lr_a2au: float = 1e-6
    """Fine-tuning rate of the Audio2AU heads in the full model (Sect. 4.2)."""
    lr_auc: float = 1e-7
    """Fine-tuning rate of the AU classifier in the full model (Sect. 4.2)."""
    batch: int = 8
    """Sequences per step (ours)."""
    seq_len: int = 16
    """Consecutive frames per sequence (ours)."""
    epochs: float | None = 20.0
    """Full-model epochs (Sect. 4.2: 20); an epoch is as many steps as it takes to show every
    training frame once. None: ``steps`` steps."""
    steps: int = 0
    """Full-model steps when ``epochs`` is None."""
    a2au_lr: float = 2e-4
    """Adam rate of the Audio2AU pre-training (not given; ours, betas as above)."""
    a2au_batch: int = 256
    """Frames per Audio2AU pre-training step (ours)."""
    a2au_epochs: float | None = 20.0
    """Audio2AU pre-training epochs over the training frames (ours: as the full model)."""
    a2au_steps: int = 0
    """Audio2AU pre-training steps when ``a2au_epochs`` is None."""
    auc_lr: float = 2e-4
    """Adam rate of the AU classifier's pre-training (not given; ours)."""
    auc_batch: int = 64
    """Frames per AU-classifier pre-training step (ours)."""
    auc_epochs: float | None = 20.0
    """AU-classifier pre-training epochs (ours)."""
    auc_steps: int = 0
    """AU-classifier pre-training steps when ``auc_epochs`` is None."""
    val_clips: int = 12
    """Validation clips scored after training (0: none)."""
    decode_chunk: int = 128
    """Frames decoded at once in generation (bounds memory)."""

    @property
    def feature_dim(self) -> int:
        """Width of f_k = f_id + f_ak + f_au (1344 in the paper)."""
        return self.id_dim + self.audio_dim + N_AUS * self.au_dim

    @property
    def tokens(self) -> int:
        """Attention tokens per frame (21 in the paper)."""
        return self.feature_dim // self.au_dim


def check_config(cfg: AUTCSANConfig) -> None:
    """Raise ValueError when the sizes do not fit together."""
    if cfg.size % 16:
        raise ValueError(f"size must be a multiple of 16, got {cfg.size}")
    if len(cfg.id_channels) != 4 or len(cfg.audio_channels) != 5:
        raise ValueError("the identity encoder has four convolutions, the audio encoder five")
    if len(cfg.dec_channels) != 5:
        raise ValueError("the decoder has six transposed convolutions (five widths + RGB)")
    if len(cfg.auc_channels) != 4 or len(cfg.auc_fc) != 2:
        raise ValueError("the AU classifier has four convolutions and three FC layers")
    if cfg.id_dim % cfg.au_dim or cfg.audio_dim % cfg.au_dim:
        raise ValueError("id_dim and audio_dim must be multiples of au_dim (the token width)")
    if cfg.au_dim % cfg.heads:
        raise ValueError(f"au_dim {cfg.au_dim} must be divisible by heads {cfg.heads}")
    if cfg.tcsan_kernel % 2 == 0:
        raise ValueError("the non-causal TCN needs an odd kernel (Eq. 1)")
    if cfg.mfcc_window < 8 or cfg.mfcc_count < 4:
        raise ValueError("the audio encoder needs windows of at least 4 x 8 MFCCs")


def _conv_out(n: int, stride: int) -> int:
    """Output length of a 3-tap convolution with padding 1."""
    return (n - 1) // stride + 1


# ---------------------------------------------------------------------------------------------
# Encoders (Sect. 3.1)


class MFCCNorm(nn.Module):
    """Per-coefficient standardisation of MFCC windows ``(N, c, w)`` with training-set
    statistics (buffers ``mean`` and ``std``, set by :meth:`fit`)."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(cfg.mfcc_count))
        self.register_buffer("std", torch.ones(cfg.mfcc_count))

    def fit(self, windows: Sequence[torch.Tensor]) -> None:
        """Mean and standard deviation over every MFCC frame of the training clips (each once:
        the centre column of each window)."""
        centre = torch.cat([w[:, :, w.shape[2] // 2] for w in windows]).double()
        self.mean.copy_(centre.mean(0).float())
        self.std.copy_(centre.std(0).clamp_min(1e-3).float())

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return (mfcc - self.mean[:, None]) / self.std[:, None]


class IdentityEncoder(nn.Module):
    """E_id: face ``(N, 3, s, s)`` -> f_id ``(N, id_dim)`` and the four conv maps (s/2, s/4,
    s/8, s/16) for the decoder's U-Net skips."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        chans = (3, *cfg.id_channels)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.ReLU(inplace=True))
            for a, b in zip(chans[:-1], chans[1:], strict=True))
        side = cfg.size // 16
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * side * side, cfg.id_dim),
                                nn.ReLU(inplace=True))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        x = image
        for conv in self.convs:
            x = conv(x)
            maps.append(x)
        return self.fc(x), maps


AUDIO_STRIDES: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (1, 1), (2, 2), (2, 2))
"""Strides (frequency, time) of the audio encoder's five convolutions (ours)."""


class AudioEncoder(nn.Module):
    """E_a: standardised MFCC window ``(N, 12, 28)`` -> f_ak ``(N, audio_dim)``."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        chans = (1, *cfg.audio_channels)
        layers = []
        h, w = cfg.mfcc_count, cfg.mfcc_window
        for (a, b), stride in zip(zip(chans[:-1], chans[1:], strict=True), AUDIO_STRIDES,
                                  strict=True):
            layers.append(nn.Sequential(nn.Conv2d(a, b, 3, stride, 1, bias=False),
                                        nn.BatchNorm2d(b), nn.ReLU(inplace=True)))
            h, w = _conv_out(h, stride[0]), _conv_out(w, stride[1])
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(chans[-1] * h * w, cfg.audio_fc, bias=False),
            nn.BatchNorm1d(cfg.audio_fc), nn.ReLU(inplace=True),
            nn.Linear(cfg.audio_fc, cfg.audio_dim), nn.ReLU(inplace=True))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(mfcc[:, None]))


class Audio2AU(nn.Module):
    """One speech-related AU from audio (Sect. 3.1, "Audio-to-AU Module"): standardised MFCC
    window ``(N, c, w)`` -> the 64-d AU feature (:meth:`features`) and, through the last FC,
    the AU's occurrence logit (:meth:`forward`; sigmoid gives the probability)."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        c = cfg.a2au_channels
        self.freq = nn.Sequential(nn.Conv2d(1, c, (3, 1), 1, (1, 0), bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.time = nn.Sequential(nn.Conv2d(c, c, (1, 3), 1, (0, 1), bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.lstm = nn.LSTM(c * cfg.mfcc_count, cfg.a2au_hidden, num_layers=2,
                            batch_first=True)
        self.fc = nn.Sequential(nn.Linear(cfg.a2au_hidden, cfg.a2au_fc), nn.ReLU(inplace=True),
                                nn.Linear(cfg.a2au_fc, cfg.au_dim), nn.ReLU(inplace=True))
        self.out = nn.Linear(cfg.au_dim, 1)
        """The last FC: used in pre-training, dropped in the full model (Sect. 3.1)."""

    def features(self, mfcc: torch.Tensor) -> torch.Tensor:
        x = self.time(self.freq(mfcc[:, None]))  # (N, c, n_coeff, w)
        x = x.flatten(1, 2).transpose(1, 2)  # (N, w, c * n_coeff): one LSTM step per column
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(mfcc))[:, 0]


class Audio2AUBank(nn.Module):
    """The five Audio2AU heads (AU10, 14, 20, 25, 26): f_au ``(N, 5 * au_dim)`` and logits
    ``(N, 5)``."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        self.heads = nn.ModuleList(Audio2AU(cfg) for _ in range(N_AUS))

    def features(self, mfcc: torch.Tensor) -> torch.Tensor:
        return torch.cat([head.features(mfcc) for head in self.heads], 1)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(mfcc) for head in self.heads], 1)


# ---------------------------------------------------------------------------------------------
# TCSAN (Eqs. 1-4, Figs. 4-5)


class ResidualAttentionBlock(nn.Module):
    """Block n of TCSAN on ``(B, C, T)``: Z = ReLU(dilated non-causal conv(X)) (Eq. 1),
    Z^ = multi-head self-attention over the frame's ``C / token_dim`` tokens with
    Q = K = V = Z (Eqs. 2-4), output ReLU(X + Z^)."""

    def __init__(self, channels: int, token_dim: int, heads: int, kernel: int,
                 dilation: int) -> None:
        super().__init__()
        self.token_dim = token_dim
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)
        self.attention = nn.MultiheadAttention(token_dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.relu(self.conv(x))
        b, c, t = z.shape
        tokens = z.transpose(1, 2).reshape(b * t, c // self.token_dim, self.token_dim)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return F.relu(x + attended.reshape(b, t, c).transpose(1, 2))


class TCSAN(nn.Module):
    """The dilated non-causal temporal convolutional self-attention network: per-frame
    features ``(B, T, C)`` -> ``(B, T, C)``; block n has dilation 2^(n-1)."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualAttentionBlock(cfg.feature_dim, cfg.au_dim, cfg.heads, cfg.tcsan_kernel,
                                   2 ** n) for n in range(cfg.tcsan_layers))

    @property
    def receptive_field(self) -> int:
        """Frames one output sees: 1 + (k - 1) sum_n d_n."""
        return 1 + sum((b.conv.kernel_size[0] - 1) * b.conv.dilation[0] for b in self.blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# Decoder and AU classifier


class ImageDecoder(nn.Module):
    """FC + six transposed convolutions with U-Net skips from E_id: f_tk ``(N, C)`` + the
    identity maps -> frame ``(N, 3, s, s)`` in ``[-1, 1]``."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        self.side, self.base = cfg.size // 16, cfg.dec_base
        self.fc = nn.Sequential(nn.Linear(cfg.feature_dim, cfg.dec_base * self.side ** 2),
                                nn.ReLU(inplace=True))
        idc, d = cfg.id_channels, cfg.dec_channels
        # (in, out, kernel, stride, padding) of the five BN + ReLU layers; skips from E_id's
        # s/16 map join before the first, its s/8, s/4, s/2 maps after layers 2-4
        specs = ((cfg.dec_base + idc[3], d[0], 3, 1, 1), (d[0], d[1], 4, 2, 1),
                 (d[1] + idc[2], d[2], 4, 2, 1), (d[2] + idc[1], d[3], 4, 2, 1),
                 (d[3] + idc[0], d[4], 4, 2, 1))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(a, b, k, s, p, bias=False), nn.BatchNorm2d(b),
                          nn.ReLU(inplace=True)) for a, b, k, s, p in specs)
        self.out = nn.ConvTranspose2d(d[4], 3, 3, 1, 1)

    def forward(self, features: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """``skips``: E_id's maps at s/2, s/4, s/8, s/16, each with the batch of
        ``features`` (or one, expanded)."""
        n = features.shape[0]
        s2, s4, s8, s16 = (s.expand(n, -1, -1, -1) for s in skips)
        x = self.fc(features).view(n, self.base, self.side, self.side)
        x = self.ups[0](torch.cat([x, s16], 1))
        x = self.ups[1](x)
        x = self.ups[2](torch.cat([x, s8], 1))
        x = self.ups[3](torch.cat([x, s4], 1))
        x = self.ups[4](torch.cat([x, s2], 1))
        return torch.tanh(self.out(x))


def lower_half(images: torch.Tensor) -> torch.Tensor:
    """Rows ``H/2 .. H`` of ``(..., H, W)`` frames: the lower face the AU classifier sees."""
    return images[..., images.shape[-2] // 2:, :]


def upper_half(images: torch.Tensor) -> torch.Tensor:
    """Rows ``0 .. H/2`` (Eq. 10's region)."""
    return images[..., : images.shape[-2] // 2, :]


class AUClassifier(nn.Module):
    """The generator's AU classifier (Sect. 3.1): lower half of a frame ``(N, 3, s/2, s)`` ->
    AU logits ``(N, 5)`` (sigmoid: occurrence probabilities)."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        super().__init__()
        c = cfg.auc_channels

        def conv(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, 1, 1), nn.ReLU(inplace=True))

        self.convs = nn.Sequential(conv(3, c[0]), conv(c[0], c[1]), nn.MaxPool2d(2),
                                   conv(c[1], c[2]), conv(c[2], c[3]), nn.MaxPool2d(2))
        h, w = (cfg.size // 2) // 4, cfg.size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c[3] * h * w, cfg.auc_fc[0]),
                                nn.ReLU(inplace=True), nn.Linear(cfg.auc_fc[0], cfg.auc_fc[1]),
                                nn.ReLU(inplace=True), nn.Linear(cfg.auc_fc[1], N_AUS))

    def forward(self, lower: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(lower))


# ---------------------------------------------------------------------------------------------
# The whole generator


class AUTCSANNets(nn.ModuleDict):
    """The modules of seed 004's model: ``mfcc`` (standardisation), ``identity``, ``audio``,
    ``a2au`` (five Audio2AU heads), ``tcsan``, ``decoder`` and ``au_classifier`` (used by the
    AU loss only, saved so that training can be resumed and checked)."""

    def __init__(self, cfg: AUTCSANConfig) -> None:
        check_config(cfg)
        super().__init__({"mfcc": MFCCNorm(cfg), "identity": IdentityEncoder(cfg),
                          "audio": AudioEncoder(cfg), "a2au": Audio2AUBank(cfg),
                          "tcsan": TCSAN(cfg), "decoder": ImageDecoder(cfg),
                          "au_classifier": AUClassifier(cfg)})
        self.cfg = cfg

    def frame_features(self, mfcc: torch.Tensor) -> torch.Tensor:
        """f_ak + f_au of MFCC windows ``(N, c, w)``: ``(N, audio_dim + 5 au_dim)``."""
        x = self["mfcc"](mfcc)
        return torch.cat([self["audio"](x), self["a2au"].features(x)], 1)

    def forward(self, identity: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """Identity images ``(B, 3, s, s)`` + MFCC windows ``(B, T, c, w)`` -> frames
        ``(B, T, 3, s, s)`` (Fig. 2: E_id, E_a and Audio2AU per frame, TCSAN over the
        sequence, the decoder per frame)."""
        b, t = mfcc.shape[:2]
        f_id, skips = self["identity"](identity)
        per_frame = self.frame_features(mfcc.flatten(0, 1)).view(b, t, -1)
        f = torch.cat([f_id[:, None].expand(b, t, -1), per_frame], 2)
        fused = self["tcsan"](f).flatten(0, 1)
        skips = [s.repeat_interleave(t, 0) for s in skips]
        return self["decoder"](fused, skips).view(b, t, 3, *identity.shape[-2:])

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, audio: np.ndarray, num_frames: int) -> torch.Tensor:
        """One identity image ``(1, 3, s, s)`` + audio -> ``(num_frames, 3, s, s)``: TCSAN runs
        over the whole clip at once, the encoders and the decoder in chunks."""
        cfg = self.cfg
        mfcc = torch.from_numpy(clip_mfcc(audio, num_frames, cfg)).to(image.device)
        f_id, skips = self["identity"](image)
        per_frame = torch.cat([self.frame_features(mfcc[i:i + cfg.decode_chunk])
                               for i in range(0, num_frames, cfg.decode_chunk)])
        f = torch.cat([f_id.expand(num_frames, -1), per_frame], 1)
        fused = self["tcsan"](f[None])[0]
        return torch.cat([self["decoder"](fused[i:i + cfg.decode_chunk], skips)
                          for i in range(0, num_frames, cfg.decode_chunk)])


# ---------------------------------------------------------------------------------------------
# Losses (Eqs. 5-11)


def class_weights(rates: np.ndarray | Sequence[float], min_rate: float = 0.05) -> torch.Tensor:
    """w_i = (1 / r_i) n / sum_j (1 / r_j) (Sect. 3.1, below Eq. 5), rates below ``min_rate``
    raised to it: ``(5,)`` float32 summing to n."""
    r = np.maximum(np.asarray(rates, dtype=np.float64), min_rate)
    inv = 1.0 / r
    return torch.from_numpy(inv * len(inv) / inv.sum()).float()


def au_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
            valid: torch.Tensor | None = None, eps: float = 1.0) -> dict[str, torch.Tensor]:
    """Eqs. 5-7 on ``(N, 5)`` logits and 0/1 targets: weighted BCE (mean over frames) and
    weighted multi-label Dice (sums over the frames per AU, smooth ``eps``), each averaged over
    the five AUs; ``valid`` ``(N,)`` leaves unlabelled frames out. Returns ``bce``, ``dice`` and
    their sum ``au``."""
    if valid is not None:
        logits, target = logits[valid], target[valid]
    w = weights.to(logits)
    if logits.shape[0] == 0:
        zero = logits.sum() * 0.0
        return {"bce": zero, "dice": zero, "au": zero}
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(0)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (target * p).sum(0) + eps) / ((target ** 2).sum(0) + (p ** 2).sum(0) + eps)
    out = {"bce": (w * bce).mean(), "dice": (w * dice).mean()}
    out["au"] = out["bce"] + out["dice"]
    return out


def rec_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq. 9: mean absolute pixel error."""
    return (fake - real).abs().mean()


def id_loss(fake: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Eq. 10: mean absolute error between the upper halves of generated frames
    ``(B, T, 3, H, W)`` and of their identity image ``(B, 3, H, W)``."""
    return (upper_half(fake) - upper_half(identity)[:, None]).abs().mean()


# ---------------------------------------------------------------------------------------------
# Data


def clip_mfcc(audio: np.ndarray, num_frames: int, cfg: AUTCSANConfig) -> np.ndarray:
    """The 280 ms MFCC window of every video frame: ``(num_frames, 12, 28)`` float32."""
    coefficients = slice(cfg.mfcc_first, cfg.mfcc_first + cfg.mfcc_count)
    return mfcc_windows(audio, num_frames, cfg.mfcc_window, coefficients)


@dataclass
class AUTrainingData:
    """Training clips at the model's size (a :class:`ClipBank`), each clip's MFCC windows
    ``(T, 12, 28)``, AU labels ``(T, 5)`` float (0/1) and label mask ``(T,)`` bool."""

    bank: ClipBank
    mfcc: list[torch.Tensor]
    labels: list[torch.Tensor]
    valid: list[torch.Tensor]

    def __post_init__(self) -> None:
        index = [(c, t) for c, v in enumerate(self.valid) for t in np.flatnonzero(v.numpy())]
        self.labelled = np.array(index, dtype=np.int64).reshape(-1, 2)
        """(clip, frame) of every labelled frame."""

    @property
    def labelled_frames(self) -> int:
        return int(self.labelled.shape[0])

    def rates(self) -> np.ndarray:
        """Occurrence rate of each AU over the labelled frames: ``(5,)`` float64."""
        if not self.labelled_frames:
            return np.full(N_AUS, np.nan)
        return torch.cat([y[v] for y, v in zip(self.labels, self.valid, strict=True)]
                         ).double().mean(0).numpy()

    def frames_sample(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        """``batch`` random labelled (clip, frame) pairs: ``(batch, 2)``."""
        return self.labelled[rng.integers(self.labelled_frames, size=batch)]

    def mfcc_labels(self, pairs: np.ndarray, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """MFCC windows ``(n, 12, 28)`` and labels ``(n, 5)`` of (clip, frame) pairs."""
        m = torch.stack([self.mfcc[c][t] for c, t in pairs]).to(device)
        y = torch.stack([self.labels[c][t] for c, t in pairs]).to(device)
        return m, y

    def images_labels(self, pairs: np.ndarray, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(n, 3, s, s)`` in ``[-1, 1]`` and labels ``(n, 5)`` of (clip, frame)
        pairs."""
        x = torch.stack([self.bank.frames[c][t] for c, t in pairs]).to(device)
        y = torch.stack([self.labels[c][t] for c, t in pairs]).to(device)
        return x.float().div_(127.5).sub_(1.0), y

    def sequences(self, batch: int, length: int, rng: np.random.Generator,
                  device: torch.device) -> dict[str, torch.Tensor]:
        """``batch`` runs of ``length`` consecutive frames from random clips (at least that
        long), with the clip's first frame as the identity image (Sect. 4.1): ``identity``
        ``(B, 3, s, s)``, ``frames`` ``(B, L, 3, s, s)``, ``mfcc`` ``(B, L, 12, 28)``,
        ``labels`` ``(B, L, 5)``, ``valid`` ``(B, L)``."""
        long_enough = [c for c, f in enumerate(self.bank.frames) if f.shape[0] >= length]
        if not long_enough:
            raise ValueError(f"no training clip has {length} frames")
        clips = rng.choice(long_enough, size=batch)
        starts = [int(rng.integers(0, self.bank.frames[c].shape[0] - length + 1))
                  for c in clips]
        span = [(c, slice(s, s + length)) for c, s in zip(clips, starts, strict=True)]

        def images(xs: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(xs).to(device).float().div_(127.5).sub_(1.0)

        return {"identity": images([self.bank.frames[c][0] for c in clips]),
                "frames": images([self.bank.frames[c][s] for c, s in span]),
                "mfcc": torch.stack([self.mfcc[c][s] for c, s in span]).to(device),
                "labels": torch.stack([self.labels[c][s] for c, s in span]).to(device),
                "valid": torch.stack([self.valid[c][s] for c, s in span]).to(device)}


def make_training_data(bank: ClipBank, labels: Sequence[np.ndarray],
                       valid: Sequence[np.ndarray], cfg: AUTCSANConfig) -> AUTrainingData:
    """MFCC windows of the bank's clips plus their AU labels ``(T, 5)`` and masks ``(T,)``
    (one of each per clip, in the bank's order)."""
    if len(labels) != len(bank) or len(valid) != len(bank):
        raise ValueError(f"{len(bank)} clips but {len(labels)} label arrays and {len(valid)} "
                         "masks")
    mfcc, ys, vs = [], [], []
    for c in range(len(bank)):
        n = bank.frames[c].shape[0]
        y, v = np.asarray(labels[c]), np.asarray(valid[c], dtype=bool)
        if y.shape != (n, N_AUS) or v.shape != (n,):
            raise ValueError(f"clip {bank.clip_ids[c]}: labels {y.shape} / mask {v.shape} for "
                             f"{n} frames")
        mfcc.append(torch.from_numpy(clip_mfcc(bank.audio[c], n, cfg)))
        ys.append(torch.from_numpy(y.astype(np.float32)))
        vs.append(torch.from_numpy(v))
    return AUTrainingData(bank, mfcc, ys, vs)


def epoch_steps(epochs: float | None, steps: int, items: int, per_step: int) -> int:
    """Steps of a stage: ``ceil(epochs * items / per_step)`` when ``epochs`` is given (an
    epoch shows every item once on average), else ``steps``."""
    if epochs is None:
        return int(steps)
    return max(1, math.ceil(epochs * items / max(1, per_step)))


def f1_and_chance(prob: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Per-AU F1 of ``prob >= 0.5`` against 0/1 ``target`` (``(N, 5)`` each), the F1 of
    calling every frame positive (chance), and the balanced accuracy (chance 0.5)."""
    pred, y = prob >= 0.5, target >= 0.5
    tp = (pred & y).sum(0).astype(float)
    fp = (pred & ~y).sum(0).astype(float)
    fn = (~pred & y).sum(0).astype(float)
    tn = (~pred & ~y).sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        prev = y.mean(0)
        chance = 2 * prev / (1 + prev)
        tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        tnr = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
    return {"f1": [round(float(v), 4) for v in f1],
            "chance_f1": [round(float(v), 4) for v in chance],
            "balanced_acc": [round(float(v), 4) for v in (tpr + tnr) / 2],
            "frames": int(y.shape[0])}
