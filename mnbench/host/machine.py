"""What machine a result came from: CPU and its ISA flags, memory, OS, runtime versions, GPUs, project commit.

`machine_info()` never fails: anything it cannot find is None. It reads package versions from their metadata
(no heavy imports) and gives each external command a short timeout, so it stays well under two seconds.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import socket
import subprocess
from typing import Any

from mnbench import __version__
from mnbench.host import facts as host
from mnbench.devices.registry import import_optional, openvino_core, ort_build, ort_providers

# ISA extensions that decide which kernels the runtimes pick (and so the latencies): /proc/cpuinfo flag names.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
             "avx_vnni")
_PACKAGES = ("torch", "onnx", "onnxscript", "openvino", "numpy")
_COMMAND_TIMEOUT_S = 1.5


def machine_info() -> dict[str, Any]:
    cpuinfo = host.cpuinfo()
    flags = host.cpu_flags(cpuinfo)
    memory = host.memory()
    ort_dist = ort_build()
    versions = {"mnbench": __version__, **{name: _version(name) for name in _PACKAGES},
                "onnxruntime": _version(ort_dist.split("+")[0]) if ort_dist else None}
    return {
        "hostname": socket.gethostname(),
        "os": _os_name(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(cpuinfo),
        "cpu_signature": host.cpu_signature(cpuinfo),
        "cpu_flags": {flag: flag in flags for flag in ISA_FLAGS} if flags else None,
        "physical_cores": host.physical_cores(),
        "logical_cpus": host.logical_cpus(),
        "available_cpus": host.available_cpus(),
        "memory_gib": round(memory["total"] / 2**30, 1) if memory else None,
        "versions": versions,
        "onnxruntime_build": ort_dist,
        "onnxruntime_providers": _safely(ort_providers),
        "openvino": _safely(_openvino_info),
        "gpus": _nvidia_gpus(),
        "git_commit": _git_commit(),
    }


def cpu_model(cpuinfo: dict[str, str] | None = None) -> str | None:
    """The CPU's model as result files name it (and the host history keys it): /proc/cpuinfo's, else Python's."""
    return host.cpu_model(host.cpuinfo() if cpuinfo is None else cpuinfo) or platform.processor() or None


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


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return release.get("PRETTY_NAME") or release.get("NAME") or platform.system()
    except (OSError, AttributeError):
        return f"{platform.system()} {platform.version()}".strip()


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
