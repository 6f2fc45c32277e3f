"""Named, versioned, speaker-disjoint dataset splits (SPEC 4.3).

A ``Split`` says which speakers go to ``train``, ``val`` and ``test``. Fixed splits are defined
over the dataset's *full* speaker list (the published release), then applied to whatever clips
a root holds: a tree with only some speakers keeps each present speaker in its part, and a
part may be empty. Every rule is deterministic: any randomness comes from
``numpy.random.default_rng(SEED)`` over *sorted* speaker IDs with a seed written in the split's
description, never from the order the clips are given in.

To add a split: write a builder below that returns a ``Split``, add one row to ``_BUILDERS``,
bump ``version`` whenever an existing split's speakers change.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bench.data import crema_d, grid, tcd_timit
from bench.data.clip import ClipRef
from bench.registry import UnknownName

PARTS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """A speaker-disjoint split of one dataset; ``description`` states the rule in full.

    Either the three speaker lists are fixed (``train``/``val``/``test``), or ``fractions`` is
    set and the speakers *present* are assigned at ``apply`` time (val, test fractions) by a
    permutation from ``default_rng(seed)`` over their sorted IDs. ``emotions`` keeps only clips
    with one of these labels (None keeps all).
    """

    name: str
    dataset: str
    version: int
    description: str
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    emotions: tuple[str, ...] | None = None
    fractions: tuple[float, float] | None = None  # (val, test), for present-speaker rules
    seed: int = 0

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for part in PARTS:
            for speaker in getattr(self, part):
                if speaker in seen:
                    raise ValueError(f"split {self.name}: speaker {speaker} is in both "
                                     f"{seen[speaker]} and {part}")
                seen[speaker] = part

    def assign(self, speakers: Iterable[str]) -> dict[str, str]:
        """Part of each of ``speakers`` that the split uses; speakers it leaves out are absent."""
        present = sorted(set(speakers), key=natural_key)
        if self.fractions is not None:
            return _assign_by_fractions(present, *self.fractions, seed=self.seed)
        fixed = {s: part for part in PARTS for s in getattr(self, part)}
        return {s: fixed[s] for s in present if s in fixed}

    def apply(self, clips: Iterable[ClipRef]) -> dict[str, list[ClipRef]]:
        """Clips per part (``train``, ``val``, ``test``), each sorted by clip id.

        Clips of speakers outside the split, or with an emotion the split excludes, are dropped.
        """
        clips = list(clips)
        assignment = self.assign(c.speaker for c in clips)
        parts: dict[str, list[ClipRef]] = {part: [] for part in PARTS}
        for clip in clips:
            if self.emotions is not None and clip.emotion not in self.emotions:
                continue
            part = assignment.get(clip.speaker)
            if part is not None:
                parts[part].append(clip)
        return {part: sorted(refs, key=lambda c: c.clip_id) for part, refs in parts.items()}

    def as_dict(self) -> dict:
        """Everything that defines the split, for a run's metadata."""
        return {"name": self.name, "dataset": self.dataset, "version": self.version,
                "description": self.description, "train": list(self.train),
                "val": list(self.val), "test": list(self.test),
                "emotions": list(self.emotions) if self.emotions is not None else None,
                "fractions": list(self.fractions) if self.fractions is not None else None,
                "seed": self.seed}


def natural_key(speaker: str) -> tuple:
    """Sort key that puts ``s2`` before ``s11`` (digits compared as numbers)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", speaker))


def round_half_up(x: float) -> int:
    """``round`` as taught at school (2.5 -> 3), unlike Python's banker's rounding."""
    return int(np.floor(x + 0.5))


def _assign_by_fractions(speakers: list[str], val: float, test: float, *,
                         seed: int) -> dict[str, str]:
    """Permute the sorted ``speakers`` with ``default_rng(seed)``; test first, then val.

    test = round(test * n), at least 1; val = round(val * n), at least 1 when n >= 3; the rest
    train.
    """
    n = len(speakers)
    if n == 0:
        return {}
    n_test = max(1, round_half_up(test * n))
    n_val = round_half_up(val * n)
    if n >= 3:
        n_val = max(1, n_val)
    n_val = min(n_val, n - n_test)
    order = [speakers[i] for i in np.random.default_rng(seed).permutation(n)]
    parts = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    return dict(zip(order, parts, strict=True))


def _draw(pool: list[str], k: int, seed: int,
          accept: Callable[[list[str]], bool] = lambda _: True,
          max_draws: int = 10_000) -> list[str]:
    """``k`` of the sorted ``pool`` drawn with ``default_rng(seed).choice`` (no replacement).

    Draws again from the same generator until ``accept`` holds for the drawn speakers.
    """
    pool = sorted(pool, key=natural_key)
    rng = np.random.default_rng(seed)
    for _ in range(max_draws):
        picked = sorted((pool[i] for i in rng.choice(len(pool), size=k, replace=False)),
                        key=natural_key)
        if accept(picked):
            return picked
    raise RuntimeError(f"no draw of {k} speakers satisfied the rule in {max_draws} draws")


def _others(speakers: Iterable[str], *exclude: Iterable[str]) -> tuple[str, ...]:
    """``speakers`` minus every speaker in ``exclude``, naturally sorted."""
    excluded = {s for group in exclude for s in group}
    return tuple(sorted((s for s in speakers if s not in excluded), key=natural_key))


def _sorted(speakers: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(speakers, key=natural_key))


# ---------------------------------------------------------------------------------- CREMA-D
_CREMA_D_COUNTS = Counter(clip_id[:4] for clip_id in crema_d.release_clip_ids())
"""Clips per actor in the public release (82, except 1002 and 1076: 81; 1008, 1009, 1019: 76)."""


def _crema_d_vougioukas2019() -> Split:
    """Seed 003 (Vougioukas et al. 2019), Sect. 4, Tables 1 and 2.

    Test actors are Table 1's. The paper does not name its validation actors; Table 2 gives
    819 validation clips (and 820 test clips, which the test actors have exactly). We draw 10
    of the other 81 actors with default_rng(2019), repeating the draw until they hold 819 clips
    of the release: any set of 10 actors with 819 clips shares the paper's composition (nine
    82-clip actors and one of the two 81-clip actors).
    """
    test = _sorted(str(1000 + a) for a in (15, 20, 21, 30, 33, 52, 62, 81, 82, 89))
    val = tuple(_draw(_others(crema_d.ACTORS, test), 10, seed=2019,
                      accept=lambda ids: sum(_CREMA_D_COUNTS[a] for a in ids) == 819))
    return Split(
        name="vougioukas2019", dataset="crema-d", version=1,
        description=("seed 003 Sect. 4, Table 1-2 (70/15/15 by actor): test = actors 1015 1020 "
                     "1021 1030 1033 1052 1062 1081 1082 1089; val = 10 of the other 81 "
                     "actors drawn by numpy default_rng(2019).choice over their sorted IDs, "
                     "redrawn until they hold 819 release clips (Table 2); train = the other "
                     "71 actors"),
        train=_others(crema_d.ACTORS, test, val), val=val, test=test)


def _crema_d_goyal2023() -> Split:
    """Seed 002 (Goyal et al. 2023), Sect. 2.1: 5 arbitrarily chosen test actors, 1011 among
    them; all other actors train. The paper names only 1011; the other 4 are drawn with
    default_rng(2023). There is no validation part."""
    others = _draw(_others(crema_d.ACTORS, ["1011"]), 4, seed=2023)
    test = _sorted(["1011", *others])
    return Split(
        name="goyal2023", dataset="crema-d", version=1,
        description=("seed 002 Sect. 2.1: test = 5 actors, 1011 and 4 of the other 90 drawn "
                     "by numpy default_rng(2023).choice over their sorted IDs; train = the "
                     "other 86 actors; no validation part"),
        train=_others(crema_d.ACTORS, test), test=test)


def _crema_d_bhagat2022() -> Split:
    """Seed 000 (Bhagat et al. 2022), Sect. IV.A: Happy and Sad clips of randomly chosen
    actors, 520 videos, split 80/10/10.

    Actors are taken in the order of default_rng(2022).permutation over the sorted 91 IDs;
    we keep the shortest prefix whose Happy+Sad release clips come closest to 520 (actors have
    28 such clips, or 26, so 520 itself cannot be reached: the prefix holds 530). Of those
    n actors, in draw order, the first round(0.1 n) are test, the next round(0.1 n) val,
    the rest train.
    """
    emotions = ("HAP", "SAD")
    per_actor = Counter(c[:4] for c in crema_d.release_clip_ids() if c.split("_")[2] in emotions)
    actors = sorted(crema_d.ACTORS, key=natural_key)
    order = [actors[i] for i in np.random.default_rng(2022).permutation(len(actors))]
    totals = np.cumsum([per_actor[a] for a in order])
    k = int(np.argmin(np.abs(totals - 520))) + 1  # argmin: first (shortest) on a tie
    chosen = order[:k]
    n_held = max(1, round_half_up(0.1 * k))
    return Split(
        name="bhagat2022", dataset="crema-d", version=1,
        description=("seed 000 Sect. IV.A: Happy and Sad clips only; actors in the order of "
                     "numpy default_rng(2022).permutation over the sorted 91 IDs, the shortest "
                     f"prefix whose HAP+SAD clips come closest to 520 ({k} actors, "
                     f"{int(totals[k - 1])} clips); 80/10/10 by actor in draw order: first "
                     f"{n_held} test, next {n_held} val, other {k - 2 * n_held} train"),
        train=_sorted(chosen[2 * n_held:]), val=_sorted(chosen[n_held:2 * n_held]),
        test=_sorted(chosen[:n_held]), emotions=emotions)


# ------------------------------------------------------------------------------------- GRID
GRID_SPEAKERS: tuple[str, ...] = grid.SPEAKERS
"""The 33 GRID speakers with video (s21 has none)."""


def _grid_vougioukas2019() -> Split:
    """Seed 003, Sect. 4, Tables 1 and 2: GRID 50/20/30 by speaker, Table 1's 10 test speakers.

    Validation: 20% of 33 = 7 speakers (Table 2: 6,999 clips, about 7 x 1000), drawn from the
    other 23 with default_rng(2019); the other 16 train (Table 2's 31,639 training samples are
    about 2 x 16 x 1000: the paper counts its training samples twice, as for CREMA-D).
    """
    test = _sorted(f"s{i}" for i in (2, 4, 11, 13, 15, 18, 19, 25, 31, 33))
    val = tuple(_draw(_others(GRID_SPEAKERS, test), 7, seed=2019))
    return Split(
        name="vougioukas2019", dataset="grid", version=1,
        description=("seed 003 Sect. 4, Table 1-2 (50/20/30 by speaker): test = s2 s4 s11 s13 "
                     "s15 s18 s19 s25 s31 s33; val = 7 of the other 23 speakers drawn by numpy "
                     "default_rng(2019).choice over their sorted IDs; train = the other 16"),
        train=_others(GRID_SPEAKERS, test, val), val=val, test=test)


def _grid_chen2022au() -> Split:
    """Seed 004 (Chen et al. 2022), Sect. 4.1: GRID split 8:2 by speaker, 27 train and 6 test.

    The paper names no speakers; the 6 test speakers are drawn from the sorted 33 with
    default_rng(2022). There is no validation part.
    """
    test = tuple(_draw(GRID_SPEAKERS, 6, seed=2022))
    return Split(
        name="chen2022au", dataset="grid", version=1,
        description=("seed 004 Sect. 4.1 (8:2 by speaker, 27 train / 6 test; the paper names "
                     "no speakers): test = 6 of the 33 speakers drawn by numpy "
                     "default_rng(2022).choice over their sorted IDs; train = the other 27; "
                     "no validation part"),
        train=_others(GRID_SPEAKERS, test), test=test)


# -------------------------------------------------------------------------------- TCD-TIMIT
def _tcd_timit_vougioukas2019() -> Split:
    """Seed 003, Sect. 4, Tables 1 and 2: "the recommended data split for the TCD TIMIT dataset
    but exclude some of the test speakers and use them as a validation set".

    The recommended speaker-independent split (Harte and Gillen 2015, as distributed with
    pyVSR) tests on 17 volunteers. Test: Table 1's 10; validation: the other 7 (Table 2:
    686 = 7 x 98 clips; test 977, about 10 x 98). Train: the other 42 volunteers, i.e. the
    recommended 39 plus the 3 it leaves out (27M 35M 53M): Table 2's 8,218 training samples
    are 2 x 4,109, about 2 x 42 x 98 (training samples counted twice as for GRID and
    CREMA-D), where 39 volunteers would give about 2 x 3,811. The lipspeakers are not used
    (1,131 more clips would not fit Table 2).
    """
    test = _sorted(v for v in tcd_timit.VOLUNTEERS
                   if int(v[:2]) in (8, 9, 15, 18, 25, 28, 33, 41, 55, 56))
    val = _sorted(v for v in tcd_timit.RECOMMENDED_TEST if v not in test)
    return Split(
        name="vougioukas2019", dataset="tcd-timit", version=1,
        description=("seed 003 Sect. 4, Table 1-2: the recommended speaker-independent split's "
                     "17 test volunteers, of which Table 1's 08F 09F 15F 18M 25M 28M 33F 41M "
                     "55F 56M are test and the other 7 (34M 36F 44F 45F 49F 54M 58F) "
                     "validation (Table 2: 686 clips = 7 x 98); train = the other 42 "
                     "volunteers (Table 2's 8218 training samples = 2 x ~42 x 98); "
                     "lipspeakers not used"),
        train=_others(tcd_timit.VOLUNTEERS, test, val), val=val, test=test)


def _tcd_timit_chen2022au() -> Split:
    """Seed 004, Sect. 4.1: "the audio and video footage of 49 speakers as the training set and
    that of 10 speakers as the testing set" (59 speakers: the volunteers). The paper names no
    speakers; the 10 test volunteers are drawn from the sorted 59 with default_rng(2022)."""
    test = tuple(_draw(tcd_timit.VOLUNTEERS, 10, seed=2022))
    return Split(
        name="chen2022au", dataset="tcd-timit", version=1,
        description=("seed 004 Sect. 4.1 (59 speakers: 49 train / 10 test; the paper names no "
                     "speakers): test = 10 of the 59 volunteers drawn by numpy "
                     "default_rng(2022).choice over their sorted IDs; train = the other 49; "
                     "no validation part; lipspeakers not used"),
        train=_others(tcd_timit.VOLUNTEERS, test), test=test)


# -------------------------------------------------------------------------------- synthetic
def _synthetic_70_15_15() -> Split:
    """The embedded corpus (SPEC 4.5): its speaker count depends on how it was generated, so
    this rule is applied to the speakers present rather than to a fixed list."""
    return Split(
        name="speakers-70-15-15", dataset="synthetic", version=1,
        description=("speakers present, sorted, permuted by numpy default_rng(0).permutation; "
                     "test = the first round(0.15 n) (at least 1), val = the next round(0.15 n) "
                     "(at least 1 when n >= 3), train = the rest"),
        fractions=(0.15, 0.15), seed=0)


# (dataset, split name) -> builder
_BUILDERS: dict[tuple[str, str], Callable[[], Split]] = {
    ("crema-d", "vougioukas2019"): _crema_d_vougioukas2019,
    ("crema-d", "goyal2023"): _crema_d_goyal2023,
    ("crema-d", "bhagat2022"): _crema_d_bhagat2022,
    ("grid", "vougioukas2019"): _grid_vougioukas2019,
    ("grid", "chen2022au"): _grid_chen2022au,
    ("tcd-timit", "vougioukas2019"): _tcd_timit_vougioukas2019,
    ("tcd-timit", "chen2022au"): _tcd_timit_chen2022au,
    ("synthetic", "speakers-70-15-15"): _synthetic_70_15_15,
}
_BUILT: dict[tuple[str, str], Split] = {}


def get_split(dataset: str, name: str) -> Split:
    """The split ``name`` of ``dataset``; an unknown name lists the known ones."""
    key = (dataset, name)
    if key not in _BUILDERS:
        known = ", ".join(s for d, s in _BUILDERS if d == dataset) or "none"
        raise UnknownName(f"unknown split {name!r} for dataset {dataset!r} (known: {known})")
    if key not in _BUILT:
        _BUILT[key] = _BUILDERS[key]()
    return _BUILT[key]


def list_splits(dataset: str | None = None) -> list[Split]:
    """Every registered split (of ``dataset`` when given), in registration order."""
    return [get_split(d, s) for d, s in _BUILDERS if dataset is None or d == dataset]


def split_summary(split: Split, clips: Iterable[ClipRef]) -> dict:
    """Speakers and clip counts per part for ``bench datasets`` and run metadata."""
    clips = list(clips)
    parts = split.apply(clips)
    summary: dict = {"dataset": split.dataset, "split": split.name, "version": split.version,
                     "parts": {}}
    for part, refs in parts.items():
        speakers = sorted({c.speaker for c in refs}, key=natural_key)
        summary["parts"][part] = {"clips": len(refs), "speakers": len(speakers),
                                  "speaker_ids": speakers}
    summary["unused_clips"] = len(clips) - sum(len(refs) for refs in parts.values())
    return summary
