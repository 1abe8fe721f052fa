"""Theoretical cost of a model, counted on its exported ONNX graph: MACs, parameters, bytes, by operator category.

Counting on the graph (not on the torch module) means the numbers describe exactly what the runtimes execute,
BatchNorm already folded away.

Conventions:
- `macs`: multiply-accumulates of Conv / Gemm / MatMul only. Conv = prod(output shape) x prod(weight shape[1:]);
  Gemm / MatMul = M x N x K, batch included. Bias adds ride along with the accumulation and are not counted.
- `other_flops`: everything elementwise, kept apart from MACs: one per output element (activations, SE gating,
  residual adds), one per input element for pooling / reductions; reshapes and other data movement count zero.
- `params` / `weight_bytes`: the constant tensors fed to Conv / Gemm / MatMul (and the few other weighted ops),
  each tensor name counted once, on the first node that reads it; so they equal the BatchNorm-folded network's
  parameter count even where the exporter stored two identical biases once. Shape constants are not parameters.
- `activation_bytes`: the memory traffic a node causes apart from weights: the bytes of its output tensors plus
  the bytes of its inputs that are not initializers / constants. Summed over nodes, each intermediate tensor is
  counted once when written and once per reader, as an unfused runtime would move it.
- Symbolic dimensions (a dynamic batch) count as 1, so a dynamic-batch graph is costed per sample.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from math import prod
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import helper, shape_inference

from mnbench.config import CATEGORIES
from mnbench.errors import MnbenchError

MAC_OPS = frozenset({"Conv", "Gemm", "MatMul"})
# Ops whose initializer inputs are learned parameters (not shape or axis constants).
WEIGHTED_OPS = MAC_OPS | {"ConvTranspose", "BatchNormalization", "PRelu", "LayerNormalization", "InstanceNormalization"}
# Ops that cost one FLOP per *input* element.
POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool", "ReduceMean", "ReduceMax", "ReduceSum"})
# Data movement: no arithmetic.
ZERO_FLOP_OPS = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather", "Identity",
    "Constant", "Shape", "Cast", "Dropout", "Expand", "Pad", "ConstantOfShape",
})
POOL_INTO_SE = frozenset({"GlobalAveragePool", "ReduceMean"})
# An SE branch from its pool to the gating Mul is a handful of nodes; a longer chain is something else.
MAX_SE_CHAIN = 10


@dataclass(frozen=True, kw_only=True)
class NodeCost:
    name: str
    op_type: str
    category: str
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int
    other_flops: int


@dataclass(frozen=True, kw_only=True)
class CategoryCost:
    category: str
    nodes: int
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int
    other_flops: int
    mac_share: float  # fraction of the model's MACs, 0..1


@dataclass(frozen=True, kw_only=True)
class ModelCost:
    nodes: tuple[NodeCost, ...]
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int
    other_flops: int
    _by_name: dict[str, NodeCost] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {node.name: node for node in self.nodes})

    @classmethod
    def from_nodes(cls, nodes: list[NodeCost] | tuple[NodeCost, ...]) -> ModelCost:
        return cls(
            nodes=tuple(nodes),
            macs=sum(n.macs for n in nodes),
            params=sum(n.params for n in nodes),
            weight_bytes=sum(n.weight_bytes for n in nodes),
            activation_bytes=sum(n.activation_bytes for n in nodes),
            other_flops=sum(n.other_flops for n in nodes),
        )

    def by_category(self) -> dict[str, CategoryCost]:
        """Every category of `mnbench.config.CATEGORIES`, in that order, zeros included."""
        grouped: dict[str, list[NodeCost]] = defaultdict(list)
        for node in self.nodes:
            grouped[node.category].append(node)
        return {
            category: CategoryCost(
                category=category,
                nodes=len(members),
                macs=(macs := sum(n.macs for n in members)),
                params=sum(n.params for n in members),
                weight_bytes=sum(n.weight_bytes for n in members),
                activation_bytes=sum(n.activation_bytes for n in members),
                other_flops=sum(n.other_flops for n in members),
                mac_share=macs / self.macs if self.macs else 0.0,
            )
            for category in CATEGORIES
            for members in [grouped.get(category, [])]
        }

    def category_of(self, node_name: str, default: str | None = None) -> str:
        """The category of the ONNX node `node_name`; `default` (if given) for a name the graph does not have."""
        node = self._by_name.get(node_name)
        if node is not None:
            return node.category
        if default is not None:
            return default
        raise MnbenchError(f"no node named {node_name!r} in this graph")

    def node(self, node_name: str) -> NodeCost:
        try:
            return self._by_name[node_name]
        except KeyError:
            raise MnbenchError(f"no node named {node_name!r} in this graph") from None

    def as_dict(self) -> dict:
        """JSON-ready: totals, the per-category table and every node."""
        return {
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "other_flops": self.other_flops,
            "by_category": {name: asdict(cost) for name, cost in self.by_category().items()},
            "nodes": [asdict(node) for node in self.nodes],
        }


def count_cost(model: onnx.ModelProto | str | Path) -> ModelCost:
    """Shape-infer `model` (strictly) and count every node's cost; see the module docstring for the conventions."""
    graph = shaped_graph(model)
    se_nodes = _find_se_nodes(graph)
    claimed_params: set[str] = set()
    nodes = []
    for node in graph.nodes:
        name = graph.node_name(node)
        weights = [] if node.op_type not in WEIGHTED_OPS else [
            x for x in node.input if x in graph.constants and x not in claimed_params
        ]
        claimed_params.update(weights)
        nodes.append(NodeCost(
            name=name,
            op_type=node.op_type,
            category="se" if name in se_nodes else _category(graph, node),
            macs=_macs(graph, node),
            params=sum(graph.numel(x) for x in weights),
            weight_bytes=sum(graph.nbytes(x) for x in weights),
            activation_bytes=sum(graph.nbytes(x) for x in [*graph.data_inputs(node), *graph.data_outputs(node)]),
            other_flops=_other_flops(graph, node),
        ))
    return ModelCost.from_nodes(nodes)


def shaped_graph(model: onnx.ModelProto | str | Path) -> "_Graph":
    """The shape-inferred graph with its lookup tables, for the other analyses of a graph (`graph/memory.py`)."""
    return _Graph(_infer_shapes(_load(model)))


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model))
    except Exception as exc:  # noqa: BLE001 - a missing file and a protobuf parse error alike
        raise MnbenchError(f"cannot read ONNX model {model}: {exc}") from exc


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types here
        raise MnbenchError(f"ONNX shape inference failed, so the graph cannot be costed: {exc}") from exc


class _Graph:
    """Lookup tables over one shape-inferred graph: shapes, dtypes, constants, producers."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.nodes = list(graph.node)
        # Constant tensors: initializers, Constant nodes, and whatever is computed from constants alone (the
        # TorchScript exporter turns identical initializers, e.g. zero biases, into Identity nodes of one
        # another). The value is kept where known, None otherwise (its shape then comes from inference).
        self.constants: dict[str, onnx.TensorProto | None] = {init.name: init for init in graph.initializer}
        self.initializer_names = [init.name for init in graph.initializer]
        self.graph_inputs = [x.name for x in graph.input if x.name not in self.constants]
        self.graph_outputs = [x.name for x in graph.output]
        for node in self.nodes:  # ONNX nodes are topologically sorted
            if node.op_type == "Constant":
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                self.constants.update({out: value for out in node.output})
            elif node.input and all(not x or x in self.constants for x in node.input):
                aliased = self.constants[node.input[0]] if node.op_type == "Identity" else None
                self.constants.update({out: aliased for out in node.output})
        self.types: dict[str, onnx.TypeProto] = {
            info.name: info.type for info in [*graph.input, *graph.value_info, *graph.output]
        }
        self.producer: dict[str, onnx.NodeProto] = {out: node for node in self.nodes for out in node.output if out}
        # Unnamed nodes get a stable positional name.
        self._names = {id(node): node.name or f"{node.op_type}_{i}" for i, node in enumerate(self.nodes)}

    def node_name(self, node: onnx.NodeProto) -> str:
        return self._names[id(node)]

    def shape(self, name: str) -> tuple[int, ...]:
        if self.constants.get(name) is not None:
            return tuple(self.constants[name].dims)
        tensor_type = self.types.get(name)
        if tensor_type is None or not tensor_type.tensor_type.HasField("shape"):
            raise MnbenchError(f"tensor {name!r} has no inferred shape; the graph cannot be costed")
        # Symbolic or unknown dims (a dynamic batch) count as 1: the cost is per sample.
        return tuple(d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.tensor_type.shape.dim)

    def elem_type(self, name: str) -> int:
        if self.constants.get(name) is not None:
            return self.constants[name].data_type
        return self.types[name].tensor_type.elem_type

    def numel(self, name: str) -> int:
        return prod(self.shape(name))

    def nbytes(self, name: str) -> int:
        return self.numel(name) * _itemsize(self.elem_type(name))

    def data_inputs(self, node: onnx.NodeProto) -> list[str]:
        """Inputs that are activations: not initializers, not Constant outputs, not omitted optionals."""
        return [x for x in node.input if x and x not in self.constants]

    def data_outputs(self, node: onnx.NodeProto) -> list[str]:
        return [x for x in node.output if x and x not in self.constants]

    def attribute(self, node: onnx.NodeProto, name: str, default=None):
        for attr in node.attribute:
            if attr.name == name:
                return helper.get_attribute_value(attr)
        return default


def _itemsize(elem_type: int) -> int:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 1  # sub-byte or exotic types: a conservative lower bound


def _macs(graph: _Graph, node: onnx.NodeProto) -> int:
    if node.op_type == "Conv":
        return graph.numel(node.output[0]) * prod(graph.shape(node.input[1])[1:])
    if node.op_type == "Gemm":
        a_shape = graph.shape(node.input[0])
        inner = a_shape[0] if graph.attribute(node, "transA", 0) else a_shape[1]
        return graph.numel(node.output[0]) * inner
    if node.op_type == "MatMul":
        return graph.numel(node.output[0]) * graph.shape(node.input[0])[-1]
    return 0


def _other_flops(graph: _Graph, node: onnx.NodeProto) -> int:
    if node.op_type in MAC_OPS or node.op_type in ZERO_FLOP_OPS or not graph.data_inputs(node):
        return 0  # constant-only nodes are folded away before anything runs
    if node.op_type in POOL_OPS:
        return graph.numel(node.input[0])
    return sum(graph.numel(out) for out in graph.data_outputs(node))


def _category(graph: _Graph, node: onnx.NodeProto) -> str:
    if node.op_type in ("Gemm", "MatMul"):
        return "fc"
    if node.op_type != "Conv":
        return "other"
    weight_shape = graph.shape(node.input[1])
    x_shape = graph.shape(node.input[0])
    return conv_category(in_channels=x_shape[1], groups=graph.attribute(node, "group", 1),
                         weight_in_channels=weight_shape[1], kernel=weight_shape[2:], in_spatial=x_shape[2:])


def conv_category(*, in_channels: int, groups: int, weight_in_channels: int, kernel: Sequence[int],
                  in_spatial: Sequence[int]) -> str:
    """The category of a convolution from its shapes: the one rule for graph nodes and runtime kernels alike."""
    if groups > 1 and groups == in_channels and weight_in_channels == 1:
        return "depthwise"
    if groups != 1:
        return "grouped"
    if all(k == 1 for k in kernel):
        return "fc" if all(s == 1 for s in in_spatial) else "pointwise"
    return "standard"


def _find_se_nodes(graph: _Graph) -> set[str]:
    """Names of every node in a squeeze-excitation branch.

    An SE gate is a Mul(x, gate) where `gate` comes back, through a short chain of single-activation-input nodes
    holding at least one Conv/Gemm/MatMul, to a GlobalAveragePool / ReduceMean of `x` itself.
    """
    found: set[str] = set()
    for node in graph.nodes:
        if node.op_type != "Mul" or len(graph.data_inputs(node)) != 2:
            continue
        a, b = graph.data_inputs(node)
        for x, gate in ((a, b), (b, a)):
            chain = _chain_back_to_pool_of(graph, gate, x)
            if chain:
                found.update(graph.node_name(n) for n in [*chain, node])
                break
    return found


def _chain_back_to_pool_of(graph: _Graph, gate: str, x: str) -> list[onnx.NodeProto] | None:
    chain: list[onnx.NodeProto] = []
    tensor = gate
    while len(chain) < MAX_SE_CHAIN:
        producer = graph.producer.get(tensor)
        if producer is None:
            return None
        chain.append(producer)
        inputs = graph.data_inputs(producer)
        if producer.op_type in POOL_INTO_SE:
            has_fc = any(n.op_type in MAC_OPS for n in chain)
            return chain if inputs == [x] and has_fc else None
        if len(inputs) != 1:
            return None
        tensor = inputs[0]
    return None
