"""What machine a result came from: CPU and its ISA flags, memory, OS, runtime versions, GPUs, project commit.

`machine_info()` never fails: anything it cannot find is None. It reads package versions from their metadata
(no heavy imports) and gives each external command a short timeout, so it stays well under two seconds.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
from typing import Any

from mnbench import __version__
from mnbench.devices import import_optional, openvino_core, ort_build, ort_providers, physical_cores

# ISA extensions that decide which kernels the runtimes pick (and so the latencies): /proc/cpuinfo flag names.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
             "avx_vnni")
_PACKAGES = ("torch", "onnx", "onnxscript", "openvino", "numpy")
_COMMAND_TIMEOUT_S = 1.5


def machine_info() -> dict[str, Any]:
    cpuinfo = _read_cpuinfo()
    flags = set(cpuinfo.get("flags", cpuinfo.get("Features", "")).split())
    ort_dist = ort_build()
    versions = {"mnbench": __version__, **{name: _version(name) for name in _PACKAGES},
                "onnxruntime": _version(ort_dist.split("+")[0]) if ort_dist else None}
    return {
        "hostname": socket.gethostname(),
        "os": _os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpuinfo.get("model name") or platform.processor() or None,
        # Vendor family/model/stepping tells CPU generations apart where VMs report a generic model name.
        "cpu_signature": _cpu_signature(cpuinfo),
        "cpu_flags": {flag: flag in flags for flag in ISA_FLAGS} if flags else None,
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "available_cpus": _available_cpus(),
        "memory_gib": _memory_gib(),
        "versions": versions,
        "onnxruntime_build": ort_dist,
        "onnxruntime_providers": _safely(ort_providers),
        "openvino": _safely(_openvino_info),
        "gpus": _nvidia_gpus(),
        "git_commit": _git_commit(),
    }


def cpu_flags() -> set[str]:
    """This CPU's ISA flags as /proc/cpuinfo spells them (empty where it cannot be read)."""
    cpuinfo = _read_cpuinfo()
    return set(cpuinfo.get("flags", cpuinfo.get("Features", "")).split())


def machine_fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    """The fields that must match for two machines' latencies to be comparable against one baseline."""
    versions = info.get("versions") or {}
    return {
        "cpu_model": info.get("cpu_model"),
        "cpu_signature": info.get("cpu_signature"),
        "cpu_flags": sorted(flag for flag, present in (info.get("cpu_flags") or {}).items() if present),
        "onnxruntime": versions.get("onnxruntime"),
        "onnxruntime_build": info.get("onnxruntime_build"),
        "openvino": versions.get("openvino"),
        "gpus": sorted(gpu.get("name", "") for gpu in info.get("gpus") or []),
    }


def _safely(probe):
    try:
        return probe()
    except Exception:  # a half-installed runtime may raise anything on import or query; the answer is "unknown"
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields (all cores of one machine report the same model and flags)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first_block = f.read().split("\n\n", 1)[0]
    except OSError:
        return {}
    fields = {}
    for line in first_block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _cpu_signature(cpuinfo: dict[str, str]) -> str | None:
    if "cpu family" not in cpuinfo:
        return None
    vendor = cpuinfo.get("vendor_id", "")
    return f"{vendor} {cpuinfo['cpu family']}/{cpuinfo.get('model', '?')}/{cpuinfo.get('stepping', '?')}".strip()


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return release.get("PRETTY_NAME") or release.get("NAME") or platform.system()
    except (OSError, AttributeError):
        return f"{platform.system()} {platform.version()}".strip()


def _available_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _openvino_info() -> dict[str, Any] | None:
    if import_optional("openvino") is None:
        return None
    core = openvino_core()
    devices = list(core.available_devices)
    cpu = {}
    if "CPU" in devices:
        cpu = {
            "full_device_name": core.get_property("CPU", "FULL_DEVICE_NAME"),
            "optimization_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
        }
    return {"devices": devices, "cpu": cpu or None}


def _run(command: list[str]) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if not shutil.which(command[0]):
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _nvidia_gpus() -> list[dict[str, str]] | None:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if not out:
        return None
    gpus = []
    for line in out.splitlines():
        name, _, driver = line.rpartition(",")
        gpus.append({"name": name.strip(), "driver": driver.strip()})
    return gpus


def _git_commit() -> str | None:
    return _run(["git", "rev-parse", "HEAD"]) or None
