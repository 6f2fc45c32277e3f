"""CREMA-D loader (Cao et al. 2014; SPEC 4.2).

Reads a CREMA-D root exactly as the release unpacks::

    ROOT/VideoFlash/1001_DFA_ANG_XX.flv   480x360, 30 fps, the clip's video
    ROOT/AudioWAV/1001_DFA_ANG_XX.wav     16 kHz mono, the clip's audio
    ROOT/AudioMP3/1001_DFA_ANG_XX.mp3     the same audio as MP3 (used only as a fallback)

Names are ``{ActorID}_{Sentence}_{Emotion}_{Level}``: actor 1001-1091, one of 12 sentence
codes, emotion in ANG DIS FEA HAP NEU SAD, level in LO MD HI XX. Other folders and files at
the top of the root (``synth_truth/``, the CSV tables, ``processedResults/`` ...) are ignored;
unexpected names inside ``VideoFlash/`` and ``AudioWAV/`` are reported.

What the scan decides, one problem line each (``Scan.problems``):

- a video is the clip: every well-named, non-empty ``.flv`` is listed;
- a video whose ``.wav`` is missing or empty takes its audio from ``AudioMP3/`` when that file
  is there, else from the video's own audio track (``ClipRef.audio = None``);
- an empty (0-byte) video is listed like any other: it is a clip of the release, so the split
  counts it (a test clip stays in the test count) and preparation fails it with the reason;
- a ``.wav`` without its video is not listed (there is no face to score);
- a name that does not parse is ignored.

``CremaD.from_file_list`` applies the same rules to a list of relative paths without reading
the disk, so the real 7,442-clip list can be checked without the media.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench import EMOTIONS
from bench.data.clip import ClipRef
from bench.data.datasets import Dataset, DatasetError, Scan

ACTORS: tuple[str, ...] = tuple(str(a) for a in range(1001, 1092))
"""The 91 actor IDs of the release, as strings ("1001" ... "1091")."""

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
"""The 12 sentence codes and what the actors say."""

LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX")
"""Emotion intensity: low, medium, high, unspecified."""

VIDEO_DIR, WAV_DIR, MP3_DIR, TRUTH_DIR = "VideoFlash", "AudioWAV", "AudioMP3", "synth_truth"

# The release is a full design minus 20 clips that were never published:
# every actor says IEO at LO/MD/HI for the five non-neutral emotions plus NEU at XX (16 clips)
# and the other 11 sentences once per emotion at XX (66 clips), 82 clips per actor.
_NOT_IN_RELEASE: frozenset[str] = frozenset(
    ["1002_TIE_NEU_XX", "1076_ITS_NEU_XX"]
    + [f"{actor}_{sentence}_{emotion}_XX"
       for actor, sentence in (("1008", "WSI"), ("1009", "MTI"), ("1019", "ITH"))
       for emotion in EMOTIONS]
)
RELEASE_CLIP_COUNT = 7442

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


@dataclass(frozen=True)
class CremaDName:
    """The four fields of a CREMA-D clip name."""

    actor: str
    sentence: str
    emotion: str
    level: str

    @property
    def clip_id(self) -> str:
        return f"{self.actor}_{self.sentence}_{self.emotion}_{self.level}"

    @property
    def transcript(self) -> str:
        return SENTENCES[self.sentence]


def parse_crema_d_name(name: str) -> CremaDName:
    """Parse ``"1001_DFA_ANG_XX"`` (a clip id, without extension); ValueError says what is wrong."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not ActorID_Sentence_Emotion_Level (e.g. 1001_DFA_ANG_XX)")
    actor, sentence, emotion, level = match.groups()
    if actor not in ACTORS:
        raise ValueError(f"{name!r}: actor {actor} is outside 1001-1091")
    if sentence not in SENTENCES:
        raise ValueError(f"{name!r}: unknown sentence code {sentence}")
    if emotion not in EMOTIONS:
        raise ValueError(f"{name!r}: unknown emotion code {emotion}")
    if level not in LEVELS:
        raise ValueError(f"{name!r}: unknown level code {level}")
    return CremaDName(actor, sentence, emotion, level)


def release_clip_ids() -> list[str]:
    """The 7,442 clip ids of the public release, sorted (computed from the design, no I/O)."""
    ids = []
    for actor in ACTORS:
        for sentence in SENTENCES:
            for emotion in EMOTIONS:
                if sentence == "IEO" and emotion != "NEU":
                    levels = ("LO", "MD", "HI")
                else:
                    levels = ("XX",)
                ids += [f"{actor}_{sentence}_{emotion}_{level}" for level in levels]
    return sorted(set(ids) - _NOT_IN_RELEASE)


# A listing: folder name -> {file name: size in bytes, or None when unknown}.
# A folder that is absent from the root is absent from the listing.
Listing = dict[str, dict[str, int | None]]


class CremaD(Dataset):
    """CREMA-D as released: ``VideoFlash/*.flv`` + ``AudioWAV/*.wav`` (``AudioMP3`` fallback)."""

    name = "crema-d"
    default_split = "vougioukas2019"
    description = "CREMA-D: 91 actors, 12 sentences, 6 emotions, 4 levels, 7,442 clips"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        if not (self.root / VIDEO_DIR).is_dir():
            raise DatasetError(f"crema-d: {self.root} does not look like a CREMA-D release: "
                               f"no {VIDEO_DIR}/ folder under {self.root}")

    def scan(self) -> Scan:
        """List every clip under the root (no media decoded); see the module docstring."""
        listing: Listing = {}
        for folder in (VIDEO_DIR, WAV_DIR, MP3_DIR):
            path = self.root / folder
            if path.is_dir():
                listing[folder] = {entry.name: (entry.stat().st_size if entry.is_file() else -1)
                                   for entry in path.iterdir()}
        truth_dir = self.root / TRUTH_DIR
        truth = {p.stem for p in truth_dir.glob("*.json")} if truth_dir.is_dir() else set()
        return _build_scan(self.root, listing, truth)

    @classmethod
    def from_file_list(cls, paths: Iterable[str], root: str | Path = ".") -> Scan:
        """The scan that a root holding exactly ``paths`` (relative, ``/``-separated) would give.

        Nothing is read from disk: file sizes are unknown, so empty files are not detected.
        Paths outside the three media folders and ``synth_truth/`` are ignored.
        """
        listing: Listing = {}
        truth: set[str] = set()
        for text in paths:
            parts = PurePosixPath(text).parts
            if len(parts) < 2:
                continue
            if parts[0] == TRUTH_DIR and len(parts) == 2 and parts[1].endswith(".json"):
                truth.add(parts[1][: -len(".json")])
            elif parts[0] in (VIDEO_DIR, WAV_DIR, MP3_DIR):
                # a deeper path means a sub-folder: listed like one (size -1)
                listing.setdefault(parts[0], {})[parts[1]] = None if len(parts) == 2 else -1
        return _build_scan(Path(root), listing, truth)


def _parse_file(name: str, extension: str) -> CremaDName | None:
    """The parsed name of a media file ``name`` with ``extension``; None when it does not fit."""
    if not name.endswith(extension):
        return None
    try:
        return parse_crema_d_name(name[: -len(extension)])
    except ValueError:
        return None


def _build_scan(root: Path, listing: Listing, truth: set[str]) -> Scan:
    """Apply the loader's rules (module docstring) to a listing of the media folders."""
    problems: list[str] = []
    videos = listing.get(VIDEO_DIR, {})
    wavs = listing.get(WAV_DIR, {})
    if WAV_DIR not in listing:
        source = f"{MP3_DIR}/" if MP3_DIR in listing else "the videos' own audio tracks"
        problems.append(f"no {WAV_DIR}/ folder under {root}: audio comes from {source}")

    clips: list[ClipRef] = []
    for file_name in sorted(videos):
        size = videos[file_name]
        parsed = _parse_file(file_name, ".flv")
        if size == -1 or parsed is None:
            problems.append(f"{VIDEO_DIR}/{file_name}: unexpected name (expected "
                            f"ActorID_Sentence_Emotion_Level.flv, e.g. 1001_DFA_ANG_XX.flv); "
                            f"ignored")
            continue
        clip_id = parsed.clip_id  # an empty video is listed: preparation says why it fails
        audio = _audio_for(root, clip_id, listing, problems)
        clips.append(ClipRef(
            dataset="crema-d", speaker=parsed.actor, clip_id=clip_id,
            video=root / VIDEO_DIR / file_name, audio=audio,
            emotion=parsed.emotion, intensity=parsed.level, transcript=parsed.transcript,
            truth=root / TRUTH_DIR / f"{clip_id}.json" if clip_id in truth else None,
        ))

    video_ids = {name[: -len(".flv")] for name in videos if name.endswith(".flv")}
    for file_name in sorted(wavs):
        parsed = _parse_file(file_name, ".wav")
        if wavs[file_name] == -1 or parsed is None:
            problems.append(f"{WAV_DIR}/{file_name}: unexpected name (expected "
                            f"ActorID_Sentence_Emotion_Level.wav); ignored")
        elif parsed.clip_id not in video_ids:
            problems.append(f"{parsed.clip_id}: {WAV_DIR}/{file_name} has no video "
                            f"{VIDEO_DIR}/{parsed.clip_id}.flv; not listed")
    return Scan(clips=clips, problems=problems)


def _audio_for(root: Path, clip_id: str, listing: Listing, problems: list[str]) -> Path | None:
    """The audio file of ``clip_id``: its wav, else its mp3, else None (the video's track).

    Sizes: None (unknown, from a file list) counts as fine, 0 as empty, -1 as not a file.
    """
    wav, mp3 = f"{clip_id}.wav", f"{clip_id}.mp3"
    wav_size = listing.get(WAV_DIR, {}).get(wav, -1)
    if wav_size not in (0, -1):
        return root / WAV_DIR / wav
    mp3_size = listing.get(MP3_DIR, {}).get(mp3, -1)
    fallback = (root / MP3_DIR / mp3) if mp3_size not in (0, -1) else None
    if WAV_DIR not in listing:  # the missing folder was reported once for the whole root
        if fallback is None and MP3_DIR in listing:
            problems.append(f"{clip_id}: no audio file (no {MP3_DIR}/{mp3} either); "
                            f"audio will be read from the video's own track")
        return fallback
    what = f"{WAV_DIR}/{wav} is empty (0 bytes)" if wav_size == 0 else f"no {WAV_DIR}/{wav}"
    if fallback is not None:
        problems.append(f"{clip_id}: {what}; audio from {MP3_DIR}/{mp3}")
    else:
        problems.append(f"{clip_id}: no audio file ({what}, no {MP3_DIR}/{mp3}); "
                        f"audio will be read from the video's own track")
    return fallback
