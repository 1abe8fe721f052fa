"""The least memory a model needs to run, counted on its graph: its weights plus the most activation bytes that
must be alive at once when the nodes run in the graph's order.

A tensor is alive from the node that writes it (or from the start, for a graph input) to the last node that reads
it (or to the end, for a graph output); the node being run holds its inputs and its outputs at the same time. For a
chain that is the largest input + output pair; a residual branch keeps its skip tensor alive across the branch.
No runtime can do with less without recomputing or spilling, so a measured peak sits above this figure; how far
above is the runtime's own workspace, arena rounding and kernels' scratch buffers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import onnx

from mnbench.graph.cost import shaped_graph


@dataclass(frozen=True, kw_only=True)
class MemoryMinimum:
    weight_bytes: int  # every constant tensor the graph stores (initializers and Constant nodes' values)
    activation_bytes: int  # the peak of live activation bytes over the nodes, in graph order
    peak_node: str  # where that peak is reached

    @property
    def minimum_bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes

    def as_dict(self) -> dict:
        return asdict(self) | {"minimum_bytes": self.minimum_bytes}


def memory_minimum(model: onnx.ModelProto | str | Path) -> MemoryMinimum:
    """Weights plus the peak of live activations of `model` (a ModelProto or an ONNX file)."""
    graph = shaped_graph(model)
    stored = graph.initializer_names + [out for node in graph.nodes if node.op_type == "Constant"
                                        for out in node.output]
    weight_bytes = sum(graph.nbytes(name) for name in dict.fromkeys(stored))

    end = len(graph.nodes)
    born: dict[str, int] = {name: -1 for name in graph.graph_inputs}
    last_read: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        for name in graph.data_inputs(node):
            last_read[name] = index
        for name in graph.data_outputs(node):
            born.setdefault(name, index)
    for name in graph.graph_outputs:
        last_read[name] = end
    sizes = {name: graph.nbytes(name) for name in born}

    peak, peak_node = 0, ""
    for index, node in enumerate(graph.nodes):
        live = sum(size for name, size in sizes.items() if born[name] <= index <= last_read.get(name, born[name]))
        if live > peak:
            peak, peak_node = live, graph.node_name(node)
    return MemoryMinimum(weight_bytes=weight_bytes, activation_bytes=peak, peak_node=peak_node)

