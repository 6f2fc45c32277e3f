"""Media IO: decoding, 25 fps resampling, 16 kHz audio, mp4 writing, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.media import MediaError, read_media, resample_times, write_video, write_wav


def _moving_square(n: int, size: int = 64) -> np.ndarray:
    frames = np.full((n, size, size, 3), 40, np.uint8)
    for t in range(n):
        x = (t * 3) % (size - 16)
        frames[t, 20:36, x:x + 16] = 220
    return frames


def _tone(seconds: float, rate: int = 16_000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_resample_times_matches_fps_filter_nearest():
    times = np.arange(90) / 30.0  # 3 s at 30 fps
    idx = resample_times(times, 25, 1 / 30)
    assert idx.shape == (75,)
    expected = np.round(np.arange(75) / 25 * 30).astype(int)
    assert (np.abs(idx - expected) <= 1).all()
    assert (times[idx] - np.arange(75) / 25 <= 1 / 60 + 1e-9).all()


def test_mp4_round_trip_keeps_frames_and_audio_aligned(tmp_path):
    frames = _moving_square(50)
    audio = _tone(2.0)
    audio[16_000:16_160] = 0.9  # a click at exactly 1.0 s
    path = write_video(tmp_path / "clip.mp4", frames, audio)
    media = read_media(path)
    assert media.frames.shape == frames.shape
    assert np.abs(media.frames.astype(int) - frames).mean() < 3.0
    assert media.source_fps == 25
    assert abs(media.audio.shape[0] - 32_000) < 1100
    click = int(np.argmax(np.abs(media.audio[15_000:17_000]) > 0.6)) + 15_000
    assert abs(click - 16_000) < 40  # no AAC priming shift


def test_30fps_video_resampled_to_25(tmp_path):
    frames = _moving_square(60)
    path = write_video(tmp_path / "clip.flv", frames, _tone(2.0), fps=30)
    media = read_media(path)
    assert media.frames.shape[0] == 50
    assert media.source_fps == pytest.approx(30)


def test_wav_reads_at_16k(tmp_path):
    path = write_wav(tmp_path / "a.wav", _tone(1.0, 16_000))
    media = read_media(path)
    assert media.frames is None and media.audio.shape == (16_000,)
    assert np.abs(media.audio - _tone(1.0)).max() < 1e-3


def test_bad_files_give_one_line(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        read_media(empty)
    with pytest.raises(MediaError, match="no such file"):
        read_media(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError, match="cannot open"):
        read_media(junk)
    silent_video = write_video(tmp_path / "noaudio.mp4", _moving_square(10))
    assert read_media(silent_video).audio is None


def test_truncated_file_is_reported_not_fatal(tmp_path):
    path = write_video(tmp_path / "clip.mp4", _moving_square(50), _tone(2.0))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        media = read_media(cut)
    except MediaError as err:
        assert "cut.mp4" in str(err)
    else:  # a demuxer that recovers part of the file must not pretend it is whole
        assert media.frames is None or media.frames.shape[0] < 50


def test_cut_flv_is_reported_as_truncated(tmp_path):
    path = write_video(tmp_path / "clip.flv", _moving_square(60), _tone(2.0), fps=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.flv"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        read_media(cut)
