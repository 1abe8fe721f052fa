"""What a torch session ran on, read back from PyTorch (and nvidia-smi for the clocks, when it is there).

Every query is best effort: a value PyTorch or the driver does not tell is None, never a guess.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import torch

_SMI_TIMEOUT_S = 2.0
# nvidia-smi --query-gpu fields: the clocks and limits that decide a GPU's speed while we measure.
SMI_FIELDS = ("name", "driver_version", "clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem",
              "power.limit", "pstate", "temperature.gpu")


def tf32_state() -> dict[str, Any]:
    """Whether fp32 matmuls and convolutions may run on TF32 tensor cores, as PyTorch reports it now."""
    matmul = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
    conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
    if matmul is not None and conv is not None:  # torch >= 2.9: the precision API ("ieee", "tf32", "none")
        return {"matmul_fp32_precision": matmul, "conv_fp32_precision": conv,
                "tf32": conv == "tf32" or matmul == "tf32"}
    return {"matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)}


def set_tf32(enabled: bool) -> None:
    """TF32 on or off for both fp32 matmuls and cuDNN convolutions (process-wide in PyTorch)."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv"):
        value = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def cuda_info(index: int) -> dict[str, Any]:
    """The GPU at `index`: name, compute capability, memory, CUDA/cuDNN/driver versions, clocks if readable."""
    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "")
    info = {
        "gpu_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "multiprocessors": getattr(props, "multi_processor_count", None),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "gpu_uuid": uuid or None,
        "cuda_version": torch.version.cuda,  # the CUDA toolkit this torch was built with
        "hip_version": getattr(torch.version, "hip", None),
        "cudnn_version": _cudnn_version(),
        "cuda_driver_api_version": _driver_api_version(),
    }
    smi = nvidia_smi_query(f"GPU-{uuid}" if uuid and not uuid.startswith("GPU-") else uuid or str(index))
    info["driver_version"] = smi.pop("driver_version", None) if smi else None
    info["nvidia_smi"] = smi
    return info


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:  # a cuDNN that fails to load says so here; the session's first inference would fail too
        return None


def _driver_api_version() -> int | None:
    """The CUDA driver API version (e.g. 13000), which bounds the CUDA runtime the driver can run."""
    query = getattr(torch._C, "_cuda_getDriverVersion", None)
    try:
        return int(query()) if query is not None else None
    except Exception:
        return None


def nvidia_smi_query(gpu: str) -> dict[str, str] | None:
    """SMI_FIELDS of one GPU (by UUID or index) from nvidia-smi, or None where it is missing or fails."""
    if not shutil.which("nvidia-smi"):
        return None
    command = ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader", "-i", gpu]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines() if done.returncode == 0 else []
    if not lines:
        return None
    values = [v.strip() for v in lines[0].split(",")]
    if len(values) != len(SMI_FIELDS):
        return None
    return {field: value for field, value in zip(SMI_FIELDS, values) if value and "N/A" not in value}
