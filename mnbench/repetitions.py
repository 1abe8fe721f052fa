"""Figures from independent repetitions: what a latency or a speedup is, and how far a re-run may move it.

One process, one session can be fast or slow for its whole life (pyperf's reason for worker processes): on a
shared 2-vCPU VM two sessions of one ONNX file ran up to 20 % apart for 30 s, and the machine's speed moved
10-70 % between runs a minute apart. Samples inside one repetition share that state, so a CI that pools them as
if independent promises far more than a re-run keeps (29 % of re-runs fell inside it; issue 10). So every figure
here comes from the repetition level: each repetition (fresh sessions, its own warm-up, its own interleaved rounds,
spread over the run's time) gives one value on the log scale, and the spread between repetitions is the noise.

Two intervals, both from Student's t with R - 1 degrees of freedom over the R repetition values (log scale):
- `ci`: where the mean over all possible repetitions lies: mean ± t · s / sqrt(R).
- `rerun`: where a repeat of the same command (another R repetitions) is expected to put its estimate:
  mean ± t · s · sqrt(1/R + 1/R). This is the promise a user checks by running the command again, so reports
  show it as the figure's 95 % interval.
s is the between-repetition standard deviation, but never less than the within-repetition noise of one value
(a binomial order-statistic interval of its median): with three repetitions s rests on two degrees of freedom and
can come out small by luck.

Two degrees of freedom also make t = 4.30, so one pair's interval is mostly the price of knowing its own s so
badly. The pairs one run measured on one device share the machine and its moves, so `moderated` lends each the
others' variance as a prior worth at most PRIOR_DF_CAP degrees of freedom (Smyth's moderated variance, limma 2004):
s² becomes ((R − 1) s² + d0 s0²) / (R − 1 + d0), with R − 1 + d0 degrees of freedom.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import norm, t as student_t

from mnbench import stats

CONFIDENCE = 0.95
# A record's repetitions "disagree" when they spread this many times more than their within-repetition noise:
# then the session or the machine's state, not the sampling, decides the figure.
DISAGREEMENT_RATIO = 3.0
# The most degrees of freedom the other pairs of a run may lend one pair's variance: as much as its own. Pairs are
# not equally noisy (v3-small on openvino moves most), so a heavier prior lets the noisiest pair down: over three
# sets of five runs of the full matrix (2-vCPU Zen 5 VM, 2026-12-03) d0 = 4 covered 95 % but one pair only 70 % of
# the time in one set; d0 = 2 covered 98 % with no pair below 85 % (as each pair alone), and cut the median
# half-width from ±43 % to ±30 % (benchmarks/interval_choice.py, benchmarks/results/interval_choice.md).
PRIOR_DF_CAP = 2.0


@dataclass(frozen=True)
class RepeatedEstimate:
    """A figure from R repetition values (kept on the log scale, reported on the linear one)."""

    point: float  # geometric mean of the repetition values
    ci: tuple[float, float]  # for the mean over repetitions
    rerun: tuple[float, float]  # for a repeat run's estimate
    repetitions: int
    between_sd: float  # log scale: sample sd of the repetition values (0 for one repetition)
    within_sd: float  # log scale: typical within-repetition standard error of one value
    prior_df: float = 0.0  # degrees of freedom lent by other pairs' variance (`moderated`); 0 for its own alone

    @property
    def rerun_rel_halfwidth(self) -> float:
        lo, hi = self.rerun
        return (hi - lo) / 2 / self.point if math.isfinite(hi) and self.point > 0 else math.inf

    @property
    def repetitions_disagree(self) -> bool:
        """More spread between repetitions than their own noise explains (see DISAGREEMENT_RATIO)."""
        return self.repetitions > 1 and self.between_sd > DISAGREEMENT_RATIO * max(self.within_sd, 1e-4)

    def as_json(self) -> dict:
        """JSON-safe: an unknown bound (one repetition) is null."""
        def bounds(pair: tuple[float, float]) -> list[float | None]:
            return [x if math.isfinite(x) and x > 0 else None for x in pair]

        return {"point": self.point, "ci": bounds(self.ci), "rerun_interval": bounds(self.rerun),
                "repetitions": self.repetitions, "between_repetition_sd_log": self.between_sd,
                "within_repetition_sd_log": self.within_sd}


def estimate(log_values: Sequence[float], within_sd: Sequence[float] = (), confidence: float = CONFIDENCE
             ) -> RepeatedEstimate:
    """The estimate from repetition values on the log scale; `within_sd`: each value's own standard error."""
    x = np.asarray(log_values, dtype=float)
    if x.size == 0:
        raise ValueError("no repetitions")
    within = float(np.sqrt(np.mean(np.square(within_sd)))) if len(within_sd) else 0.0
    mean = float(x.mean())
    between = float(x.std(ddof=1)) if x.size > 1 else 0.0
    if x.size < 2:  # one repetition says nothing about the next
        return RepeatedEstimate(math.exp(mean), (0.0, math.inf), (0.0, math.inf), 1, 0.0, within)
    return _with_intervals(mean, max(between, within), x.size - 1, int(x.size), between, within, 0.0, confidence)


def moderated(own: RepeatedEstimate, prior_variance: float, prior_df: float, confidence: float = CONFIDENCE,
              cap: float = PRIOR_DF_CAP) -> RepeatedEstimate:
    """`own` with its between-repetition variance moderated by a prior (the other pairs of its run and device):
    worth min(prior_df, cap) degrees of freedom. The point stays; only the intervals change."""
    d0 = min(float(prior_df), cap)
    if own.repetitions < 2 or d0 <= 0 or not math.isfinite(prior_variance):
        return own
    dof = own.repetitions - 1
    variance = (dof * own.between_sd ** 2 + d0 * prior_variance) / (dof + d0)
    return _with_intervals(math.log(own.point), max(math.sqrt(variance), own.within_sd), dof + d0, own.repetitions,
                           own.between_sd, own.within_sd, d0, confidence)


def _with_intervals(mean: float, sd: float, dof: float, repetitions: int, between: float, within: float,
                    prior_df: float, confidence: float) -> RepeatedEstimate:
    t = float(student_t.ppf(0.5 + confidence / 2, dof))
    ci_half, rerun_half = t * sd / math.sqrt(repetitions), t * sd * math.sqrt(2.0 / repetitions)
    return RepeatedEstimate(point=math.exp(mean), ci=(math.exp(mean - ci_half), math.exp(mean + ci_half)),
                            rerun=(math.exp(mean - rerun_half), math.exp(mean + rerun_half)),
                            repetitions=repetitions, between_sd=between, within_sd=within, prior_df=prior_df)


def quotient(numerator: RepeatedEstimate, denominator: RepeatedEstimate) -> RepeatedEstimate:
    """numerator / denominator for two independent estimates (different runs): interval half-widths add in
    quadrature on the log scale; with the smaller side's repetitions."""
    def half(pair: tuple[float, float], point: float) -> float:
        return math.log(pair[1] / point) if math.isfinite(pair[1]) and point > 0 else math.inf

    point = numerator.point / denominator.point
    ci = math.hypot(half(numerator.ci, numerator.point), half(denominator.ci, denominator.point))
    rerun = math.hypot(half(numerator.rerun, numerator.point), half(denominator.rerun, denominator.point))
    return RepeatedEstimate(point=point, ci=(point * math.exp(-ci), point * math.exp(ci)),
                            rerun=(point * math.exp(-rerun), point * math.exp(rerun)),
                            repetitions=min(numerator.repetitions, denominator.repetitions),
                            between_sd=math.hypot(numerator.between_sd, denominator.between_sd),
                            within_sd=math.hypot(numerator.within_sd, denominator.within_sd))


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


def log_median_and_se(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """log(median) of one repetition and its standard error, from the distribution-free median CI."""
    median = float(np.median(samples))
    lo, hi = stats.median_ci(samples, confidence)
    z = float(norm.ppf(0.5 + confidence / 2))
    if not (math.isfinite(lo) and lo > 0 and math.isfinite(hi)):
        return math.log(median), math.inf
    return math.log(median), (math.log(hi) - math.log(lo)) / (2 * z)


def latency_estimate(samples_ms: Sequence[float], round_sizes: Sequence[int],
                     repetition_rounds: Sequence[int] | None) -> RepeatedEstimate:
    """The p50 latency from its repetitions' medians."""
    parts = [log_median_and_se(s) for s in repetition_samples(samples_ms, round_sizes, repetition_rounds) if s.size]
    return estimate([m for m, _ in parts], [se for _, se in parts if math.isfinite(se)])


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


def paired_log_ratio(numerator: list[np.ndarray], denominator: list[np.ndarray]) -> tuple[float, float]:
    """One repetition's log(p50 num / p50 den) and its standard error. With the same rounds on both sides, the
    median over rounds of each round's log ratio: the two blocks of a round ran seconds apart at most, so a burst
    of load that hits some rounds (a neighbour's job, a noisy VM) moves a few round ratios, not the estimate."""
    if len(numerator) == len(denominator) and len(numerator) >= 3:
        logs = np.array([math.log(np.median(n) / np.median(d)) for n, d in zip(numerator, denominator)])
        spread = float(np.std(logs, ddof=1))
        return float(np.median(logs)), 1.2533 * spread / math.sqrt(logs.size)  # se of a median, normal model
    (log_num, se_num), (log_den, se_den) = (log_median_and_se(np.concatenate(numerator)),
                                            log_median_and_se(np.concatenate(denominator)))
    return log_num - log_den, math.hypot(se_num, se_den)


def ratio_estimate(numerator: list[list[np.ndarray]], denominator: list[list[np.ndarray]]) -> RepeatedEstimate:
    """p50(numerator) / p50(denominator), paired by repetition and, inside each, by round (both measured in the
    same rounds, so the repetition's and the round's machine state cancel). Arguments: per repetition, its rounds."""
    if len(numerator) != len(denominator):
        raise ValueError(f"{len(numerator)} and {len(denominator)} repetitions cannot be paired")
    parts = [paired_log_ratio(n, d) for n, d in zip(numerator, denominator)]
    return estimate([m for m, _ in parts], [se for _, se in parts if math.isfinite(se)])


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
