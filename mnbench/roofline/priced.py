"""The calibrated roofline: each layer priced by what its operator class costs on this device.

    MAC layer    time = layer overhead + max(MACs / efficiency of its class at its shape,
                                             activation bytes / cache bandwidth)
                        + weight bytes / memory bandwidth (a network's weights do not stay in cache between
                          inferences, and the benchmarks, which reuse theirs, never paid for them)
                        + the measured cost of the epilogue fused into it (activation, swish, residual Add)
    elementwise  time = fixed cost + bytes / cache bandwidth, one per fused region (`mnbench.roofline.layers`)
    other        the same, for pooling, Transpose, Concat, normalisations ... and unknown operators (listed)
    the call     one session call's fixed cost, once per inference

Efficiencies, bandwidth and fixed costs come from `mnbench.roofline.calibrate` (measured by `mnbench peak`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mnbench.graph.cost import ModelCost
from mnbench.roofline.layers import GraphLayers, Region
from mnbench.roofline.terms import (GRAPH_BYTES_PER_ELEMENT, VIEW_OPS, LayerTime, Prediction, Roofs,
                                    bytes_per_element)

CALL = "(session call)"


def predict_calibrated(cost: ModelCost, roofs: Roofs, layers: GraphLayers, *, precision: str = "fp32",
                       batch_scale: int = 1) -> Prediction:
    calibration = roofs.calibration
    assert calibration is not None
    scale = bytes_per_element(precision) / GRAPH_BYTES_PER_ELEMENT
    region_of = layers.region_of()
    epilogues: dict[str, list[Region]] = defaultdict(list)
    for region in layers.regions:
        if region.into:
            epilogues[region.into].append(region)
    out = []
    for node in cost.nodes:
        if node.name in layers.free or node.op_type in VIEW_OPS or (node.activation_bytes == 0 and node.macs == 0):
            continue
        moved = round((node.activation_bytes * batch_scale + node.weight_bytes) * scale)
        weights_us = node.weight_bytes * scale / (roofs.bandwidth_gbytes_per_s * 1e3)
        activations_us = calibration.eltwise_us(node.activation_bytes * batch_scale * scale)[0]
        region = region_of.get(node.name)
        shape = layers.macs.get(node.name)
        if region is not None:
            if region.into is None and node.name == region.nodes[0]:
                out.append(_region_layer(region, cost, calibration, batch_scale * scale))
        elif shape is not None and shape.kind in calibration.kinds:
            gmacs = calibration.gmacs_per_s(shape.kind, width=shape.width, size=shape.size, kernel=shape.kernel)
            fused = epilogues.get(node.name, [])
            out.append(LayerTime(
                name=node.name, op_type=node.op_type, category=node.category, macs=node.macs * batch_scale,
                bytes=moved, compute_us=node.macs * batch_scale / (gmacs * 1e3),
                memory_us=activations_us, overhead_us=roofs.layer_overhead_us, weights_us=weights_us,
                epilogue_us=sum(calibration.epilogue_us(r.epilogue, r.output_elements * batch_scale) for r in fused),
                fused=tuple(n for r in fused for n in r.nodes), priced=f"{shape.describe()}: {gmacs:.1f} GMAC/s"))
        else:
            memory_us, fixed_us = calibration.eltwise_us(moved)
            out.append(LayerTime(
                name=node.name, op_type=node.op_type, category=node.category, macs=node.macs * batch_scale,
                bytes=moved, compute_us=node.macs * batch_scale / (roofs.peak_gmacs_per_s * 1e3),
                memory_us=memory_us, overhead_us=fixed_us,
                priced="unknown operator: memory traffic" if node.op_type in layers.unknown else "memory traffic"))
    out.append(LayerTime(name=CALL, op_type="", category="other", macs=0, bytes=0, compute_us=0.0, memory_us=0.0,
                         overhead_us=calibration.call_us, priced="fixed cost of a call"))
    return Prediction(roofs=roofs, precision=precision, layers=tuple(out), unknown=unknown_operators(cost, layers))


def _region_layer(region: Region, cost: ModelCost, calibration, byte_scale: float) -> LayerTime:
    first = cost.node(region.nodes[0])
    ops = "+".join(dict.fromkeys(cost.node(n).op_type for n in region.nodes))
    moved = round(region.bytes * byte_scale)
    memory_us, fixed_us = calibration.eltwise_us(moved)
    return LayerTime(name=first.name, op_type=ops, category=first.category, macs=0, bytes=moved, compute_us=0.0,
                     memory_us=memory_us, overhead_us=fixed_us, fused=region.nodes[1:],
                     priced="elementwise: memory traffic")


def unknown_operators(cost: ModelCost, layers: GraphLayers) -> dict[str, dict[str, Any]]:
    """op type -> its nodes, and their share of the graph's nodes and of its bytes, for operators with no model."""
    if not layers.unknown:
        return {}
    total_bytes = sum(n.activation_bytes + n.weight_bytes for n in cost.nodes) or 1
    out = {}
    for op, names in sorted(layers.unknown.items()):
        nbytes = sum(cost.node(n).activation_bytes + cost.node(n).weight_bytes for n in names)
        out[op] = {"nodes": len(names), "node_share": len(names) / max(len(cost.nodes), 1),
                   "bytes_share": nbytes / total_bytes}
    return out


def unknown_lines(prediction: Prediction, label: str) -> list[str]:
    """One line per operator the predictor cannot cost: which, how much of the graph, what it was priced as."""
    return [f"{label}: {v['nodes']} {op} node(s) ({v['node_share']:.0%} of the graph's nodes, "
            f"{v['bytes_share']:.0%} of its bytes): no model for {op}, priced as memory traffic only"
            for op, v in prediction.unknown.items()]
