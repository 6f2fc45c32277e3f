"""TCD-TIMIT loader (Harte and Gillen 2015; SPEC 4.2).

TCD-TIMIT is 59 volunteers (about 98 TIMIT sentences each) and 3 professional lipspeakers
(377 each), 6913 sentences in all, filmed by a straight camera and one at 30 degrees (1920x1080,
29.97 fps, with the audio track). The release (sigmedia.tcd.ie, one download per speaker and
camera) unpacks as::

    ROOT/volunteers/01M/Clips/straightcam/sa1.mp4        a sentence, straight camera
    ROOT/volunteers/01M/Clips/30degcam/sa1.mp4           the same sentence at 30 degrees
    ROOT/lipspeakers/Lipspkr1/Clips/straightcam/sx3.mp4
    ROOT/volunteers/01M/Clips/straightcam/sa1.wav        audio, where an unpacked copy has it
    ROOT/PROMPTS.TXT                                     TIMIT's prompt list, if you add it
    ROOT/synth_truth/01M_sa1.json                        synthetic corpus only

Where we found this: the speaker-independent file lists of pyVSR (georgesterpu/pyVSR,
``pyVSR/tcdtimit/splits/speaker-independent/*.scp``: ``volunteers/<ID>/Clips/straightcam/
<sentence>.mp4`` and ``lipspeakers/Lipspkr<N>/Clips/straightcam/...``), the download and
unpack scripts of matthijsvk/TCDTIMITprocessing (``<group>/<ID>/Clips/straightcam.zip``
unpacked in place; audio at ``.../Clips/straightcam/<sentence>.wav``) and the corpus page
(62 speakers, 6913 sentences, two camera angles). Volunteer IDs are two digits and the
speaker's sex (``01M`` ... ``59F``); sentence names are TIMIT's (``sa1``, ``sa2``, ``si<N>``,
``sx<N>``). The folder of volunteer 30 is ``30F`` in pyVSR's lists (one download list says
``30M``); a folder whose letter differs from ``VOLUNTEERS`` is accepted by its number and
reported once.

Rules (``Scan.problems`` gets one line per problem):

- a clip is a ``<sentence>.mp4`` in a ``straightcam`` folder (``Clips/straightcam`` or directly
  ``straightcam``) below a volunteer (``NNX``) or lipspeaker (``LipspkrN``) folder; its id is
  ``<speaker>_<sentence>`` (``01M_sa1``); the speaker is the volunteer's canonical ID;
- the 30-degree camera (``30degcam``) is not used: its clips are counted in one line;
- an unreadable video is reported and not listed; an empty (0-byte) one is listed (the split
  counts it, preparation fails it with the reason); a second copy of the same
  clip is reported and the first (in path order) kept;
- audio: a non-empty ``<sentence>.wav`` beside the video, else the video's own track;
- transcript: the sentence's prompt when a TIMIT prompt file (``PROMPTS.TXT``, any case, at
  most two folders deep; lines ``text (id)``) is in the tree, else None. The prompts are
  TIMIT's (LDC93S1) and are not shipped here;
- hidden files and ``corpus.json`` are ignored; every other file is reported as unexpected
  (the first 20, then a count); one line names the speakers with no clip here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from bench.data.clip import ClipRef
from bench.data.datasets import Dataset, DatasetError, Scan
from bench.data.grid import IGNORED_TOP_FILES, TRUTH_DIR, Entry, report_unexpected, walk_tree

VOLUNTEERS: tuple[str, ...] = (
    "01M", "02M", "03F", "04M", "05F", "06M", "07F", "08F", "09F", "10M",
    "11F", "12M", "13F", "14M", "15F", "16M", "17F", "18M", "19M", "20M",
    "21M", "22M", "23M", "24M", "25M", "26M", "27M", "28M", "29M", "30F",
    "31F", "32F", "33F", "34M", "35M", "36F", "37F", "38F", "39M", "40F",
    "41M", "42M", "43F", "44F", "45F", "46F", "47M", "48M", "49F", "50F",
    "51F", "52M", "53M", "54M", "55F", "56M", "57M", "58F", "59F",
)
"""The 59 volunteers, number and sex as their release folders are named."""

LIPSPEAKERS: tuple[str, ...] = ("Lipspkr1", "Lipspkr2", "Lipspkr3")
SPEAKERS: tuple[str, ...] = VOLUNTEERS + LIPSPEAKERS

# The recommended speaker-independent protocol (Harte and Gillen 2015; pyVSR's lists):
# volunteers 39 train / 17 test, three left out for their non-Irish accents; lipspeakers
# 1-2 train, 3 test.
RECOMMENDED_TEST: tuple[str, ...] = ("08F", "09F", "15F", "18M", "25M", "28M", "33F", "34M",
                                     "36F", "41M", "44F", "45F", "49F", "54M", "55F", "56M",
                                     "58F")
RECOMMENDED_EXCLUDED: tuple[str, ...] = ("27M", "35M", "53M")
RECOMMENDED_TRAIN: tuple[str, ...] = tuple(v for v in VOLUNTEERS if v not in RECOMMENDED_TEST
                                           and v not in RECOMMENDED_EXCLUDED)

SENTENCES_PER_VOLUNTEER = 98
SENTENCES_PER_LIPSPEAKER = 377
RELEASE_SENTENCES = 6913
FPS = 30000 / 1001
FRAME_SIZE = (1080, 1920)  # (height, width)

CAMERA = "straightcam"
OTHER_CAMERA = "30degcam"

_VOLUNTEER_DIR = re.compile(r"^(\d{2})([MF])$")
_LIPSPEAKER_DIR = re.compile(r"^Lipspkr([1-3])$")
_SENTENCE = re.compile(r"^(sa[12]|si\d{1,4}|sx\d{1,4})$")
_PROMPT_LINE = re.compile(r"^(.*\S)\s*\((s[aix]\d+)\)\s*$")


def parse_prompts(text: str) -> dict[str, str]:
    """Sentence id -> text from TIMIT's ``PROMPTS.TXT`` (``;`` lines are comments).

    The text is kept as written, final punctuation included.
    """
    prompts = {}
    for line in text.splitlines():
        if line.startswith(";"):
            continue
        match = _PROMPT_LINE.match(line.strip())
        if match:
            prompts[match.group(2).lower()] = match.group(1)
    return prompts


def format_prompts(prompts: dict[str, str]) -> str:
    """A prompt file in TIMIT's format (used by the synthetic corpus)."""
    lines = ["; Prompt form of each sentence text followed by its sentence id.", ";"]
    lines += [f"{text} ({sid})" for sid, text in prompts.items()]
    return "\n".join(lines) + "\n"


def _speaker_of(rel: PurePosixPath, problems: list[str],
                renamed: set[str]) -> str | None:
    """The canonical speaker of a file from its nearest speaker folder, else None."""
    for folder in reversed(rel.parts[:-1]):
        match = _VOLUNTEER_DIR.match(folder)
        if match:
            number = int(match.group(1))
            if not 1 <= number <= len(VOLUNTEERS):
                return None
            canonical = VOLUNTEERS[number - 1]
            if canonical != folder and folder not in renamed:
                renamed.add(folder)
                problems.append(f"volunteer folder {folder}: the release names volunteer "
                                f"{number} {canonical}; its clips are listed as {canonical}")
            return canonical
        match = _LIPSPEAKER_DIR.match(folder)
        if match:
            return folder
    return None


class TcdTimit(Dataset):
    """TCD-TIMIT as released: straight-camera clips of the volunteers and lipspeakers."""

    name = "tcd-timit"
    default_split = "vougioukas2019"
    description = ("TCD-TIMIT: 59 volunteers (~98 TIMIT sentences each) and 3 lipspeakers "
                   "(377 each), straight camera, 1920x1080 29.97 fps with audio")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        entries, _ = walk_tree(self.root)
        if not any(e.rel.suffix.lower() == ".mp4" for e in entries):
            raise DatasetError(f"tcd-timit: no .mp4 clip under {self.root} (expected "
                               f"volunteers/01M/Clips/straightcam/sa1.mp4 and the like)")

    def scan(self) -> Scan:
        """List every straight-camera clip under the root (no media decoded)."""
        entries, problems = walk_tree(self.root)
        return _build_scan(self.root, entries, problems,
                           read_text=lambda rel: (self.root / rel).read_text(errors="replace"))

    @classmethod
    def from_file_list(cls, paths: Iterable[str], root: str | Path = ".") -> Scan:
        """The scan that a root holding exactly ``paths`` gives (nothing read: no sizes, no
        prompts)."""
        entries = sorted((Entry(PurePosixPath(p)) for p in paths), key=lambda e: e.rel.parts)
        return _build_scan(Path(root), entries, [], read_text=None)


def _build_scan(root: Path, entries: list[Entry], problems: list[str], read_text) -> Scan:
    problems = list(problems)
    renamed: set[str] = set()
    videos: dict[tuple[str, str], Entry] = {}
    wavs: dict[PurePosixPath, Entry] = {}
    truth: set[str] = set()
    unexpected: list[PurePosixPath] = []
    other_camera = 0
    prompt_files: list[Entry] = []

    for entry in entries:
        rel = entry.rel
        if rel.parts[0] == TRUTH_DIR:
            if len(rel.parts) == 2 and rel.suffix == ".json":
                truth.add(rel.stem)
            continue
        if len(rel.parts) == 1 and rel.name in IGNORED_TOP_FILES:
            continue
        if rel.name.lower() == "prompts.txt" and len(rel.parts) <= 3:
            prompt_files.append(entry)
            continue
        suffix = rel.suffix.lower()
        camera = rel.parent.name.lower() if len(rel.parts) > 1 else ""
        sentence = rel.stem.lower()
        if camera == OTHER_CAMERA and suffix in (".mp4", ".wav"):
            other_camera += suffix == ".mp4"
            continue
        if camera != CAMERA or suffix not in (".mp4", ".wav"):
            unexpected.append(rel)
            continue
        speaker = _speaker_of(rel, problems, renamed)
        if speaker is None or not _SENTENCE.match(sentence):
            why = ("its name is not a TIMIT sentence id (sa1, si1004, sx3 ...)" if speaker
                   else "it is not below a volunteer (01M ...) or lipspeaker folder")
            problems.append(f"{rel}: {why}; ignored")
            continue
        if suffix == ".wav":
            wavs[rel.with_suffix("")] = entry
            continue
        clip_id = f"{speaker}_{sentence}"
        if not entry.readable:
            problems.append(f"{clip_id}: {rel} cannot be read (permission denied or broken "
                            f"link); skipped")
        elif (speaker, sentence) in videos:
            problems.append(f"{clip_id}: second copy {rel} ignored (using "
                            f"{videos[speaker, sentence].rel})")
        else:
            videos[speaker, sentence] = entry

    prompts = _read_prompts(prompt_files, read_text, problems)
    clips: list[ClipRef] = []
    order = {s: i for i, s in enumerate(SPEAKERS)}
    for (speaker, sentence), video in sorted(videos.items(),
                                             key=lambda kv: (order[kv[0][0]], kv[0][1])):
        clip_id = f"{speaker}_{sentence}"
        wav = wavs.pop(video.rel.with_suffix(""), None)
        audio = None
        if wav is not None and wav.size != 0 and wav.readable:
            audio = root / wav.rel
        elif wav is not None:
            problems.append(f"{clip_id}: {wav.rel} is empty or unreadable; audio from the "
                            f"video's own track")
        clips.append(ClipRef(dataset="tcd-timit", speaker=speaker, clip_id=clip_id,
                             video=root / video.rel, audio=audio,
                             transcript=prompts.get(sentence) if prompts else None,
                             truth=root / TRUTH_DIR / f"{clip_id}.json"
                             if clip_id in truth else None))
    for stem, wav in sorted(wavs.items()):
        problems.append(f"{wav.rel}: audio without a video {stem}.mp4; not listed")
    if other_camera:
        problems.append(f"{other_camera} 30-degree camera clips ({OTHER_CAMERA}/) not used "
                        f"(straight camera only)")
    if prompts is not None:
        missing = sorted({c.clip_id.split("_", 1)[1] for c in clips} - set(prompts))
        if missing:
            problems.append(f"the prompt file has no text for {len(missing)} sentence ids "
                            f"(e.g. {' '.join(missing[:5])}); their transcripts are None")
    report_unexpected(unexpected, problems, "a straight-camera clip of a TCD-TIMIT speaker")
    present = {c.speaker for c in clips}
    missing_speakers = [s for s in SPEAKERS if s not in present]
    if missing_speakers:
        problems.append(f"{len(present)} of the {len(SPEAKERS)} TCD-TIMIT speakers have clips "
                        f"here; none for {' '.join(missing_speakers)}")
    return Scan(clips=clips, problems=problems)


def _read_prompts(files: list[Entry], read_text, problems: list[str]) -> dict[str, str] | None:
    """The prompts of the first readable prompt file (None when there is none)."""
    if read_text is None:
        return None
    for entry in files:
        try:
            prompts = parse_prompts(read_text(entry.rel))
        except OSError as err:
            problems.append(f"{entry.rel}: cannot be read ({err.strerror or err}); ignored")
            continue
        if prompts:
            return prompts
        problems.append(f"{entry.rel}: no 'text (id)' lines; ignored")
    return None
