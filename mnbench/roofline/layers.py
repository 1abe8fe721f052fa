"""The layers a runtime would run for an ONNX graph, as the calibrated roofline prices them; pure ONNX, nothing runs.

- Every Conv / Gemm / MatMul is a layer, with its operator class and shape (`MacShape`): what
  `mnbench.roofline.calibrate` interpolates its efficiency from.
- Elementwise nodes joined by tensors that only elementwise nodes read form one region (a swish, a GELU, an
  Add + Relu), run as one pass over memory, as runtimes fuse them (ONNX Runtime's Gelu / QuickGelu fusions,
  OpenVINO's eltwise chains). A region whose data inputs include the output of a MAC layer that nothing else reads,
  at that layer's output size, is its epilogue (`Region.into`): "relu" for one simple activation, "swish" for a
  longer unary chain, "residual" when it also reads another tensor (the residual Add).
- Views (reshapes) and constant-only nodes cost nothing; known data-movement ops (pooling, Transpose, Concat,
  Slice, normalisations...) are memory traffic; any other operator is memory traffic too, and named in `unknown`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import onnx
from onnx import helper, shape_inference

from mnbench.errors import MnbenchError

MAC_OPS = frozenset({"Conv", "Gemm", "MatMul"})
ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "LeakyRelu",
    "Elu", "Selu", "Exp", "Log", "Sqrt", "Pow", "Neg", "Abs", "Reciprocal", "Softplus", "Softsign", "Mish", "Gelu",
    "PRelu", "Max", "Min", "Sum", "Mean", "BatchNormalization", "Cast", "Where", "Equal", "Less", "Greater", "Not",
    "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Swish", "QuickGelu", "FastGelu",
})
SIMPLE_ACTIVATIONS = frozenset({"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "Tanh", "Elu",
                                "PRelu"})
MEMORY_OPS = frozenset({
    "GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool", "LpPool", "ReduceMean", "ReduceMax", "ReduceMin",
    "ReduceSum", "ReduceL2", "ReduceProd", "Transpose", "Concat", "Split", "Slice", "Pad", "Gather", "GatherElements",
    "Resize", "Upsample", "LayerNormalization", "InstanceNormalization", "GroupNormalization", "Softmax",
    "LogSoftmax", "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "ArgMax", "ArgMin", "ConvTranspose",
    "LRN", "MeanVarianceNormalization", "ScatterND", "TopK", "CumSum",
})
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Constant",
                      "ConstantOfShape", "Size"})


@dataclass(frozen=True, kw_only=True)
class MacShape:
    """A Conv / Gemm / MatMul as the calibration sees it: class, width (see `calibrate.bench_width`), output size,
    kernel."""

    kind: str
    width: float
    size: int
    kernel: int
    output_elements: int

    def describe(self) -> str:
        return f"{self.kind} {self.kernel}x{self.kernel} w{self.width:.0f} @{self.size}"


@dataclass(frozen=True, kw_only=True)
class Region:
    """Elementwise nodes run as one layer; `into` the MAC layer it is the epilogue of, else None."""

    nodes: tuple[str, ...]
    bytes: int  # distinct data inputs read once + outputs written once
    output_elements: int
    epilogue: str  # "relu", "swish" or "residual" when fused; "" otherwise
    into: str | None = None


@dataclass(frozen=True, kw_only=True)
class GraphLayers:
    macs: dict[str, MacShape]
    regions: tuple[Region, ...]
    free: frozenset[str]  # views and constant-only nodes
    unknown: dict[str, list[str]] = field(default_factory=dict)  # op type -> node names

    def region_of(self) -> dict[str, Region]:
        return {name: region for region in self.regions for name in region.nodes}


def analyse(model: onnx.ModelProto) -> GraphLayers:
    """The graph's layers (see the module docstring); a MnbenchError when its shapes cannot be inferred."""
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types here
        raise MnbenchError(f"ONNX shape inference failed, so the graph cannot be priced: {exc}") from exc
    g = _Index(inferred)
    macs = {g.name(n): shape for n in g.nodes if n.op_type in MAC_OPS and (shape := _mac_shape(g, n))}
    free = frozenset(g.name(n) for n in g.nodes if n.op_type in VIEW_OPS or not g.data_inputs(n))
    unknown: dict[str, list[str]] = defaultdict(list)
    for n in g.nodes:
        known = n.op_type in MAC_OPS | ELEMENTWISE | MEMORY_OPS | VIEW_OPS
        if not known and g.name(n) not in free:
            unknown[n.op_type].append(g.name(n))
    return GraphLayers(macs=macs, regions=tuple(_regions(g, set(macs), free)), free=free, unknown=dict(unknown))


class _Index:
    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        self.constants = {init.name for init in graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant" or (node.input and all(not x or x in self.constants for x in node.input)):
                self.constants.update(node.output)
        self.types = {v.name: v.type for v in [*graph.input, *graph.value_info, *graph.output]}
        self.inits = {init.name: tuple(init.dims) for init in graph.initializer}
        self.producer = {out: n for n in self.nodes for out in n.output if out}
        self.readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for x in dict.fromkeys(n.input):
                if x:
                    self.readers[x].append(n)
        self.outputs = {v.name for v in graph.output}
        self._names = {id(n): n.name or f"{n.op_type}_{i}" for i, n in enumerate(self.nodes)}

    def name(self, node: onnx.NodeProto) -> str:
        return self._names[id(node)]

    def data_inputs(self, node: onnx.NodeProto) -> list[str]:
        return list(dict.fromkeys(x for x in node.input if x and x not in self.constants))

    def shape(self, tensor: str) -> tuple[int, ...] | None:
        if tensor in self.inits:
            return self.inits[tensor]
        t = self.types.get(tensor)
        if t is None or not t.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else 1 for d in t.tensor_type.shape.dim)

    def numel(self, tensor: str) -> int:
        shape = self.shape(tensor)
        return math.prod(shape) if shape is not None else 0

    def nbytes(self, tensor: str) -> int:
        t = self.types.get(tensor)
        elem = t.tensor_type.elem_type if t is not None else onnx.TensorProto.FLOAT
        try:
            size = helper.tensor_dtype_to_np_dtype(elem).itemsize
        except (KeyError, TypeError, ValueError):
            size = 4
        return self.numel(tensor) * size


def _mac_shape(g: _Index, node: onnx.NodeProto) -> MacShape | None:
    out = g.shape(node.output[0])
    if out is None:
        return None
    elements = math.prod(out)
    if node.op_type != "Conv":
        a, b = g.shape(node.input[0]), g.shape(node.input[1])
        if a is None or b is None:
            return None
        inner, outer = (a[-1], b[-1]) if node.op_type == "MatMul" else (math.prod(a) // a[0], out[-1])
        return MacShape(kind="fc", width=math.sqrt(max(inner, 1) * max(outer, 1)), size=1, kernel=1,
                        output_elements=elements)
    weight, x = g.shape(node.input[1]), g.shape(node.input[0])
    if weight is None or x is None or len(out) < 3:
        return None
    groups = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
    kernel = max(weight[2:]) if len(weight) > 2 else 1
    size = round(math.sqrt(math.prod(out[2:]))) if len(out) > 2 else 1
    cin, cout = x[1], weight[0]
    if groups > 1 and groups == cin and weight[1] == 1:
        kind, width = "depthwise", float(cin)
    elif groups > 1:
        kind, width = "grouped", float(weight[1])
    elif kernel == 1:
        kind, width = "pointwise", math.sqrt(cin * cout)
    elif cin <= 4:
        kind, width = "stem", float(cout)
    else:
        kind, width = "dense", math.sqrt(cin * cout)
    return MacShape(kind=kind, width=width, size=size, kernel=kernel, output_elements=elements)


def _regions(g: _Index, macs: set[str], free: frozenset[str]) -> list[Region]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    members = [n for n in g.nodes if n.op_type in ELEMENTWISE and g.name(n) not in free]
    for n in members:
        parent[g.name(n)] = g.name(n)
    for n in members:
        for out in n.output:
            readers = g.readers.get(out, [])
            # Joined only through a tensor no one else needs in memory.
            if readers and out not in g.outputs and all(r.op_type in ELEMENTWISE for r in readers):
                for r in readers:
                    if g.name(r) in parent:
                        parent[find(g.name(r))] = find(g.name(n))
    grouped: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in members:
        grouped[find(g.name(n))].append(n)
    return [_region(g, nodes, macs) for nodes in grouped.values()]


def _region(g: _Index, nodes: list[onnx.NodeProto], macs: set[str]) -> Region:
    names = {g.name(n) for n in nodes}
    produced = {out for n in nodes for out in n.output if out}
    inputs = list(dict.fromkeys(x for n in nodes for x in g.data_inputs(n) if x not in produced))
    outputs = [out for n in nodes for out in n.output
               if out and (out in g.outputs or any(g.name(r) not in names for r in g.readers.get(out, [])))]
    out_elements = max((g.numel(o) for o in outputs), default=0)
    nbytes = sum(g.nbytes(x) for x in inputs) + sum(g.nbytes(o) for o in outputs)
    into = None
    for x in reversed(inputs):  # the latest MAC layer whose output only this region reads
        source = g.producer.get(x)
        if (source is not None and g.name(source) in macs and x not in g.outputs and g.numel(x) == out_elements
                and all(g.name(r) in names for r in g.readers.get(x, []))):
            into = g.name(source)
            break
    epilogue = ""
    if into is not None:
        if len(inputs) > 1:
            epilogue = "residual"
        elif all(n.op_type in SIMPLE_ACTIVATIONS for n in nodes) and len(nodes) == 1:
            epilogue = "relu"
        else:
            epilogue = "swish"
    ordered = tuple(g.name(n) for n in nodes)
    return Region(nodes=ordered, bytes=nbytes, output_elements=out_elements, epilogue=epilogue, into=into)
