"""How busy and how stable the machine is, between two moments: the share of CPU time the hypervisor stole, the
share that was busy, and the load average (read through `mnbench.host.facts`, without root).

    before = snapshot()
    ...                                  # the measurement
    state = between(before, snapshot())  # {"interval_s", "steal_fraction", "busy_fraction", "others_fraction",
                                         #  "loadavg_1m"}

Every figure is None where it cannot be read (a sandbox hiding /proc): a missing figure never fails a run.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mnbench.host.facts import CPU_FIELDS, cpu_times, load_average

_IDLE_FIELDS = ("idle", "iowait")


def snapshot() -> dict[str, Any]:
    """The machine's CPU time and load now: {"monotonic_s", "cpu": {field: seconds} | None, "loadavg": [1m, 5m,
    15m] | None}. JSON-serialisable."""
    return {"monotonic_s": time.monotonic(), "cpu": cpu_times(), "loadavg": load_average(), "own_cpu_s": own_cpu_s()}


def own_cpu_s() -> float:
    """CPU seconds this process and its finished children (the measuring workers) have used."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """From two snapshots: the share of all CPU time over the interval that the hypervisor stole (`steal_fraction`)
    and that was busy (`busy_fraction`: user, nice, system, irq, softirq; steal, idle and iowait are not busy), the
    busy share used by other processes than this one and its children (`others_fraction`), the 1-minute load
    average at the end, and the interval's length. A figure is None where a snapshot lacks it or no CPU time
    passed."""
    steal = busy = others = None
    cpu_a, cpu_b = a.get("cpu"), b.get("cpu")
    if cpu_a and cpu_b:
        delta = {name: max(0, cpu_b.get(name, 0) - cpu_a.get(name, 0)) for name in CPU_FIELDS}
        total = sum(delta.values())
        if total > 0:
            steal = delta["steal"] / total
            busy = (total - delta["steal"] - sum(delta[name] for name in _IDLE_FIELDS)) / total
            own = b.get("own_cpu_s", 0.0) - a.get("own_cpu_s", 0.0) if "own_cpu_s" in a and "own_cpu_s" in b else None
            others = max(0.0, busy - own / total) if own is not None else None
    loadavg = b.get("loadavg")
    interval = None
    if isinstance(a.get("monotonic_s"), (int, float)) and isinstance(b.get("monotonic_s"), (int, float)):
        interval = b["monotonic_s"] - a["monotonic_s"]
    return {"interval_s": interval, "steal_fraction": steal, "busy_fraction": busy, "others_fraction": others,
            "loadavg_1m": loadavg[0] if loadavg else None}
