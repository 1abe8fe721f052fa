"""Each model's memory in the report: the session's measured peak beside the least its graph needs (records'
`memory`, written by `mnbench run`), newest record per model and point."""

from __future__ import annotations

from typing import Any, Iterable

from mnbench.report.columns import Column, plain


def megabytes(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{value / 1e6:,.1f}"


MEMORY_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("model", "model", plain),
    ("variant", "variant", plain), ("threads", "threads", plain), ("streams", "streams", plain),
    ("batch", "batch", plain),
    ("peak_bytes", "peak MB", megabytes), ("minimum_bytes", "minimum MB", megabytes),
    ("weight_bytes", "weights MB", megabytes), ("activation_bytes", "activations MB", megabytes),
    ("peak_over_minimum", "peak / minimum", lambda v: "–" if v is None else f"{v:.1f}×"),
]
MEMORY_LEGEND = [
    ("peak", "the session's peak resident memory above the process's before it opened: compiling, weights as "
             "the runtime lays them out, arena, activations and scratch (measured in a fresh process)"),
    ("minimum", "weights + the most activation bytes alive at once, nodes run in the graph's order: what no "
                "runtime can go below (docs/measurement.md)"),
]


def memory_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per (model, device, threads, streams, batch) whose newest record has a `memory` entry."""
    out = []
    for item in records:
        record, memory = item.record, item.record.get("memory")
        if not isinstance(memory, dict):
            continue
        peak, minimum = memory.get("peak_bytes"), memory.get("minimum_bytes")
        out.append({
            "machine": item.machine, "device": record["device"], "runtime": record["runtime"],
            "model": f"{record['arch']} w{float(record['width']):g} r{record['resolution']}",
            "variant": record["variant"], "threads": record["threads"], "streams": record.get("streams", 1),
            "batch": record["batch"],
            "peak_bytes": peak, "minimum_bytes": minimum, "weight_bytes": memory.get("weight_bytes"),
            "activation_bytes": memory.get("activation_bytes"),
            "peak_over_minimum": peak / minimum if isinstance(peak, (int, float)) and minimum else None,
            "method": memory.get("method"),
        })
    return sorted(out, key=lambda r: (r["machine"], r["device"], r["model"], r["variant"], r["threads"],
                                      r["streams"], r["batch"]))
