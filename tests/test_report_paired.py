"""Paired comparisons (issue 18): Holm, Wilcoxon, the paired bootstrap, per-column tests and
ranks per metric family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from bench.report.paired import (
    bootstrap_difference,
    compare_column,
    family_ranks,
    holm,
    wilcoxon_p,
)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    adjusted = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_wilcoxon_is_scipys_and_all_zero_is_one():
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, 15)
    assert wilcoxon_p(d) == wilcoxon(d).pvalue
    assert wilcoxon_p(np.zeros(5)) == 1.0
    assert math.isnan(wilcoxon_p([]))
    assert wilcoxon_p(np.arange(1.0, 13.0)) == pytest.approx(2 / 2 ** 12)  # exact, n = 12


def test_small_samples_with_zeros_or_ties_equal_scipys_permutation_test():
    """`wilcoxon_p` enumerates the sign patterns itself where scipy runs its permutation test
    (zeros or ties, at most 13 differences): the p-values must be scipy's exactly, on rounded
    scores (ties), scores with zeros (a model that copies the frame on some clips), integer
    differences (both) and tie-free ones (scipy's own path). Checked once on 2966 such cases,
    n = 1..15: no mismatch."""
    import warnings

    from bench.report.paired import signed_rank_permutation_p

    rng = np.random.default_rng(7)
    permutation_cases = 0
    for trial in range(120):
        n = int(rng.integers(2, 11))
        d = [np.round(rng.normal(size=n), 1), rng.integers(-3, 4, n).astype(float),
             np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),
             rng.normal(size=n)][trial % 4]
        if not np.any(d != 0):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = float(wilcoxon(d).pvalue)
        assert wilcoxon_p(d) == expected, d
        magnitudes = np.abs(d[d != 0])
        if np.any(d == 0) or np.unique(magnitudes).size < magnitudes.size:
            permutation_cases += 1
    assert permutation_cases > 60
    # by hand: d = (1, 1, -2): |d| ranks 1.5, 1.5, 3, R+ = 3; subset sums of {1.5, 1.5, 3}
    # are 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6: P(<= 3) = 5/8, P(>= 3) = 5/8 -> p = min(1, 10/8)
    assert signed_rank_permutation_p(np.array([1.0, 1.0, -2.0])) == 1.0
    # d = (1, 1, 2, 0): zero dropped, R+ = 6 is the largest of 8 sums: p = 2 * 1/8
    assert signed_rank_permutation_p(np.array([1.0, 1.0, 2.0, 0.0])) == 0.25


def test_paired_bootstrap_sees_a_shift_the_unpaired_intervals_hide():
    """Clip difficulty varies far more than the models differ: paired, the shift is clear."""
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0.0, 5.0, 20)
    a = difficulty + 1.0 + rng.normal(0.0, 0.1, 20)
    diff = bootstrap_difference(a, difficulty, seed=0)
    assert diff.mean == pytest.approx(float(np.mean(a - difficulty)))
    assert 0.8 < diff.ci_low < diff.mean < diff.ci_high < 1.2
    assert diff.p == pytest.approx(1 / 2001)
    same = bootstrap_difference(difficulty, difficulty)
    assert (same.mean, same.ci_low, same.ci_high, same.p) == (0.0, 0.0, 0.0, 1.0)


def _clips(values):
    return {f"c{i}": float(v) for i, v in enumerate(values)}


def test_compare_column_best_ties_ranks_and_baseline():
    rng = np.random.default_rng(1)
    base = rng.normal(5.0, 1.0, 12)
    per_clip = {"still-image": _clips(base),
                "good": _clips(base + 2.0 + rng.normal(0, 0.1, 12)),
                "good-too": _clips(base + 2.0 + rng.normal(0, 0.1, 12)),
                "noisy": _clips(base + rng.normal(0, 1.0, 12))}
    result = compare_column("lse_c", True, per_clip)
    assert result.best in ("good", "good-too")
    assert result.rank("good") == result.rank("good-too") == 1  # a statistical tie
    assert result.tied_with_best("good") and result.tied_with_best("good-too")
    assert result.rank("still-image") == 3 and result.rank("noisy") == 3
    assert not result.tied_with_best("still-image")
    test = result.test("still-image", result.best)
    assert test.difference.mean < 0 and test.holds
    assert test.p_wilcoxon == wilcoxon(result.values["still-image"]
                                       - result.values[result.best]).pvalue
    assert test.p_holm == pytest.approx(min(1.0, 6 * test.p_wilcoxon))  # smallest of 6 pairs
    shown = {(t.model, t.other) for t in result.shown()}
    assert len(shown) == 5  # 3 against the best, 3 against still-image, one pair shared
    assert ("good-too" if result.best == "good" else "good", result.best) in shown


def test_compare_column_to_ground_truth_uses_clip_distances_on_common_clips():
    truth = {"c0": 0.3, "c1": 0.5, "c2": 0.4, "c3": 0.2}
    per_clip = {"close": {"c0": 0.31, "c1": 0.49, "c2": 0.41, "c3": 0.21},
                "far": {"c0": 0.0, "c1": 1.0, "c2": 0.0, "c3": 0.8},
                "partial": {"c0": 0.3, "c1": 0.5, "c2": 0.4}}  # c3 missing
    result = compare_column("blinks_per_s", None, per_clip, truth)
    assert result.clips == ["c0", "c1", "c2"] and result.best == "partial"
    assert result.values["far"] == pytest.approx([0.3, 0.5, 0.4])
    assert result.loss("close") == pytest.approx(0.01)
    no_truth = compare_column("blinks_per_s", None, per_clip, None)
    assert no_truth.best is None and "ground-truth" in no_truth.note


def test_family_rank_counts_models_better_on_more_columns():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, 12)
    up = base + 3 + rng.normal(0, 0.1, 12)
    # a beats c on both columns; a and b split the two columns (tie); b beats c on one only
    first = compare_column("x", True, {"a": _clips(up), "b": _clips(base),
                                       "c": _clips(base - 3 + rng.normal(0, 0.1, 12))})
    second = compare_column("y", True, {"a": _clips(base), "b": _clips(up),
                                        "c": _clips(base + rng.normal(0, 0.01, 12))})
    assert first.better("a", "b") and second.better("b", "a")
    ranks = family_ranks([first, second])
    assert ranks["a"] == ranks["b"] == 1 and ranks["c"] == 3
