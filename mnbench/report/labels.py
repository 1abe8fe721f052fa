"""Point labels that overlap neither each other nor any point: a greedy search over offsets around each point.

matplotlib has no label repulsion of its own (adjustText would be a dependency for a dozen labels). The figure is
laid out once, the layout frozen, and each label tried at offsets around its point, nearest first; the first spot
whose box stays inside the axes and clear of every point, every label placed so far and the given obstacles wins.
A label with no free spot is left out (the table has every figure), and the count is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

# Offsets in points, nearest ring first; within a ring right and left before above and below (error bars run
# vertically through the points).
_DIRECTIONS = ((1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1))
_RINGS = (7, 12, 20, 30, 42, 56, 72, 90)
_POINT_RADIUS_PT = 4.5  # a marker of size 6-7 pt, plus a little air
_PAD_PT = 1.5


@dataclass(frozen=True)
class Label:
    x: float  # data coordinates of the point it names
    y: float
    text: str


def freeze_layout(fig: Figure) -> Any:
    """Run the figure's layout once and keep it, so display positions measured now hold when it is saved."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    return fig.canvas.get_renderer()


def place_labels(fig: Figure, ax: Any, labels: Sequence[Label], *, points: Sequence[tuple[float, float]] = (),
                 fontsize: float = 7) -> int:
    """Annotate `labels` on `ax` without overlaps; `points` (data coordinates) are kept clear as well as the
    labelled points themselves. Returns how many labels found no free spot and were left out."""
    renderer = freeze_layout(fig)
    to_px = fig.dpi / 72
    radius, pad = _POINT_RADIUS_PT * to_px, _PAD_PT * to_px
    anchors = [ax.transData.transform((x, y)) for x, y in [*points, *((l.x, l.y) for l in labels)]]
    taken = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius) for px, py in anchors]
    frame = ax.get_window_extent(renderer)
    left_out = 0
    for label in labels:
        for dx, dy in ((dx * ring, dy * ring) for ring in _RINGS for dx, dy in _DIRECTIONS):
            trial = _annotate(ax, label, dx, dy, fontsize)
            trial.update_positions(renderer)
            box = Text.get_window_extent(trial, renderer).padded(pad)  # the text alone, not its leader line
            trial.remove()
            if _inside(box, frame) and not any(box.overlaps(other) for other in taken):
                # Far from its point, a thin leader line says whose label it is.
                _annotate(ax, label, dx, dy, fontsize, leader=max(abs(dx), abs(dy)) > _RINGS[1])
                taken.append(box)
                break
        else:
            left_out += 1
    return left_out


def _annotate(ax: Any, label: Label, dx: float, dy: float, fontsize: float, *, leader: bool = False) -> Any:
    arrow = dict(arrowstyle="-", color="grey", lw=0.5, shrinkA=0, shrinkB=3) if leader else None
    return ax.annotate(label.text, (label.x, label.y), xytext=(dx, dy), textcoords="offset points",
                       fontsize=fontsize, ha=_align(dx, "left", "right", "center"),
                       va=_align(dy, "bottom", "top", "center"), arrowprops=arrow)


def _align(offset: float, positive: str, negative: str, zero: str) -> str:
    return positive if offset > 0 else negative if offset < 0 else zero


def _inside(box: Bbox, frame: Bbox) -> bool:
    return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
