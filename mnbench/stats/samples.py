"""Statistics over raw latency samples. Every figure is derived from the samples, never stored separately.

Pure functions of the samples (numpy only). Confidence intervals are distribution-free: latency
distributions are skewed and often multi-modal, so nothing here assumes normality.
"""

from __future__ import annotations

import math

import numpy as np

# Fewer samples than this and a median CI is not worth trusting for a stopping decision, even where
# order statistics give a finite one (n >= 6 at 95 %).
MIN_SAMPLES_FOR_CI = 10


def summarize(samples_ms) -> dict[str, float]:
    """min, p50, p90, p99, max, mean, std (sample std, ddof=1) of latency samples in milliseconds."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {
        "min": float(x.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(x.max()),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
    }


def throughput_ips(samples_ms, batch: int) -> float:
    """Inferences per second: `batch` images per call over the mean call time (total work / total time)."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    mean_s = float(x.mean()) / 1000.0
    if mean_s <= 0:
        raise ValueError("mean latency is not positive")
    return batch / mean_s


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    return confidence


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """Zero-based ranks (lo, hi) of the order statistics that bracket the median, or None if n is too small.

    K, the number of samples below the true median, is Binomial(n, 1/2) for any continuous distribution, and
    P(x[lo] <= median <= x[hi]) = P(lo + 1 <= K <= hi) with x sorted. We take the largest k with
    P(K <= k) <= alpha/2, i.e. one below the exact binomial alpha/2 quantile, as lo, and hi = n - 1 - lo by
    symmetry. The coverage, 1 - 2 P(K <= lo), is then at least `confidence` (conservative, never short).
    None when even (min, max) covers with less than `confidence` (n < 6 at 95 %).
    """
    _check_confidence(confidence)
    if n < 1:
        raise ValueError("no samples")
    tail = (1.0 - confidence) / 2.0
    # Binomial(n, 1/2) has sd sqrt(n)/2: below n/2 - 20 sqrt(n) (40 sd) the lower tail is far below any
    # double, so only this window is summed and the cost stays O(sqrt n) for long runs.
    k0 = max(0, int(n / 2 - 20 * math.sqrt(n)))
    k = np.arange(k0, n // 2 + 1, dtype=float)
    log_pmf_k0 = math.lgamma(n + 1) - math.lgamma(k0 + 1) - math.lgamma(n - k0 + 1) - n * math.log(2.0)
    # log C(n, k) - log C(n, k-1) = log((n - k + 1) / k)
    steps = np.log(n - k[1:] + 1) - np.log(k[1:])
    log_pmf = log_pmf_k0 + np.concatenate(([0.0], np.cumsum(steps)))
    cdf = np.cumsum(np.exp(log_pmf))
    below = int(np.count_nonzero(cdf <= tail))  # cdf is increasing: these are k0 .. k0 + below - 1
    if below == 0:
        return None
    lo = k0 + below - 1
    return lo, n - 1 - lo


def median_ci(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from binomial order statistics (see `median_ci_ranks`).

    Exact for independent samples from any continuous distribution, conservative (coverage >= confidence).
    With too few samples for any order-statistic interval, (-inf, inf).
    """
    x = np.asarray(samples, dtype=float)
    ranks = median_ci_ranks(x.size, confidence)
    if ranks is None:
        return -math.inf, math.inf
    lo, hi = ranks
    part = np.partition(x, [lo, hi])  # O(n): no full sort, this runs after every measuring round
    return float(part[lo]), float(part[hi])


def median_ci_relative_halfwidth(samples, confidence: float = 0.95) -> float:
    """(hi - lo) / 2 / median of `median_ci`: 0.01 means the median is known to about +-1 %. inf if unknown."""
    x = np.asarray(samples, dtype=float)
    lo, hi = median_ci(x, confidence)
    if not math.isfinite(lo) or not math.isfinite(hi):
        return math.inf
    half_width = (hi - lo) / 2.0
    if half_width == 0.0:
        return 0.0
    median = float(np.median(x))
    return half_width / median if median > 0 else math.inf
