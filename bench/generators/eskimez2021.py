"""Eskimez, Zhang and Duan 2021, "Speech driven talking face generation from a single image
and an emotion condition" (IEEE TMM; arXiv 2008.03592), as seed 000 (Bhagat et al.,
"Emotional talking face generation using deformable convolutional networks") describes it in
its Sect. III (the seed's baseline [24]).

Generator (seed 000, Sect. III-A): five sub-networks.

- Image encoder (III-A-1): six 2-D convolutions with (filters, kernel, down-sampling)
  (128, 3, 2), (256, 3, 2), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 4, 1), each followed by
  LeakyReLU(0.3). The seed says the down-sampling is "nearest-neighbor interpolation rather
  than strides": a 3x3 convolution (padding 1) followed by nearest-neighbour down-sampling by 2
  keeps exactly the outputs at even positions, which is what a stride-2 convolution computes,
  so we use the stride-2 convolution (same function, a quarter of the work). The last 4x4
  convolution (no padding) turns the 4x4 map into the 1x1 image embedding; the five
  intermediate maps go to the decoder as U-Net skips. The number of 3x3 layers follows the
  frame size: ``size = base * 2 ** (len(enc_channels) - 1)`` with ``base`` the side of the
  last map, 4 in the paper (128 -> five layers); smaller budgets may use another base (48 ->
  four layers and a 3x3 map, whose last convolution is then 3x3; the decoder starts at 3x3).
- Speech encoder (III-A-2): five 1-D convolutions on the raw waveform with (filters, kernel,
  stride) (64, 63, 4), (128, 31, 4), (256, 17, 2), (512, 9, 2), (16, 1, 1), LeakyReLU(0.3)
  after each; a context layer that concatenates past and future steps and keeps every fifth
  step ("125 time-steps to 25"), a fully connected layer and two LSTM layers.
  *Which signal gives 125 steps per second:* the seed states only "125 time-steps to 25"
  and strides on a time-domain input; the strides multiply to 64 and 8000 / 64 = 125, so we
  read it as the raw waveform at 8 kHz (our inference, not a stated sample rate; a log-mel
  front-end would not need strides of 4, 4, 2, 2). talkbench's 16 kHz audio is resampled to
  8 kHz (``scipy.signal.resample_poly(x, 1, 2)``, polyphase anti-aliasing filter): 320
  samples and five encoder steps per video frame. It is scaled to unit RMS per utterance
  (our choice: the papers do not say how the waveform is scaled; this keeps the first
  convolutions' inputs at a fixed scale whatever the recording level). Step ``j`` is centred
  on sample ``64 j``; video frame ``t`` (8 kHz samples ``[320 t, 320 (t + 1))``) takes step
  ``5 t + 2`` with ``speech_context`` steps on each side (the seed gives no width; ours: 5
  steps = 40 ms each side).
  The convolutions see ``speech_margin`` frames of audio beyond the first and last frame
  (zeros beyond the clip), in training and in generation alike.
- Emotion encoder (III-A-3): one-hot label -> two fully connected layers with LeakyReLU(0.3),
  repeated for every time step. A missing label (``None``) is the all-zero vector.
- Noise encoder (III-A-4): a standard Gaussian vector per frame through a one-layer LSTM.
- Video decoder (III-A-5): the image, speech, emotion and noise embeddings are concatenated
  per frame and projected (fully connected + reshape) to a 4x4 map (``base`` x ``base``, see
  the image encoder); at each resolution the map
  is concatenated with the image encoder's skip of that resolution, convolved (3x3,
  LeakyReLU(0.3)) and up-sampled (nearest, x2); the last layer (3x3 convolution, no skip) ends
  in tanh. Decoder widths are not given; ours mirror the encoder's.

Discriminators (III-B):

- Frame discriminator (III-B-2): each frame concatenated with the identity image (repeated for
  every frame) goes through five 2-D convolutions (4x4, stride 2, LeakyReLU(0.2); widths
  ours) and a linear layer to one score: a Wasserstein critic (III-C-3, "more stable training
  is achieved using a Wasserstein GAN"); we use the gradient penalty of Gulrajani et al.
  (weight ``w_gp``), which the seed does not name.
- Emotion discriminator (III-B-1): a video emotion classifier with an extra "fake" class:
  per frame five 3x3 stride-2 convolutions with LeakyReLU(0.3), a linear projection, one LSTM
  over the frames and a linear classifier on the last step to 7 logits (the six
  ``bench.EMOTIONS`` + fake). Layer widths are ours (the harness's EmoAcc judge, which follows
  the same family, uses the same layout).

Losses (III-C) and training: :mod:`bench.generators.eskimez2021_training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import EMOTIONS, SAMPLES_PER_FRAME

SPEECH_RATE = 8000
"""Sample rate the speech encoder reads (8000 / 64 = 125 encoder steps per second)."""
SPEECH_PER_FRAME = SAMPLES_PER_FRAME // 2
"""8 kHz samples per 25 fps video frame (320)."""
STEPS_PER_FRAME = 5
"""Speech-encoder steps per video frame (125 / 25)."""
N_EMOTIONS = len(EMOTIONS)
FAKE_CLASS = N_EMOTIONS
"""Index of the emotion discriminator's "fake" class (after the six emotions)."""


@dataclass(frozen=True)
class EskimezConfig:
    """Sizes, loss weights and schedule of the Eskimez et al. generator (module docstring)."""

    size: int = 128
    """Frame side: ``base * 2 ** (len(enc_channels) - 1)``, ``base`` (paper: 4) >= 2."""
    enc_channels: tuple[int, ...] = (128, 256, 512, 512, 512, 512)
    """Image encoder widths: 3x3 stride-2 layers, then the ``base`` x ``base`` (paper: 4x4)
    convolution to the 1x1 embedding."""
    slope: float = 0.3
    """LeakyReLU negative slope of the generator (seed 000: "ReLU ... with a 0.3 slope")."""
    speech_channels: tuple[int, ...] = (64, 128, 256, 512, 16)
    speech_kernels: tuple[int, ...] = (63, 31, 17, 9, 1)
    speech_strides: tuple[int, ...] = (4, 4, 2, 2, 1)
    speech_context: int = 5
    """Encoder steps concatenated on each side by the context layer (ours)."""
    speech_margin: int = 2
    """Video frames of audio beyond each end fed to the speech convolutions."""
    speech_fc: int = 256
    speech_dim: int = 256
    """Hidden size of the speech encoder's two LSTM layers (ours)."""
    emotion_dims: tuple[int, ...] = (128, 128)
    """Widths of the emotion encoder's two fully connected layers (ours)."""
    noise_dim: int = 10
    noise_hidden: int = 16
    dec_channels: tuple[int, ...] = (512, 512, 512, 256, 128)
    """Decoder widths at base, 2 base, ..., size/2 (paper: 4x4 ... 64x64; ours: the encoder's,
    mirrored)."""
    frame_disc_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    emo_disc_channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    emo_disc_embed: int = 512
    mrm_sigma: float = 0.12
    """Gaussian standard deviation as a fraction of the frame side."""
    mrm_peak: float = 4.0
    mrm_floor: float = 1.0
    """MRM weight map ``mrm_floor + mrm_peak * gaussian`` (ours; see the module docstring)."""
    perc_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
    perc_frames: int = 0
    """Frames per step (drawn from the whole batch) the perceptual loss sees (0: all)."""
    adv_frames: int = 0
    """Frames per step (drawn from the whole batch) the frame discriminator sees (0: all)."""
    emo_seqs: int = 0
    """Sequences per step the emotion discriminator sees in joint training (0: all)."""
    w_mrm: float = 1.0
    w_perc: float = 1.0
    w_adv: float = 0.01
    w_emo: float = 0.1
    w_gp: float = 10.0
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    lr_speech: float = 0.0
    """Learning rate of the speech encoder (0: ``lr_g``). Our choice for high-rate budgets:
    at large rates the unnormalised raw-waveform convolutions grow until the LSTMs saturate."""
    betas: tuple[float, float] = (0.5, 0.999)
    batch: int = 8
    """Clips per step."""
    seq_len: int = 32
    """Consecutive frames per clip per step."""
    identity_frames: int = 1
    """Identity images come from the first this many frames of a clip (0: any frame); 1
    matches generation, whose identity image is a clip's first frame."""
    steps: int = 200_000
    max_seconds: float | None = None
    emo_pretrain_steps: int = 2000
    """Emotion discriminator pre-training steps before joint training (ours)."""
    emo_pretrain_batch: int = 0
    """Sequences per emotion pre-training step (0: ``batch``)."""
    emo_pretrain_fraction: float = 0.1
    """Most of ``max_seconds`` the emotion pre-training may take."""
    decode_chunk: int = 64
    """Frames decoded at once in generation (bounds memory for long clips)."""


def base_side(cfg: EskimezConfig) -> int:
    """Side of the image encoder's last map and of the decoder's first (paper: 4)."""
    return cfg.size // 2 ** (len(cfg.enc_channels) - 1)


def check_config(cfg: EskimezConfig) -> None:
    """Raise ValueError when the sizes do not fit together."""
    halvings = 2 ** (len(cfg.enc_channels) - 1)
    if cfg.size % halvings or cfg.size // halvings < 2:
        raise ValueError(f"size {cfg.size} does not fit {len(cfg.enc_channels)} image encoder "
                         f"layers (size = base * 2 ** (layers - 1), base >= 2; the paper: "
                         f"128 = 4 * 2 ** 5)")
    if len(cfg.dec_channels) != len(cfg.enc_channels) - 1:
        raise ValueError("dec_channels needs one width per encoder skip "
                         f"({len(cfg.enc_channels) - 1}), got {len(cfg.dec_channels)}")
    stride = math.prod(cfg.speech_strides)
    if stride * STEPS_PER_FRAME != SPEECH_PER_FRAME:
        raise ValueError(f"speech strides multiply to {stride}; 125 steps/s at 8 kHz needs 64")
    lengths = {len(cfg.speech_channels), len(cfg.speech_kernels), len(cfg.speech_strides)}
    if len(lengths) != 1 or any(k % 2 == 0 for k in cfg.speech_kernels):
        raise ValueError("speech encoder: channels, kernels and strides must have equal "
                         "lengths, with odd kernels")


# ---------------------------------------------------------------------------------------------
# Inputs


def speech_8k(audio: np.ndarray, num_frames: int, min_rms: float = 0.01) -> np.ndarray:
    """16 kHz audio -> 8 kHz, scaled to unit RMS (``1 / max(rms, min_rms)``, so near-silence
    is not blown up), cut or zero-padded to ``num_frames * 320`` samples."""
    from scipy.signal import resample_poly

    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    out = resample_poly(audio, 1, 2) if audio.size else np.zeros(0)
    target = num_frames * SPEECH_PER_FRAME
    out = out[:target] if out.shape[0] >= target else np.pad(out, (0, target - out.shape[0]))
    rms = float(np.sqrt(np.mean(out ** 2))) if out.size else 0.0
    return (out / max(rms, min_rms)).astype(np.float32)


def speech_segment(wave8k: np.ndarray, start: int, num_frames: int, margin: int) -> np.ndarray:
    """8 kHz samples of frames ``[start - margin, start + num_frames + margin)``, zeros outside
    the clip: ``((num_frames + 2 margin) * 320,)``."""
    lo = (start - margin) * SPEECH_PER_FRAME
    hi = (start + num_frames + margin) * SPEECH_PER_FRAME
    out = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0), min(hi, wave8k.shape[0])
    if b > a:
        out[a - lo:b - lo] = wave8k[a:b]
    return out


def emotion_onehot(emotions: Sequence[str | None],
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """``(N, 6)`` one-hot rows in the order of ``bench.EMOTIONS``; ``None`` -> zeros."""
    out = torch.zeros(len(emotions), N_EMOTIONS, device=device)
    for i, emotion in enumerate(emotions):
        if emotion is None:
            continue
        if emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS} or None")
        out[i, EMOTIONS.index(emotion)] = 1.0
    return out


# ---------------------------------------------------------------------------------------------
# Generator

ConvFactory = Callable[[int, int, int, int, int, int], nn.Module]
"""``(layer index, in channels, out channels, kernel, stride, padding) -> conv module``."""


def plain_conv(index: int, cin: int, cout: int, kernel: int, stride: int,
               padding: int) -> nn.Module:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)


class ImageEncoder(nn.Module):
    """Seed 000 Sect. III-A-1: 3x3 stride-2 convolutions (see the module docstring on
    nearest-neighbour down-sampling) and a final 4x4 convolution to a ``C x 1 x 1`` embedding;
    returns the embedding ``(N, C)`` and the skips ``[size/2, ..., 4]``.

    ``conv_factory`` builds each convolution (the deformable variant swaps some in);
    :meth:`refine` is applied to each layer's activated output (identity here)."""

    def __init__(self, cfg: EskimezConfig, conv_factory: ConvFactory = plain_conv) -> None:
        super().__init__()
        self.slope = cfg.slope
        layers = []
        cin = 3
        last = len(cfg.enc_channels) - 1
        for i, cout in enumerate(cfg.enc_channels):
            if i < last:
                layers.append(conv_factory(i, cin, cout, 3, 2, 1))
            else:
                layers.append(conv_factory(i, cin, cout, base_side(cfg), 1, 0))
            cin = cout
        self.convs = nn.ModuleList(layers)
        self.out_dim = cin

    def refine(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = image
        for i, conv in enumerate(self.convs):
            x = self.refine(i, F.leaky_relu(conv(x), self.slope))
            skips.append(x)
        embedding = skips.pop()
        return embedding.flatten(1), skips


class SpeechEncoder(nn.Module):
    """Seed 000 Sect. III-A-2: five 1-D convolutions on 8 kHz speech (125 steps/s), the
    context layer (neighbouring steps concatenated, every fifth step kept: 25 per second), a
    fully connected layer and two LSTM layers."""

    def __init__(self, cfg: EskimezConfig) -> None:
        super().__init__()
        self.slope = cfg.slope
        self.context = cfg.speech_context
        self.margin = cfg.speech_margin
        convs = []
        cin = 1
        for cout, k, s in zip(cfg.speech_channels, cfg.speech_kernels, cfg.speech_strides,
                              strict=True):
            convs.append(nn.Conv1d(cin, cout, k, stride=s, padding=(k - 1) // 2))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(cin * (2 * self.context + 1), cfg.speech_fc)
        self.lstm = nn.LSTM(cfg.speech_fc, cfg.speech_dim, num_layers=2, batch_first=True)

    def context_features(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The context layer's output, one row per video frame: ``wave`` ``(N, (num_frames +
        2 margin) * 320)`` -> ``(N, num_frames, 16 * (2 context + 1))``."""
        x = wave[:, None]
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
        c = self.context
        x = F.pad(x, (c, c)).unfold(2, 2 * c + 1, 1)  # (N, C, steps, 2c + 1)
        x = x.permute(0, 2, 1, 3).flatten(2)  # (N, steps, C * (2c + 1))
        keep = STEPS_PER_FRAME * (self.margin + torch.arange(num_frames, device=x.device)) + 2
        return x[:, keep]

    def forward(self, wave: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``wave`` ``(N, (num_frames + 2 margin) * 320)`` -> ``(N, num_frames, speech_dim)``."""
        x = F.leaky_relu(self.fc(self.context_features(wave, num_frames)), self.slope)
        out, _ = self.lstm(x)
        return out


class EmotionEncoder(nn.Module):
    """Seed 000 Sect. III-A-3: one-hot emotion -> two fully connected layers."""

    def __init__(self, cfg: EskimezConfig) -> None:
        super().__init__()
        self.slope = cfg.slope
        dims = (N_EMOTIONS, *cfg.emotion_dims)
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:],
                                                                  strict=True))
        self.out_dim = dims[-1]

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x = onehot
        for fc in self.fcs:
            x = F.leaky_relu(fc(x), self.slope)
        return x


class NoiseEncoder(nn.Module):
    """Seed 000 Sect. III-A-4: per-frame Gaussian noise through a one-layer LSTM."""

    def __init__(self, cfg: EskimezConfig) -> None:
        super().__init__()
        self.noise_dim = cfg.noise_dim
        self.lstm = nn.LSTM(cfg.noise_dim, cfg.noise_hidden, batch_first=True)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(noise)
        return out


class VideoDecoder(nn.Module):
    """Seed 000 Sect. III-A-5: embeddings -> 4x4 map, then per resolution: concatenate the
    encoder's skip, 3x3 convolution, nearest up-sampling x2; a last 3x3 convolution + tanh."""

    def __init__(self, cfg: EskimezConfig, in_dim: int) -> None:
        super().__init__()
        self.slope = cfg.slope
        self.c0 = cfg.dec_channels[0]
        self.base = base_side(cfg)
        self.project = nn.Linear(in_dim, self.c0 * self.base ** 2)
        skips = list(reversed(cfg.enc_channels[:-1]))  # widths at 4, 8, ..., size/2
        convs = []
        cin = self.c0
        for skip, cout in zip(skips, cfg.dec_channels, strict=True):
            convs.append(nn.Conv2d(cin + skip, cout, 3, padding=1))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """``z`` ``(M, in_dim)``, ``skips`` ``[(M, C, s/2, s/2), ..., (M, C, 4, 4)]`` ->
        frames ``(M, 3, s, s)``."""
        x = F.leaky_relu(self.project(z), self.slope).view(-1, self.c0, self.base, self.base)
        for conv, skip in zip(self.convs, reversed(skips), strict=True):
            x = F.leaky_relu(conv(torch.cat([x, skip], 1)), self.slope)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.out(x))


class EskimezGenerator(nn.ModuleDict):
    """The five sub-networks (keys ``image_encoder``, ``speech_encoder``, ``emotion_encoder``,
    ``noise_encoder``, ``decoder``) and the generation pass."""

    def __init__(self, cfg: EskimezConfig, image_encoder: ImageEncoder | None = None) -> None:
        check_config(cfg)
        image = image_encoder if image_encoder is not None else ImageEncoder(cfg)
        speech, emotion, noise = SpeechEncoder(cfg), EmotionEncoder(cfg), NoiseEncoder(cfg)
        z_dim = image.out_dim + cfg.speech_dim + emotion.out_dim + cfg.noise_hidden
        super().__init__({"image_encoder": image, "speech_encoder": speech,
                          "emotion_encoder": emotion, "noise_encoder": noise,
                          "decoder": VideoDecoder(cfg, z_dim)})
        self.cfg = cfg

    def embeddings(self, identity: torch.Tensor, wave: torch.Tensor, onehot: torch.Tensor,
                   noise: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Per-frame decoder inputs ``(N, T, z_dim)`` and the identity's skips."""
        n, t = noise.shape[:2]
        image, skips = self["image_encoder"](identity)
        speech = self["speech_encoder"](wave, t)
        emotion = self["emotion_encoder"](onehot)
        noise_emb = self["noise_encoder"](noise)
        z = torch.cat([image[:, None].expand(n, t, -1), speech,
                       emotion[:, None].expand(n, t, -1), noise_emb], dim=2)
        return z, skips

    def forward(self, identity: torch.Tensor, wave: torch.Tensor, onehot: torch.Tensor,
                noise: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """identity ``(N, 3, s, s)``, wave ``(N, (T + 2 margin) * 320)`` at 8 kHz, onehot
        ``(N, 6)``, noise ``(N, T, noise_dim)`` -> frames ``(N, T, 3, s, s)`` in [-1, 1]."""
        z, skips = self.embeddings(identity, wave, onehot, noise)
        n, t = z.shape[:2]
        chunk = chunk or t
        out = []
        for a in range(0, t, chunk):
            b = min(t, a + chunk)
            rep = [s[:, None].expand(n, b - a, *s.shape[1:]).reshape(-1, *s.shape[1:])
                   for s in skips]
            out.append(self["decoder"](z[:, a:b].reshape(n * (b - a), -1), rep)
                       .view(n, b - a, 3, *identity.shape[-2:]))
        return torch.cat(out, 1)

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        """One identity ``(1, 3, s, s)`` + 16 kHz audio + emotion -> ``(T, 3, s, s)``."""
        device = image.device
        margin = self.cfg.speech_margin
        wave = speech_segment(speech_8k(audio, num_frames), 0, num_frames, margin)
        wave_t = torch.from_numpy(wave)[None].to(device)
        onehot = emotion_onehot([emotion], device)
        noise = torch.randn(1, num_frames, self.cfg.noise_dim, generator=generator,
                            device=device)
        return self(image, wave_t, onehot, noise, chunk=self.cfg.decode_chunk)[0]


# ---------------------------------------------------------------------------------------------
# Discriminators


class FrameDiscriminator(nn.Module):
    """Seed 000 Sect. III-B-2: (frame, identity image) -> five 4x4 stride-2 convolutions ->
    one Wasserstein critic score per frame."""

    def __init__(self, cfg: EskimezConfig) -> None:
        super().__init__()
        convs = []
        cin = 6
        side = cfg.size
        for cout in cfg.frame_disc_channels:
            convs.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
            cin, side = cout, max(1, side // 2)
        self.convs = nn.ModuleList(convs)
        self.score = nn.Linear(cin * side * side, 1)

    def forward(self, frames: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """``frames`` ``(M, 3, s, s)``, ``identity`` ``(M, 3, s, s)`` -> ``(M,)``."""
        x = torch.cat([frames, identity], 1)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.score(x.flatten(1))[:, 0]


class EmotionDiscriminator(nn.Module):
    """Seed 000 Sect. III-B-1: video emotion classifier with a fake class. Per frame: 3x3
    stride-2 convolutions with LeakyReLU(0.3) and a linear projection; an LSTM over the
    frames; a linear layer on the last step -> 7 logits (``bench.EMOTIONS`` + fake)."""

    def __init__(self, cfg: EskimezConfig) -> None:
        super().__init__()
        convs = []
        cin = 3
        side = cfg.size
        for cout in cfg.emo_disc_channels:
            convs.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            cin, side = cout, (side + 1) // 2
        self.convs = nn.ModuleList(convs)
        self.project = nn.Linear(cin * side * side, cfg.emo_disc_embed)
        self.lstm = nn.LSTM(cfg.emo_disc_embed, cfg.emo_disc_embed, batch_first=True)
        self.classify = nn.Linear(cfg.emo_disc_embed, N_EMOTIONS + 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(N, T, 3, s, s)`` -> logits ``(N, 7)``."""
        n, t = video.shape[:2]
        x = video.reshape(n * t, *video.shape[2:])
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.3)
        x = F.leaky_relu(self.project(x.flatten(1)), 0.3).view(n, t, -1)
        out, _ = self.lstm(x)
        return self.classify(out[:, -1])
