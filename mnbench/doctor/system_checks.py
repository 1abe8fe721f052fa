"""The system checks of `mnbench doctor`: steal time and load over a short interval (with the busiest other
processes), transparent huge pages, available memory."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mnbench.host import load as machine_state
from mnbench.doctor.finding import OK, UNFIT, UNKNOWN, WARN, Finding
from mnbench.host.facts import Host, busiest_processes, logical_cpus
from mnbench.measure.stability import STEAL_LIMIT

# Steal: the share of CPU time the hypervisor gave to other guests. Over 5 % every timing stretches unpredictably
# (the limit `mnbench run` warns at, mnbench.measure.stability.STEAL_LIMIT); a trace of it is common on shared VMs.
STEAL_UNFIT = STEAL_LIMIT
STEAL_WARN = 0.01
# Busy: the share of all CPUs' time other processes used while doctor slept (it includes no benchmark of ours).
BUSY_UNFIT = 0.25
BUSY_WARN = 0.10
# Load average per CPU: a lagging, one-minute view; only a hint when the busy share was measured.
LOAD_UNFIT = 1.0
LOAD_WARN = 0.5
# Available memory: the models, their runtimes' arenas and the page cache of the ONNX files need a few hundred MB;
# below this the kernel reclaims and swaps during the run.
MEMORY_UNFIT_GIB = 1.0
MEMORY_WARN_GIB = 2.0
THP_COMMAND = "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled"


@dataclass(frozen=True, kw_only=True)
class Activity:
    """The machine over a short interval: `machine_state.between` figures and the busiest other processes."""

    state: dict[str, Any]
    busiest: list[dict[str, Any]] = field(default_factory=list)
    cpus: int | None = None


def sample_activity(host: Host, interval_s: float = 1.0) -> Activity:
    """Steal, busy share and load over `interval_s`, and the processes that used the most CPU meanwhile; unknown
    on any host but the live one (psutil reads the live machine only)."""
    if not host.live:
        return Activity(state=machine_state.between({}, {}))
    before = machine_state.snapshot()
    busiest = busiest_processes(n=5, interval_s=interval_s)
    state = machine_state.between(before, machine_state.snapshot())
    return Activity(state=state, busiest=busiest, cpus=logical_cpus())


def check_steal(activity: Activity) -> Finding:
    steal = activity.state.get("steal_fraction")
    interval = activity.state.get("interval_s")
    why = ("stolen time is time the hypervisor ran another guest on our virtual CPU: any call can stretch by a "
           "time slice, unpredictably, and nothing inside the VM can stop it")
    if steal is None:
        return Finding(name="steal time", status=UNKNOWN, seen="the CPU time counters cannot be read", why=why,
                       what_to_do="nothing to change here")
    seen = f"{steal:.1%} of CPU time stolen over {interval:.1f} s" if interval else f"{steal:.1%} of CPU time stolen"
    values = {"steal_fraction": steal, "interval_s": interval}
    if steal <= STEAL_WARN:
        return Finding(name="steal time", status=OK, seen=seen, why=why, values=values)
    return Finding(name="steal time", status=UNFIT if steal > STEAL_UNFIT else WARN, seen=seen, why=why,
                   values=values, what_to_do="benchmark on a dedicated instance or host (no CPU overcommit), or when "
                                             "the neighbours are quiet; compare results only with runs that saw as "
                                             "little steal")


def check_load(activity: Activity) -> Finding:
    busy, load, cpus = (activity.state.get("busy_fraction"), activity.state.get("loadavg_1m"), activity.cpus)
    why = ("other processes on the benchmark's cores take turns with its threads: a preempted worker stalls the "
           "whole inference call, and they share caches and memory bandwidth")
    per_cpu = load / cpus if load is not None and cpus else None
    parts = []
    if busy is not None:
        parts.append(f"{busy:.0%} of all CPU time busy in the last {activity.state.get('interval_s') or 1:.1f} s")
    if load is not None:
        parts.append(f"load average {load:.2f}" + (f" on {cpus} CPUs" if cpus else ""))
    if activity.busiest:
        parts.append("busiest: " + ", ".join(f"{p['comm']} (pid {p['pid']}) {p['cpu_share']:.2f} CPU"
                                              for p in activity.busiest))
    values = {"busy_fraction": busy, "loadavg_1m": load, "cpus": cpus, "busiest": activity.busiest}
    if busy is None and per_cpu is None:
        return Finding(name="load", status=UNKNOWN, seen="the CPU time counters and load average cannot be read",
                       why=why, values=values, what_to_do="nothing to change here")
    if busy is not None:
        status = UNFIT if busy > BUSY_UNFIT else WARN if busy > BUSY_WARN else OK
    else:
        status = UNFIT if per_cpu > LOAD_UNFIT else WARN if per_cpu > LOAD_WARN else OK
    if status == OK and per_cpu is not None and per_cpu > LOAD_UNFIT:
        status = WARN  # quiet this second, busy over the last minute: something comes and goes
    what = "" if status == OK else ("stop or wait for the busiest processes above (a build, a test suite, a "
                                    "browser); benchmark when the machine is otherwise idle")
    return Finding(name="load", status=status, seen="; ".join(parts), why=why, what_to_do=what, values=values)


def check_transparent_hugepages(host: Host) -> Finding:
    text = host.read_sys("kernel/mm/transparent_hugepage/enabled")
    why = ("with THP 'always' whether a buffer gets huge pages depends on memory fragmentation at that moment, and "
           "khugepaged compacts memory in the background: TLB behaviour, and so latency, changes between runs")
    chosen = re.search(r"\[(\w+)\]", text or "")
    if not chosen:
        return Finding(name="transparent huge pages", status=UNKNOWN, seen="THP setting cannot be read", why=why,
                       what_to_do="nothing to change here")
    mode = chosen.group(1)
    if mode != "always":
        return Finding(name="transparent huge pages", status=OK, seen=text, why=why, values={"mode": mode})
    return Finding(name="transparent huge pages", status=WARN, seen=text, why=why, values={"mode": mode},
                   what_to_do="set THP to madvise (or never) while benchmarking", command=THP_COMMAND)


def check_memory(memory: dict[str, int] | None) -> Finding:
    """`memory`: `mnbench.host.facts.memory()`, {"total", "available"} in bytes, or None where it cannot be read."""
    why = ("with little memory available the kernel reclaims page cache and swaps during the run: page faults "
           "land in timed calls")
    if not memory:
        return Finding(name="memory", status=UNKNOWN, seen="available memory cannot be read", why=why,
                       what_to_do="nothing to change here")
    available = memory["available"] / 2**30
    total = memory.get("total", 0) / 2**30
    seen = f"{available:.1f} GiB available" + (f" of {total:.1f} GiB" if total else "")
    values = {"available_gib": round(available, 2), "total_gib": round(total, 2) if total else None}
    if available >= MEMORY_WARN_GIB:
        return Finding(name="memory", status=OK, seen=seen, why=why, values=values)
    return Finding(name="memory", status=UNFIT if available < MEMORY_UNFIT_GIB else WARN, seen=seen, why=why,
                   values=values, what_to_do="close memory-hungry programs, or benchmark smaller models and batches")
