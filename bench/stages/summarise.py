"""Stage 6: a row's summary (aggregates with intervals, per-clip table, full provenance).

``summary.json`` and ``scores.csv`` in the row's run folder are derived files: rewritten from
the cached per-clip records on every run, so they always match them.
"""

from __future__ import annotations

from pathlib import Path

from bench.aggregate import coverage, metric_timing, summarise_records, write_table
from bench.fileio import atomic_write_json
from bench.provenance import device_name, git_commit, package_versions
from bench.stages.workspace import Workspace


def summarise(ws: Workspace, name: str, kind: str, out_dir: Path, records: dict[str, dict],
              n_test: int, skipped: dict[str, str], extra: dict,
              stage_seconds: dict[str, float] | None = None) -> dict:
    """Write and return the summary of one row (``kind``: ``model`` or ``ground-truth``).
    ``timing`` holds the wall seconds of the row's stages in this run (``stage_seconds``: a
    stage answered from the cache takes ~0 s) and each metric's seconds per clip."""
    metrics = ws.make_metrics(ground_truth=kind == "ground-truth")
    columns, aggregate, provenance_metrics = summarise_records(
        metrics, records, out_dir / "states", ws.cfg.seed, ws.echo)
    write_table(out_dir / "scores.csv", records, list(columns))
    summary = {
        "model": name, "kind": kind, "dataset": ws.cfg.dataset,
        "split": ws.split.name, "budget": ws.cfg.budget if kind == "model" else None,
        "n_test": n_test, "n_scored": len(records), "skipped": skipped,
        "columns": columns, "aggregate": aggregate, "clips": coverage(metrics, records),
        "timing": {"stages_s": dict(stage_seconds or {}), "metrics": metric_timing(records),
                   "device": device_name(ws.device),
                   "workers": ws.scoring_pool().workers,
                   "torch_threads_per_worker": ws.scoring_pool().threads},
        "provenance": {
            "git_commit": git_commit(), "packages": package_versions(),
            "dataset_root": str(ws.root), "dataset_hash": ws.dataset_hash,
            "split_version": ws.split.version, "split_rule": ws.split.description,
            "protocol": ws.protocol.name, "protocol_version": ws.protocol.version,
            "preprocess": ws.params.digest(), "seed": ws.cfg.seed,
            "device": device_name(ws.device), "metrics": provenance_metrics, **extra,
        },
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
