"""bench.aggregate: per-clip entries, each metric's own reduction (mean over clips, pooled,
set-level), the per-clip table, and strict JSON summaries."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from bench.aggregate import clip_table, score_sample, summarise_records, summary_table, write_table
from bench.fileio import atomic_write_json, json_number
from bench.metrics.base import Aggregation, Column, Metric, MetricUnavailable, Sample


class MedianOfAll(Metric):
    """Per clip: the mean of the clip's numbers; pooled: the median of every number; set-level:
    the count of every number."""

    name = "median-of-all"
    columns = (Column("clip_mean", "Mean", True),
               Column("median_all", "Median", True, aggregation=Aggregation.POOLED),
               Column("count_all", "Count", None, aggregation=Aggregation.SET_LEVEL))

    def score(self, sample):
        numbers = sample.pred.reshape(-1)[:3].astype(np.float64)
        if numbers.sum() == 0:
            raise MetricUnavailable("all zero")
        return {"clip_mean": numbers.mean()}

    def clip_state(self, sample):
        return {"numbers": sample.pred.reshape(-1)[:3].astype(np.float64)}

    def compute_from_states(self, states):
        numbers = np.concatenate([s["numbers"] for s, _ in states])
        return {"median_all": float(np.median(numbers)), "count_all": float(numbers.size)}


def _records(metric, numbers, states_dir):
    records = {}
    for clip_id, values in numbers.items():
        pred = np.zeros((1, 2, 2, 3), dtype=np.uint8)
        pred.reshape(-1)[:3] = values
        records[clip_id] = {"metrics": score_sample([metric], Sample(clip_id, pred),
                                                    states_dir)}
    return records


def test_each_column_reduced_by_its_kind(tmp_path):
    metric = MedianOfAll(device="cpu")
    numbers = {"a": [1, 2, 3], "b": [10, 20, 30], "c": [4, 5, 200], "z": [0, 0, 0]}
    records = _records(metric, numbers, tmp_path)
    entry = records["z"]["metrics"]["median-of-all"]
    assert entry["seconds"] >= 0  # every entry is timed (`metric_timing`)
    assert {k: v for k, v in entry.items() if k != "seconds"} == {"version": "1",
                                                                  "unavailable": "all zero"}
    assert records["a"]["metrics"]["median-of-all"]["state"] is True
    assert (tmp_path / "median-of-all" / "a.npz").exists()
    columns, aggregate, _ = summarise_records([metric], records, tmp_path, seed=0)
    assert list(columns) == ["clip_mean", "median_all", "count_all"]
    assert columns["median_all"]["aggregation"] == "pooled"
    assert columns["median_all"]["metric"] == "median-of-all"

    pooled = aggregate["median_all"]
    assert pooled["kind"] == "pooled" and "mean" not in pooled
    assert pooled["value"] == pytest.approx(np.median([1, 2, 3, 10, 20, 30, 4, 5, 200]))
    assert pooled["n"] == 3 and pooled["n_unavailable"] == 1
    assert pooled["unavailable_examples"] == {"z": "all zero"}
    assert pooled["ci_low"] <= pooled["value"] <= pooled["ci_high"]

    mean = aggregate["clip_mean"]
    assert mean["kind"] == "mean" and mean["n"] == 3 and mean["n_infinite"] == 0
    assert mean["value"] == pytest.approx(np.mean([2, 20, 209 / 3]))

    whole = aggregate["count_all"]
    assert whole == {"kind": "set", "value": 9.0, "ci_low": None, "ci_high": None, "n": 3,
                     "n_infinite": 0, "n_unavailable": 1,
                     "unavailable_examples": {"z": "all zero"}}

    table = summary_table(aggregate)
    assert list(table.index) == ["clip_mean", "median_all", "count_all"]
    assert table.loc["count_all", "kind"] == "set" and math.isnan(table.loc["count_all",
                                                                             "ci_low"])


def test_no_clip_scored_gives_the_reason_for_every_column(tmp_path):
    metric = MedianOfAll(device="cpu")
    records = _records(metric, {"z": [0, 0, 0]}, tmp_path)
    _, aggregate, _ = summarise_records([metric], records, tmp_path)
    for column, kind in (("clip_mean", "mean"), ("median_all", "pooled"), ("count_all", "set")):
        assert aggregate[column]["kind"] == kind
        assert aggregate[column]["unavailable"] == "all zero"
        assert "value" not in aggregate[column] and aggregate[column]["n_unavailable"] == 1


class Infinite(Metric):
    name = "inf"
    columns = (Column("psnr", "PSNR", True),)

    def score(self, sample):
        return {"psnr": math.inf}


def test_all_infinite_psnr_summary_is_strict_json(tmp_path):
    """A mean over clips that are all infinite is NaN; summary.json must still be strict JSON
    (no NaN/Infinity literals) and read back to the same numbers."""
    metric = Infinite(device="cpu")
    records = {c: {"metrics": score_sample([metric], Sample(c, np.zeros((1, 2, 2, 3), np.uint8)),
                                           tmp_path)} for c in "abc"}
    _, aggregate, _ = summarise_records([metric], records, tmp_path)
    assert math.isnan(aggregate["psnr"]["value"]) and aggregate["psnr"]["n_infinite"] == 3
    path = atomic_write_json(tmp_path / "summary.json", {"aggregate": aggregate,
                                                         "records": records})

    def strict(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    data = json.loads(path.read_text(), parse_constant=strict)
    psnr = data["aggregate"]["psnr"]
    assert psnr["value"] == psnr["ci_low"] == psnr["ci_high"] == "nan"
    assert data["records"]["a"]["metrics"]["inf"]["values"]["psnr"] == "inf"
    assert math.isnan(json_number(psnr["value"])) and json_number("-inf") == -math.inf
    assert json_number(3) == 3.0 and json_number("n/a") is None and json_number(None) is None
    # the records read back (values as strings) still make the same table and summary
    assert write_table(tmp_path / "t.csv", data["records"], ["psnr"]) is None
    assert (tmp_path / "t.csv").read_text().splitlines()[1] == "a,inf,"  # no reason
    _, again, _ = summarise_records([metric], data["records"], tmp_path)
    assert again["psnr"]["n_infinite"] == 3 and math.isnan(again["psnr"]["value"])


def test_per_clip_table_is_exact_quoted_and_blank_when_missing(tmp_path):
    values = [0.1, 1 / 3, 25.608517169952393, 1.4e-4, -0.0, 12345678.123456789, 2.0]
    records = {f"clip{i}": {"metrics": {"m": {"values": {"x": v}}}} for i, v in enumerate(values)}
    records["a,b.mp4"] = {"metrics": {"m": {"values": {"x": math.inf, "y": -math.inf}}}}
    records["none"] = {"metrics": {"m": {"unavailable": "no face"}}}
    table = clip_table(records, ["x", "y"])
    assert table.index.name == "clip_id" and list(table.columns) == ["x", "y"]
    assert table.dtypes.tolist() == [np.float64, np.float64]
    write_table(tmp_path / "scores.csv", records, ["x", "y"])
    text = (tmp_path / "scores.csv").read_text()
    assert text.splitlines()[0] == "clip_id,x,y,unavailable"  # the reasons column last
    assert '"a,b.mp4",inf,-inf,' in text.splitlines() and "none,,,m: no face" in text.splitlines()
    assert "clip6,2.0,," in text.splitlines()
    with open(tmp_path / "scores.csv", newline="") as f:
        rows = {row["clip_id"]: row for row in csv.DictReader(f)}
    for i, v in enumerate(values):
        assert float(rows[f"clip{i}"]["x"]) == v and rows[f"clip{i}"]["x"] == repr(v)
        assert rows[f"clip{i}"]["y"] == ""
