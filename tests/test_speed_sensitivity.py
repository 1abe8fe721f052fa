"""How the realized speedup follows the machine's speed (mnbench.speed_sensitivity), on simulated runs whose true
line is known: the separable net slows down `SLOPE` times as much as the machine does, as on the shared VM."""
import math
from pathlib import Path

import numpy as np
import pytest

from mnbench import results, speed_sensitivity
from mnbench.report.pairs import build_report

SLOPE = -1.5  # log speedup per log machine time (2026-12-02 VM, 2 threads: -0.3 to -2.1 per pair)
SPEEDUP_AT_BASE = 3.0  # the speedup when the reference runs at BASE_REFERENCE_MS
BASE_REFERENCE_MS = 0.5


def _series(per_round_medians, rng, per_round=20):
    values = np.concatenate([m * np.exp(rng.normal(0, 0.02, per_round)) for m in per_round_medians])
    return results.SampleSeries.of(values, [per_round] * len(per_round_medians))


def _doc(rng, name, *, states, rounds=4):
    """One run: a repetition per machine state (log slowdown of the reference); per round a little noise."""
    series = {"standard": [], "separable": [], "reference": []}
    for state in states:
        speedup = SPEEDUP_AT_BASE * math.exp(SLOPE * state)
        ref = BASE_REFERENCE_MS * math.exp(state) * np.exp(rng.normal(0, 0.01, rounds))
        sep = 6.0 * math.exp(state) * np.exp(rng.normal(0, 0.02, rounds))
        series["separable"].append(_series(sep, rng))
        series["standard"].append(_series(sep * speedup * np.exp(rng.normal(0, 0.02, rounds)), rng))
        series["reference"].append(_series(ref, rng))
    reference = results.Companion(results.SampleSeries.concat(series["reference"]), {"name": "ref"})
    records = []
    for variant in ("standard", "separable"):
        fields = {"arch": "v2", "variant": variant, "width": 1.0, "resolution": 224, "batch": 1, "device": "cpu",
                  "runtime": "onnxruntime", "precision": "fp32", "threads": 2, "macs": 300_000_000,
                  "params": 3_504_872, "model_sha256": ("a" if variant == "separable" else "b") * 64}
        records.append(results.Record(fields=fields, series=results.SampleSeries.concat(series[variant]),
                                      repetition_rounds=(rounds,) * len(states), reference=reference).to_json())
    return Path(name), {"machine": {"hostname": "vm", "cpu_model": "EPYC"}, "records": records,
                        "created_utc": f"2026-12-02T23:{len(name):02d}:00Z"}


def _runs(rng, n_runs=5):
    return [_doc(rng, f"run{i}.json", states=rng.uniform(0.0, 0.4, 3)) for i in range(n_runs)]


def _points(docs):
    return [p for path, doc in docs for p in speed_sensitivity.repetition_points(str(path), *doc["records"])]


def test_each_repetition_is_one_point_of_machine_speed_and_speedup():
    rng = np.random.default_rng(1)
    states = [0.0, 0.2, 0.4]
    path, doc = _doc(rng, "run.json", states=states)
    points = speed_sensitivity.repetition_points(str(path), *doc["records"])
    assert [p.run for p in points] == ["run.json"] * 3
    assert np.allclose([p.log_reference_ms for p in points], [math.log(BASE_REFERENCE_MS) + s for s in states],
                       atol=0.03)
    assert np.allclose([p.log_speedup for p in points], [math.log(SPEEDUP_AT_BASE) + SLOPE * s for s in states],
                       atol=0.05)


def test_the_line_is_recovered_and_read_at_the_fastest_reference():
    rng = np.random.default_rng(2)
    points = _points(_runs(rng))
    found = speed_sensitivity.fit(points)
    assert found.runs == 5 and found.points == 15
    assert found.slope_ci[0] < SLOPE < found.slope_ci[1] < 0  # slower machine, smaller speedup: not 0
    truth = SPEEDUP_AT_BASE * (found.best_reference_ms / BASE_REFERENCE_MS) ** SLOPE
    assert found.speedup_at_best_ci[0] < truth < found.speedup_at_best_ci[1]
    assert found.best_reference_ms == pytest.approx(min(math.exp(p.log_reference_ms) for p in points))


def test_the_interval_at_the_best_speed_holds_the_truth_in_most_simulated_hosts():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(40):
        found = speed_sensitivity.fit(_points(_runs(rng)))
        truth = SPEEDUP_AT_BASE * (found.best_reference_ms / BASE_REFERENCE_MS) ** SLOPE
        hits += found.speedup_at_best_ci[0] <= truth <= found.speedup_at_best_ci[1]
    assert hits >= 34  # a 95 % interval: at least 85 % of 40


def test_too_few_runs_or_a_machine_that_never_moved_tell_nothing():
    rng = np.random.default_rng(4)
    assert speed_sensitivity.fit(_points(_runs(rng, n_runs=2))) is None
    still = [_doc(rng, f"run{i}.json", states=[0.0, 0.01, 0.02]) for i in range(5)]
    assert speed_sensitivity.fit(_points(still)) is None


def test_a_run_without_the_reference_gives_no_points():
    rng = np.random.default_rng(5)
    path, doc = _doc(rng, "run.json", states=[0.0, 0.2, 0.4])
    for record in doc["records"]:
        record.pop("reference")
    assert speed_sensitivity.repetition_points(str(path), *doc["records"]) == []


def test_the_report_fits_over_the_runs_of_one_host_and_says_it_in_a_note():
    rng = np.random.default_rng(6)
    docs = _runs(rng)
    row = build_report(docs).rows[0]
    lo, hi = row["speed_sensitivity_ci"]
    assert lo < SLOPE < hi and row["runs"] == 5
    assert row["realized_speedup_at_best_speed"] > max(row["realized_speedup_runs"]) * 0.97
    report = build_report(docs)
    assert any("for each 1 % the machine slows" in note for note in report.notes)
    single = build_report(docs[:1]).rows[0]
    assert single["speed_sensitivity"] is None and single["realized_speedup_at_best_speed"] is None
