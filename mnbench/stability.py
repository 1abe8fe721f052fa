"""How fit the machine was during a run, in one line, and a warning only where a figure needs the user to act.

Pure functions of a result document (and the report's pair rows); `mnbench run` and `mnbench report` print the same
lines. What each limit guards:
- steal time: the hypervisor gave our vCPUs to someone else, so every timing stretched unpredictably;
- a realized speedup whose 95 % interval is wider than ±10 %: too wide to tell devices or explanations apart.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

STEAL_LIMIT = 0.05  # share of CPU time stolen by the hypervisor over a repetition
HALFWIDTH_LIMIT = 0.10  # a speedup known to worse than ±10 %
QUIETER = "a quieter machine (`mnbench doctor` says what to change)"


def summarize_states(states: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's machine state: each repetition's, and the worst of each figure."""
    def worst(key: str) -> float | None:
        values = [s.get(key) for s in states if isinstance(s.get(key), (int, float))]
        return max(values) if values else None

    return {"repetitions": [dict(s) for s in states], "steal_fraction_max": worst("steal_fraction"),
            "busy_fraction_max": worst("busy_fraction"), "loadavg_1m_max": worst("loadavg_1m")}


def machine_line(doc: Mapping[str, Any]) -> str:
    """The machine's fitness during the run, in one line: CPUs, the threads that ran, steal and load."""
    machine, state = doc.get("machine") or {}, doc.get("machine_state") or {}
    threads = sorted({r.get("threads") for r in doc.get("records") or [] if isinstance(r.get("threads"), int)})
    parts = [f"{machine.get('cpu_model') or 'unknown CPU'}, {machine.get('available_cpus') or '?'} CPUs",
             f"{'/'.join(map(str, threads)) or '?'} thread{'s' if threads != [1] else ''} per model"]
    steal, load = state.get("steal_fraction_max"), state.get("loadavg_1m_max")
    if isinstance(steal, (int, float)):
        parts.append(f"steal ≤ {steal:.1%}")
    if isinstance(load, (int, float)):
        parts.append(f"load ≤ {load:.1f}")
    fit = not (isinstance(steal, (int, float)) and steal > STEAL_LIMIT)
    return f"machine: {', '.join(parts)}: {'fit' if fit else 'unfit'} for timing"


def machine_warnings(doc: Mapping[str, Any]) -> list[str]:
    steal = (doc.get("machine_state") or {}).get("steal_fraction_max")
    if isinstance(steal, (int, float)) and steal > STEAL_LIMIT:
        return [f"the hypervisor stole {steal:.0%} of the CPU time in one repetition: every figure is stretched by "
                f"other guests; run again on {QUIETER}"]
    return []


def pair_warnings(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per pair whose interval is too wide to read, with what narrows it."""
    out = []
    for row in rows:
        half = row.get("realized_speedup_halfwidth")
        if isinstance(half, (int, float)) and math.isfinite(half) and half > HALFWIDTH_LIMIT:
            name = f"{row['arch']} w{row['width']:g} r{row['resolution']} on {row['device']}"
            out.append(f"{name}: the realized speedup is known to ±{half:.0%} only; run the same command again "
                       f"(`mnbench report` pools the runs), give it longer (--max-time), or use {QUIETER}")
    return out
