"""Statistics over clips: a value with a percentile bootstrap interval (float64).

`bootstrap_mean` is the mean of per-clip values; `bootstrap_statistic` any statistic of the
clips (pooled over their frames or events), both with intervals from resampling clips.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Estimate:
    """A statistic over clips (e.g. the mean of the finite per-clip values) and its 95%
    bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int  # clips with a finite value
    n_infinite: int = 0  # clips whose value is +/-inf (e.g. PSNR of identical frames)

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_mean(values: list[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> Estimate:
    """Mean over clips with a percentile bootstrap interval (resampling clips, fixed seed).

    Infinite values are counted apart and left out of the mean; NaN must not be passed.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(arr).any():
        raise ValueError("NaN in per-clip values; report such clips as unavailable instead")
    finite = arr[np.isfinite(arr)]
    n_inf = int(arr.size - finite.size)
    if finite.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, n_inf)
    mean = float(finite.mean())
    if finite.size == 1:
        return Estimate(mean, mean, mean, 1, n_inf)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, finite.size, size=(n_boot, finite.size))
    means = finite[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(mean, float(low), float(high), int(finite.size), n_inf)


def bootstrap_statistic(items: list, statistic, *, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> Estimate:
    """``statistic(items)`` with a percentile bootstrap interval from resampling the items
    (clips) with a fixed seed; for values pooled over clips (median blink duration over all
    blinks, AU F1 over all frames). Resamples where the statistic is NaN are left out."""
    value = float(statistic(items))
    n = len(items)
    if n < 2 or not math.isfinite(value):
        return Estimate(value, value, value, n)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic([items[i] for i in rng.integers(0, n, size=n)])
                      for _ in range(n_boot)], dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha]) if draws.size else (value, value)
    return Estimate(value, float(low), float(high), n)
