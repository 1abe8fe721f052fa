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
# The probe's median over the best this host's probes have recorded: a steady but slow machine is busy or throttled.
HOST_SLOWDOWN_WARN = 1.25
MIN_PROBE_TIME_S = 1.0
RUN_S = 1.0  # each run about a second: long enough for a stable median, short enough to see a neighbour come and go
MIN_RUNS, MAX_RUNS = 3, 30
INITIAL_WARMUP_S = 0.5  # first calls of a fresh session are slow (allocation, kernel selection); not part of a run


def probe_plan(probe_time_s: float) -> tuple[int, float]:
    """(runs, seconds per run) for a probe of about `probe_time_s`."""
    runs = max(MIN_RUNS, min(MAX_RUNS, round(probe_time_s / RUN_S)))
    return runs, probe_time_s / runs


def run_probe(device: Any, *, probe_time_s: float, threads: int | None = None,
              models_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
              on_run: Callable[[int, int], object] = lambda i, n: None) -> dict[str, Any]:
    """Measure the reference on `device` (fp32) in short runs of one session, each its own measurement with its
    own short warm-up; the per-run medians, what ran, and the best reference p50 this host has recorded."""
    from mnbench.measure.loop import measure_single
    from mnbench.measure.reference import REFERENCE_NAME, open_reference

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
    name = getattr(device, "name", device)
    return {"device": name, "reference": REFERENCE_NAME, "runtime": info.get("runtime"),
            "runtime_version": info.get("runtime_version"), "threads": info.get("threads"), "runs": runs,
            "run_s": run_s, "run_medians_ms": medians, "host_best": _host_best(name, info, reports_dir, statistics.median(medians))}


def _host_best(device: str, info: dict[str, Any], reports_dir, median_ms: float) -> dict[str, Any] | None:
    """The best reference p50 this host's probes have recorded with the same setup, this probe's median included
    (it is recorded: `mnbench.host.history`)."""
    import socket

    from mnbench.host import history as host_history
    from mnbench.host.machine import cpu_model
    from mnbench.measure.reference import REFERENCE_NAME

    key = {"hostname": socket.gethostname(), "cpu_model": cpu_model(), "device": device, "runtime": info.get("runtime"),
           "runtime_version": info.get("runtime_version"), "precision": info.get("precision"),
           "threads": info.get("threads"), "reference": REFERENCE_NAME}
    host_history.note_reference(key, median_ms, reports_dir=reports_dir)
    return host_history.read_best(key, reports_dir)


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
    threads = probe.get("threads")
    seen = (f"{len(medians)} runs of ~{probe.get('run_s', 0):.1f} s of the reference on {probe.get('device')} "
            f"({threads} thread{'' if threads == 1 else 's'}): medians {min(medians):.3f}–{max(medians):.3f} ms, spread "
            f"{spread:.1%}, CV {cv:.1%}")
    status = UNFIT if spread > SPREAD_UNFIT else WARN if spread > SPREAD_WARN else OK
    best = (probe.get("host_best") or {}).get("best_ms")
    if isinstance(best, (int, float)) and best > 0:
        slowdown = statistics.median(medians) / best
        values["host_slowdown"] = slowdown
        seen += f"; {slowdown:.2f}x this host's best ({best:.3f} ms over {probe['host_best'].get('runs_seen')} runs)"
        if status == OK and slowdown > HOST_SLOWDOWN_WARN:
            status = WARN  # steady, but steadily slow: something holds the machine back
    if status == OK:
        return Finding(name="stability probe", status=OK, seen=seen, why=why, values=values)
    return Finding(name="stability probe", status=status, seen=seen, why=why,
                   values=values,
                   what_to_do="fix the findings above first; then try fewer threads (`mnbench doctor --threads 1`; "
                              "one thread is steadiest on a shared VM) and buy precision with repetitions "
                              "(`mnbench run --repetitions 5 --max-time 30`)")
