"""bench.scoring: per-clip entries, pooled columns and dataset-level values from clip states."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics.base import Column, Metric, MetricUnavailable, Sample
from bench.scoring import score_sample, summarise_records


class MedianOfAll(Metric):
    """Per clip: the mean of the clip's numbers; pooled: the median of every number."""

    name = "median-of-all"
    columns = (Column("clip_mean", "Mean", True), Column("median_all", "Median", True))
    pooled_columns = ("median_all",)

    def score(self, sample):
        numbers = sample.pred.reshape(-1)[:3].astype(np.float64)
        if numbers.sum() == 0:
            raise MetricUnavailable("all zero")
        return {"clip_mean": numbers.mean(), "median_all": float(np.median(numbers))}

    def clip_state(self, sample):
        return {"numbers": sample.pred.reshape(-1)[:3].astype(np.float64)}

    def compute_from_states(self, states):
        return {"median_all": float(np.median(np.concatenate([s["numbers"] for s, _ in states])))}


def test_pooled_column_is_the_statistic_over_all_clips(tmp_path):
    metric = MedianOfAll(device="cpu")
    numbers = {"a": [1, 2, 3], "b": [10, 20, 30], "c": [4, 5, 200], "z": [0, 0, 0]}
    records = {}
    for clip_id, values in numbers.items():
        pred = np.zeros((1, 2, 2, 3), dtype=np.uint8)
        pred.reshape(-1)[:3] = values
        records[clip_id] = {"metrics": score_sample([metric], Sample(clip_id, pred),
                                                    tmp_path)}
    assert records["z"]["metrics"]["median-of-all"] == {"version": "1",
                                                        "unavailable": "all zero"}
    assert (tmp_path / "median-of-all" / "a.npz").exists()
    columns, aggregate, _ = summarise_records([metric], records, tmp_path, seed=0)
    assert list(columns) == ["clip_mean", "median_all"]
    pooled = aggregate["median_all"]
    assert pooled["mean"] == pytest.approx(np.median([1, 2, 3, 10, 20, 30, 4, 5, 200]))
    assert pooled["pooled"] and pooled["n"] == 3 and pooled["n_unavailable"] == 1
    assert pooled["ci_low"] <= pooled["mean"] <= pooled["ci_high"]
    assert aggregate["clip_mean"]["mean"] == pytest.approx(np.mean([2, 20, 209 / 3]))
