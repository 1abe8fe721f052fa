"""Shared pieces of the CLI: option aliases, list parsing, and the one output layer every command prints through.

Results go to stdout (a table, json, markdown or csv); progress, warnings and notes to stderr, so
`--format json | jq` stays clean.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Sequence

import typer
from rich.console import Console, RenderableType
from rich import box
from rich.table import Table
from rich.text import Text

from mnbench.config import ARCHS
from mnbench.errors import MnbenchError

# Piped or redirected (CI logs, `| less`), Rich would assume 80 columns and fold every cell: tables get this many.
PIPED_WIDTH = 200


def wide_console(piped_width: int = PIPED_WIDTH) -> Console:
    """A stdout console for tables: the terminal's width, or `piped_width` columns when stdout is not a terminal."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else piped_width)


stdout = wide_console()
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


def render(rows: Sequence[dict[str, Any]], fmt: Format | str, columns: Iterable[tuple[str, str]], *, title: str = "",
           compact: bool = False) -> None:
    """Print `rows` to stdout: json (every field), or the given (key, header) columns as a Rich table, markdown
    or csv. `compact`: a table without vertical rules, for answers that must fit 100 columns."""
    fmt = getattr(fmt, "value", fmt)
    columns = list(columns)
    if fmt == "json":
        print_json(list(rows))
    elif fmt == "markdown":
        lines = ["| " + " | ".join(header for _, header in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(format_cell(row.get(key)).replace("|", "\\|") for key, _ in columns) + " |"
                  for row in rows]
        write_text("\n".join(([f"## {title}", ""] if title else []) + lines) + "\n")
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([key for key, _ in columns])
        writer.writerows([[row.get(key) for key, _ in columns] for row in rows])
        write_text(out.getvalue())
    elif fmt == "table":
        table = Table(title=title or None, **({"box": box.SIMPLE_HEAD, "pad_edge": False, "show_edge": False,
                                                     "padding": (0, 1, 0, 0)} if compact else {}))
        for _, header in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(format_cell(row.get(key)) for key, _ in columns))
        stdout.print(table)
    else:
        raise MnbenchError(f"unknown output format {fmt!r}; choose one of table, json, markdown, csv")


def print_tables(*renderables: RenderableType, piped_width: int = PIPED_WIDTH) -> None:
    """Rich renderables to stdout, `piped_width` columns wide when piped."""
    wide_console(piped_width).print(*renderables)


def write_text(text: str) -> None:
    """Text already rendered (json, markdown, csv) to stdout, as is."""
    sys.stdout.write(text)


def note(message: str, *, style: str | None = None) -> None:
    """A note, warning or progress line on stderr, never folded."""
    stderr.print(Text(message, style=style or ""), soft_wrap=True)


@contextlib.contextmanager
def status(message: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr; yields the callback that updates its text (what library code reports progress to)."""
    if not enabled:
        yield lambda _message: None
        return
    with stderr.status(message) as spinner:
        yield lambda text: spinner.update(text)


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
    write_text(json.dumps(data, indent=2) + "\n")
