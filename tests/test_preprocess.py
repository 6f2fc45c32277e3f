"""Preprocessing: landmarks, alignment to the canonical face, the cache, failures, GRID."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import SAMPLES_PER_FRAME
from bench.core.landmarks import (
    detect_faces,
    detect_landmarks,
    detect_landmarks_per_frame,
    fit_landmarks,
)
from bench.data import preprocess as prep
from bench.data.clip import ClipRef
from bench.data.media import write_video, write_wav

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None,
                                reason="dlib is not installed")

# The shared folder beside the repository (or $TALKBENCH_SHARED), holding data/grid-samples/.
SHARED = Path(os.environ.get("TALKBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GRID = SHARED / "data" / "grid-samples"
EYE_CORNERS = [36, 39, 42, 45]
NUM_FRAMES = 20


def astronaut_frames(num: int = NUM_FRAMES, size: int = 224) -> np.ndarray:
    """A still portrait (skimage's astronaut) slowly turned, zoomed and shifted (head-like)."""
    from skimage.data import astronaut
    from skimage.transform import SimilarityTransform, warp

    image = astronaut()
    face_centre = np.array([222.0, 126.0])  # the face's box is (179, 83)-(266, 170)
    frames = []
    for t in range(num):
        phase = np.pi * t / num
        angle = np.deg2rad(4.0 * np.sin(phase))
        scale = 1.0 + 0.04 * np.sin(phase)
        shift = np.array([5.0 * np.sin(phase), -3.0 * np.sin(phase)])
        # output pixel -> image pixel: rotate and scale about the face, then place it at the
        # centre of the output (plus the shift)
        to_centre = SimilarityTransform(translation=-(np.array([size / 2, size / 2]) + shift))
        turn = SimilarityTransform(rotation=angle, scale=scale)
        to_face = SimilarityTransform(translation=face_centre)
        crop_to_image = SimilarityTransform(to_face.params @ turn.params @ to_centre.params)
        frame = warp(image, crop_to_image, output_shape=(size, size), order=1,
                     preserve_range=True)
        frames.append(frame.round().astype(np.uint8))
    return np.stack(frames)


def tone(num_frames: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(num_frames * SAMPLES_PER_FRAME) / 16_000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def ref_for(path: Path | None, clip_id: str, audio: Path | None = None) -> ClipRef:
    return ClipRef(dataset="test", speaker="s1", clip_id=clip_id, video=path, audio=audio,
                   emotion="HAP", intensity="HI", transcript="hello")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Any]:
    """Small test clips (paths), written once for the module, and the face frames."""
    folder = tmp_path_factory.mktemp("media")
    frames = astronaut_frames()
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, frames.shape, dtype=np.uint8)
    gap_short, gap_long = frames.copy(), frames.copy()
    gap_short[8:11] = noise[8:11]  # 3 face-less frames: interpolated
    gap_long[5:13] = noise[5:13]  # 8 face-less frames: too long
    paths = {
        "face": write_video(folder / "face.mp4", frames, tone(NUM_FRAMES)),
        "noise": write_video(folder / "noise.mp4", noise, tone(NUM_FRAMES)),
        "no_audio": write_video(folder / "no_audio.mp4", frames),
        "silent": write_video(folder / "silent.mp4", frames, np.zeros(NUM_FRAMES * 640)),
        "gap_short": write_video(folder / "gap_short.mp4", gap_short, tone(NUM_FRAMES)),
        "gap_long": write_video(folder / "gap_long.mp4", gap_long, tone(NUM_FRAMES)),
        "wav": write_wav(folder / "speech.wav", tone(NUM_FRAMES + 3, 0.5)),
    }
    data = paths["face"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "empty.mp4").write_bytes(b"")
    paths["truncated"] = folder / "truncated.mp4"
    paths["empty"] = folder / "empty.mp4"
    return {**paths, "frames": frames}


# --- landmarks -------------------------------------------------------------------------------


def test_landmarks_tracked_agree_with_per_frame_detection(media):
    frames = media["frames"]
    tracked = detect_landmarks(frames, redetect_every=10)
    reference = detect_landmarks_per_frame(frames)
    assert tracked.shape == (NUM_FRAMES, 68, 2) and tracked.dtype == np.float32
    assert not np.isnan(tracked).any()
    error = np.linalg.norm(tracked - reference, axis=2)
    assert error.mean() < 1.5, error.mean()


def test_landmarks_are_nan_where_the_face_is_gone(media):
    frames = media["frames"].copy()
    frames[12:15] = 128  # blank frames mid-clip
    found = ~np.isnan(detect_landmarks(frames)[:, 0, 0])
    assert found[:12].all() and not found[12:15].any() and found[15:].all()


def test_biggest_confident_face_is_chosen():
    from skimage.data import astronaut

    boxes = detect_faces(astronaut(), detect_max_side=512)
    assert boxes[0] == (179, 83, 266, 170)  # the face, not the round mission badge


# --- alignment -------------------------------------------------------------------------------


def test_alignment_puts_eye_corners_on_the_template(media, tmp_path):
    params = prep.PrepParams()
    clip = prep.load_prepared(ref_for(media["face"], "face"), tmp_path, params)
    assert clip.frames.shape == (NUM_FRAMES, 128, 128, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (NUM_FRAMES * SAMPLES_PER_FRAME,)
    assert clip.landmarks.shape == (NUM_FRAMES, 68, 2)
    assert (clip.emotion, clip.intensity, clip.transcript) == ("HAP", "HI", "hello")
    template = params.template_pixels()
    # landmarks mapped into the crop (the fit is least squares over eyes and nose, and this
    # face is not exactly the mean face: a pixel or two)
    error = np.linalg.norm(clip.landmarks[:, EYE_CORNERS] - template[EYE_CORNERS], axis=2)
    assert error.mean() < 1.5 and error.max() < 2.5, (error.mean(), error.max())
    # landmarks found again in the stored crops (tests the warp itself, after H.264)
    for t in (0, NUM_FRAMES // 2):
        box = detect_faces(clip.frames[t], detect_max_side=128, upsample=1)[0]
        found = fit_landmarks(clip.frames[t], box)
        assert np.linalg.norm(found[EYE_CORNERS] - template[EYE_CORNERS], axis=1).max() < 3.0
    # the moving input becomes a steady face
    frames = media["frames"]
    moving = np.abs(frames[:, 72:152, 72:152].astype(int) - frames[0, 72:152, 72:152]).mean()
    steady = np.abs(clip.frames[:, 24:104, 24:104].astype(int) - clip.frames[0, 24:104, 24:104])
    assert steady.mean() < 0.25 * moving, (steady.mean(), moving)


def test_fill_gaps_interpolates_and_reports_long_gaps():
    marks = np.zeros((10, 68, 2), np.float32)
    marks[:, :, 0] = np.arange(10)[:, None]
    marks[3:5] = np.nan
    marks[0] = np.nan
    filled = prep.fill_gaps(marks, "c1", max_gap=2)
    assert np.allclose(filled[3:5, :, 0], [[3.0], [4.0]])
    assert np.allclose(filled[0], filled[1])  # held before the first face
    message = r"^c1: no face found in 3/10 frames \(longest gap 2\)$"
    with pytest.raises(prep.PrepError, match=message):
        prep.fill_gaps(marks, "c1", max_gap=1)


def test_short_gap_is_filled_long_gap_fails(media, tmp_path):
    entry = prep.prepare_clip(ref_for(media["gap_short"], "gap_short"), tmp_path)
    assert json.loads((entry / "meta.json").read_text())["frames_without_face"] == 3
    with pytest.raises(prep.PrepError, match=r"gap_long: no face found in 8/20 frames "
                                             r"\(longest gap 8\)"):
        prep.prepare_clip(ref_for(media["gap_long"], "gap_long"), tmp_path)


# --- reading ---------------------------------------------------------------------------------


def test_read_clip_uses_separate_audio_and_aligns_it(media):
    clip = prep.read_clip(ref_for(media["face"], "face", audio=media["wav"]))
    assert clip.frames.shape[0] == NUM_FRAMES
    assert clip.audio.shape == (NUM_FRAMES * SAMPLES_PER_FRAME,)
    assert clip.audio_offset_samples == 3 * SAMPLES_PER_FRAME  # the wav is 3 frames longer
    assert np.abs(clip.audio).max() == pytest.approx(0.5, abs=0.01)


# --- cache -----------------------------------------------------------------------------------


def test_cache_is_reused_without_recomputing(media, tmp_path, monkeypatch):
    ref = ref_for(media["face"], "face")
    entry = prep.prepare_clip(ref, tmp_path)
    assert entry == prep.entry_path(tmp_path, prep.cache_key(ref))
    assert entry.parent.name == entry.name[:2]
    assert {p.name for p in entry.iterdir()} == {"frames.mp4", "audio.npy", "landmarks.npy",
                                                  "source.npz", "meta.json"}
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["num_frames"] == NUM_FRAMES and meta["frames_psnr_db"] > 38
    mtime = (entry / "meta.json").stat().st_mtime_ns

    def no_recompute(*args, **kwargs):
        raise AssertionError("align_clip called for a cached clip")

    monkeypatch.setattr(prep, "align_clip", no_recompute)
    assert prep.prepare_clip(ref, tmp_path) == entry
    report = prep.prepare_all([ref], tmp_path, workers=1, progress=False)
    assert report.reused == 1 and report.prepared == [ref] and not report.failed
    assert (entry / "meta.json").stat().st_mtime_ns == mtime


def test_an_entry_is_decoded_once_per_process_and_each_reader_gets_its_own_copy(
        media, tmp_path, monkeypatch):
    """Every judge and model reads the same prepared clips: the second read of an entry does
    not decode it again, gives the same frames, and a reader that writes into its frames
    does not change what the next one reads; a rewritten frames file is decoded anew."""
    ref = ref_for(media["face"], "face")
    entry = prep.prepare_clip(ref, tmp_path)
    decodes = []
    real_read_media = prep.read_media
    monkeypatch.setattr(prep, "read_media",
                        lambda *a, **k: decodes.append(a[0]) or real_read_media(*a, **k))
    first = prep.load_prepared(ref, tmp_path)
    first.frames[:] = 0  # a careless reader
    second = prep.load_prepared(ref, tmp_path)
    assert len(decodes) == 1
    assert second.frames.any() and second.frames.flags.writeable
    np.testing.assert_array_equal(second.frames, real_read_media(entry / "frames.mp4",
                                                                 audio=False).frames)
    stat = (entry / "frames.mp4").stat()
    os.utime(entry / "frames.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    prep.load_prepared(ref, tmp_path)
    assert len(decodes) == 2


def test_cache_key_follows_content_and_params(media, tmp_path):
    ref = ref_for(media["face"], "face")
    key = prep.cache_key(ref)
    assert key == prep.cache_key(ref_for(media["face"], "renamed"))  # content, not names
    assert key != prep.cache_key(ref, prep.PrepParams(size=96))
    assert key != prep.cache_key(ref_for(media["noise"], "face"))


def test_interrupted_write_leaves_no_entry(media, tmp_path, monkeypatch):
    ref = ref_for(media["face"], "face")
    real_write_frames = prep.write_frames

    def write_then_interrupt(path, frames):
        real_write_frames(path, frames)
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-entry

    monkeypatch.setattr(prep, "write_frames", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prep.prepare_clip(ref, tmp_path)
    entry = prep.entry_path(tmp_path, prep.cache_key(ref))
    assert not entry.exists()
    assert not list(tmp_path.glob("*/.tmp-*"))
    monkeypatch.setattr(prep, "write_frames", real_write_frames)
    assert prep.is_complete(prep.prepare_clip(ref, tmp_path))


# --- failures --------------------------------------------------------------------------------


def test_failures_give_one_line_each_and_the_rest_prepare(media, tmp_path):
    refs = [ref_for(media[name], name) for name in
            ("noise", "face", "no_audio", "silent", "truncated", "empty")]
    refs.append(ref_for(tmp_path / "missing.mp4", "missing"))
    report = prep.prepare_all(refs, tmp_path / "cache", workers=1, progress=False)
    assert [r.clip_id for r in report.prepared] == ["face"]
    expected = {
        "noise": "no face found in 20/20 frames (longest gap 20)",
        "no_audio": "no audio track",
        "silent": "audio is silent",
        "truncated": "truncated",
        "empty": "empty file",
        "missing": "cannot read",
    }
    assert set(report.failed) == set(expected)
    for clip_id, words in expected.items():
        reason = report.failed[clip_id]
        assert reason.startswith(f"{clip_id}: ") and words in reason, reason
        assert "\n" not in reason
    assert len(list((tmp_path / "cache").glob("*/*/meta.json"))) == 1


def test_prepare_all_in_worker_processes(media, tmp_path):
    refs = [ref_for(media["face"], "face"), ref_for(media["noise"], "noise")]
    report = prep.prepare_all(refs, tmp_path, workers=2, progress=False)
    assert [r.clip_id for r in report.prepared] == ["face"]
    assert list(report.failed) == ["noise"] and report.reused == 0
    again = prep.prepare_all(refs, tmp_path, workers=2, progress=False)
    assert again.reused == 1


# --- real GRID samples -----------------------------------------------------------------------


@pytest.mark.real_data
@pytest.mark.skipif(not GRID.is_dir(), reason="GRID samples not present")
def test_grid_samples_prepare_aligned_with_audio(tmp_path):
    refs = [ClipRef(dataset="grid", speaker=p.stem, clip_id=p.stem, video=p)
            for p in sorted(GRID.glob("*.mpg"))]
    assert refs
    report = prep.prepare_all(refs, tmp_path, workers=1, progress=False)
    assert not report.failed, report.failed
    template = prep.PrepParams().template_pixels()
    for ref in refs:
        clip = prep.load_prepared(ref, tmp_path)
        assert clip.frames.shape == (75, 128, 128, 3)
        assert np.abs(clip.audio).max() > 0.05  # speech, not silence
        error = np.linalg.norm(clip.landmarks[:, EYE_CORNERS] - template[EYE_CORNERS], axis=2)
        assert error.mean() < 2.5 and error.max() < 5.0, (ref.clip_id, error.max())
        assert clip.meta["source_fps"] == 25 and clip.meta["frames_without_face"] == 0
