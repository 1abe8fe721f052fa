"""The parallelism curve as a figure: the share of the MAC saving kept at each (threads, batch) point, one panel per
device, one line per model, the roofline's prediction dashed beside it and the theoretical ceiling at 100 %."""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import matplotlib

from mnbench.report.curves import point

_COLORS = matplotlib.colormaps["tab10"].colors


def curve_figure(report: Any) -> Figure | None:
    curves = report.curves
    if not curves:
        return None
    panels: dict[str, list[dict[str, Any]]] = {}
    for row in curves:
        panels.setdefault(f"{row['machine']} · {row['device']} ({row['precision']})", []).append(row)
    fig = Figure(figsize=(4.2 * len(panels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, (title, rows) in zip(axes, sorted(panels.items())):
        points = sorted({point(r) for r in rows})
        x_of = {p: i for i, p in enumerate(points)}
        models = sorted({r["model"] for r in rows})
        for i, model in enumerate(models):
            mine = sorted((r for r in rows if r["model"] == model), key=lambda r: x_of[point(r)])
            xs = [x_of[point(r)] for r in mine]
            kept = [r["share_kept"] for r in mine]
            lo = [k - r["realized_speedup_ci"][0] / r["theoretical_speedup"] if r["realized_speedup_ci"] else 0
                  for k, r in zip(kept, mine)]
            hi = [r["realized_speedup_ci"][1] / r["theoretical_speedup"] - k if r["realized_speedup_ci"] else 0
                  for k, r in zip(kept, mine)]
            color = _COLORS[i % len(_COLORS)]
            ax.errorbar(xs, kept, yerr=[lo, hi], marker="o", capsize=3, color=color, label=f"{model} measured")
            roofline = [r["roofline_kept"] for r in mine]
            if any(v is not None for v in roofline):
                ax.plot(xs, roofline, linestyle="--", marker="x", color=color, alpha=0.7, label=f"{model} roofline")
        ax.axhline(1.0, color="grey", linestyle=":", label="theoretical (all of the saving)")
        ax.set_xticks(range(len(points)), [f"{t}t{f' {s}s' if s > 1 else ''} × b{b}" for t, s, b in points],
                      rotation=30)
        ax.set(title=title, xlabel="threads × batch", ylim=(0, 1.1))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("share of the MAC saving kept (realized / theoretical)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7, frameon=False)
    return fig

