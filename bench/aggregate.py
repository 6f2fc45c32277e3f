"""Per-clip metric entries and their reduction into summaries, shared by `bench run` and
`bench score` (SPEC 5 and 7).

A clip's record is ``{"emotion": ..., "metrics": {name: entry}, ...}`` (the runner adds its
cache keys) where an entry is

- ``{"version", "values": {column: float}}`` for a metric with per-clip values,
- ``{"version", "state": true}`` (plus ``"values"`` when it has both) for a metric whose
  pooled or set-level columns need the clip's state, kept in
  ``<states_dir>/<metric>/<clip>.npz``,
- ``{"version", "unavailable": reason}`` when the metric could not score the clip;

every entry also holds ``seconds``, the wall time the metric took on the clip (`metric_timing`).

Records are JSON (`bench.fileio`: non-finite values are the strings ``"inf"``, ``"-inf"``,
``"nan"``; every value is read back with ``float()``). `summarise_records` gathers each
metric's `ClipResult` per clip and asks the metric to reduce them (`Metric.reduce`); the
aggregate maps each column to `bench.results.ColumnResult.to_dict()` (``kind``, ``value``,
``ci_low``, ``ci_high``, ``n``, ...). Tables are pandas DataFrames (`clip_table`,
`summary_table`); ``scores.csv`` adds a text column of reasons (`REASONS_COLUMN`).

Nothing leaves a mean silently (issue 12): each clip a metric could not score gets one line
at scoring time (`UnavailableLog`), the summary's ``clips`` records which clips each column
covers and the per-clip values of mean columns (`coverage`, so leaderboards can compare rows
on common clips), audio-driven metrics refuse silent audio by the rule `bench prepare` uses
(`audio_problem`), and a damaged state file is reported in one line, removed and recomputed
(`is_cached`, `clip_results`).
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.core.audio import silence_reason
from bench.core.cache import UNREADABLE, report_damaged
from bench.fileio import atomic_save_npz, atomic_write_text
from bench.metrics.base import Metric, MetricUnavailable, Sample
from bench.results import Aggregation, ClipResult

Echo = Callable[[str], None]

if TYPE_CHECKING:
    import pandas as pd


def state_path(states_dir: Path, metric: Metric, clip_id: str) -> Path:
    return Path(states_dir) / metric.name / f"{clip_id}.npz"


def state_readable(path: Path, echo: Echo | None = None) -> bool:
    """Whether the state file at ``path`` exists and is a complete ``.npz`` (its zip
    directory, at the end of the file, reads: a truncated or zero-byte file fails). A damaged
    one is reported in one line (``echo``) and removed."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not archive.namelist():
                raise ValueError("no arrays in the file")
    except FileNotFoundError:
        return False
    except UNREADABLE as err:
        report_damaged(path, err, echo)
        return False
    return True


def is_cached(record: dict, metric: Metric, states_dir: Path, clip_id: str,
              echo: Echo | None = None) -> bool:
    """Whether ``record`` already holds ``metric``'s current result for the clip (a damaged
    state file is reported through ``echo``, removed, and the clip is not cached)."""
    entry = record["metrics"].get(metric.name, {})
    if entry.get("version") != metric.version:
        return False
    return not entry.get("state") or state_readable(state_path(states_dir, metric, clip_id),
                                                    echo)


def audio_problem(metric: Metric, sample: Sample) -> str | None:
    """Why an audio-driven metric (``"audio"`` in its ``needs``) cannot score the clip's audio:
    silent or near-silent by the shared rule (`bench.core.audio.silence_reason`, the one
    `bench prepare` applies), else None. Missing audio is left to the metric itself."""
    if "audio" not in metric.needs or sample.audio is None:
        return None
    return silence_reason(sample.audio)


def score_sample(metrics: list[Metric], sample: Sample, states_dir: Path,
                 log: UnavailableLog | None = None) -> dict[str, dict]:
    """Every metric on one clip: name -> entry (see the module docstring). A metric that
    cannot score the clip gives an entry with its one-line reason; the others still run.
    ``log`` reports the clip's unavailable metrics in one line (`UnavailableLog`)."""
    entries: dict[str, dict] = {}
    for metric in metrics:
        entry: dict = {"version": metric.version}
        start = time.perf_counter()
        try:
            problem = audio_problem(metric, sample)
            if problem is not None:
                raise MetricUnavailable(problem)
            if metric.has_clip_values:
                entry["values"] = metric.update(sample)
            if metric.has_clip_state:
                state = metric.clip_state(sample)
                atomic_save_npz(state_path(states_dir, metric, sample.clip_id), **state)
                entry["state"] = True
        except MetricUnavailable as err:
            entry["unavailable"] = str(err)
        entry["seconds"] = round(time.perf_counter() - start, 6)
        entries[metric.name] = entry
    if log is not None:
        log.clip(sample.clip_id, entries)
    return entries


def metric_timing(records: dict[str, dict]) -> dict[str, dict]:
    """Seconds each metric spent per clip (issue 13: per-metric timing in every summary), from
    the ``seconds`` of the clips' entries: ``s_per_clip`` (mean), ``s_total`` and
    ``clips_timed`` (entries cached by an older version carry no time and are not counted).
    A per-clip pass that several metrics share (the landmarks, the device frames) is charged
    to the first metric that needs it, in the order the metrics run."""
    seconds: dict[str, list[float]] = {}
    for record in records.values():
        for name, entry in record.get("metrics", {}).items():
            if isinstance(entry.get("seconds"), (int, float)):
                seconds.setdefault(name, []).append(float(entry["seconds"]))
    return {name: {"s_per_clip": round(sum(v) / len(v), 6), "s_total": round(sum(v), 6),
                   "clips_timed": len(v)} for name, v in seconds.items()}


def profile_table(timing: dict, n_clips: int) -> str:
    """``bench score --profile``: a plain-text table of where a scoring pass spent its time,
    from a summary's ``timing`` (`metric_timing` plus the stage's wall time, frames, device and
    workers): per metric the seconds per clip, its share of the CPU time and its frames/s
    (frames scored / the metric's seconds), then the stage's wall time and frames/s."""
    metrics = timing.get("metrics", {})
    frames = int(timing.get("frames") or 0)
    total = sum(m["s_total"] for m in metrics.values()) or float("nan")
    lines = [f"{'metric':<10} {'s/clip':>9} {'share':>7} {'frames/s':>10}"]
    for name, m in sorted(metrics.items(), key=lambda kv: -kv[1]["s_total"]):
        per_s = frames / m["s_total"] if frames and m["s_total"] > 0 else float("nan")
        lines.append(f"{name:<10} {m['s_per_clip']:>9.3f} {m['s_total'] / total:>7.1%} "
                     f"{per_s:>10.1f}")
    wall = timing.get("stages_s", {}).get("score")
    lines.append(f"{'all':<10} {total / max(n_clips, 1):>9.3f} {'':>7} "
                 f"{frames / total if frames else float('nan'):>10.1f}  (CPU time in metrics)")
    if wall:
        lines.append(f"wall {wall:.2f} s for {n_clips} clips ({frames} frames, "
                     f"{frames / wall:.1f} frames/s) on {timing.get('device')}, "
                     f"{timing.get('workers')} worker(s) x "
                     f"{timing.get('torch_threads_per_worker')} torch thread(s)")
    return "\n".join(lines)


class UnavailableLog:
    """The stderr lines of a scoring pass (issue 12: no clip leaves a metric's mean without a
    word): one line per clip naming each metric that could not score it and why, e.g.
    ``"clip b: unavailable: acd (no face found in the generated frames); au (...)"``.

    A reason that repeats on every clip (weights that are missing for the whole metric) is
    shown for the first `REPEATS` clips; the rest are counted and `close` says how many.
    ``shown`` (one dict for a whole run, e.g. the workspace's) carries the count across the
    run's rows, so a reason that is the same for every row is spelt out once per run, not
    once per row.
    """

    REPEATS = 3

    def __init__(self, echo: Echo, prefix: str = "",
                 shown: dict[tuple[str, str], int] | None = None) -> None:
        self.echo = echo
        self.prefix = prefix
        self.shown = {} if shown is None else shown
        self.seen: dict[tuple[str, str], int] = {}
        """(metric, reason) -> clips of this pass not spelt out."""

    def clip(self, clip_id: str, entries: dict[str, dict]) -> None:
        parts = []
        for name, entry in entries.items():
            reason = entry.get("unavailable")
            if reason is None:
                continue
            if self.shown.get((name, reason), 0) < self.REPEATS:
                self.shown[(name, reason)] = self.shown.get((name, reason), 0) + 1
                parts.append(f"{name} ({reason})")
            else:
                self.seen[(name, reason)] = self.seen.get((name, reason), 0) + 1
        if parts:
            self.echo(f"{self.prefix}{clip_id}: unavailable: " + "; ".join(parts))

    def close(self) -> None:
        """Count the clips whose reason was not spelt out again (one line per reason)."""
        for (name, reason), count in self.seen.items():
            short = reason if len(reason) <= 70 else reason[:69].rstrip() + "…"
            self.echo(f"{self.prefix}{name}: unavailable on {count} more clips for the same "
                      f"reason as above ({short})")
        self.seen.clear()


def clip_results(metric: Metric, records: dict[str, dict], states_dir: Path,
                 echo: Echo | None = None) -> list[ClipResult]:
    """``metric``'s result on every clip that has an entry for it (states loaded; a state
    file that cannot be read is reported through ``echo``, removed, and its clip counted as
    unavailable with the reason)."""
    out = []
    for clip_id, record in records.items():
        entry = record["metrics"].get(metric.name)
        if entry is None:
            continue
        state, unavailable = None, entry.get("unavailable")
        if entry.get("state") and unavailable is None:
            path = state_path(states_dir, metric, clip_id)
            try:
                with np.load(path) as data:
                    state = {k: data[k] for k in data.files}
            except UNREADABLE as err:  # damaged after scoring: say so, the next run rescores
                if not isinstance(err, FileNotFoundError):
                    report_damaged(path, err, echo)
                unavailable = ("its cached state file was missing or unreadable (removed; "
                               "the next run recomputes it)")
        out.append(ClipResult(clip_id=clip_id, emotion=record.get("emotion"),
                              values=entry.get("values", {}) if unavailable is None else {},
                              state=state, unavailable=unavailable))
    return out


def coverage(metrics: list[Metric], records: dict[str, dict]) -> dict:
    """Which scored clips each column's value covers (issue 12), for the summary's
    ``clips``: ``{"ids": [clip ids scored], "missing": {column: {clip_id: reason}},
    "values": {column: [per-clip value or None, in the order of "ids"]}}``.

    A clip is missing from a column when its metric could not score it (the reason), or gave
    no value in that column ("no value"). ``values`` holds the mean-over-clips columns'
    per-clip values (non-finite as ``"inf"`` etc. in JSON), so that a leaderboard can compare
    rows on the clips they all scored."""
    ids = list(records)
    missing: dict[str, dict[str, str]] = {}
    values: dict[str, list] = {}
    for metric in metrics:
        for column in metric.columns:
            gaps: dict[str, str] = {}
            column_values = []
            for clip_id, record in records.items():
                entry = record["metrics"].get(metric.name)
                value = None
                if entry is None:
                    gaps[clip_id] = "not scored"
                elif entry.get("unavailable") is not None:
                    gaps[clip_id] = str(entry["unavailable"])
                elif column.aggregation is Aggregation.MEAN_OVER_CLIPS:
                    raw = entry.get("values", {}).get(column.name)
                    if raw is None:
                        gaps[clip_id] = "no value"
                    else:
                        value = float(raw)
                column_values.append(value)
            missing[column.name] = gaps
            if column.aggregation is Aggregation.MEAN_OVER_CLIPS:
                values[column.name] = column_values
    return {"ids": ids, "missing": missing, "values": values}


def unavailable_text(record: dict) -> str:
    """A clip's unavailable metrics as one text cell: ``"acd: no face ...; lse: ..."``."""
    return "; ".join(f"{name}: {entry['unavailable']}"
                     for name, entry in record["metrics"].items()
                     if entry.get("unavailable") is not None)


def summarise_records(metrics: list[Metric], records: dict[str, dict], states_dir: Path,
                      seed: int = 0, echo: Echo | None = None
                      ) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
    """Columns, aggregate and metric provenance over the scored clips.

    ``columns``: column name -> ``{"label", "higher_is_better", "fmt", "detail", "metric",
    "aggregation"}``; ``aggregate``: column name -> `ColumnResult.to_dict()`; ``provenance``:
    metric name -> `Metric.provenance()`. Each metric reduces its own clips' results
    (`Metric.reduce`, with ``seed`` for the bootstrap).
    """
    columns: dict[str, dict] = {}
    aggregate: dict[str, dict] = {}
    provenance: dict[str, dict] = {}
    for metric in metrics:
        results = metric.reduce(clip_results(metric, records, states_dir, echo), seed=seed)
        provenance[metric.name] = metric.provenance()
        for col in metric.columns:
            columns[col.name] = {"label": col.label, "higher_is_better": col.higher_is_better,
                                 "fmt": col.fmt, "detail": col.detail, "metric": metric.name,
                                 "aggregation": col.aggregation.value}
            aggregate[col.name] = results[col.name].to_dict()
    return columns, aggregate, provenance


def clip_table(records: dict[str, dict], columns: list[str]) -> pd.DataFrame:
    """The per-clip table: index ``clip_id`` (records' order), one float64 column per metric
    column, NaN where a clip has no value (unavailable, or none for that clip)."""
    import pandas as pd

    rows = []
    for record in records.values():
        flat: dict = {}
        for entry in record["metrics"].values():
            flat.update(entry.get("values", {}))
        rows.append([float(flat[c]) if c in flat else np.nan for c in columns])
    index = pd.Index(list(records), name="clip_id", dtype=object)
    return pd.DataFrame(np.array(rows, dtype=np.float64).reshape(len(rows), len(columns)),
                        index=index, columns=list(columns))


REASONS_COLUMN = "unavailable"
"""The text column of ``scores.csv`` that says why a clip's cells are empty: its unavailable
metrics and their reasons (`unavailable_text`), blank when every metric scored it."""


def table_csv(table: pd.DataFrame, records: dict[str, dict] | None = None) -> str:
    """CSV text of a per-clip table, written by pandas (CSV quoting): ``clip_id`` then the
    columns; floats with full precision (shortest round-trip repr, ``inf``/``-inf``), blank
    where NaN; with ``records``, a last column `REASONS_COLUMN` says why cells are blank."""
    if records is not None:
        table = table.copy()
        table[REASONS_COLUMN] = [unavailable_text(records[c]) if c in records else ""
                                 for c in table.index]
    return table.to_csv(lineterminator="\n", na_rep="")


def write_table(path: Path, records: dict[str, dict], columns: list[str]) -> None:
    """Write the per-clip table (`clip_table`) as CSV (`table_csv`, with the reasons column),
    atomically."""
    atomic_write_text(path, table_csv(clip_table(records, columns), records))


def summary_table(aggregate: dict[str, dict]) -> pd.DataFrame:
    """A summary's aggregate as a table: one row per column (index ``column``), the
    `ColumnResult` fields as columns (``kind``, ``value``, ``ci_low``, ``ci_high``, ``n``,
    ``n_infinite``, ``n_unavailable``, ``unavailable``); numbers as floats (NaN: none)."""
    import pandas as pd

    from bench.results import ColumnResult

    fields = ["kind", "value", "ci_low", "ci_high", "n", "n_infinite", "n_unavailable",
              "unavailable"]
    rows = []
    for name, data in aggregate.items():
        result = ColumnResult.from_dict(data)
        rows.append({"column": name, **{f: getattr(result, f) for f in fields}})
    frame = pd.DataFrame(rows, columns=["column", *fields]).set_index("column")
    for name in ("value", "ci_low", "ci_high"):
        frame[name] = frame[name].astype(np.float64)
    return frame
