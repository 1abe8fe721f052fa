"""`mnbench report` against the committed result fixtures (tests/fixtures/make_fixtures.py); no benchmark runs.

Golden MACs: MobileNet V1 569M (separable) and 4866M ("Conv MobileNet", standard), Howard et al. 2017, Table 4,
so the theoretical speedup is 8.55x.
"""

import csv
import io
import json
import math
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
import typer
from typer.testing import CliRunner

from mnbench.cli import report_cmd
from mnbench.errors import MnbenchError
from mnbench.report import build_report, default_result_paths, load_report, render
from mnbench.report.columns import CSV_COLUMNS
from mnbench.report.html import to_html
from mnbench.report.pairs import ROW_FIELDS, UNPAIRED_FIELDS
from mnbench.report.plots import render_plots
from mnbench.results import new_result
from record_helpers import repetition_fastest

FIXTURES = Path(__file__).parent / "fixtures"
RESULTS = FIXTURES / "results"
DAMAGED = FIXTURES / "damaged"
NEWEST_XEON = RESULTS / "bench-xeon-2026-11-27.json"
OLDER_XEON = RESULTS / "bench-xeon-2026-11-20.json"


@pytest.fixture(scope="module")
def report():
    return load_report([RESULTS])


@pytest.fixture(scope="module")
def html_page(report):
    return to_html(report)


def fixture_record(path, *, arch, variant, device):
    doc = json.loads(Path(path).read_text())
    (record,) = [r for r in doc["records"] if (r["arch"], r["variant"], r["device"]) == (arch, variant, device)]
    return record


def find_row(report, *, machine, device, arch):
    (row,) = [r for r in report.rows if (r["machine"], r["device"], r["arch"]) == (machine, device, arch)]
    return row


def test_theoretical_speedup_is_the_mac_ratio(report):
    v1 = find_row(report, machine="bench-xeon", device="cpu", arch="v1")
    assert (v1["macs_standard"], v1["macs_separable"]) == (4_866_000_000, 569_000_000)
    assert v1["theoretical_speedup"] == pytest.approx(8.55, abs=0.005)
    for row in report.rows:
        assert row["theoretical_speedup"] == row["macs_standard"] / row["macs_separable"]


def _fastest(path, **key):
    """The fastest call of each repetition of the fixture's record (a schema v1 record is one repetition)."""
    return repetition_fastest(fixture_record(path, **key))


def _geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def test_realized_speedup_is_the_ratio_of_the_latencies_beside_it_from_every_run_of_the_pair(report):
    for row in report.rows:
        sources = [Path(p) for p in ([str(OLDER_XEON), str(NEWEST_XEON)] if row["runs"] == 2
                                     else [row["source_standard"]])]
        # Per repetition, the ratio of the two fastest calls (the v1 file: one repetition); the geometric mean of
        # every run's repetitions (the pair runs in the same rounds of each repetition).
        ratios = [std / sep for p in sources
                  for std, sep in zip(_fastest(p, arch=row["arch"], variant="standard", device=row["device"]),
                                      _fastest(p, arch=row["arch"], variant="separable", device=row["device"]),
                                      strict=True)]
        assert row["repetitions"] == len(ratios)
        assert row["realized_speedup"] == pytest.approx(_geometric_mean(ratios), rel=1e-12)
        assert row["realized_speedup"] == pytest.approx(row["min_ms_standard"] / row["min_ms_separable"], rel=1e-12)
        assert row["share_kept"] == pytest.approx(row["realized_speedup"] / row["theoretical_speedup"])
        lo, hi = row["realized_speedup_ci"]
        assert lo < row["realized_speedup"] < hi
    # The burst pair (two of six repetitions slowed by other load, the separable more): its fastest calls still
    # give the answer, and it differs from the ratio of the records' median calls by more than rounding.
    burst = find_row(report, machine="dev-laptop", device="openvino", arch="v2")
    medians = (fixture_record(burst["source_standard"], arch="v2", variant="standard", device="openvino"),
               fixture_record(burst["source_standard"], arch="v2", variant="separable", device="openvino"))
    p50_ratio = medians[0]["latency_ms"]["p50"] / medians[1]["latency_ms"]["p50"]
    assert abs(burst["realized_speedup"] / p50_ratio - 1) > 0.02


def test_a_lone_schema_v1_pair_is_one_repetition_without_an_interval():
    (row,) = build_report([(OLDER_XEON, json.loads(OLDER_XEON.read_text()))]).rows
    assert row["repetitions"] == 1 and row["runs"] == 1
    assert row["realized_speedup"] == pytest.approx(
        min(fixture_record(OLDER_XEON, arch="v1", variant="standard", device="cpu")["samples_ms"])
        / min(fixture_record(OLDER_XEON, arch="v1", variant="separable", device="cpu")["samples_ms"]), rel=1e-12)
    assert row["realized_speedup_ci"] is None  # rather than one that promises what it cannot keep


def test_achieved_rate_and_peak_share(report):
    row = find_row(report, machine="bench-xeon", device="cpu", arch="v1")
    sep = fixture_record(NEWEST_XEON, arch="v1", variant="separable", device="cpu")
    expected = sep["macs"] * sep["batch"] / (row["min_ms_separable"] / 1000) / 1e9
    assert row["gmacs_per_s_separable"] == pytest.approx(expected)
    peak = json.loads(NEWEST_XEON.read_text())["peaks"]["cpu"]["gmacs_per_s"]
    assert row["peak_share_separable"] == pytest.approx(expected / peak)
    # No peak was measured for OpenVINO or on the laptop: no share, rather than a made-up one.
    assert find_row(report, machine="bench-xeon", device="openvino", arch="v1")["peak_share_standard"] is None
    assert find_row(report, machine="dev-laptop", device="cpu", arch="v1")["peak_share_standard"] is None


def test_files_from_both_machines_merge_into_one_report(report):
    assert {row["machine"] for row in report.rows} == {"bench-xeon", "dev-laptop"}
    assert {row["device"] for row in report.rows} == {"cpu", "openvino"}
    assert {row["arch"] for row in report.rows} == {"v1", "v2"}
    assert report.machines["dev-laptop"]["cpu_model"].startswith("AMD Ryzen")
    assert report.machines["bench-xeon"]["cpu_model"].startswith("Intel(R) Xeon(R)")


def test_runs_of_a_pair_on_one_host_are_pooled_and_the_note_says_so(report):
    row = find_row(report, machine="bench-xeon", device="cpu", arch="v1")
    older = _fastest(OLDER_XEON, arch="v1", variant="standard", device="cpu")  # schema v1: one repetition
    newest = _fastest(NEWEST_XEON, arch="v1", variant="standard", device="cpu")  # schema v2: six
    assert row["runs"] == 2 and row["repetitions"] == len(older) + len(newest) == 7
    # Both runs, every repetition weighing the same; not the newest run alone.
    assert row["min_ms_standard"] == pytest.approx(_geometric_mean(older + newest), rel=1e-12)
    assert any("2 runs pooled" in note and str(OLDER_XEON) in note and str(NEWEST_XEON) in note
               for note in report.notes)


def test_record_without_its_twin_is_listed_as_unpaired(report):
    (unpaired,) = report.unpaired
    assert (unpaired["arch"], unpaired["variant"], unpaired["missing"]) == ("v3-small", "separable", "standard")
    assert tuple(unpaired) == UNPAIRED_FIELDS
    assert all(tuple(row) == ROW_FIELDS for row in report.rows)


def test_two_machines_sharing_a_hostname_are_told_apart():
    doc = json.loads(NEWEST_XEON.read_text())
    twin = json.loads(NEWEST_XEON.read_text())
    twin["machine"]["cpu_model"] = "Intel(R) Xeon(R) Platinum 8480+"
    report = build_report([(Path("a.json"), doc), (Path("b.json"), twin)])
    assert len({row["machine"] for row in report.rows}) == 2
    assert not report.notes  # different machines: nothing superseded


def test_odd_optional_sections_do_not_break_any_format():
    # `profiles` and `peaks` come from other commands; unexpected shapes must degrade, not crash the report.
    doc = json.loads(NEWEST_XEON.read_text())
    doc["peaks"] = ["not", "a", "mapping"]
    doc["profiles"][0]["categories"] += ["junk", {"category": "se", "macs": "n/a", "time_share": None}]
    doc["machine"]["versions"] = {"onnxruntime": None, "nested": {"deeper": [1, 2]}}
    report = build_report([(Path("x.json"), doc)])
    assert all(row["peak_share_standard"] is None for row in report.rows)
    for fmt in ("json", "csv", "markdown", "table", "html"):
        assert render(report, fmt)


def test_damaged_file_is_skipped_with_a_warning_naming_it(report):
    with_damaged = load_report([RESULTS, DAMAGED])
    (warning,) = with_damaged.load_warnings
    assert "truncated.json" in warning
    assert with_damaged.rows == report.rows


def test_a_whole_reports_folder_reads_without_warnings_about_its_bookkeeping(tmp_path, report):
    # `mnbench report reports/`: the host's best reference speed and the peaks are mnbench's files, not results.
    import shutil
    shutil.copytree(RESULTS, tmp_path / "runs")
    for folder, name in (("host", "reference_best.json"), ("peaks", "vm.json")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps({"schema_version": 1, "host": "vm"}))
    whole = load_report([tmp_path])
    assert whole.load_warnings == []
    def speedups(rows):
        return [(r["machine"], r["device"], r["arch"], r["realized_speedup"]) for r in rows]
    assert speedups(whole.rows) == speedups(report.rows)


def test_missing_path_is_a_mnbench_error(tmp_path):
    with pytest.raises(MnbenchError, match="no such file or folder"):
        load_report([tmp_path / "nope"])
    with pytest.raises(MnbenchError, match="no results yet"):
        default_result_paths(tmp_path / "reports")


def test_no_records_is_a_clear_error(tmp_path):
    (tmp_path / "empty.json").write_text(json.dumps(new_result({"hostname": "h", "cpu_model": "c"})))
    empty = load_report([tmp_path])
    assert empty.is_empty
    with pytest.raises(MnbenchError, match="no benchmark records"):
        empty.check_not_empty()


def test_json_format(report):
    doc = json.loads(render(report, "json"))
    assert {"rows", "unpaired", "profiles", "machines"} <= set(doc)
    assert len(doc["rows"]) == len(report.rows) == 5
    row = doc["rows"][0]
    for key in ("machine", "device", "arch", "theoretical_speedup", "realized_speedup", "realized_speedup_ci"):
        assert key in row
    assert len(row["realized_speedup_ci"]) == 2
    assert doc["profiles"][0]["categories"][0]["category"] == "standard"


def test_csv_format(report):
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(report.rows)
    for parsed, row in zip(rows, report.rows):
        assert float(parsed["theoretical_speedup"]) == pytest.approx(row["theoretical_speedup"])
        assert float(parsed["realized_speedup"]) == pytest.approx(row["realized_speedup"], rel=1e-12)
        if row["realized_speedup_ci"] is None:  # one repetition: no interval, an empty cell
            assert parsed["realized_speedup_ci_lo"] == parsed["realized_speedup_ci_hi"] == ""
        else:
            assert float(parsed["realized_speedup_ci_lo"]) == pytest.approx(row["realized_speedup_ci"][0])
    assert any(row["realized_speedup_ci"] for row in report.rows)  # the pooled xeon pairs have one


def test_markdown_format(report):
    text = render(report, "markdown")
    lines = text.splitlines()
    assert ("| machine | device | runtime | threads | arch | width | res | batch | precision | min std (ms) "
            "| min sep (ms) | theoretical | realized | 95% interval | kept | bound | roofline | runs |") in lines
    assert "| 8.55× |" in text
    assert "| category | MACs | MAC share | time (ms) | time share | GMAC/s | roofline share |" in lines  # the profile
    assert "**realized**" in text and "**kept**" in text  # the legend


def test_table_format_has_every_pair(report):
    text = render(report, "table")
    assert text.count("8.55×") == 3 and text.count("18.45×") == 2
    assert "Profile: bench-xeon" in text


def test_html_is_one_self_contained_page(report, html_page):
    assert html_page.startswith("<!DOCTYPE html>")
    assert html_page.count("<svg") == 3  # speedup, latency, profile
    assert not re.search(r"https?://", html_page)
    assert not re.search(r"<(script|link|img)\b", html_page)
    assert "8.55×" in html_page and "AMD Ryzen 7 7840U" in html_page
    row = find_row(report, machine="dev-laptop", device="openvino", arch="v2")
    assert f"{row['realized_speedup']:.2f}×" in html_page
    for svg in re.findall(r"<svg\b.*?</svg>", html_page, flags=re.S):
        ElementTree.fromstring(svg)  # well-formed, no undeclared namespace prefixes left
    assert len(set(re.findall(r'\bid="([^"]+)"', html_page))) == len(re.findall(r'\bid="([^"]+)"', html_page))
    # The answer, then the speedup plot, then the tables; the other plots after the tables, before the profiles.
    assert (html_page.index('<section id="answer">') < html_page.index('<figure id="plot-speedup">')
            < html_page.index("<table>\n<thead>") < html_page.index('<figure id="plot-latency">')
            < html_page.index("Operator profiles"))


def test_html_escapes_text_from_result_files():
    doc = json.loads(NEWEST_XEON.read_text())
    doc["machine"]["hostname"] = "<b>lab&co</b>"
    doc["machine"]["versions"]["openvino"] = "<script>alert(1)</script>"
    page = to_html(build_report([(Path("x.json"), doc)]))
    assert "<script" not in page and "<b>lab" not in page
    assert "&lt;b&gt;lab&amp;co&lt;/b&gt;" in page


def test_plots_are_deterministic_and_skip_what_has_no_data(report):
    svgs = render_plots(report)
    assert set(svgs) == {"speedup", "latency", "profile"}
    assert svgs == render_plots(report)
    no_profiles = build_report([(OLDER_XEON, json.loads(OLDER_XEON.read_text()))])
    assert set(render_plots(no_profiles)) == {"speedup", "latency"}


def test_cli_json_merges_machines_and_warns_about_damaged_file():
    result = CliRunner().invoke(_app(), ["report", str(RESULTS), str(DAMAGED), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {row["machine"] for row in doc["rows"]} == {"bench-xeon", "dev-laptop"}
    warnings = [line for line in result.stderr.splitlines() if "truncated.json" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipping damaged result file")


def test_cli_html_output_and_png_plots(tmp_path):
    page, plots = tmp_path / "out" / "report.html", tmp_path / "plots"
    result = CliRunner().invoke(_app(), ["report", str(RESULTS), "-f", "html", "-o", str(page), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert page.read_text().count("<svg") == 3
    # Exactly the three plots: atomic writes leave no temp files behind.
    assert sorted(p.name for p in plots.iterdir()) == ["latency.png", "profile.png", "speedup.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots.iterdir())
    assert result.stdout == ""


def test_cli_reads_the_runs_folder_by_default(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for source in RESULTS.iterdir():
        (runs / source.name).write_text(source.read_text())
    result = CliRunner().invoke(_app(), ["report", "-f", "csv"], env={"MNBENCH_REPORTS_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 5


def test_cli_table_to_stdout_is_wide_enough_to_read():
    result = CliRunner().invoke(_app(), ["report", str(RESULTS)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("8.55×") == 3  # not folded across lines by an 80-column guess


def test_cli_no_records_is_an_error_after_the_warnings(tmp_path):
    result = CliRunner().invoke(_app(), ["report", str(DAMAGED)])
    assert "truncated.json" in result.stderr
    assert isinstance(result.exception, MnbenchError) and "no benchmark records" in str(result.exception)


def test_cli_missing_path_raises_mnbench_error(tmp_path):
    # The root app (`mnbench.cli.app.main`) turns MnbenchError into one line and exit code 2.
    result = CliRunner().invoke(_app(), ["report", str(tmp_path / "nope")])
    assert isinstance(result.exception, MnbenchError)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report_cmd.report)

    @app.command("noop", hidden=True)  # two commands, so "report" stays a subcommand name as in mnbench
    def _noop() -> None:
        pass

    return app
