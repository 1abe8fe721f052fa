"""Facts about the machine this process runs on, each read in one place, for `run` (default threads, the state of
each repetition), `doctor` and the result metadata.

- from /proc/cpuinfo: the CPU's model, vendor signature, ISA flags and core topology;
- from /sys/fs/cgroup: the CPU quota of this process's cgroup; from the kernel: the CPUs it may run on;
- through psutil: CPU time (steal included), load average, online CPUs, memory and the processes that use the CPU.

`Host` says where /proc and /sys are: the real ones by default, a fake tree in tests. psutil reads the live machine
only, so those facts are None on any other `Host`. A fact that cannot be read is None (or empty), never an error.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

# The aggregate CPU times psutil reads from /proc/stat, in its order. `guest` and `guest_nice` are already counted
# in `user` and `nice`, so they are left out.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class Host:
    """Where the machine is read: the real /proc and /sys by default, a fake tree in tests. `affinity` (the CPUs
    this process may run on) is read from the kernel when None."""

    proc_root: str | os.PathLike = "/proc"
    sys_root: str | os.PathLike = "/sys"
    affinity: frozenset[int] | None = None

    @property
    def live(self) -> bool:
        """Whether this is the machine itself (what psutil, lscpu and the kernel's affinity describe)."""
        return os.fspath(self.proc_root) == "/proc" and os.fspath(self.sys_root) == "/sys"

    def read_proc(self, relative: str) -> str | None:
        return _read(Path(self.proc_root) / relative)

    def read_sys(self, relative: str) -> str | None:
        return _read(Path(self.sys_root) / relative)

    def sys_path(self, relative: str) -> Path:
        return Path(self.sys_root) / relative

    def allowed_cpus(self) -> frozenset[int] | None:
        if self.affinity is not None:
            return self.affinity
        try:
            return frozenset(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            return None


LIVE = Host()


def _read(path: Path) -> str | None:
    """The file's text, stripped; None when it is missing or unreadable (what only root may read is unknown)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# The CPU: /proc/cpuinfo


def cpuinfo_blocks(host: Host = LIVE) -> list[dict[str, str]]:
    """One dict of fields per processor of /proc/cpuinfo; empty where it cannot be read."""
    blocks = []
    for text in (host.read_proc("cpuinfo") or "").split("\n\n"):
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def cpuinfo(host: Host = LIVE) -> dict[str, str]:
    """The first processor's fields (all cores of one machine report the same model and flags)."""
    blocks = cpuinfo_blocks(host)
    return blocks[0] if blocks else {}


def cpu_model(fields: dict[str, str]) -> str | None:
    """`model name` (x86, 32-bit ARM), `Processor` (older ARM kernels); None where neither is given."""
    return fields.get("model name") or fields.get("Processor") or None


def cpu_signature(fields: dict[str, str]) -> str | None:
    """Vendor family/model/stepping ("GenuineIntel 6/143/8"): tells CPU generations apart where VMs report a
    generic model name. None where /proc/cpuinfo has no family (non-x86)."""
    if "cpu family" not in fields:
        return None
    vendor = fields.get("vendor_id", "")
    return f"{vendor} {fields['cpu family']}/{fields.get('model', '?')}/{fields.get('stepping', '?')}".strip()


def cpu_flags(fields: dict[str, str]) -> set[str]:
    """The ISA flags as /proc/cpuinfo spells them (`flags` on x86, `Features` on ARM)."""
    return set((fields.get("flags") or fields.get("Features") or "").split())


def core_topology(host: Host = LIVE) -> dict[int, tuple[str, str]]:
    """logical CPU -> (socket, core id), from /proc/cpuinfo, else (on the live machine) from lscpu; empty where
    neither says (some VMs and non-x86 kernels give no core ids)."""
    topology: dict[int, tuple[str, str]] = {}
    for fields in cpuinfo_blocks(host):
        if "processor" in fields and "core id" in fields and fields["processor"].isdigit():
            topology[int(fields["processor"])] = (fields.get("physical id", "0"), fields["core id"])
    return topology or (_core_topology_from_lscpu() if host.live else {})


def _core_topology_from_lscpu() -> dict[int, tuple[str, str]]:
    if not shutil.which("lscpu"):
        return {}
    try:
        out = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET"], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    topology = {}
    for line in out.splitlines():
        match = re.fullmatch(r"(\d+),(\d*),(\d*)", line.strip())
        if match and match.group(2):
            topology[int(match.group(1))] = (match.group(3) or "0", match.group(2))
    return topology


# ---------------------------------------------------------------------------------------------------------------
# CPUs this process may use: affinity, cgroup quota, physical cores


@dataclass(frozen=True)
class CpuQuota:
    cpus: float  # CPUs' worth of time per period, e.g. 1.5
    source: str  # the file it came from, e.g. /sys/fs/cgroup/user.slice/cpu.max


def cgroup_cpu_quota(host: Host = LIVE) -> CpuQuota | None:
    """The tightest CPU quota over this process's cgroup and its parents (v2 `cpu.max`), and the v1
    `cpu.cfs_quota_us` / `cpu.cfs_period_us`; None when unlimited or unreadable."""
    found: list[tuple[float, str]] = []
    for relative in _cgroup_v2_dirs(host):
        parts = (host.read_sys(f"{relative}/cpu.max") or "").split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]) > 0:
            found.append((int(parts[0]) / int(parts[1]), f"/sys/{relative}/cpu.max"))
    for v1 in ("fs/cgroup/cpu", "fs/cgroup/cpu,cpuacct"):
        quota, period = host.read_sys(f"{v1}/cpu.cfs_quota_us"), host.read_sys(f"{v1}/cpu.cfs_period_us")
        if quota and period and quota.isdigit() and period.isdigit() and int(period) > 0:
            found.append((int(quota) / int(period), f"/sys/{v1}/cpu.cfs_quota_us"))
    return CpuQuota(*min(found)) if found else None


def _cgroup_v2_dirs(host: Host) -> list[str]:
    """fs/cgroup/<own path>, then each parent up to fs/cgroup (a nested group is bounded by its parents too)."""
    own = ""
    for line in (host.read_proc("self/cgroup") or "").splitlines():
        if line.startswith("0::"):
            own = line[3:].strip().strip("/")
    parts = [p for p in own.split("/") if p and p != ".."]
    dirs = ["fs/cgroup/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return [d.rstrip("/") for d in dirs] + ["fs/cgroup"]


def available_cpus() -> int | None:
    """CPUs this process may run on (its affinity), else the CPUs the kernel has online."""
    allowed = LIVE.allowed_cpus()
    return len(allowed) if allowed else logical_cpus()


def quota_threads(quota: CpuQuota) -> int:
    """The most threads the default runs under `quota`: the quota rounded up, at least 1 (so a 1.5-CPU quota gives
    2 threads, which the quota throttles: `mnbench doctor` says so)."""
    return max(1, math.ceil(quota.cpus))


def physical_cores(host: Host = LIVE) -> int:
    """Physical cores this process may run on (hyper-threads are not extra cores for inference), capped by its
    cgroup's CPU quota: a `--cpus=2` container on a 64-core host must not default to 64 threads."""
    allowed = host.allowed_cpus() or frozenset(range(os.cpu_count() or 1))
    topology = core_topology(host)
    cores = {topology[cpu] for cpu in allowed if cpu in topology}
    count = len(cores) if cores else len(allowed)
    quota = cgroup_cpu_quota(host)
    return max(1, min(count, quota_threads(quota)) if quota else count)


# ---------------------------------------------------------------------------------------------------------------
# What the live machine is doing (psutil)


def cpu_times() -> dict[str, float] | None:
    """The machine's aggregate CPU time so far, seconds per CPU_FIELDS (a field the kernel does not report is 0)."""
    try:
        times = psutil.cpu_times()
    except (OSError, psutil.Error):
        return None
    return {name: float(getattr(times, name, 0.0)) for name in CPU_FIELDS}


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages."""
    try:
        return [round(float(v), 2) for v in psutil.getloadavg()]  # as /proc/loadavg writes them
    except (OSError, AttributeError, psutil.Error):
        return None


def logical_cpus() -> int | None:
    """Logical CPUs the kernel has online (hyper-threads counted), whether this process may use them or not."""
    return psutil.cpu_count(logical=True)


def memory(host: Host = LIVE) -> dict[str, int] | None:
    """{"total", "available"} in bytes (available: what can be given to a process without swapping); None on a
    host other than the live one."""
    if not host.live:
        return None
    try:
        vm = psutil.virtual_memory()
    except (OSError, psutil.Error):
        return None
    return {"total": int(vm.total), "available": int(vm.available)}


def busiest_processes(n: int = 5, interval_s: float = 0.5, *, exclude_pids: set[int] | None = None,
                      sleep: Callable[[float], object] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> list[dict[str, Any]]:
    """The `n` processes that used the most CPU over `interval_s`, our own process excluded: [{"pid", "comm",
    "cpu_share"}], busiest first, where `cpu_share` is in CPUs (1.0 = one CPU busy the whole interval; a
    multi-threaded process can exceed 1). Processes that used no CPU, or started during the interval, are left
    out."""
    excluded = {os.getpid()} | (exclude_pids or set())
    start, start_s = _process_cpu_seconds(excluded), clock()
    sleep(interval_s)
    end, end_s = _process_cpu_seconds(excluded), clock()
    elapsed_s = end_s - start_s if end_s > start_s else interval_s
    if elapsed_s <= 0:
        return []
    used = []
    for pid, (started, comm, seconds) in end.items():
        before = start.get(pid)
        if before is None or before[0] != started:  # started during the interval, or the pid was reused
            continue
        share = (seconds - before[2]) / elapsed_s
        if share > 0:
            used.append({"pid": pid, "comm": comm, "cpu_share": round(share, 3)})
    used.sort(key=lambda p: (-p["cpu_share"], p["pid"]))
    return used[:n]


def _process_cpu_seconds(excluded: set[int]) -> dict[int, tuple[float, str, float]]:
    """pid -> (start time, name, user + system CPU seconds) of every process whose figures can be read."""
    out = {}
    try:
        processes = list(psutil.process_iter(["name", "create_time", "cpu_times"]))
    except (OSError, psutil.Error):
        return {}
    for process in processes:
        info = process.info
        if process.pid in excluded or info.get("create_time") is None or info.get("cpu_times") is None:
            continue  # ours, or not readable (psutil leaves None where access is denied)
        times = info["cpu_times"]
        out[process.pid] = (info["create_time"], info.get("name") or "", times.user + times.system)
    return out
