"""`mnbench report`: theoretical MAC savings against realized speedups, per machine and device.

`pairs` reads result files and pairs each separable record with its standard twin; `render` writes the report
as table/markdown/csv/json; `html` builds the self-contained page; `plots` draws the figures (matplotlib, Agg).
"""

from mnbench.report.pairs import Report, build_report, default_result_paths, load_report
from mnbench.report.render import FORMATS, render, rich_tables

__all__ = ["FORMATS", "Report", "build_report", "default_result_paths", "load_report", "render", "rich_tables"]
