"""A tiny trainable judge and a metric that uses it, for the runner's judge plumbing tests.

The judge learns the mean brightness of the training frames; the metric reports a clip's mean
brightness minus it. Registered by the tests that use it (not by the package)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.metrics.base import Column, Metric, MetricUnavailable

CALLS = {"train": 0}


def train(train, val, out_dir: Path, *, budget, device, seed, progress) -> dict:
    CALLS["train"] += 1
    means = [float(clip.frames.mean()) for clip in train]
    (Path(out_dir) / "mean.json").write_text(json.dumps({"mean": float(np.mean(means))}))
    return {"n_clips": len(means), "val_clips": len(val) if val is not None else 0}


def load(directory: Path, device) -> float:
    return json.loads((Path(directory) / "mean.json").read_text())["mean"]


def evaluate(judge: float, clips, *, device) -> dict:
    return {"mean_abs_error": float(np.mean([abs(c.frames.mean() - judge) for c in clips]))}


class BrightnessOffset(Metric):
    name = "test-brightness"
    columns = (Column("brightness_offset", "Brightness offset", higher_is_better=None),)
    judge_name = "test-brightness"

    def score(self, sample):
        found = self.context.trained_judge(self.judge_name)  # the run's judge (its key)
        if found is None:
            raise MetricUnavailable("no brightness judge")
        return {"brightness_offset": float(sample.pred.mean()) - found.load(self.device)}
