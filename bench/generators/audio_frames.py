"""Audio per video frame: frame ``t`` of a clip covers audio samples ``[640 t, 640 (t + 1))``
(SPEC 4.1); the raw-audio window (:func:`audio_windows`) and the MFCC window
(:func:`mfcc_windows`) of frame ``t`` are centred on that span."""

from __future__ import annotations

import numpy as np

from bench import SAMPLES_PER_FRAME
from bench.core.audio import audio_to_int16, mfcc


def audio_windows(audio: np.ndarray, num_frames: int, window: int) -> np.ndarray:
    """Raw audio around each video frame: ``(num_frames, window)`` float32, row ``t`` the
    ``window`` samples centred on frame ``t``'s span ``[640 t, 640 (t + 1))``, zero-padded
    beyond the clip's ends (a 0.2 s window is ``window = 3200``)."""
    audio = np.asarray(audio, dtype=np.float32)
    half = window // 2
    pad_left = half
    pad_right = half + window + SAMPLES_PER_FRAME * num_frames
    padded = np.pad(audio, (pad_left, max(0, pad_right - audio.shape[0])))
    starts = SAMPLES_PER_FRAME * np.arange(num_frames) + SAMPLES_PER_FRAME // 2  # + half - half
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    return np.ascontiguousarray(view[starts])


def mfcc_windows(audio: np.ndarray, num_frames: int, window: int,
                 coefficients: slice = slice(0, 13)) -> np.ndarray:
    """MFCCs around each video frame: ``(num_frames, n_coeff, window)`` float32.

    MFCCs as :func:`bench.core.audio.mfcc` computes them (python_speech_features' defaults:
    25 ms windows every 10 ms, 13 coefficients, on the int16 scale), four per video frame;
    row ``t`` holds the ``window`` MFCC frames centred on frame ``t``'s four (a 0.35 s window,
    as in Speech2Vid, is ``window = 35``), edge-padded with the clip's first/last MFCC frame.
    """
    feats = mfcc(audio_to_int16(np.asarray(audio)))[:, coefficients].astype(np.float32)
    centre = 4 * np.arange(num_frames) + 2  # the middle of frame t's four MFCC frames
    index = centre[:, None] - window // 2 + np.arange(window)[None, :]
    index = np.clip(index, 0, feats.shape[0] - 1)
    return np.ascontiguousarray(feats[index].transpose(0, 2, 1))
