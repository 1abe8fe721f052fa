"""The timed loop: warm up, then interleaved rounds of back-to-back calls, every call timed on its own.

Like OpenVINO benchmark_app and onnxruntime_perf_test, every sample is kept. Unlike them, several workloads (a model
pair, a gate's control) are measured in one loop, in rounds whose order is shuffled, so slow drift of the machine
hits all of them alike. Each block of a round starts with untimed calls until one runs at the workload's usual
speed (at most SETTLE_MAX_S): a runtime's worker threads keep spinning after their session's last call and would
slow the next session's first calls (benchmarks/results/settle.md). A single workload never switches and is not
settled.

Stopping rule: after each round, stop once at least `min_rounds` rounds are done, `min_time_s` has passed since the
warm-up ended and, where `target_rel_ci` is given, every workload's median CI is narrow enough; or once
`max_time_s` has passed. `mnbench run` gives no target: a repetition is a fixed time, and precision is judged
between repetitions (mnbench.stats.repetitions).
"""

from __future__ import annotations

import gc
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mnbench.stats import samples as stats
from mnbench.errors import MnbenchError

# Warm-up runs at least this many calls per workload, however long `warmup_s` is: the first calls pay for
# lazy initialisation (allocations, kernel selection, JIT), and calibration needs a few ordinary ones.
MIN_WARMUP_CALLS = 3
# Settling at the start of each block when workloads are interleaved (see the module doc): untimed calls until one
# takes at most SETTLED_RATIO x the workload's median in its previous block, for SETTLE_MAX_S at most (a workload
# that really got slower must not stall the round).
SETTLED_RATIO = 1.25
SETTLE_MAX_S = 0.2
# A guard against a mis-calibrated round (a workload that got much faster after warm-up) allocating without
# bound; at 0.25 s rounds it only binds for calls under 2.5 microseconds.
MAX_CALLS_PER_ROUND = 100_000

STOP_TARGET_CI = "target_ci"
STOP_MAX_TIME = "max_time"

Clock = Callable[[], int]
Workload = Callable[[], object]
OnRound = Callable[[float, float], object]


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Every per-call latency of one workload, in the order measured, and how many came from each round."""

    samples_ms: list[float]
    round_sizes: list[int]  # round_sizes[i] = samples of round i; sum == len(samples_ms)
    stop_reason: str = ""  # STOP_TARGET_CI or STOP_MAX_TIME; the same for every workload of one run

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    def summary(self) -> dict[str, float]:
        return stats.summarize(self.samples_ms)

    def rounds(self) -> list[list[float]]:
        """The samples split back into their rounds."""
        out, start = [], 0
        for size in self.round_sizes:
            out.append(self.samples_ms[start:start + size])
            start += size
        return out


def _timed_calls(call: Workload, n_calls: int, clock: Clock) -> list[int]:
    """`n_calls` back-to-back calls, each timed on its own, in clock units (ns). GC is off while timing:
    a collection triggered by one call would otherwise be charged to whichever call happens to come next."""
    durations = [0] * n_calls
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(n_calls):
            start = clock()
            call()
            durations[i] = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return durations


def _settle(call: Workload, usual_ns: float, max_s: float, clock: Clock) -> None:
    """Untimed calls until one takes at most SETTLED_RATIO x `usual_ns` or `max_s` has passed (none when 0)."""
    start = clock()
    while clock() - start < max_s * 1e9:
        call_start = clock()
        call()
        if clock() - call_start <= SETTLED_RATIO * usual_ns:
            return


def _warm_up(call: Workload, warmup_s: float, clock: Clock) -> list[int]:
    """Call until `warmup_s` has passed and at least MIN_WARMUP_CALLS were made; the per-call times (ns)."""
    durations: list[int] = []
    start = clock()
    while len(durations) < MIN_WARMUP_CALLS or clock() - start < warmup_s * 1e9:
        durations.extend(_timed_calls(call, 1, clock))
    return durations


def _median(values: list[float] | list[int]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _calls_per_round(typical_call_ns: float, round_s: float) -> int:
    if typical_call_ns <= 0:
        return MAX_CALLS_PER_ROUND
    return max(1, min(MAX_CALLS_PER_ROUND, int(round_s * 1e9 / typical_call_ns)))


def _check_settings(workloads: Mapping[str, Workload], *, min_time_s: float, max_time_s: float, warmup_s: float,
                    target_rel_ci: float | None, confidence: float, round_s: float) -> None:
    if not workloads:
        raise MnbenchError("nothing to measure: no workloads given")
    if min_time_s < 0 or warmup_s < 0:
        raise MnbenchError(f"min time and warm-up must be >= 0 s, got {min_time_s} s and {warmup_s} s")
    if max_time_s < min_time_s:
        raise MnbenchError(f"max time ({max_time_s} s) must be at least min time ({min_time_s} s)")
    if target_rel_ci is not None and not target_rel_ci > 0:
        raise MnbenchError(f"target relative CI half-width must be > 0 (e.g. 0.01 for +-1 %), got {target_rel_ci}")
    if not 0 < confidence < 1:
        raise MnbenchError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    if not round_s > 0:
        raise MnbenchError(f"round length must be > 0 s (e.g. 0.25), got {round_s}")


def _fraction_done(elapsed_s: float, rel_halfwidths: list[float], *, min_time_s: float, max_time_s: float,
                   target_rel_ci: float | None) -> float:
    """Progress estimate: the CI half-width shrinks as 1/sqrt(n), so (target / current)^2 of the samples needed
    are in; the run ends at the later of min time and that projection, and no later than max time."""
    worst = max(rel_halfwidths) if target_rel_ci is not None else 0.0
    ci_fraction = 1.0 if worst <= target_rel_ci else (target_rel_ci / worst) ** 2  # 0.0 for inf
    projected_end_s = max(min_time_s, elapsed_s / ci_fraction) if ci_fraction > 0 else math.inf
    end_s = min(max_time_s, projected_end_s)
    return 1.0 if end_s <= 0 else min(1.0, elapsed_s / end_s)


def measure_interleaved(
    workloads: Mapping[str, Workload],
    *,
    min_time_s: float = 2.0,
    max_time_s: float = 30.0,
    warmup_s: float = 1.0,
    target_rel_ci: float | None = 0.01,
    confidence: float = 0.95,
    round_s: float = 0.25,
    seed: int = 0,
    on_round: OnRound | None = None,
    clock: Clock = time.perf_counter_ns,
    min_rounds: int = 1,
    settle_max_s: float | None = None,
) -> dict[str, Measurement]:
    """Measure every workload (a no-argument callable) in interleaved, shuffled rounds; see the module doc.

    `on_round(elapsed_s, fraction_done)` is called after each round (for a progress bar), with 1.0 at the end.
    `settle_max_s`: the longest settling at the start of each block (default: SETTLE_MAX_S with more than one
    workload, else 0: no settling).
    `clock` returns integer nanoseconds (injectable for tests). Exceptions from a workload or `on_round`,
    KeyboardInterrupt included, propagate as they are; the garbage collector's state is restored.
    """
    _check_settings(workloads, min_time_s=min_time_s, max_time_s=max_time_s, warmup_s=warmup_s,
                    target_rel_ci=target_rel_ci, confidence=confidence, round_s=round_s)
    names = list(workloads)
    if settle_max_s is None:
        settle_max_s = SETTLE_MAX_S if len(names) > 1 else 0.0
    calls_per_round, usual_ns = {}, {}
    for name in names:
        warm = _warm_up(workloads[name], warmup_s, clock)
        # The later half: the first calls are the slow, cold ones.
        usual_ns[name] = _median(warm[len(warm) // 2:])
        calls_per_round[name] = _calls_per_round(usual_ns[name], round_s)

    samples_ms: dict[str, list[float]] = {name: [] for name in names}
    round_sizes: dict[str, list[int]] = {name: [] for name in names}
    order = list(names)
    rng = random.Random(seed)
    start_ns = clock()
    while True:
        rng.shuffle(order)
        for name in order:
            _settle(workloads[name], usual_ns[name], settle_max_s, clock)
            durations_ns = _timed_calls(workloads[name], calls_per_round[name], clock)
            samples_ms[name].extend(d / 1e6 for d in durations_ns)
            round_sizes[name].append(len(durations_ns))
            # Follow the workload's current speed, not the warm-up's.
            usual_ns[name] = _median(durations_ns)
            calls_per_round[name] = _calls_per_round(usual_ns[name], round_s)
        elapsed_s = (clock() - start_ns) / 1e9

        rel_halfwidths = [
            stats.median_ci_relative_halfwidth(samples_ms[name], confidence)
            if len(samples_ms[name]) >= stats.MIN_SAMPLES_FOR_CI else math.inf
            for name in names
        ]
        if elapsed_s >= max_time_s:
            stop_reason = STOP_MAX_TIME
        elif (elapsed_s >= min_time_s and len(round_sizes[names[0]]) >= min_rounds
              and (target_rel_ci is None or max(rel_halfwidths) <= target_rel_ci)):
            stop_reason = STOP_TARGET_CI
        else:
            if on_round is not None:
                on_round(elapsed_s, _fraction_done(elapsed_s, rel_halfwidths, min_time_s=min_time_s,
                                                   max_time_s=max_time_s, target_rel_ci=target_rel_ci))
            continue
        if on_round is not None:
            on_round(elapsed_s, 1.0)
        return {name: Measurement(samples_ms=samples_ms[name], round_sizes=round_sizes[name], stop_reason=stop_reason)
                for name in names}


def measure_single(workload: Workload, **settings: Any) -> Measurement:
    """`measure_interleaved` for one workload; `settings` are its keywords."""
    return measure_interleaved({"workload": workload}, **settings)["workload"]
