"""The report as ONE self-contained HTML page: no external resources, plots inlined as SVG, all text escaped.

Order: title; the answer (one or two sentences per device, `answer.py`); one line per machine with its details
folded away; the speedup plot; a roofline plot per device (where `report/roofline_plot.py` draws one); the pair
table with legend, warnings and notes; unpaired records; ablations; the parallelism curve with its plot, memory per
model, int8 against fp32 and openvino-ep beside openvino and cpu (the rows markdown and the terminal show); the
other plots; profiles.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from html import escape
from typing import Any, Iterable, Mapping

from mnbench.report.ablations import ABLATION_COLUMNS, ABLATION_LEGEND, display_rows
from mnbench.report.answer import KEEPS_MEANS, answers
from mnbench.report.columns import (LEGEND, PAIR_COLUMNS, PROFILE_COLUMNS, UNPAIRED_COLUMNS, Column, cell, plain,
                                    profile_categories, profile_title)
from mnbench.report.pairs import Report, min_ms
from mnbench.report.precision_pairs import INT8_COLUMNS, INT8_LEGEND
from mnbench.report.curves import CURVE_COLUMNS, CURVE_LEGEND
from mnbench.report.memory_rows import MEMORY_COLUMNS, MEMORY_LEGEND, memory_rows
from mnbench.report.user_predictions import USER_PREDICTION_COLUMNS, USER_PREDICTION_LEGEND, user_model_predictions
from mnbench.report.providers import PROVIDER_COLUMNS, PROVIDER_LEGEND, provider_rows
from mnbench.report.plots import PLOTS, figure_svg, plot_style, render_plots

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
#answer p { font-size: 1.1em; max-width: 60em; }
#answer p.how { font-size: 0.85em; color: #555; }
details.machine summary { cursor: pointer; }
"""
# The roofline helper's module, drawn when it is there: `roofline_figures(report) -> {device label: Figure}`.
ROOFLINE_MODULE = "mnbench.report.roofline_plot"


def to_html(report: Report) -> str:
    plots = render_plots(report, "svg")
    body = [f"<h1>{escape(TITLE)}</h1>", *_answer(report), *_machines(report)]
    if "speedup" in plots:
        body.append(_figure("speedup", plots["speedup"], PLOTS["speedup"][0]))
    body += _rooflines(report)
    body += [f"<h2>Theoretical against realized speedup</h2>",
             f"<p>{len(report.rows)} pair(s) from {len(report.sources)} result file(s).</p>",
             _table(PAIR_COLUMNS, report.rows) if report.rows else "<p>No separable/standard pairs.</p>",
             "<dl>", *[f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in LEGEND], "</dl>"]
    if report.warnings:
        body += ['<h3 id="warnings">Warnings</h3>', _list(report.warnings)]
    if report.notes:
        body += ["<h3>Notes</h3>", _list(report.notes)]
    if report.load_warnings:
        body += ["<h3>Skipped files</h3>", _list(report.load_warnings)]
    if report.unpaired:
        body += ["<h2>Unpaired records</h2>", "<p>Only one variant of these models was run.</p>",
                 _table(UNPAIRED_COLUMNS, report.unpaired)]
    if predicted := user_model_predictions(report):
        body += ['<h2 id="user-predictions">Your models: predicted beside measured</h2>',
                 _table(USER_PREDICTION_COLUMNS, predicted), _legend(USER_PREDICTION_LEGEND)]
    if report.ablations:
        body += ['<h2 id="ablations">Design claims (mnbench ablate)</h2>',
                 _table(ABLATION_COLUMNS, display_rows(report.ablations)),
                 "<dl>", *[f"<dt>{escape(t)}</dt><dd>{escape(x)}</dd>" for t, x in ABLATION_LEGEND], "</dl>"]
    if curves := report.curves:  # the same rows and columns as markdown and the terminal show
        body += ['<h2 id="parallelism">Speedup against parallelism (threads × batch)</h2>',
                 _table(CURVE_COLUMNS, curves), _legend(CURVE_LEGEND)]
        if "parallelism" in plots:
            body.append(_figure("parallelism", plots.pop("parallelism"), PLOTS["parallelism"][0]))
    if memory := memory_rows(report.records):
        body += ['<h2 id="memory">Memory per model</h2>', _table(MEMORY_COLUMNS, memory), _legend(MEMORY_LEGEND)]
    if report.int8:  # the same rows and columns as markdown and the terminal show
        body += ['<h2 id="int8">int8 against fp32</h2>', _table(INT8_COLUMNS, report.int8), _legend(INT8_LEGEND)]
    if providers := provider_rows(report.records, min_ms=min_ms):
        body += ['<h2 id="openvino-ep">openvino-ep beside openvino and cpu</h2>',
                 _table(PROVIDER_COLUMNS, providers), _legend(PROVIDER_LEGEND)]
    others = {name: svg for name, svg in plots.items() if name != "speedup"}
    if others:
        body.append("<h2>More plots</h2>")
        body += [_figure(name, svg, PLOTS[name][0]) for name, svg in others.items()]
    if report.profiles:
        body.append("<h2>Operator profiles</h2>")
        for profile in report.profiles:
            body += [f"<h3>{escape(profile_title(profile))}</h3>", _table(PROFILE_COLUMNS, profile_categories(profile))]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(TITLE)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _answer(report: Report) -> list[str]:
    found = answers(report)
    if not found:
        return ['<section id="answer"><p>No separable/standard pairs to answer from.</p></section>']
    out = ['<section id="answer">', *[f"<p>{escape(' '.join(a.sentences))}</p>" for a in found],
           f'<p class="how">{escape(KEEPS_MEANS)}</p>']
    if report.warnings:
        out.append(f'<p class="note">{len(report.warnings)} <a href="#warnings">warning(s)</a> bear on these '
                   "figures.</p>")
    return out + ["</section>"]


def _figure(name: str, svg: str, caption: str) -> str:
    return (f'<figure id="plot-{name}">{inline_svg(svg, prefix=name)}'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _rooflines(report: Report) -> list[str]:
    """A roofline plot per device, from the roofline module where it exists (it is optional: absent, none)."""
    if importlib.util.find_spec(ROOFLINE_MODULE) is None:
        return []
    build = getattr(importlib.import_module(ROOFLINE_MODULE), "roofline_figures", None)
    with plot_style():  # fonts are fixed when artists are made, as in render_plots
        figures = build(report) if build is not None else {}
    out = ["<h2>Roofline per device</h2>"] if figures else []
    for i, (device, fig) in enumerate(figures.items()):
        out.append(_figure(f"roofline-{i}", figure_svg(fig), f"Roofline on {device}: attainable GMAC/s against "
                                                              "arithmetic intensity (MACs per byte)"))
    return out


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
    """One line per machine (what ran where); the full machine record folded away under it."""
    out = []
    for label, machine in report.machines.items():
        rows = list(_flatten(machine))
        peaks = report.peaks.get(label, {})
        for device, peak in peaks.items():
            method = peak.get("method", "method not recorded")
            rows.append((f"peak on {device}", f"{peak['gmacs_per_s']:,.1f} GMAC/s ({method})"))
        out += ['<details class="machine">', f"<summary>{escape(machine_line(label, machine, peaks))}</summary>",
                "<table>", *[f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows],
                "</table>", "</details>"]
    return out


def machine_line(label: str, machine: Mapping[str, Any], peaks: Mapping[str, Mapping[str, Any]]) -> str:
    """"bench-xeon: Intel(R) Xeon(R) Gold 6338, 32 cores / 64 threads, 251.6 GB, Linux-6.8...; onnxruntime 1.32.0,
    openvino 2026.4.0; peak cpu 512.0 GMAC/s": what a reader needs to place the figures, on one line."""
    parts = [str(machine[key]) for key in ("cpu_model",) if machine.get(key)]
    # Today's machine info says physical_cores/logical_cpus/memory_gib; files before 2026-12 cores_*/memory_gb.
    cores = machine.get("physical_cores", machine.get("cores_physical"))
    threads = machine.get("logical_cpus", machine.get("cores_logical"))
    if cores or threads:
        parts.append(f"{plain(cores)} cores / {plain(threads)} threads")
    if isinstance(machine.get("memory_gib"), (int, float)):
        parts.append(f"{machine['memory_gib']:g} GiB")
    elif isinstance(machine.get("memory_gb"), (int, float)):
        parts.append(f"{machine['memory_gb']:g} GB")
    if machine.get("os"):
        parts.append(str(machine["os"]))
    versions = machine.get("versions") if isinstance(machine.get("versions"), Mapping) else {}
    runtimes = [f"{name} {versions[name]}" for name in ("onnxruntime", "openvino") if versions.get(name)]
    peak_text = [f"peak {device} {peak['gmacs_per_s']:,.1f} GMAC/s" for device, peak in peaks.items()]
    return f"{label}: " + "; ".join(part for part in (", ".join(parts), ", ".join(runtimes), ", ".join(peak_text))
                                    if part)


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


def _legend(terms: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in terms) + "</dl>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f'<li class="note">{escape(item)}</li>' for item in items) + "</ul>"
