"""Build the embedded synthetic talking-face corpus on disk (SPEC 4.5).

(Over 600 lines on purpose: the plan -> synthesise -> write-layout -> manifest pipeline is kept
in one file so that the order of every seeded random draw, which fixes the corpus bit for bit,
reads top to bottom in one place; the faces, motion, speech and warping it draws on are in the
other modules of this package.)

Layouts:

``native``::

    OUT/corpus.json                      written last: version, seed, params, speakers, clips
    OUT/spk01/spk01_IEO_HAP_HI.mp4       256x256, 25 fps, H.264 + AAC 16 kHz
    OUT/spk01/spk01_IEO_HAP_HI.json      what was synthesised (see ``truth`` below)

``crema-d`` (the CREMA-D release layout, for the real loader)::

    OUT/VideoFlash/1015_IEO_HAP_HI.flv   480x360, 30 fps like the release (FLV1 + MP3)
    OUT/AudioWAV/1015_IEO_HAP_HI.wav     16 kHz 16-bit mono
    OUT/synth_truth/1015_IEO_HAP_HI.json truth (a folder the CREMA-D loader ignores)
    OUT/corpus.json                      as above (a top-level file the loader ignores)

``grid`` (the GRID distribution, for the GRID loader)::

    OUT/s2/bbaf2n.mpg                    360x288, 25 fps, MPEG-1 + MP2 44.1 kHz, >= 3 s
    OUT/alignments/s2/bbaf2n.align       word alignment (times in 1/25000 s)
    OUT/audio_25k/s2/bbaf2n.wav          the audio again, 25 kHz 16-bit mono
    OUT/synth_truth/s2_bbaf2n.json       truth (a folder the GRID loader ignores)
    OUT/corpus.json

``tcd-timit`` (the TCD-TIMIT release, for its loader)::

    OUT/volunteers/08F/Clips/straightcam/si3001.mp4   640x360, 29.97 fps, H.264 + AAC
    OUT/lipspeakers/Lipspkr1/Clips/straightcam/...    (the fourth speaker)
    OUT/PROMPTS.TXT                                   sentence texts in TIMIT's format
    OUT/synth_truth/08F_si3001.json                   truth
    OUT/corpus.json

Actor IDs: synthetic speakers 1, 2, 3 become 1015 and 1020 (test actors of the
``vougioukas2019`` split) and 1011 (a ``goyal2023`` test actor); the rest take ascending IDs
from 1001 that are not test actors of either split. GRID and TCD-TIMIT speakers: the first
ones are chosen so that every part of every split of the dataset has a speaker
(``split_first_speakers``: GRID s2 s5 s1 s3, TCD-TIMIT 08F 34M 01M), TCD-TIMIT's fourth is
``Lipspkr1``; the rest follow in the release's order.

GRID and TCD-TIMIT clips are neutral (emotion ``NEU``, level ``XX``; the loaders give no
emotion, as the real datasets have none). A GRID clip says a sentence of GRID's grammar drawn
from ``default_rng([seed, s, 20_000])`` (distinct per speaker), and lasts at least GRID's
75 frames; its ``.align`` spreads the words over the speech in proportion to their length
(approximate times: eSpeak reports phonemes, not words). A TCD-TIMIT clip says one of the
sentences above under the id ``si<3001 + index>`` (outside TIMIT's own ids) listed in
``PROMPTS.TXT``; frames are 640x360 (the release's 1920x1080 scaled by 1/3, so tests stay
light) at the release's 29.97 fps.

Clips. Speaker ``s`` (0-based) gets identity ``faces.identity_spec(s)`` and voice
``VOICES[s % 12]``; the corpus's ``g``-th clip (over all speakers) has emotion
``EMOTIONS[g % 6]`` (so 6 clips per speaker give one clip per emotion); its sentence and level
come from CREMA-D's design (IEO at LO/MD/HI for the five non-neutral emotions and at XX for
NEU, the other eleven sentences at XX), choosing the speaker's least-used sentence first in a
seeded order. The emotion is heard as well as seen: ``EMOTION_PROSODY`` shifts the voice's
rate, pitch, range and volume (scaled by the level), and ``EMOTION_VOICE`` gives each emotion
a voice quality (eSpeak's spectral tilt, formant strength and breath noise), which the
short-time spectrum (MFCCs without energy) carries in every voiced frame, as in real
emotional speech: pressed and bright for anger, dark and lax for disgust (code version 2;
version 1 had only the prosody, so a 280 ms audio window could not tell the expression-driven
AU10 and AU14 of disgust and anger). Everything random in a clip comes from
``numpy.random.default_rng([seed, s, j])`` (``j`` the clip's index within its speaker).
Identities do not depend on the seed, so they stay distinct for every seed.

Timing. Each clip's audio is the eSpeak utterance with 0.25-0.45 s of silence before and
0.3-0.5 s after, plus a -70 dBFS noise floor, padded to a whole number of 25 fps frames that is
a multiple of 5 (so a 30 fps rendering has exactly 6/5 as many frames and the same duration).
Frame ``k`` at ``fps`` shows the face at time ``(k + 0.5) / fps``. The truth is always
indexed by 25 fps frames: for the 30 fps ``crema-d`` videos, truth frame ``k`` describes the
30 fps frame the harness keeps when it resamples to 25 fps (nearest presentation time,
``bench.data.media.resample_times``), so truth and decoded frames match one to one.

Truth JSON (one per clip; top-level keys): ``seed``, ``speaker``, ``clip_id``, ``emotion``,
``intensity``, ``sentence``, ``transcript``, ``identity``, ``voice``, ``fps`` (25),
``n_frames``, ``audio_rate``, ``n_samples``, ``audio_offset_samples`` (0), ``speech_start_s``,
``speech_end_s``, ``phonemes`` ([ms from the clip start, eSpeak phoneme]), ``render`` (fps,
frame size, the rendered frame behind each truth frame), ``landmarks`` (T x 68 x 2, video
pixels), ``eye_closure`` (per frame, 0 open .. 1 shut), ``blinks`` ([[start, end], ...]
inclusive 25 fps frames whose eye closure is >= 0.1), ``blinks_s`` (synthesised start/end
times), ``ear`` (eye aspect ratio of the truth landmarks), ``mouth_opening`` (inner-lip gap
over the eye distance), ``jaw``, ``au`` (0/1 per frame for AU10 AU14 AU20 AU25 AU26),
``au_rule``, ``expression`` (the emotion channels), ``head_pose`` (roll, yaw, pitch in degrees,
translation in px, scale).

Writing is safe: media files are written atomically, the truth JSON after them, and
``corpus.json`` last. A re-run with the same parameters skips clips whose truth (with the same
build key) and media are present; a finished corpus is recognised from its ``corpus.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench import AUDIO_RATE, EMOTIONS, SAMPLES_PER_FRAME, VIDEO_FPS

FORMAT = "talkbench-synthetic"
FORMAT_VERSION = 1
CODE_VERSION = "2"  # bump when the synthesis changes what it writes (2: EMOTION_VOICE)

SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
"""CREMA-D's twelve sentences (Cao et al. 2014)."""

LEVELS = ("LO", "MD", "HI", "XX")
LAYOUTS = ("native", "crema-d", "grid", "tcd-timit")

# eSpeak voice variant, pitch offset, rate offset (wpm) per synthetic speaker
VOICES: tuple[tuple[str, int, int], ...] = (
    ("f3", 0, 0), ("f2", -6, -8), ("f1", 4, 6), ("f4", -3, 10), ("f5", 6, -5),
    ("Annie", -8, 0), ("Andrea", 2, -10), ("belinda", -4, 8), ("Alicia", 8, 4),
    ("anika", -10, -4), ("aunty", 0, 12), ("grandma", 5, -12),
)

# prosody offsets per emotion (eSpeak units: wpm, pitch 0-100, range 0-100, volume 0-200)
EMOTION_PROSODY: dict[str, tuple[int, int, int, int]] = {
    "NEU": (0, 0, 0, 0),
    "ANG": (20, 6, 20, 70),  # faster, louder, wider
    "SAD": (-35, -14, -30, -30),  # slow, low, narrow, quiet
    "HAP": (12, 16, 35, 20),  # high, wide
    "FEA": (30, 20, 10, 10),  # fast, high
    "DIS": (-25, -10, -5, -5),  # slow, low
}
EMOTION_VOICE: dict[str, tuple[str, ...]] = {
    "NEU": (),
    "ANG": ("tone 600 110 1200 170 2000 230 3500 255", "formant 1 100 130 80"),  # pressed
    "SAD": ("tone 600 200 1200 110 2000 70 3500 50", "breath 0 6 8 8 6 4 2 0"),  # dark, breathy
    "HAP": ("tone 600 150 1200 165 2000 165 3500 150", "formant 2 105 110 100"),  # bright
    "FEA": ("tone 600 130 1200 150 2000 190 3500 200", "breath 0 3 5 5 5 3 0 0"),  # thin, breathy
    "DIS": ("tone 600 230 1200 120 2000 60 3500 40", "formant 2 95 80 140"),  # dark, lax
}
"""Voice quality per emotion (eSpeak voice-file lines: spectral tilt, formant strength,
breath noise), so that the emotion is heard in the spectrum as well as in the prosody."""
INTENSITY_SCALE = {"LO": 0.6, "MD": 0.85, "HI": 1.2, "XX": 1.0}

TEST_ACTORS = frozenset({1015, 1020, 1021, 1030, 1033, 1052, 1062, 1081, 1082, 1089, 1011})
FIRST_ACTORS = (1015, 1020, 1011)

NATIVE_SIZE = (256, 256)  # (height, width)
CREMA_SIZE = (360, 480)
CREMA_FPS = 30
CREMA_HEAD_OFFSET = (112, 60)  # (x, y) of the head canvas in the 480x360 frame
GRID_SIZE = (288, 360)
GRID_HEAD_OFFSET = (52, 16)
GRID_MIN_FRAMES = 75  # GRID clips are 3 s
GRID_WAV_RATE = 25_000  # audio_25k
TCD_SIZE = (360, 640)
TCD_FPS = Fraction(30000, 1001)
TCD_HEAD_OFFSET = (192, 52)
TCD_SENTENCE_BASE = 3001  # synthetic TCD-TIMIT sentence ids: si3001 ...


@dataclass(frozen=True)
class ClipPlan:
    """One clip to synthesise."""

    speaker_index: int
    clip_index: int  # within the speaker
    speaker: str  # "spk01" or an actor ID
    clip_id: str
    sentence: str  # CREMA-D sentence code; GRID: the 6-letter name; TCD-TIMIT: si<N>
    emotion: str
    intensity: str
    text: str | None = None  # what is said when ``sentence`` is not a CREMA-D code

    @property
    def transcript(self) -> str:
        return self.text if self.text is not None else SENTENCES[self.sentence]


def actor_ids(n: int) -> list[int]:
    """CREMA-D actor IDs for ``n`` synthetic speakers (see the module notes)."""
    ids = list(FIRST_ACTORS[:n])
    candidate = 1001
    while len(ids) < n:
        if candidate not in TEST_ACTORS:
            ids.append(candidate)
        candidate += 1
    if ids and ids[-1] > 1091:
        raise ValueError(f"{n} speakers do not fit CREMA-D's actor IDs 1001-1091")
    return ids


def split_first_speakers(dataset: str, speakers: Sequence[str]) -> list[str]:
    """Speakers that give every part of every split of ``dataset`` one speaker, in the order
    found: for each split and part (test, val, train) not yet covered, its first speaker."""
    from bench.data.splits import PARTS, list_splits, natural_key

    chosen: list[str] = []
    for split in list_splits(dataset):
        for part in reversed(PARTS):  # test, val, train
            members = set(getattr(split, part))
            if members and not members & set(chosen):
                chosen.append(min((s for s in members if s in speakers), key=natural_key))
    return chosen


def speaker_names(n: int, layout: str) -> list[str]:
    if layout == "crema-d":
        return [str(a) for a in actor_ids(n)]
    if layout in ("grid", "tcd-timit"):
        from bench.data import grid, tcd_timit

        module = grid if layout == "grid" else tcd_timit
        first = split_first_speakers(layout, module.SPEAKERS)
        if layout == "tcd-timit":
            first.append(tcd_timit.LIPSPEAKERS[0])
        names = first + [s for s in module.SPEAKERS if s not in first]
        if n > len(names):
            raise ValueError(f"{layout} has {len(names)} speakers, asked for {n}")
        return names[:n]
    return [f"spk{i + 1:02d}" for i in range(n)]


def _design(sentences: Sequence[str]) -> list[tuple[str, str, str]]:
    """CREMA-D's (sentence, emotion, level) combinations restricted to ``sentences``."""
    out = []
    for sentence in sentences:
        for emotion in EMOTIONS:
            if sentence == "IEO":
                levels = ("XX",) if emotion == "NEU" else ("LO", "MD", "HI")
            else:
                levels = ("XX",)
            out.extend((sentence, emotion, level) for level in levels)
    return out


def plan_clips(*, seed: int, n_speakers: int, clips_per_speaker: int, layout: str,
               sentences: Sequence[str] | None = None) -> list[ClipPlan]:
    """The corpus's clips in order (deterministic from the arguments)."""
    codes = list(sentences) if sentences else list(SENTENCES)
    unknown = [c for c in codes if c not in SENTENCES]
    if unknown:
        raise ValueError(f"unknown sentence codes {unknown}; known: {' '.join(SENTENCES)}")
    if layout == "grid":
        return _plan_grid(seed, n_speakers, clips_per_speaker)
    if layout == "tcd-timit":
        return _plan_tcd(seed, n_speakers, clips_per_speaker, codes)
    design = _design(codes)
    if clips_per_speaker > len(design):
        raise ValueError(f"at most {len(design)} distinct clips per speaker with sentences "
                         f"{' '.join(codes)} (asked for {clips_per_speaker})")
    names = speaker_names(n_speakers, layout)
    plans = []
    g = 0
    for s, name in enumerate(names):
        rng = np.random.default_rng([seed, s, 10_000])
        order = {code: rank for rank, code in enumerate(rng.permutation(codes))}
        level_pick = rng.permutation(3)
        used: set[tuple[str, str, str]] = set()
        uses = dict.fromkeys(codes, 0)
        for j in range(clips_per_speaker):
            choice = None
            for shift in range(len(EMOTIONS)):
                emotion = EMOTIONS[(g + shift) % len(EMOTIONS)]
                free = [c for c in design if c[1] == emotion and c not in used]
                if free:
                    choice = min(free, key=lambda c: (uses[c[0]], order[c[0]],
                                                      level_pick[LEVELS.index(c[2])]
                                                      if c[2] != "XX" else 0))
                    break
            assert choice is not None
            used.add(choice)
            uses[choice[0]] += 1
            sentence, emotion, level = choice
            plans.append(ClipPlan(s, j, name, f"{name}_{sentence}_{emotion}_{level}", sentence,
                                  emotion, level))
            g += 1
    return plans


def _plan_grid(seed: int, n_speakers: int, clips_per_speaker: int) -> list[ClipPlan]:
    """Neutral clips saying GRID sentences, distinct within a speaker."""
    from bench.data import grid

    plans = []
    for s, name in enumerate(speaker_names(n_speakers, "grid")):
        rng = np.random.default_rng([seed, s, 20_000])
        codes: list[str] = []
        while len(codes) < clips_per_speaker:
            code = "".join(str(rng.choice(sorted(table))) for table in grid.GRAMMAR)
            if code not in codes:
                codes.append(code)
        plans += [ClipPlan(s, j, name, f"{name}_{code}", code, "NEU", "XX",
                           grid.transcript_from_name(code)) for j, code in enumerate(codes)]
    return plans


def tcd_sentence_id(code: str) -> str:
    """The synthetic TCD-TIMIT sentence id of a CREMA-D sentence code (``IEO`` -> si3001)."""
    return f"si{TCD_SENTENCE_BASE + list(SENTENCES).index(code)}"


def _plan_tcd(seed: int, n_speakers: int, clips_per_speaker: int,
              codes: list[str]) -> list[ClipPlan]:
    """Neutral clips, each speaker saying ``clips_per_speaker`` distinct sentences: speaker
    ``s``'s clip ``j`` says sentence ``(s * clips_per_speaker + j) % n`` of the sentences in
    the order of ``default_rng([seed, 10_000]).permutation``."""
    if clips_per_speaker > len(codes):
        raise ValueError(f"at most {len(codes)} distinct clips per speaker with sentences "
                         f"{' '.join(codes)} (asked for {clips_per_speaker})")
    plans = []
    order = [str(c) for c in np.random.default_rng([seed, 10_000]).permutation(codes)]
    for s, name in enumerate(speaker_names(n_speakers, "tcd-timit")):
        for j in range(clips_per_speaker):
            code = order[(s * clips_per_speaker + j) % len(order)]
            sid = tcd_sentence_id(code)
            plans.append(ClipPlan(s, j, name, f"{name}_{sid}", sid, "NEU", "XX",
                                  SENTENCES[code]))
    return plans


def prosody_for(plan: ClipPlan, rng: np.random.Generator):
    """eSpeak prosody of a clip: the speaker's voice, the emotion's offsets, a little jitter."""
    from bench.data.synth.tts import Prosody

    variant, pitch_off, rate_off = VOICES[plan.speaker_index % len(VOICES)]
    cycle = plan.speaker_index // len(VOICES)  # further speakers: same variants, shifted
    pitch_off += (8 if cycle % 2 else -8) * ((cycle + 1) // 2)
    d_rate, d_pitch, d_range, d_vol = EMOTION_PROSODY[plan.emotion]
    k = INTENSITY_SCALE[plan.intensity]
    return Prosody(
        variant=variant, language="en-us",
        rate=int(np.clip(160 + rate_off + k * d_rate + rng.integers(-5, 6), 90, 350)),
        pitch=int(np.clip(50 + pitch_off + k * d_pitch + rng.integers(-3, 4), 0, 99)),
        range=int(np.clip(50 + k * d_range + rng.integers(-3, 4), 0, 99)),
        volume=int(np.clip(100 + k * d_vol, 20, 200)),
        quality=EMOTION_VOICE[plan.emotion],
    )


def clip_audio(plan: ClipPlan, seed: int, min_frames: int = 0) -> tuple[np.ndarray, dict]:
    """The clip's 16 kHz audio (a whole number of 25 fps frames, multiple of 5, at least
    ``min_frames``) and timing."""
    from bench.data.synth.tts import synthesize

    rng = np.random.default_rng([seed, plan.speaker_index, plan.clip_index])
    prosody = prosody_for(plan, rng)
    speech = synthesize(plan.transcript, prosody)
    lead = float(rng.uniform(0.25, 0.45))
    tail = float(rng.uniform(0.3, 0.5))
    lead_n = int(round(lead * AUDIO_RATE))
    body = np.concatenate([np.zeros(lead_n, np.float32), speech.audio,
                           np.zeros(int(round(tail * AUDIO_RATE)), np.float32)])
    n_frames = -(-body.shape[0] // SAMPLES_PER_FRAME)
    n_frames = max(-(-n_frames // 5) * 5, min_frames)
    audio = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float32)
    audio[:body.shape[0]] = body
    audio += (3e-4 * rng.standard_normal(audio.shape[0])).astype(np.float32)
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    info = {
        "rng": rng, "prosody": prosody, "phonemes": speech.phonemes,
        "speech_ms": speech.duration_ms, "lead_ms": int(round(1000 * lead_n / AUDIO_RATE)),
        "n_frames": n_frames,
    }
    return audio, info


def _eye_aspect_ratio(lm: np.ndarray) -> np.ndarray:
    """Mean EAR of both eyes, (T,), Soukupova and Cech 2016."""
    def one(p: np.ndarray) -> np.ndarray:
        v = (np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4],
                                                                          axis=-1))
        return v / (2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1))
    return (one(lm[:, 36:42]) + one(lm[:, 42:48])) / 2


def blink_intervals(closure: np.ndarray, threshold: float = 0.1) -> list[list[int]]:
    """Inclusive [start, end] frame runs where ``closure >= threshold``."""
    on = np.concatenate([[False], closure >= threshold, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _r(x: np.ndarray, nd: int = 4) -> list:
    return np.round(np.asarray(x, np.float64), nd).tolist()


AU_RULE = ("per frame from the synthesis channels: AU10 upper_lip >= 0.5; AU14 dimple >= 0.5; "
           "AU20 spread + stretch >= 0.5; AU25 inner-lip gap >= 0.06 eye distances; "
           "AU26 jaw >= 0.45")


def synthesize_clip(plan: ClipPlan, *, seed: int, layout: str, identity, warper) -> dict:
    """Audio, frames and truth of one clip (nothing written)."""
    from bench.data.media import resample_times
    from bench.data.synth import motion, render

    audio, info = clip_audio(plan, seed, GRID_MIN_FRAMES if layout == "grid" else 0)
    n25 = info["n_frames"]
    perf = motion.perform(audio, info["phonemes"], info["speech_ms"], info["lead_ms"],
                          plan.emotion, plan.intensity, info["rng"])
    if layout in ("crema-d", "tcd-timit"):
        fps = CREMA_FPS if layout == "crema-d" else TCD_FPS
        n_render = int(round(n25 * fps / VIDEO_FPS))
        size, offset = ((CREMA_SIZE, CREMA_HEAD_OFFSET) if layout == "crema-d"
                        else (TCD_SIZE, TCD_HEAD_OFFSET))
        keep = resample_times(np.arange(n_render) / float(fps), VIDEO_FPS, 1.0 / float(fps))
        if keep.shape[0] != n25:
            raise AssertionError(f"{float(fps):.3f}->25 fps mapping gives {keep.shape[0]} "
                                 f"frames, not {n25}")
    else:
        size, offset = ((GRID_SIZE, GRID_HEAD_OFFSET) if layout == "grid"
                        else (NATIVE_SIZE, (0, 0)))
        fps, n_render = VIDEO_FPS, n25
        keep = np.arange(n25)
    out = render.render(identity, warper, perf, float(fps), n_render, size, offset,
                        seed=plan.speaker_index)
    ch = {k: v[keep] for k, v in out.channels.items()}
    lm = out.landmarks[keep]
    gap = out.inner_gap[keep]
    aus = motion.au_states(ch, gap, out.eye_distance)
    closure = ch["blink"]
    lead_s = info["lead_ms"] / 1000
    truth = {
        "format": f"{FORMAT}-truth", "version": FORMAT_VERSION, "code_version": CODE_VERSION,
        "seed": seed, "speaker": plan.speaker, "speaker_index": plan.speaker_index,
        "clip_index": plan.clip_index, "clip_id": plan.clip_id, "emotion": plan.emotion,
        "intensity": plan.intensity, "sentence": plan.sentence, "transcript": plan.transcript,
        "identity": asdict(identity.spec), "voice": asdict(info["prosody"]),
        "fps": VIDEO_FPS, "n_frames": n25, "audio_rate": AUDIO_RATE,
        "n_samples": int(audio.shape[0]), "audio_offset_samples": 0,
        "speech_start_s": lead_s, "speech_end_s": lead_s + info["speech_ms"] / 1000,
        "phonemes": [[int(ms + info["lead_ms"]), name] for ms, name in info["phonemes"]],
        "render": {"fps": fps if isinstance(fps, int) else round(float(fps), 5),
                   "n_frames": n_render, "width": size[1], "height": size[0],
                   "frame_time": "(i + 0.5) / fps", "source_frame": keep.tolist()},
        "landmarks": _r(lm, 2),
        "eye_closure": _r(closure, 3),
        "blinks": blink_intervals(closure),
        "blinks_s": [[round(a, 4), round(b, 4)] for a, b in perf.blinks_s],
        "ear": _r(_eye_aspect_ratio(lm), 3),
        "mouth_opening": _r(np.maximum(gap, 0) / out.eye_distance, 4),
        "jaw": _r(ch["jaw"], 3),
        "au": {k: v.tolist() for k, v in aus.items()},
        "au_rule": AU_RULE,
        "expression": {k: _r(ch[k], 3) for k in
                       ("smile", "cheek", "corner_down", "upper_lip", "dimple", "stretch",
                        "brow_inner_up", "brow_outer_up", "brow_lower", "lid_raise",
                        "lid_tight", "spread", "round", "closure")},
        "head_pose": {"roll_deg": _r(ch["roll_deg"], 3), "yaw_deg": [0.0] * n25,
                      "pitch_deg": [0.0] * n25, "tx_px": _r(ch["tx"], 3),
                      "ty_px": _r(ch["ty"], 3), "scale": _r(ch["scale"], 4)},
    }
    result = {"audio": audio, "frames": out.frames, "fps": fps, "truth": truth}
    if layout == "grid":
        result["align"] = grid_alignment(plan.transcript, truth["speech_start_s"],
                                         truth["speech_end_s"], n25)
    return result


def grid_alignment(text: str, start_s: float, end_s: float, n_frames: int) -> str:
    """A GRID ``.align`` for a synthetic clip: ``sil`` around the speech, the words spread
    over it in proportion to their letters (times in 1/25000 s, GRID's unit)."""
    from bench.data.grid import format_align

    words = text.split()
    unit = 25_000
    start, end = int(round(start_s * unit)), int(round(end_s * unit))
    bounds = start + np.round(np.cumsum([0] + [len(w) for w in words])
                              / sum(len(w) for w in words) * (end - start)).astype(int)
    rows = [(0, start, "sil")]
    rows += [(int(a), int(b), w) for a, b, w in zip(bounds[:-1], bounds[1:], words, strict=True)]
    rows.append((end, max(end, n_frames * 1000), "sil"))
    return format_align(rows)


def dumps_truth(truth: dict) -> str:
    """Compact, deterministic JSON: one top-level key per line."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in truth.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _paths(out: Path, layout: str, plan: ClipPlan) -> dict[str, Path]:
    if layout == "grid":
        return {"video": out / plan.speaker / f"{plan.sentence}.mpg",
                "audio": out / "audio_25k" / plan.speaker / f"{plan.sentence}.wav",
                "align": out / "alignments" / plan.speaker / f"{plan.sentence}.align",
                "truth": out / "synth_truth" / f"{plan.clip_id}.json"}
    if layout == "tcd-timit":
        group = "lipspeakers" if plan.speaker.startswith("Lipspkr") else "volunteers"
        return {"video": out / group / plan.speaker / "Clips" / "straightcam"
                / f"{plan.sentence}.mp4",
                "truth": out / "synth_truth" / f"{plan.clip_id}.json"}
    if layout == "crema-d":
        return {"video": out / "VideoFlash" / f"{plan.clip_id}.flv",
                "audio": out / "AudioWAV" / f"{plan.clip_id}.wav",
                "truth": out / "synth_truth" / f"{plan.clip_id}.json"}
    return {"video": out / plan.speaker / f"{plan.clip_id}.mp4",
            "truth": out / plan.speaker / f"{plan.clip_id}.json"}


def _complete(paths: dict[str, Path], build_key: str) -> bool:
    for path in paths.values():
        if not path.is_file() or path.stat().st_size == 0:
            return False
    try:
        with open(paths["truth"], encoding="utf-8") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return f'"build_key": "{build_key}"' in head


@functools.lru_cache(maxsize=4)
def identity_and_warper(speaker_index: int) -> tuple:
    """The rest face of a speaker and its warp basis (the last few kept per process)."""
    from bench.data.synth import faces
    from bench.data.synth.warp import FaceWarper

    identity = faces.make_identity(faces.identity_spec(speaker_index))
    warper = FaceWarper(identity.landmarks, identity.helpers, identity.helper_mix, faces.CANVAS)
    return identity, warper


def _speaker_task(args: tuple) -> list[str]:
    """Worker: synthesise (and write) every unfinished clip of one speaker."""
    out, layout, seed, plans, build_key = args
    from bench.data.media import write_video, write_wav
    from bench.fileio import atomic_write_text

    done = []
    for plan in plans:
        paths = _paths(out, layout, plan)
        if not _complete(paths, build_key):
            identity, warper = identity_and_warper(plan.speaker_index)
            clip = synthesize_clip(plan, seed=seed, layout=layout, identity=identity,
                                   warper=warper)
            truth = {"build_key": build_key, **clip["truth"]}
            write_video(paths["video"], clip["frames"], clip["audio"], fps=clip["fps"])
            if "audio" in paths and layout == "grid":
                from scipy.signal import resample_poly

                wav = resample_poly(clip["audio"].astype(np.float64), GRID_WAV_RATE // 1000,
                                    AUDIO_RATE // 1000)
                write_wav(paths["audio"], wav, rate=GRID_WAV_RATE)
            elif "audio" in paths:
                write_wav(paths["audio"], clip["audio"])
            if "align" in paths:
                atomic_write_text(paths["align"], clip["align"])
            atomic_write_text(paths["truth"], dumps_truth(truth))
        done.append(plan.clip_id)
    return done


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _build_key(params: dict) -> str:
    text = json.dumps({"code": CODE_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_corpus(out: str | Path, *, layout: str = "native", seed: int = 0,
                 n_speakers: int = 12, clips_per_speaker: int = 6, workers: int | None = None,
                 progress: bool = True, sentences: Sequence[str] | None = None) -> Path:
    """Write the synthetic corpus to ``out`` and return ``out``.

    ``layout``: one of ``LAYOUTS``. ``sentences`` restricts the CREMA-D sentence codes used
    (default: all twelve; GRID clips say sentences of GRID's grammar instead). ``workers``:
    processes (default ``os.cpu_count()``; 1 runs in this process). Finished clips of an
    earlier run with the same parameters are kept; files of clips that an earlier
    ``corpus.json`` listed but this plan does not are removed.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if n_speakers < 1 or clips_per_speaker < 1:
        raise ValueError("n_speakers and clips_per_speaker must be at least 1")
    out = Path(out)
    params = {"layout": layout, "seed": int(seed), "n_speakers": int(n_speakers),
              "clips_per_speaker": int(clips_per_speaker),
              "sentences": list(sentences) if sentences else None}
    build_key = _build_key(params)
    manifest_path = out / "corpus.json"
    old = _read_manifest(manifest_path)
    plans = plan_clips(seed=seed, n_speakers=n_speakers, clips_per_speaker=clips_per_speaker,
                       layout=layout, sentences=sentences)
    if old is not None and old.get("build_key") == build_key and _all_present(out, old):
        return out
    out.mkdir(parents=True, exist_ok=True)
    _remove_temp_files(out)
    if old is not None:
        _remove_stale(out, old, {p.clip_id for p in plans})
        manifest_path.unlink(missing_ok=True)

    by_speaker: dict[int, list[ClipPlan]] = {}
    for plan in plans:
        by_speaker.setdefault(plan.speaker_index, []).append(plan)
    tasks = [(out, layout, int(seed), group, build_key) for group in by_speaker.values()]
    n_workers = min(workers if workers is not None else (os.cpu_count() or 1), len(tasks))
    _run_tasks(tasks, n_workers, len(plans), progress)

    manifest = _manifest(out, layout, params, build_key, plans)
    from bench.fileio import atomic_write_text

    if layout == "tcd-timit":
        from bench.data.tcd_timit import format_prompts

        prompts = {p.sentence: p.transcript for p in sorted(plans, key=lambda p: p.sentence)}
        atomic_write_text(out / "PROMPTS.TXT", format_prompts(prompts))
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return out


def _run_tasks(tasks: list[tuple], n_workers: int, total: int, progress: bool) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, desc="synthetic corpus", unit="clip", disable=not progress,
               leave=False)
    try:
        if n_workers <= 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for task in tasks:
                    bar.update(len(_speaker_task(task)))
            finally:
                torch.set_num_threads(threads)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_speaker_task, task) for task in tasks]
            for future in as_completed(futures):
                bar.update(len(future.result()))
    finally:
        bar.close()


def _manifest(out: Path, layout: str, params: dict, build_key: str,
              plans: list[ClipPlan]) -> dict:
    from bench.data.synth import faces

    speakers = []
    for s, name in enumerate(speaker_names(params["n_speakers"], layout)):
        variant = VOICES[s % len(VOICES)][0]
        speakers.append({"speaker": name, "identity": asdict(faces.identity_spec(s)),
                         "voice": variant})
    clips = []
    for plan in plans:
        paths = _paths(out, layout, plan)
        entry = {"clip_id": plan.clip_id, "speaker": plan.speaker, "emotion": plan.emotion,
                 "intensity": plan.intensity, "sentence": plan.sentence,
                 "transcript": plan.transcript,
                 "video": paths["video"].relative_to(out).as_posix(),
                 "audio": paths["audio"].relative_to(out).as_posix() if "audio" in paths
                 else None,
                 "truth": paths["truth"].relative_to(out).as_posix()}
        if "align" in paths:
            entry["align"] = paths["align"].relative_to(out).as_posix()
        clips.append(entry)
    return {"format": FORMAT, "version": FORMAT_VERSION, "code_version": CODE_VERSION,
            "build_key": build_key, "seed": params["seed"], "layout": layout,
            "params": {**params, "fps": _LAYOUT_FPS[layout],
                       "truth_fps": VIDEO_FPS, "audio_rate": AUDIO_RATE,
                       "frame_size": list(_LAYOUT_SIZE[layout])},
            "speakers": speakers, "clips": clips}


_LAYOUT_FPS = {"native": VIDEO_FPS, "crema-d": CREMA_FPS, "grid": VIDEO_FPS,
               "tcd-timit": round(float(TCD_FPS), 5)}
_LAYOUT_SIZE = {"native": NATIVE_SIZE, "crema-d": CREMA_SIZE, "grid": GRID_SIZE,
                "tcd-timit": TCD_SIZE}
_CLIP_FILES = ("video", "audio", "align", "truth")


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _all_present(out: Path, manifest: dict) -> bool:
    for clip in manifest.get("clips", []):
        for key in _CLIP_FILES:
            rel = clip.get(key)
            if rel and not ((out / rel).is_file() and (out / rel).stat().st_size > 0):
                return False
    return True


def _remove_temp_files(out: Path) -> None:
    """Delete half-written ``.tmp-*`` files an interrupted (killed) build left behind."""
    for path in out.rglob(".tmp-*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _remove_stale(out: Path, manifest: dict, keep: set[str]) -> None:
    """Delete the files of clips an earlier build listed that this plan does not have."""
    for clip in manifest.get("clips", []):
        if clip.get("clip_id") in keep:
            continue
        for key in _CLIP_FILES:
            rel = clip.get(key)
            if rel and ".." not in Path(rel).parts:
                (out / rel).unlink(missing_ok=True)
