"""The report as ONE self-contained HTML page: no external resources, plots inlined as SVG, all text escaped.

Order: title, machines, the pair table (with legend and notes), unpaired records, plots, profiles.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any, Iterable, Mapping

from mnbench.report.columns import (LEGEND, PAIR_COLUMNS, PROFILE_COLUMNS, UNPAIRED_COLUMNS, Column, cell, plain,
                                    profile_categories, profile_title)
from mnbench.report.pairs import Report
from mnbench.report.plots import PLOTS, render_plots

TITLE = "mnbench: theoretical MAC savings against realized speedup"
_MAX_LIST_ITEMS = 12  # CPU flag lists run to hundreds; the page shows the first few
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; }
figure svg { max-width: 100%; height: auto; }
.note { color: #8a5a00; }
"""


def to_html(report: Report) -> str:
    plots = render_plots(report, "svg")
    body = [f"<h1>{escape(TITLE)}</h1>",
            f"<p>{len(report.rows)} pair(s) from {len(report.sources)} result file(s).</p>",
            "<h2>Machines</h2>", *_machines(report)]
    body += ["<h2>Theoretical against realized speedup</h2>",
             _table(PAIR_COLUMNS, report.rows) if report.rows else "<p>No separable/standard pairs.</p>",
             "<dl>", *[f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in LEGEND], "</dl>"]
    if report.warnings:
        body += ["<h3>Warnings</h3>", _list(report.warnings)]
    if report.notes:
        body += ["<h3>Notes</h3>", _list(report.notes)]
    if report.load_warnings:
        body += ["<h3>Skipped files</h3>", _list(report.load_warnings)]
    if report.unpaired:
        body += ["<h2>Unpaired records</h2>", "<p>Only one variant of these models was run.</p>",
                 _table(UNPAIRED_COLUMNS, report.unpaired)]
    if plots:
        body.append("<h2>Plots</h2>")
        for name, svg in plots.items():
            caption = PLOTS[name][0]
            body.append(f'<figure id="plot-{name}">{inline_svg(svg, prefix=name)}'
                        f"<figcaption>{escape(caption)}</figcaption></figure>")
    if report.profiles:
        body.append("<h2>Operator profiles</h2>")
        for profile in report.profiles:
            body += [f"<h3>{escape(profile_title(profile))}</h3>", _table(PROFILE_COLUMNS, profile_categories(profile))]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(TITLE)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def inline_svg(svg: str, *, prefix: str) -> str:
    """A matplotlib SVG file made fit to inline in HTML: no XML prolog, DOCTYPE, metadata, comments or
    namespace URLs (HTML5 puts inline <svg> in the SVG namespace itself), and ids prefixed so that several
    plots on one page cannot clash. The result is still well-formed XML."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")  # SVG 2 spelling: no xlink namespace needed
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)


def _machines(report: Report) -> list[str]:
    out = []
    for label, machine in report.machines.items():
        rows = list(_flatten(machine))
        for device, peak in report.peaks.get(label, {}).items():
            method = peak.get("method", "method not recorded")
            rows.append((f"peak on {device}", f"{peak['gmacs_per_s']:,.1f} GMAC/s ({method})"))
        out += [f"<h3>{escape(label)}</h3>", "<table>",
                *[f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows], "</table>"]
    return out


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    """Machine info as (key, text) pairs; nested dicts become dotted keys, long lists are cut short."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            shown = ", ".join(map(str, value[:_MAX_LIST_ITEMS]))
            more = f" … ({len(value) - _MAX_LIST_ITEMS} more)" if len(value) > _MAX_LIST_ITEMS else ""
            yield name, shown + more
        else:
            yield name, "–" if value is None else str(value)


def _table(columns: list[Column], rows: list[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for _, header, _ in columns)
    body = "".join("<tr>" + "".join(_td(cell(row, column), numeric=column[2] is not plain) for column in columns)
                   + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _td(text: str, *, numeric: bool) -> str:
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f'<li class="note">{escape(item)}</li>' for item in items) + "</ul>"
