"""Each measured model's memory for its record: the session's measured peak (`mnbench.measure.memory`) beside the
least the graph needs (`mnbench.graph.memory`).

Measured after the timing, never during it: a memory process beside a timed pass would slow it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mnbench.errors import MnbenchError
from mnbench.graph.memory import memory_minimum
from mnbench.measure.memory import measure_peak_memory

ON_ACCELERATOR = "not measured: the model runs in the accelerator's memory, and only this process's is read"


def session_memory(plan, entries: Iterable[Any], models_dir: Path | None) -> dict[int, dict[str, Any]]:
    """id(entry) -> the record's `memory` for every measured model entry of a run (`run.plan._Measured`)."""
    minimums: dict[str, dict[str, Any]] = {}
    out = {}
    for entry in entries:
        path = str(entry.exported.path)
        if path not in minimums:
            minimums[path] = memory_minimum(path).as_dict()
        minimum = minimums[path]
        memory = {"minimum_bytes": minimum["minimum_bytes"], "weight_bytes": minimum["weight_bytes"],
                  "activation_bytes": minimum["activation_bytes"]}
        if entry.device.on_accelerator:
            out[id(entry)] = memory | {"peak_bytes": None, "method": ON_ACCELERATOR}
            continue
        try:
            streams = int(entry.info.get("streams", 1))
            peak = measure_peak_memory(entry.device, path, batch=entry.exported.config.batch,
                                       precision=plan.precision, threads=int(entry.info["threads"]),
                                       options=plan.options_for(entry.device)
                                       | ({"streams": streams} if streams > 1 else {}), models_dir=models_dir)
        except MnbenchError as exc:  # the timing stands without it; the record says why the peak is missing
            peak = {"peak_bytes": None, "method": f"not measured: {exc}"}
        out[id(entry)] = memory | peak
    return out

