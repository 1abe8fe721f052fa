"""The gate's statistics on per-round values: Student's t (scipy), Holm's correction, and the variance of a mean
of rounds that share the machine's state (lag-1 autocorrelation, AR(1)); Welch's difference of two such means; the
trimmed mean of paired differences with a jackknife over repetitions."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import mstats, trim_mean
from scipy.stats import t as student_t

MIN_ROUNDS_FOR_AUTOCORRELATION = 8
MAX_AUTOCORRELATION = 0.9  # beyond it 20 rounds would count as one: the run is all drift, the CI wide anyway


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (the normal for infinite df)."""
    return float(student_t.sf(t, df))


def t_ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    return float(student_t.ppf(q, df))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: p_(i) × (m − i + 1), made monotone, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1)) if x.size > 1 else math.inf


def lag1_autocorrelation(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of per-round values, clipped to [0, MAX_AUTOCORRELATION]; 0 below
    MIN_ROUNDS_FOR_AUTOCORRELATION rounds, where the estimate is mostly noise.

    The sample estimate is biased low by about (1 + 4 rho)/n (Kendall 1954, for AR(1) with an estimated mean);
    that is added back, since a low rho gives a CI that is too narrow.
    """
    if x.size < MIN_ROUNDS_FOR_AUTOCORRELATION:
        return 0.0
    d = x - x.mean()
    denominator = float(d @ d)
    if denominator == 0.0:
        return 0.0
    rho = float(d[:-1] @ d[1:]) / denominator
    rho += (1.0 + 4.0 * rho) / x.size
    return min(max(rho, 0.0), MAX_AUTOCORRELATION)


def mean_variance(x: np.ndarray) -> tuple[float, float]:
    """(variance of the mean, effective number of rounds) of per-round values that may be autocorrelated.

    Neighbouring rounds share the machine's state (load, clocks), so they are not independent: with lag-1
    autocorrelation rho, var(mean) = s²/n · (1 + rho)/(1 − rho) (AR(1)), and the rounds count as
    n (1 − rho)/(1 + rho) independent ones. Without this, slow drift inside a run makes the CI too narrow.
    """
    if x.size < 2:
        return math.inf, float(x.size)
    rho = lag1_autocorrelation(x)
    inflation = (1.0 + rho) / (1.0 - rho)
    return _var(x) / x.size * inflation, x.size / inflation


def _welch(base: np.ndarray, now: np.ndarray) -> tuple[float, float, float]:
    """(mean difference, its standard error, Welch–Satterthwaite df), over effective rounds (`mean_variance`)."""
    diff = float(now.mean() - base.mean())
    if base.size < 2 or now.size < 2:
        return diff, math.inf, 1.0
    (vb, nb), (vn, nn) = mean_variance(base), mean_variance(now)
    se2 = vb + vn
    if se2 == 0.0:
        return diff, 0.0, float(base.size + now.size - 2)
    df = se2 * se2 / (vb * vb / max(nb - 1.0, 1.0) + vn * vn / max(nn - 1.0, 1.0))
    return diff, math.sqrt(se2), df


# Per-round log differences of two sessions on a shared VM are heavy-tailed: a burst that hits one workload's
# block moves that round by 30-60 % while most sit within several per cent (v2 1.0/224 on the 2-vCPU VM: sd 0.20,
# 0.11 by the MAD). A 20 % trimmed mean over all rounds ignores the bursts: over 10 A/A checks of 20 s its estimates
# spread a third less than the mean of per-repetition medians the gate used before (sd 0.034 against 0.051), with
# 95 % half-widths of 6.4 % instead of 10.0 %, that held the true change in 10 of 10 (benchmarks/results/gate_estimator.md).
TRIM = 0.2


def paired_change(d: np.ndarray, reps: np.ndarray | None) -> tuple[float, float, float, int]:
    """(estimate, standard error, df, repetitions used) of per-round log differences of two workloads measured in
    the same rounds. With three or more repetitions (fresh sessions each): the TRIM-trimmed mean of all rounds, its
    standard error by the delete-one-repetition jackknife (a session's own speed is variance, as is a burst's
    weight in one repetition), t with R − 1 df; never below the trimmed mean's standard error over rounds
    (Tukey–McLaughlin, `scipy.stats.mstats.trimmed_stde`). Fewer: the mean over rounds, AR(1)-widened
    (repetitions used: 0)."""
    reps = reps if reps is not None else np.zeros(d.size, dtype=int)
    labels = np.unique(reps)
    if labels.size < 3:
        variance, n_effective = mean_variance(d)
        return float(d.mean()), math.sqrt(variance), max(n_effective - 1.0, 1.0), 0
    estimate = float(trim_mean(d, TRIM))
    left_out = np.array([trim_mean(d[reps != r], TRIM) for r in labels])
    r = labels.size
    jackknife = (r - 1) / r * float(np.sum((left_out - left_out.mean()) ** 2))
    over_rounds = float(mstats.trimmed_stde(d, (TRIM, TRIM))) ** 2
    return estimate, math.sqrt(max(jackknife, over_rounds)), float(r - 1), int(r)
