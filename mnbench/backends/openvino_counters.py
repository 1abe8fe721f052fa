"""OpenVINO's per-node profiling counters (`PERF_COUNT`), read into per-kernel mean times.

There is one counter per executed node of the compiled graph, which the runtime model maps back to the original
layers (`originalLayersNames`). The CPU plugin reports the *running mean* over every inference since compilation,
so the warm-up runs are taken out by difference; other plugins report the last inference.
"""

from __future__ import annotations

import re
from typing import Any

from mnbench.graph.kernels import ConvGeometry, KernelTime

# Kernel-name suffixes (exec_type) -> mnbench precision names.
_OV_EXEC_PRECISION = re.compile(r"_(f32|fp32|bf16|f16|fp16|i8|u8|int8)$", re.IGNORECASE)
_OV_PRECISIONS = {"f32": "fp32", "fp32": "fp32", "bf16": "bf16", "f16": "fp16", "fp16": "fp16",
                  "i8": "int8", "u8": "int8", "int8": "int8"}
# OpenVINO plugins whose counters are running means over every inference since compilation (the CPU plugin's
# PerfCount::avg); the others report the last inference.
RUNNING_MEAN_PLUGINS = ("CPU",)


def ov_precision(exec_type: str) -> str | None:
    """`brgconv_avx512_bf16` -> "bf16"; None when the primitive name does not say."""
    match = _OV_EXEC_PRECISION.search(exec_type)
    return _OV_PRECISIONS[match.group(1).lower()] if match else None


def mean_of_measured(mean_after_warmup: float, mean_after_all: float, *, warmup: int, measured: int) -> float:
    """The mean of the measured runs alone, from two running means (OpenVINO CPU counters average over all runs)."""
    return max(0.0, ((warmup + measured) * mean_after_all - warmup * mean_after_warmup) / measured)


def counters_ms(request: Any) -> dict[str, float]:
    """Executed node name -> its counter (ms) of an infer request compiled with PERF_COUNT."""
    return {info.node_name: info.real_time.total_seconds() * 1e3
            for info in request.get_profiling_info() if info.status == info.Status.EXECUTED}


def untruncated_mean_ms(running_mean_ms: float, runs: int) -> float:
    """The CPU plugin's running mean is whole microseconds, its total divided by `runs` and rounded down
    (`PerfCount::avg`); add back half of what the division can drop, so differences of means are not biased low
    (a microsecond kernel would otherwise often come out at zero)."""
    return running_mean_ms + (runs - 1) / (2 * runs) * 1e-3 if runs > 0 else running_mean_ms


def kernel_times(request: Any, compiled: Any, means: dict[str, float]) -> list[KernelTime]:
    """The executed kernels with their mean times (`means`, by node name), origins and conv shapes."""
    layers = _runtime_layers(compiled)
    kernels = []
    for info in request.get_profiling_info():
        if info.status != info.Status.EXECUTED or info.node_name not in means:
            continue
        origins, conv = layers.get(info.node_name, ((), None))
        kernels.append(KernelTime(name=info.node_name, op_type=info.node_type, time_ms=means[info.node_name],
                                  origins=origins, exec_type=info.exec_type, precision=ov_precision(info.exec_type),
                                  conv=conv))
    return kernels


def runtime_kernels(compiled: Any) -> list[KernelTime]:
    """Every node of the compiled model's execution graph, with the precision it runs in (`runtimePrecision`:
    u8/i8 for an int8 convolution) and its original layers; no times (for what ran, not how long)."""
    kernels = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt_info = op.get_rt_info()
        text = {key: str(rt_info[key].astype(str)) for key in ("layerType", "runtimePrecision", "originalLayersNames")
                if key in rt_info}
        precision = text.get("runtimePrecision", "").lower()
        kernels.append(KernelTime(name=op.get_friendly_name(), op_type=text.get("layerType", ""), time_ms=0.0,
                                  origins=tuple(n for n in text.get("originalLayersNames", "").split(",") if n),
                                  precision=_OV_PRECISIONS.get(precision, precision or None)))
    return kernels


def _runtime_layers(compiled: Any) -> dict[str, tuple[tuple[str, ...], ConvGeometry | None]]:
    """Executed node name -> (the original layers it fused, its conv geometry) from the runtime model."""
    layers = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt_info = op.get_rt_info()
        origins = str(rt_info["originalLayersNames"].astype(str)) if "originalLayersNames" in rt_info else ""
        layer_type = str(rt_info["layerType"].astype(str)) if "layerType" in rt_info else ""
        conv = _conv_geometry(op) if layer_type == "Convolution" else None
        layers[op.get_friendly_name()] = (tuple(n for n in origins.split(",") if n), conv)
    return layers


def _conv_geometry(op: Any) -> ConvGeometry | None:
    if op.get_input_size() < 2 or not all(op.input(i).get_partial_shape().is_static for i in (0, 1)):
        return None
    x = list(op.input(0).get_shape())
    w = list(op.input(1).get_shape())
    if len(x) < 3:
        return None
    # Convolution weights are [M, C, kH, kW]; GroupConvolution's are [G, M/G, C/G, kH, kW].
    weight_in, kernel = (w[2], w[3:]) if len(w) == len(x) + 1 else (w[1], w[2:])
    return ConvGeometry(in_channels=x[1], weight_in_channels=weight_in, kernel=tuple(kernel), in_spatial=tuple(x[2:]))
