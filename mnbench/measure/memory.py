"""The memory a model's session needs on its device, measured: the process's peak resident set while the session is
opened (compiled) and run, above what the process held just before.

Each model is measured in a fresh process (started with `spawn`), after its runtime is imported and before anything
else is allocated, so the figure is the session's own: its weights as the runtime lays them out, its arena, its
activations and its kernels' scratch buffers. On Linux the kernel's high-water mark (VmHWM) is reset through
/proc/self/clear_refs just before the session opens and read after a few inferences; where that cannot be done, a
thread samples the resident set every millisecond instead (it can miss a peak shorter than that). The method that
ran is recorded with the figure.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import psutil

from mnbench.errors import MnbenchError

INFERENCES = 3
# What the runtime's module is called, per runtime name of `mnbench.devices.registry`.
RUNTIME_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "torch": "torch"}
# How the peak was read (docs/result-schema.md): the kernel's high-water mark, reset before the session opened, or
# the resident set sampled every millisecond; either minus the resident set just before the session opened.
HWM_METHOD = "vmhwm-reset"
SAMPLED_METHOD = "rss-sampled-1ms"


def measure_peak_memory(device, model_path: str | Path, *, batch: int, precision: str, threads: int | None,
                        options: dict[str, Any] | None = None, models_dir: Path | None = None,
                        timeout_s: float = 300.0) -> dict[str, Any]:
    """{"peak_bytes", "method"} of one model's session on `device`, measured in a fresh process."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result = pool.apply_async(_measure_here, (device, str(model_path)),
                                  {"batch": batch, "precision": precision, "threads": threads,
                                   "options": options or {}, "models_dir": models_dir})
        try:
            return result.get(timeout=timeout_s)
        except multiprocessing.TimeoutError:
            raise MnbenchError(f"measuring the memory of {model_path} on {device.name} took over "
                               f"{timeout_s:.0f} s") from None


def _measure_here(device, model_path: str, *, batch: int, precision: str, threads: int | None,
                  options: dict[str, Any], models_dir: Path | None) -> dict[str, Any]:
    from mnbench.backends import open_session

    module = RUNTIME_MODULES.get(device.runtime)
    if module:
        importlib.import_module(module)  # the runtime's own import is not the model's memory
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    with _PeakWatch(process) as watch:
        with open_session(device, model_path, batch=batch, precision=precision, threads=threads,
                          models_dir=models_dir, options=options) as session:
            for _ in range(INFERENCES):
                session.infer()
            peak = watch.peak()
    return {"peak_bytes": max(0, peak - before), "method": watch.method}


class _PeakWatch:
    """The process's peak resident set from now on: the kernel's reset high-water mark, else a sampling thread."""

    def __init__(self, process: psutil.Process) -> None:
        self.process, self.method = process, HWM_METHOD
        self._sampled, self._stop, self._thread = 0, threading.Event(), None

    def __enter__(self) -> _PeakWatch:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set (Linux >= 4.0)
        except OSError:
            self.method = SAMPLED_METHOD
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._sampled = max(self._sampled, self.process.memory_info().rss)

    def peak(self) -> int:
        if self.method == HWM_METHOD:
            return _vm_hwm_bytes()
        return max(self._sampled, self.process.memory_info().rss)


def _vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise MnbenchError("/proc/self/status has no VmHWM line")
