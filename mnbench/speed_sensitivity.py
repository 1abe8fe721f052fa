"""How a realized speedup follows the machine's speed, and what it is when the machine runs at its best.

On a shared VM the separable nets (many thin, memory-bound layers) slow down more than the standard ones when the
machine slows down, so the realized speedup moves with the machine's state (issue 10). Every repetition measures
the machine-speed reference (`mnbench.reference`) in the same rounds as the pair, so each repetition gives a point
(log reference p50, log realized speedup). Over the repetitions of several runs of one host the points fall on a
line (2026-12-02, Zen 5 EPYC VM, 2 threads: r = -0.5 to -0.94 per pair; slope -0.3 to -2.1: v3-small's speedup
fell 2 % for each 1 % the machine slowed; benchmarks/results/repeatability_2threads_zen4.md).

`fit` estimates that line by least squares and reads it at the fastest reference this host showed: what the
speedup would be with the machine at its quietest. Its uncertainty comes from the runs, not the repetitions
(repetitions of one run share its state): a delete-one-run jackknife, Student's t with runs - 1 degrees of freedom.
A fit needs at least MIN_RUNS runs and a reference that moved at least MIN_REFERENCE_RANGE; otherwise the slope is
not known and `fit` says None.

The slope is the finding (which nets pay for a slow machine, and how much); the figure at best speed is
exploratory. Two checks, each a pair of sets of five runs on one host (benchmarks/results/speed_sensitivity.md,
2026-12-03 00:20 UTC; speed_sensitivity_2026-12-03_0946.md): each set's figure fell inside the other's interval in
11 and 13 of 16 cases, and moving a single run along the line left the median run-to-run spread where it was
(20 % -> 18 %, 19 % -> 20 %): the machine's speed explains the direction, not the size, of a run's deviation. So
the report prints it beside the measured speedup, never in its place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import t as student_t

from mnbench import repetitions

CONFIDENCE = 0.95
MIN_RUNS = 3  # the jackknife over runs needs two left when one is deleted
MIN_REFERENCE_RANGE = 0.05  # max/min - 1 of the repetitions' reference p50: less, and the slope is noise


@dataclass(frozen=True)
class Point:
    """One repetition: the machine's speed (reference p50) and the pair's realized speedup, both on the log scale."""

    run: str  # the result file it came from
    log_reference_ms: float
    log_speedup: float


@dataclass(frozen=True)
class SpeedSensitivity:
    """log speedup = intercept + slope · log reference p50, fitted over the repetitions of `runs` runs."""

    slope: float  # d log speedup / d log machine time: -2 means 2 % lower speedup per 1 % slower machine
    slope_ci: tuple[float, float]
    best_reference_ms: float  # the fastest repetition of the machine seen in these runs (or the speed asked for)
    speedup_at_best: float  # the line read at best_reference_ms
    speedup_at_best_ci: tuple[float, float]
    runs: int
    points: int
    reference_range: float  # max/min - 1 of the reference p50 over the points

    def as_json(self) -> dict:
        return {"slope": self.slope, "slope_ci": list(self.slope_ci), "best_reference_ms": self.best_reference_ms,
                "speedup_at_best": self.speedup_at_best, "speedup_at_best_ci": list(self.speedup_at_best_ci),
                "runs": self.runs, "points": self.points, "reference_range": self.reference_range}


def repetition_points(run: str, standard: Mapping, separable: Mapping) -> list[Point]:
    """The points of one run's pair (both records from one result file, measured in the same rounds); [] when the
    run measured no reference or the two records' repetitions do not line up."""
    reference = standard.get("reference") or {}
    if not reference.get("samples_ms") or standard.get("repetition_rounds") != separable.get("repetition_rounds"):
        return []
    split = [repetitions.repetition_rounds(r["samples_ms"], r.get("round_sizes") or [], standard.get("repetition_rounds"))
             for r in (standard, separable, reference)]
    if len({len(s) for s in split}) != 1:
        return []
    points = []
    for std_rounds, sep_rounds, ref_rounds in zip(*split):
        log_speedup, _ = repetitions.paired_log_ratio(std_rounds, sep_rounds)
        ref_p50 = float(np.median(np.concatenate(ref_rounds)))
        if ref_p50 > 0 and math.isfinite(log_speedup):
            points.append(Point(run, math.log(ref_p50), log_speedup))
    return points


def _line(points: Sequence[Point]) -> tuple[float, float]:
    x = np.array([p.log_reference_ms for p in points])
    y = np.array([p.log_speedup for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def fit(points: Sequence[Point], confidence: float = CONFIDENCE, at_reference_ms: float | None = None
        ) -> SpeedSensitivity | None:
    """The line over all points, with jackknife-over-runs intervals, read at the fastest reference among the points
    (or at `at_reference_ms`: to compare two sets of runs at one machine speed); None when it cannot be told (see
    the module doc)."""
    runs = sorted({p.run for p in points})
    refs = [math.exp(p.log_reference_ms) for p in points]
    if len(runs) < MIN_RUNS or max(refs) / min(refs) - 1 < MIN_REFERENCE_RANGE:
        return None
    x_best = math.log(at_reference_ms) if at_reference_ms else min(p.log_reference_ms for p in points)

    def read(subset: Sequence[Point]) -> tuple[float, float]:
        slope, intercept = _line(subset)
        return slope, intercept + slope * x_best

    slope, at_best = read(points)
    leave_out = np.array([read([p for p in points if p.run != run]) for run in runs])
    g = len(runs)
    se = np.sqrt((g - 1) / g * np.sum((leave_out - leave_out.mean(axis=0)) ** 2, axis=0))
    t = float(student_t.ppf(0.5 + confidence / 2, g - 1))
    return SpeedSensitivity(
        slope=slope, slope_ci=(slope - t * float(se[0]), slope + t * float(se[0])),
        best_reference_ms=math.exp(x_best), speedup_at_best=math.exp(at_best),
        speedup_at_best_ci=(math.exp(at_best - t * float(se[1])), math.exp(at_best + t * float(se[1]))),
        runs=g, points=len(points), reference_range=max(refs) / min(refs) - 1)
