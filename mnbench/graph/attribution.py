"""Kernel -> graph node: which node of the exported graph each kernel of the runtime's executed graph computes.

Each kernel is attributed to a graph node by name (exact node or tensor name, else the longest node or tensor
name it starts with); a convolution or matrix kernel that lands on a node without MACs (the activation it fused)
is walked back to the Conv/Gemm/MatMul feeding that node alone. Kernels that match nothing are classified from
their own shapes (conv geometry), or `other`. Layout reorders the runtime inserts are `other`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import onnx

from mnbench.graph.kernels import KernelTime

# Layout changes the runtime inserts: data movement of its own choosing, never part of a graph node.
LAYOUT_KERNELS = frozenset({"Reorder", "ReorderInput", "ReorderOutput"})
# A name continues past a node's name at one of these (`<node>/WithoutBiases`, `<tensor>_nchwc`).
_NAME_SEPARATORS = "/_:.-"
# How far back from a fused activation to look for the Conv/Gemm that the kernel really is.
MAX_FUSED_CHAIN = 4


class GraphIndex:
    """Names of the exported graph: nodes (named as the cost model names them), tensors and their producers."""

    def __init__(self, model: onnx.ModelProto, macs: dict[str, int]) -> None:
        graph = model.graph
        constants = {init.name for init in graph.initializer}
        self.names: list[str] = []
        self.op_type: dict[str, str] = {}
        self.data_inputs: dict[str, list[str]] = {}
        self.producer: dict[str, str] = {}
        self.consumers: Counter[str] = Counter()
        for i, node in enumerate(graph.node):
            name = node.name or f"{node.op_type}_{i}"  # mnbench.graph.cost names unnamed nodes the same way
            self.names.append(name)
            self.op_type[name] = node.op_type
            self.data_inputs[name] = [x for x in node.input if x and x not in constants]
            self.consumers.update(self.data_inputs[name])
            for out in node.output:
                if out:
                    self.producer[out] = name
        self.macs = macs
        self._name_set = set(self.names)

    def resolve(self, kernel: KernelTime) -> str | None:
        """The graph node a kernel computes, or None."""
        found = [node for raw in (kernel.origins or (kernel.name,)) if (node := self._lookup(raw))]
        if not found:
            return None
        # OpenVINO lists every layer it fused (conv, bias, activation): the one with the MACs names the kernel.
        node = max(found, key=lambda n: self.macs.get(n, 0))
        if kernel.is_mac_kernel and not self.macs.get(node):
            node = self._mac_node_behind(node) or node
        return node

    def _lookup(self, raw: str) -> str | None:
        if raw in self._name_set:
            return raw
        if raw in self.producer:
            return self.producer[raw]
        prefix = _longest_prefix(raw, self.names)
        if prefix is not None:
            return prefix
        tensor = _longest_prefix(raw, self.producer)
        return self.producer[tensor] if tensor is not None else None

    def _mac_node_behind(self, node: str) -> str | None:
        """The nearest Conv/Gemm/MatMul whose output feeds `node` alone, through at most MAX_FUSED_CHAIN nodes."""
        frontier = [node]
        for _ in range(MAX_FUSED_CHAIN):
            behind = [self.producer[t] for n in frontier for t in self.data_inputs.get(n, [])
                      if t in self.producer and self.consumers[t] == 1]
            for candidate in behind:
                if self.macs.get(candidate):
                    return candidate
            frontier = behind
        return None


def _longest_prefix(raw: str, names: Iterable[str]) -> str | None:
    best = None
    for name in names:
        if (len(raw) > len(name) and raw.startswith(name) and raw[len(name)] in _NAME_SEPARATORS
                and (best is None or len(name) > len(best))):
            best = name
    return best


@dataclass(frozen=True, kw_only=True)
class Attribution:
    kernel: KernelTime
    node: str | None  # the graph node, None when nothing matched
    category: str


def attribute_kernels(kernels: list[KernelTime], index: GraphIndex, category_of: dict[str, str]) -> list[Attribution]:
    out = []
    for kernel in kernels:
        node = None if kernel.op_type in LAYOUT_KERNELS else index.resolve(kernel)
        category = category_of.get(node, "other") if node is not None else kernel.fallback_category()
        out.append(Attribution(kernel=kernel, node=node, category=category))
    return out


def effective_precision(attributions: list[Attribution]) -> str | None:
    """The precision the Conv/Gemm kernels ran in, weighted by their time (what the hardware really did)."""
    weight: Counter[str] = Counter()
    for a in attributions:
        if a.kernel.is_mac_kernel and a.kernel.precision:
            weight[a.kernel.precision] += a.kernel.time_ms
    return weight.most_common(1)[0][0] if weight else None
