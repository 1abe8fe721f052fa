"""Statistics: checked against numpy, against scipy's exact binomial, and by seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnbench.stats import samples as stats


def test_summarize_matches_numpy():
    x = np.random.default_rng(0).lognormal(1.0, 0.4, size=501)
    s = stats.summarize(x.tolist())
    assert s["min"] == x.min() and s["max"] == x.max()
    assert s["p50"] == pytest.approx(np.percentile(x, 50))
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["p99"] == pytest.approx(np.percentile(x, 99))
    assert s["mean"] == pytest.approx(x.mean())
    assert s["std"] == pytest.approx(x.std(ddof=1))


def test_summarize_one_sample_and_none():
    assert stats.summarize([2.0])["std"] == 0.0
    with pytest.raises(ValueError):
        stats.summarize([])


def test_throughput_is_batch_over_mean_seconds():
    assert stats.throughput_ips([1.0, 3.0], batch=8) == pytest.approx(8 / 0.002)


def test_median_ci_ranks_match_exact_binomial_quantiles():
    binom = pytest.importorskip("scipy.stats").binom
    for confidence in (0.9, 0.95, 0.99):
        tail = (1 - confidence) / 2
        for n in [*range(1, 120), 1000, 4321, 100_001]:
            k = np.arange(n + 1)
            below = k[binom.cdf(k, n, 0.5) <= tail]
            expected = None if below.size == 0 else (int(below.max()), n - 1 - int(below.max()))
            assert stats.median_ci_ranks(n, confidence) == expected, (confidence, n)


def test_median_ci_too_few_samples_is_unbounded():
    # At 95 % even (min, max) of 5 samples covers the median with only 1 - 2 / 2**5 = 93.75 %.
    assert stats.median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) == (-math.inf, math.inf)
    assert stats.median_ci_relative_halfwidth([1.0, 2.0, 3.0, 4.0, 5.0]) == math.inf
    assert stats.median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)


def test_median_ci_brackets_sample_median_and_uses_order_statistics():
    x = np.random.default_rng(1).exponential(size=200)
    lo, hi = stats.median_ci(x)
    i, j = stats.median_ci_ranks(200)
    assert (lo, hi) == (np.sort(x)[i], np.sort(x)[j])
    assert lo < np.median(x) < hi


def test_median_ci_covers_true_median_at_nominal_rate():
    # Exponential(1) has median ln 2. n = 30 gives an exact coverage of 0.957 (conservative by construction).
    rng = np.random.default_rng(2)
    true_median = math.log(2)
    hits = 0
    for _ in range(400):
        lo, hi = stats.median_ci(rng.exponential(size=30), 0.95)
        hits += lo <= true_median <= hi
    assert 0.92 <= hits / 400 <= 0.98


def test_relative_halfwidth_definition_and_shrinks_with_n():
    x = np.random.default_rng(3).lognormal(0.0, 0.2, size=1000)
    lo, hi = stats.median_ci(x)
    assert stats.median_ci_relative_halfwidth(x) == pytest.approx((hi - lo) / 2 / np.median(x))
    assert stats.median_ci_relative_halfwidth(x) < stats.median_ci_relative_halfwidth(x[:100])
    assert stats.median_ci_relative_halfwidth([5.0] * 50) == 0.0
