"""The report's output formats: one registry, from which `mnbench report --format` takes its choices."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from mnbench.report.pairs import Report

# name -> (module, function) of its renderer, a pure function of a Report, in the order `--format` lists them.
# Renderers are imported when used, so the CLI lists the names without loading the report's statistics (scipy,
# most of a second) or, for every format but html, matplotlib.
FORMATS: dict[str, tuple[str, str]] = {
    "table": ("mnbench.report.text", "to_text"),
    "markdown": ("mnbench.report.text", "to_markdown"),
    "csv": ("mnbench.report.text", "to_csv"),
    "json": ("mnbench.report.text", "to_json"),
    "html": ("mnbench.report.html", "to_html"),
    "bmf": ("mnbench.report.ci_formats", "to_bmf"),
    "github-action-benchmark": ("mnbench.report.ci_formats", "to_github_action_benchmark"),
    "pytest-benchmark": ("mnbench.report.ci_formats", "to_pytest_benchmark"),
}


def renderer(fmt: str) -> Callable[[Report], str]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module, function = FORMATS[fmt]
    return getattr(importlib.import_module(module), function)


def render(report: Report, fmt: str) -> str:
    """The whole report as text in `fmt` (one of FORMATS)."""
    return renderer(fmt)(report)
