"""Shared pieces of the CLI: option aliases, list parsing, and one renderer for every listing."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterable, Sequence

import typer
from rich.console import Console
from rich.table import Table

from mnbench.config import ARCHS
from mnbench.errors import MnbenchError

# Results go to stdout; progress, warnings and notes to stderr so `--format json | jq` stays clean.
# Piped output (CI logs, `| less`) gets a wide table instead of Rich's 80-column fallback.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


ArchOpt = Annotated[str, typer.Option("--arch", "-a", help=f"One of {', '.join(ARCHS)}, a comma list, or 'all'.")]
WidthOpt = Annotated[str, typer.Option("--width", "-w", help="Width multiplier(s), comma-separated, e.g. 0.5,1.0.")]
ResolutionOpt = Annotated[str, typer.Option("--resolution", "-r", help="Input resolution(s), multiples of 32, comma-separated.")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Batch size.")]
ModelsDirOpt = Annotated[
    Path | None, typer.Option("--models-dir", envvar="MNBENCH_MODELS_DIR", help="Where ONNX files are cached (default: ./models).")
]
ReportsDirOpt = Annotated[
    Path | None, typer.Option("--reports-dir", envvar="MNBENCH_REPORTS_DIR", help="Where results go (default: ./reports).")
]


def parse_archs(spec: str) -> list[str]:
    if spec.strip() == "all":
        return list(ARCHS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in ARCHS:
            raise MnbenchError(f"unknown arch {name!r}; choose one of: {', '.join(ARCHS)}, or 'all'")
    return names or list(ARCHS)


def parse_numbers(spec: str, kind: str, cast: type) -> list:
    values = []
    for part in (p.strip() for p in spec.split(",")):
        try:
            values.append(cast(part))
        except ValueError:
            raise MnbenchError(f"{kind} must be a number or a comma list of numbers, got {part!r}") from None
    return values


def render(rows: Sequence[dict[str, Any]], fmt: Format | str, columns: Iterable[tuple[str, str]], *, title: str = "") -> None:
    """Print `rows` as JSON (every field) or as a Rich table of the given (key, header) columns."""
    if Format(fmt) is Format.json:
        print_json(list(rows))
        return
    table = Table(title=title or None)
    columns = list(columns)
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(format_cell(row.get(key)) for key, _ in columns))
    stdout.print(table)


def format_cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
