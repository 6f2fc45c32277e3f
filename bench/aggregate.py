"""Per-clip metric entries and their reduction into summaries, shared by `bench run` and
`bench score` (SPEC 5 and 7).

A clip's record is ``{"emotion": ..., "metrics": {name: entry}, ...}`` (the runner adds its
cache keys) where an entry is

- ``{"version", "values": {column: float}}`` for a metric with per-clip values,
- ``{"version", "state": true}`` (plus ``"values"`` when it has both) for a metric whose
  pooled or set-level columns need the clip's state, kept in
  ``<states_dir>/<metric>/<clip>.npz``,
- ``{"version", "unavailable": reason}`` when the metric could not score the clip.

Records are JSON (`bench.fileio`: non-finite values are the strings ``"inf"``, ``"-inf"``,
``"nan"``; every value is read back with ``float()``). `summarise_records` gathers each
metric's `ClipResult` per clip and asks the metric to reduce them (`Metric.reduce`); the
aggregate maps each column to `bench.results.ColumnResult.to_dict()` (``kind``, ``value``,
``ci_low``, ``ci_high``, ``n``, ...). Tables are pandas DataFrames (`clip_table`,
`summary_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.fileio import atomic_save_npz, atomic_write_text
from bench.metrics.base import Metric, MetricUnavailable, Sample
from bench.results import ClipResult

if TYPE_CHECKING:
    import pandas as pd


def state_path(states_dir: Path, metric: Metric, clip_id: str) -> Path:
    return Path(states_dir) / metric.name / f"{clip_id}.npz"


def is_cached(record: dict, metric: Metric, states_dir: Path, clip_id: str) -> bool:
    """Whether ``record`` already holds ``metric``'s current result for the clip."""
    entry = record["metrics"].get(metric.name, {})
    if entry.get("version") != metric.version:
        return False
    return not entry.get("state") or state_path(states_dir, metric, clip_id).exists()


def score_sample(metrics: list[Metric], sample: Sample, states_dir: Path) -> dict[str, dict]:
    """Every metric on one clip: name -> entry (see the module docstring). A metric that
    cannot score the clip gives an entry with its one-line reason; the others still run."""
    entries: dict[str, dict] = {}
    for metric in metrics:
        entry: dict = {"version": metric.version}
        try:
            if metric.has_clip_values:
                entry["values"] = metric.update(sample)
            if metric.has_clip_state:
                state = metric.clip_state(sample)
                atomic_save_npz(state_path(states_dir, metric, sample.clip_id), **state)
                entry["state"] = True
        except MetricUnavailable as err:
            entry["unavailable"] = str(err)
        entries[metric.name] = entry
    return entries


def clip_results(metric: Metric, records: dict[str, dict], states_dir: Path
                 ) -> list[ClipResult]:
    """``metric``'s result on every clip that has an entry for it (states loaded)."""
    out = []
    for clip_id, record in records.items():
        entry = record["metrics"].get(metric.name)
        if entry is None:
            continue
        state = None
        if entry.get("state"):
            with np.load(state_path(states_dir, metric, clip_id)) as data:
                state = {k: data[k] for k in data.files}
        out.append(ClipResult(clip_id=clip_id, emotion=record.get("emotion"),
                              values=entry.get("values", {}), state=state,
                              unavailable=entry.get("unavailable")))
    return out


def summarise_records(metrics: list[Metric], records: dict[str, dict], states_dir: Path,
                      seed: int = 0) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
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
        results = metric.reduce(clip_results(metric, records, states_dir), seed=seed)
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


def table_csv(table: pd.DataFrame) -> str:
    """CSV text of a per-clip table: ``clip_id`` then the columns; floats with full precision
    (shortest round-trip repr, ``inf``/``-inf``), blank where NaN; names quoted as CSV needs."""
    return table.to_csv(lineterminator="\n", na_rep="")


def write_table(path: Path, records: dict[str, dict], columns: list[str]) -> None:
    """Write the per-clip table (`clip_table`) as CSV (`table_csv`), atomically."""
    atomic_write_text(path, table_csv(clip_table(records, columns)))


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
