"""The report's plots, drawn headless with matplotlib's Agg canvas and returned as SVG text or PNG bytes.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so nothing global is touched and no window opens.
Output is deterministic: fixed SVG id salt, no dates in the metadata, series in sorted order.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from mnbench import atomic
from mnbench.config import CATEGORIES
from mnbench.report.ablation_plot import ablation_figure
from mnbench.report.curve_plot import curve_figure
from mnbench.report.columns import profile_categories
from mnbench.report.labels import Label, place_labels
from mnbench.report.pairs import Report

_RC = {"svg.hashsalt": "mnbench-report", "svg.fonttype": "path", "font.size": 9}
_COLORS = matplotlib.colormaps["tab10"].colors
_VARIANT_STYLE = {"separable": dict(marker="o", linestyle="-"), "standard": dict(marker="s", linestyle="--")}
_PROFILE_MARKERS = "ovs^DP*Xh<>"


def speedup_figure(report: Report) -> Figure | None:
    """Realized against theoretical speedup, one marker set per machine/device, with the y = x line."""
    if not report.rows:
        return None
    fig, ax = _new_figure()
    series = _group(report.rows, lambda r: f"{r['machine']} · {r['device']} ({r['runtime']}, {r['precision']})")
    for i, (label, rows) in enumerate(series.items()):
        x = [r["theoretical_speedup"] for r in rows]
        y = [r["realized_speedup"] for r in rows]
        lo = [r["realized_speedup"] - r["realized_speedup_ci"][0] if r["realized_speedup_ci"] else 0 for r in rows]
        hi = [r["realized_speedup_ci"][1] - r["realized_speedup"] if r["realized_speedup_ci"] else 0 for r in rows]
        ax.errorbar(x, y, yerr=[lo, hi], fmt="o", color=_COLORS[i % len(_COLORS)], capsize=3, label=label)
    values = [v for r in report.rows for v in (r["theoretical_speedup"], r["realized_speedup"]) if v]
    low, high = min(values + [1.0]) / 1.2, max(values) * 1.2
    ax.plot([low, high], [low, high], color="grey", linestyle=":", label="y = x (time follows MACs)")
    ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high),
           xlabel="theoretical speedup (MACs standard / separable)",
           ylabel="realized speedup (min standard / separable)",
           title="Realized against theoretical speedup")
    _plain_log_ticks(ax)
    _legend_below(fig)
    # One label per model: its points share an x (the MAC ratio), colour tells the devices apart.
    points = [(r["theoretical_speedup"], r["realized_speedup"]) for r in report.rows
              if r["theoretical_speedup"] and r["realized_speedup"]]
    highest: dict[str, tuple[float, float]] = {}
    for r in report.rows:
        if r["theoretical_speedup"] and r["realized_speedup"]:
            name = f"{r['arch']} w{r['width']:g} r{r['resolution']}"
            point = (r["theoretical_speedup"], r["realized_speedup"])
            highest[name] = max(highest.get(name, point), point, key=lambda p: p[1])
    place_labels(fig, ax, [Label(x, y, name) for name, (x, y) in sorted(highest.items())], points=points)
    return fig


def latency_figure(report: Report) -> Figure | None:
    """latency (min) against MACs per inference, one line per machine/device/settings and variant."""
    records = [_pair_side(row, variant) for row in report.rows for variant in ("separable", "standard")]
    records += [dict(row) for row in report.unpaired]
    if not records:
        return None
    fig, ax = _new_figure()
    devices = _group(records, lambda r: f"{r['machine']} · {r['device']} ({r['runtime']}, {r['precision']}, "
                                        f"{r['threads']} threads, b{r['batch']})")
    for i, (device, device_records) in enumerate(devices.items()):
        for variant, points in _group(device_records, lambda r: r["variant"]).items():
            points = sorted(points, key=lambda r: r["macs"] * r["batch"])
            ax.plot([p["macs"] * p["batch"] / 1e6 for p in points], [p["min_ms"] for p in points],
                    color=_COLORS[i % len(_COLORS)], label=f"{device} · {variant}",
                    **_VARIANT_STYLE.get(variant, dict(marker="x", linestyle=":")))
    ax.set(xscale="log", yscale="log", xlabel="MACs per inference (millions, x batch)", ylabel="latency (min) (ms)",
           title="Latency against MACs")
    _plain_log_ticks(ax)
    _legend_below(fig)
    return fig


def profile_figure(report: Report) -> Figure | None:
    """Time share against MAC share per operator category, one marker per profile; None without profiles."""
    if not report.profiles:
        return None
    fig, ax = _new_figure()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="y = x (time follows MACs)")
    seen_categories: set[str] = set()
    labels, points = [], []
    for i, profile in enumerate(report.profiles):
        marker = _PROFILE_MARKERS[i % len(_PROFILE_MARKERS)]
        for cat in profile_categories(profile):
            name = str(cat.get("category"))
            mac_share, time_share = cat.get("mac_share"), cat.get("time_share")
            if not isinstance(mac_share, (int, float)) or not isinstance(time_share, (int, float)):
                continue
            color = _COLORS[(CATEGORIES.index(name) if name in CATEGORIES else len(CATEGORIES)) % len(_COLORS)]
            ax.scatter([mac_share], [time_share], color=color, marker=marker, s=36,
                       label=name if name not in seen_categories else None)
            labels.append(Label(mac_share, time_share, name))
            points.append((mac_share, time_share))
            seen_categories.add(name)
        ax.scatter([], [], color="black", marker=marker,
                   label=f"{profile.get('machine')} · {profile.get('device')} · {profile.get('arch')} "
                         f"{profile.get('variant')}")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="share of MACs", ylabel="share of time",
           title="Where the time goes: time share against MAC share per operator category")
    _legend_below(fig)
    place_labels(fig, ax, labels, points=points)
    return fig


PLOTS: dict[str, tuple[str, Callable[[Report], Figure | None]]] = {
    "speedup": ("Realized against theoretical speedup (log axes; points below the line lost part of the saving)",
                speedup_figure),
    "latency": ("latency (min) against MACs per inference (log axes)", latency_figure),
    "profile": ("Time share against MAC share per operator category (from the runtime profiler)", profile_figure),
    "parallelism": ("Share of the MAC saving kept against threads × batch, measured (95 % intervals) and the "
                    "roofline's prediction", curve_figure),
    "ablations": ("mnbench ablate: latency change against MAC change per design choice and device (95 % intervals)",
                  ablation_figure),
}


def plot_style() -> Any:
    """The report's matplotlib settings, as a context to build (and save) a figure in."""
    return matplotlib.rc_context(_RC)


def figure_svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def figure_png(fig: Figure, dpi: int = 120) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def render_plots(report: Report, fmt: str = "svg") -> dict[str, str | bytes]:
    """name -> SVG text (fmt="svg") or PNG bytes (fmt="png") for every plot the report has data for."""
    encode = {"svg": figure_svg, "png": figure_png}[fmt]
    out = {}
    for name, (_, build) in PLOTS.items():
        with plot_style():  # fonts are fixed when artists are made, ids when the file is written
            fig = build(report)
            if fig is not None:
                out[name] = encode(fig)
    return out


def write_plot_pngs(report: Report, folder: str | os.PathLike) -> list[Path]:
    """Write `<folder>/<name>.png` for each plot (atomically); returns the paths written."""
    folder = Path(folder)
    return [atomic.write_bytes(folder / f"{name}.png", data) for name, data in render_plots(report, "png").items()]


def _new_figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _legend_below(fig: Figure) -> None:
    """The legend under the axes, where it can cover neither points nor their labels."""
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2 if len(labels) > 3 else 1, fontsize=7,
               frameon=False)


def _plain_log_ticks(ax: Any) -> None:
    """Log axes labelled 2, 5, 10, 20 ... instead of 2x10^0: easier to read off a speedup or a latency."""
    def label(value: float, _pos: int) -> str:
        leading = f"{value:.0e}"[0]
        return f"{value:g}" if leading in "125" else ""

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(label))
        axis.set_minor_formatter(FuncFormatter(label))


def _group(items: list[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str]) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for item in items:
        grouped.setdefault(key(item), []).append(item)
    return dict(sorted(grouped.items()))


def _pair_side(row: Mapping[str, Any], variant: str) -> dict[str, Any]:
    return {**row, "variant": variant, "macs": row[f"macs_{variant}"], "min_ms": row[f"min_ms_{variant}"]}
