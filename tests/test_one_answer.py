"""One answer, shown alike everywhere: on a real run, the realized speedup is exactly the ratio of the two latencies
beside it, and every format (the run's table, the report's table, markdown, csv, json, html, and the CI trackers'
latencies) shows the same figures for the same records.

The fixture is a slice of a real `mnbench run --arch all --device cpu,openvino` (2026-12-07, AMD EPYC family 25, a
2-vCPU shared VM, one thread, ten repetitions per pair each in a fresh worker process): V2 on `cpu`, and V3-Small
on `openvino`, whose repetitions moved most (a burst-prone pair). Nothing is measured here.
"""
import csv
import io
import json
from pathlib import Path

import pytest

from html_helpers import html_rows  # tests/ is on sys.path under pytest
from mnbench import results
from mnbench.cli.run_cmd import summary_rows
from mnbench.report import build_report, render
from mnbench.report.columns import interval, ms, percent, speedup

REAL = Path(__file__).parent / "fixtures" / "real" / "vm-epyc-zen3-2026-12-07.json"


@pytest.fixture(scope="module")
def doc():
    return results.load_result(REAL)


@pytest.fixture(scope="module")
def report(doc):
    return build_report([(REAL, doc)])


def _rows(report):
    return {(row["arch"], row["device"]): row for row in report.rows}


def test_the_realized_speedup_is_the_ratio_of_the_latencies_beside_it(report):
    rows = _rows(report)
    assert set(rows) == {("v2", "cpu"), ("v3-small", "openvino")}
    for row in rows.values():
        assert row["realized_speedup"] == pytest.approx(row["min_ms_standard"] / row["min_ms_separable"], rel=1e-12)
        assert row["share_kept"] == pytest.approx(row["realized_speedup"] / row["theoretical_speedup"], rel=1e-12)
        lo, hi = row["realized_speedup_ci"]
        assert lo < row["realized_speedup"] < hi
        assert row["repetitions"] == 10 and row["runs"] == 1
    # The bursty pair's repetitions spread more, and its interval says so.
    assert rows[("v3-small", "openvino")]["realized_speedup_halfwidth"] > rows[("v2", "cpu")]["realized_speedup_halfwidth"]


def test_rounded_latencies_shown_divide_to_the_speedup_shown_within_half_a_percent(report):
    for row in report.rows:
        shown = float(ms(row["min_ms_standard"])) / float(ms(row["min_ms_separable"]))
        assert shown == pytest.approx(float(speedup(row["realized_speedup"])[:-1]), rel=0.005)


def test_the_runs_table_shows_the_reports_figures(doc, report):
    run_rows, _ = summary_rows(doc)
    for row in report.rows:
        (shown,) = [r for r in run_rows if (r["device"], r["arch"]) == (row["device"], row["arch"])]
        assert shown["min_standard"] == ms(row["min_ms_standard"])
        assert shown["min_separable"] == ms(row["min_ms_separable"])
        assert shown["realized"] == speedup(row["realized_speedup"])
        assert shown["interval"] == interval(row["realized_speedup_ci"])
        assert shown["kept"] == percent(row["share_kept"])


def test_markdown_csv_json_and_html_show_the_same_cells(report):
    json_rows = {(r["arch"], r["device"]): r for r in json.loads(render(report, "json"))["rows"]}
    csv_rows = {(r["arch"], r["device"]): r for r in csv.DictReader(io.StringIO(render(report, "csv")))}
    markdown = render(report, "markdown")
    page = render(report, "html")
    html_cells = html_rows(page)
    for key, row in _rows(report).items():
        assert json_rows[key]["realized_speedup"] == row["realized_speedup"]
        assert json_rows[key]["min_ms_standard"] == row["min_ms_standard"]
        assert float(csv_rows[key]["realized_speedup"]) == pytest.approx(row["realized_speedup"], rel=1e-12)
        assert float(csv_rows[key]["min_ms_separable"]) == pytest.approx(row["min_ms_separable"], rel=1e-12)
        assert float(csv_rows[key]["realized_speedup_ci_lo"]) == pytest.approx(row["realized_speedup_ci"][0])
        cells = [ms(row["min_ms_standard"]), ms(row["min_ms_separable"]), speedup(row["theoretical_speedup"]),
                 speedup(row["realized_speedup"]), interval(row["realized_speedup_ci"]), percent(row["share_kept"])]
        assert "| " + " | ".join(cells) + " |" in markdown
        in_html = [c for c in html_cells if key[1] in c and cells[3] in c]
        assert in_html and all(cell in in_html[0] for cell in cells), "the html pair table lost a cell"


@pytest.mark.parametrize("fmt", ["bmf", "github-action-benchmark", "pytest-benchmark"])
def test_the_ci_trackers_carry_the_reports_latency(report, fmt):
    latency = {}
    for row in report.rows:
        latency[f"{row['arch']}/standard/{row['device']}"] = row["min_ms_standard"]
        latency[f"{row['arch']}/separable/{row['device']}"] = row["min_ms_separable"]
    out = json.loads(render(report, fmt))
    if fmt == "bmf":
        values = {name: m["latency"]["value"] / 1e6 for name, m in out.items()}
    elif fmt == "github-action-benchmark":
        values = {entry["name"]: entry["value"] for entry in out}
    else:
        values = {b["param"]: b["extra_info"]["min_ms"] for b in out["benchmarks"]}
    assert len(values) == 4
    for name, value in values.items():
        parts = name.split("/")
        (expected,) = [v for k, v in latency.items()
                       if k.split("/")[0] == parts[0] and k.split("/")[1] == parts[1] and k.split("/")[2] == parts[-1]]
        assert value == pytest.approx(expected, rel=1e-12)


def test_a_schema_version_from_the_future_is_refused(tmp_path):
    doc = json.loads(REAL.read_text())
    doc["schema_version"] = 3
    path = tmp_path / "future.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(results.DamagedResultError, match="schema_version 3"):
        results.load_result(path)
