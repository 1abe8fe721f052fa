"""`mnbench report`: theoretical MAC savings against realized speedup, from saved result files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnbench import atomic
from mnbench.cli.common import ReportsDirOpt, note, print_tables, write_text
from mnbench.report.formats import FORMATS

# The choices of --format, from the report's own registry of formats.
ReportFormat = Enum("ReportFormat", {name: name for name in FORMATS}, type=str)


def report(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Result files or folders, searched for *.json (default: <reports-dir>/runs).",
        show_default=False)] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = ReportFormat.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report to this file (atomically) instead of stdout.")] = None,
    plots: Annotated[Path | None, typer.Option(
        "--plots", help="Also write the plots as PNG files into this folder.")] = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Theoretical speedup (MACs standard / separable) against realized speedup (min standard / separable),
    per machine and device, with 95 % CIs, achieved GMAC/s, device-peak shares and operator profiles."""
    from mnbench.report import default_result_paths, load_report, render, rich_tables
    from mnbench.report.text import TEXT_WIDTH

    result = load_report(paths or default_result_paths(reports_dir))
    for warning in result.load_warnings:
        note(f"warning: {warning}", style="yellow")
    result.check_not_empty()
    if output is None and fmt is ReportFormat.table:
        print_tables(*rich_tables(result), piped_width=TEXT_WIDTH)
    elif output is None:
        write_text(render(result, fmt.value))
    else:
        atomic.write_text(output, render(result, fmt.value))
        note(f"wrote {output}", style="dim")
    for line in result.warnings:  # the last one says what helps
        note(line if line is result.warnings[-1] else f"warning: {line}", style="yellow")
    if plots is not None:
        from mnbench.report.plots import write_plot_pngs

        for path in write_plot_pngs(result, plots):
            note(f"wrote {path}", style="dim")
