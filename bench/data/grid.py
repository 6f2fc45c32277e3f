"""GRID loader (Cooke, Barker, Cunningham and Shao 2006; SPEC 4.2).

GRID is 1000 sentences by each of 34 talkers; 33 have video (``s21`` has none). The
distribution (spandh.dcs.shef.ac.uk/gridcorpus, and the Zenodo copy, record 3625687) comes as
one archive per talker and kind, and how the tree looks depends on how they were unpacked::

    ROOT/s1/bbaf2n.mpg                    video: MPEG-1 360x288 25 fps, MP2 audio 44.1 kHz, 3 s
    ROOT/s1.mpg_vcd/s1/bbaf2n.mpg         the same, the archive unpacked into a folder of its name
    ROOT/video/s1/bbaf2n.mpg              (any folder above the talker folder is fine)
    ROOT/alignments/s1/bbaf2n.align       word alignments (Zenodo ``alignments.zip``)
    ROOT/align/s1/align/bbaf2n.align      (a talker's ``s1.tar`` unpacked into ``align/s1``)
    ROOT/audio_25k/s1/bbaf2n.wav          the separately distributed audio (also ``audio_50k``)
    ROOT/synth_truth/s1_bbaf2n.json       synthetic corpus only: what was synthesised

We looked the layout up in the Zenodo record's file list (``s1.zip`` ... ``s34.zip``,
``alignments.zip``, ``audio_25k.zip``), in lhotse's GRID recipe (``lhotse/recipes/grid.py``:
``s*/*.mpg``, ``alignments/<talker>/<name>.align``, ``audio_25k``) and in download scripts
that unpack the original site's ``s#.mpg_vcd.zip`` and per-talker alignment ``s#.tar``
(``align/*.align``). lhotse's recipe also moves some of the Zenodo alignment folders to
other talkers (s5/s6, s10-s13, ...) before use; transcripts do not depend on that, since a
GRID alignment's words are the sentence its file name encodes (a disagreement is reported,
see below); only word times would, and the harness does not use them.

Rules (``Scan.problems`` gets one line per problem):

- a video is a ``.mpg`` whose nearest talker folder (``s<N>``, optionally with a suffix such as
  ``s1.mpg_vcd``) names a talker 1-34 and whose 6-letter name follows the grammar below; the
  clip id is ``<talker>_<name>`` (``s1_bbaf2n``), since names repeat across talkers;
- an unreadable video is reported and not listed; an empty (0-byte) one is listed (it is a
  clip of the tree: the split counts it, and preparation fails it with the reason); a second
  copy of the same
  talker and name (two unpacked copies of one archive) is reported and the first (in path
  order) kept;
- the transcript is the alignment's words without ``sil`` and ``sp``; with no (or an empty)
  alignment it comes from the name by GRID's fixed grammar; an alignment whose words disagree
  with the name is reported (the alignment's words are kept);
- audio: the talker's ``.wav`` of the same name (``audio_25k`` before ``audio_50k``) when there
  is one, else the video's own MP2 track (``ClipRef.audio = None``); an empty ``.wav`` is
  reported and the video's track used; audio files without a video are summarised in one line
  per folder;
- an alignment file in a folder without a talker (``ROOT/align/*.align``) is used for the one
  talker with a video of that name; if several talkers have it, it is reported as ambiguous;
- hidden files (``.*``) and the synthetic corpus's ``corpus.json`` are ignored; every other
  file is reported as unexpected (the first ``MAX_LISTED`` of them, then a count);
- one line says which of the 33 talkers with video have no clip here.

The grammar (Cooke et al. 2006, Table I): command (bin lay place set), colour (blue green red
white), preposition (at by in with), letter (a-z without w), digit (zero-nine), adverb
(again now please soon); a file name is the first letter of each word, the letter itself and
the digit (``z`` for zero): ``bbaf2n`` is "bin blue at f two now".

``Grid.from_file_list`` applies the same rules to a list of relative paths (no disk access,
sizes unknown), so a full release listing can be checked without the media.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.data.clip import ClipRef
from bench.data.datasets import Dataset, DatasetError, Scan

TALKERS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 35))
"""The 34 GRID talkers (``s21`` recorded audio only)."""

SPEAKERS: tuple[str, ...] = tuple(t for t in TALKERS if t != "s21")
"""The 33 talkers with video: the speakers every split is defined over."""

CLIPS_PER_SPEAKER = 1000
FRAMES_PER_CLIP = 75  # 3 s at 25 fps

COMMANDS = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
COLOURS = {"b": "blue", "g": "green", "r": "red", "w": "white"}
PREPOSITIONS = {"a": "at", "b": "by", "i": "in", "w": "with"}
LETTERS = {c: c for c in "abcdefghijklmnopqrstuvxyz"}  # no w
DIGITS = {"z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
          "6": "six", "7": "seven", "8": "eight", "9": "nine"}
ADVERBS = {"a": "again", "n": "now", "p": "please", "s": "soon"}
GRAMMAR: tuple[dict[str, str], ...] = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS,
                                       ADVERBS)
"""Code letter -> word for each of the six positions of a GRID sentence."""

NON_WORDS = frozenset({"sil", "sp"})  # silence and short pause in the .align files
TRUTH_DIR = "synth_truth"
IGNORED_TOP_FILES = frozenset({"corpus.json"})  # the synthetic corpus's manifest
MAX_LISTED = 20  # unexpected files named one per line before the rest are counted

_TALKER_DIR = re.compile(r"^s(\d{1,2})(?:\.[\w.\-]+)?$")


def transcript_from_name(name: str) -> str:
    """The sentence a GRID file name encodes: ``"bbaf2n"`` -> ``"bin blue at f two now"``.

    Raises ValueError (naming the position) for a name outside the grammar.
    """
    if len(name) != len(GRAMMAR):
        raise ValueError(f"{name!r} is not a 6-letter GRID sentence code (e.g. bbaf2n)")
    words = []
    for position, (code, table) in enumerate(zip(name, GRAMMAR, strict=True)):
        if code not in table:
            raise ValueError(f"{name!r}: {code!r} at position {position + 1} is not one of "
                             f"{''.join(table)}")
        words.append(table[code])
    return " ".join(words)


def name_from_words(words: Iterable[str]) -> str:
    """The file name of a GRID sentence given as its six words (inverse of the above)."""
    words = list(words)
    if len(words) != len(GRAMMAR):
        raise ValueError(f"a GRID sentence has 6 words, got {len(words)}: {words}")
    code = []
    for word, table in zip(words, GRAMMAR, strict=True):
        inverse = {w: c for c, w in table.items()}
        if word not in inverse:
            raise ValueError(f"{word!r} is not one of {' '.join(table.values())}")
        code.append(inverse[word])
    return "".join(code)


def parse_align(text: str) -> list[tuple[int, int, str]]:
    """Rows ``(start, end, word)`` of a GRID ``.align`` file (times in 1/1000 of a 25 fps
    frame, i.e. 1/25000 s: a 3 s clip ends at about 74500). ValueError on a malformed row."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"line {number} is not 'start end word': {line.strip()!r:.60}")
        rows.append((int(parts[0]), int(parts[1]), parts[2]))
    if not rows:
        raise ValueError("no rows")
    return rows


def words_of_align(rows: list[tuple[int, int, str]]) -> list[str]:
    """The spoken words of an alignment (``sil`` and ``sp`` dropped)."""
    return [word for _, _, word in rows if word.lower() not in NON_WORDS]


def format_align(rows: Iterable[tuple[int, int, str]]) -> str:
    """Text of a ``.align`` file from ``(start, end, word)`` rows."""
    return "".join(f"{start} {end} {word}\n" for start, end, word in rows)


# --------------------------------------------------------------------------- tree listing
@dataclass(frozen=True)
class Entry:
    """One file of a tree: its path relative to the root, size (None: unknown), readability."""

    rel: PurePosixPath
    size: int | None = None
    readable: bool = True


def walk_tree(root: Path, max_depth: int = 7) -> tuple[list[Entry], list[str]]:
    """Every non-hidden file under ``root`` (symlinks followed, at most ``max_depth`` folders
    deep), sorted by path, and one problem line per folder that could not be listed."""
    entries: list[Entry] = []
    problems: list[str] = []
    root = Path(root)

    def failed(err: OSError) -> None:
        where = Path(err.filename).relative_to(root) if err.filename else root
        problems.append(f"{where}/: cannot list folder ({err.strerror or err}); skipped")

    for folder, dirs, files in os.walk(root, onerror=failed, followlinks=True):
        rel_folder = Path(folder).relative_to(root)
        depth = len(rel_folder.parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < max_depth else []
        for name in files:
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                size = path.stat().st_size
            except OSError:  # a dangling symlink
                size = -1
            entries.append(Entry(PurePosixPath(*rel_folder.parts, name), size,
                                 size >= 0 and os.access(path, os.R_OK)))
    entries.sort(key=lambda e: e.rel.parts)
    return entries, problems


def report_unexpected(rels: list[PurePosixPath], problems: list[str], what: str) -> None:
    """One line per unexpected file (the first ``MAX_LISTED``), then one with the count."""
    for rel in rels[:MAX_LISTED]:
        problems.append(f"{rel}: unexpected file (not {what}); ignored")
    if len(rels) > MAX_LISTED:
        problems.append(f"... and {len(rels) - MAX_LISTED} more unexpected files; ignored")


def _talker_of(rel: PurePosixPath) -> str | None:
    """The talker of a file: its nearest folder named ``s<N>`` (N in 1-34), else None."""
    for folder in reversed(rel.parts[:-1]):
        match = _TALKER_DIR.match(folder)
        if match:
            number = int(match.group(1))
            return f"s{number}" if 1 <= number <= 34 else None
    return None


def _name_of(rel: PurePosixPath, suffix: str) -> str | None:
    """The GRID sentence code of a file ending in ``suffix`` (case-insensitive), else None."""
    if rel.suffix.lower() != suffix:
        return None
    try:
        transcript_from_name(rel.stem)
    except ValueError:
        return None
    return rel.stem


# ------------------------------------------------------------------------------- loader
class Grid(Dataset):
    """GRID as distributed: per-talker ``.mpg`` folders, ``.align`` and ``.wav`` where present."""

    name = "grid"
    default_split = "vougioukas2019"
    description = ("GRID: 33 talkers with video (s1-s34 without s21), 1000 sentences each, "
                   "3 s MPEG-1 360x288 25 fps with audio; word alignments")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        entries, _ = walk_tree(self.root)
        if not any(e.rel.suffix.lower() == ".mpg" for e in entries):
            raise DatasetError(f"grid: no .mpg video under {self.root} (expected talker "
                               f"folders such as s1/bbaf2n.mpg or s1.mpg_vcd/s1/bbaf2n.mpg)")

    def scan(self) -> Scan:
        """List every clip under the root (no media decoded); see the module docstring."""
        entries, problems = walk_tree(self.root)
        return _build_scan(self.root, entries, problems,
                           read_text=lambda rel: (self.root / rel).read_text(errors="replace"))

    @classmethod
    def from_file_list(cls, paths: Iterable[str], root: str | Path = ".") -> Scan:
        """The scan that a root holding exactly ``paths`` (relative, ``/``-separated) gives.

        Nothing is read: sizes are unknown and transcripts come from the file names.
        """
        entries = sorted((Entry(PurePosixPath(p)) for p in paths), key=lambda e: e.rel.parts)
        return _build_scan(Path(root), entries, [], read_text=None)


def _build_scan(root: Path, entries: list[Entry], problems: list[str],
                read_text) -> Scan:
    """Apply the loader's rules (module docstring) to a sorted file listing."""
    problems = list(problems)
    videos: dict[tuple[str, str], Entry] = {}
    aligns: dict[tuple[str | None, str], list[Entry]] = defaultdict(list)
    wavs: dict[tuple[str, str], Entry] = {}
    orphan_audio: dict[PurePosixPath, int] = defaultdict(int)
    truth: set[str] = set()
    unexpected: list[PurePosixPath] = []

    for entry in entries:
        rel = entry.rel
        if rel.parts[0] == TRUTH_DIR:
            if len(rel.parts) == 2 and rel.suffix == ".json":
                truth.add(rel.stem)
            continue
        if len(rel.parts) == 1 and rel.name in IGNORED_TOP_FILES:
            continue
        talker = _talker_of(rel)
        suffix = rel.suffix.lower()
        if suffix == ".mpg":
            name = _name_of(rel, ".mpg")
            if name is None or talker is None:
                why = ("its name is not a GRID sentence code (e.g. bbaf2n.mpg)" if name is None
                       else "it is not inside a talker folder s1-s34")
                problems.append(f"{rel}: {why}; ignored")
                continue
            if not entry.readable:
                problems.append(f"{talker}_{name}: {rel} cannot be read (permission denied "
                                f"or broken link); skipped")
                continue
            if (talker, name) in videos:
                problems.append(f"{talker}_{name}: second copy {rel} ignored (using "
                                f"{videos[talker, name].rel})")
                continue
            videos[talker, name] = entry
        elif suffix == ".align" and _name_of(rel, ".align"):
            aligns[talker, rel.stem].append(entry)
        elif suffix == ".wav" and talker is not None and _name_of(rel, ".wav"):
            wavs.setdefault((talker, rel.stem), entry)
        else:
            unexpected.append(rel)

    clips: list[ClipRef] = []
    for (talker, name), video in sorted(videos.items(),
                                        key=lambda kv: (int(kv[0][0][1:]), kv[0][1])):
        clip_id = f"{talker}_{name}"
        transcript = _transcript(clip_id, name, _align_for(talker, name, aligns, videos,
                                                           problems, clip_id),
                                 read_text, problems)
        audio = None
        wav = wavs.get((talker, name))
        if wav is not None:
            if wav.size == 0:
                problems.append(f"{clip_id}: {wav.rel} is empty (0 bytes); audio from the "
                                f"video's own track")
            elif not wav.readable:
                problems.append(f"{clip_id}: {wav.rel} cannot be read; audio from the video's "
                                f"own track")
            else:
                audio = root / wav.rel
        clips.append(ClipRef(dataset="grid", speaker=talker, clip_id=clip_id,
                             video=root / video.rel, audio=audio, transcript=transcript,
                             truth=root / TRUTH_DIR / f"{clip_id}.json"
                             if clip_id in truth else None))

    for (talker, name), wav in wavs.items():
        if (talker, name) not in videos:
            orphan_audio[wav.rel.parent] += 1
    for folder, count in sorted(orphan_audio.items()):
        problems.append(f"{folder}/: {count} audio file{'s' if count > 1 else ''} without a "
                        f"video; not listed")
    report_unexpected(unexpected, problems,
                      "a GRID video, alignment or audio file in a talker folder")
    present = {c.speaker for c in clips}
    missing = [s for s in SPEAKERS if s not in present]
    if missing:
        problems.append(f"{len(present)} of the {len(SPEAKERS)} GRID talkers with video have "
                        f"clips here; no videos for {' '.join(missing)}")
    return Scan(clips=clips, problems=problems)


def _align_for(talker: str, name: str, aligns: dict, videos: dict, problems: list[str],
               clip_id: str) -> Entry | None:
    """The alignment of a clip: the talker's own, else a talker-less one if unambiguous."""
    own = aligns.get((talker, name))
    if own:
        return own[0]
    shared = aligns.get((None, name))
    if not shared:
        return None
    owners = [t for (t, n) in videos if n == name]
    if len(owners) > 1:
        problems.append(f"{clip_id}: {shared[0].rel} is in no talker folder and "
                        f"{len(owners)} talkers have {name}; transcript from the name")
        return None
    return shared[0]


def _transcript(clip_id: str, name: str, align: Entry | None, read_text,
                problems: list[str]) -> str:
    """Words of the alignment (sil/sp dropped), else the name's sentence; see the rules."""
    from_name = transcript_from_name(name)
    if align is None or read_text is None:
        return from_name
    if align.size == 0 or not align.readable:
        what = "is empty (0 bytes)" if align.size == 0 else "cannot be read"
        problems.append(f"{clip_id}: {align.rel} {what}; transcript from the name")
        return from_name
    try:
        words = words_of_align(parse_align(read_text(align.rel)))
    except (OSError, ValueError) as err:
        problems.append(f"{clip_id}: {align.rel} is not a GRID alignment ({err}); "
                        f"transcript from the name")
        return from_name
    text = " ".join(words)
    if text != from_name:
        problems.append(f"{clip_id}: {align.rel} says {text!r} but the name {name} says "
                        f"{from_name!r}; using the alignment")
    return text
