"""`mnbench ablate`: rows, verdicts, bad input, and the report's rendering of ablate results.

The fixture `fixtures/ablate/v1-v2-w0.25-r96-ablate.json` is a real result from this machine, made with
`mnbench ablate --arch v1,v2 --device cpu --width 0.25 --resolution 96 --ablation no-residual,expansion-4
--repetitions 2 --max-time 0.6`. (The MobileNetV3 paper's 30M / 10M MAdds for the last stage and the
stem are reproduced in tests/test_ablations.py.)
"""

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mnbench.ablate.run import ablation_groups, resolve_ablations
from mnbench.ablate.claims import (ARCH_COMPARISONS, CANNOT_TELL, DOES_NOT_HOLD, HOLDS, NO_CLAIM, TOLERANCE,
                                     claim_tests, verdict)
from mnbench.errors import MnbenchError
from mnbench.report import build_report, render
from mnbench.report.ablations import ablation_rows, is_ablation_result
from mnbench.report.plots import render_plots

FIXTURE = Path(__file__).parent / "fixtures" / "ablate" / "v1-v2-w0.25-r96-ablate.json"


@pytest.fixture()
def doc():
    return json.loads(FIXTURE.read_text())


def _record(doc, slug):
    return next(r for r in doc["records"] if r["model"]["slug"] == slug)


def test_json_rows_carry_the_issue_fields_with_integer_deltas(doc):
    rows = ablation_rows(doc, machine="vm", source=str(FIXTURE))
    changes = {row["change"] for row in rows}
    assert changes == {"no-residual", "expansion-4", "v2 in place of v1"}
    for row in rows:
        for key in ("change", "params_delta", "macs_delta", "latency_change", "latency_change_ci", "claim", "verdict"):
            assert key in row
        assert type(row["params_delta"]) is int and type(row["macs_delta"]) is int
    # Each verdict is what its rule says of its interval (the rule written out here, not ablation_claims') ...
    for row in rows:
        if row["rule"] is None:
            assert row["verdict"] == NO_CLAIM and row["claim"] is None
            continue
        assert row["rule"] in ("change <= +0.0%", "change >= +0.0%")  # this file's claims all have the bound 0
        low, high = row["latency_change_ci"]
        claims_side, other_side = (low >= 0, high < 0) if ">=" in row["rule"] else (high <= 0, low > 0)
        assert row["verdict"] == (HOLDS if claims_side else DOES_NOT_HOLD if other_side else CANNOT_TELL)
    # ... and where this run leaves no doubt, the verdict itself: V2 took 2.5 times V1's time in both repetitions,
    # so the survey's "V2 faster" does not hold and ShuffleNet V2's "V1 faster" does.
    verdicts = {(row["change"], row["rule"]): row["verdict"] for row in rows}
    assert verdicts[("v2 in place of v1", "change <= +0.0%")] == DOES_NOT_HOLD
    assert verdicts[("v2 in place of v1", "change >= +0.0%")] == HOLDS
    assert verdicts[("no-residual", None)] == verdicts[("expansion-4", None)] == NO_CLAIM  # no latency claim
    json.dumps(rows)  # JSON-safe
    published = _record(doc, "v2-separable-w0.25-r96-b1")
    expansion = _record(doc, "v2-separable-w0.25-r96-b1-expansion-4")
    row = next(r for r in rows if r["change"] == "expansion-4")
    assert row["macs_delta"] == expansion["macs"] - published["macs"] < 0  # t = 4 in place of 6: fewer MACs
    assert row["params_delta"] == expansion["params"] - published["params"] < 0
    no_residual = next(r for r in rows if r["change"] == "no-residual")
    assert no_residual["macs_delta"] == 0 and no_residual["params_delta"] == 0  # the adds are elementwise work
    assert no_residual["other_flops_delta"] < 0
    assert no_residual["verdict"] == NO_CLAIM and no_residual["claim"] is None


def test_latency_change_is_paired_and_follows_the_samples(doc):
    """Make the ablated net exactly 20 % slower than the published one in every round: the change is +20 %."""
    published = _record(doc, "v2-separable-w0.25-r96-b1")
    changed = _record(doc, "v2-separable-w0.25-r96-b1-no-residual")
    changed.update(samples_ms=[1.2 * x for x in published["samples_ms"]], round_sizes=published["round_sizes"],
                   repetition_rounds=published["repetition_rounds"])
    changed.pop("p50_estimate", None)
    row = next(r for r in ablation_rows(doc) if r["change"] == "no-residual")
    assert row["latency_change"] == pytest.approx(0.2, rel=1e-9)
    assert row["paired_by"] == "round"
    assert row["latency_change_ci"][0] - 1e-9 <= 0.2 <= row["latency_change_ci"][1] + 1e-9  # no spread: a point


def _scaled_by_repetition(record, factors):
    """`record`'s samples with every call of repetition i multiplied by factors[i]."""
    sizes, rounds = record["round_sizes"], record["repetition_rounds"]
    starts = np.cumsum([0, *rounds])
    calls = [sum(sizes[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    return list(np.asarray(record["samples_ms"]) * np.repeat(factors, calls))


@pytest.mark.parametrize("factors, expected", [
    ((0.3, 0.31), HOLDS),  # t = 4 at under a third of the time in both repetitions: "a smaller ratio is faster"
    ((3.0, 3.1), DOES_NOT_HOLD),  # three times as slow in both: the whole interval is on the wrong side of 0
    ((0.8, 1.25), CANNOT_TELL),  # faster in one repetition, slower in the other: the interval straddles 0
])
def test_expansion_4_verdict_on_latencies_built_to_give_it(doc, factors, expected):
    published = _record(doc, "v2-separable-w0.25-r96-b1")
    changed = _record(doc, "v2-separable-w0.25-r96-b1-expansion-4")
    changed.update(samples_ms=_scaled_by_repetition(published, factors), round_sizes=published["round_sizes"],
                   repetition_rounds=published["repetition_rounds"])
    changed.pop("p50_estimate", None)
    (row,) = [r for r in ablation_rows(doc) if r["change"] == "expansion-4" and r["rule"] is not None]
    assert row["rule"] == "change <= +0.0%"  # the survey: a ratio below 6 costs less time
    assert row["latency_change"] == pytest.approx(math.sqrt(factors[0] * factors[1]) - 1, rel=1e-9)
    assert row["verdict"] == expected


def test_arch_against_arch_rows_test_both_sources(doc):
    rows = [r for r in ablation_rows(doc) if r["baseline"] == "v1"]
    assert {r["claim_source"].split(",")[0] for r in rows} == {"YiJie Zhang", "ShuffleNet V2 (Ma et al. 2018)"}
    assert all(r["paired_by"] == "repetition" for r in rows)
    verdicts = {r["rule"]: r["verdict"] for r in rows}  # the survey: V2 faster; ShuffleNet V2: V1 faster
    assert set(verdicts) == {"change <= +0.0%", "change >= +0.0%"}
    # Opposite claims at one bound: one holds exactly when the other does not, or neither can be told.
    assert set(verdicts.values()) in ({HOLDS, DOES_NOT_HOLD}, {CANNOT_TELL})


@pytest.mark.parametrize("interval, at_least, expected", [
    ((0.09, 0.20), True, HOLDS),  # the whole interval above the bound 0.08
    ((-0.05, 0.05), True, DOES_NOT_HOLD),  # the whole interval below it
    ((0.02, 0.15), True, CANNOT_TELL),  # straddles it: too wide
    ((0.0, 0.07), False, HOLDS),  # "change <= 0.08"
    ((0.10, 0.30), False, DOES_NOT_HOLD),
    (None, True, CANNOT_TELL),  # one repetition: no interval
])
def test_verdict_rule_on_synthetic_intervals(interval, at_least, expected):
    assert verdict(interval, 0.08, at_least=at_least) == expected


def test_claims_become_the_stated_bounds():
    last_stage = claim_tests("original-last-stage")
    assert last_stage[0].bound == pytest.approx(0.11 - TOLERANCE) and last_stage[0].at_least  # the paper: 11 %
    assert last_stage[1].bound == 0.0 and last_stage[1].at_least  # the survey's 15 ms: its sign
    no_se = claim_tests("no-se")[0]
    assert no_se.bound == pytest.approx(-TOLERANCE) and no_se.at_least  # "without increasing the time"
    relu = claim_tests("relu")[0]
    assert relu.bound == pytest.approx(50.5 / 51.4 - 1 - TOLERANCE)  # Table 5: 51.4 ms h-swish, 50.5 ms ReLU
    assert claim_tests("expansion-15")[1].at_least and not claim_tests("expansion-2")[1].at_least
    assert claim_tests("expansion-15")[0] is None  # the V2 paper's expansion claim is about accuracy
    assert claim_tests("no-residual") == []
    v3 = next(c for c in ARCH_COMPARISONS if c.arch == "v3-large")
    assert v3.baseline == "v2" and v3.tests[0].bound == pytest.approx(-0.20 + TOLERANCE)


def test_groups_put_the_published_net_first_and_v1_only_for_comparison():
    chosen = resolve_ablations(["v1", "v2", "v3-large", "v3-small"], None)
    assert chosen["v1"] == [] and "no-residual" in chosen["v2"] and "stem-32" in chosen["v3-small"]
    groups = ablation_groups({"v2": ["no-residual"]}, [0.25], [96])
    assert [[c.ablation for c in g] for g in groups] == [[None, "no-residual"]]
    assert all(c.variant == "separable" for g in groups for c in g)
    assert resolve_ablations(["v3-large", "v3-small"], "no-se") == {"v3-large": ["no-se"], "v3-small": ["no-se"]}
    assert resolve_ablations(["v1", "v3-large"], "relu") == {"v3-large": ["relu"]}  # v1: nothing to compare with


@pytest.mark.parametrize("args, needles", [
    (["--arch", "v1", "--ablation", "no-se"], ["'no-se' does not apply to v1", "v3-large, v3-small"]),
    (["--arch", "v2", "--ablation", "bogus"], ["unknown ablation 'bogus'", "expansion-2", "no-residual"]),
    (["--arch", "all", "--ablation", "bogus"], ["unknown ablation 'bogus'", "no-se", "expansion-10"]),
    (["--arch", "v3-large", "--ablation", "expansion-4"], ["does not apply to v3-large", "only to v2", "no-se"]),
    (["--arch", "v1"], ["nothing to compare for v1", "--arch all"]),
    (["--arch", "v2", "--format", "csv"], ["unknown format 'csv'", "table, markdown, json"]),
])
def test_bad_input_is_one_line_and_exit_2(app, args, needles, tmp_path):
    result = CliRunner().invoke(app, ["ablate", "--device", "cpu", "--reports-dir", str(tmp_path), *args])
    assert isinstance(result.exception, MnbenchError)  # main() turns it into one line and exit 2 (below)
    message = str(result.exception)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not any(tmp_path.rglob("*.json"))  # failed before measuring


def test_cli_exit_code_is_2():
    env = {k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "mnbench", "ablate", "--arch", "v1", "--ablation", "no-se"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: ablation 'no-se' does not apply to v1 (only to v3-large, v3-small); v1 has none"]


def test_report_renders_an_ablate_result(doc):
    report = build_report([(FIXTURE, doc)])
    assert not report.rows and not report.unpaired  # an ablate file's records are not speedup pairs
    assert len(report.ablations) == len(ablation_rows(doc))
    markdown = render(report, "markdown")
    assert "## Design claims (mnbench ablate)" in markdown and "no-residual" in markdown
    assert "v2 in place of v1" in markdown and "change <= +0.0%" in markdown
    html = render(report, "html")
    assert 'id="ablations"' in html and "expansion-4" in html
    assert json.loads(render(report, "json"))["ablations"][0]["change"] == report.ablations[0]["change"]
    assert "Design claims" in render(report, "table")
    assert "ablations" in render_plots(report, "svg")


def test_newest_ablate_file_wins_and_run_files_are_unaffected(doc):
    older = copy.deepcopy(doc)
    older["created_utc"] = "2000-01-01T00:00:00Z"
    for r in older["records"]:
        r["samples_ms"] = list(np.asarray(r["samples_ms"]) * 3)
        r.pop("p50_estimate", None)
    report = build_report([(Path("old.json"), older), (FIXTURE, doc)])
    assert len(report.ablations) == len(ablation_rows(doc))
    assert {r["source"] for r in report.ablations} == {str(FIXTURE)}
    assert is_ablation_result(doc) and not is_ablation_result({"records": []})


@pytest.mark.measures
def test_ctrl_c_keeps_the_groups_measured_so_far(app, tmp_path, monkeypatch):
    """Nothing a user asked to keep is lost: after Ctrl-C in the second pass, the first pass's records (one
    repetition of both groups) and the ablate section are written (whole, no temp file left) and give their rows."""
    from mnbench import results
    from mnbench.measure import loop as measure

    real, calls = measure.measure_interleaved, {"n": 0}

    def interrupted_in_the_second_pass(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(measure, "measure_interleaved", interrupted_in_the_second_pass)
    monkeypatch.setenv("MNBENCH_IN_PROCESS", "1")  # the patched loop runs in this process
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "models"))
    out = tmp_path / "out" / "a.json"
    result = CliRunner().invoke(app, ["ablate", "--arch", "v2", "--ablation", "expansion-2", "--device", "cpu",
                                      "--width", "0.25", "--resolution", "64,96", "--repetitions", "2",
                                      "--max-time", "0.6", "--threads", "1",
                                      "--reports-dir", str(tmp_path / "reports"), "--output", str(out)])
    assert result.exit_code == 130, result.output
    doc = results.load_result(out)
    assert {(r["resolution"], r["model"].get("ablation")) for r in doc["records"]} == {
        (64, None), (64, "expansion-2"), (96, None), (96, "expansion-2")}
    assert all(len(r["repetition_rounds"]) == 1 for r in doc["records"])
    rows = ablation_rows(doc)
    assert is_ablation_result(doc) and rows and {row["change"] for row in rows} == {"expansion-2"}
    assert os.listdir(out.parent) == ["a.json"]
