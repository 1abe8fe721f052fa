"""How fit the machine was during a run, in one line, and a warning only where a figure needs the user to act.

Pure functions of a result document (and the report's pair rows); `mnbench run` and `mnbench report` print the same
lines. What each limit guards:
- steal time: the hypervisor gave our vCPUs to someone else, so every timing stretched unpredictably;
- other processes' CPU use during a pass: the run measures such a pass again (OTHERS_LIMIT), MAX_DISCARDED times
  at most; a neighbour's burst slows the separable net's many small layers more than the standard ones, and a whole
  pass would carry it. Passes kept while others were busy are worth a warning;
- a realized speedup whose 95 % interval is wider than ±10 %: too wide to tell devices or explanations apart.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

STEAL_LIMIT = 0.05  # share of CPU time stolen by the hypervisor over a repetition
HALFWIDTH_LIMIT = 0.10  # a speedup known to worse than ±10 %
OTHERS_LIMIT = 0.05  # of all CPU time, used by other processes during a pass: a tenth of one core of 2 vCPUs
MAX_DISCARDED = 4  # passes measured again in one run
QUIETER = "a quieter machine (`mnbench doctor` says what to change)"


def summarize_states(states: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's machine state: each repetition's, and the worst of each figure."""
    def worst(key: str) -> float | None:
        values = [s.get(key) for s in states if isinstance(s.get(key), (int, float))]
        return max(values) if values else None

    kept = [s for s in states if not s.get("discarded")]
    others = [s["others_fraction"] for s in kept if isinstance(s.get("others_fraction"), (int, float))]
    return {"repetitions": [dict(s) for s in states], "steal_fraction_max": worst("steal_fraction"),
            "busy_fraction_max": worst("busy_fraction"), "loadavg_1m_max": worst("loadavg_1m"),
            "others_fraction_max": max(others) if others else None,
            "discarded_passes": sum(bool(s.get("discarded")) for s in states)}


def machine_line(doc: Mapping[str, Any]) -> str:
    """The machine's fitness during the run, in one line: CPUs, the threads that ran, steal and load."""
    machine, state = doc.get("machine") or {}, doc.get("machine_state") or {}
    threads = sorted({r.get("threads") for r in doc.get("records") or [] if isinstance(r.get("threads"), int)})
    parts = [f"{machine.get('cpu_model') or 'unknown CPU'}, {machine.get('available_cpus') or '?'} CPUs",
             f"{'/'.join(map(str, threads)) or '?'} thread{'s' if threads != [1] else ''} per model"]
    steal, others = state.get("steal_fraction_max"), state.get("others_fraction_max")
    if isinstance(steal, (int, float)):
        parts.append(f"steal ≤ {steal:.1%}")
    if isinstance(others, (int, float)):
        parts.append(f"others ≤ {others:.0%} of the CPU")
    if state.get("discarded_passes"):
        parts.append(f"{state['discarded_passes']} busy pass{'es' if state['discarded_passes'] > 1 else ''} "
                     "measured again")
    fit = not (isinstance(steal, (int, float)) and steal > STEAL_LIMIT) and not _others_busy(state)
    return f"machine: {', '.join(parts)}: {'fit' if fit else 'unfit'} for timing"


def machine_warnings(doc: Mapping[str, Any]) -> list[str]:
    state = doc.get("machine_state") or {}
    out = []
    steal = state.get("steal_fraction_max")
    if isinstance(steal, (int, float)) and steal > STEAL_LIMIT:
        out.append(f"the hypervisor stole {steal:.0%} of the CPU time in one pass: every figure is stretched by "
                   f"other guests; run again on {QUIETER}")
    if _others_busy(state):
        out.append(f"other processes used up to {state['others_fraction_max']:.0%} of the CPU in passes kept after "
                   f"{state.get('discarded_passes')} were measured again: the figures may not hold on a quiet "
                   f"machine; stop them and run again")
    return out


def disturbed(state: Mapping[str, Any]) -> bool:
    """Whether other processes used more than OTHERS_LIMIT of the machine's CPU time during one pass."""
    others = state.get("others_fraction")
    return isinstance(others, (int, float)) and others > OTHERS_LIMIT


def _others_busy(state: Mapping[str, Any]) -> bool:
    others = state.get("others_fraction_max")
    return isinstance(others, (int, float)) and others > OTHERS_LIMIT


def pair_warnings(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per pair whose interval is too wide to read, with what narrows it."""
    out = []
    for row in rows:
        half = row.get("realized_speedup_halfwidth")
        if isinstance(half, (int, float)) and math.isfinite(half) and half > HALFWIDTH_LIMIT:
            point = "".join(f" {key} {row[key]}" for key in ("threads", "batch") if row.get(key) not in (None, 1))
            name = f"{row['arch']} w{row['width']:g} r{row['resolution']}{point} on {row['device']}"
            out.append(f"{name}: the realized speedup is known to ±{half:.0%} only; run the same command again "
                       f"(`mnbench report` pools the runs), give it longer (--max-time), or use {QUIETER}")
    return out
