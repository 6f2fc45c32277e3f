"""TCD-TIMIT: the loader on the release layout, prompts, the synthetic TCD-TIMIT tree and the
splits (recommended speaker-independent split, Table 1 of seed 003, seed 004's 49/10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.data import tcd_timit
from bench.data.datasets import DatasetError, open_dataset
from bench.data.splits import PARTS, get_split, list_splits, split_summary
from bench.data.tcd_timit import TcdTimit, format_prompts, parse_prompts

TABLE1_TEST = ("08F", "09F", "15F", "18M", "25M", "28M", "33F", "41M", "55F", "56M")
MISSING_LINE = "of the 62 TCD-TIMIT speakers have clips here"


def _clip_paths(speaker: str, sentences: list[str], camera: str = "straightcam") -> list[str]:
    group = "lipspeakers" if speaker.startswith("Lipspkr") else "volunteers"
    return [f"{group}/{speaker}/Clips/{camera}/{s}.mp4" for s in sentences]


# ---------------------------------------------------------------------------- speaker lists
def test_speaker_lists():
    assert len(tcd_timit.VOLUNTEERS) == 59 == len(set(tcd_timit.VOLUNTEERS))
    assert [int(v[:2]) for v in tcd_timit.VOLUNTEERS] == list(range(1, 60))
    assert len(tcd_timit.RECOMMENDED_TEST) == 17 and len(tcd_timit.RECOMMENDED_TRAIN) == 39
    assert set(TABLE1_TEST) <= set(tcd_timit.RECOMMENDED_TEST)
    assert len(tcd_timit.SPEAKERS) == 62
    assert 59 * 98 + 3 * 377 == tcd_timit.RELEASE_SENTENCES


# ------------------------------------------------------------------- layout (file lists)
def test_release_layout():
    paths = (_clip_paths("01M", ["sa1", "sa2", "si1004", "sx3"])
             + _clip_paths("01M", ["sa1", "sa2"], "30degcam")
             + _clip_paths("Lipspkr3", ["sa1", "si1007"])
             + ["volunteers/01M/Clips/straightcam/sa2.wav",
                "volunteers/02M/Clips/straightcam/sa1.wav",
                "volunteers/01M/Clips/straightcam/Thumbs.db"])
    scan = TcdTimit.from_file_list(paths, "/data/tcd")
    assert [c.clip_id for c in scan.clips] == ["01M_sa1", "01M_sa2", "01M_si1004", "01M_sx3",
                                               "Lipspkr3_sa1", "Lipspkr3_si1007"]
    ref = scan.clips[1]
    assert ref.video == Path("/data/tcd/volunteers/01M/Clips/straightcam/sa2.mp4")
    assert ref.audio == Path("/data/tcd/volunteers/01M/Clips/straightcam/sa2.wav")
    assert scan.clips[0].audio is None and ref.transcript is None and ref.emotion is None
    assert scan.problems[:3] == [
        "volunteers/02M/Clips/straightcam/sa1.wav: audio without a video "
        "volunteers/02M/Clips/straightcam/sa1.mp4; not listed",
        "2 30-degree camera clips (30degcam/) not used (straight camera only)",
        "volunteers/01M/Clips/straightcam/Thumbs.db: unexpected file (not a straight-camera "
        "clip of a TCD-TIMIT speaker); ignored"]
    assert scan.problems[3].startswith("2 " + MISSING_LINE) and len(scan.problems) == 4


def test_odd_folders_and_names():
    paths = ["volunteers/30M/Clips/straightcam/sa1.mp4",  # the release folder is 30F
             "volunteers/30M/Clips/straightcam/sa2.mp4",
             "volunteers/05F/straightcam/sx9.mp4",  # unpacked without Clips/
             "volunteers/05F/Clips/straightcam/sx9.mp4",  # a second copy
             "volunteers/61M/Clips/straightcam/sa1.mp4",
             "volunteers/07F/Clips/straightcam/take2.mp4"]
    scan = TcdTimit.from_file_list(paths)
    assert [(c.speaker, c.clip_id) for c in scan.clips] == [("05F", "05F_sx9"),
                                                            ("30F", "30F_sa1"),
                                                            ("30F", "30F_sa2")]
    assert scan.clips[0].video.as_posix() == "volunteers/05F/Clips/straightcam/sx9.mp4"
    assert scan.problems[:4] == [
        "05F_sx9: second copy volunteers/05F/straightcam/sx9.mp4 ignored (using "
        "volunteers/05F/Clips/straightcam/sx9.mp4)",
        "volunteers/07F/Clips/straightcam/take2.mp4: its name is not a TIMIT sentence id "
        "(sa1, si1004, sx3 ...); ignored",
        "volunteer folder 30M: the release names volunteer 30 30F; its clips are listed as 30F",
        "volunteers/61M/Clips/straightcam/sa1.mp4: it is not below a volunteer (01M ...) or "
        "lipspeaker folder; ignored"]


def test_prompts_give_transcripts(tmp_path):
    text = format_prompts({"sa1": "A made-up first sentence.", "sx3": "Another one here!"})
    assert parse_prompts(text) == {"sa1": "A made-up first sentence.",
                                   "sx3": "Another one here!"}
    assert parse_prompts("; comment (sa1)\nNo id here.\nText (si12)\n") == {"si12": "Text"}
    for rel in _clip_paths("09F", ["sa1", "sx3", "sx4"]) + ["volunteers/09F/Clips/"
                                                             "straightcam/sx4.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "volunteers/09F/Clips/straightcam/sx4.wav").write_bytes(b"")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "PROMPTS.TXT").write_text(text)
    scan = open_dataset("tcd-timit", tmp_path).scan()
    assert [c.transcript for c in scan.clips] == ["A made-up first sentence.",
                                                  "Another one here!", None]
    assert scan.clips[2].audio is None
    assert scan.problems[:2] == [
        "09F_sx4: volunteers/09F/Clips/straightcam/sx4.wav is empty or unreadable; audio from "
        "the video's own track",
        "the prompt file has no text for 1 sentence ids (e.g. sx4); their transcripts are None"]


def test_not_a_tcd_root(tmp_path):
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "bbaf2n.mpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="no .mp4 clip"):
        open_dataset("tcd-timit", tmp_path)


# --------------------------------------------------------------------------------- splits
def test_vougioukas2019_tcd_timit():
    split = get_split("tcd-timit", "vougioukas2019")
    assert split.test == TABLE1_TEST
    assert split.val == ("34M", "36F", "44F", "45F", "49F", "54M", "58F")
    assert set(split.val) | set(split.test) == set(tcd_timit.RECOMMENDED_TEST)
    assert len(split.train) == 42 and set(tcd_timit.RECOMMENDED_TRAIN) < set(split.train)
    assert set(split.train) | set(split.val) | set(split.test) == set(tcd_timit.VOLUNTEERS)


def test_chen2022au_tcd_timit():
    split = get_split("tcd-timit", "chen2022au")
    assert (len(split.train), len(split.val), len(split.test)) == (49, 0, 10)
    assert set(split.train) | set(split.test) == set(tcd_timit.VOLUNTEERS)
    # the draw of default_rng(2022), pinned so a numpy change cannot pass unnoticed
    assert split.test == ("04M", "05F", "11F", "13F", "34M", "36F", "39M", "40F", "53M",
                          "58F")


def test_release_sizes_per_part():
    """98 sentences per volunteer, 377 per lipspeaker: Table 2 of seed 003 has 686 validation
    clips (7 x 98) and 977 test clips (10 x 98 minus 3 the paper lost)."""
    paths = [p for v in tcd_timit.VOLUNTEERS
             for p in _clip_paths(v, [f"sx{k}" for k in range(98)])]
    paths += [p for s in tcd_timit.LIPSPEAKERS for p in _clip_paths(s, [f"si{k}"
                                                                        for k in range(377)])]
    clips = TcdTimit.from_file_list(paths).clips
    assert len(clips) == tcd_timit.RELEASE_SENTENCES
    parts = split_summary(get_split("tcd-timit", "vougioukas2019"), clips)
    assert [parts["parts"][p]["clips"] for p in PARTS] == [42 * 98, 686, 980]
    assert parts["unused_clips"] == 3 * 377  # the lipspeakers
    chen = split_summary(get_split("tcd-timit", "chen2022au"), clips)
    assert [chen["parts"][p]["clips"] for p in PARTS] == [49 * 98, 0, 980]


# --------------------------------------------------------------- synthetic TCD-TIMIT tree
@pytest.fixture(scope="module")
def synth_tcd_root(tmp_path_factory) -> Path:
    """4 speakers x 1 clip in the TCD-TIMIT layout: 08F, 34M, 01M and Lipspkr1."""
    from bench.data.synth import build_corpus

    return build_corpus(tmp_path_factory.mktemp("synth_tcd"), layout="tcd-timit", seed=0,
                        n_speakers=4, clips_per_speaker=1, workers=1, progress=False,
                        sentences=("IEO", "DFA", "TSI"))


def test_synthetic_tcd_tree_loads(synth_tcd_root):
    manifest = json.loads((synth_tcd_root / "corpus.json").read_text())
    scan = open_dataset("tcd-timit", synth_tcd_root).scan()
    assert len(scan.problems) == 1 and scan.problems[0].startswith("4 " + MISSING_LINE)
    assert {c.clip_id for c in scan.clips} == {m["clip_id"] for m in manifest["clips"]}
    assert [c.speaker for c in scan.clips] == ["01M", "08F", "34M", "Lipspkr1"]
    assert (synth_tcd_root / "lipspeakers" / "Lipspkr1" / "Clips" / "straightcam").is_dir()
    for ref in scan.clips:
        truth = json.loads(ref.truth.read_text())
        assert ref.transcript == truth["transcript"] and ref.transcript
        assert ref.video.parent.name == "straightcam" and ref.audio is None
        assert ref.clip_id == f"{ref.speaker}_{ref.video.stem}"


def test_synthetic_tcd_media_at_29_97_fps(synth_tcd_root):
    from bench.data.preprocess import read_clip
    from bench.data.synth import faces

    ref = open_dataset("tcd-timit", synth_tcd_root).scan().clips[0]
    truth = json.loads(ref.truth.read_text())
    clip = read_clip(ref)
    assert clip.meta["source_fps"] == pytest.approx(30000 / 1001)
    assert clip.frames.shape == (truth["n_frames"], 360, 640, 3)  # resampled to 25 fps
    assert abs(clip.audio_offset_samples) < 2048 and np.abs(clip.audio).max() > 0.05
    lm_truth = np.array(truth["landmarks"])
    for k in (0, truth["n_frames"] // 2):
        lm = faces.detect_landmarks(clip.frames[k], 0)
        assert lm is not None
        assert np.linalg.norm(lm - lm_truth[k], axis=1).mean() < 4.0


def test_synthetic_tcd_splits(synth_tcd_root):
    clips = open_dataset("tcd-timit", synth_tcd_root).scan().clips
    for split in list_splits("tcd-timit"):
        parts = split.apply(clips)
        speakers = {p: {c.speaker for c in v} for p, v in parts.items()}
        assert not (speakers["train"] & speakers["test"] or speakers["val"] & speakers["test"]
                    or speakers["train"] & speakers["val"])
        assert speakers["test"] and speakers["test"] <= set(split.test)
        assert "Lipspkr1" not in set().union(*speakers.values())
    voug = get_split("tcd-timit", "vougioukas2019").apply(clips)
    assert [{c.speaker for c in voug[p]} for p in PARTS] == [{"01M"}, {"34M"}, {"08F"}]
