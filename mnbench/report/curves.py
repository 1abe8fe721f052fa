"""The survey's claim as a curve: for each arch on each device, the realized speedup and the share of the MAC saving
kept at every point of parallelism the runs measured (threads x batch), beside the roofline's prediction.

A curve is the report's pair rows of one machine, device, runtime, precision and model at two or more (threads,
streams, batch) points, so each point keeps its own interval and its realized speedup stays the ratio of the latencies in
the pair table. `change` is a point's realized speedup over the curve's first point (fewest threads, smallest
batch): below 1 the saving shrank with parallelism. Its interval combines the two points' intervals as
independent (they are different groups of the run), in log space.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from mnbench.report.columns import Column, interval, percent, plain, speedup

# (row key, header, formatter): markdown, the terminal and html show these.
CURVE_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("model", "model", plain),
    ("threads", "threads", plain), ("streams", "streams", plain), ("batch", "batch", plain),
    ("theoretical_speedup", "theoretical", speedup), ("realized_speedup", "realized", speedup),
    ("realized_speedup_ci", "95% interval", interval), ("share_kept", "kept", percent),
    ("change", "vs first point", speedup), ("change_ci", "its interval", interval),
    ("roofline_speedup", "roofline", speedup), ("roofline_kept", "roofline kept", percent),
    ("throughput_standard", "img/s std", lambda v: "–" if v is None else f"{v:,.0f}"),
    ("throughput_separable", "img/s sep", lambda v: "–" if v is None else f"{v:,.0f}"),
]
CURVE_LEGEND = [
    ("kept", "realized / theoretical: the share of the MAC saving that became time saved"),
    ("vs first point", "realized speedup / the same pair's at the fewest threads and smallest batch "
                       "(below 1×: parallelism took part of the saving)"),
    ("roofline", "the roofline's speedup from the peak measured at that thread count (compute scales with threads, "
                 "the per-layer overhead does not)"),
    ("img/s", "images per second: batch x streams / latency (a call runs a batch on every stream at once)"),
    ("streams", "OpenVINO's throughput mode: requests on that many streams at once, sharing the threads"),
]


def curve_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The curve rows of every pair measured at two or more (threads, batch) points, sorted by point."""
    curves: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple(row[k] for k in ("machine", "device", "runtime", "precision", "arch", "width", "resolution"))
        curves.setdefault(key, []).append(row)
    out = []
    for points in curves.values():
        if len({point(r) for r in points}) < 2:
            continue
        points = sorted(points, key=point)
        first = points[0]
        for row in points:
            out.append(_curve_row(row, first))
    return out


def _curve_row(row: Mapping[str, Any], first: Mapping[str, Any]) -> dict[str, Any]:
    change, change_ci = _ratio(row, first)
    theoretical, roofline = row.get("theoretical_speedup"), row.get("roofline_speedup")
    return {
        "machine": row["machine"], "device": row["device"], "runtime": row["runtime"],
        "precision": row["precision"], "arch": row["arch"], "width": row["width"], "resolution": row["resolution"],
        "model": f"{row['arch']} w{row['width']:g} r{row['resolution']}",
        "threads": row["threads"], "batch": row["batch"], "streams": row.get("streams", 1),
        "theoretical_speedup": theoretical,
        "realized_speedup": row.get("realized_speedup"), "realized_speedup_ci": row.get("realized_speedup_ci"),
        "share_kept": row.get("share_kept"), "change": change, "change_ci": change_ci,
        "roofline_speedup": roofline, "roofline_kept": roofline / theoretical if roofline and theoretical else None,
        "throughput_standard": _throughput(row, "standard"), "throughput_separable": _throughput(row, "separable"),
    }


def _ratio(row: Mapping[str, Any], first: Mapping[str, Any]) -> tuple[float | None, list[float] | None]:
    """This point's realized speedup over the first point's, and its 95 % interval (independent points)."""
    a, b = row.get("realized_speedup"), first.get("realized_speedup")
    if not a or not b:
        return None, None
    ratio = a / b
    if row is first:
        return ratio, None
    widths = [_log_halfwidth(r) for r in (row, first)]
    if None in widths:
        return ratio, None
    half = math.hypot(*widths)
    return ratio, [ratio * math.exp(-half), ratio * math.exp(half)]


def _log_halfwidth(row: Mapping[str, Any]) -> float | None:
    ci = row.get("realized_speedup_ci")
    if not ci or not all(isinstance(x, (int, float)) and x > 0 for x in ci):
        return None
    return (math.log(ci[1]) - math.log(ci[0])) / 2


def point(row: Mapping[str, Any]) -> tuple[int, int, int]:
    """Where a row sits on its curve, in the curve's order: (threads, streams, batch)."""
    return (row["threads"] or 0, row.get("streams", 1), row["batch"])


def _throughput(row: Mapping[str, Any], variant: str) -> float | None:
    """Images per second: a call runs batch images on each stream."""
    latency = row.get(f"min_ms_{variant}")
    return row["batch"] * row.get("streams", 1) * 1e3 / latency if latency else None
