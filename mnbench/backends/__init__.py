"""One interface over every runtime: open a session on a device, call `infer()` in a timed loop, read `info`.

    with open_session("openvino", "models/v2-separable-w1-r224-b1.onnx", batch=1, precision="fp32") as session:
        session.infer()            # one inference on inputs and outputs bound once, nothing else
        session.info               # what actually ran: runtime, version, precision and threads read back, ...

Every call into onnxruntime or openvino lives in this package (device discovery probes in `mnbench.devices.registry`).
The interface and the input helpers are in `base`; what a profiled session reports is in `kernels`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from mnbench.backends.base import BenchSession, concrete_shape, make_input
from mnbench.graph.kernels import ConvGeometry, KernelProfile, KernelTime
from mnbench.config import PRECISIONS, check_choice
from mnbench.devices.registry import ONNXRUNTIME, OPENVINO, TORCH, DeviceInfo, default_threads, resolve_device
from mnbench.errors import MnbenchError

__all__ = ["BenchSession", "ConvGeometry", "KernelProfile", "KernelTime", "concrete_shape", "make_input",
           "open_session"]


def open_session(
    device: DeviceInfo | str,
    model_path: str | os.PathLike,
    *,
    batch: int,
    precision: str = "fp32",
    threads: int | None = None,
    models_dir: str | os.PathLike | None = None,
    pin_settings: bool = False,
    profile: bool = False,
    options: Mapping[str, Any] | None = None,
) -> BenchSession:
    """Compile `model_path` for `device` and bind inputs/outputs. Unsupported combinations are a MnbenchError.

    `pin_settings`: use the runtime settings frozen for the machine-speed reference (see `mnbench.measure.reference`)
    instead of the benchmark's, so a change to the benchmark's settings never moves the reference.
    `profile`: the same session with the runtime's profiler on, for `kernel_profile()`; never for timed runs.
    `options`: the torch devices' per-session settings (`cuda_graph`, `channels_last`); refused for other
    devices, whose runtimes have no such switch here."""
    device = resolve_device(device)
    check_choice("precision", precision, PRECISIONS)
    if batch <= 0:
        raise MnbenchError(f"batch must be a positive integer, got {batch}")
    if threads is None:
        threads = default_threads()
    if threads <= 0:
        raise MnbenchError(f"threads must be a positive integer, got {threads}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise MnbenchError(f"model file not found: {model_path} (run `mnbench export` first)")

    # Each runtime is imported when a session on it opens: a `cpu` run never loads OpenVINO's plugins, and an
    # `openvino` run works even where a swapped ONNX Runtime build is broken.
    options = dict(options or {})
    streams = int(options.pop("streams", 1))  # OpenVINO's throughput mode; every other runtime runs one request
    if streams != 1 and device.runtime != OPENVINO:
        raise MnbenchError(f"streams apply to the openvino device only, not to {device.name}")
    if options and device.runtime != TORCH:
        raise MnbenchError(f"{', '.join(sorted(options))} apply to the torch devices only, not to {device.name}")
    if device.runtime == TORCH:
        from mnbench.backends.torch_backend import TorchSession

        return TorchSession(device, model_path, batch=batch, precision=precision, threads=threads,
                            options=options, pin_settings=pin_settings, profile=profile)
    if device.runtime == ONNXRUNTIME:
        from mnbench.backends.onnxruntime_backend import OnnxRuntimeSession

        return OnnxRuntimeSession(device, model_path, batch=batch, precision=precision, threads=threads,
                                  models_dir=models_dir, pin_settings=pin_settings, profile=profile)
    from mnbench.backends.openvino_backend import OpenVinoSession

    return OpenVinoSession(device, model_path, batch=batch, precision=precision, threads=threads,
                           pin_settings=pin_settings, profile=profile, streams=streams)
