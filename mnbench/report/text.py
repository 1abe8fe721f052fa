"""The report as text: a Rich table, markdown, csv or json. Pure functions of a `Report`."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mnbench.report.columns import (CSV_COLUMNS, LEGEND, PAIR_COLUMNS, PROFILE_COLUMNS, UNPAIRED_COLUMNS, Column, cell,
                                    plain, profile_categories, profile_title)
from mnbench.report.ablations import ABLATION_COLUMNS, ABLATION_LEGEND, display_rows
from mnbench.report.pairs import Report, min_ms
from mnbench.report.providers import PROVIDER_COLUMNS, PROVIDER_LEGEND, provider_rows
from mnbench.report.precision_pairs import INT8_COLUMNS, INT8_LEGEND
from mnbench.report.curves import CURVE_COLUMNS, CURVE_LEGEND
from mnbench.report.memory_rows import MEMORY_COLUMNS, MEMORY_LEGEND, memory_rows
from mnbench.report.user_predictions import USER_PREDICTION_COLUMNS, USER_PREDICTION_LEGEND, user_model_predictions

# Columns of the text table written to a file or a pipe: the pair table has 18 columns.
TEXT_WIDTH = 240

def to_json(report: Report) -> str:
    providers = provider_rows(report.records, min_ms=min_ms)
    return json.dumps(report.as_json() | ({"openvino_ep": providers} if providers else {}), indent=2) + "\n"


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
    if predicted := user_model_predictions(report):
        parts += ["", "## Your models: predicted beside measured", "",
                  *_markdown_table(USER_PREDICTION_COLUMNS, predicted), "",
                  *[f"- **{term}**: {text}" for term, text in USER_PREDICTION_LEGEND]]
    if report.ablations:
        parts += ["", "## Design claims (mnbench ablate)", "",
                  *_markdown_table(ABLATION_COLUMNS, display_rows(report.ablations)), "",
                  *[f"- **{term}**: {text}" for term, text in ABLATION_LEGEND]]
    if curves := report.curves:
        parts += ["", "## Speedup against parallelism (threads × batch)", "", *_markdown_table(CURVE_COLUMNS, curves),
                  "", *[f"- **{term}**: {text}" for term, text in CURVE_LEGEND]]
    if memory := memory_rows(report.records):
        parts += ["", "## Memory per model", "", *_markdown_table(MEMORY_COLUMNS, memory), "",
                  *[f"- **{term}**: {text}" for term, text in MEMORY_LEGEND]]
    if report.int8:
        parts += ["", "## int8 against fp32", "", *_markdown_table(INT8_COLUMNS, report.int8), "",
                  *[f"- **{term}**: {text}" for term, text in INT8_LEGEND]]
    if providers := provider_rows(report.records, min_ms=min_ms):
        parts += ["", "## openvino-ep beside openvino and cpu", "", *_markdown_table(PROVIDER_COLUMNS, providers), "",
                  *[f"- **{term}**: {text}" for term, text in PROVIDER_LEGEND]]
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
    if predicted := user_model_predictions(report):
        out += [_rich_table("Your models: predicted (mnbench predict) beside measured", USER_PREDICTION_COLUMNS,
                            predicted),
                Text("\n".join(f"{term}: {text}" for term, text in USER_PREDICTION_LEGEND), style="dim")]
    if report.ablations:
        out += [_rich_table("Design claims (mnbench ablate)", ABLATION_COLUMNS, display_rows(report.ablations)),
                Text("\n".join(f"{term}: {text}" for term, text in ABLATION_LEGEND), style="dim")]
    if curves := report.curves:
        out += [_rich_table("Speedup against parallelism (threads × batch)", CURVE_COLUMNS, curves),
                Text("\n".join(f"{term}: {text}" for term, text in CURVE_LEGEND) + "\n", style="dim")]
    if memory := memory_rows(report.records):
        out += [_rich_table("Memory per model", MEMORY_COLUMNS, memory),
                Text("\n".join(f"{term}: {text}" for term, text in MEMORY_LEGEND) + "\n", style="dim")]
    if report.int8:
        out += [_rich_table("int8 against fp32", INT8_COLUMNS, report.int8),
                Text("\n".join(f"{term}: {text}" for term, text in INT8_LEGEND) + "\n", style="dim")]
    if providers := provider_rows(report.records, min_ms=min_ms):
        out += [_rich_table("openvino-ep beside openvino and cpu (the provider's own cost)", PROVIDER_COLUMNS, providers),
                Text("\n".join(f"{term}: {text}" for term, text in PROVIDER_LEGEND) + "\n", style="dim")]
    for profile in report.profiles:
        out.append(_rich_table(f"Profile: {profile_title(profile)}", PROFILE_COLUMNS, profile_categories(profile)))
    legend = Text("\n".join(f"{term}: {text}" for term, text in LEGEND), style="dim")
    out.append(legend)
    if report.notes:
        out.append(Text("\n".join(f"note: {note}" for note in report.notes), style="yellow"))
    return out


def to_text(report: Report, *, width: int = TEXT_WIDTH) -> str:
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
