"""Goyal, Yu, Bhagat, Yin, Uppal, Shah, "Emotionally Enhanced Talking Face Generation"
(seed 002, the supplementary material; public code ``sahilg06/EmoGen``): Wav2Lip
(:mod:`bench.generators.wav2lip`) made to generate the whole face with a categorical emotion.
The networks are here; the training is :mod:`bench.generators.emotion_wav2lip_training`.

- Inputs (Sect. 2, Fig. 1, Fig. 2): the 5 input frames are *fully* masked (zeros) and
  concatenated with reference frames (6 channels, as Wav2Lip); the mel windows of
  :mod:`bench.generators.wav2lip_audio`; a one-hot emotion (ANG, DIS, FEA, HAP, NEU, SAD:
  ``bench.EMOTIONS``; None -> all zeros, as for training clips without a label).
- Emotion encoder: two linear layers, each followed by LeakyReLU (0.2 in the code), on the
  one-hot vector repeated for each of the T = 5 frames (Sect. 2.2).
- Sequential concatenation (SEQ, Sect. 2.2, the paper's preferred method, ``concat="seq"``):
  the emotion embedding (512-d at the paper budget) is concatenated with the audio embedding
  at the 1x1 bottleneck, and the joined 1024-d vector goes through Wav2Lip's face decoder
  with its skips (the decoder's first 1x1 convolution takes 1024 channels).
- End concatenation (END, Sect. 2.2, ``concat="end"``): the emotion encoder's second layer
  outputs ``s * s`` values, a ``1 x s x s`` map concatenated with the decoder's 80-channel
  output before the output block ({N*T, 80, 96, 96} + {N*T, 1, 96, 96} = 81 channels).
- Emotion discriminator (Sect. 2.5, ``models/emo_disc.py``): per frame five 3x3 stride-2
  convolutions (64, 128, 256, 512, 512 at 96x96) with LeakyReLU(0.3), a projector
  (4608 -> 2048 -> 512, LeakyReLU(0.3) between), a one-layer LSTM (512) over the frames and a
  linear layer on the last step -> 6 emotion logits. EmoGen reshapes its ``(B, C, T, H, W)``
  input with ``.view(T * B, C, H, W)``, which mixes time and channels; here a video is
  ``(B, T, 3, H, W)`` and is flattened frame by frame.
- Augmentations (Sect. 2.1: "random brightness contrast, random Gamma, channel shuffle, RGB
  shift, and Gaussian noise", "the same augmentations were used in all the input frames"):
  :func:`augment_windows`, written here with the settings of the albumentations defaults
  EmoGen used (brightness and contrast +-0.2, gamma 0.8-1.2, RGB shift +-20/255, noise
  variance 10-50 on the 0-255 scale), the whole chain with probability 0.8 and each
  transform with 0.4 (EmoGen's ``train.py``). One draw of every parameter (and one noise
  field) per window, applied to all its frames. EmoGen's extra CLAHE, hue-saturation and the
  separate brightness/contrast transforms are not in the paper and not used.

Generation from one identity image: the reference frames are the image, the masked frames
zeros; the emotion is the requested one. The upper face is generated too, so the image's own
expression is replaced by the requested emotion (as far as training taught it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import EMOTIONS
from bench.generators.wav2lip import Wav2LipConfig, Wav2LipGenerator, check_config

N_EMOTIONS = len(EMOTIONS)


@dataclass(frozen=True)
class EmotionWav2LipConfig(Wav2LipConfig):
    """Wav2Lip's configuration plus seed 002's (defaults: the paper budget)."""

    concat: str = "seq"
    """``"seq"`` (sequential, the paper's choice) or ``"end"``."""
    emotion_dims: tuple[int, int] = (512, 512)
    """Widths of the emotion encoder's two linear layers (END: the second is ``size**2``)."""
    reference: str = "speaker"
    """Where training reference frames come from: ``"speaker"`` (a random window of another
    clip of the same speaker, ours) or ``"clip"`` (another window of the same clip, EmoGen)."""
    # -- emotion discriminator --
    emo_disc_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    emo_disc_fc: tuple[int, int] = (2048, 512)
    emo_lr: float = 1e-6
    emo_betas: tuple[float, float] = (0.5, 0.999)
    emo_pretrain_steps: int = 20_000
    emo_pretrain_batch: int = 64
    emo_pretrain_lr: float = 1e-6
    # -- losses (Eq. 1) --
    w_perc: float = 0.01
    w_emo: float = 0.001
    perc_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
    perc_frames: int = 0
    """Frames of the batch the perceptual loss sees (0: all)."""
    # -- augmentation --
    augment_p: float = 0.8
    augment_each: float = 0.4

    def __post_init__(self) -> None:
        check_config(self)
        if self.concat not in ("seq", "end"):
            raise ValueError(f"concat must be 'seq' or 'end', not {self.concat!r}")
        if self.reference not in ("speaker", "clip"):
            raise ValueError(f"reference must be 'speaker' or 'clip', not {self.reference!r}")


def emotion_onehot(emotions: list[str | None] | tuple[str | None, ...],
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """``(N, 6)`` one-hot rows in ``bench.EMOTIONS`` order; None -> zeros."""
    out = torch.zeros(len(emotions), N_EMOTIONS, device=device)
    for i, emotion in enumerate(emotions):
        if emotion is None:
            continue
        if emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS} or None")
        out[i, EMOTIONS.index(emotion)] = 1.0
    return out


def onehot_of_labels(labels: torch.Tensor) -> torch.Tensor:
    """Emotion indices ``(N,)`` (-1: none) -> ``(N, 6)`` one-hot (zeros for -1)."""
    out = torch.zeros(labels.shape[0], N_EMOTIONS, device=labels.device)
    known = labels >= 0
    out[known, labels[known]] = 1.0
    return out


class EmotionEncoder(nn.Module):
    """Two linear layers with LeakyReLU(0.2): ``(N, 6)`` -> ``(N, d)`` (SEQ) or a
    ``(N, 1, s, s)`` map (END)."""

    def __init__(self, cfg: EmotionWav2LipConfig) -> None:
        super().__init__()
        out = cfg.emotion_dims[1] if cfg.concat == "seq" else cfg.size * cfg.size
        self.fc1 = nn.Linear(N_EMOTIONS, cfg.emotion_dims[0])
        self.fc2 = nn.Linear(cfg.emotion_dims[0], out)
        self.concat, self.size = cfg.concat, cfg.size

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc2(F.leaky_relu(self.fc1(onehot), 0.2)), 0.2)
        if self.concat == "seq":
            return x[:, :, None, None]
        return x.view(-1, 1, self.size, self.size)


class EmotionWav2LipGenerator(Wav2LipGenerator):
    """Wav2Lip's generator with the emotion encoder joined by SEQ or END (module docstring).
    ``forward(mel, faces, onehot (N, 6))``."""

    def __init__(self, cfg: EmotionWav2LipConfig) -> None:
        seq = cfg.concat == "seq"
        super().__init__(cfg, bottleneck_extra=cfg.emotion_dims[1] if seq else 0,
                         output_extra=0 if seq else 1)
        self["emotion_encoder"] = EmotionEncoder(cfg)

    def bottleneck(self, audio: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.concat != "seq":
            return audio
        return torch.cat([audio, self["emotion_encoder"](self._onehot(audio, condition))], 1)

    def output_input(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.concat != "end":
            return x
        return torch.cat([x, self["emotion_encoder"](self._onehot(x, condition))], 1)

    @staticmethod
    def _onehot(like: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if condition is None:
            return like.new_zeros(like.shape[0], N_EMOTIONS)
        return condition

    def still_inputs(self, image01: torch.Tensor) -> torch.Tensor:
        """Fully masked (zero) frame and the image as the reference."""
        return torch.cat([torch.zeros_like(image01), image01], 1)

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int) -> torch.Tensor:
        """One identity ``(1, 3, s, s)`` in ``[-1, 1]`` + audio + emotion -> ``(T, 3, s, s)``
        in ``[-1, 1]``."""
        onehot = emotion_onehot([emotion], image.device)
        return self.synthesize_still(image, audio, num_frames, onehot)


# ---------------------------------------------------------------------------------------------
# Emotion discriminator


class EmotionDiscriminator(nn.Module):
    """Seed 002's emotion discriminator (module docstring): ``(N, T, 3, s, s)`` in ``[0, 1]``
    -> ``(N, 6)`` logits."""

    def __init__(self, cfg: EmotionWav2LipConfig) -> None:
        super().__init__()
        convs, cin, side = [], 3, cfg.size
        for cout in cfg.emo_disc_channels:
            convs.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            cin, side = cout, (side - 1) // 2 + 1
        self.convs = nn.ModuleList(convs)
        self.projector = nn.Sequential(nn.Linear(cin * side * side, cfg.emo_disc_fc[0]),
                                       nn.LeakyReLU(0.3),
                                       nn.Linear(cfg.emo_disc_fc[0], cfg.emo_disc_fc[1]))
        self.lstm = nn.LSTM(cfg.emo_disc_fc[1], cfg.emo_disc_fc[1], batch_first=True)
        self.classify = nn.Linear(cfg.emo_disc_fc[1], N_EMOTIONS)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        n, t = video.shape[:2]
        x = video.reshape(n * t, *video.shape[2:])  # frame by frame, channels kept together
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.3)
        h = self.projector(x.reshape(n, t, -1))
        out, _ = self.lstm(h)
        return self.classify(out[:, -1])


# ---------------------------------------------------------------------------------------------
# Augmentations (Sect. 2.1)


def augment_windows(video: torch.Tensor, generator: torch.Generator, p: float = 0.8,
                    p_each: float = 0.4) -> torch.Tensor:
    """Seed 002's augmentations of ``(B, F, 3, H, W)`` windows in ``[0, 1]`` (module
    docstring): per window, with probability ``p``, each of brightness/contrast, gamma,
    channel shuffle, RGB shift and Gaussian noise with probability ``p_each``, with one
    parameter draw for all ``F`` frames of the window. Returns a new tensor."""
    b = video.shape[0]
    dev = video.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, *shape, generator=generator)).to(dev)

    def picked() -> torch.Tensor:
        return (chain & (torch.rand(b, generator=generator) < p_each)).to(dev)

    def where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.view(b, 1, 1, 1, 1), new, old)

    chain = torch.rand(b, generator=generator) < p
    x = video
    # brightness / contrast: x * alpha + beta
    alpha = u(0.8, 1.2).view(b, 1, 1, 1, 1)
    beta = u(-0.2, 0.2).view(b, 1, 1, 1, 1)
    x = where(picked(), (x * alpha + beta).clamp(0, 1), x)
    # gamma
    gamma = u(0.8, 1.2).view(b, 1, 1, 1, 1)
    x = where(picked(), x.clamp_min(0).pow(gamma), x)
    # channel shuffle
    perms = torch.stack([torch.randperm(3, generator=generator) for _ in range(b)]).to(dev)
    shuffled = torch.gather(x, 2, perms.view(b, 1, 3, 1, 1).expand_as(x))
    x = where(picked(), shuffled, x)
    # RGB shift
    shift = u(-20 / 255, 20 / 255, 3).view(b, 1, 3, 1, 1)
    x = where(picked(), (x + shift).clamp(0, 1), x)
    # Gaussian noise: variance 10..50 on the 0..255 scale, one field per window
    sigma = u(10.0, 50.0).sqrt().div(255.0).view(b, 1, 1, 1, 1)
    noise = torch.randn(b, 1, *video.shape[2:], generator=generator).to(dev) * sigma
    x = where(picked(), (x + noise).clamp(0, 1), x)
    return x
