"""SyncNet's embeddings of every window of a clip and the offset search over them: the
computation of ``syncnet_python``'s ``SyncNetInstance.evaluate`` (``joonson/syncnet_python``,
``vshift`` 15), batched on the device. The LSE metric (:mod:`bench.metrics.lse`, which
documents the algorithm step by step) and the harness-trained SyncNet's validation
(:mod:`bench.judges.syncnet_train`) both run it.

1. the lip windows (frames ``[v, v+5)``) and audio windows (MFCC frames ``[4v, 4v+20)``) of
   :mod:`bench.core.sync_windows` are embedded (:func:`embed_lips`, :func:`embed_audio`);
2. the audio embeddings are zero-padded by ``vshift`` rows at both ends, and lip window ``v``
   is compared with audio window ``v + k - vshift`` for every shift ``k`` in ``0..2*vshift``
   (:func:`offset_distances`, Euclidean, torch's eps 1e-6);
3. the mean distance per shift gives LSE-D (minimum), LSE-C (median minus minimum) and the AV
   offset (``vshift - argmin``) (:func:`lse_from_distances`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.sync_windows import LIP_WINDOW, MFCC_PER_FRAME, MFCC_WINDOW
from bench.judges.syncnet import SyncNet, full_fp32_convolutions

VSHIFT = 15
"""Largest shift searched, in video frames (0.6 s at 25 fps), as syncnet_python's default."""

BATCH_SIZE = 32
"""Windows per forward pass of the network."""


class LSEResult(NamedTuple):
    """What ``SyncNetInstance.evaluate`` computes for one clip."""

    lse_d: float
    """Minimum over shifts of the mean distance (lower is better)."""
    lse_c: float
    """Median minus minimum of the mean distances: confidence (higher is better)."""
    av_offset: int
    """``vshift - argmin``: frames by which the audio leads the video."""
    mean_dists: np.ndarray
    """Mean distance per shift, shape ``(2 * vshift + 1,)``; entry ``k`` is offset
    ``vshift - k``."""


# ---------------------------------------------------------------------------------------------
# Embeddings and distances


@torch.inference_mode()
def embed_lips(net: SyncNet, video_bgr: torch.Tensor, windows: int,
               batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Lip embeddings ``(windows, 1024)`` of the windows ``[v, v + 5)``, ``v < windows``.

    ``video_bgr``: ``(T, 3, 224, 224)`` uint8 BGR frames (moved to the network's device).
    """
    device = next(net.parameters()).device
    video = video_bgr.to(device)
    embeddings = []
    with full_fp32_convolutions():
        for start in range(0, windows, batch_size):
            stop = min(start + batch_size, windows)
            # Frames start .. stop + 3 hold the windows start .. stop - 1.
            chunk = video[start:stop + LIP_WINDOW - 1].transpose(0, 1).float()  # (3, t, H, W)
            batch = chunk.unfold(1, LIP_WINDOW, 1)  # (3, B, H, W, 5)
            batch = batch.permute(1, 0, 4, 2, 3)  # (B, 3, 5, H, W)
            # On the CPU, oneDNN runs these 3-D convolutions about 30% faster on channels-last
            # input (measured on 2 cores; same values to float32 rounding).
            layout = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
            embeddings.append(net.forward_lip(batch.contiguous(memory_format=layout)))
    return torch.cat(embeddings)


@torch.inference_mode()
def embed_audio(net: SyncNet, mfccs: np.ndarray, windows: int,
                batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Audio embeddings ``(windows, 1024)`` of the MFCC windows ``[4v, 4v + 20)``.

    ``mfccs``: ``(num_mfcc_frames, 13)`` as :func:`bench.core.audio.mfcc` returns them.
    """
    device = next(net.parameters()).device
    coeffs = torch.from_numpy(np.ascontiguousarray(mfccs.T)).float().to(device)  # (13, F)
    all_windows = coeffs.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME)  # (13, n, 20)
    if all_windows.shape[1] < windows:
        raise ValueError(f"{mfccs.shape[0]} MFCC frames hold {all_windows.shape[1]} audio "
                         f"windows; {windows} are needed")
    all_windows = all_windows[:, :windows].permute(1, 0, 2).unsqueeze(1)  # (N, 1, 13, 20)
    embeddings = []
    with full_fp32_convolutions():
        for start in range(0, windows, batch_size):
            batch = all_windows[start:start + batch_size].contiguous()
            embeddings.append(net.forward_aud(batch))
    return torch.cat(embeddings)


def offset_distances(lip: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT,
                     block: int = 512) -> torch.Tensor:
    """Distances ``(N, 2 * vshift + 1)``: row ``v``, column ``k`` compares lip window ``v``
    with audio window ``v + k - vshift`` (zeros outside the clip), as the reference's
    ``calc_pdist`` does one window at a time. Computed ``block`` windows at a time to bound
    memory.
    """
    shifts = 2 * vshift + 1
    padded = F.pad(audio, (0, 0, vshift, vshift))  # (N + 2 vshift, D)
    rows = []
    for start in range(0, lip.shape[0], block):
        stop = min(start + block, lip.shape[0])
        # Padded rows start .. stop + 2 vshift - 1, as (B, D, shifts) windows -> (B, shifts, D)
        audio_windows = padded[start:stop + shifts - 1].unfold(0, shifts, 1).transpose(1, 2)
        lip_rows = lip[start:stop, None, :].expand(-1, shifts, -1)
        rows.append(F.pairwise_distance(lip_rows, audio_windows))
    return torch.cat(rows)


def lse_from_distances(dists: torch.Tensor, vshift: int = VSHIFT) -> LSEResult:
    """LSE-D, LSE-C and offset from the ``(N, 2 * vshift + 1)`` distance matrix."""
    mean_dists = dists.float().cpu().mean(0)
    min_dist, min_index = torch.min(mean_dists, 0)
    confidence = torch.median(mean_dists) - min_dist
    return LSEResult(lse_d=float(min_dist), lse_c=float(confidence),
                     av_offset=vshift - int(min_index), mean_dists=mean_dists.numpy())
