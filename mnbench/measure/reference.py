"""The machine-speed reference: a fixed small network that tells how fast this machine's runtime is right now.

`mnbench run --for-check` measures it in the models' rounds, and `mnbench check` divides it out where that helps
(`mnbench.gate.compare`): when the reference gets slower together with a model, the machine got slower, not the
model. It is a network on the model's own runtime, device, precision and threads (a shared machine slows a
multi-threaded runtime call differently from a numpy kernel: benchmarks/results/reference_choice.md), built here
with onnx.helper from fixed sizes and a fixed seed, and run with settings frozen in the backends
(`pin_settings=True`), so a change to the benchmark's session settings moves the models, never the ruler. Its name
carries its sizes and a version: samples of two different references are never compared.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mnbench import atomic, paths

BLOCKS = 4  # each: depthwise 3x3, ReLU, pointwise 1x1, dense 3x3, ReLU: the three conv kinds of the models
CHANNELS = 32
SIZE = 48  # about 96 MMAC per call: 0.5-1 ms on a 2-core x86 VM, short enough to be rarely preempted
WEIGHT_SEED = 0
# Bump the version when the graph changes: samples of two different references must never be compared.
REFERENCE_NAME = f"onnx-sepconv{BLOCKS}x{CHANNELS}c{SIZE}px-v2"


def reference_graph() -> onnx.ModelProto:
    """The reference network; weights scaled so activations stay O(1) (no denormals, no overflow)."""
    rng = np.random.default_rng(WEIGHT_SEED)
    c = CHANNELS

    def weights(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(1.0 / np.sqrt(fan_in))

    nodes, initializers, x = [], [], "input"
    for i in range(BLOCKS):
        initializers += [numpy_helper.from_array(weights((c, 1, 3, 3), 9), f"dw{i}"),
                         numpy_helper.from_array(weights((c, c, 1, 1), c), f"pw{i}"),
                         numpy_helper.from_array(weights((c, c, 3, 3), 9 * c), f"dense{i}")]
        out = "output" if i == BLOCKS - 1 else f"block{i}"
        nodes += [
            helper.make_node("Conv", [x, f"dw{i}"], [f"dw_out{i}"], group=c, kernel_shape=[3, 3], pads=[1] * 4),
            helper.make_node("Relu", [f"dw_out{i}"], [f"dw_act{i}"]),
            helper.make_node("Conv", [f"dw_act{i}", f"pw{i}"], [f"pw_out{i}"], kernel_shape=[1, 1]),
            helper.make_node("Conv", [f"pw_out{i}", f"dense{i}"], [f"dense_out{i}"], kernel_shape=[3, 3],
                             pads=[1] * 4),
            helper.make_node("Relu", [f"dense_out{i}"], [out]),
        ]
        x = out
    shape = [1, c, SIZE, SIZE]
    graph = helper.make_graph(nodes, "mnbench_reference",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
                              initializer=initializers)
    # Opset 17 / IR 8: what every runtime build mnbench supports reads.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def reference_path(models_dir: str | os.PathLike | None = None) -> Path:
    """The reference's ONNX file under the models folder, (re)written atomically unless it holds exactly the graph."""
    path = paths.models_dir(models_dir) / f"reference-{REFERENCE_NAME}.onnx"
    data = reference_graph().SerializeToString()
    if not path.is_file() or path.read_bytes() != data:  # a damaged or foreign file is replaced, never run
        atomic.write_bytes(path, data)
    return path


def open_reference(device, *, precision: str, threads: int | None, models_dir: str | os.PathLike | None = None):
    """A session of the reference on `device` with the models' precision and threads and frozen settings; its
    `infer` is the workload to interleave, its `info` says what ran."""
    from mnbench.backends import open_session

    return open_session(device, reference_path(models_dir), batch=1, precision=precision, threads=threads,
                        models_dir=models_dir, pin_settings=True)
