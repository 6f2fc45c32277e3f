"""Prajwal, Mukhopadhyay, Namboodiri, Jawahar 2020, "A lip sync expert is all you need for
speech to lip generation in the wild" (Wav2Lip, ACM MM; reference [14] of seed 002 and the
base of its emotion model): the generator network. Its training is
:mod:`bench.generators.wav2lip_training`, its expert discriminator and shared blocks
:mod:`bench.generators.lip_sync_expert`, its audio features
:mod:`bench.generators.wav2lip_audio`. Where the paper defers to its public code
(``Rudrabha/Wav2Lip``: ``models/wav2lip.py``, ``hparams.py``, ``wav2lip_train.py``), the code
is what we follow.

Generator (Sect. 3.1, ``models/wav2lip.py``), per frame, images in ``[0, 1]``:

- face encoder on 6 channels: the target frame with its lower half (rows ``H // 2 ..``)
  zeroed, concatenated with a reference frame of the same person (pose and identity). At the
  paper budget (96x96): 7x7 (16) -> [3x3 stride 2 + residual 3x3 blocks] at 32 (2 res), 64
  (3), 128 (2), 256 (2), 512 (1) -> 3x3 valid (512) -> 1x1 (512): maps of 96, 48, 24, 12, 6,
  3 and 1 pixels, all kept as skips;
- audio encoder on one ``1 x 80 x 16`` mel window (:class:`MelEncoder`, 32-64-128-256-512,
  residual counts 2, 2, 2, 1) -> 512 x 1 x 1;
- decoder from the audio embedding: 1x1 (512), then transposed 3x3 convolutions 1 -> 3
  (512, 1 res), 3 -> 6 (512, 2 res), 12 (384, 2), 24 (256, 2), 48 (128, 2), 96 (64, 2), each
  output concatenated with the face encoder's map of its size (U-Net skips: 1024, 1024, 768,
  512, 320, 160, 80 channels), then 3x3 (32) and 1x1 (3) + sigmoid.

Every convolution is conv + BatchNorm + ReLU (:class:`ConvBlock`). Faces of side ``3 * 2^k``
use ``k`` stride-2 stages (the demo budget's 48x48: four); ``face_channels`` /
``decoder_channels`` list one width per map size, largest first for the encoder and smallest
first for the decoder.

Generation from one identity image (the harness' interface; the paper drives a video): every
frame's masked target and reference are the identity image itself, so the output is a
"talking still": the upper half comes from the image, the lower half from the audio. Frame
``t``'s mel window is :func:`~bench.generators.wav2lip_audio.frame_windows`' (the training
code's indexing; -4 silence padding beyond the clip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from bench.generators.lip_sync_expert import (
    ConvBlock,
    DeconvBlock,
    ExpertConfig,
    MelEncoder,
    stage,
)
from bench.generators.wav2lip_audio import frame_windows, melspectrogram


@dataclass(frozen=True)
class Wav2LipConfig:
    """Sizes and schedule (the defaults are the paper budget: ``hparams.py`` of the public
    code; the Wav2Lip paper's text is not among the seeds)."""

    size: int = 96
    face_channels: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 512)
    face_residual: tuple[int, ...] = (0, 2, 3, 2, 2, 1)
    """Residual blocks of the stem and each stride-2 stage (the last block has none)."""
    audio_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    audio_residual: tuple[int, ...] = (2, 2, 2, 1)
    decoder_channels: tuple[int, ...] = (512, 512, 512, 384, 256, 128, 64)
    decoder_residual: tuple[int, ...] = (0, 1, 2, 2, 2, 2, 2)
    output_hidden: int = 32
    window_offset: int = -1
    """Frame ``f``'s mel window starts at frame ``f + window_offset`` (training code: -1)."""
    # -- the expert (lip_sync_expert.ExpertConfig) --
    expert_face_channels: tuple[int, ...] = (32, 64, 128, 256, 512, 512)
    expert_face_residual: tuple[int, ...] = (0, 2, 3, 2, 2, 0)
    expert_audio_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    expert_audio_residual: tuple[int, ...] = (2, 2, 2, 2)
    expert_batch: int = 64
    expert_lr: float = 1e-4
    expert_steps: int = 100_000
    expert_min_offset: int = 1
    # -- generator training --
    batch: int = 16
    """Windows of ``seq_len`` frames per step."""
    seq_len: int = 5
    """Frames per window (``syncnet_T``); fixed at 5 by the expert."""
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 200_000
    sync_weight: float = 0.03
    """Weight of the sync loss once the gate opens (the paper's 0.03; the public
    ``wav2lip_train.py`` without the visual-quality GAN uses 0.01)."""
    sync_gate: float = 0.75
    """The sync weight is 0 until the expert's mean sync loss on validation windows of
    generated frames falls below this (``wav2lip_train.py``)."""
    eval_every: int = 3000
    """Steps between validation passes (the code: ``eval_interval``; also at step 1)."""
    eval_batches: int = 44
    """Batches per validation pass (the code: 700 steps of batch 16 = 44 batches of 256
    windows; ours: ``eval_batches`` batches of ``batch`` windows)."""
    generate_chunk: int = 64
    """Frames decoded at once at generation."""

    def __post_init__(self) -> None:
        check_config(self)


def face_stages(size: int) -> int:
    """``k`` for a face of side ``3 * 2^k`` (ValueError for other sides)."""
    k, side = 0, size
    while side > 3 and side % 2 == 0:
        side //= 2
        k += 1
    if side != 3 or k < 1:
        raise ValueError(f"Wav2Lip faces are 3 * 2^k pixels square (96, 48, 24); got {size}")
    return k


def check_config(cfg: Wav2LipConfig) -> None:
    """ValueError for sizes the architecture cannot have."""
    k = face_stages(cfg.size)
    if len(cfg.face_channels) != k + 2 or len(cfg.face_residual) != k + 1:
        raise ValueError(f"a {cfg.size}px face needs {k + 2} face_channels and {k + 1} "
                         f"face_residual entries")
    if len(cfg.decoder_channels) != k + 2 or len(cfg.decoder_residual) != k + 2:
        raise ValueError(f"a {cfg.size}px face needs {k + 2} decoder_channels and "
                         f"decoder_residual entries")
    if cfg.seq_len != 5:
        raise ValueError("the expert judges 5-frame windows: seq_len must be 5")


def expert_config(cfg: Wav2LipConfig) -> ExpertConfig:
    """The expert's part of ``cfg``."""
    names = {f.name for f in fields(ExpertConfig)}
    return ExpertConfig(size=cfg.size, **{n: getattr(cfg, f"expert_{n}")
                                           for n in names if n != "size"})


class FaceEncoder(nn.Module):
    """Masked target + reference ``(N, 6, s, s)`` -> the maps of every size, largest first."""

    def __init__(self, cfg: Wav2LipConfig, in_channels: int = 6) -> None:
        super().__init__()
        ch, res = cfg.face_channels, cfg.face_residual
        blocks = [nn.Sequential(*stage(in_channels, ch[0], 7, 1, 3, res[0]))]
        for cin, cout, r in zip(ch[:-2], ch[1:-1], res[1:], strict=True):
            blocks.append(nn.Sequential(*stage(cin, cout, 3, 2, 1, r)))
        blocks.append(nn.Sequential(ConvBlock(ch[-2], ch[-1], 3, 1, 0),
                                    ConvBlock(ch[-1], ch[-1], 1)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class FaceDecoder(nn.Module):
    """Bottleneck ``(N, C, 1, 1)`` + the face maps -> ``(N, decoder_channels[-1] +
    face_channels[0], s, s)`` (the last skip concatenated)."""

    def __init__(self, cfg: Wav2LipConfig, in_channels: int) -> None:
        super().__init__()
        dec, res = cfg.decoder_channels, cfg.decoder_residual
        skips = list(reversed(cfg.face_channels))  # 1x1 map first
        blocks = [nn.Sequential(*stage(in_channels, dec[0], 1, 1, 0, res[0]))]
        cin = dec[0] + skips[0]
        blocks.append(nn.Sequential(DeconvBlock(cin, dec[1], 3, 1, 0),
                                    *[ConvBlock(dec[1], dec[1], 3, 1, 1, residual=True)
                                      for _ in range(res[1])]))
        cin = dec[1] + skips[1]
        for i in range(2, len(dec)):
            blocks.append(nn.Sequential(DeconvBlock(cin, dec[i], 3, 2, 1, output_padding=1),
                                        *[ConvBlock(dec[i], dec[i], 3, 1, 1, residual=True)
                                          for _ in range(res[i])]))
            cin = dec[i] + skips[i]
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin

    def forward(self, z: torch.Tensor, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        x = z
        for block, skip in zip(self.blocks, reversed(feats), strict=True):
            x = torch.cat([block(x), skip], 1)
        return x


class Wav2LipGenerator(nn.ModuleDict):
    """Wav2Lip's generator (module docstring): ``face_encoder``, ``audio_encoder``,
    ``face_decoder``, ``output_block``. ``forward(mel (N, 1, 80, 16), faces (N, 6, s, s))``
    -> frames ``(N, 3, s, s)`` in ``[0, 1]``; ``N`` counts frames (windows are flattened
    frame by frame by the caller)."""

    def __init__(self, cfg: Wav2LipConfig, bottleneck_extra: int = 0,
                 output_extra: int = 0) -> None:
        check_config(cfg)
        decoder = FaceDecoder(cfg, cfg.audio_channels[-1] + bottleneck_extra)
        super().__init__({
            "face_encoder": FaceEncoder(cfg),
            "audio_encoder": MelEncoder(cfg.audio_channels, cfg.audio_residual),
            "face_decoder": decoder,
            "output_block": nn.Sequential(
                ConvBlock(decoder.out_channels + output_extra, cfg.output_hidden, 3, 1, 1),
                nn.Conv2d(cfg.output_hidden, 3, 1), nn.Sigmoid()),
        })
        self.cfg = cfg

    def bottleneck(self, audio: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """The decoder's input from the audio embedding (a subclass joins a condition)."""
        return audio

    def output_input(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """The output block's input from the decoder's output (a subclass may join)."""
        return x

    def decode(self, mel: torch.Tensor, feats: Sequence[torch.Tensor],
               condition: torch.Tensor | None = None) -> torch.Tensor:
        z = self.bottleneck(self["audio_encoder"](mel), condition)
        x = self["face_decoder"](z, feats)
        return self["output_block"](self.output_input(x, condition))

    def forward(self, mel: torch.Tensor, faces: torch.Tensor,
                condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(mel, self["face_encoder"](faces), condition)

    def still_inputs(self, image01: torch.Tensor) -> torch.Tensor:
        """The 6-channel input of generation from one image ``(1, 3, s, s)`` in ``[0, 1]``:
        the image with its lower half zeroed, and the image as the reference."""
        return torch.cat([mask_lower_half(image01), image01], 1)

    @torch.no_grad()
    def synthesize_still(self, image: torch.Tensor, audio: np.ndarray, num_frames: int,
                         condition: torch.Tensor | None = None) -> torch.Tensor:
        """One identity ``(1, 3, s, s)`` in ``[-1, 1]`` + 16 kHz audio -> ``(T, 3, s, s)`` in
        ``[-1, 1]`` (``condition``: ``(1, ...)``, repeated for every frame)."""
        image01 = (image + 1) / 2
        feats = self["face_encoder"](self.still_inputs(image01))
        mels = torch.from_numpy(frame_windows(melspectrogram(audio), num_frames,
                                              self.cfg.window_offset))[:, None]
        mels = mels.to(image.device)
        out = []
        for a in range(0, num_frames, self.cfg.generate_chunk):
            b = min(num_frames, a + self.cfg.generate_chunk)
            rep = [f.expand(b - a, *f.shape[1:]) for f in feats]
            cond = None if condition is None else condition.expand(b - a, *condition.shape[1:])
            out.append(self.decode(mels[a:b], rep, cond))
        return torch.cat(out) * 2 - 1


def mask_lower_half(frames: torch.Tensor) -> torch.Tensor:
    """``frames`` (``(..., 3, H, W)``) with rows ``H // 2 ..`` zeroed (Wav2Lip's mask)."""
    out = frames.clone()
    out[..., frames.shape[-2] // 2:, :] = 0.0
    return out
