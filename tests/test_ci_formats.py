"""`mnbench report --format bmf|github-action-benchmark|pytest-benchmark` against the committed result fixtures.

Each format is checked against its documented shape: Bencher Metric Format's JSON schema
(https://bencher.dev/docs/reference/bencher-metric-format, built-in `latency` measured in nanoseconds),
github-action-benchmark's `customSmallerIsBetter` entries (name, unit, value required; range, extra optional) and
pytest-benchmark's `--benchmark-json` layout (machine_info, commit_info, benchmarks[].stats in seconds; the
fields github-action-benchmark's `pytest` tool reads: fullname, stats.ops/mean/stddev/rounds).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mnbench.errors import MnbenchError
from mnbench.report import build_report, render
from mnbench.report.ci_formats import benchmark_name, pytest_stats
from mnbench.results import load_result

RESULTS = Path(__file__).parent / "fixtures" / "results"
NEWEST_XEON = RESULTS / "bench-xeon-2026-11-27.json"
OLDER_XEON = RESULTS / "bench-xeon-2026-11-20.json"

# Bencher Metric Format JSON schema, as published (https://bencher.dev/bmf.json).
BMF_SCHEMA = {
    "type": "object",
    "patternProperties": {".+": {
        "type": "object",
        "patternProperties": {".+": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                           "upper_value": {"type": "number"}},
            "required": ["value"],
        }},
    }},
}


def _validate(value, schema, where="$"):
    """The subset of JSON Schema draft 7 the BMF schema uses: type, properties, patternProperties, required."""
    kinds = {"object": dict, "number": (int, float), "string": str}
    assert isinstance(value, kinds[schema["type"]]) and not isinstance(value, bool), f"{where}: not {schema['type']}"
    if schema["type"] != "object":
        return
    for key in schema.get("required", []):
        assert key in value, f"{where}: missing {key}"
    for key, item in value.items():
        if key in schema.get("properties", {}):
            _validate(item, schema["properties"][key], f"{where}.{key}")
        for pattern, sub in schema.get("patternProperties", {}).items():
            assert pattern == ".+" and key, f"{where}: empty key"
            _validate(item, sub, f"{where}.{key}")


@pytest.fixture(scope="module")
def v2_report():
    return build_report([(NEWEST_XEON, load_result(NEWEST_XEON))])  # schema v2, six repetitions per record


def test_names_say_what_ran_and_not_where_or_when(v2_report):
    names = {benchmark_name(item.record) for item in v2_report.records}
    assert "v1/separable/w1/r224/b1/fp32/cpu" in names
    assert "v2/standard/w1/r224/b1/fp32/cpu" in names
    # Another day's run of the same models on the same machine: the same names, so the tracker's history lines up.
    older = build_report([(OLDER_XEON, load_result(OLDER_XEON))])  # schema v1
    assert {benchmark_name(item.record) for item in older.records} <= names
    record = dict(v2_report.records[0].record) | {"model": {"ablation": "no-se"}, "arch": "v3-large"}
    assert benchmark_name(record).startswith("v3-large/separable/no-se/w1/")


def test_bmf_follows_the_schema_in_nanoseconds(v2_report):
    doc = json.loads(render(v2_report, "bmf"))
    _validate(doc, BMF_SCHEMA)
    by_name = {benchmark_name(item.record): item.record for item in v2_report.records}
    assert set(doc) == set(by_name)
    for name, metrics in doc.items():
        record = by_name[name]
        latency = metrics["latency"]
        assert latency["value"] == pytest.approx(record["latency_estimate"]["point"] * 1e6)  # ms -> ns
        assert latency["lower_value"] < latency["value"] < latency["upper_value"]
        assert latency["lower_value"] == pytest.approx(record["latency_estimate"]["interval"][0] * 1e6)
        assert metrics["throughput"]["value"] == pytest.approx(record["throughput_ips"])


def test_bmf_of_a_one_repetition_file_leaves_the_bounds_out():
    doc = json.loads(render(build_report([(OLDER_XEON, load_result(OLDER_XEON))]), "bmf"))  # schema v1
    _validate(doc, BMF_SCHEMA)
    assert all(set(m["latency"]) == {"value"} for m in doc.values())


def test_github_action_benchmark_custom_smaller_is_better(v2_report):
    doc = json.loads(render(v2_report, "github-action-benchmark"))
    assert isinstance(doc, list) and doc
    by_name = {benchmark_name(item.record): item.record for item in v2_report.records}
    assert len({entry["name"] for entry in doc}) == len(doc) == len(by_name)
    for entry in doc:
        assert set(entry) == {"name", "unit", "value", "range", "extra"}
        assert entry["unit"] == "ms" and isinstance(entry["extra"], str)
        record = by_name[entry["name"]]
        assert entry["value"] == pytest.approx(record["latency_estimate"]["point"])
        low, high = record["latency_estimate"]["interval"]
        assert entry["range"].startswith("± ")
        assert float(entry["range"][2:]) == pytest.approx(max(high - entry["value"], entry["value"] - low), rel=1e-3)


def test_pytest_benchmark_document(v2_report):
    doc = json.loads(render(v2_report, "pytest-benchmark"))
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert doc["machine_info"]["node"] == "bench-xeon"
    assert doc["commit_info"]["id"] == "3f2c9e14b0d7a6c5e8f9a1b2c3d4e5f607182930"  # the fixture's git_commit
    older = json.loads(render(build_report([(OLDER_XEON, load_result(OLDER_XEON))]), "pytest-benchmark"))
    assert older["commit_info"]["id"] == "3f2c9e1"  # a schema v1 file's machine calls it `commit`
    by_name = {benchmark_name(item.record): item.record for item in v2_report.records}
    fields = {"min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3", "iqr_outliers",
              "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops", "total", "iterations"}
    for bench in doc["benchmarks"]:
        assert {"group", "name", "fullname", "params", "extra_info", "options", "stats"} <= set(bench)
        stats, samples = bench["stats"], np.array(by_name[bench["name"]]["samples_ms"])
        assert fields <= set(stats)
        # Seconds, not milliseconds.
        assert stats["median"] == pytest.approx(np.median(samples) / 1000)
        assert stats["min"] == pytest.approx(samples.min() / 1000) and stats["rounds"] == samples.size
        assert stats["ops"] == pytest.approx(1000 / samples.mean())
        assert stats["q1"] <= stats["median"] <= stats["q3"]


def test_pytest_stats_outliers_by_hand():
    stats = pytest_stats([1.0, 1.0, 1.0, 1.0, 10.0])  # ms
    assert stats["q1"] == stats["q3"] == pytest.approx(0.001) and stats["iqr"] == 0
    assert stats["iqr_outliers"] == 1 and stats["hd15iqr"] == pytest.approx(0.001)
    assert stats["outliers"] == f"{stats['stddev_outliers']};1"


def test_cli_writes_each_format_and_refuses_two_machines(app, tmp_path):
    for fmt in ("bmf", "github-action-benchmark", "pytest-benchmark"):
        out = tmp_path / f"{fmt}.json"
        result = CliRunner().invoke(app, ["report", str(NEWEST_XEON), "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        json.loads(out.read_text())
    result = CliRunner().invoke(app, ["report", str(RESULTS), "--format", "bmf"])
    # A MnbenchError, which mnbench.cli.app.main prints as one line with exit code 2.
    assert isinstance(result.exception, MnbenchError) and "2 machines" in str(result.exception)

