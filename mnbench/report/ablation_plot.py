"""The ablations' plot: latency change against MAC change, one marker set per machine and device."""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

_COLORS = matplotlib.colormaps["tab10"].colors


def ablation_figure(report: Any) -> Figure | None:
    """x: MACs(changed) / MACs(published) - 1, y: the latency change with its 95 % interval; the y = x line is
    where time follows MACs. None without ablation rows. (`report`: a report.pairs.Report.)"""
    changes = _one_per_change(report.ablations)
    if not changes:
        return None
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    series: dict[str, list[Mapping[str, Any]]] = {}
    for row in changes:
        series.setdefault(f"{row['machine']} · {row['device']} ({row['runtime']}, {row['precision']})", []).append(row)
    for i, (label, rows) in enumerate(sorted(series.items())):
        x = [100 * r["macs_change"] for r in rows]
        y = [100 * r["latency_change"] for r in rows]
        low = [100 * (r["latency_change"] - r["latency_change_ci"][0]) if r["latency_change_ci"] else 0 for r in rows]
        high = [100 * (r["latency_change_ci"][1] - r["latency_change"]) if r["latency_change_ci"] else 0 for r in rows]
        ax.errorbar(x, y, yerr=[low, high], fmt="o", color=_COLORS[i % len(_COLORS)], capsize=3, label=label)
        for r, xi, yi in zip(rows, x, y):
            name = r["change"] if r["change"].startswith(r["arch"]) else f"{r['arch']} {r['change']}"
            ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    values = [100 * r["macs_change"] for r in changes] + [0.0]
    low, high = min(values) - 5, max(values) + 5
    ax.plot([low, high], [low, high], color="grey", linestyle=":", label="y = x (time follows MACs)")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set(xlabel="MAC change (changed / published − 1)", ylabel="latency change (min changed / published − 1)",
           title="One design choice changed: latency change against MAC change")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PercentFormatter())
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=2)
    return fig


def _one_per_change(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows repeat a change once per claim; the plot needs each measured change once."""
    seen: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        if row.get("macs_change") is None or row.get("latency_change") is None:
            continue
        key = (row["machine"], row["device"], row["runtime"], row["precision"], row["threads"], row["batch"],
               row["arch"], row["width"], row["resolution"], row["change"])
        seen.setdefault(key, row)
    return list(seen.values())
