"""Registry, clip alignment, bootstrap statistics, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.clip import Clip, align_audio, frames_for_audio
from bench.fileio import atomic_write_text
from bench.registry import Registry, UnknownName
from bench.stats import bootstrap_mean


def test_registry_lazy_and_did_you_mean():
    reg = Registry("thing")
    reg.add("json-loads", "json:loads")
    assert reg.get("json-loads")('{"a": 1}') == {"a": 1}
    with pytest.raises(UnknownName, match="did you mean 'json-loads'"):
        reg.get("json-load")
    with pytest.raises(ValueError):
        reg.add("json-loads", "json:dumps")


def test_align_audio_cuts_and_pads_at_the_end():
    audio = np.arange(1000, dtype=np.float32)
    cut, offset = align_audio(audio, 1)
    assert cut.shape == (640,) and offset == 360 and cut[-1] == 639
    padded, offset = align_audio(audio, 2)
    assert padded.shape == (1280,) and offset == -280
    assert (padded[1000:] == 0).all() and padded[999] == 999
    assert frames_for_audio(640) == 1 and frames_for_audio(641) == 2


def test_clip_rejects_misaligned_audio():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="1920 samples"):
        Clip("s", "c", frames, np.zeros(100, np.float32))
    assert Clip("s", "c", frames, np.zeros(1920, np.float32)).duration_s == pytest.approx(0.12)


def test_bootstrap_mean_interval_and_infinities():
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 2.0, size=400)
    est = bootstrap_mean(values)
    assert est.value == pytest.approx(values.mean())
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert est.ci_high - est.ci_low == pytest.approx(2 * half_width, rel=0.15)
    assert est.ci_low < est.value < est.ci_high
    with_inf = bootstrap_mean([1.0, 3.0, np.inf])
    assert with_inf.value == 2.0 and with_inf.n == 2 and with_inf.n_infinite == 1
    with pytest.raises(ValueError):
        bootstrap_mean([1.0, np.nan])
    assert bootstrap_mean(values).ci_low == est.ci_low  # deterministic


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(RuntimeError):
        atomic_write_text(target, "second")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_writes_get_the_mode_an_ordinary_open_gives(tmp_path):
    import numpy as np

    from bench.fileio import atomic_save_npz

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = plain.stat().st_mode & 0o777
    text = atomic_write_text(tmp_path / "board.md", "x")
    arrays = atomic_save_npz(tmp_path / "a.npz", x=np.zeros(2))
    assert text.stat().st_mode & 0o777 == expected == arrays.stat().st_mode & 0o777
    from bench.data.media import write_video, write_wav

    video = write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8),
                        np.zeros(1280, np.float32))
    wav = write_wav(tmp_path / "a.wav", np.zeros(160, np.float32))
    assert video.stat().st_mode & 0o777 == expected == wav.stat().st_mode & 0o777
