"""The report's tables alike in every format: html shows the same rows, columns and cells as markdown (and, for the
int8 and openvino-ep sections, the terminal), from the same report rows.

Fixtures: the real fp32 and int8 runs in fixtures/int8/ (V1 w0.25 r96 on cpu and openvino) and the synthetic
openvino-ep run of the same models on the same machine in fixtures/sections/ (make_fixtures.py). Nothing is measured.
"""
import html as html_lib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from html_helpers import html_rows  # tests/ is on sys.path under pytest
from mnbench import results
from mnbench.report import build_report, render
from mnbench.report.columns import PAIR_COLUMNS, UNPAIRED_COLUMNS, cell
from mnbench.report.html import machine_line
from mnbench.report.pairs import min_ms
from mnbench.report.precision_pairs import INT8_COLUMNS
from mnbench.report.providers import PROVIDER_COLUMNS, provider_rows
from record_helpers import repetition_fastest

FIXTURES = Path(__file__).parent / "fixtures"
FILES = sorted((FIXTURES / "int8").glob("*.json")) + [FIXTURES / "sections" / "openvino-ep-v1-w0.25-r96.json"]
SECTIONS = {"int8": ("int8 against fp32", INT8_COLUMNS),
            "openvino-ep": ("openvino-ep beside openvino and cpu", PROVIDER_COLUMNS)}


@pytest.fixture(scope="module")
def report():
    return build_report([(path, results.load_result(path)) for path in FILES])


def _rows(report, section):
    return report.int8 if section == "int8" else provider_rows(report.records, min_ms=min_ms)


def _html_table(page, section):
    """Header and cells of the table that follows the section's heading."""
    match = re.search(rf'<h2 id="{section}">[^<]*</h2>\s*<table>(.*?)</table>', page, flags=re.S)
    assert match, f"the html has no {section} section"
    head = [html_lib.unescape(h) for h in re.findall(r"<th>(.*?)</th>", match.group(1))]
    return head, html_rows(match.group(1).split("<tbody>")[1])


def _markdown_table(text, title, level="##"):
    lines = text.splitlines()
    start = lines.index(f"{level} {title}") + 2
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split(" | ")])
    return table[0], table[2:]  # header; the |---| line; rows


@pytest.mark.parametrize("section", SECTIONS)
def test_html_shows_the_sections_markdown_shows_cell_for_cell(report, section):
    title, columns = SECTIONS[section]
    rows = _rows(report, section)
    assert len(rows) == 4 if section == "int8" else len(rows) == 2  # per device/variant; per variant
    expected = [[cell(row, column) for column in columns] for row in rows]
    html_head, html_body = _html_table(render(report, "html"), section)
    md_head, md_body = _markdown_table(render(report, "markdown"), title)
    assert html_head == md_head == [header for _, header, _ in columns]
    assert html_body == md_body == expected
    assert _terminal_table(render(report, "table"), title) == expected


def _terminal_table(text, title):
    """The cells of the Rich table whose title starts with `title` (as `report --format table` writes it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("└"):
            return rows
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    raise AssertionError(f"no end to the {title} table")


def test_html_pair_and_unpaired_tables_show_every_column_markdown_shows():
    report = build_report(results.load_results([FIXTURES / "results"]))
    page, markdown = render(report, "html"), render(report, "markdown")
    for heading, md_title, level, columns, rows in (
            ("Theoretical against realized speedup", "Theoretical MAC savings against realized speedup", "#",
             PAIR_COLUMNS, report.rows),
            ("Unpaired records", "Unpaired records", "##", UNPAIRED_COLUMNS, report.unpaired)):
        match = re.search(rf"<h2>{heading}</h2>.*?<table>(.*?)</table>", page, flags=re.S)
        head = [html_lib.unescape(h) for h in re.findall(r"<th>(.*?)</th>", match.group(1))]
        body = html_rows(match.group(1).split("<tbody>")[1])
        md_head, md_body = _markdown_table(markdown, md_title, level)
        assert head == md_head == [header for _, header, _ in columns]
        assert body == md_body == [[cell(row, column) for column in columns] for row in rows]
        assert len(body) == (5 if columns is PAIR_COLUMNS else 1)


def test_the_openvino_ep_figures_are_the_files_own(report):
    """ep / native from the files' samples, worked out here: each latency the geometric mean of its repetitions'
    fastest calls."""
    by_device = {}
    for path in FILES:
        for r in json.loads(path.read_text())["records"]:
            if r["precision"] == "fp32" and (r.get("requested_precision") or "fp32") == "fp32":
                by_device[(r["device"], r["variant"])] = math.exp(np.mean(np.log(repetition_fastest(r))))
    rows = {row["model"].split()[1]: row for row in _rows(report, "openvino-ep")}
    for variant, row in rows.items():
        ep, native, cpu = (by_device[(d, variant)] for d in ("openvino-ep", "openvino", "cpu"))
        assert row["ep_over_native"] == pytest.approx(ep / native, rel=1e-9)
        assert row["cpu_over_ep"] == pytest.approx(cpu / ep, rel=1e-9)
        assert 1.05 < row["ep_over_native"] < 1.3  # the fixture's provider is ~15 % slower than native


def test_without_int8_or_openvino_ep_records_the_html_has_neither_section():
    path = FIXTURES / "results" / "bench-xeon-2026-11-27.json"
    page = render(build_report([(path, results.load_result(path))]), "html")
    assert 'id="int8"' not in page and 'id="openvino-ep"' not in page


def test_the_machine_line_reads_todays_and_older_machine_keys():
    today = json.loads((FIXTURES / "results" / "bench-xeon-2026-11-27.json").read_text())["machine"]
    older = json.loads((FIXTURES / "results" / "bench-xeon-2026-11-20.json").read_text())["machine"]
    assert "32 cores / 64 threads, 251.6 GiB" in machine_line("bench-xeon", today, {})
    assert "32 cores / 64 threads, 251.6 GB" in machine_line("bench-xeon", older, {})
