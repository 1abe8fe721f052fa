"""The machine-speed reference workload: fixed, self-contained, allocation-free, named by what it computes."""

from __future__ import annotations

import ast
import inspect
import tracemalloc

from mnbench import reference


def test_reference_imports_nothing_under_test():
    # It must measure the machine, not mnbench: only numpy and the standard library.
    tree = ast.parse(inspect.getsource(reference))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "typing", "numpy"}


def test_a_call_allocates_nothing():
    # Inputs built once, outputs preallocated: `a @ b` or `x + y` would allocate megabytes per call.
    run = reference.make_reference_workload()
    run()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_workload_is_past_l2_and_small_gemms_stay_single_threaded():
    assert 3 * reference.STREAM_BYTES >= 6 * 2**20  # two inputs and the output: past a 2 MiB L2
    # OpenBLAS threads a GEMM at m*n*k >= 65536 * 4; below that it runs on the calling thread.
    assert reference.GEMM_SIZE ** 3 < 65536 * 4


def test_name_says_what_is_computed():
    # Two references with different work must not be compared: the name carries the sizes.
    assert str(reference.GEMM_SIZE) in reference.REFERENCE_NAME
    assert str(reference.GEMM_COUNT) in reference.REFERENCE_NAME
    assert f"{reference.STREAM_BYTES // 2**20}MiB" in reference.REFERENCE_NAME
    assert reference.make_reference_workload()() is None
