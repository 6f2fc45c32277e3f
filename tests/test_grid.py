"""GRID: grammar, the loader on every release layout, the synthetic GRID tree, the splits and
the real GRID samples (laid out as a GRID tree in tmp_path)."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from bench.data import grid
from bench.data.datasets import DatasetError, open_dataset
from bench.data.grid import Grid, name_from_words, parse_align, transcript_from_name
from bench.data.splits import PARTS, get_split, list_splits, split_summary

SHARED = Path(os.environ.get("TALKBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GRID_SAMPLES = SHARED / "data" / "grid-samples"
README_SENTENCES = {"bbaf2n": "bin blue at f two now", "lbax4n": "lay blue at x four now",
                    "swiz3n": "set white in z three now"}  # as grid-samples/README.md says
TABLE1_TEST = ("s2", "s4", "s11", "s13", "s15", "s18", "s19", "s25", "s31", "s33")
PROBLEM_FREE = "of the 33 GRID talkers with video have clips here"


# ------------------------------------------------------------------------------- grammar
def test_transcripts_from_names():
    for name, sentence in README_SENTENCES.items():
        assert transcript_from_name(name) == sentence
        assert name_from_words(sentence.split()) == name
    assert transcript_from_name("pgwy9s") == "place green with y nine soon"
    assert transcript_from_name("srbz1a") == "set red by z one again"


@pytest.mark.parametrize("bad, where", [
    ("bbaw2n", "position 4"),  # GRID has no letter w
    ("bbaf0n", "position 5"),  # zero is z
    ("xbaf2n", "position 1"),
    ("bbaf2x", "position 6"),
    ("bbaf2", "6-letter"),
    ("BBAF2N", "position 1"),
])
def test_bad_names(bad, where):
    with pytest.raises(ValueError, match=where):
        transcript_from_name(bad)


def test_grammar_sizes():
    assert [len(t) for t in grid.GRAMMAR] == [4, 4, 4, 25, 10, 4]
    assert len(grid.SPEAKERS) == 33 and "s21" not in grid.SPEAKERS


def test_align_parsing():
    text = "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n35500 41000 at\n" \
           "41000 47250 f\n47250 53000 two\n53000 62000 now\n62000 74500 sil\n"
    rows = parse_align(text)
    assert rows[1] == (23750, 29500, "bin") and rows[-1] == (62000, 74500, "sil")
    assert grid.words_of_align(rows) == "bin blue at f two now".split()
    assert grid.format_align(rows) == text
    with pytest.raises(ValueError, match="line 2"):
        parse_align("0 10 sil\nbroken\n")


# ------------------------------------------------------------------- layouts (file lists)
def test_zenodo_layout():
    paths = ["s1/bbaf2n.mpg", "s1/bbaf3s.mpg", "s2/lbax4n.mpg",
             "alignments/s1/bbaf2n.align", "alignments/s2/lbax4n.align",
             "audio_25k/s1/bbaf2n.wav", "audio_25k/s2/lbax4n.wav", "audio_25k/s21/bbaf2n.wav",
             "audio_25k/s21/pgwy9s.wav", "jasagrid.pdf"]
    scan = Grid.from_file_list(paths, "/data/grid")
    assert [c.clip_id for c in scan.clips] == ["s1_bbaf2n", "s1_bbaf3s", "s2_lbax4n"]
    first = scan.clips[0]
    assert first.speaker == "s1" and first.video == Path("/data/grid/s1/bbaf2n.mpg")
    assert first.audio == Path("/data/grid/audio_25k/s1/bbaf2n.wav")
    assert first.transcript == "bin blue at f two now" and first.emotion is None
    assert scan.clips[1].audio is None  # no wav: the video's own MP2 track
    assert scan.problems[:2] == [
        "audio_25k/s21/: 2 audio files without a video; not listed",
        "jasagrid.pdf: unexpected file (not a GRID video, alignment or audio file in a "
        "talker folder); ignored"]
    assert scan.problems[2].startswith("2 " + PROBLEM_FREE) and len(scan.problems) == 3


def test_vcd_and_tar_layouts_and_duplicates():
    paths = ["video/s2.mpg_vcd/s2/lbax4n.mpg", "s3.mpg_vcd/s3/swiz3n.mpg", "s3/swiz3n.mpg",
             "align/s2/align/lbax4n.align", "align/swiz3n.align", "s35/bbaf2n.mpg",
             "s4/bbaw2n.mpg", "bbaf2n.mpg"]
    scan = Grid.from_file_list(paths)
    assert [(c.speaker, c.video.as_posix()) for c in scan.clips] == [
        ("s2", "video/s2.mpg_vcd/s2/lbax4n.mpg"), ("s3", "s3/swiz3n.mpg")]
    assert scan.problems[:4] == [
        "bbaf2n.mpg: it is not inside a talker folder s1-s34; ignored",
        "s3_swiz3n: second copy s3.mpg_vcd/s3/swiz3n.mpg ignored (using s3/swiz3n.mpg)",
        "s35/bbaf2n.mpg: it is not inside a talker folder s1-s34; ignored",
        "s4/bbaw2n.mpg: its name is not a GRID sentence code (e.g. bbaf2n.mpg); ignored"]


def test_alignment_transcripts_and_their_problems(tmp_path):
    def put(rel: str, text: str = "x") -> None:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)

    for rel in ("s1/bbaf2n.mpg", "s1/lbax4n.mpg", "s1/swiz3n.mpg", "s1/pgwy9s.mpg",
                "s2/pgwy9s.mpg", "s1/srbz1a.mpg"):
        put(rel)
    put("alignments/s1/bbaf2n.align",
        "0 100 sil\n100 200 bin\n200 300 blue\n300 350 sp\n350 400 at\n400 500 f\n"
        "500 600 two\n600 700 now\n700 74500 sil\n")
    put("alignments/s1/lbax4n.align", "0 100 sil\n100 200 lay\n200 300 blue\n300 400 at\n"
        "400 500 x\n500 600 five\n600 700 now\n")
    put("alignments/s1/swiz3n.align", "garbage\n")
    put("alignments/s1/srbz1a.align", "")
    put("align/pgwy9s.align", "0 1 place\n")  # no talker folder and two talkers have it
    scan = open_dataset("grid", tmp_path).scan()
    got = {c.clip_id: c.transcript for c in scan.clips}
    assert got == {"s1_bbaf2n": "bin blue at f two now",  # from the alignment, sp dropped
                   "s1_lbax4n": "lay blue at x five now",  # the alignment wins, reported
                   "s1_pgwy9s": "place green with y nine soon",
                   "s1_srbz1a": "set red by z one again",
                   "s1_swiz3n": "set white in z three now",
                   "s2_pgwy9s": "place green with y nine soon"}
    assert scan.problems[:5] == [
        "s1_lbax4n: alignments/s1/lbax4n.align says 'lay blue at x five now' but the name "
        "lbax4n says 'lay blue at x four now'; using the alignment",
        "s1_pgwy9s: align/pgwy9s.align is in no talker folder and 2 talkers have pgwy9s; "
        "transcript from the name",
        "s1_srbz1a: alignments/s1/srbz1a.align is empty (0 bytes); transcript from the name",
        "s1_swiz3n: alignments/s1/swiz3n.align is not a GRID alignment (line 1 is not 'start "
        "end word': 'garbage'); transcript from the name",
        "s2_pgwy9s: align/pgwy9s.align is in no talker folder and 2 talkers have pgwy9s; "
        "transcript from the name"]


def test_not_a_grid_root(tmp_path):
    (tmp_path / "VideoFlash").mkdir()
    with pytest.raises(DatasetError, match="no .mpg video"):
        open_dataset("grid", tmp_path)


# ------------------------------------------------------------------------------ splits
def test_vougioukas2019_grid():
    split = get_split("grid", "vougioukas2019")
    assert split.test == TABLE1_TEST
    assert (len(split.train), len(split.val), len(split.test)) == (16, 7, 10)
    assert set(split.train) | set(split.val) | set(split.test) == set(grid.SPEAKERS)


def test_chen2022au_grid():
    split = get_split("grid", "chen2022au")
    assert (len(split.train), len(split.val), len(split.test)) == (27, 0, 6)
    assert set(split.train) | set(split.test) == set(grid.SPEAKERS)
    # the draw of default_rng(2022), pinned so a numpy change cannot pass unnoticed
    assert split.test == ("s3", "s7", "s8", "s20", "s22", "s24")
    from bench.data.splits import _grid_chen2022au

    assert _grid_chen2022au() == split  # rebuilt from scratch: the same speakers


def test_release_sizes():
    """33 talkers x 1000 names: 16/7/10 and 27/6 talkers' worth of clips."""
    names = [f"{c}{k}{p}{ltr}{d}n" for c in "blps" for k in "bgrw" for p in "abiw"
             for ltr in "abcdefghij" for d in "12345"][:1000]
    clips = Grid.from_file_list([f"{s}/{n}.mpg" for s in grid.SPEAKERS for n in names]).clips
    assert len(clips) == 33_000
    voug = split_summary(get_split("grid", "vougioukas2019"), clips)["parts"]
    assert [voug[p]["clips"] for p in PARTS] == [16_000, 7_000, 10_000]
    chen = split_summary(get_split("grid", "chen2022au"), clips)["parts"]
    assert [chen[p]["clips"] for p in PARTS] == [27_000, 0, 6_000]


# -------------------------------------------------------------------- synthetic GRID tree
@pytest.fixture(scope="module")
def synth_grid_root(tmp_path_factory) -> Path:
    """4 speakers x 1 clip in the GRID layout (s2, s5, s1, s3: every split part has one)."""
    from bench.data.synth import build_corpus

    return build_corpus(tmp_path_factory.mktemp("synth_grid"), layout="grid", seed=0,
                        n_speakers=4, clips_per_speaker=1, workers=1, progress=False)


def test_synthetic_grid_tree_loads(synth_grid_root):
    manifest = json.loads((synth_grid_root / "corpus.json").read_text())
    scan = open_dataset("grid", synth_grid_root).scan()
    assert len(scan.problems) == 1 and PROBLEM_FREE in scan.problems[0]
    assert {c.clip_id for c in scan.clips} == {m["clip_id"] for m in manifest["clips"]}
    assert sorted({c.speaker for c in scan.clips}) == ["s1", "s2", "s3", "s5"]
    for ref in scan.clips:
        truth = json.loads(ref.truth.read_text())
        name = ref.video.stem
        assert ref.video == synth_grid_root / ref.speaker / f"{name}.mpg"
        assert ref.audio == synth_grid_root / "audio_25k" / ref.speaker / f"{name}.wav"
        assert ref.transcript == truth["transcript"] == transcript_from_name(name)
        assert truth["emotion"] == "NEU" and ref.emotion is None
        assert truth["n_frames"] >= 75
        with wave.open(str(ref.audio)) as w:
            assert (w.getframerate(), w.getnchannels()) == (25_000, 1)


def test_synthetic_grid_media_like_the_release(synth_grid_root):
    """MPEG-1 360x288 at 25 fps with an MP2 track that matches the separate wav; dlib finds
    the face where the truth puts it."""
    import av

    from bench.data.media import read_media
    from bench.data.synth import faces

    ref = open_dataset("grid", synth_grid_root).scan().clips[0]
    truth = json.loads(ref.truth.read_text())
    with av.open(str(ref.video)) as container:
        assert container.format.name == "mpeg"
        assert container.streams.video[0].codec_context.name == "mpeg1video"
        assert container.streams.audio[0].codec_context.name == "mp2"
        assert container.streams.audio[0].rate == 44_100
    own = read_media(ref.video)
    wav = read_media(ref.audio, video=False)
    assert own.source_fps == 25 and own.frames.shape == (truth["n_frames"], 288, 360, 3)
    from scipy.signal import correlate

    # the MP2 track lags by the encoder's delay (< 25 ms); past it, it is the wav's signal
    lag = int(np.argmax(correlate(own.audio, wav.audio))) - (wav.audio.shape[0] - 1)
    assert 0 <= lag < 400
    n = min(own.audio.shape[0] - lag, wav.audio.shape[0])
    assert np.corrcoef(own.audio[lag:lag + n], wav.audio[:n])[0, 1] > 0.9
    lm_truth = np.array(truth["landmarks"])
    for k in (0, truth["n_frames"] // 2):
        lm = faces.detect_landmarks(own.frames[k], 0)
        assert lm is not None
        assert np.linalg.norm(lm - lm_truth[k], axis=1).mean() < 4.0


def test_synthetic_grid_splits(synth_grid_root):
    clips = open_dataset("grid", synth_grid_root).scan().clips
    for split in list_splits("grid"):
        parts = split.apply(clips)
        speakers = {p: {c.speaker for c in v} for p, v in parts.items()}
        assert not (speakers["train"] & speakers["test"] or speakers["val"] & speakers["test"]
                    or speakers["train"] & speakers["val"])
        assert speakers["test"] and speakers["test"] <= set(split.test)
        assert speakers["train"] and (speakers["val"] or not split.val)
    voug = get_split("grid", "vougioukas2019").apply(clips)
    assert {c.speaker for c in voug["test"]} == {"s2"} and {c.speaker for c in voug["val"]} \
        == {"s5"}


def test_bench_datasets_lists_grid_splits_with_sizes(synth_grid_root):
    from click.testing import CliRunner

    from bench.cli import main

    result = CliRunner().invoke(main, ["datasets", "--dataset", "grid", "--root",
                                       str(synth_grid_root)])
    assert result.exit_code == 0, result.output
    assert "grid: default split vougioukas2019" in result.output
    assert "vougioukas2019 (v1)" in result.output and "chen2022au (v1)" in result.output
    assert "test 1 clips/1 speakers" in result.output


# ------------------------------------------------------------------- the real GRID samples
@pytest.fixture
def real_grid_tree(tmp_path) -> Path:
    """The three real clips as a GRID tree (symlinks in tmp_path, nothing in the repo): two
    release layouts, and a separate 25 kHz wav for one clip cut from its own track."""
    if not all((GRID_SAMPLES / f"{n}.mpg").is_file() for n in README_SENTENCES):
        pytest.skip(f"GRID samples not available in {GRID_SAMPLES}")
    root = tmp_path / "grid"
    for rel, name in (("s1/bbaf2n.mpg", "bbaf2n"), ("s2.mpg_vcd/s2/lbax4n.mpg", "lbax4n"),
                      ("video/s3/swiz3n.mpg", "swiz3n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(GRID_SAMPLES / f"{name}.mpg")
    return root


@pytest.mark.real_data
def test_real_grid_samples_load_decode_and_align(real_grid_tree, tmp_path):
    from bench.data.preprocess import PrepParams, load_prepared, prepare_all, read_clip

    scan = open_dataset("grid", real_grid_tree).scan()
    assert len(scan.problems) == 1 and scan.problems[0].startswith("3 " + PROBLEM_FREE)
    assert [(c.speaker, c.transcript) for c in scan.clips] == [
        ("s1", README_SENTENCES["bbaf2n"]), ("s2", README_SENTENCES["lbax4n"]),
        ("s3", README_SENTENCES["swiz3n"])]
    assert all(c.audio is None for c in scan.clips)  # no audio_25k here: the MP2 track
    clip = read_clip(scan.clips[0])
    assert clip.frames.shape == (75, 288, 360, 3) and clip.meta["source_fps"] == 25
    assert clip.meta["source_rate"] == 44_100 and np.abs(clip.audio).max() > 0.05
    report = prepare_all(scan.clips, tmp_path / "cache", workers=1, progress=False)
    assert not report.failed, report.failed
    template = PrepParams().template_pixels()
    for ref in scan.clips:
        prepared = load_prepared(ref, tmp_path / "cache")
        assert prepared.frames.shape == (75, 128, 128, 3)
        assert prepared.transcript == README_SENTENCES[ref.video.stem]
        assert prepared.meta["frames_without_face"] == 0
        eyes = [36, 39, 42, 45]
        error = np.linalg.norm(prepared.landmarks[:, eyes] - template[eyes], axis=2)
        assert error.mean() < 2.5, (ref.clip_id, error.mean())
