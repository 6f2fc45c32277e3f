"""Scoring shared by `bench run` and `bench score`: metrics on one clip, and the summary of
many clips (SPEC 5 and 7).

A clip's record is ``{"gen_key": ..., "emotion": ..., "metrics": {name: entry}}`` where an
entry is ``{"version", "values": {column: float}}``, ``{"version", "unavailable": reason}``,
or, for a dataset-level metric (FID), ``{"version", "state": true}`` with the clip's state in
``<states_dir>/<metric>/<clip>.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.fileio import atomic_save_npz, atomic_write_text
from bench.metrics.base import Metric, MetricUnavailable, Sample
from bench.stats import bootstrap_mean, bootstrap_statistic


def state_path(states_dir: Path, metric: Metric, clip_id: str) -> Path:
    return Path(states_dir) / metric.name / f"{clip_id}.npz"


def is_cached(record: dict, metric: Metric, states_dir: Path, clip_id: str) -> bool:
    """Whether ``record`` already holds ``metric``'s current result for the clip."""
    entry = record["metrics"].get(metric.name, {})
    if entry.get("version") != metric.version:
        return False
    return not entry.get("state") or state_path(states_dir, metric, clip_id).exists()


def score_sample(metrics: list[Metric], sample: Sample, states_dir: Path) -> dict[str, dict]:
    """Every metric on one clip: name -> entry. A metric that cannot score the clip gives an
    entry with its one-line reason; the other metrics still run."""
    entries: dict[str, dict] = {}
    for metric in metrics:
        entry: dict = {"version": metric.version}
        try:
            if not metric.dataset_level:
                entry["values"] = metric.update(sample)
            if metric.dataset_level or metric.pooled_columns:
                state = metric.clip_state(sample)
                atomic_save_npz(state_path(states_dir, metric, sample.clip_id), **state)
                entry["state"] = True
        except MetricUnavailable as err:
            entry["unavailable"] = str(err)
        entries[metric.name] = entry
    return entries


def summarise_records(metrics: list[Metric], records: dict[str, dict], states_dir: Path,
                      seed: int = 0) -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
    """Columns, aggregates and metric provenance over the scored clips.

    Per-clip metrics: mean over clips with a 95% bootstrap interval (clips where the metric
    was unavailable are counted, with examples of the reasons). Dataset-level metrics: one
    value from the cached states of every clip, without an interval.
    """
    columns: dict[str, dict] = {}
    aggregate: dict[str, dict] = {}
    provenance: dict[str, dict] = {}
    for metric in metrics:
        if metric.dataset_level:
            aggregate.update(_dataset_level(metric, records, states_dir, seed))
        elif metric.pooled_columns:
            aggregate.update(_pooled(metric, records, states_dir, seed))
        provenance[metric.name] = metric.provenance()
        for col in metric.columns:
            columns[col.name] = {"label": col.label, "higher_is_better": col.higher_is_better,
                                 "fmt": col.fmt, "detail": col.detail}
            if not metric.dataset_level and col.name not in metric.pooled_columns:
                aggregate[col.name] = _per_clip(metric, col.name, records, seed)
    return columns, aggregate, provenance


def _per_clip(metric: Metric, column: str, records: dict[str, dict], seed: int) -> dict:
    values, reasons = [], {}
    for clip_id, record in records.items():
        entry = record["metrics"].get(metric.name, {})
        if "unavailable" in entry:
            reasons[clip_id] = entry["unavailable"]
        elif column in entry.get("values", {}):
            values.append(float(entry["values"][column]))
    if not values:
        first = next(iter(reasons.values()), "no clip could be scored")
        return {"unavailable": first, "n_unavailable": len(reasons)}
    agg = bootstrap_mean(values, seed=seed).to_dict()
    agg["n_unavailable"] = len(reasons)
    if reasons:
        agg["unavailable_examples"] = dict(list(reasons.items())[:3])
    return agg


def _states(metric: Metric, records: dict[str, dict], states_dir: Path):
    """(state, emotion) of every clip with a saved state, and the reasons of the others."""
    states, reasons = [], {}
    for clip_id, record in records.items():
        entry = record["metrics"].get(metric.name, {})
        if entry.get("state"):
            with np.load(state_path(states_dir, metric, clip_id)) as data:
                states.append(({k: data[k] for k in data.files}, record.get("emotion")))
        elif "unavailable" in entry:
            reasons[clip_id] = entry["unavailable"]
    return states, reasons


def _pooled(metric: Metric, records: dict[str, dict], states_dir: Path,
            seed: int) -> dict[str, dict]:
    """Pooled columns: the statistic over every clip's state, with a bootstrap interval
    from resampling clips."""
    states, reasons = _states(metric, records, states_dir)
    out = {}
    for column in metric.pooled_columns:
        if not states:
            first = next(iter(reasons.values()), "no clip could be scored")
            out[column] = {"unavailable": first, "n_unavailable": len(reasons)}
            continue

        first = metric.compute_from_states(states)[column]
        if isinstance(first, MetricUnavailable):
            out[column] = {"unavailable": str(first), "n_unavailable": len(reasons)}
            continue
        out[column] = {**_resampled(metric, states, column, seed).to_dict(), "pooled": True,
                       "n_unavailable": len(reasons)}
    return out


def _dataset_level(metric: Metric, records: dict[str, dict], states_dir: Path,
                   seed: int = 0) -> dict[str, dict]:
    states, reasons = _states(metric, records, states_dir)
    if not states:
        first = next(iter(reasons.values()), "no clip could be scored")
        return {c.name: {"unavailable": first, "n_unavailable": len(reasons)}
                for c in metric.columns}
    try:
        values = metric.compute_from_states(states)
    except MetricUnavailable as err:
        return {c.name: {"unavailable": str(err), "n_unavailable": len(reasons)}
                for c in metric.columns}
    out = {}
    for col in metric.columns:
        value = values[col.name]
        if isinstance(value, MetricUnavailable):
            out[col.name] = {"unavailable": str(value), "n_unavailable": len(reasons)}
        elif metric.resample_clips:
            out[col.name] = {**_resampled(metric, states, col.name, seed).to_dict(),
                             "dataset_level": True, "n_unavailable": len(reasons)}
        else:
            out[col.name] = {"mean": float(value), "n": len(states), "dataset_level": True,
                             "n_unavailable": len(reasons)}
    return out


def _resampled(metric: Metric, states: list, column: str, seed: int):
    """The column over all clips with a bootstrap interval from resampling clips."""

    def statistic(items):
        value = metric.compute_from_states(items)[column]
        return float("nan") if isinstance(value, MetricUnavailable) else float(value)

    return bootstrap_statistic(states, statistic, seed=seed)


def write_table(path: Path, records: dict[str, dict], columns: list[str]) -> None:
    """The per-clip table: one row per clip, one column per metric column (blank: none)."""
    lines = ["clip_id," + ",".join(columns)]
    for clip_id, record in records.items():
        flat: dict = {}
        for entry in record["metrics"].values():
            flat.update(entry.get("values", {}))
        lines.append(",".join([clip_id] + [repr(float(flat[c])) if c in flat else ""
                                           for c in columns]))
    atomic_write_text(path, "\n".join(lines) + "\n")
