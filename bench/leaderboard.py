"""Leaderboards rendered from run summaries alone (SPEC 7): CSV and Markdown.

One row per model run, a ground-truth row (the real test videos scored as if generated), and
the papers' reported rows for the dataset (marked as reported, with their table). A column per
metric with its direction; its value (a mean over clips, a pooled or a set-level value: the
summary's ``kind``, `bench.results`) with its 95% bootstrap interval; footnotes for judge
provenance, skipped clips and unavailable values. The table is a pandas DataFrame
(`leaderboard_frame`) written as CSV by pandas; the Markdown is rendered from the same rows.
Summaries are read as strict JSON (non-finite numbers as ``"nan"``/``"inf"``/``"-inf"``,
`bench.fileio`). Files are written atomically.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.fileio import atomic_write_text
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
    "av_offset": ("AV offset", None),
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


def load_summaries(runs_dir: Path, dataset: str) -> list[dict]:
    """Every ``summary.json`` under ``runs_dir/<dataset>/<split>/<model>/``."""
    base = Path(runs_dir) / dataset
    out = []
    for path in sorted(base.glob("*/*/summary.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a summary being rewritten; the next regeneration picks it up
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
                        provenance=s.get("provenance", {})))
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
    """One row per leaderboard row (positions of ``rows``): ``kind``, ``split``, then one
    float column per metric column holding the row's finite value (NaN: none)."""
    frame = pd.DataFrame({"kind": [r.kind for r in rows], "split": [r.split for r in rows]},
                         index=pd.RangeIndex(len(rows)))
    numbers = pd.DataFrame([[_finite(r.values.get(c.name)) for c in cols] for r in rows],
                           columns=[c.name for c in cols], index=frame.index, dtype=np.float64)
    return pd.concat([frame, numbers], axis=1)


def rank_models(rows: list[Row], cols: list[ColumnInfo]) -> dict[int, dict[str, float]]:
    """Rank talkbench's model rows against each other, per split and per column.

    Returns ``id(row) -> {column: rank, "mean_rank": ...}``. Within one split, the model rows
    with a number in a column are ranked by it (1 = best; ties share the mean of their ranks):
    by value for ↑/↓ columns, by distance to the same split's ground-truth row for ≈GT columns
    (which then need that row). Columns with fewer than two ranked models are not ranked;
    ``mean_rank`` averages a row's ranks over the columns where it was ranked.
    """
    frame = value_frame(rows, cols)
    out: dict[int, dict[str, float]] = {id(r): {} for r in rows if r.kind == "model"}
    for split, models in frame[frame["kind"] == "model"].groupby("split", sort=False):
        gt = frame[(frame["kind"] == "ground-truth") & (frame["split"] == split)]
        for c in cols:
            if c.detail:
                continue
            if c.higher_is_better is None:
                target = gt[c.name].iloc[0] if len(gt) else math.nan
                keys = (models[c.name] - target).abs()
            else:
                keys = -models[c.name] if c.higher_is_better else models[c.name]
            keys = keys.dropna()
            if len(keys) < 2:
                continue
            for position, rank in keys.rank(method="average").items():
                out[id(rows[position])][c.name] = float(rank)
    for ranks in out.values():
        values = list(ranks.values())
        if values:
            ranks["mean_rank"] = float(np.mean(values))
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


def render_markdown(dataset: str, rows: list[Row], cols: list[ColumnInfo]) -> str:
    """The Markdown leaderboard (detail columns, e.g. per-AU scores, are in the CSV only)."""
    cols = [c for c in cols if not c.detail]
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    lines = [f"# talkbench leaderboard: {dataset}", ""]
    lines.append("Mean over test clips with its 95% bootstrap interval (2000 resamples of "
                 "clips). ↑ higher is better, ↓ lower is better, ≈GT closest to the real "
                 "videos. Reported rows are the papers' numbers, on their own data and "
                 "splits, not recomputed. — : not measured for that row. Rank: mean over the "
                 "columns of the model's rank among talkbench's models on the same split "
                 "(≈GT columns by distance to the ground-truth row); the best model of each "
                 "column is in bold.")
    lines.append("")
    ranks = rank_models(rows, cols)
    rows = sorted(rows, key=lambda r: (r.kind != "model", r.split,
                                       ranks.get(id(r), {}).get("mean_rank", math.inf),
                                       r.model))
    header = (["Model", "Source", "Split", "Clips", "Rank"]
              + [f"{c.label} {arrow(c.higher_is_better)}" for c in cols])
    cells: list[list[str]] = []
    for row in rows:
        clips = "—"
        if row.kind != "reported":
            clips = f"{row.n_clips}/{row.n_test}"
            if row.skipped:
                reasons: dict[str, int] = defaultdict(int)
                for reason in row.skipped.values():
                    reasons[_reason_kind(reason)] += 1
                detail = "; ".join(f"{n} {k}" for k, n in sorted(reasons.items()))
                clips += " " + note(f"{row.model}: {len(row.skipped)} of {row.n_test} test "
                                    f"clips skipped ({detail}); first: "
                                    f"{next(iter(row.skipped.values()))}")
        row_ranks = ranks.get(id(row), {})
        mean_rank = row_ranks.get("mean_rank")
        line = [row.model, row.source, row.split, clips,
                "—" if mean_rank is None else f"{mean_rank:.1f}"]
        for c in cols:
            value = row.values.get(c.name)
            text = _cell(value, c.fmt)
            if row_ranks.get(c.name) == 1.0:
                text = f"**{text}**"
            if value is not None and not value.available:
                text += " " + note(f"unavailable: {value.unavailable}")
            if value is not None and value.bound:
                text = ("≥ " if value.bound == "lower" else "≤ ") + text
                text += " " + note(f"{row.source}, {c.label}: {value.note}")
            line.append(text)
        cells.append(line)
    table = pd.DataFrame(cells, columns=pd.Index(header), dtype=object)
    lines += markdown_table(table, right_from=4)
    lines.append("")
    provenance = _provenance_notes(rows)
    if notes or provenance:
        lines.append("Notes")
        lines.append("")
        for i, text in enumerate(notes, 1):
            lines.append(f"{i}. {text}")
        lines.extend(provenance)
        lines.append("")
    used = sorted({r.source.split()[1] for r in rows if r.kind == "reported"})
    if used:
        lines.append("Reported sources: " + "; ".join(f"{s}: {PAPERS.get(s, s)}" for s in used)
                     + ".")
        lines.append("")
    return "\n".join(lines)


def markdown_table(table: pd.DataFrame, right_from: int = 0) -> list[str]:
    """The lines of a Markdown (GitHub) table of ``table``'s text cells; columns from position
    ``right_from`` on are right-aligned."""
    n = len(table.columns)
    lines = ["| " + " | ".join(str(c) for c in table.columns) + " |",
             "|" + "|".join(["---"] * min(right_from, n) + ["---:"] * max(0, n - right_from))
             + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |"
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
    """", trained N steps in S s" (and why it stopped) from a model's training log."""
    if not isinstance(log, dict) or not log.get("steps"):
        return ""
    text = f", trained {log['steps']} steps"
    if log.get("wall_s") is not None:
        text += f" in {float(log['wall_s']):.0f} s"
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


def leaderboard_frame(rows: list[Row], cols: list[ColumnInfo]) -> pd.DataFrame:
    """The leaderboard as a table, one row per row: ``kind``, ``model``, ``source``, ``split``,
    ``n_clips``, ``n_test``, ``n_skipped``, ``mean_rank``, then per metric column ``<name>``,
    ``<name>_ci_low``, ``<name>_ci_high`` (``unavailable`` in ``<name>`` when there is no
    value; None where there is nothing to show). Object columns, so integers stay integers."""
    ranks = rank_models(rows, cols)
    header = ["kind", "model", "source", "split", "n_clips", "n_test", "n_skipped",
              "mean_rank"]
    for c in cols:
        header += [c.name, f"{c.name}_ci_low", f"{c.name}_ci_high"]
    table = []
    for row in rows:
        out = [row.kind, row.model, row.source, row.split or None, row.n_clips, row.n_test,
               len(row.skipped) if row.kind != "reported" else None,
               ranks.get(id(row), {}).get("mean_rank")]
        for c in cols:
            v = row.values.get(c.name)
            if v is None:
                out += [None, None, None]
            elif not v.available:
                out += ["unavailable", None, None]
            else:
                out += [_csv_number(v.value), _csv_number(v.ci_low), _csv_number(v.ci_high)]
        table.append(out)
    return pd.DataFrame(table, columns=pd.Index(header), dtype=object)


def render_csv(rows: list[Row], cols: list[ColumnInfo]) -> str:
    """The CSV leaderboard (`leaderboard_frame`, written by pandas: blank for none)."""
    return leaderboard_frame(rows, cols).to_csv(index=False, lineterminator="\n", na_rep="")


def load_judge_reports(runs_dir: Path, dataset: str) -> dict[str, dict]:
    """``runs/<dataset>/<split>/judges.json`` of every split: split -> judge -> report."""
    out = {}
    for path in sorted((Path(runs_dir) / dataset).glob("*/judges.json")):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return out


def judge_notes(reports: dict[str, dict]) -> list[str]:
    """One footnote line per trained judge: what it is and its quality on real test clips."""
    lines = []
    for split, judges in reports.items():
        for name, report in sorted(judges.items()):
            quality = ", ".join(f"{k} {_scalar(v)}" for k, v in report.get("test", {}).items()
                                if isinstance(v, int | float | str))
            lines.append(f"- judge {name} ({split}): {report.get('judge', '?')}; on "
                         f"{report.get('n_test', '?')} real test clips: {quality or 'n/a'}")
    return lines


def _scalar(value) -> str:
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
                      reported: list[Reported] | None = None) -> tuple[Path, Path]:
    """Regenerate ``leaderboard_dir/<name>.csv`` and ``.md`` from the summaries of
    ``dataset`` under ``runs_dir``; returns (csv path, md path).

    ``name``: the files' stem and the Markdown title (default: the dataset name);
    ``splits``: only the summaries (and judge reports) of these splits (default: all);
    ``metrics``: only these columns, by column or metric name (default: all);
    ``reported``: the papers' rows to show (default: every reported row of the dataset,
    `bench.reported.reported_for`; ``[]`` for none).
    """
    name = name or dataset
    summaries = load_summaries(runs_dir, dataset)
    reports = load_judge_reports(runs_dir, dataset)
    if splits is not None:
        summaries = [s for s in summaries if s.get("split") in splits]
        reports = {k: v for k, v in reports.items() if k in splits}
    rows, cols = build_table(dataset, summaries, reported)
    if metrics is not None:
        rows, cols = select(rows, cols, metrics)
    out_dir = Path(leaderboard_dir)
    text = render_markdown(name, rows, cols)
    judges = judge_notes(reports)
    if judges:
        text = text.rstrip("\n") + "\n\nJudges\n\n" + "\n".join(judges) + "\n"
    md = atomic_write_text(out_dir / f"{name}.md", text)
    csv_path = atomic_write_text(out_dir / f"{name}.csv", render_csv(rows, cols))
    return csv_path, md
