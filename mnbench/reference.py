"""The machine-speed reference: a fixed numpy workload that measures how fast this machine is right now.

It does not depend on any code under test (no model, no runtime, no exporter), so when it gets slower together with
a model, the machine got slower, not the model. `mnbench run` measures it interleaved with the models and keeps its
samples on every record; `mnbench check` divides it out where that helps (see `mnbench.gate.compare`).

One call is a stack of small float32 GEMMs (compute-bound, like a convolution) and an add over arrays that together
are three times a 2 MiB L2 (memory-bound, like a depthwise layer): about 0.5 ms on a current x86 core.
Why this small, on measurements on a shared 2-core VM at load 7–9:
- Each GEMM stays under OpenBLAS's threading threshold (m·n·k < 262144), so the reference runs on one thread:
  one multi-threaded 384² GEMM took 26 ms instead of 0.9 ms there, its spinning BLAS threads measuring the
  neighbours' scheduling, not the machine.
- A short call is rarely preempted, so its median is the speed of the machine while it runs: calls of ~1.2 ms had
  a p90 of 8–16 ms (a scheduler time slice) and medians that jumped 2–10x between seconds, calls of 0.3 ms did not.
Inputs are built once, deterministically, and results go into preallocated arrays, so a call allocates nothing.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

GEMM_SIZE = 48  # square float32 matrices, 2 * 48^3 = 0.22 MFLOP each ...
GEMM_COUNT = 96  # ... 21 MFLOP per call
STREAM_BYTES = 2 * 2**20  # per array; two read, one written: 6 MiB of traffic, past a 2 MiB L2
# Bump the name when the workload changes: samples of two different references must never be compared.
REFERENCE_NAME = f"numpy-gemm{GEMM_COUNT}x{GEMM_SIZE}-add{STREAM_BYTES // 2**20}MiB-v1"


def make_reference_workload(seed: int = 0) -> Callable[[], None]:
    """A no-argument callable that runs the reference once; its inputs are built here, once."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((GEMM_COUNT, GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    b = rng.standard_normal((GEMM_COUNT, GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    product = np.empty_like(a)
    n = STREAM_BYTES // np.dtype(np.float32).itemsize
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    total = np.empty_like(x)

    def reference() -> None:
        np.matmul(a, b, out=product)
        np.add(x, y, out=total)

    return reference
