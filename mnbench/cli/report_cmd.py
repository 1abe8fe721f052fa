"""`mnbench report`: theoretical MAC savings against realized speedup, from saved result files."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from mnbench import atomic
from mnbench.cli.common import ReportsDirOpt, stderr, stdout


class ReportFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"
    html = "html"


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
    """Theoretical speedup (MACs standard / separable) against realized speedup (p50 standard / separable),
    per machine and device, with 95 % CIs, achieved GMAC/s, device-peak shares and operator profiles."""
    from mnbench.report import default_result_paths, load_report, render, rich_tables

    result = load_report(paths or default_result_paths(reports_dir))
    for warning in result.load_warnings:
        stderr.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    result.check_not_empty()
    if output is None and fmt is ReportFormat.table:
        # Piped or redirected, Rich would assume 80 columns and fold every cell; give the table room instead.
        console = stdout if stdout.is_terminal else Console(width=240, soft_wrap=True)
        console.print(*rich_tables(result))
    elif output is None:
        sys.stdout.write(render(result, fmt.value))
    else:
        atomic.write_text(output, render(result, fmt.value))
        stderr.print(Text(f"wrote {output}", style="dim"), soft_wrap=True)
    if plots is not None:
        from mnbench.report.plots import write_plot_pngs

        for path in write_plot_pngs(result, plots):
            stderr.print(Text(f"wrote {path}", style="dim"), soft_wrap=True)
