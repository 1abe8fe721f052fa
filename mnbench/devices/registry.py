"""Which devices this machine can benchmark on, and why the others are not available.

A device is a runtime plus where it runs:
  cpu          ONNX Runtime, CPUExecutionProvider
  cuda         ONNX Runtime, CUDAExecutionProvider      (the onnxruntime-gpu build)
  tensorrt     ONNX Runtime, TensorrtExecutionProvider  (the onnxruntime-gpu build, plus TensorRT)
  openvino     native OpenVINO runtime on its CPU device
  openvino:GPU native OpenVINO on another device it reports (GPU, GPU.1, NPU, ...)
  openvino-ep  ONNX Runtime, OpenVINOExecutionProvider  (the onnxruntime-openvino build, or the plugin)
  torch        PyTorch on the CPU, mnbench's own nn.Module for the exported config
  torch:cuda   PyTorch on GPU 0 (torch:cuda:N for GPU N), a CUDA or ROCm build of torch

Discovery imports the runtimes lazily and caches its answers for the life of the process.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnbench.devices.openvino_ep import openvino_ep_status, plugin_device_names
from mnbench.devices.torch_discovery import torch_device_names, torch_device_status
from mnbench.errors import MnbenchError, exception_text
from mnbench.host.facts import physical_cores

ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
TORCH = "torch"  # `torch`, `torch:cuda[:N]`: PyTorch running mnbench's own modules (mnbench.devices.torch_discovery)

# The ONNX Runtime builds that provide the `onnxruntime` module; only one may be installed at a time.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                     "onnxruntime-qnn", "onnxruntime-training")

# device name -> (runtime, ORT provider or OpenVINO device, the build that brings it)
_FIXED_DEVICES: dict[str, tuple[str, str, str]] = {
    "cpu": (ONNXRUNTIME, "CPUExecutionProvider", "onnxruntime"),
    "cuda": (ONNXRUNTIME, "CUDAExecutionProvider", "onnxruntime-gpu"),
    "tensorrt": (ONNXRUNTIME, "TensorrtExecutionProvider", "onnxruntime-gpu"),
    "openvino": (OPENVINO, "CPU", "openvino"),
    "openvino-ep": (ONNXRUNTIME, "OpenVINOExecutionProvider", "onnxruntime-openvino"),
}
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    name: str
    runtime: str  # "onnxruntime" | "openvino"
    available: bool
    reason: str = ""  # empty when available; otherwise what is missing, in words a user can act on
    target: str = ""  # the ORT execution provider, or the OpenVINO device name ("CPU", "GPU.0", ...)

    @property
    def is_gpu_provider(self) -> bool:
        return self.target in _GPU_PROVIDERS

    @property
    def on_accelerator(self) -> bool:
        """Whether models run in an accelerator's own memory: an ORT GPU provider, a torch CUDA device or an
        OpenVINO GPU/NPU (the host process's resident memory does not hold them)."""
        return (self.is_gpu_provider or self.target.startswith("cuda")
                or self.target.split(".")[0] in ("GPU", "NPU"))


# ---------------------------------------------------------------------------------------------------------------
# Optional runtimes


def import_optional(module: str) -> Any | None:
    """The module, or None when it (or a library it needs) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def ort_build() -> str | None:
    """Which ONNX Runtime distribution is installed (`onnxruntime`, `onnxruntime-gpu`, ...), None if none is."""
    found = []
    for dist in ORT_DISTRIBUTIONS:
        try:
            importlib.metadata.version(dist)
            found.append(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    # Two builds side by side share one `onnxruntime` folder and break each other; say so rather than pick one.
    return "+".join(found) if found else None


def ort_providers() -> list[str] | None:
    ort = import_optional("onnxruntime")
    if ort is None:
        return None
    return list(ort.get_available_providers())


@functools.lru_cache(maxsize=1)
def openvino_core() -> Any | None:
    """One shared `openvino.Core` per process (creating one loads every plugin), or None without OpenVINO."""
    ov = import_optional("openvino")
    if ov is None:
        return None
    return ov.Core()


def openvino_devices() -> list[str]:
    core = openvino_core()
    if core is None:
        return []
    try:
        return list(core.available_devices)
    except RuntimeError:
        return []


# ---------------------------------------------------------------------------------------------------------------
# Registry


def known_device_names() -> list[str]:
    """Every device name mnbench knows here, available or not: the fixed ones plus `openvino:<dev>` per extra device."""
    extra = [f"openvino:{dev}" for dev in openvino_devices() if dev != "CPU"]
    ep_extra = plugin_device_names(build_present="OpenVINOExecutionProvider" in (ort_providers() or []))
    return ["cpu", "cuda", "tensorrt", "openvino", *extra, "openvino-ep", *ep_extra, *torch_device_names()]


def list_devices(*, refresh: bool = False) -> list[DeviceInfo]:
    """All known devices with availability and, when unavailable, the reason. Cached per process."""
    if refresh:
        clear_cache()
    return [device_info(name) for name in known_device_names()]


def clear_cache() -> None:
    """Forget what discovery found (after installing a runtime in-process, and in tests)."""
    device_info.cache_clear()
    openvino_core.cache_clear()


@functools.lru_cache(maxsize=None)
def device_info(name: str) -> DeviceInfo:
    """Availability of one device by name; an unknown name is a MnbenchError listing the valid ones."""
    name = name.strip()
    if name.lower() in _FIXED_DEVICES:
        name = name.lower()
    if name == "openvino:CPU":
        name = "openvino"
    if name.startswith("openvino:"):
        return _openvino_extra_device(name)
    if name.lower().startswith("openvino-ep"):  # the onnxruntime-openvino build, else its plugin library
        name, target, reason = openvino_ep_status(name, build_reason=_onnxruntime_reason(*_FIXED_DEVICES["openvino-ep"][1:]))
        return DeviceInfo(name=name, runtime=ONNXRUNTIME, available=not reason, reason=reason, target=target)
    if name.lower().startswith("torch"):
        return _torch_device(name)
    if name not in _FIXED_DEVICES:
        raise MnbenchError(f"unknown device {name!r}; valid devices: {', '.join(known_device_names())}, all")
    runtime, target, build = _FIXED_DEVICES[name]
    reason = _openvino_reason(target) if runtime == OPENVINO else _onnxruntime_reason(target, build)
    return DeviceInfo(name=name, runtime=runtime, available=not reason, reason=reason, target=target)


def _torch_device(name: str) -> DeviceInfo:
    name, target, reason = torch_device_status(name, driver_problem=nvidia_driver_problem)
    return DeviceInfo(name=name, runtime=TORCH, available=not reason, reason=reason, target=target)


def _openvino_reason(ov_device: str) -> str:
    if import_optional("openvino") is None:
        return "OpenVINO is not installed (pip install openvino)"
    devices = openvino_devices()
    if ov_device not in devices:
        return f"OpenVINO reports no {ov_device} device here (it reports: {', '.join(devices) or 'none'})"
    return ""


def _openvino_extra_device(name: str) -> DeviceInfo:
    ov_device = name.split(":", 1)[1]
    if not ov_device:
        raise MnbenchError(f"unknown device {name!r}; write openvino:<device>, e.g. openvino:GPU")
    reason = _openvino_reason(ov_device)
    return DeviceInfo(name=name, runtime=OPENVINO, available=not reason, reason=reason, target=ov_device)


def _onnxruntime_reason(provider: str, build: str) -> str:
    providers = ort_providers()
    if providers is None:
        return f"ONNX Runtime is not installed (pip install {build})"
    if provider not in providers:
        installed = ort_build() or "onnxruntime"
        if "+" in installed:
            return (f"several ONNX Runtime builds are installed over each other ({installed.replace('+', ', ')}); "
                    f"uninstall them all, then install {build} alone")
        return f"{provider} is not in this ONNX Runtime build ({installed}); install {build} in place of {installed}"
    if provider in _GPU_PROVIDERS:
        driver_problem = nvidia_driver_problem()
        if driver_problem:
            return driver_problem
        prepare_gpu_libraries()
        return _probe_provider(provider)
    return ""


def nvidia_driver_problem() -> str:
    """Empty when the NVIDIA driver's libcuda loads; otherwise what is missing."""
    library = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(library)
        return ""
    except OSError:
        smi = "found" if shutil.which("nvidia-smi") else "not found"
        return f"no NVIDIA GPU driver: {library} cannot be loaded (nvidia-smi: {smi})"


@functools.lru_cache(maxsize=1)
def prepare_gpu_libraries() -> None:
    """Load CUDA/cuDNN and TensorRT from their pip wheels into this process, so ORT's GPU providers find them
    without LD_LIBRARY_PATH. Best effort: whatever is still missing shows up when the provider is probed."""
    ort = import_optional("onnxruntime")
    try:
        if ort is not None and hasattr(ort, "preload_dlls"):  # ORT >= 1.21; a no-op on CPU builds
            ort.preload_dlls()
    except Exception:  # a broken CUDA install may raise anything here; the probe then reports it
        pass
    # The TensorRT wheels keep libnvinfer & co. in a package folder no loader searches; loaded here (global
    # symbols), ORT's TensorRT provider finds them already in the process by their soname.
    for package in ("tensorrt_libs", "tensorrt_cu13_libs", "tensorrt_cu12_libs"):
        module = import_optional(package)
        for folder in getattr(module, "__path__", []):
            for library in sorted(Path(folder).glob("libnv*.so*")):
                try:
                    ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    pass


def _probe_provider(provider: str) -> str:
    """Listed is not loadable (missing cuDNN, TensorRT, CUDA runtime): run a one-node model on it to find out."""
    ort = import_optional("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure is reported through our reason, not ORT's log lines
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        session = ort.InferenceSession(_tiny_model_bytes(), options, providers=[provider], enable_fallback=0)
        session.run(None, {"x": np.ones((1, 4), dtype=np.float32)})
    except Exception as exc:  # ORT raises several types (RuntimeError, its own Fail/EPFail); any means unusable
        if "fallback to CPU EP has been explicitly disabled" in str(exc):
            # The provider library did not load (ORT logged why) and the node went to the CPU provider instead.
            libraries = "CUDA, cuDNN and TensorRT" if provider == "TensorrtExecutionProvider" else "CUDA and cuDNN"
            return (f"{provider} failed to load; check that the {libraries} libraries this onnxruntime-gpu build "
                    "needs are installed and on LD_LIBRARY_PATH")
        return f"{provider} failed to load: {exception_text(exc, limit=300)}"
    if provider not in session.get_providers():
        return f"{provider} failed to load (ONNX Runtime fell back to {', '.join(session.get_providers())})"
    return ""


def _tiny_model_bytes() -> bytes:
    # onnx takes most of a second to import; only the GPU probe needs it, so `mnbench devices` on a CPU box skips it.
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    # An old IR / opset so any ONNX Runtime build on the GPU machine accepts it.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------------------------------
# Selecting devices


def resolve_devices(spec: str) -> list[DeviceInfo]:
    """`cpu`, `cpu,openvino`, `all` (every available device) -> DeviceInfos, in the order given.

    An unknown name lists the valid ones; a known but unavailable one says why and what is available here.
    """
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise MnbenchError(f"no device given; valid devices: {', '.join(known_device_names())}, all")
    resolved: list[DeviceInfo] = []
    for name in names:
        candidates = [d for d in list_devices() if d.available] if name == "all" else [device_info(name)]
        for device in candidates:
            if not device.available:
                here = ", ".join(d.name for d in list_devices() if d.available) or "none"
                raise MnbenchError(f"device {device.name!r} is not available: {device.reason}. Available here: {here}")
            if device not in resolved:
                resolved.append(device)
    return resolved


def resolve_device(device: DeviceInfo | str) -> DeviceInfo:
    """One available device from a DeviceInfo or a single name."""
    if isinstance(device, DeviceInfo):
        if not device.available:
            raise MnbenchError(f"device {device.name!r} is not available: {device.reason}")
        return device
    found = resolve_devices(device)
    if len(found) != 1:
        raise MnbenchError(f"expected one device, got {device!r} ({', '.join(d.name for d in found)})")
    return found[0]


# ---------------------------------------------------------------------------------------------------------------
# Threads


def default_threads() -> int:
    """Threads a session runs with unless told: the physical cores this process may use, within its cgroup's CPU
    quota (`mnbench.host.facts.physical_cores`; `mnbench doctor` judges the quota by the same reader)."""
    return physical_cores()
