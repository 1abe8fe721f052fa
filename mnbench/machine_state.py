"""How busy and how stable the machine is, sampled from /proc without root: CPU time (steal included), load, and the
processes that use the CPU.

    before = snapshot()
    ...                                  # the measurement
    state = between(before, snapshot())  # {"interval_s", "steal_fraction", "busy_fraction", "loadavg_1m"}

Every figure is None where its file is missing or unreadable (not Linux, a sandbox hiding /proc): a missing figure
never fails a run. `proc_root` is injectable so tests read a fake tree.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

# The aggregate `cpu` line of /proc/stat, in this order (jiffies). `guest` and `guest_nice` follow them but are
# already counted in `user` and `nice`, so they are left out of the total.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_IDLE_FIELDS = ("idle", "iowait")
_DEFAULT_CLOCK_TICKS = 100  # USER_HZ on every mainstream Linux build


def snapshot(proc_root: str | os.PathLike = "/proc") -> dict[str, Any]:
    """The machine's CPU counters and load now: {"monotonic_s", "cpu": {field: jiffies} | None, "loadavg": [1m,
    5m, 15m] | None}. JSON-serialisable."""
    return {"monotonic_s": time.monotonic(), "cpu": _read_cpu_times(proc_root), "loadavg": _read_loadavg(proc_root)}


def between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """From two snapshots: the share of all CPU time over the interval that the hypervisor stole (`steal_fraction`)
    and that was busy (`busy_fraction`: user, nice, system, irq, softirq; steal, idle and iowait are not busy), the
    1-minute load average at the end, and the interval's length. A figure is None where a snapshot lacks it or no
    CPU time passed."""
    steal = busy = None
    cpu_a, cpu_b = a.get("cpu"), b.get("cpu")
    if cpu_a and cpu_b:
        delta = {name: max(0, cpu_b.get(name, 0) - cpu_a.get(name, 0)) for name in CPU_FIELDS}
        total = sum(delta.values())
        if total > 0:
            steal = delta["steal"] / total
            busy = (total - delta["steal"] - sum(delta[name] for name in _IDLE_FIELDS)) / total
    loadavg = b.get("loadavg")
    interval = None
    if isinstance(a.get("monotonic_s"), (int, float)) and isinstance(b.get("monotonic_s"), (int, float)):
        interval = b["monotonic_s"] - a["monotonic_s"]
    return {"interval_s": interval, "steal_fraction": steal, "busy_fraction": busy,
            "loadavg_1m": loadavg[0] if loadavg else None}


def busiest_processes(proc_root: str | os.PathLike = "/proc", n: int = 5, interval_s: float = 0.5, *,
                      exclude_pids: set[int] | None = None, sleep: Callable[[float], object] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> list[dict[str, Any]]:
    """The `n` processes that used the most CPU over `interval_s` (sampled from /proc/[pid]/stat utime+stime), our
    own process excluded: [{"pid", "comm", "cpu_share"}], busiest first, where `cpu_share` is in CPUs (1.0 = one
    CPU busy the whole interval; a multi-threaded process can exceed 1). Processes that used no CPU are left out;
    an empty list where /proc cannot be read."""
    excluded = {os.getpid()} | (exclude_pids or set())
    start_ticks, start_s = _process_ticks(proc_root, excluded), clock()
    sleep(interval_s)
    end_ticks, end_s = _process_ticks(proc_root, excluded), clock()
    elapsed_s = end_s - start_s if end_s > start_s else interval_s
    if elapsed_s <= 0:
        return []
    ticks_per_s = _clock_ticks()
    used = []
    for pid, (comm, ticks) in end_ticks.items():
        before = start_ticks.get(pid)
        if before is None or before[0] != comm:  # started during the interval, or the pid was reused
            continue
        share = (ticks - before[1]) / ticks_per_s / elapsed_s
        if share > 0:
            used.append({"pid": pid, "comm": comm, "cpu_share": round(share, 3)})
    used.sort(key=lambda p: (-p["cpu_share"], p["pid"]))
    return used[:n]


def online_cpus(proc_root: str | os.PathLike = "/proc") -> int | None:
    """CPUs the kernel counts (the `cpuN` lines of /proc/stat), or None where it cannot be read."""
    text = _read(proc_root, "stat")
    if text is None:
        return None
    count = sum(1 for line in text.splitlines() if line.startswith("cpu") and line[3:4].isdigit())
    return count or None


def _read(proc_root: str | os.PathLike, name: str) -> str | None:
    try:
        with open(os.path.join(proc_root, name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _read_cpu_times(proc_root: str | os.PathLike) -> dict[str, int] | None:
    text = _read(proc_root, "stat")
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:1 + len(CPU_FIELDS)]]
            except ValueError:
                return None
            values += [0] * (len(CPU_FIELDS) - len(values))  # old kernels have no steal (or irq) column
            return dict(zip(CPU_FIELDS, values))
    return None


def _read_loadavg(proc_root: str | os.PathLike) -> list[float] | None:
    text = _read(proc_root, "loadavg")
    try:
        return [float(v) for v in text.split()[:3]] if text else None
    except ValueError:
        return None


def _process_ticks(proc_root: str | os.PathLike, excluded: set[int]) -> dict[int, tuple[str, int]]:
    """pid -> (comm, utime + stime in clock ticks) of every process whose stat file can be read."""
    try:
        names = os.listdir(proc_root)
    except OSError:
        return {}
    out = {}
    for name in names:
        if not name.isdigit() or int(name) in excluded:
            continue
        parsed = _parse_process_stat(_read(proc_root, os.path.join(name, "stat")))
        if parsed is not None:
            out[int(name)] = parsed
    return out


def _parse_process_stat(text: str | None) -> tuple[str, int] | None:
    # `comm` is in parentheses and may itself contain spaces and parentheses: it ends at the last ')'.
    if not text or "(" not in text or ")" not in text:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 1:].split()
    try:
        return comm, int(rest[11]) + int(rest[12])  # fields 14 (utime) and 15 (stime) of proc(5), after state
    except (IndexError, ValueError):
        return None


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK")) or _DEFAULT_CLOCK_TICKS
    except (ValueError, OSError, AttributeError):
        return _DEFAULT_CLOCK_TICKS
