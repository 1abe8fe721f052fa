"""ONNX Runtime's OpenVINO provider beside native OpenVINO and ONNX Runtime's CPU provider, for the same model on the
same machine: what the provider itself costs (`openvino-ep` min / `openvino` min; above 1 is its overhead).

The devices are measured in the same run's repetitions but not in the same rounds, so these are ratios of medians
with no interval; records from different runs are compared as they are (the machine may have drifted between them).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from mnbench.report.columns import Column, ms, plain, speedup

DEVICES = ("cpu", "openvino", "openvino-ep")
PROVIDER_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("model", "model", plain), ("precision", "precision", plain),
    ("threads", "threads", plain), ("min_ms_cpu", "cpu min ms", ms), ("min_ms_openvino", "openvino min ms", ms),
    ("min_ms_openvino_ep", "openvino-ep min ms", ms), ("ep_over_native", "ep / native", speedup),
    ("cpu_over_ep", "cpu / ep", speedup),
]
PROVIDER_LEGEND = [
    ("ep / native", "openvino-ep min / openvino min: above 1, what ONNX Runtime's OpenVINO provider adds to "
                    "OpenVINO run natively (ratio of medians, no interval)"),
    ("cpu / ep", "cpu min / openvino-ep min: above 1, the OpenVINO provider is faster than ONNX Runtime's CPU one"),
]


def provider_rows(records: Iterable[Any], *, min_ms: Callable[[Any], float]) -> list[dict[str, Any]]:
    """One row per model that ran on `openvino-ep` and on `openvino` or `cpu` (report.pairs.SourcedRecord, newest
    per model; `min_ms` the report's own, so the figures agree with its pair table)."""
    found: dict[tuple, dict[str, float]] = {}
    for item in records:
        r = item.record
        if r["device"] not in DEVICES:
            continue
        key = (item.machine, str(r["arch"]), str(r["variant"]), float(r["width"]), r["resolution"], r["batch"],
               r["precision"], r["threads"])
        found.setdefault(key, {})[r["device"]] = min_ms(r)
    rows = []
    for key, latency in sorted(found.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        ep = latency.get("openvino-ep")
        if ep is None or not ({"cpu", "openvino"} & set(latency)):
            continue
        machine, arch, variant, width, resolution, batch, precision, threads = key
        native, cpu = latency.get("openvino"), latency.get("cpu")
        rows.append({"machine": machine, "model": f"{arch} {variant} w{width:g} r{resolution} b{batch}",
                     "precision": precision, "threads": threads, "min_ms_cpu": cpu, "min_ms_openvino": native,
                     "min_ms_openvino_ep": ep, "ep_over_native": ep / native if native else None,
                     "cpu_over_ep": cpu / ep if cpu and ep else None})
    return rows
