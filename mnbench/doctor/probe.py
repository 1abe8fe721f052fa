"""The stability probe of `mnbench doctor`: the machine-speed reference in repeated short runs, and how far their
medians spread. A quiet machine gives the same median every second; a busy or throttled one does not, and neither
will the models' medians."""

from __future__ import annotations

import math
import os
import statistics
from typing import Any, Callable

from mnbench.doctor.finding import OK, UNFIT, UNKNOWN, WARN, Finding

# max/min - 1 of the per-run medians. 5 % is the run-to-run spread of realized speedups issue 10 aims for: a
# machine whose own speed moves more than that between seconds cannot deliver it.
SPREAD_UNFIT = 0.05
SPREAD_WARN = 0.02
MIN_PROBE_TIME_S = 1.0
RUN_S = 1.0  # each run about a second: long enough for a stable median, short enough to see a neighbour come and go
MIN_RUNS, MAX_RUNS = 3, 30
INITIAL_WARMUP_S = 0.5  # first calls of a fresh session are slow (allocation, kernel selection); not part of a run


def probe_plan(probe_time_s: float) -> tuple[int, float]:
    """(runs, seconds per run) for a probe of about `probe_time_s`."""
    runs = max(MIN_RUNS, min(MAX_RUNS, round(probe_time_s / RUN_S)))
    return runs, probe_time_s / runs


def run_probe(device: Any, *, probe_time_s: float, threads: int | None = None,
              models_dir: str | os.PathLike | None = None,
              on_run: Callable[[int, int], object] = lambda i, n: None) -> dict[str, Any]:
    """Measure the reference on `device` (fp32) in short runs of one session, each its own measurement with its
    own short warm-up; the per-run medians and what ran."""
    from mnbench.measure import measure_single
    from mnbench.reference import REFERENCE_NAME, open_reference

    runs, run_s = probe_plan(probe_time_s)
    medians = []
    with open_reference(device, precision="fp32", threads=threads, models_dir=models_dir) as session:
        for index in range(runs):
            on_run(index, runs)
            warmup_s = INITIAL_WARMUP_S if index == 0 else 0.05
            measured = measure_single(session.infer, min_time_s=run_s, max_time_s=run_s, warmup_s=warmup_s,
                                      round_s=min(0.25, run_s / 4), seed=index)
            medians.append(float(statistics.median(measured.samples_ms)))
        info = session.info
    return {"device": getattr(device, "name", device), "reference": REFERENCE_NAME, "runtime": info.get("runtime"),
            "runtime_version": info.get("runtime_version"), "threads": info.get("threads"), "runs": runs,
            "run_s": run_s, "run_medians_ms": medians}


def spread_figures(medians_ms: list[float]) -> dict[str, float | None]:
    """max/min - 1 and the coefficient of variation (sample standard deviation over mean) of the run medians."""
    if len(medians_ms) < 2 or min(medians_ms) <= 0:
        return {"spread": None, "cv": None}
    mean = statistics.fmean(medians_ms)
    return {"spread": max(medians_ms) / min(medians_ms) - 1, "cv": statistics.stdev(medians_ms) / mean}


def judge_probe(probe: dict[str, Any] | None) -> Finding:
    why = ("the same small network, measured second after second: when its median moves, every model's median "
           "moves with it, and the separable models (many thin, memory-bound layers) more than the standard ones, "
           "so even the realized speedup shifts")
    if probe is None:
        return Finding(name="stability probe", status=UNKNOWN, seen="skipped (--no-probe)", why=why,
                       what_to_do="run `mnbench doctor` without --no-probe to measure it")
    medians = [m for m in probe.get("run_medians_ms") or [] if isinstance(m, (int, float)) and math.isfinite(m)]
    figures = spread_figures(medians)
    values = {**figures, "run_medians_ms": medians}
    if figures["spread"] is None:
        return Finding(name="stability probe", status=UNKNOWN, seen="fewer than two runs measured", why=why,
                       values=values, what_to_do="run a longer probe (--probe-time 10)")
    spread, cv = figures["spread"], figures["cv"]
    seen = (f"{len(medians)} runs of ~{probe.get('run_s', 0):.1f} s of the reference on {probe.get('device')} "
            f"({probe.get('threads')} threads): medians {min(medians):.3f}–{max(medians):.3f} ms, spread "
            f"{spread:.1%}, CV {cv:.1%}")
    if spread <= SPREAD_WARN:
        return Finding(name="stability probe", status=OK, seen=seen, why=why, values=values)
    return Finding(name="stability probe", status=UNFIT if spread > SPREAD_UNFIT else WARN, seen=seen, why=why,
                   values=values,
                   what_to_do="fix the findings above first; then try fewer threads (`mnbench doctor --threads 1`; "
                              "one thread is steadiest on a shared VM) and buy precision with repetitions "
                              "(`mnbench run --repetitions 5 --max-time 30`)")
