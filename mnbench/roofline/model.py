"""A per-layer roofline: the time each layer of the exported graph would take on a device described by three figures.

For every layer: MACs (from `mnbench.graph.cost`), bytes moved, and

    time = max(MACs / peak compute, bytes / bandwidth) + layer overhead

summed over the model. Roofline speedup = predicted time of `standard` / predicted time of `separable`.

What is assumed (and where it misses, see README "Why the saving is lost"):
- Caches: none. Each layer streams its input and output activations and its weights once from memory, so bytes =
  (activation + weight elements) x bytes per element of the precision that ran. A layer whose tensors stay in
  cache moves less; a layer that re-reads its input (im2col, a tiled GEMM spilling) moves more.
- Layers: one per node of the exported graph, except that an elementwise activation reading the output of a
  Conv/Gemm/MatMul (or of such an activation) that nothing else reads is fused into it, as ONNX Runtime's and
  OpenVINO's CPU plugins do; reshapes and constant-only nodes cost nothing. Other fusions (a residual Add into
  the conv before it) are not modelled.
- One compute roof for every layer: a depthwise conv is assumed to reach the dense peak when it is not memory
  bound, which it does not (no data reuse across channels for the vector units): the model errs on its side.
- Bytes per element come from the precision: fp32 4, fp16/bf16 2, int8 1 (`bytes_per_element`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import onnx

from mnbench.graph.cost import MAC_OPS, ModelCost
from mnbench.roofline.layers import GraphLayers
from mnbench.roofline.terms import (BOUNDS, BYTES_PER_ELEMENT, GRAPH_BYTES_PER_ELEMENT, VIEW_OPS, LayerTime,
                                    Prediction, Roofs, bytes_per_element)

__all__ = ["BOUNDS", "BYTES_PER_ELEMENT", "FUSED_ACTIVATIONS", "GRAPH_BYTES_PER_ELEMENT", "VIEW_OPS", "LayerTime",
           "Prediction", "Roofs", "bytes_per_element", "fused_activations", "predict", "roofline_speedup"]

# Activations the runtimes apply inside the kernel that produced their input (post-ops / fused activations).
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "Tanh", "Elu"})


def predict(cost: ModelCost, roofs: Roofs, *, precision: str = "fp32", fused: Iterable[str] = (),
            batch_scale: int = 1, layers: GraphLayers | None = None) -> Prediction:
    """Predicted time of every layer of `cost` (one graph's `count_cost`) on `roofs`.

    `fused`: node names folded into the layer before them (`fused_activations`); `batch_scale`: images per call
    for a graph costed per image (a dynamic batch): activations and MACs scale, weights do not. With `layers`
    (`mnbench.roofline.layers.analyse` of the same graph) and calibrated roofs, each layer is priced by its
    operator class instead (`mnbench.roofline.priced`), and operators without a model are listed in `unknown`.
    """
    if layers is not None:
        from mnbench.roofline.priced import predict_calibrated, unknown_operators

        if roofs.calibration is not None:
            return predict_calibrated(cost, roofs, layers, precision=precision, batch_scale=batch_scale)
        plain = predict(cost, roofs, precision=precision, fused=fused, batch_scale=batch_scale)
        return Prediction(roofs=roofs, precision=precision, layers=plain.layers,
                          unknown=unknown_operators(cost, layers))
    scale = bytes_per_element(precision) / GRAPH_BYTES_PER_ELEMENT
    fused = set(fused)
    layers = []
    for node in cost.nodes:
        if node.name in fused or node.op_type in VIEW_OPS or (node.activation_bytes == 0 and node.macs == 0):
            continue
        macs = node.macs * batch_scale
        moved = round((node.activation_bytes * batch_scale + node.weight_bytes) * scale)
        layers.append(LayerTime(
            name=node.name, op_type=node.op_type, category=node.category, macs=macs, bytes=moved,
            compute_us=macs / (roofs.peak_gmacs_per_s * 1e3),  # GMAC/s = 1e3 MACs per µs
            memory_us=moved / (roofs.bandwidth_gbytes_per_s * 1e3),
            overhead_us=roofs.layer_overhead_us,
        ))
    return Prediction(roofs=roofs, precision=precision, layers=tuple(layers))


def roofline_speedup(standard: Prediction, separable: Prediction) -> float | None:
    return standard.time_us / separable.time_us if separable.time_us > 0 else None


def fused_activations(model: onnx.ModelProto) -> frozenset[str]:
    """Names of the activation nodes a runtime runs inside the Conv/Gemm/MatMul whose output they read.

    Fused: a node in FUSED_ACTIVATIONS whose one activation input comes from a MAC node (or an already fused
    activation) that no other node reads. Names follow `mnbench.graph.cost` (an unnamed node is `<op>_<index>`).
    """
    nodes = list(model.graph.node)
    constants = {init.name for init in model.graph.initializer}
    constants.update(out for n in nodes if n.op_type == "Constant" for out in n.output)
    names = {id(n): n.name or f"{n.op_type}_{i}" for i, n in enumerate(nodes)}
    producer = {out: n for n in nodes for out in n.output if out}
    readers: dict[str, int] = defaultdict(int)
    for n in nodes:
        for x in n.input:
            readers[x] += 1
    for out in model.graph.output:
        readers[out.name] += 1
    fused: set[str] = set()
    for n in nodes:  # topological order: a chain's earlier member is decided first
        data = [x for x in n.input if x and x not in constants]
        if n.op_type not in FUSED_ACTIVATIONS or len(data) != 1 or readers[data[0]] != 1:
            continue
        source = producer.get(data[0])
        if source is not None and (source.op_type in MAC_OPS or names[id(source)] in fused):
            fused.add(names[id(n)])
    return frozenset(fused)
