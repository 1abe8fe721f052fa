"""Which PyTorch devices this machine has: `torch` (its CPU) and `torch:cuda`, `torch:cuda:1`, ... (its GPUs).

`mnbench.devices.registry` asks here and builds the DeviceInfo; nothing here imports the rest of mnbench but its errors.
torch is imported on the first question only.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from mnbench.errors import MnbenchError

TORCH = "torch"
CPU_NAMES = ("torch", "torch:cpu")


def torch_module() -> Any | None:
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def cuda_device_count(torch: Any | None = None) -> int:
    """GPUs this PyTorch build can use (CUDA or ROCm), 0 on a CPU build or without a driver."""
    torch = torch or torch_module()
    if torch is None or not _has_gpu_build(torch):
        return 0
    try:
        return int(torch.cuda.device_count())
    except Exception:  # a broken driver may raise anything here; then no GPU is usable
        return 0


def torch_device_names() -> list[str]:
    """`torch`, `torch:cuda`, and `torch:cuda:N` for each further GPU PyTorch sees."""
    return ["torch", "torch:cuda", *(f"torch:cuda:{i}" for i in range(1, cuda_device_count()))]


def canonical_name(name: str) -> tuple[str, int | None]:
    """(device name, CUDA index or None for the CPU): `torch:cuda:0` is `torch:cuda`, `torch:cpu` is `torch`."""
    lowered = name.strip().lower()
    if lowered in CPU_NAMES:
        return "torch", None
    if lowered == "torch:cuda":
        return "torch:cuda", 0
    prefix, _, index = lowered.rpartition(":")
    if prefix == "torch:cuda" and index.isdigit():
        return ("torch:cuda" if int(index) == 0 else f"torch:cuda:{int(index)}"), int(index)
    raise MnbenchError(f"unknown device {name!r}; the PyTorch devices are torch, torch:cuda and torch:cuda:<N>")


def torch_device_status(name: str, *, driver_problem: Callable[[], str]) -> tuple[str, str, str]:
    """(canonical name, torch device string, reason it is not available or "") for a `torch...` device name.

    `driver_problem` says what is wrong with the NVIDIA driver, if anything (mnbench.devices.registry knows how to look)."""
    canonical, index = canonical_name(name)
    target = "cpu" if index is None else f"cuda:{index}"
    torch = torch_module()
    if torch is None:
        return canonical, target, "PyTorch is not installed (pip install torch)"
    if index is None:
        return canonical, target, ""
    return canonical, target, _cuda_reason(torch, index, driver_problem)


def _has_gpu_build(torch: Any) -> bool:
    version = getattr(torch, "version", None)
    return bool(getattr(version, "cuda", None) or getattr(version, "hip", None))


def _cuda_reason(torch: Any, index: int, driver_problem: Callable[[], str]) -> str:
    if not _has_gpu_build(torch):
        return (f"this PyTorch build has no CUDA (torch {torch.__version__}); install a CUDA build of torch "
                "(https://pytorch.org/get-started/locally/)")
    built_for = f"CUDA {torch.version.cuda}" if torch.version.cuda else f"ROCm {torch.version.hip}"
    count = cuda_device_count(torch)
    if count == 0:
        problem = (driver_problem() if torch.version.cuda else "") or "torch.cuda.is_available() is False"
        return f"PyTorch (built for {built_for}) sees no GPU: {problem}"
    if index >= count:
        names = ", ".join(["torch:cuda", *(f"torch:cuda:{i}" for i in range(1, count))])
        return f"PyTorch sees {count} GPU{'s' if count > 1 else ''} ({names}); there is no cuda:{index}"
    return ""
