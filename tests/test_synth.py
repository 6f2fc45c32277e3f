"""The embedded synthetic corpus (SPEC 4.5): layouts, determinism, truth, and that dlib sees
what the truth says (faces, blinks, mouth opening, emotions)."""

from __future__ import annotations

import json
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from bench import EMOTIONS
from bench.data.datasets import DatasetError, open_dataset
from bench.data.media import read_media, write_wav
from bench.data.synth import corpus, faces, motion, render

CREMA_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX)$")


# ----------------------------------------------------------------------------- helpers
def _ear(lm: np.ndarray) -> float:
    def one(p: np.ndarray) -> float:
        return (np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (
            2 * np.linalg.norm(p[0] - p[3]))
    return (one(lm[36:42]) + one(lm[42:48])) / 2


def _truths(root: Path) -> list[dict]:
    manifest = json.loads((root / "corpus.json").read_text())
    return [json.loads((root / c["truth"]).read_text()) for c in manifest["clips"]]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Render as the corpus workers do (one thread each); restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _identity(index: int):
    return corpus.identity_and_warper(index)


def _silent_render(index: int, emotion: str, fps: float, n_frames: int, blinks=(),
                   intensity: str = "HI") -> render.Rendered:
    """A face without speech: ``emotion`` held, the given blinks (seconds), no others."""
    ident, warper = _identity(index)
    perf = motion.perform(np.zeros(32_000, np.float32), [], 0, 0, emotion, intensity,
                          np.random.default_rng(index))
    perf.channels["blink"] = motion.blink_curve(list(blinks), perf.channels["blink"].shape[0])
    return render.render(ident, warper, perf, fps, n_frames, (256, 256), (0, 0))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# ----------------------------------------------------------------------------- plan, layouts
def test_plan_names_emotions_and_actor_ids():
    plans = corpus.plan_clips(seed=0, n_speakers=12, clips_per_speaker=6, layout="native")
    assert len({p.clip_id for p in plans}) == 72
    for s in range(12):
        mine = [p for p in plans if p.speaker_index == s]
        assert sorted(p.emotion for p in mine) == sorted(EMOTIONS)
        assert all(p.clip_id == f"spk{s + 1:02d}_{p.sentence}_{p.emotion}_{p.intensity}"
                   for p in mine)
        assert len({p.sentence for p in mine}) == 6  # least-used sentence first
    for p in plans:  # CREMA-D's levels: LO/MD/HI only for IEO, and NEU only at XX
        assert (p.intensity == "XX") == (p.sentence != "IEO" or p.emotion == "NEU")
    assert corpus.actor_ids(5) == [1015, 1020, 1011, 1001, 1002]
    ids = corpus.actor_ids(40)
    assert len(set(ids)) == 40 and not set(ids[3:]) & corpus.TEST_ACTORS
    with pytest.raises(ValueError, match="at most"):
        corpus.plan_clips(seed=0, n_speakers=1, clips_per_speaker=7, layout="native",
                          sentences=["DFA"])


def test_sentences_match_the_crema_d_loader():
    from bench.data import crema_d

    assert corpus.SENTENCES == crema_d.SENTENCES


def test_native_layout_and_dataset(synth_native_root, synth_tiny_params):
    manifest = json.loads((synth_native_root / "corpus.json").read_text())
    assert manifest["format"] == "talkbench-synthetic" and manifest["seed"] == 0
    assert manifest["layout"] == "native" and len(manifest["clips"]) == 8
    scan = open_dataset("synthetic", synth_native_root).scan()
    assert scan.problems == [] and len(scan.clips) == 8
    assert sorted({c.speaker for c in scan.clips}) == ["spk01", "spk02", "spk03", "spk04"]
    assert {c.emotion for c in scan.clips} == set(EMOTIONS)
    for ref in scan.clips:
        assert ref.video == synth_native_root / ref.speaker / f"{ref.clip_id}.mp4"
        assert ref.truth == ref.video.with_suffix(".json") and ref.audio is None
        assert ref.transcript == corpus.SENTENCES[ref.clip_id.split("_")[1]]
        assert ref.clip_id.split("_")[1] in synth_tiny_params["sentences"]
    ref = scan.clips[0]
    truth = json.loads(ref.truth.read_text())
    media = read_media(ref.video)
    assert media.frames.shape == (truth["n_frames"], 256, 256, 3)
    assert media.source_fps == 25
    assert abs(media.audio.shape[0] - truth["n_samples"]) <= 2048  # AAC priming / padding


def test_crema_layout_and_loader(synth_crema_root):
    videos = sorted(p.stem for p in (synth_crema_root / "VideoFlash").iterdir())
    wavs = sorted(p.stem for p in (synth_crema_root / "AudioWAV").iterdir())
    truths = sorted(p.stem for p in (synth_crema_root / "synth_truth").iterdir())
    assert videos == wavs == truths and len(videos) == 8
    assert all(CREMA_NAME.match(v) for v in videos)
    assert {v[:4] for v in videos} == {"1015", "1020", "1011", "1001"}
    with wave.open(str(synth_crema_root / "AudioWAV" / f"{videos[0]}.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
    scan = open_dataset("crema-d", synth_crema_root).scan()
    assert len(scan.clips) == 8
    assert all(c.truth is not None and c.audio is not None for c in scan.clips)
    # the synthetic loader reads the same tree through corpus.json
    syn = open_dataset("synthetic", synth_crema_root).scan()
    assert syn.problems == [] and {c.clip_id for c in syn.clips} == set(videos)


def test_crema_30fps_video_matches_25fps_truth(synth_crema_root):
    stem = sorted(p.stem for p in (synth_crema_root / "VideoFlash").iterdir())[0]
    truth = json.loads((synth_crema_root / "synth_truth" / f"{stem}.json").read_text())
    media = read_media(synth_crema_root / "VideoFlash" / f"{stem}.flv", audio=False)
    assert media.source_fps == pytest.approx(30)
    assert media.frames.shape == (truth["n_frames"], 360, 480, 3)
    assert truth["render"]["n_frames"] == truth["n_frames"] * 6 // 5
    lm_truth = np.array(truth["landmarks"])
    errors, gaps = [], []
    for k in range(truth["n_frames"]):
        lm = faces.detect_landmarks(media.frames[k], 0)
        assert lm is not None, f"no face in frame {k}"
        errors.append(np.abs(lm - lm_truth[k]).mean())
        gaps.append((lm[[65, 66, 67], 1] - lm[[63, 62, 61], 1]).mean())
    assert np.mean(errors) < 3.0
    assert _pearson(np.array(gaps), np.array(truth["mouth_opening"])) > 0.8


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_audio_and_truth(synth_crema_root, synth_native_root, synth_tiny_params,
                                        tmp_path):
    params = {k: synth_tiny_params[k] for k in ("n_speakers", "clips_per_speaker", "sentences")}
    crema_plan = corpus.plan_clips(seed=0, layout="crema-d", **params)[1]  # 1015, clip 1
    plans = corpus.plan_clips(seed=0, layout="native", **params)
    plan = plans[1]
    audio, _ = corpus.clip_audio(crema_plan, 0)
    corpus.clip_audio(plans[4], 0)  # something else in between: eSpeak state must not leak
    again, _ = corpus.clip_audio(plan, 0)  # the native layout has the same audio
    assert np.array_equal(audio, again)
    wav = write_wav(tmp_path / "a.wav", audio)
    written = synth_crema_root / "AudioWAV" / f"{crema_plan.clip_id}.wav"
    assert wav.read_bytes() == written.read_bytes()
    # the truth: a fresh synthesis equals what the session build wrote
    ident, warper = _identity(plan.speaker_index)
    fresh = corpus.synthesize_clip(plan, seed=0, layout="native", identity=ident, warper=warper)
    written = json.loads((synth_native_root / plan.speaker / f"{plan.clip_id}.json").read_text())
    assert written == {"build_key": written["build_key"],
                       **json.loads(corpus.dumps_truth(fresh["truth"]))}
    # another seed: other speech timing, other blinks, other motion
    other = corpus.synthesize_clip(plan, seed=1, layout="native", identity=ident, warper=warper)
    assert not np.array_equal(other["audio"][:1000], fresh["audio"][:1000])
    assert other["truth"]["blinks_s"] != fresh["truth"]["blinks_s"]
    assert other["truth"]["landmarks"] != fresh["truth"]["landmarks"]


def test_rebuild_skips_finished_clips_and_redoes_missing(synth_native_root, synth_tiny_params,
                                                        tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synth_native_root, root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    corpus.build_corpus(root, layout="native", workers=1, progress=False, **synth_tiny_params)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    victim = next(root.glob("spk03/*.json"))
    before = victim.read_text()
    victim.unlink()  # as if the build had been killed while writing this clip
    (root / "spk03" / ".tmp-abc123.mp4").write_bytes(b"partial")
    corpus.build_corpus(root, layout="native", workers=1, progress=False, **synth_tiny_params)
    assert victim.read_text() == before
    changed = {p for p in files if p.exists() and p.stat().st_mtime_ns != stamps[p]}
    assert changed == {victim, victim.with_suffix(".mp4"), root / "corpus.json"}
    assert not list(root.rglob(".tmp-*"))


def test_dataset_reports_missing_files(synth_native_root, tmp_path):
    with pytest.raises(DatasetError, match="no corpus.json"):
        open_dataset("synthetic", tmp_path)
    root = tmp_path / "copy"
    shutil.copytree(synth_native_root, root)
    videos = sorted(root.glob("spk0*/*.mp4"))
    videos[0].unlink()
    videos[1].write_bytes(b"")
    videos[2].with_suffix(".json").unlink()
    scan = open_dataset("synthetic", root).scan()
    # the empty video stays listed (it counts in its split part; preparation fails it)
    assert len(scan.clips) == 7 and len(scan.problems) == 2
    assert any("missing" in p and videos[0].stem in p for p in scan.problems)
    assert any(c.clip_id == videos[1].stem for c in scan.clips)
    assert next(c for c in scan.clips if c.clip_id == videos[2].stem).truth is None


# ----------------------------------------------------------------------------- truth
def test_truth_is_consistent(synth_native_root):
    for truth in _truths(synth_native_root):
        n = truth["n_frames"]
        assert n % 5 == 0 and truth["n_samples"] == 640 * n and truth["fps"] == 25
        assert truth["audio_offset_samples"] == 0
        assert np.array(truth["landmarks"]).shape == (n, 68, 2)
        for key in ("eye_closure", "ear", "mouth_opening", "jaw"):
            assert len(truth[key]) == n
        assert set(truth["au"]) == {"AU10", "AU14", "AU20", "AU25", "AU26"}
        assert all(len(v) == n and set(v) <= {0, 1} for v in truth["au"].values())
        opening = np.array(truth["mouth_opening"])
        assert np.array_equal(np.array(truth["au"]["AU25"]), (opening >= 0.06).astype(int))
        assert np.array_equal(np.array(truth["au"]["AU26"]),
                              (np.array(truth["jaw"]) >= 0.45).astype(int))
        closure = np.array(truth["eye_closure"])
        marked = np.zeros(n, bool)
        for start, end in truth["blinks"]:
            assert 0 <= start <= end < n
            marked[start:end + 1] = True
        assert np.array_equal(marked, closure >= 0.1)
        ear = np.array(truth["ear"])
        if marked.any():
            assert ear[closure > 0.9].max(initial=0) < 0.1 < ear[closure == 0].min()
        times = [ms for ms, _ in truth["phonemes"]]
        assert times == sorted(times) and times[0] >= 1000 * truth["speech_start_s"] - 1
        assert truth["speech_end_s"] * 1000 <= 1000 * n / 25
        assert truth["transcript"] == corpus.SENTENCES[truth["sentence"]]
        assert truth["clip_id"].endswith(f"{truth['sentence']}_{truth['emotion']}_"
                                         f"{truth['intensity']}")
        if truth["emotion"] != "DIS":  # AU10 (upper lip raiser) parts the lips by itself
            assert opening[: int(truth["speech_start_s"] * 25) - 2].max(initial=0) < 0.06
    aus = {k: sum(sum(t["au"][k]) for t in _truths(synth_native_root)) for k in
           ("AU10", "AU20", "AU25", "AU26")}
    assert all(v > 0 for v in aus.values()), aus


def test_blink_schedule_rate_and_durations():
    rng = np.random.default_rng(0)
    long = [motion.blink_schedule(60.0, rng) for _ in range(200)]
    rate = sum(len(b) for b in long) / (60.0 * 200)
    durations = np.array([e - s for b in long for s, e in b])
    assert 0.3 <= rate <= 0.4
    assert durations.min() >= 0.2 and durations.max() <= 0.4
    short = [motion.blink_schedule(2.5, rng) for _ in range(2000)]
    assert 0.25 <= sum(len(b) for b in short) / (2.5 * 2000) <= 0.45
    assert all(0.1 <= s and e <= 2.4 for b in short for s, e in b)


def test_audio_is_speech_at_16k(synth_crema_root):
    for path in sorted((synth_crema_root / "AudioWAV").glob("*.wav"))[:4]:
        truth = json.loads((synth_crema_root / "synth_truth" / f"{path.stem}.json").read_text())
        with wave.open(str(path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
        assert pcm.shape[0] == truth["n_samples"]
        a, b = int(truth["speech_start_s"] * 16000), int(truth["speech_end_s"] * 16000)
        speech, lead = pcm[a:b], pcm[: a - 800]
        assert np.sqrt(np.mean(speech ** 2)) > 0.03
        assert np.sqrt(np.mean(lead ** 2)) < 0.002
        power = np.abs(np.fft.rfft(speech)) ** 2
        freqs = np.fft.rfftfreq(speech.shape[0], 1 / 16000)
        assert power[(freqs > 80) & (freqs < 4000)].sum() / power.sum() > 0.8
        voiced = [ms for ms, p in truth["phonemes"] if p.lstrip("',")[:1] in "aAeEiIoOuUV03@"]
        assert len(voiced) >= 3



def test_emotion_voice_quality_tilts_the_spectrum():
    """Code version 2: the same sentence, voice and prosody with anger's voice quality has
    more energy above 1.5 kHz relative to below than with none, disgust's less (Welch power
    spectra of the eSpeak output), and the timing is unchanged; the same request twice gives
    the same samples."""
    from scipy.signal import welch

    from bench.data.synth.tts import Prosody, synthesize

    def tilt_db(emotion: str) -> tuple[float, int]:
        speech = synthesize("The surface is slick",
                            Prosody(variant="f3", quality=corpus.EMOTION_VOICE[emotion]))
        f, p = welch(speech.audio, 16000, nperseg=512)
        return 10 * np.log10(p[f >= 1500].mean() / p[f < 1500].mean()), speech.audio.shape[0]

    neutral, n = tilt_db("NEU")
    angry, n_angry = tilt_db("ANG")
    disgusted, n_disgusted = tilt_db("DIS")
    assert n == n_angry == n_disgusted
    assert angry > neutral + 3 and disgusted < neutral - 3, (neutral, angry, disgusted)
    assert corpus.EMOTION_VOICE["NEU"] == () and set(corpus.EMOTION_VOICE) == set(EMOTIONS)
    again = synthesize("The surface is slick", Prosody(variant="f3",
                                                       quality=corpus.EMOTION_VOICE["ANG"]))
    first = synthesize("The surface is slick", Prosody(variant="f3",
                                                       quality=corpus.EMOTION_VOICE["ANG"]))
    assert np.array_equal(again.audio, first.audio)

# ----------------------------------------------------------------------------- dlib sees it
def test_dlib_sees_the_face_and_the_blinks():
    for index in (0, 1):
        out = _silent_render(index, "NEU", 25, 30, blinks=[(0.5, 0.8)])
        closure = out.channels["blink"]
        ears = []
        for k in range(30):
            lm = faces.detect_landmarks(out.frames[k], 0)
            assert lm is not None, f"identity {index}: no face in frame {k}"
            assert np.abs(lm - out.landmarks[k]).mean() < 3.0
            ears.append(_ear(lm))
        ears = np.array(ears)
        assert ears[closure == 0].mean() > 0.25
        assert ears[closure >= 0.9].max() < 0.2
        assert ears[closure >= 0.9].mean() < 0.6 * ears[closure == 0].mean()


def test_mouth_opening_tracks_speech_energy(synth_native_root):
    truths = _truths(synth_native_root)
    energy, opening = [], []
    for truth in truths:
        media = read_media(synth_native_root / truth["speaker"] / f"{truth['clip_id']}.mp4")
        n = truth["n_frames"]
        audio = np.zeros(640 * (n + 2))
        audio[:min(media.audio.shape[0], audio.shape[0])] = media.audio[:audio.shape[0]]
        rms = np.sqrt((audio[: 640 * n].reshape(n, 640) ** 2).mean(1))
        energy.append(np.convolve(rms, np.ones(3) / 3, mode="same"))
        opening.append(np.array(truth["mouth_opening"]))
        if truth is truths[0]:  # dlib on the decoded frames agrees with the truth
            gaps = [(lm[[65, 66, 67], 1] - lm[[63, 62, 61], 1]).mean()
                    for lm in (faces.detect_landmarks(f, 0) for f in media.frames)]
            assert _pearson(np.array(gaps), opening[-1]) > 0.8
    assert _pearson(np.concatenate(energy), np.concatenate(opening)) > 0.5


def test_emotion_shows_in_brows_mouth_and_lids():
    """dlib landmarks on held expressions, relative to the same face's neutral."""
    def measures(emotion: str) -> dict:
        out = _silent_render(2, emotion, 2, 3)  # frames at 0.25, 0.75, 1.25 s
        lms = [faces.detect_landmarks(f, 0) for f in out.frames[1:]]
        lm = np.mean(lms, axis=0)
        eyes_y = (lm[36:42, 1].mean() + lm[42:48, 1].mean()) / 2
        e = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
        mouth_mid = lm[[51, 57, 62, 66], 1].mean()
        return {"brows": (eyes_y - lm[17:27, 1].mean()) / e,
                "inner_brows": (eyes_y - lm[[21, 22], 1].mean()) / e,
                "brow_gap": (lm[22, 0] - lm[21, 0]) / e,
                "corners": (mouth_mid - lm[[48, 54], 1].mean()) / e,
                "width": (lm[54, 0] - lm[48, 0]) / e,
                "upper_lip": (lm[51, 1] - lm[33, 1]) / e,
                "ear": np.mean([_ear(x) for x in lms])}
    neu = measures("NEU")
    d = {emo: {k: v - neu[k] for k, v in measures(emo).items()}
         for emo in ("HAP", "SAD", "ANG", "FEA", "DIS")}
    assert d["HAP"]["corners"] > 0.04  # AU12: corners up
    assert d["SAD"]["inner_brows"] > 0.04 and d["SAD"]["corners"] < -0.02  # AU1, AU15
    assert d["ANG"]["brows"] < -0.03 and d["ANG"]["brow_gap"] < -0.02  # AU4
    assert d["FEA"]["brows"] > 0.05 and d["FEA"]["width"] > 0.03  # AU1+2, AU20
    assert d["FEA"]["ear"] > 0.02  # AU5
    assert d["DIS"]["upper_lip"] < -0.03  # AU10


# ----------------------------------------------------------------------------- identities
def test_photo_landmarks_still_match_dlib():
    for name in faces.PHOTOS:
        stored = faces.photo_landmarks(name)
        assert np.abs(faces.photo_landmarks(name, detect=True) - stored).max() <= 2


def _embedding(image: np.ndarray) -> np.ndarray:
    import dlib

    model = dlib.face_recognition_model_v1(
        str(faces.models_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
    detector, predictor = faces.dlib_models()
    box = detector(image, 1)[0]
    return np.array(model.compute_face_descriptor(image, predictor(image, box)))


def test_corpus_speakers_are_distinct_identities(synth_native_root):
    manifest = json.loads((synth_native_root / "corpus.json").read_text())
    first = {}
    for clip in manifest["clips"]:
        first.setdefault(clip["speaker"], clip["video"])
    emb = [_embedding(read_media(synth_native_root / v, audio=False).frames[0])
           for v in first.values()]
    dist = [np.linalg.norm(a - b) for i, a in enumerate(emb) for b in emb[i + 1:]]
    assert min(dist) >= 0.3, np.round(dist, 2)


@pytest.mark.slow
def test_all_twelve_identities_are_distinct():
    emb = [_embedding(_silent_render(i, "NEU", 25, 1).frames[0]) for i in range(12)]
    dist = np.array([[np.linalg.norm(a - b) for b in emb] for a in emb])
    assert dist[~np.eye(12, dtype=bool)].min() >= 0.3, np.round(dist, 2)
