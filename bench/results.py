"""The result schema: how a metric column is aggregated over a test set, and what the summary
says about it (SPEC 5 and 7).

Each metric column declares its `Aggregation`; the metric reduces its own per-clip results
(`ClipResult`: values, state, or the reason it was unavailable) into one `ColumnResult` per
column (`bench.metrics.base.Metric.reduce`). ``summary.json``'s ``aggregate`` maps column
names to ``ColumnResult.to_dict()``:

=================== ==========================================================================
key                 meaning
=================== ==========================================================================
``kind``            how the value was made: ``"mean"`` (mean of the finite per-clip values),
                    ``"pooled"`` (one statistic over the frames or events of every clip, from
                    the clips' states: median blink duration, AU F1 from pooled counts) or
                    ``"set"`` (one value over the whole test set from the clips' states: FID);
                    ``"reported"`` for a paper's number in a leaderboard
``value``           the number (float); ``"nan"``/``"inf"``/``"-inf"`` when not finite
                    (`bench.fileio`: JSON files are strict), e.g. ``"nan"`` for a mean whose
                    every clip was infinite
``ci_low, ci_high`` 95% percentile bootstrap interval from resampling clips (2000 resamples,
                    the run's seed); null when the kind has none (``"set"``)
``n``               clips that contributed (finite values for ``"mean"``)
``n_infinite``      clips whose value was +/-inf, left out of the mean (PSNR of identical
                    frames)
``n_unavailable``   clips the metric could not score
``unavailable``     present only when there is no value: the one-line reason
``unavailable_examples`` up to three ``clip_id: reason`` of unavailable clips
=================== ==========================================================================

This module imports nothing heavy (numpy only), so leaderboards read summaries without torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from bench.fileio import json_number
from bench.stats import Estimate, bootstrap_mean

EXAMPLES = 3
"""How many ``clip_id: reason`` examples of unavailable clips a column result keeps."""


class Aggregation(str, Enum):
    """How a column's test-set value is made from the clips (its ``kind`` in summaries)."""

    MEAN_OVER_CLIPS = "mean"
    """Mean of the finite per-clip values, 95% bootstrap interval over clips (PSNR, LSE)."""
    POOLED = "pooled"
    """A statistic over the frames or events of every clip, from per-clip states (median blink
    duration over all blinks, AU F1 from pooled counts); interval from resampling clips."""
    SET_LEVEL = "set"
    """One value over the whole test set from per-clip states, too costly to resample (FID):
    no interval."""


@dataclass
class ClipResult:
    """What one clip left for the reduction of one metric: its per-clip values, its state
    (arrays), and the reason when the metric could not score it."""

    clip_id: str
    emotion: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    state: dict[str, np.ndarray] | None = None
    unavailable: str | None = None


@dataclass
class ColumnResult:
    """One column's value over the test set; see the module docstring for the keys."""

    kind: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_infinite: int = 0
    n_unavailable: int = 0
    unavailable: str | None = None
    unavailable_examples: dict[str, str] = field(default_factory=dict)
    bound: str | None = None  # a reported value the paper gives as a bound: "lower", "upper"
    note: str | None = None  # what the paper says of a bounded value (a footnote)

    @classmethod
    def from_estimate(cls, kind: str, estimate: Estimate, reasons: Mapping[str, str]
                      ) -> ColumnResult:
        return cls(kind=kind, value=estimate.value, ci_low=estimate.ci_low,
                   ci_high=estimate.ci_high, n=estimate.n, n_infinite=estimate.n_infinite,
                   n_unavailable=len(reasons), unavailable_examples=reason_examples(reasons))

    @classmethod
    def missing(cls, kind: str, reason: str, reasons: Mapping[str, str]) -> ColumnResult:
        """No value: ``reason`` says why; ``reasons`` are the unavailable clips'."""
        return cls(kind=kind, n_unavailable=len(reasons), unavailable=reason,
                   unavailable_examples=reason_examples(reasons))

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def n_covered(self) -> int:
        """Clips that made the value (finite or infinite); 0 when there is no value."""
        return self.n + self.n_infinite if self.available else 0

    def to_dict(self) -> dict[str, Any]:
        """The summary entry (``value`` and the interval left out when unavailable, the
        examples when there are none)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.unavailable is None:
            out.update(value=self.value, ci_low=self.ci_low, ci_high=self.ci_high, n=self.n,
                       n_infinite=self.n_infinite)
        else:
            out["unavailable"] = self.unavailable
        out["n_unavailable"] = self.n_unavailable
        if self.unavailable_examples:
            out["unavailable_examples"] = dict(self.unavailable_examples)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnResult:
        """Read a summary entry (numbers as written by `bench.fileio`: ``"nan"`` etc.)."""
        def count(key: str) -> int:
            number = json_number(data.get(key))
            return int(number) if number is not None and math.isfinite(number) else 0

        return cls(kind=str(data.get("kind", Aggregation.MEAN_OVER_CLIPS.value)),
                   value=json_number(data.get("value")), ci_low=json_number(data.get("ci_low")),
                   ci_high=json_number(data.get("ci_high")), n=count("n"),
                   n_infinite=count("n_infinite"), n_unavailable=count("n_unavailable"),
                   unavailable=data.get("unavailable") or None,
                   unavailable_examples=dict(data.get("unavailable_examples") or {}))


def reason_examples(reasons: Mapping[str, str]) -> dict[str, str]:
    """The first `EXAMPLES` ``clip_id: reason`` pairs."""
    return dict(list(reasons.items())[:EXAMPLES])


def first_reason(reasons: Mapping[str, str]) -> str:
    return next(iter(reasons.values()), "no clip could be scored")


def mean_over_clips(clips: list[ClipResult], column: str, seed: int = 0) -> ColumnResult:
    """`Aggregation.MEAN_OVER_CLIPS`: the mean of the clips' finite values with a 95% bootstrap
    interval; infinite values are counted apart (``n_infinite``); clips the metric could not
    score are counted (``n_unavailable``) with examples of their reasons."""
    values, reasons = [], {}
    for clip in clips:
        if clip.unavailable is not None:
            reasons[clip.clip_id] = clip.unavailable
        elif column in clip.values:
            values.append(float(clip.values[column]))  # float("inf") reads strict JSON's "inf"
    kind = Aggregation.MEAN_OVER_CLIPS.value
    if not values:
        return ColumnResult.missing(kind, first_reason(reasons), reasons)
    return ColumnResult.from_estimate(kind, bootstrap_mean(values, seed=seed), reasons)
