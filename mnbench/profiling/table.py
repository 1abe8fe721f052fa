"""The profile's tables: time per operator category and per graph node, set against the cost model's MACs.

The gap between a run's wall time and the sum of its kernels (executor overhead, thread hand-off) is `other`, so
the categories add up to the measured time. `macs` are the cost model's, on the exported graph: per sample for a
dynamic-batch export, the whole batch for a fixed one; `gmacs_per_s` accounts for either.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

from mnbench.graph.cost import ModelCost
from mnbench.errors import MnbenchError
from mnbench.graph.attribution import Attribution

OVERHEAD_NODE = "(runtime overhead)"


def build_profile(attributions: list[Attribution], cost: ModelCost, *, total_time_ms: float,
                  samples_per_graph_mac: float) -> dict[str, Any]:
    """`categories`, `nodes`, `total_time_ms` and `unattributed_ms` from attributed kernels and the cost model.

    `samples_per_graph_mac`: how many samples one pass of the costed graph is (the batch, for a graph costed per
    sample; 1 for a graph costed with its batch already in), for the achieved GMAC/s.
    """
    kernel_ms = sum(a.kernel.time_ms for a in attributions)
    unattributed_ms = max(0.0, total_time_ms - kernel_ms)
    total_ms = kernel_ms + unattributed_ms
    if total_ms <= 0:
        raise MnbenchError("the profiler reported no time at all; nothing to attribute")
    category_time: dict[str, float] = defaultdict(float)
    for a in attributions:
        category_time[a.category] += a.kernel.time_ms
    category_time["other"] += unattributed_ms
    return {"total_time_ms": total_ms, "unattributed_ms": unattributed_ms,
            "categories": _category_rows(category_time, cost, total_ms=total_ms,
                                         samples_per_graph_mac=samples_per_graph_mac),
            "nodes": _node_rows(attributions, cost, unattributed_ms=unattributed_ms)}


def _category_rows(category_time: Mapping[str, float], cost: ModelCost, *, total_ms: float,
                   samples_per_graph_mac: float) -> list[dict[str, Any]]:
    """One row per category the graph has or the time landed on, in `mnbench.config.CATEGORIES` order."""
    rows = []
    for category, costed in cost.by_category().items():  # every category, zeros included
        time_ms = category_time.get(category, 0.0)
        if not costed.nodes and time_ms <= 0:
            continue
        rows.append({
            "category": category,
            "macs": int(costed.macs),
            "mac_share": costed.mac_share,
            "time_ms": time_ms,
            "time_share": time_ms / total_ms,
            "gmacs_per_s": (costed.macs * samples_per_graph_mac / (time_ms * 1e6)
                            if time_ms > 0 and costed.macs else None),
        })
    return rows


def _node_rows(attributions: list[Attribution], cost: ModelCost, *, unattributed_ms: float) -> list[dict[str, Any]]:
    """Graph nodes with MACs or time, then kernels that matched no node, then the runtime's overhead."""
    node_time: dict[str, float] = defaultdict(float)
    node_exec: dict[str, dict[str, None]] = defaultdict(dict)  # ordered set of the kernels' exec types
    extra_rows: dict[str, dict[str, Any]] = {}
    for a in attributions:
        if a.node is not None:
            node_time[a.node] += a.kernel.time_ms
            if a.kernel.exec_type:
                node_exec[a.node][a.kernel.exec_type] = None
        else:
            row = extra_rows.setdefault(a.kernel.name, {"name": a.kernel.name, "op_type": a.kernel.op_type,
                                                        "category": a.category, "macs": 0, "time_ms": 0.0,
                                                        "exec_type": a.kernel.exec_type})
            row["time_ms"] += a.kernel.time_ms
    nodes = [
        {"name": n.name, "op_type": n.op_type, "category": n.category, "macs": int(n.macs),
         "time_ms": node_time.get(n.name, 0.0), "exec_type": ", ".join(node_exec.get(n.name, ()))}
        for n in cost.nodes if n.macs or node_time.get(n.name)
    ]
    nodes.extend(extra_rows.values())
    if unattributed_ms > 0:
        nodes.append({"name": OVERHEAD_NODE, "op_type": "", "category": "other", "macs": 0,
                      "time_ms": unattributed_ms, "exec_type": ""})
    return nodes
