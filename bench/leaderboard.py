"""Leaderboards rendered from run summaries alone (SPEC 7): CSV and Markdown.

One row per model run, a ground-truth row (the real test videos scored as if generated), and
the papers' reported rows for the dataset (marked as reported, with their table). A column per
metric with its direction; mean with its 95% bootstrap interval over clips; footnotes for
judge provenance, skipped clips and unavailable values. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats

from bench.fileio import atomic_write_text
from bench.reported import PAPERS, Reported, reported_for

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


@dataclass
class Row:
    kind: str  # "model", "ground-truth" or "reported"
    model: str
    source: str
    split: str
    values: dict[str, dict] = field(default_factory=dict)  # column -> estimate or reason
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
                                                info.get("detail", False)))
        is_gt = s.get("kind") == "ground-truth"
        source = "talkbench: real test videos" if is_gt else (
            f"talkbench, budget {s.get('budget', '?')}")
        rows.append(Row(kind=s.get("kind", "model"), model="ground truth" if is_gt else s["model"],
                        source=source, split=s.get("split", ""),
                        values=s.get("aggregate", {}), n_clips=s.get("n_scored"),
                        n_test=s.get("n_test"), skipped=s.get("skipped", {}),
                        provenance=s.get("provenance", {})))
    rows.sort(key=lambda r: (r.kind != "model", r.split, r.model))
    return rows, columns


def _rows_from_reported(reported: list[Reported]) -> list[Row]:
    grouped: dict[tuple[str, str, str, str], dict[str, dict]] = defaultdict(dict)
    for r in reported:
        grouped[(r.source, r.table, r.split, r.model)][r.metric] = {"mean": r.value}
    rows = []
    for (source, table, split, model), values in grouped.items():
        rows.append(Row(kind="reported", model=model, source=f"reported: {source} {table}",
                        split=split, values=values))
    return rows


def _mean(value: dict | None) -> float | None:
    """A cell's finite mean, or None (missing, unavailable, NaN)."""
    if not value or value.get("unavailable"):
        return None
    mean = value.get("mean")
    if not isinstance(mean, int | float) or not math.isfinite(mean):
        return None
    return float(mean)


def rank_models(rows: list[Row], cols: list[ColumnInfo]) -> dict[int, dict[str, float]]:
    """Rank talkbench's model rows against each other, per split and per column.

    Returns ``id(row) -> {column: rank, "mean_rank": ...}``. Within one split, the model rows
    with a number in a column are ranked by it (1 = best; ties share the mean of their ranks):
    by value for ↑/↓ columns, by distance to the same split's ground-truth row for ≈GT columns
    (which then need that row). Columns with fewer than two ranked models are not ranked;
    ``mean_rank`` averages a row's ranks over the columns where it was ranked.
    """
    out: dict[int, dict[str, float]] = {id(r): {} for r in rows if r.kind == "model"}
    splits = {r.split for r in rows if r.kind == "model"}
    for split in splits:
        models = [r for r in rows if r.kind == "model" and r.split == split]
        gt = next((r for r in rows if r.kind == "ground-truth" and r.split == split), None)
        for c in cols:
            if c.detail:
                continue
            keyed: list[tuple[float, Row]] = []
            for r in models:
                value = _mean(r.values.get(c.name))
                if value is None:
                    continue
                if c.higher_is_better is None:
                    target = _mean(gt.values.get(c.name)) if gt is not None else None
                    if target is None:
                        continue
                    keyed.append((abs(value - target), r))
                else:
                    keyed.append((-value if c.higher_is_better else value, r))
            if len(keyed) < 2:
                continue
            keys = np.array([k for k, _ in keyed])
            ranks = scipy.stats.rankdata(keys, method="average")
            for rank, (_, r) in zip(ranks, keyed, strict=True):
                out[id(r)][c.name] = float(rank)
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


def _cell(value: dict | None, fmt: str) -> str:
    if value is None:
        return "—"
    if value.get("unavailable"):
        return "n/a"
    mean = value.get("mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        text = "n/a"
    else:
        text = _number(mean, fmt)
        if "ci_low" in value and value.get("n", 0) > 1:
            text += f" [{_number(value['ci_low'], fmt)}, {_number(value['ci_high'], fmt)}]"
    if value.get("n_infinite"):
        text += f" (+{value['n_infinite']} inf)"
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
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 4 + ["---:"] * (len(cols) + 1)) + "|")
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
        cells = [row.model, row.source, row.split, clips,
                 "—" if mean_rank is None else f"{mean_rank:.1f}"]
        for c in cols:
            value = row.values.get(c.name)
            text = _cell(value, c.fmt)
            if row_ranks.get(c.name) == 1.0:
                text = f"**{text}**"
            if value is not None and value.get("unavailable"):
                text += " " + note(f"unavailable: {value['unavailable']}")
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
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


def render_csv(rows: list[Row], cols: list[ColumnInfo]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    ranks = rank_models(rows, cols)
    header = ["kind", "model", "source", "split", "n_clips", "n_test", "n_skipped",
              "mean_rank"]
    for c in cols:
        header += [c.name, f"{c.name}_ci_low", f"{c.name}_ci_high"]
    writer.writerow(header)
    for row in rows:
        out = [row.kind, row.model, row.source, row.split,
               "" if row.n_clips is None else row.n_clips,
               "" if row.n_test is None else row.n_test,
               len(row.skipped) if row.kind != "reported" else "",
               ranks.get(id(row), {}).get("mean_rank", "")]
        for c in cols:
            v = row.values.get(c.name) or {}
            if v.get("unavailable"):
                out += ["unavailable", "", ""]
            else:
                out += [v.get("mean", ""), v.get("ci_low", ""), v.get("ci_high", "")]
        writer.writerow(out)
    return buf.getvalue()


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


def write_leaderboard(dataset: str, runs_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Regenerate ``out_dir/<dataset>.csv`` and ``.md`` from the summaries under ``runs_dir``."""
    rows, cols = build_table(dataset, load_summaries(runs_dir, dataset))
    out_dir = Path(out_dir)
    text = render_markdown(dataset, rows, cols)
    judges = judge_notes(load_judge_reports(runs_dir, dataset))
    if judges:
        text = text.rstrip("\n") + "\n\nJudges\n\n" + "\n".join(judges) + "\n"
    md = atomic_write_text(out_dir / f"{dataset}.md", text)
    csv_path = atomic_write_text(out_dir / f"{dataset}.csv", render_csv(rows, cols))
    return csv_path, md
