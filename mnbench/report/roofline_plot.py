"""The roofline plot: attainable GMAC/s against arithmetic intensity, both roofs, each model's categories as points.

A point is one operator category of one model variant: x = its MACs / bytes moved, y = its MACs / predicted time
(`mnbench.roofline.model`, overhead included, so a point sits on or below the roofs). Colour: the category; filled
circle: separable; open square: standard; text: the arch. Labels are placed by a small greedy search around
each point that keeps them off every other label, every point and the axes' edges; a label with no free place
is left out and listed under the plot. Categories without MACs (activations, adds) have no intensity to plot.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mnbench.config import CATEGORIES

_COLORS = dict(zip(CATEGORIES, matplotlib.colormaps["tab10"].colors))
_SHORT_ARCH = {"v3-large": "v3-L", "v3-small": "v3-S"}
LABEL_GID = "roofline-label"
_MARKER_PX = 5.0  # half-size of a point's marker, in pixels, at the figure's dpi
_OFFSETS_PT = (7, 12, 18, 26, 36)  # distances tried, in points
_ANGLES = (45, -45, 135, -135, 0, 180, 90, -90)


def roofline_figure(roofs: Mapping[str, Any], models: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """The roofline of one device.

    `roofs`: {"peak_gmacs_per_s", "bandwidth_gbytes_per_s", "layer_overhead_us"} (a `Roofs.as_dict()`);
    `models`: [{"label": "v1", "variant": "separable", "categories": {category: {"macs", "bytes", "time_us"}}}]
    (the `categories` of a report row's `roofline[variant]`)."""
    points = [(m["label"], m["variant"], category, c["macs"] / c["bytes"], c["macs"] / c["time_us"] / 1e3)
              for m in models for category, c in m["categories"].items()
              if c.get("macs") and c.get("bytes") and c.get("time_us")]
    fig = Figure(figsize=(7.5, 5.0), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, which="both", alpha=0.3)
    peak, bandwidth = float(roofs["peak_gmacs_per_s"]), float(roofs["bandwidth_gbytes_per_s"])
    ridge = peak / bandwidth
    xs, ys = [p[3] for p in points] or [ridge], [p[4] for p in points] or [peak]
    x_lo, x_hi = min(min(xs), ridge) / 4, max(max(xs), ridge) * 4
    y_lo, y_hi = min(ys) / 4, peak * 3
    ax.set(xscale="log", yscale="log", xlim=(x_lo, x_hi), ylim=(y_lo, y_hi),
           xlabel="arithmetic intensity (MACs per byte moved)", ylabel="GMAC/s (predicted, overhead included)",
           title=title or "Roofline")
    grid = [x_lo * (x_hi / x_lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak, bandwidth * x) for x in grid], color="black", linewidth=1.2, zorder=1)
    ax.text(x_hi / 1.15, peak * 1.12, f"compute roof {peak:,.0f} GMAC/s", ha="right", va="bottom", fontsize=7)
    ax.text(x_lo * 1.3, bandwidth * x_lo * 1.3 * 1.5, f"memory roof {bandwidth:,.1f} GB/s", fontsize=7,
            rotation_mode="anchor", va="bottom")
    for label, variant, category, x, y in points:
        color = _COLORS.get(category, "grey")
        filled = variant == "separable"
        ax.scatter([x], [y], s=(2 * _MARKER_PX) ** 2 * 0.72, marker="o" if filled else "s", zorder=3,
                   facecolors=color if filled else "none", edgecolors=color, linewidths=1.3)
    _legend(ax, sorted({p[2] for p in points}, key=CATEGORIES.index))
    unplaced = _place_labels(fig, ax, [(_SHORT_ARCH.get(p[0], p[0]), p[3], p[4]) for p in points])
    if unplaced:
        fig.text(0.01, 0.0, "unlabelled (no free space): " + ", ".join(unplaced), fontsize=6, va="bottom")
    return fig


def report_models(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`models` for `roofline_figure` from a device's report rows: one row per arch (width 1, 224 px where
    present, else the first), both variants."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if not row.get("roofline"):
            continue
        best = chosen.get(row["arch"])
        if best is None or (row.get("width"), row.get("resolution")) == (1.0, 224):
            chosen[row["arch"]] = row
    return [{"label": arch, "variant": variant, "categories": row["roofline"][variant]["categories"]}
            for arch, row in chosen.items() for variant in ("separable", "standard")]


def roofline_figures(report: Any) -> dict[str, Figure]:
    """One roofline per machine and device of `report` (a `Report`) whose rows have a prediction; keyed by
    "<machine> · <device> (<runtime>, <precision>)"."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in report.rows:
        if row.get("roofline"):
            key = f"{row['machine']} · {row['device']} ({row['runtime']}, {row['precision']})"
            groups.setdefault(key, []).append(row)
    return {key: roofline_figure(rows[0]["roofline"]["roofs"], report_models(rows), title=f"Roofline: {key}")
            for key, rows in sorted(groups.items())}


def _legend(ax: Any, categories: list[str]) -> None:
    handles = [Line2D([], [], linestyle="", marker="o", color=_COLORS.get(c, "grey"), label=c) for c in categories]
    handles += [Line2D([], [], linestyle="", marker="o", color="dimgrey", label="separable"),
                Line2D([], [], linestyle="", marker="s", markerfacecolor="none", color="dimgrey", label="standard")]
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.9)


def _place_labels(fig: Figure, ax: Any, labels: list[tuple[str, float, float]]) -> list[str]:
    """Put each label at the first offset around its point that overlaps no placed label, no point, no legend or
    roof caption and stays inside the axes; return the labels that found no place."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()  # fixes the layout, so data -> pixel transforms are final
    points_px = [ax.transData.transform((x, y)) for _, x, y in labels]
    blocked = [(px - _MARKER_PX, py - _MARKER_PX, px + _MARKER_PX, py + _MARKER_PX) for px, py in points_px]
    for artist in [ax.get_legend(), *ax.texts]:  # the legend and the roofs' captions
        if artist is not None:
            box = artist.get_window_extent(renderer)
            blocked.append((box.x0, box.y0, box.x1, box.y1))
    area = ax.get_window_extent(renderer)
    unplaced = []
    for text, x, y in labels:
        annotation = ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 0), fontsize=7,
                                 gid=LABEL_GID, zorder=4)
        spot = next((found for distance in _OFFSETS_PT
                     for found in [_free_spot(annotation, distance, renderer, blocked, area)] if found), None)
        if spot is None:
            annotation.remove()
            unplaced.append(text)
            continue
        rect, distance = spot
        blocked.append(rect)
        if distance > _OFFSETS_PT[1]:  # far from its point: a thin line says whose label it is
            placed = dict(xytext=annotation.get_position(), ha=annotation.get_ha(), va=annotation.get_va())
            annotation.remove()
            ax.annotate(text, (x, y), textcoords="offset points", fontsize=7, gid=LABEL_GID, zorder=4,
                        arrowprops=dict(arrowstyle="-", color="grey", linewidth=0.5, shrinkA=0, shrinkB=4),
                        **placed)
    return unplaced


def _free_spot(annotation: Any, distance: float, renderer: Any, blocked: list, area: Any) -> tuple | None:
    """(pixel box, distance) of the first free place at `distance` points around the label's point, or None."""
    for angle in _ANGLES:
        dx, dy = distance * math.cos(math.radians(angle)), distance * math.sin(math.radians(angle))
        annotation.set_position((dx, dy))
        annotation.set_ha("left" if dx > 1 else "right" if dx < -1 else "center")
        annotation.set_va("bottom" if dy > 1 else "top" if dy < -1 else "center")
        box = annotation.get_window_extent(renderer)
        rect = (box.x0 - 1, box.y0 - 1, box.x1 + 1, box.y1 + 1)
        inside = area.x0 <= rect[0] and rect[2] <= area.x1 and area.y0 <= rect[1] and rect[3] <= area.y1
        if inside and not any(_overlap(rect, other) for other in blocked):
            return rect, distance
    return None


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
