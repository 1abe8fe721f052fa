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


# Epilogues a runtime may fuse into the conv before them: what `ConvBench(epilogue=...)` appends to each conv.
EPILOGUES = ("none", "relu", "swish", "residual")


@dataclass(frozen=True, kw_only=True)
class ConvBench:
    """`depth` identical convolutions in a row, one operator class and shape: what `mnbench peak` times to learn the
    efficiency of that class at that shape (`mnbench.roofline.calibrate`).

    Every conv maps `channels` to `out_channels` (a stem: 3 in), so a chain of more than one repeats the same
    shape only when they are equal; a stem or a strided conv is one layer (`depth` 1). `epilogue` appends to each
    conv a Relu, a swish (x * Sigmoid(x)) or a residual Add of the conv's input followed by a Relu.
    """

    kind: str  # "pointwise", "dense", "depthwise", "grouped", "stem", "fc"
    channels: int
    size: int  # input height = width
    kernel: int = 1
    out_channels: int | None = None
    group_width: int = 1  # channels per group of a grouped conv
    stride: int = 1
    depth: int = 1
    epilogue: str = "none"

    @property
    def outputs(self) -> int:
        return self.out_channels or self.channels

    @property
    def groups(self) -> int:
        if self.kind == "depthwise":
            return self.channels
        return self.channels // self.group_width if self.kind == "grouped" else 1

    @property
    def out_size(self) -> int:
        return (self.size + 2 * (self.kernel // 2) - self.kernel) // self.stride + 1

    @property
    def layer_macs(self) -> int:
        if self.kind == "fc":
            return self.channels * self.outputs
        per_output = (self.channels // self.groups) * self.kernel * self.kernel
        return self.outputs * self.out_size * self.out_size * per_output

    @property
    def output_elements(self) -> int:
        return self.outputs * self.out_size * self.out_size

    @property
    def method(self) -> str:
        group = f", groups of {self.group_width}" if self.kind == "grouped" else ""
        return (f"{self.depth} x {self.kind} {self.kernel}x{self.kernel}/{self.stride} {self.channels}->{self.outputs}"
                f"{group} on {self.size}x{self.size}" + (f" + {self.epilogue}" if self.epilogue != "none" else ""))

    def onnx_model(self) -> onnx.ModelProto:
        rng = np.random.default_rng(WEIGHT_SEED)
        if self.kind == "fc":
            weight = rng.standard_normal((self.channels, self.outputs), dtype=np.float32) / np.sqrt(self.channels)
            return _model([helper.make_node("Gemm", ["input", "weight"], ["output"], name="fc")],
                          [("input", [1, self.channels])], [1, self.outputs],
                          [numpy_helper.from_array(weight.astype(np.float32), "weight")])
        in_per_group = self.channels // self.groups
        weight = rng.standard_normal((self.outputs, in_per_group, self.kernel, self.kernel), dtype=np.float32)
        weight *= np.float32(1.0 / np.sqrt(in_per_group * self.kernel * self.kernel))
        nodes, x = [], "input"
        for i in range(self.depth):
            y = f"conv{i}"
            nodes.append(helper.make_node("Conv", [x, "weight"], [y], name=f"layer_{i}",
                                          kernel_shape=[self.kernel] * 2, pads=[self.kernel // 2] * 4,
                                          strides=[self.stride] * 2, group=self.groups))
            nodes += _epilogue(self.epilogue, y, x, f"{i}")
            x = f"out{i}" if self.epilogue != "none" else y
        nodes[-1].output[0] = "output"
        shape = [1, self.channels, self.size, self.size]
        out_shape = [1, self.outputs, self.out_size, self.out_size]
        return _model(nodes, [("input", shape)], out_shape, [numpy_helper.from_array(weight, "weight")])


def _epilogue(kind: str, y: str, x: str, tag: str) -> list[onnx.NodeProto]:
    out = f"out{tag}"
    if kind == "relu":
        return [helper.make_node("Relu", [y], [out], name=f"relu_{tag}")]
    if kind == "swish":
        return [helper.make_node("Sigmoid", [y], [f"sig{tag}"], name=f"sigmoid_{tag}"),
                helper.make_node("Mul", [y, f"sig{tag}"], [out], name=f"swish_{tag}")]
    if kind == "residual":
        return [helper.make_node("Add", [y, x], [f"sum{tag}"], name=f"add_{tag}"),
                helper.make_node("Relu", [f"sum{tag}"], [out], name=f"relu_{tag}")]
    return []


@dataclass(frozen=True, kw_only=True)
class EltwiseBench:
    """One Add of two [1, channels, size, size] tensors: the cost of an elementwise layer on activations of a real
    network's size (mostly cache-resident, unlike `StreamWorkload`)."""

    channels: int = 64
    size: int = 56

    @property
    def bytes_moved(self) -> int:
        return 3 * self.channels * self.size * self.size * FLOAT_BYTES

    @property
    def method(self) -> str:
        return f"Add of two {self.channels}x{self.size}x{self.size} tensors"

    def onnx_model(self) -> onnx.ModelProto:
        shape = [1, self.channels, self.size, self.size]
        return _model([helper.make_node("Add", ["input", "input_1"], ["output"], name="eltwise_add")],
                      [("input", shape), ("input_1", shape)], shape)
