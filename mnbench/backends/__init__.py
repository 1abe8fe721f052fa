"""One interface over every runtime: open a session on a device, call `infer()` in a timed loop, read `info`.

    with open_session("openvino", "models/v2-separable-w1-r224-b1.onnx", batch=1, precision="fp32") as session:
        session.infer()            # one inference on inputs and outputs bound once, nothing else
        session.info               # what actually ran: runtime, version, precision and threads read back, ...

Inputs are made once (fixed seed, float32, the model's input shape with the batch filled in) and bound once,
so the timed call does no allocation, conversion or host/device copy of our own.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mnbench.config import PRECISIONS, check_choice
from mnbench.devices import ONNXRUNTIME, DeviceInfo, default_threads, resolve_device
from mnbench.errors import MnbenchError

INPUT_SEED = 0


class BenchSession(abc.ABC):
    """A compiled model with its inputs and outputs bound; `infer()` is the only thing a benchmark times."""

    info: dict[str, Any]
    inputs: dict[str, np.ndarray]  # the host arrays that were bound (for checking outputs, never re-bound)

    @abc.abstractmethod
    def infer(self) -> None:
        """One inference on the bound inputs into the bound outputs."""

    @abc.abstractmethod
    def output(self, index: int = 0) -> np.ndarray:
        """A host copy of output `index` from the last `infer()`; for checks, never inside a timed loop."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the runtime's session and buffers; safe to call twice."""

    def __enter__(self) -> "BenchSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_session(
    device: DeviceInfo | str,
    model_path: str | os.PathLike,
    *,
    batch: int,
    precision: str = "fp32",
    threads: int | None = None,
    models_dir: str | os.PathLike | None = None,
    pin_settings: bool = False,
) -> BenchSession:
    """Compile `model_path` for `device` and bind inputs/outputs. Unsupported combinations are a MnbenchError.

    `pin_settings`: use the runtime settings frozen for the machine-speed reference (see `mnbench.reference`)
    instead of the benchmark's, so a change to the benchmark's settings never moves the reference."""
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

    if device.runtime == ONNXRUNTIME:
        from mnbench.backends.onnxruntime_backend import OnnxRuntimeSession

        return OnnxRuntimeSession(device, model_path, batch=batch, precision=precision, threads=threads,
                                  models_dir=models_dir, pin_settings=pin_settings)
    from mnbench.backends.openvino_backend import OpenVinoSession

    return OpenVinoSession(device, model_path, batch=batch, precision=precision, threads=threads,
                           pin_settings=pin_settings)


def concrete_shape(name: str, dims: Sequence[int | str | None], batch: int, *,
                   what: str = "model input") -> list[int]:
    """The shape to bind: a dynamic first dimension becomes `batch`; a static one must equal it."""
    if not dims:
        raise MnbenchError(f"{what} {name!r} has no shape")
    first, rest = dims[0], list(dims[1:])
    if isinstance(first, int) and first > 0 and first != batch:
        raise MnbenchError(f"{what} {name!r} was exported with batch {first}, but batch {batch} was asked; "
                           f"export it with --batch {batch} or a dynamic batch")
    if any(not isinstance(d, int) or d <= 0 for d in rest):
        raise MnbenchError(f"{what} {name!r} has dynamic dimensions besides the batch: {list(dims)}; "
                           "export it with a fixed resolution")
    return [batch, *rest]


def make_input(shape: Sequence[int], index: int = 0) -> np.ndarray:
    """Deterministic float32 input: the same numbers for every runtime, device and run."""
    rng = np.random.default_rng(INPUT_SEED + index)
    return np.ascontiguousarray(rng.standard_normal(tuple(shape), dtype=np.float32))
