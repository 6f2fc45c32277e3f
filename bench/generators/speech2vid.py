"""Chung, Jamaludin and Zisserman 2017, "You said that?" (BMVC 2017; arXiv 1705.02966):
Speech2Vid, the static baseline of seeds 003 (Vougioukas et al., Sect. 6.2-6.3, Table 6) and
004 (Chen et al., Table 2, cited there as the IJCV version by Jamaludin et al. 2019).

The paper is not among talkbench's seeds; this reimplementation follows its Sect. 3 as we know
it, and the seeds' descriptions ("a CNN applied on MFCCs that generates subject independent
videos from an audio clip and a still frame", "an L_1 loss at the pixel level", "350 ms audio
frames as driving information, and each frame generated an image"). Four pieces:

- **Audio encoder** (Sect. 3.1): MFCCs at 100 Hz over 0.35 s, 35 MFCC frames of 12
  coefficients, read as a single-channel 12x35 image by a VGG-M-like CNN: conv1 3x3 (64),
  conv2 3x3 (128), pool2 3x3 stride (1, 2), conv3 3x3 (256), conv4 3x3 (256), conv5 3x3 (512),
  pool5 3x3 stride 2, fc6 (512), fc7 (256). *Which 12 coefficients:* python_speech_features'
  13 (:func:`bench.generators.audio_frames.mfcc_windows`, the SyncNet MFCCs) less coefficient 0 (the
  frame's log energy), i.e. ``coefficients = slice(1, 13)`` (``mfcc_first = 1``). *Ours:* the
  convolutions pad by 1 and the pools do not (12x35 -> 10x17 -> 4x8 before fc6); each MFCC
  coefficient is standardised by its mean and standard deviation over the training set, kept
  in the encoder's buffers and saved with the model (the paper does not say how MFCCs are
  scaled).
- **Identity encoder** (Sect. 3.2): a VGG-M-like CNN on the 112x112 face: conv1 7x7 stride 2
  (96), pool1 3x3 stride 2, conv2 5x5 stride 2 (256), pool2 3x3 stride 2, conv3-5 3x3 (512,
  512, 512), fc6 (512), fc7 (256). The paper pre-trains it for face recognition (VGG Face) and
  also tries several identity frames stacked along the channels; here it is trained from
  scratch with the rest, on one identity frame (talkbench's ``generate`` has exactly one
  image). *Ours:* "same" paddings so that every stride halves the map exactly (112 -> 56 -> 28
  -> 14 -> 7; the frame side must be a multiple of 16).
- **Image decoder** (Sect. 3.3): the two 256-d embeddings are concatenated (the joint
  embedding), a fully connected layer maps them to a ``decoder_base`` x s/16 x s/16 map, and
  four 4x4 stride-2 transposed convolutions bring it to s x s; a 3x3 convolution with tanh
  gives the RGB frame. Skip connections from the identity encoder (the paper's remedy for lost
  identity) join the decoder at s/8 (conv2), s/4 (pool1) and s/2 (conv1) by concatenation.
  Decoder widths and the skip layers are our choice (the paper's figure is not at hand).
  Batch normalisation and ReLU follow every convolution and fully connected layer except the
  output layers (MatConvNet VGG-M style; BN is ours where the paper is silent).
- **Deblurring CNN** (Sect. 3.4, optional: ``deblur_layers > 0``): a separate residual CNN run
  on the generator's output, trained after the generator (the paper's second network, which
  sharpens the L1 generator's blurry frames). *Ours:* ``deblur_layers`` 3x3 convolutions of
  ``deblur_channels`` (BN + ReLU between), predicting a residual added to its input, trained
  with L1 to restore real training frames from copies blurred by a Gaussian of random standard
  deviation in ``deblur_sigma`` (pixels at the model's size). The paper's deblurring training
  data could not be checked here. It is in the ``paper`` budget, not in ``demo``.

Loss and training (Sect. 3.5/4): L1 between the generated and the real frame, nothing else.
One sample is a frame ``t`` of a training clip (the target), the MFCC window centred on it, and
an identity frame drawn at random from the same clip (the paper takes the identity image from
the same video); one frame per 0.35 s window, no temporal model, no noise (generation is
deterministic). Optimiser and schedule are config data: the ``paper`` budget uses SGD with
momentum 0.9, weight decay 5e-4 and a learning rate decreasing logarithmically from 1e-2 to
1e-4 over ``steps``, batch 64 (the VGG group's MatConvNet recipe of that period, SyncNet and
LRW; the lead should check it against Speech2Vid's Sect. 4 text); the ``demo`` budget uses Adam
at a constant 1e-3 so that a short demo run (800 steps) gets somewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.blur import gaussian_blur
from bench.core.training import log_linear_lr, run_steps, set_learning_rate
from bench.generators.audio_frames import mfcc_windows
from bench.generators.clip_banks import ClipBank, load_bank


@dataclass(frozen=True)
class Speech2VidConfig:
    """Sizes and schedule of Speech2Vid (module docstring); defaults are the paper budget."""

    size: int = 112
    """Frame side (identity input and output); a multiple of 16."""
    mfcc_window: int = 35
    """MFCC frames per window: 0.35 s at 100 Hz."""
    mfcc_first: int = 1
    """First MFCC coefficient used (1: coefficient 0, the log energy, is left out)."""
    mfcc_count: int = 12
    audio_channels: tuple[int, ...] = (64, 128, 256, 256, 512)
    """conv1-conv5 of the audio encoder."""
    audio_fc: int = 512
    identity_channels: tuple[int, ...] = (96, 256, 512, 512, 512)
    """conv1-conv5 of the identity encoder."""
    identity_fc: int = 512
    embed_dim: int = 256
    """fc7 of each encoder: the audio and the identity embedding."""
    decoder_base: int = 256
    """Channels of the fully connected layer's s/16 map."""
    decoder_channels: tuple[int, ...] = (512, 256, 96, 64)
    """Transposed convolutions to s/8, s/4, s/2 and s."""
    image_skip: bool = False
    """Also join the identity image itself before the output convolution (ours)."""
    residual: bool = False
    """The decoder's output is added to the identity image (ours; False: tanh output)."""
    deblur_layers: int = 10
    """Convolutions of the deblurring CNN (0: no deblurring network)."""
    deblur_channels: int = 64
    deblur_sigma: tuple[float, float] = (0.5, 2.0)
    optimizer: str = "sgd"
    """"sgd" (momentum) or "adam"."""
    lr: float = 1e-2
    lr_final: float = 1e-4
    """Learning rate at the last step (log-linear decay from ``lr``)."""
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 64
    steps: int = 100_000
    max_seconds: float | None = None
    deblur_steps: int = 20_000
    deblur_lr: float = 1e-3
    """Adam learning rate of the deblurring CNN (ours)."""
    deblur_max_seconds: float | None = None
    identity_first: float = 0.0
    """Probability that a training pair's identity image is its clip's first frame, as in
    talkbench's test protocol (else a random frame of the clip, as in the paper; ours)."""
    augment: float = 0.0
    """Colour-augmentation strength of training pairs (0: none; ours, see the module doc)."""
    val_clips: int = 12
    """Validation clips scored with the L1 loss after training (0: none)."""
    decode_chunk: int = 128
    """Frames decoded at once in generation (bounds memory)."""


def check_config(cfg: Speech2VidConfig) -> None:
    """Raise ValueError when the sizes do not fit together."""
    if cfg.size % 16:
        raise ValueError(f"size must be a multiple of 16, got {cfg.size}")
    if len(cfg.audio_channels) != 5 or len(cfg.identity_channels) != 5:
        raise ValueError("the audio and identity encoders have five convolutions each")
    if len(cfg.decoder_channels) != 4:
        raise ValueError("the decoder has four transposed convolutions")
    if cfg.mfcc_window < 7 or cfg.mfcc_count < 5:
        raise ValueError("the audio encoder needs windows of at least 5 x 7 MFCCs")
    if cfg.optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")


def _conv(cin: int, cout: int, kernel: int, stride: int = 1,
          padding: int | None = None) -> nn.Sequential:
    """Convolution + batch normalisation + ReLU."""
    pad = kernel // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _fc(cin: int, cout: int) -> nn.Sequential:
    """Fully connected + batch normalisation + ReLU."""
    return nn.Sequential(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout),
                         nn.ReLU(inplace=True))


# ---------------------------------------------------------------------------------------------
# Networks (Sect. 3)


class AudioEncoder(nn.Module):
    """Sect. 3.1: MFCC window ``(N, n_coeff, window)`` -> audio embedding ``(N, embed_dim)``.

    The input is standardised per coefficient with the ``mfcc_mean`` / ``mfcc_std`` buffers
    (set from the training set by :func:`mfcc_statistics`)."""

    def __init__(self, cfg: Speech2VidConfig) -> None:
        super().__init__()
        c = cfg.audio_channels
        self.features = nn.Sequential(
            _conv(1, c[0], 3), _conv(c[0], c[1], 3),
            nn.MaxPool2d(3, stride=(1, 2)),
            _conv(c[1], c[2], 3), _conv(c[2], c[3], 3), _conv(c[3], c[4], 3),
            nn.MaxPool2d(3, stride=2))
        h = ((cfg.mfcc_count - 2) - 3) // 2 + 1
        w = ((cfg.mfcc_window - 3) // 2 + 1 - 3) // 2 + 1
        self.fc = nn.Sequential(nn.Flatten(), _fc(c[4] * h * w, cfg.audio_fc),
                                _fc(cfg.audio_fc, cfg.embed_dim))
        self.register_buffer("mfcc_mean", torch.zeros(cfg.mfcc_count))
        self.register_buffer("mfcc_std", torch.ones(cfg.mfcc_count))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        x = (mfcc - self.mfcc_mean[:, None]) / self.mfcc_std[:, None]
        return self.fc(self.features(x[:, None]))


class IdentityEncoder(nn.Module):
    """Sect. 3.2: face ``(N, 3, s, s)`` -> identity embedding ``(N, embed_dim)`` and the skip
    maps for the decoder: conv1 (s/2), pool1 (s/4), conv2 (s/8)."""

    def __init__(self, cfg: Speech2VidConfig) -> None:
        super().__init__()
        c = cfg.identity_channels
        self.conv1 = _conv(3, c[0], 7, 2)
        self.pool1 = nn.MaxPool2d(3, 2, 1)
        self.conv2 = _conv(c[0], c[1], 5, 2)
        self.pool2 = nn.MaxPool2d(3, 2, 1)
        self.conv345 = nn.Sequential(_conv(c[1], c[2], 3), _conv(c[2], c[3], 3),
                                     _conv(c[3], c[4], 3))
        side = cfg.size // 16
        self.fc = nn.Sequential(nn.Flatten(), _fc(c[4] * side * side, cfg.identity_fc),
                                _fc(cfg.identity_fc, cfg.embed_dim))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        c1 = self.conv1(image)
        p1 = self.pool1(c1)
        c2 = self.conv2(p1)
        x = self.conv345(self.pool2(c2))
        return self.fc(x), [c2, p1, c1]


class ImageDecoder(nn.Module):
    """Sect. 3.3: joint embedding ``(N, 2 * embed_dim)`` + identity skips -> frame
    ``(N, 3, s, s)`` in ``[-1, 1]``."""

    def __init__(self, cfg: Speech2VidConfig) -> None:
        super().__init__()
        self.side = cfg.size // 16
        self.base = cfg.decoder_base
        self.fc = _fc(2 * cfg.embed_dim, cfg.decoder_base * self.side ** 2)
        idc, d = cfg.identity_channels, cfg.decoder_channels
        skips = (idc[1], idc[0], idc[0], 0)  # channels joining after each up-sampling
        cin = cfg.decoder_base
        ups = []
        for cout, skip in zip(d, skips, strict=True):
            ups.append(nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU(inplace=True)))
            cin = cout + skip
        self.ups = nn.ModuleList(ups)
        self.image_skip = cfg.image_skip
        self.residual = cfg.residual
        self.out = nn.Conv2d(cin + (3 if cfg.image_skip else 0), 3, 3, 1, 1)

    def forward(self, joint: torch.Tensor, skips: Sequence[torch.Tensor],
                image: torch.Tensor | None = None) -> torch.Tensor:
        x = self.fc(joint).view(-1, self.base, self.side, self.side)
        for i, up in enumerate(self.ups):
            x = up(x)
            if i < len(skips):
                x = torch.cat([x, skips[i]], 1)
        if self.image_skip:
            x = torch.cat([x, image.expand(x.shape[0], -1, -1, -1)], 1)
        if self.residual:
            return (image + self.out(x)).clamp(-1, 1)
        return torch.tanh(self.out(x))


class DeblurCNN(nn.Module):
    """Sect. 3.4 (optional second network): frame -> sharpened frame, as a residual."""

    def __init__(self, cfg: Speech2VidConfig) -> None:
        super().__init__()
        c, n = cfg.deblur_channels, cfg.deblur_layers
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(n - 2):
            layers.append(_conv(c, c, 3))
        layers.append(nn.Conv2d(c, 3, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return (frame + self.body(frame)).clamp(-1, 1)


class Speech2VidNets(nn.ModuleDict):
    """The modules generation needs: ``audio``, ``identity``, ``decoder`` (+ ``deblur``)."""

    def __init__(self, cfg: Speech2VidConfig) -> None:
        check_config(cfg)
        modules: dict[str, nn.Module] = {"audio": AudioEncoder(cfg),
                                         "identity": IdentityEncoder(cfg),
                                         "decoder": ImageDecoder(cfg)}
        if cfg.deblur_layers > 0:
            modules["deblur"] = DeblurCNN(cfg)
        super().__init__(modules)
        self.cfg = cfg

    def generate_frames(self, identity: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """Identity images ``(N, 3, s, s)`` + MFCC windows ``(N, c, w)`` -> the L1 generator's
        frames ``(N, 3, s, s)`` (before deblurring)."""
        id_embed, skips = self["identity"](identity)
        joint = torch.cat([self["audio"](mfcc), id_embed], 1)
        return self["decoder"](joint, skips, identity)

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, num_frames: int) -> torch.Tensor:
        """One identity image ``(1, 3, s, s)`` + audio -> ``(num_frames, 3, s, s)``: frame
        ``t`` from the 0.35 s MFCC window centred on it."""
        cfg = self.cfg
        mfcc = torch.from_numpy(clip_mfcc(audio, num_frames, cfg)).to(image.device)
        id_embed, skips = self["identity"](image)
        out = []
        for start in range(0, num_frames, cfg.decode_chunk):
            m = mfcc[start:start + cfg.decode_chunk]
            n = m.shape[0]
            joint = torch.cat([self["audio"](m), id_embed.expand(n, -1)], 1)
            frames = self["decoder"](joint, [s.expand(n, -1, -1, -1) for s in skips], image)
            if "deblur" in self:
                frames = self["deblur"](frames)
            out.append(frames)
        return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Data


def clip_mfcc(audio: np.ndarray, num_frames: int, cfg: Speech2VidConfig) -> np.ndarray:
    """The 0.35 s MFCC window of every video frame: ``(num_frames, mfcc_count, mfcc_window)``
    float32 (12 x 35 in the paper)."""
    coefficients = slice(cfg.mfcc_first, cfg.mfcc_first + cfg.mfcc_count)
    return mfcc_windows(audio, num_frames, cfg.mfcc_window, coefficients)


def mfcc_statistics(windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and standard deviation over every MFCC frame of the training
    clips (each frame counted once: the centre column of each window)."""
    centre = np.concatenate([w[:, :, w.shape[2] // 2] for w in windows])
    return centre.mean(0).astype(np.float32), np.maximum(centre.std(0), 1e-3).astype(np.float32)


@dataclass
class TrainingData:
    """Training frames (a :class:`ClipBank` at the model's size) and each clip's MFCC windows
    as tensors."""

    bank: ClipBank
    mfcc: list[torch.Tensor]
    augment: float = 0.0
    """Strength of the colour augmentation (:func:`augment_pair`; 0: none)."""
    identity_first: float = 0.0
    """Probability that the identity is the clip's first frame (else a random frame)."""

    def sample(self, batch: int, rng: np.random.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``batch`` (identity, MFCC window, target) triples: target frame ``t`` of a random
        clip, its MFCC window, and a random frame of the same clip as the identity."""
        clips = rng.integers(len(self.bank), size=batch)
        ident, mfcc, target = [], [], []
        for c in clips:
            n = self.bank.frames[c].shape[0]
            t, i = rng.integers(n, size=2)
            if rng.random() < self.identity_first:
                i = 0
            target.append(self.bank.frames[c][t])
            ident.append(self.bank.frames[c][i])
            mfcc.append(self.mfcc[c][t])

        def images(xs: list[torch.Tensor]) -> torch.Tensor:
            x = torch.stack(xs).to(device).float().div_(127.5).sub_(1.0)
            return x.contiguous(memory_format=torch.channels_last)

        ident_x, target_x = images(ident), images(target)  # channels-last (faster on CPU)
        if self.augment > 0:
            ident_x, target_x = augment_pair(ident_x, target_x, self.augment, rng)
        return ident_x, torch.stack(mfcc).to(device), target_x


def augment_pair(identity: torch.Tensor, target: torch.Tensor, strength: float,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random colour change and horizontal flip applied to each sample's identity
    and target image (ours, see the module doc): per channel ``x * gain + shift`` with
    ``gain`` in ``1 +- strength`` and ``shift`` in ``+- strength``, a random channel order,
    and a mirror image half of the time."""
    n = identity.shape[0]
    gain = torch.from_numpy(rng.uniform(1 - strength, 1 + strength, (n, 3, 1, 1))).float()
    shift = torch.from_numpy(rng.uniform(-strength, strength, (n, 3, 1, 1))).float()
    order = torch.from_numpy(np.stack([rng.permutation(3) for _ in range(n)]))
    flip = torch.from_numpy(rng.random(n) < 0.5)
    gain, shift = gain.to(identity.device), shift.to(identity.device)
    out = []
    for x in (identity, target):
        x = torch.gather(x, 1, order[:, :, None, None].expand_as(x).to(x.device))
        x = torch.where(flip[:, None, None, None].to(x.device), x.flip(-1), x)
        out.append((x * gain + shift).clamp(-1, 1))
    return out[0], out[1]


def load_training_data(clips: Sequence[Any], cfg: Speech2VidConfig) -> TrainingData:
    """Frames at ``cfg.size`` and MFCC windows of every training clip."""
    bank = load_bank(clips, cfg.size)
    mfcc = [torch.from_numpy(clip_mfcc(a, f.shape[0], cfg))
            for a, f in zip(bank.audio, bank.frames, strict=True)]
    return TrainingData(bank, mfcc, cfg.augment, cfg.identity_first)


# ---------------------------------------------------------------------------------------------
# Training


def make_optimizer(params: Any, cfg: Speech2VidConfig) -> torch.optim.Optimizer:
    """SGD with momentum (paper budget) or Adam (demo), from the config."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, foreach=True)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def learning_rate(step: int, cfg: Speech2VidConfig) -> float:
    """Log-linear decay from ``lr`` (step 1) to ``lr_final`` (step ``steps``)."""
    return log_linear_lr(cfg.lr, cfg.lr_final, step, cfg.steps)


def l1_step(nets: Speech2VidNets, optimizer: torch.optim.Optimizer, identity: torch.Tensor,
            mfcc: torch.Tensor, target: torch.Tensor) -> float:
    """One gradient step of the paper's only loss: mean absolute error to the real frame."""
    loss = (nets.generate_frames(identity, mfcc) - target).abs().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_deblur(nets: Speech2VidNets, data: TrainingData, cfg: Speech2VidConfig,
                 rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    """Sect. 3.4 (ours where noted in the module doc): train the deblurring CNN alone with L1
    to undo Gaussian blur on real training frames."""
    deblur = nets["deblur"]
    optimizer = torch.optim.Adam(deblur.parameters(), lr=cfg.deblur_lr)
    lo, hi = cfg.deblur_sigma

    def step(_: int) -> dict[str, float]:
        _, _, sharp = data.sample(cfg.batch, rng, device)
        sigmas = torch.from_numpy(rng.uniform(lo, hi, cfg.batch)).float()
        blurred = gaussian_blur(sharp, sigmas)
        loss = (deblur(blurred) - sharp).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"deblur_l1": loss.item()}

    deblur.train()
    return run_steps(step, cfg.deblur_steps, cfg.deblur_max_seconds,
                     desc="speech2vid: deblur").as_dict()


def train_speech2vid(nets: Speech2VidNets, train: Sequence[Any], cfg: Speech2VidConfig,
                     device: torch.device, seed: int) -> dict[str, Any]:
    """Train the L1 generator (then the deblurring CNN, if any) on ``train`` clips; returns the
    log. The MFCC statistics are set from the training clips first."""
    data = load_training_data(train, cfg)
    mean, std = mfcc_statistics([m.numpy() for m in data.mfcc])
    nets["audio"].mfcc_mean.copy_(torch.from_numpy(mean))
    nets["audio"].mfcc_std.copy_(torch.from_numpy(std))
    rng = np.random.default_rng(seed)
    generator_params = [p for name, module in nets.items() if name != "deblur"
                        for p in module.parameters()]
    optimizer = make_optimizer(generator_params, cfg)

    def step(i: int) -> dict[str, float]:
        set_learning_rate(optimizer, learning_rate(i, cfg))
        identity, mfcc, target = data.sample(cfg.batch, rng, device)
        return {"l1": l1_step(nets, optimizer, identity, mfcc, target)}

    nets.to(memory_format=torch.channels_last)  # the same weights; faster convolutions on CPU
    nets.train()
    log: dict[str, Any] = {"frames": data.bank.total_frames, "clips": len(data.bank),
                           **run_steps(step, cfg.steps, cfg.max_seconds,
                                       desc="speech2vid: generator").as_dict()}
    if "deblur" in nets:
        log["deblur"] = train_deblur(nets, data, cfg, rng, device)
    nets.eval()
    return log


@torch.no_grad()
def validation_l1(nets: Speech2VidNets, clips: Sequence[Any], cfg: Speech2VidConfig,
                  device: torch.device) -> float | None:
    """Mean L1 over the first ``cfg.val_clips`` clips, generated from their first frame and
    their audio as at test time (None without clips)."""
    clips = list(clips)[:cfg.val_clips]
    if not clips:
        return None
    nets.eval()
    bank = load_bank(clips, cfg.size)
    errors = []
    for c in range(len(bank)):
        real = bank.images(c, slice(None), device)
        fake = nets.synthesize(real[:1], bank.audio[c], real.shape[0])
        errors.append(float((fake - real).abs().mean()))
    return float(np.mean(errors))
