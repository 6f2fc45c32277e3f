"""Leaderboards rendered from run summaries alone (SPEC 7): CSV and Markdown.

One row per model run, a ground-truth row (the real test videos scored as if generated), and
the papers' reported rows for the dataset (marked as reported, with their table). A column per
metric with its direction; its value (a mean over clips, a pooled or a set-level value: the
summary's ``kind``, `bench.results`) with its 95% bootstrap interval; footnotes for judge
provenance, skipped clips and unavailable values. The table is a pandas DataFrame
(`leaderboard_frame`) written as CSV by pandas; the Markdown is rendered from the same rows.

No number without its context (issue 12): a cell whose value covers fewer clips than its row
scored says so, ``0.180 (1/2)``, with the clips left out and why in a footnote (CSV:
``<col>_n``, ``<col>_unavailable``; empty cells where there is no value); rows are ranked only
against rows of the same split and test set (``provenance.test_set``), each column on the
clips every ranked row scored, or not ranked with a note saying why (`rank_models`); cells
made by a judge that is not above chance on the real test clips are marked (`JUDGE_QUALITY`,
CSV ``<col>_flag``); summaries that cannot be read are listed, not dropped.
Summaries are read as strict JSON (non-finite numbers as ``"nan"``/``"inf"``/``"-inf"``,
`bench.fileio`). Files are written atomically.

The headline (issue 18) is not a mean rank over the columns, which put a still photo second of
six because it wins PSNR, SSIM, CPBD, ACD and LSE-D against blurry faces: models get one rank
per metric family (`FAMILIES`: sync, identity & quality, realism to the real videos,
emotion), from paired tests over the clips (`significance`, `bench.report.paired`: Wilcoxon
signed-rank, Holm-corrected over all pairs of models), with ties where the tests find no
difference; cells not significantly different from a column's best are marked, and one
sentence under the table says what the ranks are (`rank_sentence`). The Markdown is the
compact view; `bench.report.html` renders the same cells (`leaderboard_table`) as a page with
plots, the paired tests, videos, judges and provenance.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.fileio import atomic_write_text, json_number
from bench.report.paired import ColumnComparison, compare_column, family_ranks
from bench.reported import PAPERS, Reported, reported_for
from bench.results import ColumnResult

# Label and direction (True: higher is better, False: lower, None: closest to real videos)
# of columns that reported rows can carry before this run computes them.
KNOWN_COLUMNS: dict[str, tuple[str, bool | None]] = {
    "psnr": ("PSNR", True),
    "ssim": ("SSIM", True),
    "cpbd": ("CPBD", True),
    "acd": ("ACD (dlib)", False),
    "acd_openface": ("ACD (OpenFace)", False),
    "lse_d": ("LSE-D", False),
    "lse_c": ("LSE-C", True),
    "av_offset": ("|AV offset|", None),
    "blinks_per_s": ("Blinks/s", None),
    "blink_duration_s": ("Blink dur. (s)", None),
    "fid": ("FID", False),
    "emoacc": ("EmoAcc", True),
    "au_f1": ("AU F1", True),
    "au_acc": ("AU Acc %", True),
    "wer_lipnet": ("WER % (LipNet)", False),
}


def arrow(higher_is_better: bool | None) -> str:
    return {True: "↑", False: "↓", None: "≈GT"}[higher_is_better]


@dataclass
class ColumnInfo:
    name: str
    label: str
    higher_is_better: bool | None
    fmt: str = ".3f"
    detail: bool = False  # only in the CSV
    metric: str | None = None  # the metric reporting it (from the summaries; None: unknown)


@dataclass
class Row:
    kind: str  # "model", "ground-truth" or "reported"
    model: str
    source: str
    split: str
    values: dict[str, ColumnResult] = field(default_factory=dict)  # column -> its result
    n_clips: int | None = None
    n_test: int | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    clips: dict | None = None  # the summary's ``clips`` (`bench.aggregate.coverage`), if any

    @property
    def test_set(self) -> str | None:
        """The hash naming the exact test clips the row was scored on (None: not recorded;
        every such row counts as one shared test set)."""
        value = self.provenance.get("test_set")
        return str(value) if value is not None else None

    def covered(self, column: str) -> set[str] | None:
        """The clip ids whose results made ``column``'s value (None: not recorded)."""
        if not isinstance(self.clips, dict) or column not in self.clips.get("missing", {}):
            return None
        return set(self.clips.get("ids", [])) - set(self.clips["missing"][column])

    def clip_values(self, column: str) -> dict[str, float] | None:
        """``column``'s per-clip values (mean-over-clips columns; None: not recorded)."""
        if not isinstance(self.clips, dict) or column not in self.clips.get("values", {}):
            return None
        out = {}
        for clip_id, value in zip(self.clips.get("ids", []), self.clips["values"][column],
                                  strict=False):
            number = json_number(value)
            if number is not None:
                out[clip_id] = number
        return out


def load_summaries(runs_dir: Path, dataset: str,
                   unreadable: dict[str, str] | None = None) -> list[dict]:
    """Every ``summary.json`` under ``runs_dir/<dataset>/<split>/<model>/``; those that cannot
    be read (or are not a summary) are left out and, with ``unreadable``, listed there
    (path -> reason) for the leaderboard to name."""
    base = Path(runs_dir) / dataset
    out = []
    for path in sorted(base.glob("*/*/summary.json")):
        try:
            summary = json.loads(path.read_text())
            if not isinstance(summary, dict) or "model" not in summary:
                raise ValueError("not a talkbench summary (no model)")
        except (OSError, ValueError) as err:  # JSONDecodeError, UnicodeDecodeError included
            if unreadable is not None:
                unreadable[str(path)] = f"{type(err).__name__}: {str(err).splitlines()[0]}" \
                    if str(err) else type(err).__name__
            continue
        out.append(summary)
    return out


def _rows_from_summaries(summaries: list[dict]) -> tuple[list[Row], dict[str, ColumnInfo]]:
    columns: dict[str, ColumnInfo] = {}
    rows: list[Row] = []
    for s in summaries:
        for name, info in s.get("columns", {}).items():
            columns.setdefault(name, ColumnInfo(name, info["label"], info["higher_is_better"],
                                                info.get("fmt", ".3f"),
                                                info.get("detail", False), info.get("metric")))
        is_gt = s.get("kind") == "ground-truth"
        source = "talkbench: real test videos" if is_gt else (
            f"talkbench, budget {s.get('budget', '?')}")
        rows.append(Row(kind=s.get("kind", "model"), model="ground truth" if is_gt else s["model"],
                        source=source, split=s.get("split", ""),
                        values={name: ColumnResult.from_dict(value)
                                for name, value in s.get("aggregate", {}).items()},
                        n_clips=s.get("n_scored"),
                        n_test=s.get("n_test"), skipped=s.get("skipped", {}),
                        provenance=s.get("provenance", {}), clips=s.get("clips")))
    rows.sort(key=lambda r: (r.kind != "model", r.split, r.model))
    return rows, columns


def _rows_from_reported(reported: list[Reported]) -> list[Row]:
    grouped: dict[tuple[str, str, str, str], dict[str, ColumnResult]] = defaultdict(dict)
    for r in reported:
        grouped[(r.source, r.table, r.split, r.model)][r.metric] = ColumnResult(
            kind="reported", value=r.value, bound=r.bound or None,
            note=r.note if r.bound else None)
    rows = []
    for (source, table, split, model), values in grouped.items():
        rows.append(Row(kind="reported", model=model, source=f"reported: {source} {table}",
                        split=split, values=values))
    return rows


def _finite(value: ColumnResult | None) -> float:
    """A cell's finite value, or NaN (missing, unavailable, not finite)."""
    if value is None or not value.available or value.value is None:
        return math.nan
    return value.value if math.isfinite(value.value) else math.nan


def value_frame(rows: list[Row], cols: list[ColumnInfo]) -> pd.DataFrame:
    """One row per leaderboard row (positions of ``rows``): ``kind``, ``split``,
    ``test_set`` (the row's test-set hash, "" when not recorded), then one float column per
    metric column holding the row's finite value (NaN: none)."""
    frame = pd.DataFrame({"kind": [r.kind for r in rows], "split": [r.split for r in rows],
                          "test_set": [r.test_set or "" for r in rows]},
                         index=pd.RangeIndex(len(rows)))
    numbers = pd.DataFrame([[_finite(r.values.get(c.name)) for c in cols] for r in rows],
                           columns=[c.name for c in cols], index=frame.index, dtype=np.float64)
    return pd.concat([frame, numbers], axis=1)


def _mean_over(values: dict[str, float], clips: set[str]) -> float:
    """The mean of the finite values of ``clips`` (NaN when none)."""
    finite = [values[c] for c in clips if c in values and math.isfinite(values[c])]
    return float(np.mean(finite)) if finite else math.nan


def _comparable(compared: list[Row], col: ColumnInfo
                ) -> tuple[dict[int, float] | None, str | None]:
    """The values to compare ``compared`` by in ``col``, on the clips every one of them scored
    (issue 12), as ``(id(row) -> value, note)``.

    When every row's value covers the same clips (or the rows recorded no coverage and their
    counts agree), the rows' own values. Otherwise, for a mean-over-clips column whose
    per-clip values the summaries hold, each row's mean over the common clips, with a note;
    else None and the note saying why the rows cannot be compared."""
    own = {id(r): _finite(r.values.get(col.name)) for r in compared}
    sets = [r.covered(col.name) for r in compared]
    counts = [r.values[col.name].n_covered for r in compared]
    names = ", ".join(f"{r.model} {n}/{r.n_clips}" for r, n in zip(compared, counts,
                                                                     strict=True))
    if any(s is None for s in sets):
        if len(set(counts)) <= 1:
            return own, None
        return None, (f"{col.label}: not ranked: the rows cover different numbers of clips "
                      f"({names}) and their summaries do not say which (rerun to record it)")
    common = set.intersection(*sets)  # type: ignore[arg-type]
    if all(s == common for s in sets):
        return own, None
    per_clip = [r.clip_values(col.name) for r in compared]
    if not common:
        return None, (f"{col.label}: not ranked: the rows have no clip in common that all of "
                      f"them scored ({names})")
    if any(v is None for v in per_clip):
        return None, (f"{col.label}: not ranked: the rows scored different clips ({names}) "
                      "and a pooled or set-level value cannot be recomputed on the clips they "
                      "share")
    values = {id(r): _mean_over(v, common) for r, v in zip(compared, per_clip, strict=True)}
    return values, (f"{col.label}: ranked on the {len(common)} clips every ranked row scored "
                    f"({names}); the cells show each row's value over its own clips")


def rank_models(rows: list[Row], cols: list[ColumnInfo], notes: list[str] | None = None
                ) -> dict[int, dict[str, float]]:
    """Order talkbench's model rows by value, per split and test set, per column (which model
    is a column's best, for the bold cells; the headline ranks are `significance`'s).

    Returns ``id(row) -> {column: rank}``. Rows are ranked only against rows
    of the same split and the same test set (the summaries' ``provenance.test_set``: the hash
    of the exact test clips, which ``--max-test-clips`` changes; rows without it form one
    shared set). Within such a group, the model rows with a number in a column are ranked by
    it (1 = best; ties share the mean of their ranks): by value for ↑/↓ columns, by distance
    to the group's ground-truth row for ≈GT columns (which then need that row). Rows are
    compared on the clips every one of them scored (`_comparable`); when that is impossible
    the column is not ranked in that group and ``notes`` gets why. Columns with fewer than two
    ranked models are not ranked. (There is no mean over the columns: a still photo wins
    PSNR, SSIM, CPBD and ACD against any moving face, issue 18.)
    """
    out: dict[int, dict[str, float]] = {id(r): {} for r in rows if r.kind == "model"}
    groups: dict[tuple[str, str | None], list[Row]] = defaultdict(list)
    for row in rows:
        if row.kind in ("model", "ground-truth"):
            groups[(row.split, row.test_set)].append(row)
    for group in groups.values():
        models = [r for r in group if r.kind == "model"]
        gt = next((r for r in group if r.kind == "ground-truth"), None)
        for c in cols:
            if c.detail:
                continue
            ranked = [r for r in models if not math.isnan(_finite(r.values.get(c.name)))]
            if len(ranked) < 2:
                continue
            compared = list(ranked)
            if c.higher_is_better is None:
                if gt is None or math.isnan(_finite(gt.values.get(c.name))):
                    continue
                compared.append(gt)
            values, note = _comparable(compared, c)
            if note is not None and notes is not None:
                where = f" ({ranked[0].split})" if ranked[0].split else ""
                text = f"rank{where}: {note}"
                if text not in notes:
                    notes.append(text)
            if values is None:
                continue
            if c.higher_is_better is None:
                keys = pd.Series({id(r): abs(values[id(r)] - values[id(gt)]) for r in ranked})
            else:
                sign = -1.0 if c.higher_is_better else 1.0
                keys = pd.Series({id(r): sign * values[id(r)] for r in ranked})
            keys = keys.dropna()
            if len(keys) < 2:
                continue
            for key, rank in keys.rank(method="average").items():
                out[key][c.name] = float(rank)
    return out


# -- the headline: ranks per metric family with ties from paired tests (issue 18) -----------

FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sync": ("Sync", ("lse_c", "av_offset", "m_lmd")),
    "quality": ("Identity & quality", ("acd", "acd_openface", "psnr", "ssim", "cpbd", "fid",
                                       "fid_emotion", "lpips", "fvd")),
    "realism": ("Realism", ("blinks_per_s", "blink_duration_s", "au_f1", "au_acc", "f_lmd")),
    "emotion": ("Emotion", ("emoacc",)),
}
"""Family -> (label, the columns its rank is made of). Sync uses what seeds 001 and 003
report for it (the SyncNet confidence LSE-C and the AV offset to the real clip) and the mouth
landmark distance M-LMD (Chen et al. 2018); realism is closeness to the real videos (blinks,
speech-related AU occurrence, the whole-face landmark distance F-LMD); LSE-D is in no family
(`UNRANKED`)."""

UNRANKED: dict[str, str] = {
    "lse_d": "LSE-D is shown but not ranked: it is SyncNet's absolute audio-video distance at "
             "the best offset, which a still or barely moving mouth keeps small (still-image "
             "beats moving faces on it), while the confidence LSE-C measures how much better "
             "the best offset is than the others",
}
"""Columns shown in the table but left out of every family rank, with why."""

RANK_SENTENCE = (
    "Ranks are per metric family ({families}): a model's rank is 1 + the number of models "
    "significantly better than it on more of the family's columns than they are worse, "
    "significant meaning a two-sided Wilcoxon signed-rank test over the clips every model "
    "scored (≈GT columns: each clip's distance to its real clip) with p < 0.05 after a Holm "
    "correction over all pairs of models, so equal ranks are statistical ties (bold: a "
    "column's best model; italic: not significantly different from it).")
"""The one sentence under the table that says what the ranks are."""


def _groups(rows: list[Row]) -> dict[tuple[str, str | None], list[Row]]:
    """The model and ground-truth rows by (split, test set): the rows compared together."""
    groups: dict[tuple[str, str | None], list[Row]] = defaultdict(list)
    for row in rows:
        if row.kind in ("model", "ground-truth"):
            groups[(row.split, row.test_set)].append(row)
    return groups


def family_of(col: ColumnInfo) -> str | None:
    """The family whose rank ``col`` is part of (None: none)."""
    return next((f for f, (_, names) in FAMILIES.items() if col.name in names), None)


@dataclass
class Significance:
    """The paired tests of a leaderboard (`significance`): per group of rows compared
    together, the column comparisons; per model row, its family ranks."""

    comparisons: dict[tuple[str, str | None], dict[str, ColumnComparison]]
    ranks: dict[int, dict[str, int]]  # id(row) -> family -> rank
    families: list[str]  # the families with a column in the table, in FAMILIES order
    notes: list[str]

    def comparison(self, row: Row, column: str) -> ColumnComparison | None:
        found = self.comparisons.get((row.split, row.test_set), {}).get(column)
        return found if found is not None and found.best is not None else None


def significance(rows: list[Row], cols: list[ColumnInfo], seed: int = 0) -> Significance:
    """Paired tests of every pair of model rows, per group (split and test set) and column
    with per-clip values in the summaries (`bench.report.paired.compare_column`: Wilcoxon
    signed-rank, Holm over the column's pairs, paired bootstrap of the mean difference), and
    each model row's rank per family (`FAMILIES`, `bench.report.paired.family_ranks`).
    Columns without per-clip values (pooled, set-level, older summaries) are not tested; the
    notes say which."""
    cols = [c for c in cols if not c.detail]
    families = [f for f in FAMILIES if any(family_of(c) == f for c in cols)]
    out = Significance({}, {}, families, [])
    untested: dict[str, list[str]] = defaultdict(list)
    for key, group in _groups(rows).items():
        models = [r for r in group if r.kind == "model"]
        gt = next((r for r in group if r.kind == "ground-truth"), None)
        comparisons: dict[str, ColumnComparison] = {}
        for c in cols:
            valued = [r for r in models if not math.isnan(_finite(r.values.get(c.name)))]
            if len(valued) < 2:
                continue
            per_clip = {r.model: r.clip_values(c.name) for r in valued}
            if any(v is None for v in per_clip.values()):
                if family_of(c) is not None:
                    untested[c.label].append(key[0])
                continue
            truth = gt.clip_values(c.name) if gt is not None else None
            comparisons[c.name] = compare_column(c.name, c.higher_is_better,
                                                 per_clip,  # type: ignore[arg-type]
                                                 truth, seed=seed)
        out.comparisons[key] = comparisons
        by_name = {r.model: r for r in models}
        for family in families:
            tested = [comparisons[c.name] for c in cols if family_of(c) == family
                      and c.name in comparisons and comparisons[c.name].best is not None]
            for name, rank in family_ranks(tested).items():
                out.ranks.setdefault(id(by_name[name]), {})[family] = rank
    if untested:
        out.notes.append(
            "not ranked (shown only): " + ", ".join(sorted(untested)) + ": the summaries "
            "hold no per-clip values for them (pooled over clips or set-level, or written "
            "before per-clip values were recorded), so no paired test is possible")
    if any(c.name in UNRANKED for c in cols):
        out.notes += [text for name, text in UNRANKED.items() if any(c.name == name
                                                                     for c in cols)]
    return out


def rank_sentence(families: list[str], cols: list[ColumnInfo]) -> str:
    """`RANK_SENTENCE` naming the families present and their columns in the table."""
    names = "; ".join(
        f"{FAMILIES[f][0]}: " + ", ".join(c.label for c in cols
                                           if family_of(c) == f and not c.detail)
        for f in families)
    return RANK_SENTENCE.format(families=names)


# -- is our judge the papers' judge? (issue 17) ---------------------------------------------

MARKER = "†"
"""Appended to a column's header when talkbench's judge differs from the one behind the
reported rows beside it; the footnote says how."""


def _lse_judge(prov: dict) -> str | None:
    if str(prov.get("source", "")).startswith("syncnet_python syncnet_v2.model"):
        return None
    return ("LSE and the AV offset come from a SyncNet talkbench trained on this split "
            "(the official syncnet_v2.model is not present), not the SyncNet the papers used: "
            "the scale differs, compare rows of this table with each other, not with the "
            "reported rows")


def _acd_judge(prov: dict) -> str | None:
    return ("ACD uses dlib's face-recognition ResNet; seed 003 used OpenFace embeddings "
            "(values ~1e-4), another scale")


def _au_judge(prov: dict) -> str | None:
    if prov.get("labels") == "openface":
        return None
    return ("AU labels come from talkbench's landmark rules (or the classifier trained on "
            "them), not OpenFace as in seed 004; AU14 is left out (not visible in landmarks)")


def _emoacc_judge(prov: dict) -> str | None:
    return ("EmoAcc is judged by an emotion classifier talkbench trained on this split, "
            "not the papers' own classifiers")


def _wer_judge(prov: dict) -> str | None:
    return ("WER is read by a LipNet talkbench trained on this split's train speakers, not "
            "the lip reader of the papers (seed 003's ground truth: 21.76 %)")


JUDGE_DIFFERS: dict[str, Callable[[dict], str | None]] = {
    "lse": _lse_judge, "acd": _acd_judge, "au": _au_judge, "emoacc": _emoacc_judge,
    "wer": _wer_judge,
}
"""Metric -> (its provenance in a run -> why its judge is not the papers', None when it is).
Metrics not listed (PSNR, SSIM, CPBD, FID with pytorch-fid's weights, blinks, LMD) compute
the papers' number themselves."""


def judge_differences(rows: list[Row], cols: list[ColumnInfo]) -> dict[str, str]:
    """Column -> why talkbench's judge differs from the reported rows' (`JUDGE_DIFFERS`), for
    the columns where a reported row has a number beside talkbench's rows."""
    out: dict[str, str] = {}
    for c in cols:
        check = JUDGE_DIFFERS.get(c.metric or "")
        if check is None or not any(r.kind == "reported" and c.name in r.values for r in rows):
            continue
        for row in rows:
            prov = row.provenance.get("metrics", {}).get(c.metric)
            if row.kind != "reported" and c.name in row.values and isinstance(prov, dict):
                why = check(prov)
                if why:
                    out[c.name] = why
                    break
    return out


def test_set_notes(rows: list[Row]) -> list[str]:
    """A note per split whose rows were scored on different test sets (ranked apart)."""
    sets: dict[str, dict[str | None, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.kind in ("model", "ground-truth"):
            sets[row.split][row.test_set].append(row)
    out = []
    for split, by_set in sets.items():
        if len(by_set) < 2:
            continue
        parts = []
        for test_set, members in by_set.items():
            limit = members[0].provenance.get("max_test_clips")
            name = f"test set {test_set[:12]}" if test_set else "test set not recorded"
            parts.append(f"{name} ({members[0].n_test} test clips"
                         + (f", --max-test-clips {limit}" if limit is not None else "")
                         + "): " + ", ".join(r.model for r in members))
        out.append(f"split {split}: rows scored on different test clips are ranked only "
                   f"against rows of the same test set; " + "; ".join(parts))
    return out


def _number(x: float, fmt: str) -> str:
    """``x`` in the column's format, or in 3 significant digits when that format would show
    a non-zero value as zero (reported ACD values are ~1e-4)."""
    text = format(x, fmt)
    if x != 0 and not any(ch in "123456789" for ch in text):
        text = format(x, ".3g")
    return text


def _cell(value: ColumnResult | None, fmt: str) -> str:
    """A Markdown cell: the value with its interval (when there is one and more than one clip
    made it), how many clips were infinite; "n/a" unavailable, "—" not measured."""
    if value is None:
        return "—"
    if not value.available:
        return "n/a"
    if value.value is None or math.isnan(value.value):
        text = "n/a"
    else:
        text = _number(value.value, fmt)
        if value.ci_low is not None and value.ci_high is not None and value.n > 1:
            text += f" [{_number(value.ci_low, fmt)}, {_number(value.ci_high, fmt)}]"
    if value.n_infinite:
        text += f" (+{value.n_infinite} inf)"
    return text


def build_table(dataset: str, summaries: list[dict],
                reported: list[Reported] | None = None) -> tuple[list[Row], list[ColumnInfo]]:
    """The rows and columns of a dataset's leaderboard."""
    rows, columns = _rows_from_summaries(summaries)
    reported = reported_for(dataset) if reported is None else reported
    rows += _rows_from_reported(reported)
    for r in reported:
        if r.metric not in columns:
            label, hib = KNOWN_COLUMNS.get(r.metric, (r.metric, None))
            columns[r.metric] = ColumnInfo(r.metric, label, hib, ".3f")
    order = list(KNOWN_COLUMNS)
    cols = sorted(columns.values(),
                  key=lambda c: (order.index(c.name) if c.name in order else len(order), c.name))
    return rows, cols


def partial_coverage(row: Row, col: ColumnInfo) -> tuple[int, int] | None:
    """``(clips that made the value, the row's scored clips)`` when ``col``'s value covers
    fewer clips than the row scored (issue 12: a cell says its coverage), else None."""
    value = row.values.get(col.name)
    if row.kind == "reported" or value is None or not value.available or not row.n_clips:
        return None
    covered = row.covered(col.name)
    n = len(covered) if covered is not None else value.n_covered
    return (n, row.n_clips) if n < row.n_clips else None


def missing_reasons(row: Row, col: ColumnInfo, limit: int = 3) -> str:
    """``"b: no face found; c: ..."``: up to ``limit`` clips ``col`` left out, with why."""
    reasons: dict[str, str] = {}
    if isinstance(row.clips, dict):
        reasons = dict(row.clips.get("missing", {}).get(col.name, {}))
    value = row.values.get(col.name)
    if not reasons and value is not None:
        reasons = dict(value.unavailable_examples)
    text = "; ".join(f"{clip}: {reason}" for clip, reason in list(reasons.items())[:limit])
    if len(reasons) > limit:
        text += f"; and {len(reasons) - limit} more"
    return text or "no reason recorded"


# -- judges that did not learn --------------------------------------------------------------

@dataclass(frozen=True)
class JudgeQuality:
    """Which figure of a judge's report (``judges.json``: the judge's ``evaluate`` on the real
    test clips) says whether it learned, and the chance level it is compared with."""

    metric: str
    """The metric whose columns the judge produces."""
    figure: str
    """The key in the report's ``test`` compared with chance."""
    chance: float | None
    """The chance level of ``figure`` when the report gives none (its ``chance`` key wins)."""
    meaning: str


JUDGE_QUALITY: dict[str, JudgeQuality] = {
    "emotion": JudgeQuality("emoacc", "accuracy", 1 / 6,
                            "clip accuracy on the real test clips vs. 1/6, a guess among the "
                            "six emotions"),
    "syncnet": JudgeQuality("lse", "offset_accuracy", 3 / 31,
                            "fraction of real (in-sync) test clips whose AV offset is within "
                            "one frame of 0 vs. 3/31, a random pick among the 31 offsets"),
    "au": JudgeQuality("au", "avg_f1", None,
                       "mean F1 over the AUs vs. the mean F1 of always answering 'present' "
                       "(the report's chance, from each AU's prevalence); against the "
                       "synthesised AU states (truth_avg_f1) where the corpus has them, else "
                       "against the landmark rules it was trained on"),
}
"""The one place that says, per trained judge, which figure of its quality on the real test
clips is compared with which chance level (issue 12). A judge whose figure is not above its
chance level learned nothing usable: every cell it produced is marked "judge below chance"
(a footnote in the Markdown, ``<column>_flag`` in the CSV); the numbers stay, marked."""


def judge_below_chance(name: str, report: dict) -> str | None:
    """The note for judge ``name`` when its report says it is not above chance, else None
    (also None when the report lacks the figure or a chance level)."""
    rule = JUDGE_QUALITY.get(name)
    test = report.get("test") if isinstance(report, dict) else None
    if rule is None or not isinstance(test, dict):
        return None
    figure_name = str(test.get("figure") or rule.figure)  # the report may name a better one
    figure = json_number(test.get(figure_name))
    chance = json_number(test.get("chance"))
    chance = rule.chance if chance is None else chance
    if figure is None or chance is None or figure > chance:
        return None
    return (f"judge below chance: the {name} judge's {figure_name} on "
            f"{report.get('n_test', '?')} real test clips is {figure:.3f}, chance "
            f"{chance:.3f} ({rule.meaning}); the cells it produced are not meaningful")


def judge_flags(rows: list[Row], cols: list[ColumnInfo],
                reports: dict[str, dict] | None) -> dict[tuple[int, str], str]:
    """``(id(row), column) -> note`` for every cell produced by a judge below chance: the
    judges of the row's split (``reports``: split -> judge -> report) whose description
    (``report["judge"]``) appears in the row's provenance of the judge's metric."""
    out: dict[tuple[int, str], str] = {}
    for row in rows:
        judges = (reports or {}).get(row.split) or {}
        for name, report in judges.items():
            note = judge_below_chance(name, report)
            if note is None:
                continue
            described = str(report.get("judge", ""))
            prov = row.provenance.get("metrics", {}).get(JUDGE_QUALITY[name].metric, {})
            if not described or not any(described in str(v) for v in prov.values()):
                continue
            for c in cols:
                if c.metric == JUDGE_QUALITY[name].metric and c.name in row.values:
                    out[(id(row), c.name)] = note
    return out


INTRO = ("Mean over test clips with its 95% bootstrap interval (2000 resamples of clips). "
         "↑ higher is better, ↓ lower is better, ≈GT closest to the real videos. Reported rows "
         "are the papers' numbers, on their own data and splits, not recomputed. — : not "
         "measured for that row. (k/n): the value covers k of the row's n scored clips (the "
         "notes say why). Models are compared only with models of the same split and test "
         "clips; the sentence under the table says what the ranks are.")
"""The paragraph above the leaderboard table (Markdown and HTML)."""


@dataclass
class Cell:
    """One cell of the leaderboard: ``prefix`` (≥/≤ of a bounded reported value), ``text``,
    its ``emphasis`` ("best": the column's best model, "tied": not significantly different
    from it), ``coverage`` ("k/n" when the value covers fewer clips than the row scored) and
    the numbers of its footnotes."""

    text: str
    emphasis: str | None = None
    prefix: str = ""
    coverage: str | None = None
    notes: list[int] = field(default_factory=list)
    sort: float | None = None  # the number to sort by (HTML)

    def markdown(self) -> str:
        text = self.text + (f" ({self.coverage})" if self.coverage else "")
        text = {"best": f"**{text}**", "tied": f"*{text}*"}.get(self.emphasis or "", text)
        return self.prefix + text + "".join(f" [{n}]" for n in self.notes)


@dataclass
class Table:
    """The leaderboard as cells (`leaderboard_table`): what the Markdown and the HTML report
    render."""

    header: list[str]
    rows: list[Row]  # in display order
    cells: list[list[Cell]]
    notes: list[str]  # numbered footnotes (1-based in the cells)
    cols: list[ColumnInfo]  # the metric columns shown (no detail columns)
    significance: Significance
    n_lead: int  # columns before the metric columns (model ... family ranks)


def leaderboard_table(rows: list[Row], cols: list[ColumnInfo], *,
                      judges: dict[str, dict] | None = None,
                      unreadable: dict[str, str] | None = None) -> Table:
    """The leaderboard's cells and footnotes (detail columns, e.g. per-AU scores, left out).

    A cell whose value covers fewer clips than its row scored says so, ``0.180 (1/2)``, with
    a footnote naming the clips left out and why; cells made by a judge below chance
    (``judges``: split -> judge -> report, `judge_flags`) are marked; ``unreadable``
    (summary path -> reason) lists the rows that could not be read. Model rows are sorted
    by their family ranks (`significance`), sync first."""
    all_cols = cols
    cols = [c for c in cols if not c.detail]
    notes: list[str] = []

    def note(text: str) -> int:
        if text not in notes:
            notes.append(text)
        return notes.index(text) + 1

    rank_notes: list[str] = []
    ranks = rank_models(rows, cols, rank_notes)
    tests = significance(rows, cols)
    flags = judge_flags(rows, all_cols, judges)
    rows = sorted(rows, key=lambda r: (r.kind != "model", r.split, r.test_set or "",
                                       _rank_key(tests, r), r.model))
    differs = judge_differences(rows, cols)
    header = (["Model", "Source", "Split", "Clips"]
              + [FAMILIES[f][0] for f in tests.families]
              + [f"{c.label} {arrow(c.higher_is_better)}"
                 + (f" {MARKER}{note(f'{MARKER} {c.label}: {differs[c.name]}')}"
                    if c.name in differs else "") for c in cols])
    cells: list[list[Cell]] = []
    for row in rows:
        clips = Cell("—")
        if row.kind != "reported":
            clips = Cell(f"{row.n_clips}/{row.n_test}", sort=row.n_clips)
            if row.skipped:
                reasons: dict[str, int] = defaultdict(int)
                for reason in row.skipped.values():
                    reasons[_reason_kind(reason)] += 1
                detail = "; ".join(f"{n} {k}" for k, n in sorted(reasons.items()))
                clips.notes.append(note(f"{row.model}: {len(row.skipped)} of {row.n_test} "
                                        f"test clips skipped ({detail}); first: "
                                        f"{next(iter(row.skipped.values()))}"))
            partial = [(c, partial_coverage(row, c)) for c in cols]
            partial = [(c, p) for c, p in partial if p is not None]
            if partial:
                clips.notes.append(note(
                    f"{row.model}: not every metric scored all {row.n_clips} clips: "
                    + ", ".join(f"{c.label} {k}/{n}" for c, (k, n) in partial)))
        row_ranks = ranks.get(id(row), {})
        family = tests.ranks.get(id(row), {})
        log = row.provenance.get("train_log") if row.kind == "model" else None
        log = log if isinstance(log, dict) else {}
        name = Cell(row.model)
        if log.get("renderer"):  # a stand-in the paper did not use (ventriloquist)
            name.notes.append(note(f"{row.model}: frames drawn by {log['renderer']}"))
        line = [name, Cell(row.source), Cell(row.split), clips]
        line += [Cell(str(family[f]), sort=family[f]) if f in family else Cell("—")
                 for f in tests.families]
        for c in cols:
            value = row.values.get(c.name)
            number = _finite(value)
            cell = Cell(_cell(value, c.fmt), sort=None if math.isnan(number) else number)
            compared = tests.comparison(row, c.name) if row.kind == "model" else None
            if compared is not None and row.model in compared.values:
                if compared.loss(row.model) == compared.loss(compared.best):  # type: ignore
                    cell.emphasis = "best"
                elif compared.tied_with_best(row.model):
                    cell.emphasis = "tied"
            elif row_ranks.get(c.name) == 1.0:
                cell.emphasis = "best"
            coverage = partial_coverage(row, c)
            if coverage is not None:
                cell.coverage = f"{coverage[0]}/{coverage[1]}"
                cell.notes.append(note(
                    f"{row.model}, {c.label}: {coverage[1] - coverage[0]} of {coverage[1]} "
                    f"clips left out: {missing_reasons(row, c)}"))
            if value is not None and not value.available:
                cell.notes.append(note(f"unavailable: {value.unavailable}"))
            if value is not None and value.bound:
                cell.prefix = "≥ " if value.bound == "lower" else "≤ "
                cell.notes.append(note(f"{row.source}, {c.label}: {value.note}"))
            if (id(row), c.name) in flags:
                cell.notes.append(note(flags[(id(row), c.name)]))
            if c.metric == "emoacc" and log.get("emotion_source") == "speech":
                cell.notes.append(note(f"{row.model}: the emotion is inferred from the speech; "
                                       "the requested emotion is ignored"))
            line.append(cell)
        cells.append(line)
    for text in test_set_notes(rows) + rank_notes + tests.notes:
        note(text)
    if unreadable:
        for path, reason in unreadable.items():
            note(f"not shown: {path} could not be read ({reason}); rerun that model to "
                 "rewrite it")
    return Table(header, rows, cells, notes, cols, tests, 4 + len(tests.families))


def render_markdown(dataset: str, rows: list[Row], cols: list[ColumnInfo], *,
                    judges: dict[str, dict] | None = None,
                    unreadable: dict[str, str] | None = None) -> str:
    """The Markdown leaderboard (`leaderboard_table`; detail columns, e.g. per-AU scores, are
    in the CSV only), the sentence saying what the ranks are under it, then the notes."""
    board = leaderboard_table(rows, cols, judges=judges, unreadable=unreadable)
    lines = [f"# talkbench leaderboard: {dataset}", "", INTRO, ""]
    table = pd.DataFrame([[cell.markdown() for cell in line] for line in board.cells],
                         columns=pd.Index(board.header), dtype=object)
    lines += markdown_table(table, right_from=4)
    lines.append("")
    if board.significance.families:
        lines.append(rank_sentence(board.significance.families, board.cols))
        lines.append("")
    provenance = _provenance_notes(board.rows)
    if board.notes or provenance:
        lines.append("Notes")
        lines.append("")
        for i, text in enumerate(board.notes, 1):
            lines.append(f"{i}. {text}")
        lines.extend(provenance)
        lines.append("")
    used = sorted({r.source.split()[1] for r in board.rows if r.kind == "reported"})
    if used:
        lines.append("Reported sources: " + "; ".join(f"{s}: {PAPERS.get(s, s)}" for s in used)
                     + ".")
        lines.append("")
    return "\n".join(lines)


def _rank_key(tests: Significance, row: Row) -> tuple[float, ...]:
    """A row's family ranks in `FAMILIES` order (unranked last), for sorting the table."""
    ranks = tests.ranks.get(id(row), {})
    return tuple(float(ranks.get(f, math.inf)) for f in tests.families)


def markdown_table(table: pd.DataFrame, right_from: int = 0) -> list[str]:
    """The lines of a Markdown (GitHub) table of ``table``'s text cells; columns from position
    ``right_from`` on are right-aligned. A ``|`` inside a cell (the ``|AV offset|`` header)
    is escaped as ``\\|``, as GitHub's table syntax asks: unescaped, the header would have more
    cells than the delimiter row and GitHub would not draw the table at all."""
    n = len(table.columns)

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |",
             "|" + "|".join(["---"] * min(right_from, n) + ["---:"] * max(0, n - right_from))
             + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |"
              for row in table.itertuples(index=False, name=None)]
    return lines


def _reason_kind(reason: str) -> str:
    """A short category of a skip reason, for counting ('no face found', ...)."""
    text = reason.split(": ", 1)[-1]
    return text.split(" (")[0].split(" in ")[0][:60]


def _provenance_notes(rows: list[Row]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for metric, prov in row.provenance.get("metrics", {}).items():
            text = f"- {metric}: " + ", ".join(f"{k}: {v}" for k, v in prov.items())
            if text not in seen:
                seen.add(text)
                out.append(text)
    for row in rows:
        p = row.provenance
        if row.kind == "model" and p:
            out.append(f"- {row.model}: code {p.get('git_commit', '?')}, seed "
                       f"{p.get('seed')}, device {p.get('device')}, split {row.split} "
                       f"v{p.get('split_version')}, data {p.get('dataset_hash', '?')[:12]}"
                       f"{_training_text(p.get('train_log'))}")
    return out


def _training_text(log: object) -> str:
    """", trained N steps" (and why it stopped) from a model's training log. The wall time
    stays in the summary's ``timing`` (and the HTML report): the leaderboard is a function of
    the command and the seed, identical on every machine (issue 13)."""
    if not isinstance(log, dict) or not log.get("steps"):
        return ""
    text = f", trained {log['steps']} steps"
    stages = log.get("stages") if isinstance(log.get("stages"), dict) else {}
    if log.get("stopped_early") or any(isinstance(st, dict) and st.get("stopped_early")
                                       for st in stages.values()):
        text += " (stopped at the budget's time limit)"
    if log.get("perceptual"):
        text += f", perceptual loss: {log['perceptual']}"
    return text


def _csv_number(value: float | None) -> float | str | None:
    """A number for the CSV: floats as they are (pandas writes the shortest round-trip repr),
    NaN as ``nan`` (not blank, which means "none"), None blank."""
    if value is not None and math.isnan(value):
        return "nan"
    return value


def leaderboard_frame(rows: list[Row], cols: list[ColumnInfo],
                      judges: dict[str, dict] | None = None) -> pd.DataFrame:
    """The leaderboard as a table, one row per row: ``kind``, ``model``, ``source``, ``split``,
    ``n_clips``, ``n_test``, ``n_skipped``, ``test_set``, ``rank_<family>`` per metric family
    with a column in the table (`significance`: 1 = best, equal ranks are ties), then per
    metric column ``<name>``, ``<name>_ci_low``, ``<name>_ci_high`` (empty when there is no value),
    ``<name>_n`` (clips that made the value), ``<name>_unavailable`` (why there is no value,
    or which clips the value leaves out and why) and ``<name>_flag`` ("judge below chance"
    when the judge that produced it did not learn, `JUDGE_QUALITY`) and ``<name>_comparable``
    (False when talkbench's judge differs from the one behind the reported rows beside it,
    `judge_differences`; empty on reported rows); None where there is nothing to show.
    Object columns, so integers stay integers."""
    tests = significance(rows, cols)
    flags = judge_flags(rows, cols, judges)
    differs = judge_differences(rows, cols)
    header = ["kind", "model", "source", "split", "n_clips", "n_test", "n_skipped",
              "test_set"] + [f"rank_{f}" for f in tests.families]
    for c in cols:
        header += [c.name, f"{c.name}_ci_low", f"{c.name}_ci_high", f"{c.name}_n",
                   f"{c.name}_unavailable", f"{c.name}_flag", f"{c.name}_comparable"]
    table = []
    for row in rows:
        out = [row.kind, row.model, row.source, row.split or None, row.n_clips,
               row.n_test, len(row.skipped) if row.kind != "reported" else None,
               row.test_set]
        out += [tests.ranks.get(id(row), {}).get(f) for f in tests.families]
        for c in cols:
            v = row.values.get(c.name)
            flag = "judge below chance" if (id(row), c.name) in flags else None
            comparable = None if row.kind == "reported" or v is None else (
                c.name not in differs)
            if v is None:
                out += [None, None, None, None, None, None, None]
            elif not v.available:
                out += [None, None, None, 0, v.unavailable, flag, comparable]
            else:
                coverage = partial_coverage(row, c)
                reason = None
                if coverage is not None:
                    reason = (f"{coverage[1] - coverage[0]} of {coverage[1]} clips left out: "
                              f"{missing_reasons(row, c)}")
                n = None if row.kind == "reported" else (
                    coverage[0] if coverage is not None else v.n_covered)
                out += [_csv_number(v.value), _csv_number(v.ci_low), _csv_number(v.ci_high),
                        n, reason, flag, comparable]
        table.append(out)
    return pd.DataFrame(table, columns=pd.Index(header), dtype=object)


def render_csv(rows: list[Row], cols: list[ColumnInfo],
               judges: dict[str, dict] | None = None) -> str:
    """The CSV leaderboard (`leaderboard_frame`, written by pandas: CSV quoting, blank for
    none; text columns ``test_set``, ``<name>_unavailable`` and ``<name>_flag``)."""
    return leaderboard_frame(rows, cols, judges).to_csv(index=False, lineterminator="\n",
                                                        na_rep="")


def load_judge_reports(runs_dir: Path, dataset: str) -> dict[str, dict]:
    """``runs/<dataset>/<split>/judges.json`` of every split: split -> judge -> report."""
    out = {}
    for path in sorted((Path(runs_dir) / dataset).glob("*/judges.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict):
            out[path.parent.name] = {k: v for k, v in report.items() if isinstance(v, dict)}
    return out


def judge_notes(reports: dict[str, dict]) -> list[str]:
    """One footnote line per trained judge: what it is and its quality on real test clips."""
    lines = []
    for split, judges in reports.items():
        for name, report in sorted(judges.items()):
            quality = ", ".join(f"{k} {_scalar(v)}" for k, v in report.get("test", {}).items()
                                if isinstance(v, int | float | str) or k == "truth_f1")
            below = judge_below_chance(name, report)
            lines.append(f"- judge {name} ({split}): {report.get('judge', '?')}; on "
                         f"{report.get('n_test', '?')} real test clips: {quality or 'n/a'}"
                         + (f" ({below.split(';')[0]})" if below else ""))
    return lines


def _scalar(value) -> str:
    """A report value as footnote text; a flat dict (the AU judge's per-AU ``truth_f1``) as
    ``(key value, ...)`` with None as n/a."""
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k} {'n/a' if v is None else _scalar(v)}"
                               for k, v in value.items()) + ")"
    return format(value, ".3f") if isinstance(value, float) else str(value)


def select(rows: list[Row], cols: list[ColumnInfo], metrics: Collection[str]
           ) -> tuple[list[Row], list[ColumnInfo]]:
    """Only the columns named in ``metrics`` (a column's name, ``lse_c``, or its metric's,
    ``lse``); reported rows left without a value are dropped."""
    wanted = set(metrics)
    cols = [c for c in cols if c.name in wanted or (c.metric is not None and c.metric in wanted)]
    names = {c.name for c in cols}
    kept = [replace(row, values={k: v for k, v in row.values.items() if k in names})
            for row in rows]
    return [r for r in kept if r.kind != "reported" or r.values], cols


def write_leaderboard(dataset: str, runs_dir: Path, leaderboard_dir: Path, *,
                      name: str | None = None, splits: Collection[str] | None = None,
                      metrics: Collection[str] | None = None,
                      reported: list[Reported] | None = None,
                      echo: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """Regenerate ``leaderboard_dir/<name>.csv`` and ``.md`` from the summaries of
    ``dataset`` under ``runs_dir``; returns (csv path, md path).

    ``name``: the files' stem and the Markdown title (default: the dataset name);
    ``splits``: only the summaries (and judge reports) of these splits (default: all);
    ``metrics``: only these columns, by column or metric name (default: all);
    ``reported``: the papers' rows to show (default: every reported row of the dataset,
    `bench.reported.reported_for`; ``[]`` for none); ``echo``: one line per summary that
    cannot be read (the Markdown lists them too). No summary at all is a ValueError, and
    nothing is written.
    """
    name = name or dataset
    unreadable: dict[str, str] = {}
    summaries = load_summaries(runs_dir, dataset, unreadable)
    if not summaries and not unreadable:
        raise ValueError(f"no runs of dataset {dataset!r} under {runs_dir} (no "
                         f"{Path(runs_dir) / dataset}/<split>/<model>/summary.json); nothing "
                         "written")
    for path, reason in unreadable.items():
        if echo is not None:
            echo(f"warning: {path}: cannot be read ({reason}); its row is left out")
    reports = load_judge_reports(runs_dir, dataset)
    if splits is not None:
        summaries = [s for s in summaries if s.get("split") in splits]
        reports = {k: v for k, v in reports.items() if k in splits}
        unreadable = {p: r for p, r in unreadable.items() if Path(p).parent.parent.name in splits}
    rows, cols = build_table(dataset, summaries, reported)
    if metrics is not None:
        rows, cols = select(rows, cols, metrics)
    out_dir = Path(leaderboard_dir)
    text = render_markdown(name, rows, cols, judges=reports, unreadable=unreadable)
    judges = judge_notes(reports)
    if judges:
        text = text.rstrip("\n") + "\n\nJudges\n\n" + "\n".join(judges) + "\n"
    md = atomic_write_text(out_dir / f"{name}.md", text)
    csv_path = atomic_write_text(out_dir / f"{name}.csv", render_csv(rows, cols, reports))
    return csv_path, md
