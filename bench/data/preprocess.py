"""Preprocessing (SPEC 4.4): decode, find the face, align it to a canonical face, crop, cache.

For each clip:

1. ``read_clip``: decode the video at 25 fps and the audio at 16 kHz (from ``ref.audio`` when
   the dataset ships separate audio, else the video's own track) and align the audio to the
   frames by ``bench.data.clip.align_audio`` (cut or zero-pad at the end).
2. ``bench.core.landmarks.detect_landmarks``: 68 dlib landmarks per frame (detect + track).
3. Gaps of up to ``max_gap`` frames without a face are filled by linear interpolation of the
   landmarks (held constant before the first and after the last face); longer gaps fail.
4. A similarity transform (rotation, uniform scale, translation) per frame maps the stable
   landmarks (eye corners 36, 39, 42, 45 and nose 27-35) onto the canonical face by least
   squares; its parameters are smoothed over time (Gaussian, ``smooth_sigma`` frames) so the
   crop does not jitter; each frame is warped (bilinear, edge pixels repeated) to
   ``size x size``, and the landmarks are mapped into the crop too.
5. The result is cached under ``cache_root/<key[:2]>/<key>/`` (see ``cache_key``): frames as
   ``frames.mp4``, H.264 in RGB (libx264rgb, CRF 12: ~2.5 KB a 128x128 frame, ~43.5 dB PSNR),
   ``audio.npy`` (float32, T*640 samples),
   ``landmarks.npy`` (T,68,2 float32, crop pixels), ``source.npz`` (landmarks in the original
   frames as detected, with NaN rows, and as filled; the (T,2,3) frame-to-crop transforms), and
   ``meta.json``. An entry is written into a temporary folder beside it and renamed into place
   only when complete (``meta.json`` written last), so an interrupted run leaves no half entry
   and the next run simply redoes that clip.
6. A clip that fails for a reason fixed by its content (media that cannot be decoded or is
   truncated, no video or audio track, silent audio, no face or too long a gap) gets a failure
   record ``cache_root/<key[:2]>/<key>.failed.json`` (its reason, written atomically); later
   runs report the same reason without decoding the clip again. Changed media or parameters
   give another key, so they are tried afresh; ``retry_failed=True`` ignores the records.
   Failures that may pass on a later run (a file that cannot be read, an unexpected error)
   are not recorded.

Pixel coordinates: (x, y) with pixel centres at integers, as dlib reports them.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
import uuid
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import bench
from bench.core.audio import SILENCE_PEAK, silence_reason  # noqa: F401 - the shared rule
from bench.core.face_template import (
    ALIGN_POINTS,
    CANONICAL_FACE,
    CROP_MARGIN,
    CROP_SIZE,
    apply_transform,
    fit_similarity,
    similarity_matrix,
    template_pixels,
)
from bench.core.weights import sha256_of_file
from bench.data.clip import Clip, ClipRef, align_audio
from bench.data.media import MediaError, read_media, write_video

PREPROCESS_VERSION = "1"
"""Bump when a change in this module (or in what it calls) changes the cached output."""

# Cached frames: H.264 coded in RGB (no 4:2:0 chroma loss). CRF 12 "veryfast" measured on the
# GRID samples at 128x128: 2.5 KB a frame, 43.6 dB PSNR (yuv420p CRF 18: 0.4 KB, 34.5 dB;
# lossless: 17.7 KB).
FRAMES_CODEC = "libx264rgb"
FRAMES_CRF = 12


class PrepError(Exception):
    """A clip that cannot be preprocessed; the message is one line, starting with its id."""


@dataclass(frozen=True)
class PrepParams:
    """Everything that changes the cached output (all of it goes into the cache key)."""

    size: int = CROP_SIZE  # crop side in pixels
    # 68 points in the unit box; left out of repr() (too long), see ``digest()``
    template: tuple[tuple[float, float], ...] = field(default=CANONICAL_FACE, repr=False)
    margin: float = CROP_MARGIN  # fraction of the crop left on each side of the template's box
    align_points: tuple[int, ...] = ALIGN_POINTS  # landmarks the similarity is fitted to
    smooth_sigma: float = 1.0  # Gaussian smoothing of the transforms over time, in frames
    detect_max_side: int = 240  # face detection on frames downscaled to this longest side
    upsample: int = 0  # dlib detector upsampling (1 finds faces down to ~40 px, 4x slower)
    redetect_every: int = 10  # frames tracked between two detections
    max_gap: int = 5  # longest run of face-less frames that is interpolated

    def template_pixels(self) -> np.ndarray:
        """The canonical face in crop pixel coordinates, (68, 2) float64."""
        return template_pixels(self.template, self.size, self.margin)

    def to_json(self) -> dict:
        """Plain JSON form (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    def digest(self) -> str:
        """Short hash of every parameter, template included (for logs and provenance)."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Reading


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__


def read_clip(ref: ClipRef) -> Clip:
    """Decode a clip's frames (25 fps) and audio (16 kHz), the audio aligned to the frames.

    Raises ``PrepError`` for unreadable media, no video, no audio track or silent audio.
    """
    if ref.video is None:
        raise PrepError(f"{ref.clip_id}: no video file")
    try:
        media = read_media(ref.video, audio=ref.audio is None)
        audio, rate = media.audio, media.source_rate
        if ref.audio is not None:
            separate = read_media(ref.audio, video=False)
            audio, rate = separate.audio, separate.source_rate
    except MediaError as err:
        raise PrepError(f"{ref.clip_id}: {_one_line(err)}") from err
    if media.frames is None:
        raise PrepError(f"{ref.clip_id}: no video track")
    if audio is None or audio.size == 0:
        raise PrepError(f"{ref.clip_id}: no audio track")
    if (silent := silence_reason(audio)) is not None:
        raise PrepError(f"{ref.clip_id}: {silent}")
    num_frames = media.frames.shape[0]
    aligned, offset = align_audio(audio, num_frames)
    return Clip(speaker=ref.speaker, clip_id=ref.clip_id, frames=media.frames, audio=aligned,
                emotion=ref.emotion, intensity=ref.intensity, transcript=ref.transcript,
                audio_offset_samples=offset,
                meta={"source_fps": media.source_fps, "source_rate": rate,
                      "source_size": list(media.frames.shape[1:3])})


# ---------------------------------------------------------------------------------------------
# Landmarks: gaps, similarity transforms, warping


def fill_gaps(landmarks: np.ndarray, clip_id: str, max_gap: int) -> np.ndarray:
    """Interpolate face-less frames (NaN rows) linearly; ``PrepError`` if a gap is too long.

    Frames before the first face or after the last hold the nearest face's landmarks (these
    runs count as gaps too).
    """
    found = ~np.isnan(landmarks).any(axis=(1, 2))
    num = landmarks.shape[0]
    missing = int(num - found.sum())
    longest = run = 0
    for ok in found:
        run = 0 if ok else run + 1
        longest = max(longest, run)
    if not found.any() or longest > max_gap:
        raise PrepError(f"{clip_id}: no face found in {missing}/{num} frames "
                        f"(longest gap {longest})")
    if missing == 0:
        return landmarks.astype(np.float32, copy=True)
    t_found = np.flatnonzero(found)
    flat = landmarks.reshape(num, -1)
    filled = np.empty_like(flat, dtype=np.float32)
    for k in range(flat.shape[1]):
        filled[:, k] = np.interp(np.arange(num), t_found, flat[t_found, k])
    return filled.reshape(landmarks.shape)


def estimate_transforms(landmarks: np.ndarray, params: PrepParams) -> np.ndarray:
    """Frame-to-crop similarity matrices (T, 3, 3) from filled landmarks (T, 68, 2).

    The crop-to-frame parameters (a, b, tx, ty: where the crop sits in the frame) are fitted
    per frame and smoothed over time with a Gaussian of ``smooth_sigma`` frames, then inverted.
    """
    from scipy.ndimage import gaussian_filter1d

    points = list(params.align_points)
    template = params.template_pixels()[points]
    per_frame = np.stack([fit_similarity(template, lm[points].astype(np.float64))
                          for lm in landmarks])
    if params.smooth_sigma > 0 and per_frame.shape[0] > 1:
        per_frame = gaussian_filter1d(per_frame, params.smooth_sigma, axis=0, mode="nearest")
    return np.stack([np.linalg.inv(similarity_matrix(p)) for p in per_frame])


def warp_frames(frames: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """Warp each frame by its frame-to-crop matrix to (T, size, size, 3) uint8 (bilinear)."""
    from skimage.transform import AffineTransform, warp

    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for t, (frame, matrix) in enumerate(zip(frames, transforms, strict=True)):
        crop_to_frame = AffineTransform(matrix=np.linalg.inv(matrix))
        warped = warp(frame, crop_to_frame, output_shape=(size, size), order=1, mode="edge",
                      preserve_range=True)
        out[t] = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return out


@dataclass
class Aligned:
    """A clip's frames aligned to the canonical face, with what it took to get there."""

    frames: np.ndarray  # (T, size, size, 3) uint8
    landmarks: np.ndarray  # (T, 68, 2) float32, crop pixels
    source_landmarks: np.ndarray  # (T, 68, 2) float32 as detected, NaN where no face
    filled_landmarks: np.ndarray  # (T, 68, 2) float32, gaps interpolated
    transforms: np.ndarray  # (T, 3, 3) float64, frame pixels -> crop pixels


def align_clip(clip: Clip, params: PrepParams) -> Aligned:
    """Landmarks, gap filling, transforms and warping for one decoded clip."""
    from bench.core.landmarks import detect_landmarks

    detected = detect_landmarks(clip.frames, detect_max_side=params.detect_max_side,
                                upsample=params.upsample, redetect_every=params.redetect_every)
    filled = fill_gaps(detected, clip.clip_id, params.max_gap)
    transforms = estimate_transforms(filled, params)
    frames = warp_frames(clip.frames, transforms, params.size)
    crop_landmarks = np.stack([apply_transform(matrix, points)
                               for matrix, points in zip(transforms, filled, strict=True)])
    return Aligned(frames=frames, landmarks=crop_landmarks.astype(np.float32),
                   source_landmarks=detected, filled_landmarks=filled, transforms=transforms)


# ---------------------------------------------------------------------------------------------
# Cache


def source_hashes(ref: ClipRef) -> dict[str, str | None]:
    """Content hashes of a clip's media files; ``PrepError`` if one is missing."""
    hashes: dict[str, str | None] = {}
    for name, path in (("video", ref.video), ("audio", ref.audio)):
        if path is None:
            hashes[name] = None
            continue
        try:
            hashes[name] = sha256_of_file(path)
        except OSError as err:
            raise PrepError(f"{ref.clip_id}: {path}: cannot read "
                            f"({err.strerror or err.__class__.__name__})") from err
    return hashes


def cache_key(ref: ClipRef, params: PrepParams | None = None,
              hashes: dict[str, str | None] | None = None) -> str:
    """sha256 of (the media files' content hashes, the params, ``PREPROCESS_VERSION``)."""
    params = params or PrepParams()
    payload = {"sources": hashes if hashes is not None else source_hashes(ref),
               "params": params.to_json(), "version": PREPROCESS_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def entry_path(cache_root: str | Path, key: str) -> Path:
    """Folder of a cache entry: ``cache_root/<key[:2]>/<key>``."""
    return Path(cache_root) / key[:2] / key


def is_complete(entry: Path) -> bool:
    """An entry is complete when its ``meta.json`` exists (it is written last)."""
    return (entry / "meta.json").is_file()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def write_frames(path: Path, frames: np.ndarray, fps: int = bench.VIDEO_FPS) -> str:
    """Store aligned frames as an mp4 (no audio); returns a description of the coding used.

    Uses libx264rgb at ``FRAMES_CRF``; a PyAV without it falls back to ``write_video``
    (yuv420p H.264 CRF 18 or another codec).
    """
    import av

    try:
        av.codec.Codec(FRAMES_CODEC, "w")
    except Exception:  # noqa: BLE001 - encoder not built into this PyAV
        write_video(path, frames, fps=fps)
        return "bench.data.media.write_video default (yuv420p)"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(FRAMES_CODEC, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24"
        stream.options = {"crf": str(FRAMES_CRF), "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return f"{FRAMES_CODEC} CRF {FRAMES_CRF} veryfast"


def dlib_version() -> str | None:
    """Installed dlib version (recorded in ``meta.json``), None without dlib."""
    from importlib.metadata import PackageNotFoundError, version

    for name in ("dlib-bin", "dlib"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def _write_entry(folder: Path, ref: ClipRef, clip: Clip, aligned: Aligned, params: PrepParams,
                 key: str, hashes: dict[str, str | None]) -> None:
    """Write every file of an entry into ``folder``; ``meta.json`` last."""
    coding = write_frames(folder / "frames.mp4", aligned.frames)
    stored = read_media(folder / "frames.mp4", audio=False).frames
    if stored is None or stored.shape != aligned.frames.shape:
        raise PrepError(f"{ref.clip_id}: cached video decodes to "
                        f"{None if stored is None else stored.shape}, "
                        f"expected {aligned.frames.shape}")
    np.save(folder / "audio.npy", clip.audio)
    np.save(folder / "landmarks.npy", aligned.landmarks)
    np.savez(folder / "source.npz", landmarks=aligned.source_landmarks,
             filled_landmarks=aligned.filled_landmarks, transforms=aligned.transforms[:, :2])
    found = ~np.isnan(aligned.source_landmarks).any(axis=(1, 2))
    meta = {
        "version": PREPROCESS_VERSION,
        "talkbench": bench.__version__,
        "dlib": dlib_version(),
        "key": key,
        "clip": {"dataset": ref.dataset, "speaker": ref.speaker, "clip_id": ref.clip_id,
                 "video": None if ref.video is None else str(ref.video),
                 "audio": None if ref.audio is None else str(ref.audio),
                 "emotion": ref.emotion, "intensity": ref.intensity,
                 "transcript": ref.transcript},
        "params": params.to_json(),
        "sources": hashes,
        "num_frames": int(aligned.frames.shape[0]),
        "size": params.size,
        "source_fps": clip.meta.get("source_fps"),
        "source_rate": clip.meta.get("source_rate"),
        "source_size": clip.meta.get("source_size"),
        "audio_offset_samples": int(clip.audio_offset_samples),
        "frames_without_face": int((~found).sum()),
        "frames_storage": f"frames.mp4: {coding}",
        "frames_psnr_db": round(psnr(stored, aligned.frames), 2),
        "files": _file_sizes(folder),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


ENTRY_FILES = ("frames.mp4", "audio.npy", "landmarks.npy", "source.npz")
"""The files of a cache entry besides ``meta.json`` (whose ``files`` records their sizes)."""


def _file_sizes(folder: Path) -> dict[str, int]:
    return {name: (folder / name).stat().st_size for name in ENTRY_FILES}


def _warn(line: str) -> None:
    """One line on stderr (workers included), above a progress bar when there is one."""
    try:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line, file=sys.stderr, flush=True)


DECODED_FRAMES_BUDGET = 512 * 2**20
"""Bytes of decoded cache-entry frames one process keeps (see `decoded_frames`)."""

_decoded: dict[tuple[str, int, int], np.ndarray] = {}
_decoded_bytes = 0


def decoded_frames(path: Path) -> np.ndarray | None:
    """The frames of a cache entry's ``frames.mp4``, decoded once per process: a run reads the
    same prepared clips again and again (every judge and model its training clips, every
    leaderboard row the test clips), and decoding is most of reading an entry (about 2 ms a
    128 px frame). Kept by path, size and modification time (an entry healed after damage is
    decoded anew), the first :data:`DECODED_FRAMES_BUDGET` bytes of them; every call returns
    its own copy, so what a caller does to its frames cannot reach the next caller."""
    global _decoded_bytes
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    kept = _decoded.get(key)
    if kept is None:
        frames = read_media(path, audio=False).frames
        if frames is None or _decoded_bytes + frames.nbytes > DECODED_FRAMES_BUDGET:
            return frames
        kept = frames.copy()
        kept.setflags(write=False)
        _decoded[key] = kept
        _decoded_bytes += kept.nbytes
        return frames
    return kept.copy()


def _read_entry(entry: Path, ref: ClipRef) -> Clip:
    """The clip stored in a complete entry; raises for any damaged file (see `entry_problem`)."""
    meta = json.loads((entry / "meta.json").read_text())
    if not isinstance(meta, dict):
        raise ValueError("meta.json is not a JSON object")
    frames = decoded_frames(entry / "frames.mp4")
    if frames is None or frames.shape[0] != meta["num_frames"]:
        raise ValueError(f"frames.mp4 decodes to {None if frames is None else frames.shape[0]} "
                         f"frames, meta.json says {meta['num_frames']}")
    with np.load(entry / "source.npz") as source:
        _ = [source[name] for name in source.files]
    meta["cache_entry"] = str(entry)
    return Clip(speaker=ref.speaker, clip_id=ref.clip_id, frames=frames,
                audio=np.load(entry / "audio.npy"), emotion=ref.emotion,
                intensity=ref.intensity, transcript=ref.transcript,
                landmarks=np.load(entry / "landmarks.npy"),
                audio_offset_samples=int(meta["audio_offset_samples"]), meta=meta)


DAMAGE = (OSError, ValueError, KeyError, EOFError, TypeError, MediaError, zipfile.BadZipFile,
          zlib.error)
"""What reading a damaged (truncated, zero-byte, overwritten) entry file can raise."""


def entry_problem(entry: Path, ref: ClipRef) -> str | None:
    """Why a complete entry cannot be used (one phrase), None when it is intact.

    Entries record their files' sizes in ``meta.json``: a missing, empty or resized file is
    found by ``stat`` alone. An entry written before sizes were recorded is read in full once
    and its sizes are then added to its ``meta.json``.
    """
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if not isinstance(meta, dict):
            return "meta.json is not a JSON object"
        sizes = meta.get("files")
        for name in ENTRY_FILES:
            size = (entry / name).stat().st_size
            if size == 0:
                return f"{name} is empty (0 bytes)"
            if isinstance(sizes, dict) and sizes.get(name) != size:
                return f"{name} has {size} bytes, {sizes.get(name)} were written"
        if not isinstance(sizes, dict):
            _read_entry(entry, ref)
            from bench.fileio import atomic_write_text

            meta["files"] = _file_sizes(entry)
            atomic_write_text(entry / "meta.json", json.dumps(meta, indent=1) + "\n")
    except DAMAGE as err:
        return _one_line(err) if not isinstance(err, FileNotFoundError) else \
            f"{Path(err.filename or '?').name} is missing"
    return None


def _heal(entry: Path, ref: ClipRef, problem: str) -> None:
    """Report a damaged entry in one line and remove it (the clip is prepared again)."""
    _warn(f"warning: {ref.clip_id}: cached entry {entry} is damaged ({problem}); removed, "
          f"preparing the clip again")
    shutil.rmtree(entry, ignore_errors=True)


def failure_path(cache_root: str | Path, key: str) -> Path:
    """The failure record of a cache key: ``cache_root/<key[:2]>/<key>.failed.json``."""
    return Path(cache_root) / key[:2] / f"{key}.failed.json"


class KnownFailure(PrepError):
    """A clip whose failure record (same content, parameters and code) says why it fails."""


def _without_id(reason: str, clip_id: str) -> str:
    prefix = f"{clip_id}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def _record_failure(record: Path, ref: ClipRef, key: str, err: PrepError) -> None:
    """Write a failure record atomically (best effort: a cache that cannot take it is fine)."""
    from bench.fileio import atomic_write_text

    text = json.dumps({"reason": _without_id(_one_line(err), ref.clip_id), "key": key,
                       "version": PREPROCESS_VERSION, "clip_id": ref.clip_id,
                       "video": None if ref.video is None else str(ref.video)}, indent=1)
    try:
        atomic_write_text(record, text + "\n")
    except OSError:
        pass


def _known_failure(record: Path) -> str | None:
    """The reason in a failure record, None when there is no (readable) record."""
    try:
        reason = json.loads(record.read_text(encoding="utf-8")).get("reason")
    except (OSError, ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) and reason else None


def _prepare(ref: ClipRef, cache_root: Path, params: PrepParams,
             retry_failed: bool = False) -> tuple[Path, bool]:
    """Prepare one clip; returns its entry and whether a complete entry was reused.

    Raises ``KnownFailure`` when a failure record answers for the clip (see step 6).
    """
    hashes = source_hashes(ref)
    key = cache_key(ref, params, hashes)
    entry = entry_path(cache_root, key)
    if is_complete(entry):
        problem = entry_problem(entry, ref)
        if problem is None:
            return entry, True
        _heal(entry, ref, problem)
    record = failure_path(cache_root, key)
    known = None if retry_failed else _known_failure(record)
    if known is not None:
        raise KnownFailure(f"{ref.clip_id}: {known}")
    try:
        clip = read_clip(ref)
        aligned = align_clip(clip, params)
    except PrepError as err:
        _record_failure(record, ref, key, err)
        raise
    record.unlink(missing_ok=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    temp = entry.parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        _write_entry(temp, ref, clip, aligned, params, key, hashes)
        if entry.exists():  # an incomplete leftover (no meta.json): replace it
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(temp, entry)
        except OSError:
            if not is_complete(entry):  # not another process finishing the same entry first
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return entry, False


def prepare_clip(ref: ClipRef, cache_root: str | Path, params: PrepParams | None = None,
                 retry_failed: bool = False) -> Path:
    """Preprocess ``ref`` into the cache (reusing a complete entry); returns the entry folder.

    Raises ``PrepError`` with a one-line reason when the clip cannot be prepared
    (``KnownFailure`` when a failure record gives it; ``retry_failed`` ignores records).
    """
    return _prepare(ref, Path(cache_root), params or PrepParams(), retry_failed)[0]


def load_prepared(ref: ClipRef, cache_root: str | Path,
                  params: PrepParams | None = None) -> Clip:
    """The aligned clip from the cache (prepared first if it is not there yet).

    Frames are (T, size, size, 3) uint8, audio T * 640 float32 samples, landmarks (T, 68, 2)
    in crop pixels; labels come from ``ref``; ``meta`` is the entry's ``meta.json`` plus
    ``cache_entry``.
    A damaged entry (a file truncated or emptied since it was written) is reported in one
    line, removed and prepared again.
    """
    for attempt in range(2):
        entry = prepare_clip(ref, cache_root, params)
        try:
            return _read_entry(entry, ref)
        except DAMAGE as err:
            if attempt:
                raise PrepError(f"{ref.clip_id}: cache entry {entry} cannot be read after "
                                f"preparing it again ({_one_line(err)})") from err
            _heal(entry, ref, _one_line(err))
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Many clips


@dataclass
class PrepareReport:
    """Outcome of ``prepare_all``."""

    prepared: list[ClipRef] = field(default_factory=list)  # in input order
    failed: dict[str, str] = field(default_factory=dict)  # clip_id -> one-line reason
    reused: int = 0  # prepared clips whose complete entry was already cached
    known_failures: int = 0  # failed clips answered by a failure record (not decoded again)

    def summary(self) -> str:
        return (f"{len(self.prepared)} prepared ({self.reused} from cache), "
                f"{len(self.failed)} failed ({self.known_failures} known from earlier runs)")


def _prepare_task(ref: ClipRef, cache_root: Path, params: PrepParams,
                  retry_failed: bool = False) -> tuple[bool, str | None, bool]:
    """Worker: (ok, failure reason, from cache); never raises for a bad clip."""
    try:
        _, reused = _prepare(ref, cache_root, params, retry_failed)
        return True, None, reused
    except KnownFailure as err:
        return False, _one_line(err), True
    except PrepError as err:
        return False, _one_line(err), False
    except Exception as err:  # noqa: BLE001 - one bad clip must not stop the others
        return False, f"{ref.clip_id}: {err.__class__.__name__}: {_one_line(err)}", False


def _cached_outcome(ref: ClipRef, cache_root: Path, params: PrepParams,
                    retry_failed: bool = False) -> tuple[bool, str | None, bool] | None:
    """The outcome of a clip the cache already answers for (a complete entry or a remembered
    failure), without decoding it; None when it must be prepared."""
    try:
        key = cache_key(ref, params, source_hashes(ref))
    except Exception:  # noqa: BLE001 - unreadable sources: the worker reports why
        return None
    entry = entry_path(cache_root, key)
    if is_complete(entry):
        problem = entry_problem(entry, ref)
        if problem is None:
            return True, None, True
        _heal(entry, ref, problem)
        return None  # prepared again by a worker
    known = None if retry_failed else _known_failure(failure_path(cache_root, key))
    return None if known is None else (False, _one_line(KnownFailure(f"{ref.clip_id}: {known}")),
                                       True)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the process that started it dies (kill -9
    included), so no orphan keeps decoding and writing into the cache.

    Two mechanisms, because neither alone covers every case: on Linux,
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (through ctypes) has the kernel kill the worker the
    moment its parent goes; everywhere, a daemon thread checks once a second that the parent
    is still ``parent`` (a dead parent re-parents the worker) and exits the worker otherwise.
    The check right after ``prctl`` catches a parent that died before it was set.
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="talkbench-parent-watch", daemon=True).start()


def remove_stale_temp(cache_root: str | Path, max_age_s: float = 3600.0) -> int:
    """Delete temporary entry folders left by killed runs (older than ``max_age_s``)."""
    removed = 0
    now = time.time()
    for temp in Path(cache_root).glob("*/.tmp-*"):
        try:
            if now - temp.stat().st_mtime > max_age_s:
                if temp.is_dir():
                    shutil.rmtree(temp, ignore_errors=True)
                else:
                    temp.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def prepare_all(refs: list[ClipRef], cache_root: str | Path, params: PrepParams | None = None,
                workers: int | None = None, progress: bool = True,
                retry_failed: bool = False) -> PrepareReport:
    """Prepare every clip (in parallel over processes), resuming from what is cached.

    ``workers`` defaults to the number of CPUs; 1 runs in this process. Workers are started
    with "spawn" (each builds its own dlib objects; no fork of a threaded parent), so a script
    calling this with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard.
    Workers die with this process (`_die_with_parent`), even when it is killed with -9, and an
    interrupted call (Ctrl-C, an error) terminates them before it returns.
    A failing clip is recorded with its one-line reason (and printed when ``progress``) and
    the rest go on. Failures fixed by a clip's content are remembered (module notes, step 6):
    the next run reports them without decoding again, unless ``retry_failed``.
    """
    from tqdm import tqdm

    params = params or PrepParams()
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(cache_root)
    outcomes: dict[int, tuple[bool, str | None, bool]] = {}
    bar = tqdm(total=len(refs), desc="preprocess", unit="clip", disable=not progress)

    def record(index: int, outcome: tuple[bool, str | None, bool]) -> None:
        outcomes[index] = outcome
        if not outcome[0] and progress:
            tqdm.write(f"failed: {outcome[1]}")
        bar.update(1)

    try:
        todo = []  # what the cache cannot answer: only these start worker processes
        for index, ref in enumerate(refs):
            cached = _cached_outcome(ref, cache_root, params, retry_failed)
            if cached is None:
                todo.append(index)
            else:
                record(index, cached)
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
        if workers == 1:
            for index in todo:
                record(index, _prepare_task(refs[index], cache_root, params, retry_failed))
        else:
            context = multiprocessing.get_context("spawn")  # fresh dlib objects per process
            with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                     initializer=_die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                futures = {pool.submit(_prepare_task, refs[index], cache_root, params,
                                       retry_failed): index for index in todo}
                try:
                    for future in as_completed(futures):
                        record(futures[future], future.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    for process in list((pool._processes or {}).values()):
                        process.terminate()  # an interrupted run stops its workers now
                    raise
    finally:
        bar.close()
    report = PrepareReport()
    for index, ref in enumerate(refs):
        ok, reason, from_cache = outcomes[index]
        if ok:
            report.prepared.append(ref)
            report.reused += int(from_cache)
        else:
            report.failed[ref.clip_id] = reason or f"{ref.clip_id}: failed"
            report.known_failures += int(from_cache)
    return report
