"""How stable the machine was during a run, and one-line warnings where a figure cannot bear it.

Pure functions of a result document (and the report's pair rows); `mnbench run` and `mnbench report` print the same
warnings. What each limit guards:
- steal time: the hypervisor gave our vCPUs to someone else; every timing stretches unpredictably;
- the reference's spread between repetitions: the machine itself changed speed during the run, and the separable
  models (many thin, memory-bound layers) slow down more than the standard ones when it does, so even a ratio
  measured in the same rounds moves (issue 10: reference p50 1.24, 1.88, 2.13 ms in three runs);
- the reference against the best this host has recorded: a run on a busy machine is not the machine's speed;
- a figure whose repetitions disagree beyond their own noise, or whose rerun interval is wide.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from mnbench import repetitions

STEAL_LIMIT = 0.05  # share of CPU time stolen by the hypervisor over a repetition
REFERENCE_SPREAD_LIMIT = 0.10  # max/min - 1 of the reference's repetition medians
HOST_SLOWDOWN_LIMIT = 1.25  # reference p50 over the best this host has recorded
RERUN_HALFWIDTH_LIMIT = 0.10  # a speedup's rerun interval of more than ±10 %
QUIETER = "a quieter machine (`mnbench doctor` says what to change)"


def summarize_states(states: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's machine state: each repetition's, and the worst of each figure."""
    def worst(key: str) -> float | None:
        values = [s.get(key) for s in states if isinstance(s.get(key), (int, float))]
        return max(values) if values else None

    return {"repetitions": [dict(s) for s in states], "steal_fraction_max": worst("steal_fraction"),
            "busy_fraction_max": worst("busy_fraction"), "loadavg_1m_max": worst("loadavg_1m")}


def reference_repetition_p50s(records: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per device, the reference's median in each repetition (from the first record that carries it: every
    record of a repetition and device shares one reference session, and its samples over the run are these)."""
    by_device: dict[str, list[list[float]]] = {}
    for record in records:
        reference = record.get("reference")
        if not reference or not reference.get("samples_ms"):
            continue
        parts = repetitions.repetition_samples(reference["samples_ms"], reference.get("round_sizes") or [],
                                               record.get("repetition_rounds"))
        by_device.setdefault(record["device"], []).append([float(np.median(p)) for p in parts if p.size])
    # A repetition's reference ran in every group's rounds: the median over groups is the repetition's speed.
    return {device: [float(np.median(col)) for col in zip(*rows)] for device, rows in by_device.items()}


def machine_warnings(doc: Mapping[str, Any]) -> list[str]:
    state = doc.get("machine_state") or {}
    out = []
    steal = state.get("steal_fraction_max")
    if isinstance(steal, (int, float)) and steal > STEAL_LIMIT:
        out.append(f"the hypervisor stole {steal:.0%} of the CPU time in one repetition: every figure is stretched "
                   "by other guests")
    for device, p50s in reference_repetition_p50s(doc.get("records") or []).items():
        if len(p50s) > 1 and min(p50s) > 0 and max(p50s) / min(p50s) - 1 > REFERENCE_SPREAD_LIMIT:
            out.append(f"{device}: the machine's speed moved {max(p50s) / min(p50s) - 1:.0%} between repetitions "
                       f"(reference p50 {min(p50s):.3g}-{max(p50s):.3g} ms): speedups on this run can move as much")
    for device, seen in (state.get("reference_vs_host_best") or {}).items():
        slowdown = seen.get("slowdown")
        if isinstance(slowdown, (int, float)) and slowdown > HOST_SLOWDOWN_LIMIT:
            out.append(f"{device}: this machine ran {slowdown:.2f}x slower than the best it has recorded "
                       f"({seen.get('runs_seen')} runs): it was busy")
    return out


def with_advice(lines: list[str], rows: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """The warnings, and what helps, once, after them: what the run (its report `rows`) has not tried yet."""
    return lines + [advice(rows)] if lines else []


def advice(rows: Iterable[Mapping[str, Any]] = ()) -> str:
    """More repetitions than the run had (an interval narrows with them, its t most of all), one thread unless
    every pair already ran on one, and a quieter machine."""
    rows = list(rows)
    repetitions = max((r["repetitions"] for r in rows if isinstance(r.get("repetitions"), int)), default=0)
    longer = ("--repetitions 5, --max-time 30" if repetitions < 5 else
              f"--repetitions {2 * repetitions}, --max-time {12 * repetitions}")
    helps = [f"a longer run ({longer})"]
    if not rows or any(r.get("threads") != 1 for r in rows):
        helps.append("fewer threads (--threads 1)")
    return f"what helps: {', '.join(helps)}, or {QUIETER}"


def pair_warnings(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per pair whose realized speedup cannot be trusted as precisely as it looks."""
    out = []
    for row in rows:
        name = f"{row['arch']} w{row['width']:g} r{row['resolution']} on {row['device']}"
        if row.get("repetitions_disagree"):
            out.append(f"{name}: the speedup's repetitions disagree beyond their own noise "
                       f"({_percent(row.get('between_repetition_sd'))} between, "
                       f"{_percent(row.get('within_repetition_sd'))} within): the session or the machine's state "
                       f"decided it")
        half = row.get("realized_speedup_rerun_halfwidth")
        if isinstance(half, (int, float)) and math.isfinite(half) and half > RERUN_HALFWIDTH_LIMIT:
            out.append(f"{name}: a re-run may move the realized speedup by ±{half:.0%}")
    return out


def _percent(log_sd: Any) -> str:
    return f"{math.expm1(log_sd):.1%}" if isinstance(log_sd, (int, float)) else "?"
