"""The report as text: a Rich table, markdown, csv or json. Pure functions of a `Report`.

Cell formatting lives here too (`cell`), so every format shows the same numbers the same way.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from typing import Any, Callable, Mapping

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mnbench.report.pairs import Report

FORMATS = ("table", "markdown", "csv", "json", "html")

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
    ("macs_standard", "MACs std", millions), ("macs_separable", "MACs sep", millions),
    ("theoretical_speedup", "theoretical", speedup),
    ("p50_ms_standard", "p50 std (ms)", ms), ("p50_ms_separable", "p50 sep (ms)", ms),
    ("realized_speedup", "realized", speedup), ("realized_speedup_ci", "95% CI", interval),
    ("efficiency", "realized/theor.", percent),
    ("gmacs_per_s_standard", "GMAC/s std", number), ("gmacs_per_s_separable", "GMAC/s sep", number),
    ("peak_share_standard", "peak std", percent), ("peak_share_separable", "peak sep", percent),
]
UNPAIRED_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("runtime", "runtime", plain),
    ("threads", "threads", plain), ("arch", "arch", plain), ("variant", "variant", plain),
    ("width", "width", plain), ("resolution", "res", plain), ("batch", "batch", plain),
    ("precision", "precision", plain), ("macs", "MACs", millions), ("p50_ms", "p50 (ms)", ms),
    ("gmacs_per_s", "GMAC/s", number), ("peak_share", "peak", percent), ("missing", "missing", plain),
]
PROFILE_COLUMNS: list[Column] = [
    ("category", "category", plain), ("macs", "MACs", millions), ("flop_share", "MAC share", percent),
    ("time_ms", "time (ms)", ms), ("time_share", "time share", percent), ("gmacs_per_s", "GMAC/s", number),
]
# csv: every row field, the CI split into two numeric columns.
CSV_COLUMNS = ("machine", "device", "runtime", "threads", "arch", "width", "resolution", "batch", "precision",
               "macs_standard", "macs_separable", "theoretical_speedup", "p50_ms_standard", "p50_ms_separable",
               "realized_speedup", "realized_speedup_ci_lo", "realized_speedup_ci_hi", "efficiency",
               "gmacs_per_s_standard", "gmacs_per_s_separable", "peak_gmacs_per_s", "peak_share_standard",
               "peak_share_separable", "n_standard", "n_separable", "source_standard", "source_separable")

LEGEND = [
    ("theoretical", "MACs of standard / MACs of separable: the speedup if time followed MACs."),
    ("realized", "p50 latency of standard / p50 latency of separable, measured in the same settings."),
    ("95% CI", "bootstrap interval of the realized speedup from the raw latency samples."),
    ("realized/theor.", "how much of the MAC saving became time saved (100 % = all of it)."),
    ("GMAC/s", "achieved rate: MACs per image x batch / p50 latency."),
    ("peak", "achieved GMAC/s as a share of the device's measured peak (where `mnbench peak` ran)."),
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
    return [c for c in profile.get("categories") or [] if isinstance(c, Mapping)]


def render(report: Report, fmt: str) -> str:
    """The whole report as text in `fmt` (one of FORMATS)."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "markdown":
        return to_markdown(report)
    if fmt == "table":
        return to_text(report)
    if fmt == "html":
        from mnbench.report.html import to_html  # pulls in matplotlib

        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def to_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2) + "\n"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        lo, hi = row["realized_speedup_ci"] or (None, None)
        writer.writerow({**row, "realized_speedup_ci_lo": lo, "realized_speedup_ci_hi": hi})
    return out.getvalue()


def to_markdown(report: Report) -> str:
    parts = ["# Theoretical MAC savings against realized speedup", ""]
    parts += _markdown_table(PAIR_COLUMNS, report.rows) if report.rows else ["No separable/standard pairs."]
    parts += ["", *[f"- **{term}**: {text}" for term, text in LEGEND]]
    if report.unpaired:
        parts += ["", "## Unpaired records", "", *_markdown_table(UNPAIRED_COLUMNS, report.unpaired)]
    for profile in report.profiles:
        parts += ["", f"## Profile: {_md_escape(profile_title(profile))}", "",
                  *_markdown_table(PROFILE_COLUMNS, profile_categories(profile))]
    if report.notes:
        parts += ["", "## Notes", "", *[f"- {_md_escape(note)}" for note in report.notes]]
    if report.load_warnings:
        parts += ["", "## Skipped files", "", *[f"- {_md_escape(w)}" for w in report.load_warnings]]
    return "\n".join(parts) + "\n"


def rich_tables(report: Report) -> list[RenderableType]:
    """Rich renderables for the terminal: the pair table, unpaired records, profiles, then notes."""
    # The terminal is narrow: arch, width and resolution share one column, runtime goes (the device implies it).
    merged = ("runtime", "arch", "width", "resolution")
    shown = [c for c in PAIR_COLUMNS if c[0] not in merged]
    shown.insert(2, ("model", "model", plain))
    rows = [{**row, "model": f"{row['arch']} w{row['width']:g} r{row['resolution']}"} for row in report.rows]
    out: list[RenderableType] = [_rich_table("Theoretical MAC savings against realized speedup", shown, rows)]
    if report.unpaired:
        out.append(_rich_table("Unpaired records (the other variant was not run)", UNPAIRED_COLUMNS, report.unpaired))
    for profile in report.profiles:
        out.append(_rich_table(f"Profile: {profile_title(profile)}", PROFILE_COLUMNS, profile_categories(profile)))
    legend = Text("\n".join(f"{term}: {text}" for term, text in LEGEND), style="dim")
    out.append(legend)
    if report.notes:
        out.append(Text("\n".join(f"note: {note}" for note in report.notes), style="yellow"))
    return out


def to_text(report: Report, *, width: int = 240) -> str:
    """The Rich tables as plain text (for `--format table --output FILE`)."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(Group(*rich_tables(report)))
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def _rich_table(title: str, columns: list[Column], rows: list[Mapping[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for key, header, fmt in columns:
        numeric = fmt is not plain or key in ("threads", "width", "resolution", "batch")
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell(row, column)) for column in columns))
    return table


def _markdown_table(columns: list[Column], rows: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join("---" if fmt is plain else "---:" for _, _, fmt in columns) + "|"]
    lines += ["| " + " | ".join(_md_escape(cell(row, column)) for column in columns) + " |" for row in rows]
    return lines


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
