"""The synthetic result fixtures: what `tests/fixtures/make_fixtures.py` writes today is what is committed (so they
cannot drift from what `mnbench run` writes), they are the schema versions they claim, and a report on a schema v1
file and a schema v2 file of the same pair pools them the way the report promises.

Nothing is measured here.
"""
import importlib.util
import io
import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnbench import results
from mnbench.report import build_report
from record_helpers import repetition_fastest

FIXTURES = Path(__file__).parent / "fixtures"
V1_FILE = FIXTURES / "results" / "bench-xeon-2026-11-20.json"
V2_FILE = FIXTURES / "results" / "bench-xeon-2026-11-27.json"
LAPTOP = FIXTURES / "results" / "dev-laptop-2026-11-26.json"
V2_ONLY_KEYS = {"repetition_rounds", "latency_estimate", "repetition_p50_ms", "between_round_cv"}


def _generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a, b, where="$"):
    """Equal JSON, floats to 1e-12 (the last bits of a log or an exp may differ between numpy builds)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert a == pytest.approx(b, rel=1e-12, abs=1e-300), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_the_generator_reproduces_the_committed_fixtures(tmp_path):
    """Regenerate with `.venv/bin/python tests/fixtures/make_fixtures.py` when this fails because what a run
    writes changed on purpose; then look again at the tests that read these files."""
    _generator().main(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    assert written == [Path("damaged/truncated.json"), Path("results/bench-xeon-2026-11-20.json"),
                       Path("results/bench-xeon-2026-11-27.json"), Path("results/dev-laptop-2026-11-26.json"),
                       Path("sections/openvino-ep-v1-w0.25-r96.json")]
    for name in written:
        if name.parts[0] == "damaged":
            assert (tmp_path / name).read_text() == (FIXTURES / name).read_text()
        else:
            _same(json.loads((tmp_path / name).read_text()), json.loads((FIXTURES / name).read_text()), str(name))


def test_the_v2_fixtures_are_what_todays_record_writes():
    for path in (V2_FILE, LAPTOP, FIXTURES / "sections" / "openvino-ep-v1-w0.25-r96.json"):
        doc = results.load_result(path)
        assert doc["schema_version"] == results.SCHEMA_VERSION == 2
        assert doc["settings"]["measure"]["repetitions"] == 6
        for record in doc["records"]:
            assert V2_ONLY_KEYS <= set(record)
            assert len(record["repetition_rounds"]) == record["latency_estimate"]["repetitions"] == 6
            _same(results.Record.from_json(record).to_json(), record, f"{path.name} {record['arch']}")


def test_the_v1_file_is_as_schema_v1_wrote_it():
    doc = results.load_result(V1_FILE)
    assert doc["schema_version"] == 1 and "settings" not in doc
    for record in doc["records"]:
        assert not V2_ONLY_KEYS & set(record)
        assert results.Record.from_json(record).repetitions()[0].samples_ms == tuple(record["samples_ms"])


def test_the_burst_pair_has_a_few_repetitions_much_slower():
    doc = results.load_result(LAPTOP)
    for variant in ("standard", "separable"):
        (record,) = [r for r in doc["records"] if (r["arch"], r["device"], r["variant"]) == ("v2", "openvino", variant)]
        fastest = repetition_fastest(record)
        floor = sorted(fastest)[len(fastest) // 2]
        assert sum(f > 1.25 * floor for f in fastest) == 2, fastest  # repetitions 2 and 5


def _mixed_report():
    return build_report([(V1_FILE, results.load_result(V1_FILE)), (V2_FILE, results.load_result(V2_FILE))])


def test_a_v1_and_a_v2_run_of_one_pair_pool_the_v1_run_as_one_repetition():
    report = _mixed_report()
    (row,) = [r for r in report.rows if (r["device"], r["arch"]) == ("cpu", "v1")]

    def ratios(path):
        doc = json.loads(path.read_text())
        by_variant = {r["variant"]: r for r in doc["records"] if (r["device"], r["arch"]) == ("cpu", "v1")}
        return [s / p for s, p in zip(repetition_fastest(by_variant["standard"]),
                                      repetition_fastest(by_variant["separable"]), strict=True)]

    old, new = ratios(V1_FILE), ratios(V2_FILE)
    assert (len(old), len(new)) == (1, 6)
    assert row["runs"] == 2 and row["repetitions"] == 7
    # Every repetition weighs the same: the v1 run's whole record is one of the seven.
    expected = math.exp(sum(math.log(r) for r in old + new) / 7)
    assert row["realized_speedup"] == pytest.approx(expected, rel=1e-12)
    assert row["realized_speedup"] == pytest.approx(row["min_ms_standard"] / row["min_ms_separable"], rel=1e-12)
    # Two runs that disagree beyond their repetitions' noise: the interval rests on the two runs, so it is wider
    # than the v2 run's own; the pooled figure is never made to look more precise by the older file.
    (alone,) = [r for r in build_report([(V2_FILE, results.load_result(V2_FILE))]).rows
                if (r["device"], r["arch"]) == ("cpu", "v1")]
    lo, hi = row["realized_speedup_ci"]
    assert lo < row["realized_speedup"] < hi and hi / lo > alone["realized_speedup_ci"][1] / alone[
        "realized_speedup_ci"][0]
    # The reader is told: the runs pooled, and that the v1 file is one repetition.
    assert any("2 runs pooled (7 repetitions)" in note and str(V1_FILE) in note for note in report.notes)
    assert any(w.startswith(f"{V1_FILE} is a schema v1 result (one repetition)") for w in report.warnings)
    # Pairs that ran only in the v2 file are that file's alone.
    assert {r["runs"] for r in report.rows if (r["device"], r["arch"]) != ("cpu", "v1")} == {1}


def test_report_on_a_v1_and_a_v2_file_says_so_on_the_command_line(app):
    result = CliRunner().invoke(app, ["report", str(V1_FILE), str(V2_FILE), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = {(r["device"], r["arch"]): r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert (rows["cpu", "v1"]["runs"], rows["cpu", "v1"]["repetitions"]) == ("2", "7")
    assert f"{V1_FILE.name} is a schema v1 result (one repetition)" in " ".join(result.stderr.split())
