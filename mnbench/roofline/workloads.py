"""The graphs `mnbench peak` runs for the second roof and the fixed cost of a layer; pure ONNX, nothing runs here.

- `StreamWorkload`: one elementwise op over tensors far larger than any cache (256 MiB each), so every byte
  comes from and goes to memory. Traffic is counted as the bytes of the graph's inputs read once plus its output
  written once, at the graph's float32: `bytes_moved`, which is also what `mnbench.graph.cost` counts as the node's
  activation bytes. A runtime that converts to a lower precision inside moves less; the figure is then the
  rate at which that runtime streams float32 tensors, which is what its real graph edges do.
- `LayerChain`: many tiny convolutions in a row (8 channels on 4x4), whose arithmetic and traffic are
  negligible, so the time per layer is the runtime's fixed cost of running one (dispatch, thread fork/join,
  kernel launch). `mnbench.roofline.peak` times two depths and divides the difference, so the per-call cost cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT_BYTES = 4
STREAM_ELEMENTS = 64 * 2**20  # 64 Mi float32 = 256 MiB per tensor: beyond the last-level cache of any device here
WEIGHT_SEED = 0


def _model(nodes, inputs, output_shape, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "mnbench_peak",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)],
        initializer=list(initializers),
    )
    # Opset 17 / IR 8, as the peak conv: what every runtime build mnbench supports reads.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@dataclass(frozen=True, kw_only=True)
class StreamWorkload:
    """`output = input * 0.5` ("scale", one tensor read) or `output = input + input_1` ("add", two read)."""

    kind: str = "scale"
    elements: int = STREAM_ELEMENTS
    batch: int = 1

    @property
    def inputs(self) -> int:
        return 2 if self.kind == "add" else 1

    @property
    def bytes_moved(self) -> int:
        """Inputs read once plus the output written once, float32."""
        return (self.inputs + 1) * self.batch * self.elements * FLOAT_BYTES

    @property
    def method(self) -> str:
        op = "Add of two tensors" if self.kind == "add" else "Mul by a scalar"
        return (f"onnx {op}, {self.batch} x {self.elements * FLOAT_BYTES / 2**20:.0f} MiB float32 each "
                f"({self.bytes_moved / 1e9:.2f} GB read + written per call)")

    def onnx_model(self) -> onnx.ModelProto:
        shape = [self.batch, self.elements]
        if self.kind == "add":
            return _model([helper.make_node("Add", ["input", "input_1"], ["output"], name="stream_add")],
                          [("input", shape), ("input_1", shape)], shape)
        half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
        return _model([helper.make_node("Mul", ["input", "half"], ["output"], name="stream_scale")],
                      [("input", shape)], shape, [half])


@dataclass(frozen=True, kw_only=True)
class LayerChain:
    """`depth` tiny convolutions in a row; `kind` "pointwise" (1x1) or "depthwise" (3x3, one filter per channel)."""

    depth: int
    kind: str = "pointwise"
    channels: int = 8
    size: int = 4
    batch: int = 1

    @property
    def method(self) -> str:
        return f"onnx chain of tiny {self.kind} Convs ({self.channels} channels on {self.size}x{self.size})"

    def onnx_model(self) -> onnx.ModelProto:
        rng = np.random.default_rng(WEIGHT_SEED)
        depthwise = self.kind == "depthwise"
        kernel = 3 if depthwise else 1
        in_per_group = 1 if depthwise else self.channels
        weight = rng.standard_normal((self.channels, in_per_group, kernel, kernel), dtype=np.float32)
        weight *= np.float32(1.0 / np.sqrt(in_per_group * kernel * kernel))  # keeps values O(1) down the chain
        shape = [self.batch, self.channels, self.size, self.size]
        names = ["input", *(f"x{i}" for i in range(1, self.depth)), "output"]
        nodes = [helper.make_node("Conv", [names[i], "weight"], [names[i + 1]], name=f"layer_{i}",
                                  kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4,
                                  group=self.channels if depthwise else 1)
                 for i in range(self.depth)]
        return _model(nodes, [("input", shape)], shape, [numpy_helper.from_array(weight, "weight")])
