"""Paired comparisons of models over the same test clips (issue 18): a paired bootstrap of the
mean difference, the Wilcoxon signed-rank test (scipy), and Holm's correction.

Two models scored on the same clips are compared clip by clip, not by their intervals: the
clip-to-clip variation they share (a hard clip is hard for both) cancels in the differences.
For a column compared *to the ground truth* (``higher_is_better`` None: AV offset, blinks/s)
each clip's value is first turned into its distance to the real clip's value, ``|v - gt|``,
and smaller is better.

Per column (`compare_column`), on the clips every compared model scored:

- the *loss* of a clip is ``-v`` (higher is better), ``v`` (lower is better) or ``|v - gt|``;
  the best model is the one with the smallest mean loss (ties: the first name);
- every pair of models is tested: ``d = loss(a) - loss(b)`` per clip; the two-sided Wilcoxon
  signed-rank test of ``d`` (``scipy.stats.wilcoxon`` with its defaults: zero differences
  dropped, exact distribution for small samples) gives ``p_wilcoxon``; Holm's step-down
  correction over all pairs of the column (`holm`) gives ``p_holm``; a difference *holds*
  when ``p_holm < ALPHA``;
- the paired bootstrap resamples clips (`bootstrap_difference`: the same clips for both
  models, 2000 resamples, fixed seed) for the 95% percentile interval of the mean difference
  of the values (in the column's own units, ``a - b``; for ≈GT columns of the distances) and
  a two-sided p-value from the resamples centred on the observed difference.

The Holm family is every pair of the column (m models: m(m-1)/2 tests), so that the report's
table (each model against the best and against still-image) and the leaderboard's ranks use
the same decisions. A model's rank in a column is 1 + the number of models significantly
better than it (`ColumnComparison.rank`): equal ranks are statistical ties.

Columns whose value is pooled over clips or set-level (blink duration, AU F1, FID) have no
per-clip terms in the summaries and are not tested here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

ALPHA = 0.05
"""Significance level of a difference after Holm's correction."""

N_BOOT = 2000
"""Bootstrap resamples (as the leaderboard's intervals, `bench.stats`)."""

BASELINE = "still-image"
"""The model every other model is also compared with."""


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given; NaN stays NaN and
    does not count in the family. ``p_(i)`` sorted ascending over m tests becomes
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``."""
    values = [float(p) for p in pvalues]
    order = sorted((i for i, p in enumerate(values) if not math.isnan(p)),
                   key=lambda i: values[i])
    m = len(order)
    out = [math.nan] * len(values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        out[i] = running
    return out


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, as
    ``scipy.stats.wilcoxon(d).pvalue`` with its defaults; 1.0 when every difference is zero,
    NaN with no difference. The case scipy answers with a permutation test (zeros or ties
    among at most :data:`EXACT_PERMUTATION_MAX` differences: a test set of 12 clips nearly
    always has them) is computed here by `signed_rank_permutation_p`, the same enumeration
    vectorised (scipy runs it through a Python-level statistic per sign pattern: 0.5 s per
    call, 27 s of the main job's leaderboard); every other case is scipy's own."""
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return math.nan
    if not np.any(d != 0):
        return 1.0
    if d.size <= EXACT_PERMUTATION_MAX and np.all(np.isfinite(d)) and _zeros_or_ties(d):
        return signed_rank_permutation_p(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(wilcoxon(d).pvalue)


EXACT_PERMUTATION_MAX = 13
"""scipy's limit for the exact permutation test (2**13 sign patterns < its 9999 resamples);
with zeros or ties in more differences it uses the normal approximation."""


def _zeros_or_ties(d: np.ndarray) -> bool:
    magnitudes = np.abs(d[d != 0])
    return bool(np.any(d == 0)) or np.unique(magnitudes).size < magnitudes.size


def signed_rank_permutation_p(d: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank statistic by exact enumeration of sign
    patterns (``scipy.stats.permutation_test`` with ``permutation_type='samples'`` on the
    statistic ``R+``, as ``scipy.stats.wilcoxon`` does for small samples with zeros or ties):
    zeros are dropped (``zero_method='wilcox'``), ``|d|`` gets average ranks, ``R+`` is the sum
    of the ranks of positive differences, and under the null every subset of the ranks is the
    positive set with equal probability. ``p = min(1, 2 min(P(R+* <= R+), P(R+* >= R+)))``,
    with scipy's relative tolerance of 100 machine epsilons. (Flipping a zero changes nothing,
    so leaving zeros out scales every count and the number of patterns by the same power of
    two.)"""
    from scipy.stats import rankdata

    nonzero = d[d != 0]
    ranks = rankdata(np.abs(nonzero))
    observed = float(ranks[nonzero > 0].sum())
    m = nonzero.size
    subsets = (np.arange(2 ** m)[:, None] >> np.arange(m)) & 1
    null = subsets @ ranks
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)
    less = np.count_nonzero(null <= observed + gamma) / null.size
    greater = np.count_nonzero(null >= observed - gamma) / null.size
    return float(min(1.0, 2 * min(less, greater)))


@dataclass(frozen=True)
class Difference:
    """The paired bootstrap of a mean difference."""

    mean: float
    ci_low: float
    ci_high: float
    p: float


def bootstrap_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                         n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
                         ) -> Difference:
    """Mean of ``a - b`` over paired clips, its percentile bootstrap interval (the same
    resampled clips for both), and the two-sided p-value of "no difference": the share of
    resampled means at least as far from the observed mean as the observed mean is from 0,
    ``(1 + #{|m* - m| >= |m|}) / (1 + n_boot)``."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if d.size == 1:
        return Difference(mean, mean, mean, math.nan)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    extreme = int(np.sum(np.abs(means - mean) >= abs(mean)))
    return Difference(mean, float(low), float(high), (1 + extreme) / (1 + n_boot))


@dataclass(frozen=True)
class PairTest:
    """One model against another in one column, on the column's common clips."""

    model: str
    other: str
    n: int  # paired clips
    mean_model: float  # mean value of ``model`` over the paired clips (≈GT: mean distance)
    mean_other: float
    difference: Difference  # of values (≈GT: distances), model - other
    p_wilcoxon: float
    p_holm: float = math.nan

    @property
    def holds(self) -> bool:
        """Whether the difference holds after Holm's correction."""
        return not math.isnan(self.p_holm) and self.p_holm < ALPHA


@dataclass
class ColumnComparison:
    """Every pair of models compared in one column."""

    column: str
    higher_is_better: bool | None
    clips: list[str]  # the common clips
    values: dict[str, np.ndarray]  # model -> values on ``clips`` (≈GT: distances to gt)
    best: str | None
    pairs: dict[tuple[str, str], PairTest] = field(default_factory=dict)  # sorted name pairs
    note: str | None = None  # why the column was not compared, when it was not

    @property
    def models(self) -> list[str]:
        return list(self.values)

    def loss(self, model: str) -> float:
        """The model's mean loss (smaller is better) on the common clips."""
        mean = float(np.mean(self.values[model]))
        return -mean if self.higher_is_better else mean

    def test(self, model: str, other: str) -> PairTest | None:
        """``model`` against ``other`` (difference model - other), or None."""
        key = tuple(sorted((model, other)))
        found = self.pairs.get(key)  # type: ignore[arg-type]
        if found is None or found.model == model:
            return found
        flipped = Difference(-found.difference.mean, -found.difference.ci_high,
                             -found.difference.ci_low, found.difference.p)
        return PairTest(model, other, found.n, found.mean_other, found.mean_model, flipped,
                        found.p_wilcoxon, found.p_holm)

    def better(self, model: str, other: str) -> bool:
        """Whether ``model`` is significantly better than ``other``."""
        found = self.test(model, other)
        return found is not None and found.holds and self.loss(model) < self.loss(other)

    def rank(self, model: str) -> int | None:
        """1 + the number of models significantly better than ``model`` (None: not compared)."""
        if model not in self.values or len(self.values) < 2:
            return None
        return 1 + sum(self.better(other, model) for other in self.values if other != model)

    def tied_with_best(self, model: str) -> bool:
        """Whether ``model`` is the best or not significantly different from it."""
        if self.best is None or model not in self.values:
            return False
        if model == self.best:
            return True
        found = self.test(model, self.best)
        return found is not None and not found.holds

    def shown(self, baseline: str = BASELINE) -> list[PairTest]:
        """The report's rows: every model against the best, then every model against
        ``baseline`` (a pair listed once)."""
        out: list[PairTest] = []
        seen: set[tuple[str, ...]] = set()
        for ref in ([self.best] if self.best else []) + ([baseline] if baseline in self.values
                                                          else []):
            for model in self.values:
                key = tuple(sorted((model, ref)))
                if model == ref or key in seen:
                    continue
                seen.add(key)
                found = self.test(model, ref)
                if found is not None:
                    out.append(found)
        return out


def compare_column(column: str, higher_is_better: bool | None,
                   per_clip: Mapping[str, Mapping[str, float]],
                   ground_truth: Mapping[str, float] | None = None, *, seed: int = 0
                   ) -> ColumnComparison:
    """Compare the models of ``per_clip`` (model -> clip id -> value) in one column on the
    clips every one of them has a finite value for (and, for a ≈GT column, the ground truth:
    ``ground_truth``, clip id -> value). See the module docstring."""
    models = [m for m, v in per_clip.items() if any(math.isfinite(x) for x in v.values())]
    sets = [{c for c, x in per_clip[m].items() if math.isfinite(x)} for m in models]
    if higher_is_better is None:
        if not ground_truth:
            return ColumnComparison(column, higher_is_better, [], {}, None,
                                    note="no ground-truth per-clip values to compare with")
        sets.append({c for c, x in ground_truth.items() if math.isfinite(x)})
    common = set.intersection(*sets) if sets else set()
    order = [c for c in next(iter(per_clip.values()), {}) if c in common] if models else []
    order += sorted(common - set(order))
    if len(models) < 2 or not order:
        note = ("fewer than two models have per-clip values" if len(models) < 2 else
                "the models have no clip in common")
        return ColumnComparison(column, higher_is_better, order, {}, None, note=note)
    values = {}
    for m in models:
        v = np.array([per_clip[m][c] for c in order], dtype=np.float64)
        if higher_is_better is None:
            v = np.abs(v - np.array([ground_truth[c] for c in order], dtype=np.float64))
        values[m] = v
    result = ColumnComparison(column, higher_is_better, order, values, None)
    result.best = min(models, key=lambda m: (result.loss(m), models.index(m)))
    tests = []
    for i, (a, b) in enumerate(combinations(sorted(models), 2)):
        va, vb = values[a], values[b]
        tests.append(PairTest(a, b, len(order), float(va.mean()), float(vb.mean()),
                              bootstrap_difference(va, vb, seed=seed + i),
                              wilcoxon_p(va - vb)))
    adjusted = holm([t.p_wilcoxon for t in tests])
    for t, p in zip(tests, adjusted, strict=True):
        result.pairs[(t.model, t.other)] = PairTest(t.model, t.other, t.n, t.mean_model,
                                                    t.mean_other, t.difference, t.p_wilcoxon,
                                                    p)
    return result


def family_ranks(comparisons: Sequence[ColumnComparison]) -> dict[str, int]:
    """Ranks over several columns (a metric family): model a *beats* b when a is significantly
    better than b in more of the columns than b is than a; a model's rank is 1 + the number
    of models that beat it. Models compared in none of the columns get no rank."""
    models: list[str] = []
    for comparison in comparisons:
        models += [m for m in comparison.values if m not in models]

    def wins(a: str, b: str) -> int:
        return sum(c.better(a, b) for c in comparisons
                   if a in c.values and b in c.values)

    return {m: 1 + sum(wins(o, m) > wins(m, o) for o in models if o != m) for m in models}
