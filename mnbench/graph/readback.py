"""What ran in int8, read back from the runtime, and how far the int8 outputs moved from fp32.

`int8_readback` takes the runtime's executed kernels (OpenVINO's execution graph with each node's
`runtimePrecision`; ONNX Runtime's optimized graph, QLinearConv/QGemm against a float Conv) and puts every
Conv/Gemm/MatMul kernel on a node of the exported graph (`profiling.attribution`), so the share of MACs that ran in
int8 is counted in the cost model's MACs, and the layers that did not are named by the cost model's categories.
The QDQ file is costed with its Quantize/DequantizeLinear pairs taken out (`dequantized_view`), so its nodes, MACs
and categories are the fp32 export's.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from mnbench.graph.kernels import KernelTime
from mnbench.graph.cost import ModelCost, count_cost
from mnbench.graph.attribution import GraphIndex, attribute_kernels

INT8 = "int8"
# A record is called int8 only when most of its MACs ran in int8 kernels (else it is labelled what ran).
INT8_MAJORITY = 0.5
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def dequantized_view(model: onnx.ModelProto) -> onnx.ModelProto:
    """The QDQ graph with its Quantize/DequantizeLinear pairs removed: every DequantizeLinear of a constant becomes
    a float constant of its shape (zeros: the cost model reads shapes only), every Q->DQ pair on an activation is
    bypassed. Node names are kept, so each Conv is the fp32 export's node of the same name."""
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    quantized_from = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    rename: dict[str, str] = {}
    floats = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        source = node.input[0]
        if source in constants:
            shape = tuple(constants[source].dims)
            floats.append(numpy_helper.from_array(np.zeros(shape, dtype=np.float32), node.output[0]))
        elif source in quantized_from:
            rename[node.output[0]] = quantized_from[source]
    view = onnx.ModelProto()
    view.CopyFrom(model)
    del view.graph.node[:]
    kept = []
    for node in graph.node:
        if node.op_type in QDQ_OPS:
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [rename.get(name, name) for name in node.input]
        kept.append(copy)
    view.graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    del view.graph.initializer[:]
    view.graph.initializer.extend([i for i in graph.initializer if i.name in used] +
                                  [f for f in floats if f.name in used])
    del view.graph.value_info[:]  # re-inferred; the quantizer's entries name tensors that are gone
    for output in view.graph.output:
        output.name = rename.get(output.name, output.name)
    return view


@functools.lru_cache(maxsize=32)
def _graph_of(path: str, mtime_ns: int, size: int) -> tuple[onnx.ModelProto, ModelCost]:
    model = onnx.load(path, load_external_data=False)
    is_qdq = any(node.op_type in QDQ_OPS for node in model.graph.node)
    view = dequantized_view(model) if is_qdq else model
    return model, count_cost(view)


def int8_readback(kernels: list[KernelTime], model_path: str | Path, *, source: str) -> dict[str, Any]:
    """The `quantization` entry's read-back part: int8 MAC share, the float MACs by category (shares of all MACs)
    and the float layers, from the executed kernels; `source` says where the runtime told it."""
    stat = Path(model_path).stat()
    model, cost = _graph_of(str(model_path), stat.st_mtime_ns, stat.st_size)
    macs = {n.name: n.macs for n in cost.nodes}
    categories = {n.name: n.category for n in cost.nodes}
    ran: dict[str, set[str]] = defaultdict(set)  # MAC node -> precisions its kernels ran in
    for a in attribute_kernels([k for k in kernels if k.is_mac_kernel], GraphIndex(model, macs), categories):
        if a.node is not None and macs.get(a.node):
            ran[a.node].add(a.kernel.precision or "unknown")
    return mac_shares(macs, categories, ran, source=source)


def mac_shares(macs: dict[str, int], categories: dict[str, str], ran: dict[str, set[str]], *,
               source: str) -> dict[str, Any]:
    """Shares of all MACs per precision: a node whose kernels all ran in int8 counts as int8; one that no kernel
    matched counts as not int8 (`unmatched_mac_share` says how much that was)."""
    total = sum(m for m in macs.values() if m) or 1
    int8 = sum(m for name, m in macs.items() if m and ran.get(name) == {INT8})
    unmatched = sum(m for name, m in macs.items() if m and name not in ran)
    by_category: dict[str, float] = defaultdict(float)
    float_layers = []
    for name, m in macs.items():
        if m and ran.get(name) != {INT8}:
            by_category[categories.get(name, "other")] += m / total
            float_layers.append(name)
    return {"int8_mac_share": int8 / total, "unmatched_mac_share": unmatched / total,
            "not_int8_mac_share_by_category": dict(by_category), "not_int8_layers": len(float_layers),
            "not_int8_layer_names": float_layers[:20], "readback": source}


def int8_time_share_by_category(attributions: list[Any]) -> dict[str, float]:
    """Per category, the share of its Conv/Gemm/MatMul kernels' time spent in int8 kernels (a profile of an int8
    file: is the depthwise part the one that stayed, or ran slowly, in float?). Quantize/Dequantize kernels are
    left out: their input is int8 but they compute no MACs."""
    total: dict[str, float] = defaultdict(float)
    int8: dict[str, float] = defaultdict(float)
    for a in attributions:
        if not a.kernel.is_mac_kernel:
            continue
        total[a.category] += a.kernel.time_ms
        if a.kernel.precision == INT8:
            int8[a.category] += a.kernel.time_ms
    return {category: int8[category] / t for category, t in total.items() if t > 0}


def precision_that_ran(readback: dict[str, Any] | None, float_precision: str) -> str:
    """int8 when most MACs ran in int8 kernels, else the float precision the rest ran in."""
    share = (readback or {}).get("int8_mac_share")
    return INT8 if share is not None and share > INT8_MAJORITY else float_precision


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `test` against `reference`, in dB: 10 log10(sum r^2 / sum (r-t)^2)."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((reference - np.asarray(test, dtype=np.float64)) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def top1_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    """Share of rows (images) whose arg-max class is the same in both."""
    reference, test = np.asarray(reference), np.asarray(test)
    rows_r, rows_t = reference.reshape(-1, reference.shape[-1]), test.reshape(-1, test.shape[-1])
    return float(np.mean(np.argmax(rows_r, axis=1) == np.argmax(rows_t, axis=1)))
