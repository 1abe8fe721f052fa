"""`mnbench doctor`: is this machine fit for benchmarking, and what to change. Like `pyperf system show`.

    diagnosis = diagnose(device="cpu", probe_time_s=10)
    diagnosis["fit"]        # no finding is unfit
    diagnosis["findings"]   # [{"name", "status", "seen", "why", "what_to_do", "command", "values"}]

Every check reads the machine through `mnbench.host.facts` without root (`Host` moves the /proc and /sys it reads, for
tests; steal, load and memory come from psutil, on the live machine only); where a fix needs root, the finding
carries the command, which mnbench never runs. The checks are in `cpu_checks` and `system_checks`, the
stability probe in `probe`.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any, Callable

from mnbench.host import facts as host_facts
from mnbench.doctor import cpu_checks, probe, system_checks
from mnbench.doctor.finding import OK, STATUSES, UNFIT, UNKNOWN, WARN, Finding
from mnbench.errors import MnbenchError
from mnbench.host.facts import Host

__all__ = ["OK", "STATUSES", "UNFIT", "UNKNOWN", "WARN", "Finding", "Host", "diagnose"]

ACTIVITY_INTERVAL_S = 1.0


def diagnose(*, device: str = "cpu", probe_time_s: float = 10.0, with_probe: bool = True, threads: int | None = None,
             models_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
             host: Host | None = None,
             sample: Callable[[Host], system_checks.Activity] | None = None,
             run_probe: Callable[..., dict[str, Any]] | None = None,
             on_status: Callable[[str], object] = lambda _: None) -> dict[str, Any]:
    """Every check, then (unless `with_probe` is False) the stability probe on `device`:
    {"fit": bool, "findings": [...], "probe": {...} | None, "machine": {...}}.

    `sample` (the 1-s steal/load sampling) and `run_probe` (the probe's measurement) are injectable for tests."""
    host = host or Host()
    if with_probe:
        if not probe_time_s >= probe.MIN_PROBE_TIME_S:
            raise MnbenchError(f"--probe-time must be at least {probe.MIN_PROBE_TIME_S:g} s, got {probe_time_s:g}")
        if threads is not None and threads <= 0:
            raise MnbenchError(f"threads must be a positive integer, got {threads}")
        from mnbench.devices.registry import resolve_device

        probe_device = resolve_device(device)  # before a second is spent: a wrong name is a usage error
    findings = [check(host) for check in (cpu_checks.check_cpu, cpu_checks.check_governor, cpu_checks.check_boost,
                                          cpu_checks.check_smt, cpu_checks.check_isolation, cpu_checks.check_cgroup)]
    on_status(f"sampling steal time and load for {ACTIVITY_INTERVAL_S:g} s …")
    activity = (sample or (lambda h: system_checks.sample_activity(h, ACTIVITY_INTERVAL_S)))(host)
    findings += [system_checks.check_steal(activity), system_checks.check_load(activity),
                 system_checks.check_transparent_hugepages(host), system_checks.check_memory(host_facts.memory(host))]
    probe_result = None
    if with_probe:
        runs, _ = probe.probe_plan(probe_time_s)
        on_status(f"stability probe: {runs} runs of the reference network on {probe_device.name} "
                  f"(about {probe_time_s:g} s) …")
        probe_result = (run_probe or probe.run_probe)(probe_device, probe_time_s=probe_time_s, threads=threads,
                                                      models_dir=models_dir, reports_dir=reports_dir)
    findings.append(probe.judge_probe(probe_result))
    if probe_result is not None:
        probe_result = {**probe_result, **probe.spread_figures(probe_result.get("run_medians_ms") or [])}
    return {"fit": not any(f.status == UNFIT for f in findings), "findings": [f.to_json() for f in findings],
            "probe": probe_result, "machine": machine_summary(host, activity)}


def machine_summary(host: Host, activity: system_checks.Activity) -> dict[str, Any]:
    """What the diagnosis ran on, for --format json."""
    allowed = host.allowed_cpus()
    cpuinfo = host_facts.cpuinfo(host)
    memory = host_facts.memory(host)
    return {"hostname": socket.gethostname(), "kernel": platform.release(), "arch": platform.machine(),
            "cpu_model": host_facts.cpu_model(cpuinfo), "cpu_signature": host_facts.cpu_signature(cpuinfo),
            "online_cpus": activity.cpus, "allowed_cpus": len(allowed) if allowed else None,
            "memory_total_gib": round(memory["total"] / 2**30, 1) if memory else None}
