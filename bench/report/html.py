"""`bench report`: one static, self-contained HTML page per dataset (issue 18).

The page (``index.html``) and its assets beside it (``plots/*.png``, ``media/...`` copies of
the videos and frame strips, ``comparisons.csv``) are made from the run folders alone
(``runs/<dataset>/<split>/<model>/``: ``summary.json``, ``scores/*.json``, ``states/``,
``videos/*.mp4``, ``strip_*.png``; ``judges.json``). No server, no network: the little
JavaScript that sorts the table and the CSS are inline. Sections:

1. the leaderboard (`bench.leaderboard.leaderboard_table`, the same cells, marks and
   footnotes as the Markdown), sortable, reported rows apart; the ranks sentence under it;
2. per metric column, every model's value and interval against the ground-truth row and the
   papers' reported values (`bench.report.plots.metric_plot`);
3. paired comparisons (`bench.report.paired`): per column, each model against the best and
   against still-image, with the paired bootstrap interval of the mean difference, its
   p-value, the Wilcoxon signed-rank p-value and Holm's adjustment (also
   ``comparisons.csv``);
4. blink statistics as seed 003 shows them (Fig. 9 and 12), AV offset histograms, emotion
   confusion matrices (what the runs hold: the judge's on the real clips), AU occurrence rates
   per AU against the ground truth;
5. two or three test clips: every model's video beside the real one (HTML5 ``<video>``, with
   sound) and the frame strips;
6. the judges: provenance and measured quality; 7. provenance: commit, package versions,
   device, budgets, steps, wall times.

The real video of a clip is the dataset's own file (``provenance.dataset_root``, found by the
dataset's loader), copied when it is an mp4 with its sound, else re-encoded to mp4 (CREMA-D's
flv video with its wav); the generated videos are the aligned face crops the models made.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.fileio import atomic_write_text, json_number
from bench.leaderboard import (
    FAMILIES,
    INTRO,
    ColumnInfo,
    Row,
    Table,
    _provenance_notes,
    build_table,
    judge_below_chance,
    leaderboard_table,
    load_judge_reports,
    load_summaries,
    rank_sentence,
    select,
)
from bench.report import plots
from bench.report.paired import ALPHA, BASELINE, ColumnComparison
from bench.reported import PAPERS, Reported

VIDEO_CLIPS = 3
"""Test clips whose videos the page shows (those with frame strips first)."""

GT = "ground truth"

Echo = Callable[[str], None]


def report_dir(leaderboard_dir: Path, name: str) -> Path:
    """Where `bench run` and `bench report` put a leaderboard's page by default:
    ``reports/<name>/`` beside the leaderboard folder (``leaderboards/`` ->
    ``reports/<name>/index.html``), so the leaderboard folder keeps its two files per
    leaderboard."""
    return Path(leaderboard_dir).absolute().parent / "reports" / name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x + 0.0, f".{digits}g")  # + 0.0: no "-0"


# -- what the run folders hold ---------------------------------------------------------------

@dataclass
class RowData:
    """A model or ground-truth row's folder and per-clip records."""

    row: Row
    summary: dict
    folder: Path
    records: dict[str, dict] = field(default_factory=dict)  # clip id -> scores/<clip>.json

    def values(self, column: str) -> dict[str, float]:
        """Per-clip values of ``column`` (the summary's, else the records')."""
        found = self.row.clip_values(column)
        if found is not None:
            return found
        out = {}
        for clip_id, record in self.records.items():
            for entry in record.get("metrics", {}).values():
                number = json_number((entry.get("values") or {}).get(column))
                if number is not None:
                    out[clip_id] = number
        return out

    def state(self, metric: str, clip_id: str) -> dict[str, np.ndarray] | None:
        path = self.folder / "states" / metric / f"{clip_id}.npz"
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError):
            return None


def _row_data(runs_dir: Path, dataset: str, rows: list[Row], summaries: list[dict]
              ) -> dict[int, RowData]:
    by_key = {(s.get("split", ""), "ground truth" if s.get("kind") == "ground-truth"
               else s["model"]): s for s in summaries}
    out = {}
    for row in rows:
        if row.kind == "reported":
            continue
        summary = by_key.get((row.split, row.model), {})
        folder = Path(runs_dir) / dataset / row.split / (
            "ground-truth" if row.kind == "ground-truth" else row.model)
        data = RowData(row, summary, folder)
        ids = (row.clips or {}).get("ids") if isinstance(row.clips, dict) else None
        paths = ([folder / "scores" / f"{i}.json" for i in ids] if ids
                 else sorted((folder / "scores").glob("*.json")))
        for path in paths:
            try:
                data.records[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        out[id(row)] = data
    return out


# -- the page --------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;
max-width:1500px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ccc;padding-bottom:.2em}
h3{margin-top:1.2em}table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;vertical-align:top}th{background:#f3f3f3}
table.sortable th{cursor:pointer}table.sortable th:hover{background:#e6e6ff}
td.num{text-align:right;white-space:nowrap}.ci{color:#777;font-size:10px;display:block}
tbody.truth td{background:#f2fbf2}tbody.reported td{background:#f7f3fb;color:#555;
font-style:italic}tr.group th{background:#fff;text-align:left;font-style:normal}
.best{font-weight:bold}.tied{font-style:italic;text-decoration:underline dotted}
sup{color:#a00}.note{font-size:12px;color:#444}.wide{overflow-x:auto}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:8px}
figure{margin:.3em 0}figure img{max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:10px}.grid figure{margin:0;text-align:center;
font-size:12px}.grid video{height:160px;background:#000}.strip img{max-width:100%}
.strips{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:4px 12px}
.holds{color:#060;font-weight:bold}.missing{color:#a00}code{font-size:11px}
details{margin:.3em 0}summary{cursor:pointer}
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, i) {
    th.title = "sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === "asc" ? "desc" : "asc";
      th.dataset.dir = dir;
      function key(r) {
        var v = r.cells[i] ? r.cells[i].getAttribute("data-sort") : null;
        if (v === null || v === "") return null;
        return isNaN(Number(v)) ? v : Number(v);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null) return y === null ? 0 : 1;
        if (y === null) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * (dir === "asc" ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _cell_html(cell, numeric: bool) -> str:
    text = _e(cell.text)
    interval = re.search(r" \[[^\]]*\]", text)
    if interval and numeric:
        text = (text[:interval.start()] + f'<span class="ci">{text[interval.start():]}'
                "</span>")
    if cell.emphasis:
        text = f'<span class="{cell.emphasis}">{text}</span>'
    text = _e(cell.prefix) + text
    if cell.coverage:
        text += f" ({_e(cell.coverage)})"
    text += "".join(f'<sup><a href="#note{n}">[{n}]</a></sup>' for n in cell.notes)
    sort = cell.sort if cell.sort is not None else (None if numeric else cell.text)
    attr = "" if sort is None else f' data-sort="{_e(sort)}"'
    return f'<td class="{"num" if numeric else ""}"{attr}>{text}</td>'


def _leaderboard_html(board: Table) -> list[str]:
    out = ['<div class="wide"><table class="sortable" id="leaderboard"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in board.header]
    out.append("</tr></thead>")
    parts = [("model", "models (click a heading to sort)"), ("ground-truth", "real videos"),
             ("reported", "reported by the papers: their own data and splits, not "
                          "recomputed")]
    for kind, title in parts:
        lines = [(row, cells) for row, cells in zip(board.rows, board.cells, strict=True)
                 if row.kind == kind]
        if not lines:
            continue
        css = {"model": "models", "ground-truth": "truth", "reported": "reported"}[kind]
        out.append(f'<tbody class="{css}">')
        if kind != "model":
            out.append(f'<tr class="group"><th colspan="{len(board.header)}">{_e(title)}'
                       "</th></tr>")
        for row, cells in lines:
            out.append(f'<tr data-model="{_e(row.model)}" data-kind="{_e(row.kind)}">'
                       + "".join(_cell_html(c, i >= 3) for i, c in enumerate(cells))
                       + "</tr>")
        out.append("</tbody>")
    out.append("</table></div>")
    if board.significance.families:
        out.append(f'<p class="note">{_e(rank_sentence(board.significance.families, board.cols))}'
                   "</p>")
    if board.notes:
        out.append('<ol class="note">' + "".join(f'<li id="note{i}">{_e(t)}</li>'
                                                  for i, t in enumerate(board.notes, 1))
                   + "</ol>")
    return out


def _img(path: Path, out_dir: Path, alt: str) -> str:
    return f'<img src="{_e(path.relative_to(out_dir).as_posix())}" alt="{_e(alt)}">'


@dataclass
class Report:
    """What `write_report` made: the page and every PNG plot it wrote."""

    page: Path
    plots: list[Path]
    comparisons: Path
    videos: list[Path]


class _Page:
    """The report being assembled."""

    def __init__(self, out_dir: Path, dataset: str, rows: list[Row], cols: list[ColumnInfo],
                 board: Table, data: dict[int, RowData], judges: dict[str, dict],
                 echo: Echo | None) -> None:
        self.out = out_dir
        self.dataset = dataset
        self.rows = rows
        self.cols = cols
        self.board = board
        self.data = data
        self.judges = judges
        self.echo = echo
        self.html: list[str] = []
        self.plots: list[Path] = []
        self.videos: list[Path] = []
        self.refs: dict = {}  # the dataset loader's scan, for the real videos

    # -- helpers -----------------------------------------------------------------------------
    def plot_path(self, *parts: str) -> Path:
        return self.out / "plots" / ("_".join(_slug(p) for p in parts) + ".png")

    def figure(self, path: Path, caption: str, shown: bool = True) -> None:
        self.plots.append(path)
        text = f"<figcaption class=note>{_e(caption)}</figcaption>" if shown else ""
        self.html.append(f"<figure>{_img(path, self.out, caption)}{text}</figure>")

    def groups(self) -> list[tuple[str, str | None, list[RowData], RowData | None]]:
        """(split, test set, model rows, ground-truth row) of each group compared together,
        model rows in the leaderboard's order."""
        out: dict[tuple[str, str | None], tuple[list[RowData], list[RowData]]] = {}
        for row in self.board.rows:
            if id(row) not in self.data:
                continue
            models, truth = out.setdefault((row.split, row.test_set), ([], []))
            (models if row.kind == "model" else truth).append(self.data[id(row)])
        return [(split, ts, models, truth[0] if truth else None)
                for (split, ts), (models, truth) in out.items()]

    @staticmethod
    def group_title(split: str, test_set: str | None, many: bool) -> str:
        return f"split {split}" + (f", test set {test_set[:12]}" if many and test_set else "")

    # -- sections ----------------------------------------------------------------------------
    def metric_plots(self) -> None:
        self.html.append('<h2 id="plots">Every metric: models against the real videos and '
                         "the papers</h2>")
        self.html.append('<p class="note">Dots: talkbench models with their 95% bootstrap '
                         "interval (red: the column's best model or not significantly "
                         "different from it); dashed line and band: the real test videos "
                         "scored as a model; purple diamonds: values the papers report on "
                         "their own data (not recomputed).</p><div class=plots>")
        tests = self.board.significance
        flagged = {i for i, text in enumerate(self.board.notes, 1)
                   if text.startswith("judge below chance")}
        for j, c in enumerate(self.cols):
            points = []
            below = any(flagged & set(line[self.board.n_lead + j].notes)
                        for line in self.board.cells)
            for row in self.board.rows:
                value = row.values.get(c.name)
                if value is None:
                    continue
                number = value.value if value.available else None
                compared = tests.comparison(row, c.name) if row.kind == "model" else None
                best = compared is not None and row.model in compared.values and (
                    compared.tied_with_best(row.model)
                    or compared.loss(row.model) == compared.loss(compared.best))  # type: ignore
                name = row.model if row.kind != "reported" else (
                    f"{row.model} ({row.source.removeprefix('reported: ')})")
                if len({r.split for r in self.rows if r.kind == "model"}) > 1 \
                        and row.kind != "reported":
                    name += f" [{row.split}]"
                points.append(plots.Point(
                    name, math.nan if number is None else number, value.ci_low,
                    value.ci_high, row.kind, best))
            if not any(p.kind != "ground-truth" and math.isfinite(p.value) for p in points):
                continue
            sense = {True: "higher is better", False: "lower is better",
                     None: "closest to the real videos"}[c.higher_is_better]
            title = f"{c.label} ({sense})" + (
                "\nits judge is not above chance: not meaningful" if below else "")
            path = plots.metric_plot(self.plot_path("metric", c.name), title, points)
            self.figure(path, c.label, shown=False)
        self.html.append("</div>")

    def comparisons(self) -> Path:
        groups = self.board.significance.comparisons
        self.html.append('<h2 id="paired">Paired comparisons</h2>')
        self.html.append(
            '<p class="note">Per column, on the clips every model scored: each model against '
            f"the column's best model and against {BASELINE}. Difference = model − other "
            "(for ≈GT columns, of each clip's distance |value − real clip's value|, so "
            "negative is closer to the real videos); 95% interval and p from a paired "
            "bootstrap of the clips (2000 resamples, the same clips for both models); "
            "p (Wilcoxon): two-sided signed-rank test of the per-clip differences "
            "(scipy.stats.wilcoxon); p (Holm): Holm-adjusted over all pairs of models of the "
            f"column; holds: p (Holm) &lt; {ALPHA}. Columns pooled over clips or set-level "
            "(blink duration, AU F1 and accuracy, FID) have no per-clip terms and are not "
            "tested.</p>")
        rows: list[dict] = []
        many = len(groups) > 1
        for (split, test_set), columns in groups.items():
            if many:
                self.html.append(f"<h3>{_e(self.group_title(split, test_set, True))}</h3>")
            for c in self.cols:
                comparison = columns.get(c.name)
                if comparison is None:
                    continue
                rows += self._comparison_table(split, test_set, c, comparison)
        fields = ["split", "test_set", "column", "model", "other", "role", "n_clips",
                  "mean_model", "mean_other", "difference", "ci_low", "ci_high", "p_bootstrap",
                  "p_wilcoxon", "p_holm", "holds"]
        text = io.StringIO()
        writer = csv.DictWriter(text, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path = atomic_write_text(self.out / "comparisons.csv", text.getvalue())
        self.html.append('<p class="note">Every number of these tables, unrounded: '
                         '<a href="comparisons.csv">comparisons.csv</a>.</p>')
        return path

    def _comparison_table(self, split: str, test_set: str | None, c: ColumnInfo,
                          comparison: ColumnComparison) -> list[dict]:
        gt = c.higher_is_better is None
        title = f"{c.label}" + (" (distance to the real clip's value)" if gt else "")
        if comparison.best is None:
            self.html.append(f"<h4>{_e(title)}</h4><p class=note>not tested: "
                             f"{_e(comparison.note)}</p>")
            return []
        self.html.append(f"<h4>{_e(title)}: best {_e(comparison.best)}, "
                         f"{len(comparison.clips)} clips</h4>")
        mean = "mean |v − GT|" if gt else "mean"
        self.html.append(
            '<table class="paired" data-column="' + _e(c.name) + '"><thead><tr><th>model</th>'
            f"<th>against</th><th>{mean}</th><th>{mean} (against)</th><th>difference "
            "[95% CI]</th><th>p (bootstrap)</th><th>p (Wilcoxon)</th><th>p (Holm)</th>"
            "<th>holds</th></tr></thead><tbody>")
        out = []
        for test in comparison.shown():
            role = "best" if test.other == comparison.best else "baseline"
            d = test.difference
            holds = "yes" if test.holds else "no"
            self.html.append(
                f'<tr data-model="{_e(test.model)}" data-other="{_e(test.other)}" '
                f'data-p-wilcoxon="{test.p_wilcoxon!r}" data-p-holm="{test.p_holm!r}">'
                f"<td>{_e(test.model)}</td><td>{_e(test.other)} ({role})</td>"
                f'<td class=num>{_fmt(test.mean_model, 4)}</td>'
                f'<td class=num>{_fmt(test.mean_other, 4)}</td>'
                f'<td class=num>{_fmt(d.mean, 3)} [{_fmt(d.ci_low, 3)}, {_fmt(d.ci_high, 3)}]'
                f'</td><td class=num>{_fmt(d.p)}</td><td class=num>{_fmt(test.p_wilcoxon)}</td>'
                f'<td class=num>{_fmt(test.p_holm)}</td>'
                f'<td class="{"holds" if test.holds else ""}">{holds}</td></tr>')
            out.append({"split": split, "test_set": test_set or "", "column": c.name,
                        "model": test.model, "other": test.other, "role": role,
                        "n_clips": test.n, "mean_model": test.mean_model,
                        "mean_other": test.mean_other, "difference": d.mean,
                        "ci_low": d.ci_low, "ci_high": d.ci_high, "p_bootstrap": d.p,
                        "p_wilcoxon": test.p_wilcoxon, "p_holm": test.p_holm,
                        "holds": holds})
        self.html.append("</tbody></table>")
        return out

    def blinks(self) -> None:
        self.html.append('<h2 id="blinks">Blinks (seed 003, Fig. 9 and 12)</h2>')
        self.html.append('<p class="note">Blinks per second of every clip and the duration of '
                         "every blink found (eye aspect ratio detector, bench.metrics.blinks), "
                         "per model against the real test videos. Seed 003 reports real "
                         "videos at about 0.3 blinks/s lasting about 0.3-0.4 s.</p>")
        groups = self.groups()
        for split, test_set, models, truth in groups:
            ordered = ([truth] if truth is not None else []) + models
            rates = {}
            durations = {}
            for data in ordered:
                name = GT if data.row.kind == "ground-truth" else data.row.model
                values = data.values("blinks_per_s")
                if not values and "blinks" not in data.row.provenance.get("metrics", {}):
                    continue
                rates[name] = list(values.values())
                found: list[float] = []
                for clip_id in data.records:
                    state = data.state("blinks", clip_id)
                    if state is not None and "durations" in state:
                        found += [float(x) for x in np.ravel(state["durations"])]
                durations[name] = found
            if not rates:
                self.html.append('<p class="note">No blink statistics in these runs (metric '
                                 "blinks not run).</p>")
                continue
            title = self.group_title(split, test_set, len(groups) > 1)
            path = plots.blink_plot(self.plot_path("blinks", split, (test_set or "")[:12]), rates,
                                    durations)
            self.figure(path, f"blinks, {title}")
            self.html.append(self._blink_table(rates, durations))

    @staticmethod
    def _blink_table(rates: dict[str, list[float]], durations: dict[str, list[float]]) -> str:
        lines = ["<table><thead><tr><th>row</th><th>clips</th><th>mean blinks/s</th>"
                 "<th>blinks found</th><th>median duration (s)</th></tr></thead><tbody>"]
        for name, values in rates.items():
            found = durations.get(name, [])
            lines.append(f"<tr><td>{_e(name)}</td><td class=num>{len(values)}</td>"
                         f"<td class=num>{_fmt(float(np.mean(values)) if values else None)}"
                         f"</td><td class=num>{len(found)}</td><td class=num>"
                         f"{_fmt(float(np.median(found)) if found else None)}</td></tr>")
        return "".join(lines) + "</tbody></table>"

    def offsets(self) -> None:
        self.html.append('<h2 id="offsets">AV offset</h2>')
        self.html.append('<p class="note">The offset (frames) at which the SyncNet judge '
                         "finds audio and mouth best aligned, one count per clip; the real "
                         "videos should sit at 0.</p>")
        groups = self.groups()
        for split, test_set, models, truth in groups:
            offsets = {}
            for data in ([truth] if truth is not None else []) + models:
                values = data.values("av_offset_signed") or data.values("av_offset")
                if values:
                    offsets[GT if data.row.kind == "ground-truth" else data.row.model] = list(
                        values.values())
            if not offsets:
                self.html.append('<p class="note">No AV offsets in these runs.</p>')
                continue
            path = plots.offset_histograms(
                self.plot_path("av_offset", split, (test_set or "")[:12]), offsets)
            self.figure(path, "AV offset per clip, "
                        + self.group_title(split, test_set, len(groups) > 1))

    def emotions(self) -> None:
        self.html.append('<h2 id="emotion">Emotion: confusion matrices</h2>')
        self.html.append(
            '<p class="note">A confusion matrix of requested against judged emotion per model '
            "needs the judged emotion of every generated video; the runs do not hold it: "
            "<code>scores/&lt;clip&gt;.json</code> keeps, for EmoAcc, only the fraction of a "
            "clip's videos judged as requested (<code>values.emoacc</code>). What the runs "
            "hold is shown: the emotion judge's confusion matrix on the real test clips (its "
            "quality), and EmoAcc per model in the metric plots above.</p>")
        shown = False
        for split, judges in self.judges.items():
            report = judges.get("emotion")
            confusion = (report or {}).get("test", {}).get("confusion")
            if not isinstance(confusion, dict) or "matrix" not in confusion:
                continue
            path = plots.confusion_plot(
                self.plot_path("confusion", "emotion-judge", split), confusion["labels"],
                confusion["matrix"], f"emotion judge on the real test clips ({split})",
                rows=f"{confusion.get('rows', 'true')} emotion",
                columns=f"{confusion.get('columns', 'predicted')} emotion")
            self.figure(path, f"emotion judge, real test clips, {split}: "
                        f"{report.get('judge', '')}")
            shown = True
        if not shown:
            self.html.append('<p class="note">No emotion judge report in these runs.</p>')

    def action_units(self) -> None:
        self.html.append('<h2 id="au">Action units: occurrence rates</h2>')
        self.html.append('<p class="note">Per speech-related AU, the share of frames where it '
                         "occurs in each model's videos and in the real ones (the AU metric's "
                         "labeller on both; per-clip TP/FP/FN/TN counts pooled over clips: "
                         "generated = (TP+FP)/N, real = (TP+FN)/N).</p>")
        from bench.core.au_rules import AUS

        groups = self.groups()
        any_shown = False
        for split, test_set, models, _truth in groups:
            rates: dict[str, list[float]] = {}
            truth_total = None
            for data in models:
                counts = [s["counts"] for s in (data.state("au", c) for c in data.records)
                          if s is not None and "counts" in s]
                if not counts:
                    continue
                total = np.sum(np.asarray(counts, dtype=np.float64), axis=0)  # (AUs, 4)
                n = total.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rates[data.row.model] = list((total[:, 0] + total[:, 1]) / n)
                    if truth_total is None:
                        truth_total = list((total[:, 0] + total[:, 2]) / n)
            if not rates:
                continue
            any_shown = True
            ordered = {GT: truth_total, **rates}
            path = plots.au_rates_plot(self.plot_path("au_rates", split, (test_set or "")[:12]),
                                       list(AUS), ordered)  # type: ignore[arg-type]
            self.figure(path, "AU occurrence, " + self.group_title(split, test_set,
                                                                    len(groups) > 1))
        if not any_shown:
            self.html.append('<p class="note">No AU states in these runs (metric au not '
                             "run).</p>")

    def clips(self, dataset_roots: dict[str, str]) -> None:
        self.html.append('<h2 id="videos">Test clips side by side</h2>')
        self.html.append('<p class="note">The real clip (its source file, with sound) and '
                         "every model's video of it (the aligned face crop each model "
                         "generated, with the clip's audio); then each model's frame strip "
                         "(generated over real, every 5th frame).</p>")
        for split, _test_set, models, _truth in self.groups():
            have = [m for m in models if (m.folder / "videos").is_dir()]
            if not have:
                self.html.append('<p class="note">No generated videos in these runs.</p>')
                continue
            common = None
            for m in have:
                ids = [i for i in m.records if (m.folder / "videos" / f"{i}.mp4").exists()]
                common = ids if common is None else [i for i in common if i in ids]
            common = common or []
            with_strips = [i for i in common
                           if all((m.folder / f"strip_{i}.png").exists() for m in have)]
            chosen = (with_strips + [i for i in common if i not in with_strips])[:VIDEO_CLIPS]
            for clip_id in chosen:
                self._clip(split, clip_id, have, dataset_roots.get(split))

    def _clip(self, split: str, clip_id: str, models: list[RowData], root: str | None) -> None:
        media = self.out / "media" / _slug(split) / _slug(clip_id)
        emotion = next((m.records.get(clip_id, {}).get("emotion") for m in models
                        if m.records.get(clip_id, {}).get("emotion")), None)
        self.html.append(f"<h3>{_e(clip_id)}" + (f" ({_e(emotion)})" if emotion else "")
                         + "</h3><div class=grid>")
        real = real_video(self.dataset, root, clip_id, media / "real.mp4", self.echo,
                          self.refs)
        if real is not None:
            self.videos.append(real)
            self.html.append(self._video(real, "real"))
        else:
            self.html.append('<figure class="missing">real video not found in the dataset '
                             f"root ({_e(root)})</figure>")
        for m in models:
            source = m.folder / "videos" / f"{clip_id}.mp4"
            target = media / f"{_slug(m.row.model)}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            self.videos.append(target)
            self.html.append(self._video(target, m.row.model))
        self.html.append("</div>")
        strips: list[str] = []
        for m in models:
            for suffix in ("", "_emotions"):
                strip = m.folder / f"strip_{clip_id}{suffix}.png"
                if not strip.exists():
                    continue
                target = media / f"strip_{_slug(m.row.model)}{suffix}.png"
                shutil.copyfile(strip, target)
                what = "per requested emotion" if suffix else "generated over real"
                strips.append(f'<details class="strip"{"" if suffix else " open"}><summary>'
                              f"{_e(m.row.model)}: {what}</summary>"
                              f"{_img(target, self.out, m.row.model)}</details>")
        self.html.append('<div class="strips">' + "".join(strips) + "</div>")

    def _video(self, path: Path, label: str) -> str:
        src = _e(path.relative_to(self.out).as_posix())
        return (f'<figure><video controls preload="metadata" src="{src}"></video>'
                f"<figcaption>{_e(label)}</figcaption></figure>")

    def judges_section(self) -> None:
        self.html.append('<h2 id="judges">Judges</h2>')
        if not self.judges:
            self.html.append('<p class="note">No trained judge reports (judges.json) in these '
                             "runs.</p>")
            return
        self.html.append('<p class="note">The networks the harness trained to score (SyncNet '
                         "for LSE, the emotion classifier for EmoAcc, the AU classifier), each "
                         "measured on the real test clips; a judge not above chance makes its "
                         "columns meaningless (they are marked in the table).</p>")
        for split, judges in self.judges.items():
            for name, report in sorted(judges.items()):
                below = judge_below_chance(name, report)
                test = report.get("test", {}) if isinstance(report.get("test"), dict) else {}
                self.html.append(f"<h3>{_e(name)} ({_e(split)})</h3>"
                                 f"<p>{_e(report.get('judge', '?'))}; "
                                 f"{_e(report.get('n_test', '?'))} real test clips.</p>")
                if below:
                    self.html.append(f'<p class="missing">{_e(below)}</p>')
                self.html.append(_dict_table(test, "quality on the real test clips"))
                log = report.get("train_log")
                if isinstance(log, dict):
                    self.html.append("<details><summary>training log</summary>"
                                     + _dict_table(log, "") + "</details>")

    def provenance(self) -> None:
        self.html.append('<h2 id="provenance">Provenance</h2>')
        self.html.append("<table><thead><tr><th>row</th><th>split</th><th>commit</th>"
                         "<th>device</th><th>budget</th><th>seed</th><th>train steps</th>"
                         "<th>train s</th><th>stages (s)</th><th>wall s</th>"
                         "<th>scoring s/clip</th></tr></thead><tbody>")
        packages: dict[str, str] = {}
        for row in self.board.rows:
            data = self.data.get(id(row))
            if data is None:
                continue
            p = row.provenance
            timing = data.summary.get("timing", {}) if isinstance(data.summary, dict) else {}
            log = p.get("train_log") if isinstance(p.get("train_log"), dict) else {}
            stages = ", ".join(f"{k} {v:.1f}" for k, v in timing.get("stages_s", {}).items()
                               if isinstance(v, int | float))
            per_clip = sum(m.get("s_per_clip", 0.0) for m in timing.get("metrics", {}).values()
                           if isinstance(m, dict))
            packages.update({k: str(v) for k, v in p.get("packages", {}).items()})
            self.html.append(
                f"<tr><td>{_e(row.model)}</td><td>{_e(row.split)}</td>"
                f"<td><code>{_e(str(p.get('git_commit', '?'))[:14])}</code></td>"
                f"<td>{_e(p.get('device', '?'))}</td><td>{_e(p.get('budget') or '—')}</td>"
                f"<td>{_e(p.get('seed', '?'))}</td><td class=num>{_e(log.get('steps', '—'))}"
                f"</td><td class=num>{_fmt(log.get('wall_s'), 4)}</td><td>{_e(stages)}</td>"
                f"<td class=num>{_fmt(p.get('wall_s'), 4)}</td>"
                f"<td class=num>{_fmt(per_clip, 3)}</td></tr>")
        self.html.append("</tbody></table>")
        if packages:
            self.html.append("<h3>Package versions</h3>"
                             + _dict_table(packages, ""))
        notes = _provenance_notes(self.board.rows)
        if notes:
            self.html.append("<details><summary>metrics, judges and training, as in the "
                             "Markdown leaderboard</summary><ul class=note>"
                             + "".join(f"<li>{_e(n.removeprefix('- '))}</li>" for n in notes)
                             + "</ul></details>")


def _dict_table(values: dict, caption: str) -> str:
    rows = []
    for key, value in values.items():
        if isinstance(value, float):
            text = _fmt(value, 4)
        elif isinstance(value, dict | list):
            text = json.dumps(value)
            if len(text) > 300:
                text = text[:300] + " …"
        else:
            text = str(value)
        rows.append(f"<tr><th>{_e(key)}</th><td>{_e(text)}</td></tr>")
    head = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def real_video(dataset: str, root: str | None, clip_id: str, target: Path,
               echo: Echo | None = None, refs: dict | None = None) -> Path | None:
    """The real clip as an mp4 with its sound at ``target``: the dataset's own file (found by
    its loader under ``root``) copied when it is an mp4 with its audio track, else decoded and
    written as mp4 (`bench.data.media`); None (and a line through ``echo``) when it cannot
    be found or read. ``refs`` keeps the loader's scan between calls."""
    if not root:
        return None
    try:
        refs = {} if refs is None else refs
        if (dataset, root) not in refs:
            from bench.data.datasets import open_dataset

            refs[(dataset, root)] = {r.clip_id: r for r in
                                     open_dataset(dataset, root).scan().clips}
        ref = refs[(dataset, root)].get(clip_id)
        if ref is None or ref.video is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        if ref.video.suffix.lower() == ".mp4" and ref.audio is None:
            shutil.copyfile(ref.video, target)
            return target
        from bench.data.media import read_media, write_video

        video = read_media(ref.video, audio=ref.audio is None)
        audio = read_media(ref.audio, video=False).audio if ref.audio is not None else video.audio
        if video.frames is None:
            return None
        return write_video(target, video.frames, audio)
    except Exception as err:  # noqa: BLE001 - a missing real video must not stop the report
        if echo is not None:
            echo(f"report: real video of {clip_id} not shown: {err}")
        return None


def write_report(dataset: str, runs_dir: Path, out_dir: Path, *, name: str | None = None,
                 splits: Collection[str] | None = None,
                 metrics: Collection[str] | None = None,
                 reported: list[Reported] | None = None,
                 echo: Echo | None = None) -> Report:
    """Write ``out_dir/index.html`` (and its plots, media and ``comparisons.csv``) for the
    runs of ``dataset`` under ``runs_dir``; ``name``, ``splits``, ``metrics`` and
    ``reported`` select as `bench.leaderboard.write_leaderboard` does. No summary at all is
    a ValueError."""
    name = name or dataset
    unreadable: dict[str, str] = {}
    summaries = load_summaries(runs_dir, dataset, unreadable)
    if not summaries:
        raise ValueError(f"no runs of dataset {dataset!r} under {runs_dir} (no "
                         f"{Path(runs_dir) / dataset}/<split>/<model>/summary.json); no report "
                         "written")
    reports = load_judge_reports(runs_dir, dataset)
    if splits is not None:
        summaries = [s for s in summaries if s.get("split") in splits]
        reports = {k: v for k, v in reports.items() if k in splits}
        unreadable = {p: r for p, r in unreadable.items() if Path(p).parent.parent.name in splits}
    rows, cols = build_table(dataset, summaries, reported)
    if metrics is not None:
        rows, cols = select(rows, cols, metrics)
    board = leaderboard_table(rows, cols, judges=reports, unreadable=unreadable)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _row_data(Path(runs_dir), dataset, rows, summaries)
    page = _Page(out_dir, dataset, rows, board.cols, board, data, reports, echo)
    roots = {s.get("split", ""): s.get("provenance", {}).get("dataset_root")
             for s in summaries if s.get("provenance", {}).get("dataset_root")}
    models = [r.model for r in board.rows if r.kind == "model"]
    families = ", ".join(FAMILIES[f][0] for f in board.significance.families)
    page.html += [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>talkbench report: {_e(name)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        f"<h1>talkbench report: {_e(name)}</h1>",
        f'<p class="note">{len(models)} model run(s) ({_e(", ".join(dict.fromkeys(models)))}) '
        f"on dataset {_e(dataset)}, from {_e(runs_dir)}. The Markdown leaderboard is the "
        f"compact view of the same table. Families ranked: {_e(families or 'none')}.</p>",
        '<nav class="note"><a href="#leaderboard">leaderboard</a> · <a href="#plots">'
        'metrics</a> · <a href="#paired">paired comparisons</a> · <a href="#blinks">blinks'
        '</a> · <a href="#offsets">AV offset</a> · <a href="#emotion">emotion</a> · '
        '<a href="#au">action units</a> · <a href="#videos">videos</a> · '
        '<a href="#judges">judges</a> · <a href="#provenance">provenance</a></nav>',
        "<h2>Leaderboard</h2>", f'<p class="note">{_e(INTRO)}</p>',
    ]
    page.html += _leaderboard_html(board)
    page.metric_plots()
    comparisons = page.comparisons()
    page.blinks()
    page.offsets()
    page.emotions()
    page.action_units()
    page.clips(roots)
    page.judges_section()
    page.provenance()
    used = sorted({r.source.split()[1] for r in board.rows if r.kind == "reported"})
    if used:
        page.html.append('<p class="note">Reported sources: '
                         + "; ".join(f"{_e(s)}: {_e(PAPERS.get(s, s))}" for s in used) + ".</p>")
    page.html.append(f"<script>{SORT_JS}</script></body></html>")
    path = atomic_write_text(out_dir / "index.html", "\n".join(page.html) + "\n")
    return Report(path, page.plots, comparisons, page.videos)
