"""`mnbench report`: theoretical MAC savings against realized speedups, per machine and device.

`pairs` reads result files and pairs each separable record with its standard twin; `columns` holds the columns
and cell formatters every format shares; `text` writes the report as table/markdown/csv/json; `html` builds the
self-contained page; `plots` draws the figures (matplotlib, Agg); `formats` is the registry of output formats.
"""

from __future__ import annotations

import importlib
from typing import Any

# The package face, resolved on first use: the CLI reads `formats` at start-up, and importing `pairs` here would
# load scipy for every `mnbench --help`.
_EXPORTS = {
    "FORMATS": "mnbench.report.formats", "render": "mnbench.report.formats",
    "Report": "mnbench.report.pairs", "build_report": "mnbench.report.pairs",
    "default_result_paths": "mnbench.report.pairs", "load_report": "mnbench.report.pairs",
    "rich_tables": "mnbench.report.text",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mnbench.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
