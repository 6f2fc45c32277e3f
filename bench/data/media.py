"""Media IO with PyAV (no system ffmpeg): decode to 25 fps RGB + 16 kHz mono, encode mp4.

Frame-rate conversion follows ffmpeg's ``fps`` filter with its default rounding ("near"):
output frame ``k`` shows the input frame whose presentation time is nearest to
``t0 + k / 25`` (``t0`` the first frame's time). The output has ``round(D * 25)`` frames for a
video of duration ``D`` (last frame time - first frame time + one input frame period).
Audio is resampled by libswresample (through ``av.AudioResampler``) to 16 kHz and its
channels averaged to float32 mono.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import AUDIO_RATE, VIDEO_FPS
from bench.fileio import usual_mode


class MediaError(Exception):
    """A media file that cannot be read as asked; the message is one line for the user."""


@dataclass
class Media:
    """Decoded media at the harness' rates."""

    frames: np.ndarray | None  # (T, H, W, 3) uint8 at 25 fps, None for audio-only files
    audio: np.ndarray | None  # (N,) float32 at 16 kHz, None when the file has no audio
    source_fps: float | None
    source_rate: int | None


def _open(path: Path):
    import av

    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(f"{path}: cannot open as media ({err.__class__.__name__}: {err})") from err


def resample_times(times: np.ndarray, fps: float = VIDEO_FPS,
                   source_period: float | None = None) -> np.ndarray:
    """Indices of the input frames shown at each output frame of a ``fps`` video.

    ``times`` are the input presentation times in seconds (sorted). Nearest-time selection
    as in ffmpeg's fps filter.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    if source_period is None:
        source_period = float(np.median(np.diff(times))) if times.size > 1 else 1.0 / fps
    duration = times[-1] - times[0] + source_period
    n_out = max(1, int(round(duration * fps)))
    targets = times[0] + np.arange(n_out) / fps
    right = np.searchsorted(times, targets, side="left").clip(0, times.size - 1)
    left = (right - 1).clip(0, times.size - 1)
    use_left = np.abs(times[left] - targets) <= np.abs(times[right] - targets)
    return np.where(use_left, left, right)


def _decode_video(container, path: Path) -> tuple[np.ndarray, float]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            fallback = len(times) / float(stream.average_rate or VIDEO_FPS)
            times.append(float(frame.time if frame.time is not None else fallback))
    except Exception as err:  # a corrupt or truncated stream
        raise MediaError(f"{path}: video stream is corrupt or truncated "
                         f"after {len(frames)} frames ({err.__class__.__name__})") from err
    if not frames:
        raise MediaError(f"{path}: video stream has no decodable frames")
    source_fps = float(stream.average_rate) if stream.average_rate else None
    _check_not_truncated(container, path, times, source_fps)
    order = np.argsort(times, kind="stable")
    times_arr = np.asarray(times)[order]
    period = 1.0 / source_fps if source_fps else None
    idx = resample_times(times_arr, VIDEO_FPS, period)
    stacked = np.stack([frames[i] for i in order[idx]])
    return stacked, (source_fps or 0.0)


def _check_not_truncated(container, path: Path, times: list[float],
                         source_fps: float | None) -> None:
    """A file that decodes cleanly but stops early (e.g. a cut FLV) is reported as truncated.

    The container's declared duration (FLV metadata, MP4 header) is compared with what
    decoded; a shortfall beyond 10% + 0.2 s means frames are missing.
    """
    if not container.duration or len(times) < 1:
        return
    declared = container.duration / 1_000_000
    period = 1.0 / source_fps if source_fps else 0.04
    decoded = max(times) - min(times) + period
    if decoded < declared * 0.9 - 0.2:
        raise MediaError(f"{path}: truncated: {decoded:.2f} s of video decoded, the file "
                         f"declares {declared:.2f} s")


def program_stream_end(data: bytes) -> tuple[int, int] | None:
    """Walk an MPEG-1/2 program stream's packs and packets by their length fields.

    Returns None when the packets end exactly at the end of ``data`` (or at a program end
    code, or with only 0xFF/0x00 stuffing after the last packet), or when the structure cannot
    be followed (not a program stream; a packet without a length); otherwise ``(offset,
    needed)``: the packet at ``offset`` needs ``needed`` bytes but the data ends first, i.e.
    the file was cut.
    """
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < 4 or data[pos:pos + 3] != b"\x00\x00\x01":
            rest = data[pos:]
            if rest.strip(b"\xff") == b"" or rest.strip(b"\x00") == b"":
                return None  # stuffing to the end
            return (pos, 4) if size - pos < 4 and b"\x00\x00\x01".startswith(rest[:3]) \
                else None
        code = data[pos + 3]
        if code == 0xB9:  # program end
            return None
        if code == 0xBA:  # pack header
            if size - pos < 5:
                return pos, 12
            if data[pos + 4] & 0xC0 == 0x40:  # MPEG-2: 14 bytes + stuffing
                if size - pos < 14:
                    return pos, 14
                length = 14 + (data[pos + 13] & 0x07)
            elif data[pos + 4] & 0xF0 == 0x20:  # MPEG-1
                length = 12
            else:
                return None
        elif code >= 0xBB:  # system header, PES, padding: 16-bit length
            if size - pos < 6:
                return pos, 6
            length = 6 + int.from_bytes(data[pos + 4:pos + 6], "big")
            if length == 6 and code >= 0xE0:  # unbounded video packet: cannot follow
                return None
        else:
            return None
        if pos + length > size:
            return pos, length
        pos += length
    return None


def _read_bytes(path: Path) -> bytes:
    """The whole file, or MediaError in one line."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise MediaError(f"{path}: cannot read ({err.strerror or err})") from err


def _check_program_stream(path: Path) -> None:
    """MPEG program streams (GRID's .mpg) declare no duration, so a cut file decodes quietly
    to a shorter clip; their packet lengths show the cut (``program_stream_end``)."""
    data = _read_bytes(path)
    cut = program_stream_end(data)
    if cut is not None:
        offset, needed = cut
        raise MediaError(f"{path}: truncated: the MPEG stream ends inside a packet (at byte "
                         f"{len(data)}, the packet at {offset} needs {needed} bytes)")


def wav_data_end(data: bytes) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of a RIFF/WAVE file's ``data`` chunk when the file ends
    before the size its header declares (a cut file); None when complete or not a WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"data":
            present = len(data) - pos - 8
            # 0 and 0xFFFFFFFF are "unknown size" (streamed WAV): nothing to compare
            if size not in (0, 0xFFFFFFFF) and present < size:
                return size, present
            return None
        pos += 8 + size + (size & 1)
    return None


def _check_wav(path: Path) -> None:
    """A WAV's decoder stops quietly where a cut file ends; its header's data size shows the
    cut (``wav_data_end``)."""
    cut = wav_data_end(_read_bytes(path))
    if cut is not None:
        declared, present = cut
        raise MediaError(f"{path}: truncated: the WAV header declares {declared} bytes of "
                         f"audio, the file holds {present}")


def _decode_audio(container, path: Path) -> tuple[np.ndarray, int]:
    """All audio as float32 mono at 16 kHz: resampled per channel, channels averaged.

    Averaging (rather than libswresample's -3 dB downmix, which scales identical stereo
    channels by 1.41 and can exceed 1.0) keeps the level of the source.
    """
    import av

    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=AUDIO_RATE)
    chunks: list[np.ndarray] = []
    try:
        for frame in container.decode(stream):
            frame.pts = None
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().mean(axis=0))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().mean(axis=0))
    except Exception as err:
        raise MediaError(f"{path}: audio stream is corrupt or truncated "
                         f"({err.__class__.__name__})") from err
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return audio, int(stream.rate or 0)


def read_media(path: str | Path, *, video: bool = True, audio: bool = True) -> Media:
    """Decode ``path`` (mpg, flv, mp4, avi, wav, ...) to 25 fps RGB frames and 16 kHz audio.

    Raises ``MediaError`` with a one-line reason for missing, empty, corrupt or stream-less
    files. A file with no audio track gives ``audio=None`` (the caller decides whether that
    is an error); a file with no video track gives ``frames=None``.
    """
    path = Path(path)
    frames = audio_arr = None
    fps = rate = None
    if video:
        with _open(path) as container:
            if container.format.name == "mpeg":
                _check_program_stream(path)
            if container.streams.video:
                frames, fps = _decode_video(container, path)
    if audio:
        with _open(path) as container:
            if not video and container.format.name == "mpeg":
                _check_program_stream(path)
            if container.format.name == "wav":
                _check_wav(path)
            if container.streams.audio:
                audio_arr, rate = _decode_audio(container, path)
    if video and audio and frames is None and audio_arr is None:
        raise MediaError(f"{path}: no video or audio stream")
    return Media(frames=frames, audio=audio_arr, source_fps=fps, source_rate=rate)


def _video_codec() -> str:
    import av

    for name in ("libx264", "h264", "libopenh264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - not built into this PyAV
            continue
    raise MediaError("PyAV has no usable video encoder")


def write_video(path: str | Path, frames: np.ndarray, audio: np.ndarray | None = None, *,
                fps: int = VIDEO_FPS, rate: int = AUDIO_RATE, audio_codec: str | None = None,
                video_codec: str | None = None) -> Path:
    """Write frames (T,H,W,3 uint8 RGB) and mono float audio to ``path``, atomically.

    The container follows the suffix (``.mp4``: H.264 + AAC, ``.flv``: FLV1 + MP3-less AAC...);
    odd frame sizes are padded by one pixel (edge) for yuv420p. The file appears only complete:
    it is written to a temporary name in the same folder and renamed.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T,H,W,3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    suffix = path.suffix.lower()
    if video_codec is None:
        video_codec = "flv" if suffix == ".flv" else ("mpeg1video" if suffix == ".mpg"
                                                      else _video_codec())
    if audio_codec is None:
        audio_codec = {".flv": "libmp3lame", ".mpg": "mp2"}.get(suffix, "aac")
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, mode="w") as out:
            vstream = out.add_stream(video_codec, rate=fps)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            if video_codec in ("libx264", "h264"):
                vstream.options = {"crf": "18", "preset": "veryfast"}
            else:
                vstream.bit_rate = 4_000_000
            astream = None
            if audio is not None:
                # FLV's MP3 and MPEG-1's MP2 take 44.1 kHz (as GRID and CREMA-D ship them)
                out_rate = 44_100 if suffix in (".flv", ".mpg") else rate
                astream = out.add_stream(audio_codec, rate=out_rate)
                astream.layout = "mono"
            for frame in frames:
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                for packet in vstream.encode(vf):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)
            if astream is not None:
                _encode_audio(out, astream, np.asarray(audio, dtype=np.float32), rate)
        usual_mode(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _encode_audio(out, astream, audio: np.ndarray, rate: int) -> None:
    import av

    resampler = av.AudioResampler(format=astream.codec_context.format.name, layout="mono",
                                  rate=astream.codec_context.sample_rate or rate)
    block = 1024
    pts = 0
    for start in range(0, audio.shape[0], block):
        chunk = audio[start:start + block].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt",
                                           layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        pts += chunk.shape[1]
        for rframe in resampler.resample(frame):
            for packet in astream.encode(rframe):
                out.mux(packet)
    for rframe in resampler.resample(None):
        for packet in astream.encode(rframe):
            out.mux(packet)
    for packet in astream.encode(None):
        out.mux(packet)


def write_wav(path: str | Path, audio: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """Write mono 16-bit PCM WAV atomically (as CREMA-D's AudioWAV files are)."""
    import wave

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(np.asarray(audio, np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        with wave.open(tmp_name, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm.tobytes())
        usual_mode(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
