"""Das, Khan and Cremers, "Ventriloquist-Net: leveraging speech cues for emotive talking head
generation" (seed 001): emotion inferred from the speech, through facial landmarks.

Pieces (paper sections; the authors' partial code, ``dipnds/VentriloquistNet``, was read
where the paper is vague and is cited as "code"):

- **Speech features** (Sect. 2): MFCCs ``m(t)`` (30 coefficients) for the emotion network and
  a log-mel spectrogram ``s(t)`` (80 bands) for the generator. Adapted to 25 fps and 16 kHz
  (the paper: 30 fps, 48 kHz, hop 522 = about 3 feature frames per video frame): 4 feature
  frames per video frame (hop 160 = 10 ms), 40 ms Hann windows (the code's 2048/48000 s),
  1024-point FFT, mel filters 55 Hz - 8 kHz, power in dB floored 80 dB below the clip's
  maximum (librosa's ``power_to_db(top_db=80)``, which the code's ``librosa`` features use),
  MFCC = orthonormal DCT-II of a 128-band log-mel (librosa's default). The feature frames of
  video frame ``t`` are centred at ``640 t + 80 + 160 k`` (k = 0..3), inside its audio span.
  Each coefficient is standardised with training-set statistics (code), kept in buffers.
- **Windows**: 1 s = ``window`` = 25 video frames (the paper's 30 at 30 fps) and the 100
  feature frames under them (the code's 92 = 3 x 30 + 2; we take none beyond the window).
- **Sp2Emo** (Sect. 2.1, Fig. 2; code ``emo_classifier_seq.py``): a 2D CNN on the MFCC
  window: conv (3x7) 32, conv (3x5) 32, conv 3x3 64, conv 3x3 128 (each dropout 0.2 + BN +
  ReLU, average-pooled by 2 in frequency), pooled to one frequency row and max-pooled by 4 in
  time (the code's 3) -> ``q_emo(t)``, 128-d per video frame; then FC 128 -> 32 -> 6 emotion
  logits (``l_emo`` = their softmax; 6 CREMA-D emotions here, MEAD's 8 in the paper).
- **Exp2Emo** (Sect. 2.1; code ``emo_classifier_kp.py``): biLSTM 136 -> 32, biLSTM 64 -> 8 on
  the landmark deformation sequence, flattened over the window, FC 128 -> 32 -> 6 logits
  (``p_emo`` = their softmax).
- **Landmarks** (Sect. 2.2; code ``dataprep_gan.py``): per clip, the 68 (x, y) points are
  standardised per axis by their mean and standard deviation over all frames and points of
  the clip (the code does it per 1 s window: "per clip" as the paper says here); the mean face
  ``k_bar`` is the mean standardised shape over every training frame; the deformation is
  ``dk(t) = k(t) - k_bar``, flattened to 136 values (x, y per point, the code's order).
  Ours (``speaker_normalise``, on in every budget): before that, each training speaker's
  mean standardised shape over all its frames is replaced by ``k_bar``, so the targets hold
  the speech- and emotion-driven motion and not the speaker's face shape, which G cannot
  know for a new speaker. The same removal (over the given clips) is applied to held-out
  landmarks before Exp2Emo classifies them.
- **Emotive generator G** (Sect. 2.2, Fig. 3; code ``gan_cnn_emo_3.py``): a 2D CNN on the mel
  window (conv 32, 64, 128, 256, 512, 512; BN + LeakyReLU 0.1; pooled to 80/16 = 5 rows and
  one column per video frame) gives ``q_ling(t)`` (2560-d); the lip branch (1D conv 512, 272,
  272, 136) on ``q_ling`` and the emotion branch (1D conv 272, 272, 136) on ``q_emo`` give
  deformations that are added through frozen masks: the lip branch only on the jaw and lips
  (points 0-16 and 48-67), the emotion branch with weight 0.2 there and 1 elsewhere (the
  code's fixed masks), then tanh: ``dk_hat(t)``; ``k_hat(t) = k_bar + dk_hat(t)``. Small
  initial weights (code's ``init_weights``) keep the first deformations small (Sect. 2.2:
  "the deformation magnitude can be controlled via weight initialization").
- **Discriminator D** (Sect. 2.3; code): biLSTM 136 -> 32, biLSTM 64 -> 8 over the
  deformation sequence, FC 64 -> 8 -> 1, sigmoid: is the whole sequence real?
- **Losses** (Sect. 2.3, weights Sect. 3.1): ``L = 0.5 L_adv + 0.5 L_emotion + 10 L_mouth +
  10 L_energy`` with

  - ``L_adv``: the code's hinge form on sigmoid outputs (the paper names no form): D minimises
    ``0.5 relu(0.9 - D(real)) + 0.5 relu(D(fake))``, G minimises ``relu(1 - D(fake))``;
  - ``L_emotion``: cosine embedding loss ``1 - cos(p_emo, l_emo)`` between Exp2Emo's
    probabilities on the generated deformations and Sp2Emo's on the input speech;
  - ``L_mouth = |dk^mouth(t) - dk_hat^mouth(t)|_1``: the L1 norm (sum of absolute values)
    of the difference between the generated and the real deformation over the 74 jaw and
    lip coordinates, averaged over frames and the batch; a norm, as ``L_energy``'s is (with
    a mean over the coordinates instead, the mouth term was 74 times weaker relative to
    the energy term and, at the demo budget, the generated lips stayed further from the
    real ones than the mean face's). ``dk_hat^mouth`` is read as
    the jaw and lip part of G's output (the paper's notation, "k^mouth includes only lip and
    jaw landmarks", and the code's choice): the lip branch moves these coordinates, and the
    emotion branch's 0.2-weighted share on them is held to the real mouth too (on the lip
    branch alone, the emotion branch's share went unchecked and swamped the lip motion);
  - ``L_energy = |E_t|dk| - E_t|dk_hat||_2 + |E_t|dk'| - E_t|dk_hat'||_2`` over all 136
    coordinates, ``'`` the frame-to-frame difference, ``|.|_2`` the Euclidean norm of the
    136-vector, averaged over the batch.

  Where the authors' code (``gan_cnn_emo_3.py``, ``train_gan_new.py``) differs and we
  follow the paper: the code's emotion loss is the MSE between the two softmaxes (weight
  2); its mouth loss is ``nn.L1Loss`` (the mean over all 136 coordinates, the 62 masked ones
  included) on the combined output after removing each frame's mouth centroid (weight 20;
  we keep the centroid and take the norm, the paper's formula); its energy loss is an MSE
  on the non-mouth coordinates only, without the derivative term (weight 10); its G takes a
  noise input besides the two feature streams (none here, the paper has none), and D's
  learning rate has an (unused) step schedule. Its adversarial weight is 0.5 as here.
- **Training** (Sect. 3.1): Sp2Emo alone with cross entropy (Adam 1e-3, x0.5 every 20 of 100
  epochs), Exp2Emo frozen for the first 40 epochs and then trained with the cosine embedding
  loss against Sp2Emo's (detached) probabilities (Adam 1e-4, x0.1 every 20 epochs); both then
  frozen; G and D adversarially with Adam 1e-4 and 4e-5 (betas 0.9, 0.999, code), batch 32
  (code). See :mod:`bench.generators.ventriloquist_training`.
- **Generation of any length** (ours): windows of ``window`` frames starting every ``hop``
  frames, the last one ending at the clip's end; each frame's deformation is the average of
  the windows covering it weighted by a triangular cross-fade (``min(i + 1, window - i)`` at
  position ``i`` of a window), so window edges, which lack context, weigh least. Clips shorter
  than a window are padded with silence (zero audio) to one window and cut.
- **Rendering** (Sect. 2, [23] in the paper; here :mod:`bench.generators.landmark_renderer`,
  a stand-in trained here). The generated landmarks are put on the identity (ours, the paper's
  renderer takes absolute landmarks): ``k_target(t) = k_id + s_id * (dk_hat(t) - dk_rest)``
  with ``k_id`` the identity image's own landmarks (dlib), ``s_id`` their per-axis standard
  deviation (the per-clip normalisation undone), and ``dk_rest`` the generator's output for
  the clip's quietest 10 % of frames (lowest mean log-mel energy) with the *neutral* emotion
  embedding (the mean ``q_emo`` of the neutral training windows, or of all of them without
  NEU labels): the mouth moves relative to its rest position and the expression relative to
  neutral, on the identity's own face shape.
- The ``emotion`` argument of generation is ignored: the emotion comes from the speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
from torch import nn

from bench import EMOTIONS, SAMPLES_PER_FRAME
from bench.core.audio import SAMPLE_RATE, mel_filterbank
from bench.generators.landmark_renderer import LandmarkRenderer, RendererConfig

N_POINTS = 68
N_COORDS = 2 * N_POINTS
MOUTH_POINT_IDS: tuple[int, ...] = tuple(range(0, 17)) + tuple(range(48, 68))
"""Jaw and lip points: what the lip branch may move (code ``wt_mouth``)."""


@dataclass(frozen=True)
class VentriloquistConfig:
    """Sizes and schedules; the defaults are the ``paper`` budget (module docstring)."""

    # -- speech features and windows
    window: int = 25
    """Video frames per window (1 s at 25 fps)."""
    hop: int = 12
    """Frames between the starts of consecutive generation windows."""
    feat_per_frame: int = 4
    """Audio feature frames per video frame (hop 160 samples = 10 ms)."""
    win_length: int = 640
    """Analysis window in samples (40 ms)."""
    n_fft: int = 1024
    n_mfcc: int = 30
    mfcc_mels: int = 128
    """Mel bands under the MFCCs (librosa's default)."""
    n_mels: int = 80
    """Mel bands of the generator's spectrogram (a multiple of 16)."""
    fmin: float = 55.0
    top_db: float = 80.0
    speaker_normalise: bool = True
    """Remove each training speaker's mean landmark shape from the targets (ours; module
    docstring, "Landmarks")."""
    # -- Sp2Emo
    sp2emo_channels: tuple[int, ...] = (32, 32, 64, 128)
    sp2emo_fc: tuple[int, ...] = (128, 32)
    dropout: float = 0.2
    # -- Exp2Emo
    exp2emo_hidden: tuple[int, int] = (32, 8)
    exp2emo_fc: tuple[int, ...] = (128, 32)
    # -- generator
    mel_channels: tuple[int, ...] = (32, 64, 128, 256, 512, 512)
    lip_channels: tuple[int, ...] = (512, 272, 272)
    emo_channels: tuple[int, ...] = (272, 272)
    emo_mouth_weight: float = 0.2
    """Weight of the emotion branch on the jaw and lip coordinates (code's ``wt_rest``)."""
    init_std: float = 0.5
    """Gain of the 1D convolutions' Xavier initialisation (code: 0.5 x leaky-ReLU gain)."""
    # -- discriminator
    disc_hidden: tuple[int, int] = (32, 8)
    disc_fc: tuple[int, ...] = (64, 8)
    # -- loss weights (Sect. 3.1)
    w_adv: float = 0.5
    w_emo: float = 0.5
    w_mouth: float = 10.0
    w_energy: float = 10.0
    # -- emotion pre-training (Sect. 3.1)
    emo_batch: int = 32
    emo_steps: int = 16_400
    """100 epochs of the CREMA-D train split (about 5,200 clips, one 1 s window each) at
    batch 32."""
    sp2emo_lr: float = 1e-3
    sp2emo_decay: float = 0.5
    sp2emo_decay_steps: int = 3_280
    """Every 20 epochs."""
    exp2emo_start: int = 6_560
    """Exp2Emo stays frozen for the first 40 epochs."""
    exp2emo_lr: float = 1e-4
    exp2emo_decay: float = 0.1
    exp2emo_decay_steps: int = 3_280
    # -- adversarial training (Sect. 3.1, code)
    batch: int = 32
    gan_steps: int = 16_400
    """100 epochs (the code's) of the CREMA-D train split at batch 32."""
    lr_g: float = 1e-4
    lr_d: float = 4e-5
    betas: tuple[float, float] = (0.9, 0.999)
    # -- renderer (ours, :mod:`bench.generators.landmark_renderer`)
    size: int = 128
    render_channels: tuple[int, ...] = (64, 128, 256, 512)
    render_batch: int = 16
    render_steps: int = 100_000
    render_lr: float = 2e-4
    render_betas: tuple[float, float] = (0.5, 0.999)
    w_perc: float = 1.0
    perc_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
    perc_frames: int | None = None
    sketch_sigma: float = 1.0
    motion_sigma: float = 0.08
    motion_background: float = 0.05
    first_frame: float = 0.5
    render_chunk: int = 32
    # -- validation and generation
    quiet_fraction: float = 0.1
    """Share of a clip's frames (the quietest) that define the mouth's rest position."""
    val_clips: int = 24
    """Validation clips for the held-out emotion accuracy and mouth distance (0: none)."""

    @property
    def feat_frames(self) -> int:
        """Audio feature frames per window."""
        return self.window * self.feat_per_frame

    def renderer_config(self) -> RendererConfig:
        return RendererConfig(
            size=self.size, channels=self.render_channels, sketch_sigma=self.sketch_sigma,
            motion_sigma=self.motion_sigma, background=self.motion_background,
            batch=self.render_batch, steps=self.render_steps, lr=self.render_lr,
            betas=self.render_betas, w_perc=self.w_perc, perc_layers=self.perc_layers,
            perc_frames=self.perc_frames, first_frame=self.first_frame, chunk=self.render_chunk)


def check_config(cfg: VentriloquistConfig) -> None:
    """ValueError when the sizes do not fit together."""
    if cfg.n_mels % 16:
        raise ValueError(f"n_mels must be a multiple of 16, got {cfg.n_mels}")
    if SAMPLES_PER_FRAME % cfg.feat_per_frame:
        raise ValueError("feat_per_frame must divide 640 samples")
    if len(cfg.sp2emo_channels) != 4 or len(cfg.mel_channels) != 6:
        raise ValueError("Sp2Emo has four convolutions and the mel CNN six")
    if not 0 < cfg.hop <= cfg.window:
        raise ValueError(f"hop must be in 1..window, got {cfg.hop}")


# ---------------------------------------------------------------------------------------------
# Speech features


def _log_mel_db(frames: np.ndarray, n_fft: int, bands: int, fmin: float,
                top_db: float) -> np.ndarray:
    window = np.hanning(frames.shape[1] + 2)[1:-1]
    power = np.abs(np.fft.rfft(frames * window, n_fft, axis=1)) ** 2
    mel = power @ mel_filterbank(bands, n_fft, SAMPLE_RATE, fmin).T
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    return np.maximum(db, db.max() - top_db)


def speech_features(audio: np.ndarray, num_frames: int,
                    cfg: VentriloquistConfig) -> tuple[np.ndarray, np.ndarray]:
    """MFCCs ``(4 T, n_mfcc)`` and log-mel ``(4 T, n_mels)`` float32 of ``audio`` (16 kHz)
    for ``T = num_frames`` video frames (module docstring: frame ``t``'s features are centred
    inside its audio span); audio beyond ``T`` frames is ignored, missing audio is silence."""
    hop = SAMPLES_PER_FRAME // cfg.feat_per_frame
    count = num_frames * cfg.feat_per_frame
    left = (cfg.win_length - hop) // 2
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)[:num_frames * SAMPLES_PER_FRAME]
    total = (count - 1) * hop + cfg.win_length
    padded = np.zeros(total)
    padded[left:left + audio.shape[0]] = audio[:total - left]
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.win_length)[::hop][:count]
    mel = _log_mel_db(frames, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.top_db)
    mfcc_mel = _log_mel_db(frames, cfg.n_fft, cfg.mfcc_mels, cfg.fmin, cfg.top_db)
    mfcc = scipy.fft.dct(mfcc_mel, type=2, axis=1, norm="ortho")[:, :cfg.n_mfcc]
    return mfcc.astype(np.float32), mel.astype(np.float32)


def feature_statistics(features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and standard deviation over every feature frame of the training
    clips (code: statistics of the training set)."""
    x = np.concatenate(features)
    return x.mean(0).astype(np.float32), np.maximum(x.std(0), 1e-3).astype(np.float32)


def quiet_frames(mel: np.ndarray, num_frames: int, fraction: float,
                 feat_per_frame: int) -> np.ndarray:
    """Indices of the ``fraction`` (at least one) of the ``num_frames`` video frames whose
    mean log-mel energy is lowest."""
    energy = mel[:num_frames * feat_per_frame].reshape(num_frames, -1).mean(1)
    k = max(1, int(round(fraction * num_frames)))
    return np.sort(np.argsort(energy, kind="stable")[:k])


# ---------------------------------------------------------------------------------------------
# Landmarks


def normalise_landmarks(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-clip normalisation (Sect. 2.2, code ``dataprep_gan.py``): ``(T, 68, 2)`` points ->
    (standardised points, per-axis mean ``(2,)``, per-axis standard deviation ``(2,)``) over
    all frames and points of the clip."""
    points = np.asarray(points, dtype=np.float32)
    mean = points.reshape(-1, 2).mean(0)
    std = np.maximum(points.reshape(-1, 2).std(0), 1e-3)
    return (points - mean) / std, mean, std


def mouth_mask() -> torch.Tensor:
    """``(136,)``: 1 on the x and y of the jaw and lip points, 0 elsewhere."""
    mask = torch.zeros(N_POINTS, 2)
    mask[list(MOUTH_POINT_IDS)] = 1.0
    return mask.reshape(-1)


# ---------------------------------------------------------------------------------------------
# Networks


def _init_small(module: nn.Module, gain: float) -> None:
    """Code's ``init_weights``: Xavier-normal 1D convolutions (gain x leaky-ReLU gain),
    zero biases; Linear layers N(0, 0.008); orthogonal LSTM weights."""
    if isinstance(module, nn.Conv1d):
        nn.init.xavier_normal_(module.weight,
                               gain=nn.init.calculate_gain("leaky_relu", 0.1) * gain)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.008)
    elif isinstance(module, nn.LSTM):
        nn.init.orthogonal_(module.weight_ih_l0, gain=nn.init.calculate_gain("tanh"))
        nn.init.orthogonal_(module.weight_hh_l0, gain=nn.init.calculate_gain("tanh"))


class MeanPool(nn.Module):
    """Average pooling by ``k`` along one axis of ``(B, C, H, W)`` (``dim`` 2 or 3) with
    non-overlapping windows, as ``nn.AvgPool2d((k, 1))`` / ``((1, k))`` computes it (a short
    axis is zero-padded at its start to a multiple of ``k`` first, as the code's
    ``AvgPool2d((2, 1), padding=(1, 0))`` does for an odd height); reshapes instead of
    ``avg_pool2d``, which is several times slower on a CPU for these shapes."""

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.k, self.dim = k, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[self.dim]
        extra = (-n) % self.k
        if extra:
            pad = [0, 0, extra, 0] if self.dim == 2 else [extra, 0]
            x = F.pad(x, pad)
        return x.unflatten(self.dim, (-1, self.k)).mean(self.dim + 1)


def _fc_stack(cin: int, widths: tuple[int, ...], out: int, dropout: float = 0.0
              ) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for w in widths:
        layers.append(nn.Linear(cin, w))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
        cin = w
    layers.append(nn.Linear(cin, out))
    return nn.Sequential(*layers)


class Sp2Emo(nn.Module):
    """Sect. 2.1: MFCC window ``(B, n_mfcc, 4 W)`` (raw; standardised inside with the
    ``mfcc_mean``/``mfcc_std`` buffers) -> (emotion logits ``(B, 6)``, ``q_emo (B, C, W)``)."""

    def __init__(self, cfg: VentriloquistConfig) -> None:
        super().__init__()
        c = cfg.sp2emo_channels

        def block(cin: int, cout: int, kernel: tuple[int, int]) -> list[nn.Module]:
            pad = (kernel[0] // 2, kernel[1] // 2)
            drop: list[nn.Module] = [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
            return [nn.Conv2d(cin, cout, kernel, padding=pad), *drop,
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, c[0], (3, 7)), MeanPool(2, 2),
            *block(c[0], c[1], (3, 5)), MeanPool(2, 2),
            *block(c[1], c[2], (3, 3)), MeanPool(2, 2),
            *block(c[2], c[3], (3, 3)), nn.AdaptiveAvgPool2d((1, None)),
            nn.MaxPool2d((1, cfg.feat_per_frame)))
        self.classifier = _fc_stack(c[3] * cfg.window, cfg.sp2emo_fc, len(EMOTIONS),
                                    cfg.dropout)
        self.embed_dim = c[3]
        self.register_buffer("mfcc_mean", torch.zeros(cfg.n_mfcc))
        self.register_buffer("mfcc_std", torch.ones(cfg.n_mfcc))

    def forward(self, mfcc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (mfcc - self.mfcc_mean[:, None]) / self.mfcc_std[:, None]
        feat = self.features(x[:, None])  # (B, C, 1, W)
        return self.classifier(feat), feat[:, :, 0]


class _BiLSTMHead(nn.Module):
    """Two bidirectional LSTMs over ``(B, W, 136)``, flattened over the window, then FCs."""

    def __init__(self, window: int, hidden: tuple[int, int], widths: tuple[int, ...],
                 out: int, final: nn.Module | None = None) -> None:
        super().__init__()
        self.lstm1 = nn.LSTM(N_COORDS, hidden[0], batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(2 * hidden[0], hidden[1], batch_first=True, bidirectional=True)
        self.fc = _fc_stack(2 * hidden[1] * window, widths, out)
        self.final = final if final is not None else nn.Identity()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm1(seq)
        x, _ = self.lstm2(x)
        return self.final(self.fc(x))


class Exp2Emo(_BiLSTMHead):
    """Sect. 2.1: deformation sequence ``(B, W, 136)`` -> emotion logits ``(B, 6)``."""

    def __init__(self, cfg: VentriloquistConfig) -> None:
        super().__init__(cfg.window, cfg.exp2emo_hidden, cfg.exp2emo_fc, len(EMOTIONS))


class SequenceDiscriminator(_BiLSTMHead):
    """Sect. 2.3: deformation sequence ``(B, W, 136)`` -> probability it is real ``(B, 1)``."""

    def __init__(self, cfg: VentriloquistConfig) -> None:
        super().__init__(cfg.window, cfg.disc_hidden, cfg.disc_fc, 1, nn.Sigmoid())
        self.apply(lambda m: _init_small(m, cfg.init_std))


def _conv1d_stack(cin: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv1d(cin, w, 3, padding=1), nn.BatchNorm1d(w),
                   nn.LeakyReLU(0.1, inplace=True)]
        cin = w
    layers.append(nn.Conv1d(cin, N_COORDS, 5, padding=2))
    return nn.Sequential(*layers)


class EmotiveGenerator(nn.Module):
    """Sect. 2.2: mel window ``(B, n_mels, 4 W)`` (raw; standardised inside) + ``q_emo
    (B, C, W)`` -> (``dk_hat (B, W, 136)``, lip branch's masked output ``(B, W, 136)``)."""

    def __init__(self, cfg: VentriloquistConfig, emo_dim: int) -> None:
        super().__init__()
        c = cfg.mel_channels
        pools = [MeanPool(2, 2), MeanPool(2, 2), MeanPool(2, 2),
                 MeanPool(cfg.feat_per_frame, 3), MeanPool(2, 2)]
        layers: list[nn.Module] = []
        cin = 1
        for i, cout in enumerate(c):
            kernel, pad = ((3, 5), (1, 2)) if i == 0 else ((3, 3), (1, 1))
            layers += [nn.Conv2d(cin, cout, kernel, padding=pad), nn.BatchNorm2d(cout),
                       nn.LeakyReLU(0.1, inplace=True)]
            if i < len(pools):
                layers.append(pools[i])
            cin = cout
        self.mel_conv = nn.Sequential(*layers)
        rows = cfg.n_mels // 16
        self.lip_conv = _conv1d_stack(c[-1] * rows, cfg.lip_channels)
        self.emo_conv = _conv1d_stack(emo_dim, cfg.emo_channels)
        self.lip_conv.apply(lambda m: _init_small(m, cfg.init_std))
        self.emo_conv.apply(lambda m: _init_small(m, cfg.init_std))
        mouth = mouth_mask()
        self.register_buffer("wt_mouth", mouth)
        self.register_buffer("wt_rest", 1.0 - (1.0 - cfg.emo_mouth_weight) * mouth)
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))
        self.register_buffer("mean_face", torch.zeros(N_COORDS))
        """``k_bar``: the mean standardised face of the training frames (136)."""
        self.register_buffer("neutral_emotion", torch.zeros(emo_dim))
        """Mean ``q_emo`` of the neutral training windows (the expression's reference)."""

    def forward(self, mel: torch.Tensor, q_emo: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = (mel - self.mel_mean[:, None]) / self.mel_std[:, None]
        q_ling = self.mel_conv(x[:, None])  # (B, C, rows, W)
        q_ling = q_ling.flatten(1, 2)
        lip = self.lip_conv(q_ling).transpose(1, 2) * self.wt_mouth
        emo = self.emo_conv(q_emo).transpose(1, 2) * self.wt_rest
        return torch.tanh(lip + emo), lip


class VentriloquistNets(nn.ModuleDict):
    """What generation needs: ``sp2emo``, ``exp2emo``, ``generator``, ``renderer`` (the
    discriminator lives in training only)."""

    def __init__(self, cfg: VentriloquistConfig) -> None:
        check_config(cfg)
        sp2emo = Sp2Emo(cfg)
        super().__init__({"sp2emo": sp2emo, "exp2emo": Exp2Emo(cfg),
                          "generator": EmotiveGenerator(cfg, sp2emo.embed_dim),
                          "renderer": LandmarkRenderer(cfg.renderer_config())})
        self.cfg = cfg

    # -- windows ---------------------------------------------------------------------------
    def window_starts(self, num_frames: int) -> list[int]:
        """Start frames of the generation windows (module docstring)."""
        w, hop = self.cfg.window, self.cfg.hop
        if num_frames <= w:
            return [0]
        starts = list(range(0, num_frames - w + 1, hop))
        if starts[-1] != num_frames - w:
            starts.append(num_frames - w)
        return starts

    def clip_features(self, audio: np.ndarray, num_frames: int
                      ) -> tuple[torch.Tensor, torch.Tensor, int, np.ndarray]:
        """MFCC and mel windows ``(N, coeff, 4 W)`` of a clip, its length padded to a window
        at least, and the clip's whole log-mel ``(4 length, n_mels)``."""
        cfg = self.cfg
        length = max(num_frames, cfg.window)
        mfcc, mel = speech_features(audio, length, cfg)
        device = self["generator"].mel_mean.device
        f = cfg.feat_per_frame
        starts = self.window_starts(length)
        mfcc_w = np.stack([mfcc[f * s:f * (s + cfg.window)].T for s in starts])
        mel_w = np.stack([mel[f * s:f * (s + cfg.window)].T for s in starts])
        return (torch.from_numpy(mfcc_w).to(device), torch.from_numpy(mel_w).to(device),
                length, mel)

    def overlap_add(self, windows: torch.Tensor, length: int) -> torch.Tensor:
        """``(N, W, C)`` window outputs -> ``(length, C)`` (triangular cross-fade)."""
        w = self.cfg.window
        ramp = torch.minimum(torch.arange(1, w + 1), torch.arange(w, 0, -1)).to(windows)
        out = windows.new_zeros(length, windows.shape[-1])
        norm = windows.new_zeros(length, 1)
        for start, win in zip(self.window_starts(length), windows, strict=True):
            out[start:start + w] += ramp[:, None] * win
            norm[start:start + w] += ramp[:, None]
        return out / norm

    # -- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def deformations(self, audio: np.ndarray, num_frames: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``dk_hat (T, 136)`` for the clip and the rest reference ``dk_rest (136,)``
        (module docstring)."""
        mfcc, mel, length, mel_frames = self.clip_features(audio, num_frames)
        _, q_emo = self["sp2emo"](mfcc)
        gen = self["generator"]
        dk, _ = gen(mel, q_emo)
        neutral = gen.neutral_emotion[None, :, None].expand_as(q_emo)
        rest, _ = gen(mel, neutral)
        dk = self.overlap_add(dk, length)[:num_frames]
        rest = self.overlap_add(rest, length)[:num_frames]
        quiet = quiet_frames(mel_frames, num_frames, self.cfg.quiet_fraction,
                             self.cfg.feat_per_frame)
        return dk, rest[torch.from_numpy(quiet).to(rest.device)].mean(0)

    @torch.no_grad()
    def emotion_logits(self, audio: np.ndarray, num_frames: int) -> torch.Tensor:
        """Sp2Emo's clip-level logits ``(6,)``: the mean over the clip's windows."""
        mfcc, _, _, _ = self.clip_features(audio, num_frames)
        logits, _ = self["sp2emo"](mfcc)
        return logits.mean(0)

    @torch.no_grad()
    def target_landmarks(self, id_points: torch.Tensor, audio: np.ndarray,
                         num_frames: int) -> torch.Tensor:
        """``(T, 68, 2)``: the identity's points ``(68, 2)`` moved by the generated
        deformations relative to the rest reference, scaled by the points' per-axis standard
        deviation (module docstring)."""
        dk, rest = self.deformations(audio, num_frames)
        scale = id_points.reshape(-1, 2).std(0, unbiased=False).clamp_min(1e-3)
        motion = (dk - rest).reshape(-1, N_POINTS, 2) * scale
        return id_points[None] + motion

    @torch.no_grad()
    def synthesize(self, identity: torch.Tensor, id_points: torch.Tensor, audio: np.ndarray,
                   num_frames: int) -> torch.Tensor:
        """Identity ``(1, 3, H, W)`` in ``[-1, 1]`` (square, any side) and its landmarks
        ``(68, 2)`` in its pixel coordinates + audio -> frames ``(T, 3, H, W)``."""
        targets = self.target_landmarks(id_points, audio, num_frames)
        return self["renderer"].render(identity, id_points, targets)


# ---------------------------------------------------------------------------------------------
# Losses (Sect. 2.3)


def d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator (code's hinge form on sigmoid outputs): ``0.5 relu(0.9 - D(real)) +
    0.5 relu(D(fake))``."""
    return 0.5 * F.relu(0.9 - real).mean() + 0.5 * F.relu(fake).mean()


def g_adv_loss(fake: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial loss (code): ``relu(1 - D(fake))``."""
    return F.relu(1.0 - fake).mean()


def cosine_loss(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Cosine embedding loss with target +1 between the softmaxes: ``1 - cos``."""
    return (1.0 - F.cosine_similarity(logits_a.softmax(1), logits_b.softmax(1), dim=1)).mean()


def mouth_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``L_mouth = |dk^mouth(t) - dk_hat^mouth(t)|_1`` of ``(B, W, 136)`` deformations: the
    L1 norm over the jaw and lip coordinates (``mask``, 74 of them), averaged over frames and
    the batch."""
    return ((fake - real).abs() * mask).sum() / (fake.shape[0] * fake.shape[1])


def energy_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``L_energy`` of ``(B, W, 136)`` deformations: ``|E_t|dk| - E_t|dk_hat||_2 +
    |E_t|dk'| - E_t|dk_hat'||_2`` per sequence, averaged over the batch."""
    level = torch.linalg.vector_norm(real.abs().mean(1) - fake.abs().mean(1), dim=1)
    d_real, d_fake = real.diff(dim=1), fake.diff(dim=1)
    motion = torch.linalg.vector_norm(d_real.abs().mean(1) - d_fake.abs().mean(1), dim=1)
    return (level + motion).mean()
