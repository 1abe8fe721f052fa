"""The session interface every backend implements, and the inputs every backend binds.

Inputs are made once (fixed seed, float32, the model's input shape with the batch filled in) and bound once,
so the timed call does no allocation, conversion or host/device copy of our own.
"""

from __future__ import annotations

import abc
import functools
import os
from typing import Any, Sequence

import numpy as np

from mnbench.graph import inputs as model_inputs
from mnbench.graph.kernels import KernelProfile
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

    def predict(self, array: np.ndarray) -> np.ndarray:
        """Output 0 for `array` (one batch of the model's input), outside the bound buffers; for accuracy checks
        such as int8 against fp32, never inside a timed loop."""
        raise MnbenchError(f"{type(self).__name__} cannot run inputs other than its bound ones")

    def kernel_profile(self, *, iterations: int, warmup: int) -> KernelProfile:
        """Run `warmup` then `iterations` inferences; the runtime's per-kernel mean times over the measured ones.

        Only for a session opened with `profile=True`, and once per session."""
        raise MnbenchError(f"{type(self).__name__} was opened without profile=True; it has no kernel times")

    def __enter__(self) -> "BenchSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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



def make_model_input(model_path: str | os.PathLike, name: str, shape: Sequence[int], index: int, *,
                     is_float32: bool) -> np.ndarray:
    """The input to bind for `name`: `make_input` for a float32 input (every mnbench model); for other types
    (a user's ONNX file) what `mnbench.graph.inputs` says the graph takes, seeded alike, or a MnbenchError."""
    if is_float32:
        return make_input(shape, index)
    path = os.fspath(model_path)
    specs = _input_specs(path, os.stat(path).st_mtime_ns)
    return model_inputs.fill(specs[name], list(shape), INPUT_SEED + index)


@functools.lru_cache(maxsize=8)
def _input_specs(path: str, mtime_ns: int) -> dict[str, model_inputs.InputSpec]:
    import onnx  # only for a model with non-float32 inputs

    return model_inputs.input_specs(onnx.load(path, load_external_data=False))
