"""ONNX Runtime's profiler output: a Chrome trace, read into per-kernel mean times.

Every `<kernel>_kernel_time` event of the measured runs (each run is a `model_run` event; the warm-up runs are
dropped) is one kernel execution. Fusions rename kernels: `FusedConv` keeps the Conv's name, but the NCHWc layout
pass names a fused Conv after the *output tensor* of the last op it swallowed (`/block/act/Relu_output_0_nchwc`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mnbench.graph.kernels import ConvGeometry, KernelTime
from mnbench.errors import MnbenchError

# Element types in the trace -> mnbench precision names.
_ORT_DTYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "uint8": "int8",
               "double": "fp64"}


def read_ort_trace(path: str | Path) -> list[dict[str, Any]]:
    try:
        events = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MnbenchError(f"cannot read the ONNX Runtime profile {path}: {exc}") from exc
    # Older ORT builds wrap the events: {"traceEvents": [...]}.
    return events["traceEvents"] if isinstance(events, dict) else events


def ort_kernel_times(events: list[dict[str, Any]], *, skip_runs: int) -> tuple[list[KernelTime], list[float]]:
    """Kernels and per-run wall times (ms) of an ORT Chrome trace, the first `skip_runs` runs left out.

    Kernels are returned in first-execution order, each with its mean time per measured run.
    """
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    measured = runs[skip_runs:]
    if not measured:
        raise MnbenchError(f"the ONNX Runtime trace holds {len(runs)} runs, none after the {skip_runs} warm-up runs")
    first_start = measured[0][0]
    total_us: dict[str, float] = {}
    first_event: dict[str, dict[str, Any]] = {}
    for event in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"]):
        name = event.get("name", "")
        if not name.endswith("_kernel_time") or event["ts"] < first_start:
            continue
        kernel = name[: -len("_kernel_time")]
        total_us[kernel] = total_us.get(kernel, 0.0) + float(event["dur"])
        first_event.setdefault(kernel, event)
    kernels = [_ort_kernel(kernel, first_event[kernel].get("args", {}), total_us[kernel] / 1e3 / len(measured))
               for kernel in total_us]
    return kernels, [(end - start) / 1e3 for start, end in measured]


def _ort_kernel(name: str, args: dict[str, Any], time_ms: float) -> KernelTime:
    op_type = str(args.get("op_name", ""))
    inputs = [_only_value(shape) for shape in args.get("input_type_shape", [])]
    dtypes = [next(iter(shape), None) for shape in args.get("input_type_shape", [])]
    return KernelTime(
        name=name, op_type=op_type, time_ms=time_ms, exec_type=str(args.get("provider", "")),
        precision=_ORT_DTYPES.get(dtypes[0]) if dtypes else None,
        conv=_ort_conv_geometry(op_type, inputs),
    )


def _only_value(mapping: dict[str, Any]) -> list[int]:
    return list(next(iter(mapping.values()), []))


def _ort_conv_geometry(op_type: str, inputs: list[list[int]]) -> ConvGeometry | None:
    if "Conv" not in op_type or len(inputs) < 2 or len(inputs[0]) < 3 or len(inputs[1]) != len(inputs[0]):
        return None
    x, w = inputs[0], inputs[1]
    # Nhwc* kernels take channels-last activations; their weights stay [M, C/g, kH, kW].
    channels, spatial = (x[-1], x[1:-1]) if op_type.startswith("Nhwc") else (x[1], x[2:])
    return ConvGeometry(in_channels=channels, weight_in_channels=w[1], kernel=tuple(w[2:]), in_spatial=tuple(spatial))
