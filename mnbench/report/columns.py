"""The report's columns and cell formatters: one place, so every format shows the same numbers the same way.

Renderers (`text`, `html`) and `plots` read rows through these; nothing here knows about an output format.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

# (row key, short header, formatter) for the pair table, as markdown, html and the Rich table show it.
Column = tuple[str, str, Callable[[Any], str]]


def _number_or_text(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    """Missing values show as a dash; a value that is not a number (a hand-edited file) shows as written."""
    @functools.wraps(fmt)
    def formatter(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool) or not isinstance(value, (int, float, list)):
            return str(value)
        return fmt(value)

    return formatter


@_number_or_text
def ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}"


@_number_or_text
def speedup(value: float) -> str:
    return f"{value:.2f}×"


@_number_or_text
def millions(value: int) -> str:
    return "0" if value == 0 else f"{value / 1e6:,.0f}M" if value >= 1e7 else f"{value / 1e6:,.1f}M"


@_number_or_text
def percent(value: float) -> str:
    return f"{value:.1%}"


@_number_or_text
def signed_percent(value: float) -> str:
    return f"{value:+.0%}"


@_number_or_text
def number(value: float) -> str:
    return f"{value:,.1f}"


@_number_or_text
def interval(value: list[float]) -> str:
    return f"{value[0]:.2f}–{value[1]:.2f}"


def plain(value: Any) -> str:
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


PAIR_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("runtime", "runtime", plain),
    ("threads", "threads", plain), ("arch", "arch", plain), ("width", "width", plain),
    ("resolution", "res", plain), ("batch", "batch", plain), ("precision", "precision", plain),
    ("min_ms_standard", "min std (ms)", ms), ("min_ms_separable", "min sep (ms)", ms),
    ("theoretical_speedup", "theoretical", speedup),
    ("realized_speedup", "realized", speedup), ("realized_speedup_ci", "95% interval", interval),
    ("share_kept", "kept", percent), ("bound", "bound", plain),
    ("roofline_speedup", "roofline", speedup), ("runs", "runs", plain),
]
UNPAIRED_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("runtime", "runtime", plain),
    ("threads", "threads", plain), ("arch", "arch", plain), ("variant", "variant", plain),
    ("width", "width", plain), ("resolution", "res", plain), ("batch", "batch", plain),
    ("precision", "precision", plain), ("macs", "MACs", millions), ("min_ms", "min (ms)", ms),
    ("gmacs_per_s", "GMAC/s", number), ("peak_share", "peak", percent), ("missing", "missing", plain),
]
PROFILE_COLUMNS: list[Column] = [
    ("category", "category", plain), ("macs", "MACs", millions), ("mac_share", "MAC share", percent),
    ("time_ms", "time (ms)", ms), ("time_share", "time share", percent), ("gmacs_per_s", "GMAC/s", number),
    ("predicted_time_share", "roofline share", percent),
]
# csv: every row field, the interval split into two numeric columns.
CSV_COLUMNS = ("machine", "device", "runtime", "threads", "arch", "width", "resolution", "batch", "precision",
               "macs_standard", "macs_separable", "theoretical_speedup", "min_ms_standard", "min_ms_separable",
               "realized_speedup", "realized_speedup_ci_lo", "realized_speedup_ci_hi", "share_kept", "bound",
               "roofline_speedup", "roofline_error", "repetitions", "runs",
               "gmacs_per_s_standard", "gmacs_per_s_separable", "peak_gmacs_per_s", "peak_share_standard",
               "peak_share_separable", "n_standard", "n_separable", "source_standard", "source_separable")

# The five concepts a reader needs (docs/measurement.md says the same, at more length).
LEGEND = [
    ("min", "latency of one model: the fastest call of each repetition (a repetition: a fresh process and fresh "
            "sessions, a fraction of a second of calls alternated with its twin), geometric mean over the repetitions "
            "(and runs). A quiet-machine figure: interference only ever adds time."),
    ("realized", "min standard / min separable: exactly the ratio of the two latency columns beside it."),
    ("95% interval", "where the realized speedup of a re-run of the same command is expected to fall, from the "
                     "spread between repetitions (and between runs, when a report pools several)."),
    ("kept", "realized / theoretical speedup (theoretical = MACs standard / MACs separable): the share of the MAC "
             "saving that became time saved; 100 % = all of it."),
    ("bound", "what limits the separable net by the roofline model (`mnbench peak` figures): compute, memory, or "
              "the fixed cost per layer (overhead); roofline = its predicted speedup."),
]


def cell(row: Mapping[str, Any], column: Column) -> str:
    key, _, fmt = column
    return fmt(row.get(key))


def profile_title(profile: Mapping[str, Any]) -> str:
    p = profile
    total = p.get("total_time_ms")
    total_text = f", total {ms(total)} ms" if isinstance(total, (int, float)) else ""
    return (f"{p.get('machine')} · {p.get('device')} ({p.get('runtime')}, {p.get('precision')}, "
            f"{p.get('threads')} threads) · {p.get('arch')} {p.get('variant')} w{plain(p.get('width'))} "
            f"r{p.get('resolution')} b{p.get('batch')}{total_text}")


def profile_categories(profile: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A profile's category rows, each with `mac_share` (profiles written before the rename call it `flop_share`)."""
    return [{**c, "mac_share": c.get("mac_share", c.get("flop_share"))}
            for c in profile.get("categories") or [] if isinstance(c, Mapping)]
