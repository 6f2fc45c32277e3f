"""LSE-D, LSE-C and AV offset: lip-sync error measured by SyncNet (SPEC section 5).

SyncNet (Chung and Zisserman 2016, "Out of time: automated lip sync in the wild") embeds
every 5-frame window of a face video and every 0.2 s window of MFCCs; in-sync pairs are close.
This module computes the numbers exactly as ``SyncNetInstance.evaluate`` of the reference code
(``joonson/syncnet_python``, ``vshift`` 15, the setting of ``demo_syncnet.py`` and of the
Wav2Lip LSE scripts) does, with the embeddings batched on the device:

1. ``min_length = min(video frames, floor(audio samples / 640))`` and ``N = min_length - 5``
   windows (the reference's ``lastframe``; it never uses the last complete window);
2. lip window ``v`` is frames ``[v, v+5)``; audio window ``v`` is MFCC frames
   ``[4v, 4v+20)`` (MFCCs at 100 Hz over the whole audio track), for ``v`` in ``0..N-1``;
3. the audio embeddings are zero-padded by ``vshift`` rows at both ends; for every window
   ``v`` and every shift ``k`` in ``0..2*vshift``, the distance is
   ``pairwise_distance(lip[v], padded_audio[v + k])`` (Euclidean, with torch's eps 1e-6), so
   shift ``k`` compares lip window ``v`` with audio window ``v + k - vshift``;
4. ``mean_dists[k]`` = mean over the ``N`` windows;
   LSE-D = ``min(mean_dists)``, LSE-C = ``median(mean_dists) - min(mean_dists)``,
   AV offset = ``vshift - argmin(mean_dists)``.

A positive AV offset means the lips match audio from *earlier* in the track: the audio leads
the video by that many frames (delaying the audio by k frames lowers the offset by k).

Inputs as the reference prepares them. Frames: 224x224 face crops in BGR channel order
(the reference reads JPEGs with OpenCV), raw 0-255 floats. Audio: 16 kHz samples on the int16
scale, the MFCCs of ``python_speech_features.mfcc`` (see :mod:`bench.core.audio`).

The face crop. syncnet_python finds faces with S3FD, tracks them, smooths the boxes and cuts a
square around each box (:func:`syncnet_crop` reproduces that cut given the boxes), then
resizes it to 224x224. The :class:`LSE` metric instead takes talkbench's aligned face crop of
each frame (``Sample.pred``, e.g. 128x128) and resizes it to 224x224 bilinearly, as the
reference's ``cv2.resize`` does; it does not run S3FD. LSE numbers from the two crops are
therefore not interchangeable; to compare with syncnet_python on the very same input, cut the
frames with :func:`syncnet_crop` and feed the same 224x224 video to both. The reference also
round-trips the crop through an XVID video and JPEG frames, which we do not.

Short clips: with fewer than ``vshift + 1`` windows (21 frames), some shifts only ever compare
lips with the zero padding, so the offset search is meaningless; such clips raise
:class:`~bench.metrics.base.MetricUnavailable` with the reason. (syncnet_python's pipeline drops
face tracks under 100 frames, so the Wav2Lip scripts silently return nothing for clips under 4 s;
talkbench scores every clip of 21 frames or more.)
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import scipy.signal
import torch

from bench.core.audio import SAMPLE_RATE, audio_to_int16, mfcc
from bench.core.sync_windows import (
    FRAME_SIZE,
    LIP_WINDOW,
    num_windows,
    prepare_lip_frames,
    resize_frames,
)
from bench.core.weights import sha256_of_file
from bench.judges.syncnet import (
    JUDGE_NAME,
    SYNCNET_WEIGHTS_ENV,
    SyncNet,
    SyncNetWeightsMissing,
    find_syncnet_weights,
    load_syncnet,
    missing_weights_message,
)
from bench.judges.syncnet_offsets import (
    BATCH_SIZE,
    VSHIFT,
    LSEResult,
    embed_audio,
    embed_lips,
    lse_from_distances,
    offset_distances,
)
from bench.metrics.base import (
    Column,
    Metric,
    MetricUnavailable,
    Sample,
    check_frames,
    to_device_frames,
)

SAMPLES_PER_FRAME = SAMPLE_RATE // 25
"""Audio samples per video frame (640 at 16 kHz, 25 fps)."""

CROP_SCALE = 0.4
"""syncnet_python's ``--crop_scale``: margin around the face box, in box half-sizes."""

CROP_PAD_VALUE = 110
"""Grey level syncnet_python pads the frame with before cutting the crop."""

TRAINED_JUDGE = "syncnet"
"""Name of the talkbench-trained SyncNet in the judge store (`bench.judges.store.JUDGES`)."""


def min_frames(vshift: int = VSHIFT) -> int:
    """Fewest frames (of both video and audio) a clip needs: ``vshift + 1`` windows."""
    return vshift + 1 + LIP_WINDOW


def check_length(num_frames: int, num_samples: int, vshift: int = VSHIFT) -> int:
    """The number of windows, or :class:`MetricUnavailable` when the clip is too short."""
    windows = num_windows(num_frames, num_samples)
    if windows < vshift + 1:
        raise MetricUnavailable(
            f"clip too short for LSE: {num_frames} frames and "
            f"{num_samples / SAMPLE_RATE:.2f} s of audio give {max(windows, 0)} SyncNet "
            f"windows; {vshift + 1} are needed for the +-{vshift}-frame offset search "
            f"(at least {min_frames(vshift)} frames of video and audio)")
    return windows


# ---------------------------------------------------------------------------------------------
# Preparing frames


def syncnet_crop(frames: np.ndarray, boxes: np.ndarray, *, crop_scale: float = CROP_SCALE,
                 smooth: bool = True) -> np.ndarray:
    """Cut 224x224 face crops from full frames as syncnet_python's ``crop_video`` does.

    ``frames``: ``(T, H, W, 3)`` uint8 (any channel order; the output keeps it);
    ``boxes``: ``(T, 4)`` face boxes ``x1, y1, x2, y2`` in pixels, one per frame (a face
    track). Per frame, with ``bs = max(w, h) / 2`` and the box centre ``(mx, my)``:
    the frame is padded by ``int(bs * (1 + 2 * crop_scale))`` pixels of grey 110 on every
    side, rows ``my - bs .. my + bs * (1 + 2 * crop_scale)`` and columns
    ``mx - bs * (1 + crop_scale) .. mx + bs * (1 + crop_scale)`` are cut (bounds truncated to
    int, in padded coordinates) and resized to 224x224 bilinearly. With ``smooth`` (the
    reference's behaviour), ``bs``, ``mx`` and ``my`` are first median-filtered over the track
    with ``scipy.signal.medfilt`` (kernel 13, which zero-pads at the ends of the track).
    Returns ``(T, 224, 224, 3)`` uint8.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape != (frames.shape[0], 4):
        raise ValueError(f"need one box per frame: {frames.shape[0]} frames, boxes "
                         f"{boxes.shape}")
    half_size = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    if smooth:
        half_size = scipy.signal.medfilt(half_size, kernel_size=13)
        centre_y = scipy.signal.medfilt(centre_y, kernel_size=13)
        centre_x = scipy.signal.medfilt(centre_x, kernel_size=13)

    crops = []
    for frame, bs, cy, cx in zip(frames, half_size, centre_y, centre_x, strict=True):
        pad = int(bs * (1 + 2 * crop_scale))
        padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="constant",
                        constant_values=CROP_PAD_VALUE)
        my = cy + pad
        mx = cx + pad
        face = padded[int(my - bs):int(my + bs * (1 + 2 * crop_scale)),
                      int(mx - bs * (1 + crop_scale)):int(mx + bs * (1 + crop_scale))]
        face_t = torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1)[None]
        crops.append(resize_frames(face_t)[0].permute(1, 2, 0).numpy())
    return np.stack(crops)


class AudioEmbeddings:
    """The audio side of LSE, kept per audio track: every row of a leaderboard (the real clips
    and each model's videos) is scored against the same test clip's audio, so its MFCCs and
    SyncNet audio embeddings are the same for every row (measured on the main job: LSE 1.32
    -> 1.08-1.22 s a clip on the CPU). Keyed by the samples' bytes, the window count and the
    batch size, for one SyncNet (a metric instance holds one); the same computation as
    without it, so the values are the same. The first ``max_bytes`` of embeddings are kept
    and later ones are not: rows visit the test clips in the same order, so keeping the first
    clips beats evicting them."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._kept: dict[tuple[str, int, int], torch.Tensor] = {}

    def get(self, net: SyncNet, audio_int16: np.ndarray, windows: int,
            batch_size: int) -> torch.Tensor:
        """``embed_audio`` of the track's MFCCs, computed once per track."""
        import hashlib

        samples = np.ascontiguousarray(audio_int16)
        key = (hashlib.sha1(samples.tobytes() + str(samples.dtype).encode()).hexdigest(),
               windows, batch_size)
        found = self._kept.get(key)
        if found is not None:
            self.hits += 1
            return found
        embeddings = embed_audio(net, mfcc(samples, SAMPLE_RATE), windows, batch_size)
        size = embeddings.element_size() * embeddings.nelement()
        if self.bytes + size <= self.max_bytes:
            self._kept[key] = embeddings
            self.bytes += size
        return embeddings


def lse_from_video(video_bgr: torch.Tensor, audio_int16: np.ndarray, net: SyncNet, *,
                   vshift: int = VSHIFT, batch_size: int = BATCH_SIZE,
                   audio_embeddings: AudioEmbeddings | None = None) -> LSEResult:
    """LSE of one clip, by the algorithm of ``SyncNetInstance.evaluate`` (module docstring).

    ``video_bgr``: ``(T, 3, 224, 224)`` uint8 BGR face crops, 25 fps, on any device;
    ``audio_int16``: ``(S,)`` 16 kHz samples on the int16 scale (int16 or float values);
    ``net``: a SyncNet in eval mode (the computation runs on its device);
    ``audio_embeddings``: where the audio side is kept between calls (None: computed here).
    Raises :class:`MetricUnavailable` when the clip is too short.
    """
    if video_bgr.ndim != 4 or tuple(video_bgr.shape[1:]) != (3, FRAME_SIZE, FRAME_SIZE):
        raise ValueError(f"expected (T, 3, {FRAME_SIZE}, {FRAME_SIZE}) frames, got "
                         f"{tuple(video_bgr.shape)}")
    windows = check_length(video_bgr.shape[0], audio_int16.shape[0], vshift)
    lip = embed_lips(net, video_bgr, windows, batch_size)
    if audio_embeddings is None:
        audio = embed_audio(net, mfcc(audio_int16, SAMPLE_RATE), windows, batch_size)
    else:
        audio = audio_embeddings.get(net, audio_int16, windows, batch_size)
    return lse_from_distances(offset_distances(lip, audio, vshift), vshift)


def lse_from_arrays(frames_bgr: np.ndarray, audio_int16: np.ndarray, net: SyncNet, *,
                    vshift: int = VSHIFT, batch_size: int = BATCH_SIZE) -> LSEResult:
    """:func:`lse_from_video` for ``(T, 224, 224, 3)`` uint8 BGR frames, the layout in which
    syncnet_python reads its cropped video (``cv2.imread``)."""
    if frames_bgr.ndim != 4 or frames_bgr.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3):
        raise ValueError(f"expected (T, {FRAME_SIZE}, {FRAME_SIZE}, 3) frames, got "
                         f"{frames_bgr.shape}")
    video = torch.from_numpy(np.ascontiguousarray(frames_bgr)).permute(0, 3, 1, 2)
    return lse_from_video(video, audio_int16, net, vshift=vshift, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------
# The metric


class LSE(Metric):
    """LSE-D, LSE-C and AV offset of each clip; ``compute()`` gives their means over clips
    (as the Wav2Lip LSE scripts average per-video values). The AV offset column is the mean
    of the clips' *absolute* offsets (so +k and -k do not cancel; seed 003 Table 5-6 report
    magnitudes); the signed mean is the detail column ``av_offset_signed`` (CSV, summary).

    Frames: talkbench's aligned face crops (``Sample.pred``, RGB), resized to 224x224 and put
    in BGR order (see the module docstring on how this differs from syncnet_python's crop).
    Audio: ``Sample.audio`` (float, 16 kHz), converted to int16 samples.

    Which SyncNet (SPEC 5), resolved once per instance, in this order:

    1. the ``weights`` argument, ``$TALKBENCH_SYNCNET_WEIGHTS``, or a file in the weights dir
       (``syncnet_v2.model``, the official weights; see :mod:`bench.judges.syncnet`);
    2. the SyncNet talkbench trained on the dataset being scored
       (``bench.judges.store.trained_judge("syncnet", context.dataset, context.cache_dir)``,
       written by :mod:`bench.judges.syncnet_train`).

    An explicitly named file that does not exist is an error, not a reason to fall back.
    Without either, every clip is unavailable with a reason that says how to get weights.
    The provenance names the SyncNet (file and sha256; for a trained one, what it was trained
    on), and ``version`` changes with the weights, so cached values of another SyncNet are
    recomputed.
    """

    name = "lse"
    columns = (
        Column("lse_d", "LSE-D", higher_is_better=False),
        Column("lse_c", "LSE-C", higher_is_better=True),
        Column("av_offset", "|AV offset|", higher_is_better=None, fmt=".2f"),
        Column("av_offset_signed", "AV offset (signed)", higher_is_better=None, fmt=".2f",
               detail=True),
    )
    needs = frozenset({"audio"})
    on_ground_truth = True
    judge_name = "syncnet"
    base_version = "3"  # 2: silent audio unavailable; 3: |offset| per clip, OpenCV resize

    def __init__(self, device: str | torch.device | None = None,
                 weights: str | os.PathLike[str] | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(device)
        self.weights = weights
        self.batch_size = batch_size
        self._choice: SyncNetChoice | None = None
        self._net: SyncNet | None = None
        self._judge_provenance: dict[str, str] = {}
        self._unavailable: str | None = None
        self.audio_embeddings = AudioEmbeddings()
        """The audio side of each test clip, computed once for all rows (one SyncNet per
        instance)."""

    # -- which SyncNet -----------------------------------------------------------------------
    def choice(self) -> SyncNetChoice:
        """Which SyncNet this instance uses (resolved on first call, see the class docstring);
        does not load the network."""
        if self._choice is None:
            self._choice = choose_syncnet(self.weights, self.context.dataset,
                                          self.context.cache_dir, context=self.context)
        return self._choice

    @property
    def version(self) -> str:  # type: ignore[override]
        """``1+<first 12 hex digits of the weights' sha256>`` (``1+none`` without weights)."""
        return f"{self.base_version}+{self.choice().sha256[:12] or 'none'}"

    def needs_trained_judge(self) -> bool:
        """True only when no weights file is found and no SyncNet is trained for the dataset
        (then the runner trains one)."""
        return self.choice().kind == "none" and super().needs_trained_judge()

    def judge(self) -> SyncNet:
        """The SyncNet, loaded on first use; :class:`MetricUnavailable` without weights."""
        if self._net is None and self._unavailable is None:
            choice = self.choice()
            if choice.kind == "none":
                self._unavailable = choice.reason
            else:
                try:
                    self._net, self._judge_provenance = choice.load(self.device)
                except (ValueError, RuntimeError, OSError) as err:
                    self._unavailable = f"SyncNet weights could not be loaded: {err}"
        if self._net is None:
            raise MetricUnavailable(self._unavailable)
        return self._net

    # -- scoring -----------------------------------------------------------------------------
    def score(self, sample: Sample) -> dict[str, float]:
        if sample.audio is None:
            raise MetricUnavailable("LSE needs the clip's audio")
        from bench.core.audio import silence_reason

        silent = silence_reason(sample.audio)  # the rule `bench prepare` applies
        if silent is not None:
            raise MetricUnavailable(silent)
        frames = check_frames(sample.pred, "generated video")
        audio = audio_to_int16(sample.audio)
        check_length(frames.shape[0], audio.shape[0])  # before loading weights or resizing
        net = self.judge()
        video = prepare_lip_frames(to_device_frames(sample, "pred", self.device, torch.uint8))
        result = lse_from_video(video, audio, net, batch_size=self.batch_size,
                                audio_embeddings=self.audio_embeddings)
        return {"lse_d": result.lse_d, "lse_c": result.lse_c,
                "av_offset": float(abs(result.av_offset)),
                "av_offset_signed": float(result.av_offset)}

    def provenance(self) -> dict[str, str]:
        info = {**super().provenance(),
                "reference": "joonson/syncnet_python SyncNetInstance.evaluate, vshift "
                             f"{VSHIFT}",
                "frames": "talkbench aligned face crop, cv2.resize INTER_LINEAR to "
                          "224x224 (as syncnet_python), BGR",
                "audio": "int16 samples, python_speech_features MFCC defaults"}
        try:
            self.judge()
        except MetricUnavailable as err:
            return {**info, "judge": JUDGE_NAME, "unavailable": str(err)}
        return {**info, **self._judge_provenance}


class SyncNetChoice(NamedTuple):
    """Which SyncNet the LSE metric uses (see :func:`choose_syncnet`)."""

    kind: str
    """``file`` (official or user-supplied weights), ``trained`` (talkbench-trained on the
    dataset), or ``none``."""
    file: str = ""
    sha256: str = ""
    reason: str = ""
    """Why there is none (``kind == "none"``)."""
    trained: object | None = None
    """The :class:`bench.judges.store.TrainedJudge` (``kind == "trained"``)."""

    def load(self, device: torch.device) -> tuple[SyncNet, dict[str, str]]:
        """The network in eval mode on ``device`` and its provenance."""
        if self.kind == "file":
            return load_syncnet(self.file, device)
        if self.kind == "trained":
            from bench.judges import syncnet_train

            net, provenance = syncnet_train.load_with_provenance(
                self.trained.directory, device)  # type: ignore[union-attr]
            return net, {**provenance,
                         "source": self.trained.describe()}  # type: ignore[union-attr]
        raise MetricUnavailable(self.reason)


def choose_syncnet(weights: str | os.PathLike[str] | None, dataset: str | None,
                   cache_dir: os.PathLike[str] | str | None, context=None) -> SyncNetChoice:
    """The SyncNet to use: a weights file (``weights``, ``$TALKBENCH_SYNCNET_WEIGHTS``, the
    weights dir; :func:`bench.judges.syncnet.find_syncnet_weights`), else the one trained on
    ``dataset`` in ``cache_dir``'s judge store (with ``context``, a `MetricContext`: the one
    trained for the run's train identity, refused with the reason when it trained on the test
    speakers), else none with the reason."""
    try:
        file = find_syncnet_weights(weights)
    except SyncNetWeightsMissing as err:
        explicit = weights is not None or os.environ.get(SYNCNET_WEIGHTS_ENV)
        if explicit:  # a named file that does not exist: say so, do not fall back
            return SyncNetChoice("none", reason=str(err))
    else:
        return SyncNetChoice("file", file=str(file), sha256=sha256_of_file(file))
    from pathlib import Path

    from bench.judges.store import trained_judge

    found = (context.trained_judge(TRAINED_JUDGE) if context is not None else  # run's key
             trained_judge(TRAINED_JUDGE, dataset, Path(cache_dir) if cache_dir else None))
    if found is None:
        return SyncNetChoice("none", reason=missing_weights_message(dataset))
    if found.refusal() is not None:  # trained on the speakers it would score
        return SyncNetChoice("none", reason=found.refusal(), trained=found)
    from bench.judges import syncnet_train

    file = syncnet_train.weights_path(found.directory)
    if not file.is_file():
        return SyncNetChoice("none", reason=f"the SyncNet trained on {dataset} in "
                                            f"{found.directory} has no {file.name}; retrain "
                                            f"it with `bench judges train syncnet --dataset "
                                            f"{dataset}`")
    return SyncNetChoice("trained", file=str(file), sha256=sha256_of_file(file),
                         trained=found)
