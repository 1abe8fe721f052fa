"""The CPU checks of `mnbench doctor`: model and ISA, frequency governor, boost/turbo, SMT, isolated CPUs, cgroup
quota. Each reads the machine through a `Host` and returns one `Finding`; none needs root."""

from __future__ import annotations

import math

from mnbench.doctor.finding import OK, UNFIT, UNKNOWN, WARN, Finding, format_cpu_list, parse_cpu_list
from mnbench.host.facts import Host, cgroup_cpu_quota, cpu_flags, cpu_model, cpuinfo, quota_threads

CPU_DIR = "devices/system/cpu"
# The flags that decide which kernels ONNX Runtime and OpenVINO pick; names as /proc/cpuinfo spells them.
ISA_REPORTED = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "VNNI": ("avx512_vnni", "avx_vnni"),
                "AVX512_BF16": ("avx512_bf16",), "AMX": ("amx_tile",)}
GOVERNOR_COMMAND = "sudo cpupower frequency-set -g performance"


def check_cpu(host: Host) -> Finding:
    fields = cpuinfo(host)
    if not fields:
        return Finding(name="CPU and ISA", status=UNKNOWN, seen="/proc/cpuinfo cannot be read",
                       why="the kernels a runtime picks depend on the CPU's instruction sets",
                       what_to_do="nothing to change; results will lack the CPU model")
    flags = cpu_flags(fields)
    present = {name: any(f in flags for f in names) for name, names in ISA_REPORTED.items()}
    model = cpu_model(fields) or fields.get("CPU part") or "unknown model"
    listed = ", ".join(f"{name} {'yes' if has else 'no'}" for name, has in present.items())
    return Finding(
        name="CPU and ISA", status=OK, seen=f"{model}; {listed}",
        why="ONNX Runtime and OpenVINO pick kernels by instruction set (VNNI/AMX for int8, AVX512_BF16/AMX make "
            "OpenVINO run bf16 unless told f32): latencies compare only between machines with the same flags, and "
            "`mnbench check` refuses a baseline from other ones",
        values={"cpu_model": model, "isa": present})


def check_governor(host: Host) -> Finding:
    cpu_dir = host.sys_path(CPU_DIR)
    governors = {}
    for path in sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        value = host.read_sys(str(path.relative_to(host.sys_root)))
        if value:
            governors[int(path.parent.parent.name[3:])] = value
    why = ("a dynamic governor raises the clock only after load appears and drops it when idle, so short runs and "
           "the first calls after a pause run at a lower, varying frequency")
    if not governors:
        return Finding(name="frequency governor", status=UNKNOWN, why=why,
                       seen="no cpufreq governor (a VM, or a kernel without frequency scaling: the host sets the clock)",
                       what_to_do="nothing to change here; on a VM the host's settings decide the clock")
    driver = host.read_sys(f"{CPU_DIR}/cpu{min(governors)}/cpufreq/scaling_driver")
    by_value: dict[str, list[int]] = {}
    for cpu, value in governors.items():
        by_value.setdefault(value, []).append(cpu)
    seen = "; ".join(f"{value} on CPUs {format_cpu_list(set(cpus))}" for value, cpus in sorted(by_value.items()))
    seen += f" (driver {driver})" if driver else ""
    values = {"governors": by_value, "driver": driver}
    if set(by_value) == {"performance"}:
        return Finding(name="frequency governor", status=OK, seen=seen, why=why, values=values)
    return Finding(name="frequency governor", status=WARN, seen=seen, why=why, values=values,
                   what_to_do="set the performance governor on every CPU (without cpupower: echo performance | "
                              "sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)",
                   command=GOVERNOR_COMMAND)


def check_boost(host: Host) -> Finding:
    why = ("turbo/boost clocks depend on temperature, power and how many cores are busy, so the same run is faster "
           "or slower depending on what ran before it and beside it")
    no_turbo = host.read_sys(f"{CPU_DIR}/intel_pstate/no_turbo")
    boost = host.read_sys(f"{CPU_DIR}/cpufreq/boost")
    if no_turbo is not None:
        on, command, seen = no_turbo == "0", f"echo 1 | sudo tee /sys/{CPU_DIR}/intel_pstate/no_turbo", "intel_pstate turbo"
    elif boost is not None:
        on, command, seen = boost == "1", f"echo 0 | sudo tee /sys/{CPU_DIR}/cpufreq/boost", "cpufreq boost"
    else:
        return Finding(name="turbo / boost", status=UNKNOWN, why=why,
                       seen="no intel_pstate/no_turbo or cpufreq/boost (a VM, or a driver without the switch)",
                       what_to_do="nothing to change here; on a VM the host decides")
    if not on:
        return Finding(name="turbo / boost", status=OK, seen=f"{seen} off", why=why, values={"boost": False})
    return Finding(name="turbo / boost", status=WARN, seen=f"{seen} on", why=why, values={"boost": True},
                   what_to_do="turn it off while benchmarking (back on: the same file, the other value)",
                   command=command)


def check_smt(host: Host) -> Finding:
    why = ("hyper-threads of one core share its execution units and caches: whatever runs on the sibling slows "
           "the benchmark's thread")
    active = host.read_sys(f"{CPU_DIR}/smt/active")
    if active not in ("0", "1"):
        return Finding(name="SMT (hyper-threading)", status=UNKNOWN, seen="smt/active cannot be read", why=why,
                       what_to_do="nothing to change here")
    if active == "0":
        return Finding(name="SMT (hyper-threading)", status=OK, seen="off", why=why, values={"smt": False})
    return Finding(name="SMT (hyper-threading)", status=WARN, seen="on", why=why, values={"smt": True},
                   what_to_do="keep --threads at or below the physical cores (mnbench's default) and keep the "
                              "machine otherwise idle; or turn SMT off",
                   command=f"echo off | sudo tee /sys/{CPU_DIR}/smt/control")


def check_isolation(host: Host) -> Finding:
    why = ("on isolated CPUs (isolcpus/nohz_full) the scheduler puts no other task and fewer interrupts beside the "
           "benchmark's threads")
    isolated = parse_cpu_list(host.read_sys(f"{CPU_DIR}/isolated"))
    allowed = host.allowed_cpus()
    allowed_text = format_cpu_list(allowed) if allowed else "unknown"
    values = {"isolated": sorted(isolated) if isolated is not None else None,
              "affinity": sorted(allowed) if allowed else None}
    if isolated is None:
        return Finding(name="isolated CPUs", status=UNKNOWN, seen=f"isolated CPUs unknown; this process may run on "
                       f"CPUs {allowed_text}", why=why, what_to_do="nothing to change here", values=values)
    if not isolated:
        return Finding(name="isolated CPUs", status=OK, why=why, values=values,
                       seen=f"none isolated; this process may run on CPUs {allowed_text}",
                       what_to_do="optional, for the quietest runs: boot with isolcpus=<cpus> nohz_full=<cpus> "
                                  "(GRUB_CMDLINE_LINUX, then update-grub and a reboot, as root) and run mnbench "
                                  "under taskset -c <cpus>")
    if allowed and allowed <= isolated:
        return Finding(name="isolated CPUs", status=OK, why=why, values=values,
                       seen=f"CPUs {format_cpu_list(isolated)} isolated; this process runs on {allowed_text}")
    return Finding(name="isolated CPUs", status=WARN, why=why, values=values,
                   seen=f"CPUs {format_cpu_list(isolated)} isolated, but this process may run on {allowed_text}",
                   what_to_do="run mnbench on the isolated CPUs, with --threads at most their count",
                   command=f"taskset -c {format_cpu_list(isolated)} mnbench run …")


def check_cgroup(host: Host) -> Finding:
    why = ("a cgroup quota lets the group use N CPUs' worth of time per period (100 ms) and then stops every thread "
           "until the next one: threads beyond the quota turn into sudden stalls of tens of milliseconds")
    allowed = host.allowed_cpus()
    quota = cgroup_cpu_quota(host)
    if quota is None:
        return Finding(name="cgroup CPU limit", status=OK, seen="no CPU quota", why=why, values={"quota_cpus": None})
    cpus, source = quota.cpus, quota.source
    seen = f"{cpus:g} CPUs ({source})" + (f" for {len(allowed)} allowed CPUs" if allowed else "")
    values = {"quota_cpus": cpus, "source": source, "allowed_cpus": len(allowed) if allowed else None}
    threads_fit = max(1, math.floor(cpus))
    if cpus < 1:
        return Finding(name="cgroup CPU limit", status=UNFIT, seen=seen, why=why, values=values,
                       what_to_do="give the container or unit at least one whole CPU (e.g. `docker update --cpus 2 "
                                  "<container>` or `sudo systemctl set-property <unit> CPUQuota=200%`)")
    if allowed and cpus < len(allowed) and quota_threads(quota) > cpus:
        # mnbench's default threads (`mnbench.host.facts.quota_threads`) round the quota up: more threads than it allows.
        return Finding(name="cgroup CPU limit", status=UNFIT, seen=seen, why=why, values=values,
                       what_to_do=f"run with --threads {threads_fit} (a whole number of CPUs within the quota), or "
                                  "raise the quota to whole CPUs",
                       command=f"mnbench run --threads {threads_fit} …")
    if allowed and cpus < len(allowed):
        return Finding(name="cgroup CPU limit", status=WARN, seen=seen, why=why, values=values,
                       what_to_do=f"keep --threads at most {threads_fit} (mnbench's default does): runtimes that size "
                                  "their thread pools by the CPU count would be throttled")
    return Finding(name="cgroup CPU limit", status=OK, seen=seen, why=why, values=values)
