"""Data-layer robustness (SPEC 4.2, 4.4, 9): a GRID tree with broken and foreign files.

The tree holds two good clips (one at an unexpected 30 fps), a truncated file, a zero-byte
file, a file without audio, a file with no face, a file without read permission, a broken
link and files that are no GRID media. The report names each bad file once, in one line; the
rest is prepared; a second run redoes nothing (cache files and failure records keep their
mtimes); no cache entry is ever half written, even when the process is killed mid-write.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import SAMPLES_PER_FRAME
from bench.data import preprocess as prep
from bench.data.clip import ClipRef
from bench.data.datasets import open_dataset
from bench.data.media import MediaError, program_stream_end, read_media, write_video

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                reason="dlib is not installed")

GOOD = ("s1_bbaf2n", "s1_bbaf3n")  # the second at 30 fps
BAD_IN_SCAN = {"s4_bbaz2a": "cannot be read"}
BAD_IN_PREP = {"s2_lbax4n": "truncated", "s3_swiz3n": "no audio track",
               "s3_swiz4n": "no face found", "s2_lbax5n": "empty file (0 bytes)"}
"""Issue 12: a zero-byte video is listed by the scan (its split part counts it) and fails in
preparation with the reason, like a truncated one (it used to be left out of the scan)."""
FOREIGN = ("README.txt", "s1/desktop.ini", "s1/bbaf2n.mpg.bak", "alignments/s1/notes.txt")


def portrait_frames(num: int, fps: float, seed: int) -> np.ndarray:
    """skimage's astronaut in a 360x288 GRID-sized frame, nodding slowly (``seed`` shifts the
    motion so that every clip has its own content)."""
    from skimage.data import astronaut
    from skimage.transform import SimilarityTransform, warp

    image = astronaut()
    frames = []
    for t in range(num):
        phase = 2 * np.pi * (t / fps) * 0.5 + seed
        to_centre = SimilarityTransform(translation=(-180 - 4 * np.sin(phase), -150))
        turn = SimilarityTransform(rotation=np.deg2rad(3 * np.sin(phase)), scale=0.5)
        to_face = SimilarityTransform(translation=(222, 126))
        matrix = to_face.params @ turn.params @ to_centre.params
        frames.append(warp(image, SimilarityTransform(matrix), output_shape=(288, 360),
                           order=1, preserve_range=True).round().astype(np.uint8))
    return np.stack(frames)


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def fault_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faulty_grid")
    good = write_video(root / "s1" / "bbaf2n.mpg", portrait_frames(25, 25, 0), tone(1.0))
    write_video(root / "s1" / "bbaf3n.mpg", portrait_frames(30, 30, 1), tone(1.0, 330), fps=30)
    data = good.read_bytes()
    (root / "s2").mkdir()
    (root / "s2" / "lbax4n.mpg").write_bytes(data[: len(data) * 6 // 10])
    (root / "s2" / "lbax5n.mpg").write_bytes(b"")
    write_video(root / "s3" / "swiz3n.mpg", portrait_frames(25, 25, 2))  # no audio track
    noise = np.random.default_rng(0).integers(0, 256, (25, 288, 360, 3), dtype=np.uint8)
    write_video(root / "s3" / "swiz4n.mpg", noise, tone(1.0))
    locked = write_video(root / "s4" / "bbaz1a.mpg", portrait_frames(25, 25, 3), tone(1.0))
    locked.chmod(0)
    (root / "s4" / "bbaz2a.mpg").symlink_to(root / "s4" / "gone.mpg")
    for rel in FOREIGN:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("not media\n")
    return root


def _locked_is_readable(root: Path) -> bool:
    return os.access(root / "s4" / "bbaz1a.mpg", os.R_OK)  # root (uid 0) reads mode 000


def _snapshot(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*")}


def test_truncated_mpeg_is_reported_not_shortened(fault_tree):
    path = fault_tree / "s2" / "lbax4n.mpg"
    assert program_stream_end(path.read_bytes()) is not None
    assert program_stream_end((fault_tree / "s1" / "bbaf2n.mpg").read_bytes()) is None
    with pytest.raises(MediaError, match="truncated: the MPEG stream ends inside a packet"):
        read_media(path)


def test_report_names_each_fault_once_the_rest_prepares_and_a_rerun_redoes_nothing(
        fault_tree, tmp_path):
    scan = open_dataset("grid", fault_tree).scan()
    readable_lock = _locked_is_readable(fault_tree)
    expected_ok = {*GOOD, "s4_bbaz1a"} if readable_lock else set(GOOD)
    scan_bad = dict(BAD_IN_SCAN) if readable_lock else {**BAD_IN_SCAN,
                                                        "s4_bbaz1a": "cannot be read"}
    listed = {c.clip_id for c in scan.clips}
    assert listed == expected_ok | set(BAD_IN_PREP)
    for clip_id, words in scan_bad.items():
        lines = [line for line in scan.problems if clip_id in line]
        assert len(lines) == 1 and words in lines[0], (clip_id, scan.problems)
    for rel in FOREIGN:
        lines = [line for line in scan.problems if line.startswith(f"{rel}:")]
        assert len(lines) == 1 and "unexpected file" in lines[0]
    assert all("\n" not in line for line in scan.problems)

    cache = tmp_path / "cache"
    first = prep.prepare_all(scan.clips, cache, workers=2, progress=False)
    assert {r.clip_id for r in first.prepared} == expected_ok
    assert set(first.failed) == set(BAD_IN_PREP) and first.known_failures == 0
    for clip_id, words in BAD_IN_PREP.items():
        reason = first.failed[clip_id]
        assert reason.startswith(f"{clip_id}: ") and words in reason and "\n" not in reason
    report = scan.problems + list(first.failed.values())
    for clip_id in [*scan_bad, *BAD_IN_PREP]:  # each bad clip named in exactly one line
        assert sum(clip_id in line for line in report) == 1, clip_id
    assert not any(c in line for c in expected_ok for line in report)

    # the unexpected frame rate was resampled to 25 fps
    slow = prep.load_prepared(next(r for r in scan.clips if r.clip_id == "s1_bbaf3n"), cache)
    assert slow.meta["source_fps"] == pytest.approx(30) and slow.num_frames == 25

    # every entry complete, nothing half written, one failure record per failed clip
    entries = [p for p in cache.glob("*/*") if p.is_dir()]
    assert len(entries) == len(expected_ok) and all(prep.is_complete(e) for e in entries)
    assert not list(cache.rglob(".tmp-*"))
    assert len(list(cache.glob("*/*.failed.json"))) == len(BAD_IN_PREP)

    before = _snapshot(cache)
    again_scan = open_dataset("grid", fault_tree).scan()
    assert again_scan.problems == scan.problems
    again = prep.prepare_all(again_scan.clips, cache, workers=1, progress=False)
    assert again.reused == len(expected_ok) and again.failed == first.failed
    assert again.known_failures == len(BAD_IN_PREP)
    assert _snapshot(cache) == before  # nothing rewritten, nothing added


def test_failure_records_follow_content_and_can_be_retried(fault_tree, tmp_path,
                                                          monkeypatch):
    ref = next(c for c in open_dataset("grid", fault_tree).scan().clips
               if c.clip_id == "s3_swiz4n")
    cache = tmp_path / "cache"
    with pytest.raises(prep.PrepError, match="no face found"):
        prep.prepare_clip(ref, cache)
    calls = []
    real_read = prep.read_clip
    monkeypatch.setattr(prep, "read_clip", lambda r: calls.append(r) or real_read(r))
    with pytest.raises(prep.KnownFailure, match="^s3_swiz4n: no face found"):
        prep.prepare_clip(ref, cache)
    assert calls == []  # answered from the record, not decoded
    renamed = type(ref)(dataset="grid", speaker="s9", clip_id="s9_swiz4n", video=ref.video)
    with pytest.raises(prep.KnownFailure, match="^s9_swiz4n: no face"):  # same content
        prep.prepare_clip(renamed, cache)
    with pytest.raises(prep.PrepError, match="no face found"):
        prep.prepare_clip(ref, cache, retry_failed=True)
    assert len(calls) == 1
    bigger = prep.PrepParams(max_gap=100)  # other parameters: another key, tried afresh
    with pytest.raises(prep.PrepError):
        prep.prepare_clip(ref, cache, bigger)
    assert len(calls) == 2


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="running as root: mode 000 files stay readable")
def test_unreadable_file_is_reported(fault_tree):
    scan = open_dataset("grid", fault_tree).scan()
    lines = [line for line in scan.problems if "s4_bbaz1a" in line]
    assert lines == ["s4_bbaz1a: s4/bbaz1a.mpg cannot be read (permission denied or broken "
                     "link); skipped"]


_KILLED_WRITER = """
import sys, time
from pathlib import Path
from bench.data import preprocess as prep
from bench.data.clip import ClipRef
from bench.data.clip import ClipRef

real = prep.write_frames
def write_then_hang(path, frames, *args, **kwargs):
    out = real(path, frames, *args, **kwargs)
    Path(sys.argv[2]).write_text(str(path))
    time.sleep(120)
    return out
prep.write_frames = write_then_hang
ref = ClipRef(dataset="grid", speaker="s1", clip_id="s1_bbaf2n", video=Path(sys.argv[1]))
prep.prepare_clip(ref, sys.argv[3])
"""


def test_killed_mid_write_leaves_no_entry(fault_tree, tmp_path):
    """SIGKILL while an entry is being written: only a temporary folder remains, which the
    next run ignores (and clears once stale); the clip is then prepared normally."""
    video = fault_tree / "s1" / "bbaf2n.mpg"
    cache, marker = tmp_path / "cache", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(video), str(marker),
                             str(cache)], cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the writer exited before writing"
            assert time.monotonic() < deadline, "the writer never got to write"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = Path(marker.read_text())
    assert written.name == "frames.mp4" and written.parent.name.startswith(".tmp-")
    ref = ClipRef(dataset="grid", speaker="s1", clip_id="s1_bbaf2n", video=video)
    entry = prep.entry_path(cache, prep.cache_key(ref))
    assert not entry.exists()  # no half entry under the real name
    report = prep.prepare_all([ref], cache, workers=1, progress=False)
    assert [r.clip_id for r in report.prepared] == ["s1_bbaf2n"] and report.reused == 0
    assert prep.is_complete(entry)
    assert prep.remove_stale_temp(cache, max_age_s=0) == 1
    assert not list(cache.rglob(".tmp-*")) and prep.is_complete(entry)


def test_audio_shorter_than_video_is_padded_by_the_rule(tmp_path):
    """A 1 s video with 0.5 s of audio: zero-padded at the end, the offset kept."""
    path = write_video(tmp_path / "s1" / "bbaf2n.mpg", portrait_frames(25, 25, 0), tone(0.5))
    clip = prep.read_clip(ClipRef("grid", "s1", "s1_bbaf2n", video=path))
    assert clip.audio.shape == (25 * SAMPLES_PER_FRAME,)
    assert clip.audio_offset_samples < -7000
    assert np.abs(clip.audio[-2000:]).max() == 0

