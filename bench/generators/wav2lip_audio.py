"""Wav2Lip's audio features: the normalised log-mel spectrogram and its per-frame windows.

Prajwal et al. 2020 (Wav2Lip, ACM MM; the base model of seed 002) feed the generator and the
expert lip-sync discriminator 80-band mel spectrograms; the settings are the public code's
(``Rudrabha/Wav2Lip``: ``hparams.py``, ``audio.py``), reimplemented here in numpy (librosa is
only the tests' reference):

- 16 kHz mono; pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``x[-1] = 0``, as
  ``scipy.signal.lfilter([1, -0.97], [1], x)``);
- STFT: ``n_fft`` 800, hop 200 (12.5 ms: 80 spectrogram columns per second), window 800
  (periodic Hann), centred frames: the signal is padded by 400 samples on each side by
  reflection (librosa 0.7's default ``pad_mode``, the version Wav2Lip pins; librosa >= 0.10
  pads with zeros unless told ``pad_mode="reflect"``), so column ``j`` is centred on sample
  ``200 j`` and a clip of ``N`` samples has ``1 + N // 200`` columns;
- magnitude -> 80 mel bands 55-7600 Hz (Slaney mel scale, Slaney area normalisation:
  ``librosa.filters.mel`` defaults) -> dB ``20 log10(max(1e-5, m)) - 20`` (min level
  -100 dB, ref level 20 dB) -> ``8 (S + 100) / 100 - 4`` clipped to ``[-4, 4]`` (symmetric,
  ``max_abs_value`` 4).

Windows (``wav2lip_train.py``, ``color_syncnet_train.py``): a window is ``MEL_STEPS`` = 16
columns (0.2 s = 5 video frames at 25 fps) starting at column ``int(80 * f / 25)`` for video
frame ``f``. The expert sees the window of frame ``F`` with the five frames ``F .. F + 4``
(:func:`sync_window`); the generator gets one window per frame, and for frame ``f`` the
training code (``get_segmented_mels``) takes the window that starts at frame ``f - 1``
(:func:`frame_windows`, ``offset = -1``; Wav2Lip's ``inference.py`` uses ``offset = 0``
instead; we use the training indexing at generation too, so the network sees at generation
what it saw in training). *Choices* where the code has none: windows reaching beyond the clip
are padded with the silence value -4 (the training code skips such samples; generation must
cover every frame), and the spectrogram is computed once per whole clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench import AUDIO_RATE, VIDEO_FPS


@dataclass(frozen=True)
class MelParams:
    """Wav2Lip's ``hparams.py`` audio settings."""

    sample_rate: int = AUDIO_RATE
    n_fft: int = 800
    hop: int = 200
    win: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0


WAV2LIP_MEL = MelParams()
MEL_STEPS = 16
"""Spectrogram columns per window (0.2 s)."""
SILENCE = -WAV2LIP_MEL.max_abs_value
"""The normalised value of silence (the floor); windows are padded with it."""
COLUMNS_PER_SECOND = WAV2LIP_MEL.sample_rate / WAV2LIP_MEL.hop  # 80


# ---------------------------------------------------------------------------------------------
# Mel filterbank (Slaney scale and normalisation, as librosa.filters.mel(htk=False))


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mel / 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    lin = hz / f_sp
    log = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, lin)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    lin = f_sp * mel
    log = min_log_hz * np.exp(logstep * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log, lin)


def mel_filterbank(p: MelParams = WAV2LIP_MEL) -> np.ndarray:
    """``(n_mels, 1 + n_fft // 2)`` triangular filters, area-normalised (Slaney), float64."""
    freqs = np.linspace(0.0, p.sample_rate / 2, 1 + p.n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(p.fmin), hz_to_mel(p.fmax), p.n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


_FILTERS: dict[MelParams, np.ndarray] = {}


def _filters(p: MelParams) -> np.ndarray:
    if p not in _FILTERS:
        _FILTERS[p] = mel_filterbank(p)
    return _FILTERS[p]


# ---------------------------------------------------------------------------------------------
# The spectrogram


def preemphasis(audio: np.ndarray, k: float) -> np.ndarray:
    """``y[n] = x[n] - k x[n - 1]`` with ``x[-1] = 0`` (float64)."""
    x = np.asarray(audio, dtype=np.float64)
    y = x.copy()
    y[1:] -= k * x[:-1]
    return y


def stft_magnitude(audio: np.ndarray, p: MelParams = WAV2LIP_MEL) -> np.ndarray:
    """``|STFT|`` ``(1 + n_fft // 2, 1 + N // hop)``: centred frames (reflection padding of
    ``n_fft // 2``), periodic Hann window of ``win`` samples centred in ``n_fft``."""
    x = np.asarray(audio, dtype=np.float64)
    half = p.n_fft // 2
    if x.shape[0] <= half:  # too short to reflect: zero-extend first (librosa would refuse)
        x = np.pad(x, (0, half + 1 - x.shape[0]))
    padded = np.pad(x, (half, half), mode="reflect")
    n_frames = 1 + (padded.shape[0] - p.n_fft) // p.hop
    window = np.zeros(p.n_fft)
    lead = (p.n_fft - p.win) // 2
    window[lead:lead + p.win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(p.win) / p.win)
    frames = np.lib.stride_tricks.sliding_window_view(padded, p.n_fft)[::p.hop][:n_frames]
    return np.abs(np.fft.rfft(frames * window, axis=1)).T


def _stft_rows(audio: np.ndarray, p: MelParams) -> np.ndarray:
    """:func:`stft_magnitude` transposed: ``(frames, bins)``, C-contiguous."""
    return np.ascontiguousarray(stft_magnitude(audio, p).T)


def melspectrogram(audio: np.ndarray, p: MelParams = WAV2LIP_MEL) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram of 16 kHz audio: ``(n_mels, 1 + N // hop)``
    float32 in ``[-max_abs_value, max_abs_value]`` (module docstring)."""
    n = np.asarray(audio).shape[0]
    rows = _stft_rows(preemphasis(audio, p.preemphasis), p)
    mel = (rows @ _filters(p).T).T
    min_level = 10.0 ** (p.min_level_db / 20.0)
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - p.ref_level_db
    m = p.max_abs_value
    norm = np.clip(2 * m * (db - p.min_level_db) / -p.min_level_db - m, -m, m)
    return norm[:, :1 + n // p.hop].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Windows


def window_start(frame: int | np.ndarray) -> np.ndarray:
    """First spectrogram column of the window of video frame ``frame``:
    ``int(80 * frame / 25)`` (truncation, as Wav2Lip's ``int()``)."""
    f = np.asarray(frame, dtype=np.float64)
    return np.trunc(COLUMNS_PER_SECOND * f / VIDEO_FPS).astype(np.int64)


def take_windows(mel: np.ndarray, starts: np.ndarray, steps: int = MEL_STEPS) -> np.ndarray:
    """``(len(starts), n_mels, steps)`` windows ``mel[:, s:s + steps]``, padded with
    :data:`SILENCE` where they reach beyond the spectrogram."""
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.zeros((0, mel.shape[0], steps), np.float32)
    lo = max(0, -int(starts.min()))
    hi = max(0, int(starts.max()) + steps - mel.shape[1])
    padded = np.pad(mel, ((0, 0), (lo, hi)), constant_values=SILENCE) if lo or hi else mel
    index = starts[:, None] + lo + np.arange(steps)[None, :]
    return np.ascontiguousarray(padded[:, index].transpose(1, 0, 2)).astype(np.float32)


def frame_windows(mel: np.ndarray, frames: np.ndarray | int, offset: int = -1) -> np.ndarray:
    """The generator's windows of video frames ``frames`` (an int ``T``: frames ``0..T-1``):
    ``(n, 80, 16)``, frame ``f``'s window starting at frame ``f + offset`` (module doc)."""
    idx = np.arange(frames) if np.ndim(frames) == 0 else np.asarray(frames)
    return take_windows(mel, window_start(idx + offset))


def sync_window(mel: np.ndarray, start_frames: np.ndarray | int) -> np.ndarray:
    """The expert's windows for five-frame runs starting at ``start_frames``:
    ``(n, 80, 16)`` (a scalar gives ``(1, 80, 16)``)."""
    return take_windows(mel, window_start(np.atleast_1d(start_frames)))
