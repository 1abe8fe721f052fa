"""Figures and their 95 % intervals from repetitions: independent measurements, each with fresh sessions.

One repetition gives one value per model: its fastest call (`repetition_value`), a quiet-machine latency, since
interference on a shared machine only ever adds time. A speedup is, per repetition, the ratio of the two models'
values (they ran in the same interleaved rounds); the figure is the geometric mean over repetitions, so the speedup
equals the ratio of the latencies shown beside it, each the geometric mean of the same repetitions' values. The interval comes from the spread between repetitions (Student's
t, log scale) and promises where a re-run of the same command puts its estimate: mean ± t · s · √(2/R).

Several runs of the same pair on the same host pool into one figure (`pooled`): every repetition counts, and where
the runs' means spread more than their repetitions explain, the interval rests on the runs instead.
How the statistic and the interval were chosen, with the measurements: docs/measurement.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import t as student_t

CONFIDENCE = 0.95


@dataclass(frozen=True)
class RepeatedEstimate:
    """A figure from repetition values (log scale inside, linear outside)."""

    point: float  # geometric mean of the repetition values (pooled over runs)
    interval: tuple[float, float]  # 95 %: where a re-run of the same measurement is expected to put its estimate
    mean_ci: tuple[float, float]  # 95 % CI of the mean over all possible repetitions
    repetitions: int  # over all runs
    runs: int = 1
    sd: float = 0.0  # log scale: between-repetition sd (within runs)
    between_runs_sd: float = 0.0  # log scale: the runs' own spread beyond their repetitions' (0 for one run)
    dof: float = 0.0

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width over the point: 0.05 means ±5 %; inf when unknown (one repetition)."""
        lo, hi = self.interval
        return (hi - lo) / 2 / self.point if math.isfinite(hi) and self.point > 0 else math.inf

    def as_json(self) -> dict[str, Any]:
        """JSON-safe: an unknown bound is null."""
        def bounds(pair: tuple[float, float]) -> list[float | None]:
            return [x if math.isfinite(x) and x > 0 else None for x in pair]

        return {"point": self.point, "interval": bounds(self.interval), "mean_ci": bounds(self.mean_ci),
                "repetitions": self.repetitions, "runs": self.runs}


def estimate(log_values: Sequence[float], confidence: float = CONFIDENCE) -> RepeatedEstimate:
    """The estimate of one run's repetition values (log scale)."""
    return pooled([log_values], confidence)


def pooled(runs: Sequence[Sequence[float]], confidence: float = CONFIDENCE) -> RepeatedEstimate:
    """One estimate from several runs' repetition values (log scale); each repetition weighs the same.

    Its variance is the larger of two estimates: from the repetitions' spread inside their runs (s_w² / N, with
    N − K degrees of freedom), and, from two runs on, from the spread of the runs' means (Σ w_k² s_m², K − 1
    degrees of freedom). Runs that agree within their repetitions' noise pool as one long run; runs that disagree
    beyond it are as many observations as there are runs, and the interval says so.
    """
    groups = [np.asarray(values, dtype=float) for values in runs if len(values)]
    if not groups:
        raise ValueError("no repetitions")
    sizes = np.array([g.size for g in groups], dtype=float)
    total, k = float(sizes.sum()), len(groups)
    weights = sizes / total
    means = np.array([g.mean() for g in groups])
    point = float(np.dot(weights, means))
    within_df = total - k
    if within_df < 1 and k < 2:  # one repetition: nothing is known about the next
        return RepeatedEstimate(math.exp(point), (0.0, math.inf), (0.0, math.inf), int(total), k)
    within_var = float(sum(np.sum((g - g.mean()) ** 2) for g in groups)) / within_df if within_df >= 1 else 0.0
    variance, dof, between_sd = within_var / total, within_df, 0.0
    if k > 1:
        means_var = float(np.var(means, ddof=1))
        between_sd = math.sqrt(max(0.0, means_var - within_var * float(np.mean(1.0 / sizes))))
        if means_var * float(np.sum(weights ** 2)) > variance or within_df < 1:
            variance, dof = means_var * float(np.sum(weights ** 2)), k - 1.0
    t = float(student_t.ppf(0.5 + confidence / 2, dof))
    se = math.sqrt(variance)
    mean_half, rerun_half = t * se, t * se * math.sqrt(2.0)
    return RepeatedEstimate(
        point=math.exp(point), interval=(math.exp(point - rerun_half), math.exp(point + rerun_half)),
        mean_ci=(math.exp(point - mean_half), math.exp(point + mean_half)), repetitions=int(total), runs=k,
        sd=math.sqrt(within_var), between_runs_sd=between_sd, dof=dof)


def quotient(numerator: RepeatedEstimate, denominator: RepeatedEstimate) -> RepeatedEstimate:
    """numerator / denominator for two independent estimates (measured apart): half-widths add in quadrature on
    the log scale."""
    def half(pair: tuple[float, float], point: float) -> float:
        return math.log(pair[1] / point) if math.isfinite(pair[1]) and point > 0 else math.inf

    point = numerator.point / denominator.point
    ci = math.hypot(half(numerator.mean_ci, numerator.point), half(denominator.mean_ci, denominator.point))
    rerun = math.hypot(half(numerator.interval, numerator.point), half(denominator.interval, denominator.point))
    return RepeatedEstimate(point=point, interval=(point * math.exp(-rerun), point * math.exp(rerun)),
                            mean_ci=(point * math.exp(-ci), point * math.exp(ci)),
                            repetitions=min(numerator.repetitions, denominator.repetitions),
                            runs=min(numerator.runs, denominator.runs),
                            sd=math.hypot(numerator.sd, denominator.sd))


def split(values: Sequence[float], sizes: Sequence[int]) -> list[np.ndarray]:
    """`values` cut into consecutive chunks of `sizes` (samples into rounds, rounds into repetitions)."""
    out, start = [], 0
    for size in sizes:
        out.append(np.asarray(values[start:start + size], dtype=float))
        start += size
    return out


def repetition_samples(samples_ms: Sequence[float], round_sizes: Sequence[int],
                       repetition_rounds: Sequence[int] | None) -> list[np.ndarray]:
    """The samples of each repetition; a record without `repetition_rounds` (schema v1) is one repetition."""
    if not repetition_rounds:
        return [np.asarray(samples_ms, dtype=float)]
    samples_per_repetition = [int(sum(chunk)) for chunk in split(list(round_sizes), repetition_rounds)]
    return split(samples_ms, samples_per_repetition)


def repetition_value(samples_ms: Sequence[float]) -> float:
    """One repetition's latency: its fastest call (ms)."""
    return float(np.min(samples_ms))


def repetition_values(record: Mapping[str, Any]) -> list[float]:
    """log(`repetition_value`) of each repetition of a result record."""
    parts = repetition_samples(record["samples_ms"], record.get("round_sizes") or [],
                               record.get("repetition_rounds"))
    return [math.log(repetition_value(p)) for p in parts if p.size]


def latency(records: Sequence[Mapping[str, Any]]) -> RepeatedEstimate:
    """The latency (ms) of one model from one or more runs' records: the geometric mean of the repetitions'
    fastest calls, pooled over the runs."""
    return pooled([repetition_values(r) for r in records])


def speedup(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> RepeatedEstimate:
    """numerator / denominator latency for (numerator, denominator) records measured together, one pair per run:
    per repetition the ratio of the two fastest calls (the same rounds, so the machine's state of the moment cancels),
    pooled over the runs. Equals latency(numerators) / latency(denominators): the same weights on both sides."""
    runs = []
    for numerator, denominator in pairs:
        num, den = repetition_values(numerator), repetition_values(denominator)
        if len(num) != len(den):
            raise ValueError(f"{len(num)} and {len(den)} repetitions cannot be paired")
        runs.append([n - d for n, d in zip(num, den)])
    return pooled(runs)


def repetition_rounds(samples_ms: Sequence[float], round_sizes: Sequence[int],
                      repetition_rounds: Sequence[int] | None) -> list[list[np.ndarray]]:
    """The samples of each repetition, split into its rounds."""
    rounds = split(samples_ms, round_sizes) if round_sizes and sum(round_sizes) == len(samples_ms) else \
        [np.asarray(samples_ms, dtype=float)]
    if not repetition_rounds or sum(repetition_rounds) != len(rounds):
        return [rounds]
    out, start = [], 0
    for count in repetition_rounds:
        out.append(rounds[start:start + count])
        start += count
    return out


def record_rounds(record: Mapping[str, Any]) -> list[list[np.ndarray]]:
    """A result record's samples per repetition, each split into its rounds (`repetition_rounds` on its fields)."""
    return repetition_rounds(record["samples_ms"], record.get("round_sizes") or [], record.get("repetition_rounds"))


def between_round_cv(samples_ms: Sequence[float], round_sizes: Sequence[int],
                     repetition_rounds: Sequence[int] | None) -> float | None:
    """How much the machine moved from round to round: the sd of log(round median) around its repetition's mean,
    pooled over repetitions (≈ the coefficient of variation). None with fewer than two rounds per repetition."""
    rounds = [float(np.median(r)) for r in split(samples_ms, round_sizes) if len(r)]
    chunks = split(np.log(rounds), repetition_rounds) if repetition_rounds else [np.log(rounds)]
    deviations = [c - c.mean() for c in chunks if c.size > 1]
    dof = sum(c.size - 1 for c in chunks if c.size > 1)
    if not dof:
        return None
    return float(math.sqrt(sum(float(np.sum(d * d)) for d in deviations) / dof))


def repetition_index(round_counts: Sequence[int] | None, n_rounds: int) -> np.ndarray:
    """For each of `n_rounds` rounds, the repetition it belongs to (all 0 without `round_counts`, schema v1)."""
    if not round_counts or sum(round_counts) != n_rounds:
        return np.zeros(n_rounds, dtype=int)
    return np.repeat(np.arange(len(round_counts)), round_counts)


def pooled_difference(base: np.ndarray, base_reps: np.ndarray, now: np.ndarray, now_reps: np.ndarray,
                      within_variance) -> tuple[float, float, float] | None:
    """(mean difference now − base, its standard error, df) at the repetition level, or None when the two sides
    hold fewer than four repetitions together (then only the within-repetition spread is known).

    Each repetition contributes the mean of its per-round values; each side's estimate is the mean of its
    repetitions. The between-repetition variance is pooled over both sides (one model, one machine: the session
    and the machine's state vary alike), with df = R_base + R_now − 2, and never taken below the within-repetition
    variance of one repetition's mean (`within_variance(values)`, e.g. the AR(1) variance of a mean).
    """
    sides = []
    for values, reps in ((base, base_reps), (now, now_reps)):
        chunks = [values[reps == r] for r in np.unique(reps)]
        chunks = [c for c in chunks if c.size]
        sides.append((np.array([c.mean() for c in chunks]), [within_variance(c) for c in chunks]))
    (m_base, w_base), (m_now, w_now) = sides
    dof = m_base.size + m_now.size - 2
    if dof < 2:  # t with one degree of freedom is 12.7: no interval worth having
        return None
    between = (float(np.sum((m_base - m_base.mean()) ** 2)) + float(np.sum((m_now - m_now.mean()) ** 2))) / dof
    finite_within = [w for w in w_base + w_now if math.isfinite(w)]
    within = float(np.mean(finite_within)) if finite_within else 0.0
    variance = max(between, within)
    se = math.sqrt(variance * (1.0 / m_base.size + 1.0 / m_now.size))
    return float(m_now.mean() - m_base.mean()), se, float(dof)
