"""The parallelism curve and the memory table on a real swept run: every format shows the same cells, and the curve
shows the pair table's figures.

The fixture is a slice of a real `mnbench run --arch v1,v2 --device cpu,openvino --threads 1,2 --batch 1,8`
(2026-12-07 07:35 UTC, AMD EPYC family 25, 2 vCPUs): its v1 records on cpu, 4 points x 2 variants, as written.
"""

import json
from pathlib import Path

import pytest

from html_helpers import html_rows  # tests/ is on sys.path under pytest
from mnbench import results
from mnbench.report.columns import cell
from mnbench.report.curves import CURVE_COLUMNS
from mnbench.report.formats import render
from mnbench.report.memory_rows import MEMORY_COLUMNS
from mnbench.report.pairs import build_report

SWEEP = Path(__file__).parent / "fixtures" / "real" / "sweep-epyc-zen3-2026-12-07.json"


@pytest.fixture(scope="module")
def report():
    return build_report([(SWEEP, results.load_result(SWEEP))])


def test_a_swept_run_gives_one_curve_of_four_points_with_the_pair_tables_figures(report):
    curve = report.curves
    assert [(c["threads"], c["batch"]) for c in curve] == [(1, 1), (1, 8), (2, 1), (2, 8)]
    rows = {(r["threads"], r["batch"]): r for r in report.rows}
    for c in curve:
        row = rows[(c["threads"], c["batch"])]
        assert (c["realized_speedup"], c["share_kept"], c["realized_speedup_ci"]) == (
            row["realized_speedup"], row["share_kept"], row["realized_speedup_ci"])
        assert c["change"] == pytest.approx(row["realized_speedup"] / rows[(1, 1)]["realized_speedup"], rel=1e-12)
        assert c["throughput_standard"] == pytest.approx(c["batch"] * 1e3 / row["min_ms_standard"], rel=1e-12)
    # Each point is set against the peak measured at its own thread count (the roofline's figures too).
    peaks = json.loads(SWEEP.read_text())["peaks_by_threads"]["cpu"]
    for (threads, _), row in rows.items():
        assert row["peak_gmacs_per_s"] == peaks[str(threads)]["gmacs_per_s"]
    assert peaks["1"]["gmacs_per_s"] != peaks["2"]["gmacs_per_s"]


@pytest.mark.parametrize("section, columns", [("curves", CURVE_COLUMNS), ("memory", MEMORY_COLUMNS)])
def test_markdown_html_and_json_show_the_same_cells(report, section, columns):
    rows = json.loads(render(report, "json"))[section]
    assert len(rows) == (4 if section == "curves" else 8)
    markdown, page = render(report, "markdown"), render(report, "html")
    rows_in_html = html_rows(page)
    for row in rows:
        cells = [cell(row, column) for column in columns]
        assert "| " + " | ".join(cells) + " |" in markdown
        assert cells in rows_in_html, f"the html {section} table lost a cell: {cells}"


def test_memory_rows_put_the_measured_peak_above_the_graphs_minimum(report):
    memory = json.loads(render(report, "json"))["memory"]
    for row in memory:
        assert row["minimum_bytes"] == row["weight_bytes"] + row["activation_bytes"]
        assert row["peak_bytes"] > row["minimum_bytes"]  # the runtime holds more than the least possible
        assert row["peak_over_minimum"] == pytest.approx(row["peak_bytes"] / row["minimum_bytes"])
    batch8 = {r["variant"]: r for r in memory if r["batch"] == 8 and r["threads"] == 1}
    batch1 = {r["variant"]: r for r in memory if r["batch"] == 1 and r["threads"] == 1}
    for variant in ("separable", "standard"):  # at batch 8 the activations take a larger share
        assert batch8[variant]["activation_bytes"] == 8 * batch1[variant]["activation_bytes"]
