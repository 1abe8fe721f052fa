"""The model's frozen control (`mnbench.measure.control`) as the gate's normaliser, on synthetic records with known changes, and
finding a baseline's model file by its sha256."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from mnbench import results
from mnbench.gate.compare import (INCONCLUSIVE, PASS, REFERENCE, REGRESSION, SLOPE_UNCERTAINTY, CONTROL,
                                  compare_records, compare_results)
from mnbench.gate.remeasure import _control_files
from mnbench.measure.reference import REFERENCE_NAME
from mnbench.stats.samples import summarize
from mnbench.measure.control import find_model_file, own_control

MACHINE = {"cpu_model": "Test CPU 9000", "versions": {"onnxruntime": "1.32.0"}}
SETTINGS = {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_allow_spinning": True}
OLD, NEW = "a" * 64, "b" * 64


def record_with_controls(rng, *, machine=0.0, ref_feels=1.0, model_ms=6.0, sha=OLD, controls=(OLD,), settings=SETTINGS,
                   control_settings=SETTINGS, rounds=30, per_round=9, sample_sd=0.05, round_sd=0.02):
    """A record as `mnbench run` (or a re-measurement) writes it. The machine is `machine` slower (log scale) than
    at baseline time with some per-round wobble; model and controls feel all of it, the reference `ref_feels` of it,
    as the small reference felt a fraction of what a large model did on a shared VM."""
    speed = machine + rng.normal(0, round_sd, rounds)

    def samples(ms, feels):
        return [float(s) for i in range(rounds) for s in ms * np.exp(feels * speed[i]
                                                                    + rng.normal(0, sample_sd, per_round))]

    model = samples(model_ms, 1.0)
    record = {"arch": "v2", "variant": "separable", "width": 1.0, "resolution": 224, "batch": 1, "device": "cpu",
              "runtime": "onnxruntime", "runtime_version": "1.32.0", "precision": "fp32", "threads": 2,
              "settings": settings, "macs": 300_000_000, "params": 3_500_000, "latency_ms": summarize(model),
              "n": len(model), "samples_ms": model, "throughput_ips": 1000.0 / float(np.mean(model)),
              "round_sizes": [per_round] * rounds, "model_sha256": sha,
              "reference": {"name": REFERENCE_NAME, "samples_ms": samples(0.8, ref_feels),
                            "round_sizes": [per_round] * rounds},
              "controls": {t: {"settings": control_settings, "samples_ms": samples(6.0, 1.0),
                            "round_sizes": [per_round] * rounds} for t in controls}}
    return record


def doc(*records):
    out = results.new_result(copy.deepcopy(MACHINE), list(records))
    results.validate_result(out)
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_a_machine_slowdown_the_reference_does_not_feel_is_cancelled_by_the_control(rng):
    """The false alarm of session 2: an unchanged v2 1.0/224 ran 2.2x slower a minute after its baseline while the
    small reference ran 28 % slower. Normalised by the reference that is a +70 % 'regression'; the control, the same
    file run again in the same rounds, slowed exactly as much, so the change is nil."""
    baseline = record_with_controls(rng)
    current = record_with_controls(rng, machine=math.log(2.2), ref_feels=math.log(1.28) / math.log(2.2))
    report = compare_results(doc(baseline), doc(current), 0.10)
    (verdict,) = report.models
    assert verdict.verdict == PASS and verdict.normaliser == CONTROL
    assert verdict.machine_shift == pytest.approx(1.2, abs=0.05)  # what the control felt: the machine, 2.2x slower
    assert abs(verdict.change) < 0.03

    # The same files without controls: the reference cannot vouch for a 2.2x slowdown it felt as 28 %.
    for record in (baseline, current):
        del record["controls"]
    (without,) = compare_results(doc(baseline), doc(current), 0.10).models
    assert without.normaliser == REFERENCE and without.verdict == REGRESSION


def test_a_baseline_made_20_percent_faster_fails_against_its_control(rng):
    """The brief's injected regression: latency fields scaled, the controls' samples (like the reference's) kept."""
    baseline, current = doc(record_with_controls(rng)), doc(record_with_controls(rng, machine=0.3, ref_feels=0.5))
    report = compare_results(results.with_latencies_scaled(baseline, 1 / 1.2), current, 0.10)
    (verdict,) = report.models
    assert verdict.verdict == REGRESSION and verdict.normaliser == CONTROL
    assert verdict.change == pytest.approx(0.2, abs=0.03)
    assert compare_results(results.with_latencies_scaled(baseline, 1 / 1.1), current, 0.10).models[0].verdict != PASS


def test_an_unchanged_model_and_its_control_are_one_workload_so_no_slope_term(rng):
    comparison = compare_records(record_with_controls(rng), record_with_controls(rng, machine=0.5))
    assert comparison.normaliser == CONTROL and comparison.normalised
    assert comparison.slope_se == 0.0


@pytest.mark.parametrize("change", ["model file", "settings"])
def test_a_changed_model_may_feel_the_machine_differently_from_its_control(rng, change):
    """Today's model is another file, or runs with other settings: then it and the baseline's control are two
    workloads, and the slope term is back."""
    baseline = record_with_controls(rng)
    if change == "model file":
        current = record_with_controls(rng, machine=0.5, sha=NEW, controls=(OLD, NEW))
    else:
        current = record_with_controls(rng, machine=0.5, settings={**SETTINGS, "intra_op_allow_spinning": False})
    comparison = compare_records(baseline, current)
    assert comparison.normaliser == CONTROL
    assert comparison.slope_se == pytest.approx(SLOPE_UNCERTAINTY * 0.5, rel=0.05)


def test_a_control_of_another_file_is_never_divided_out(rng):
    """Today's record measured only its own (new) file's control: nothing to compare the baseline's control with, so the
    reference normalises, and the report says the baseline's file was not at hand."""
    baseline = record_with_controls(rng)
    current = record_with_controls(rng, sha=NEW, controls=(NEW,))
    report = compare_results(doc(baseline), doc(current), 0.10)
    assert report.models[0].normaliser == REFERENCE
    assert any("own model file was not measured again" in note for note in report.notes)


def test_a_baseline_without_controls_says_so(rng):
    baseline, current = record_with_controls(rng), record_with_controls(rng)
    del baseline["controls"]
    report = compare_results(doc(baseline), doc(current), 0.10)
    assert report.models[0].normaliser == REFERENCE
    assert any("no model controls" in note for note in report.notes)


def test_a_big_shift_with_a_changed_model_is_inconclusive_and_says_why(rng):
    """A changed model on a machine 2.2x slower than at baseline time: the control cannot vouch for how the new model
    feels that, so no verdict either way, and the note says the machine moved."""
    baseline = record_with_controls(rng)
    current = record_with_controls(rng, machine=math.log(2.2) + math.log(1.05), sha=NEW, controls=(OLD, NEW))
    (verdict,) = compare_results(doc(baseline), doc(current), 0.10).models
    assert verdict.verdict == INCONCLUSIVE and "control of a changed model" in verdict.note


# ---- finding the baseline's file ----

def _export_like(folder, name, data: bytes):
    """A file and its export manifest, as `mnbench.artifacts.export` leaves them in the models folder."""
    import hashlib

    path = folder / f"{name}.onnx"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    (folder / f"{name}.json").write_text(json.dumps({"file": path.name, "sha256": sha}))
    return path, sha


def test_the_baseline_file_is_found_by_its_bytes_not_its_name(tmp_path):
    old_path, old_sha = _export_like(tmp_path, "v2-old", b"old model bytes")
    assert find_model_file(old_sha, [old_path], tmp_path) == old_path
    moved = tmp_path / "elsewhere.onnx"
    assert find_model_file(old_sha, [moved], tmp_path) == old_path  # the recorded path is gone: the manifest finds it
    old_path.write_bytes(b"edited since")  # same name, other bytes: not the baseline's file any more
    assert find_model_file(old_sha, [old_path], tmp_path) is None


def test_a_damaged_manifest_is_skipped(tmp_path):
    path, sha = _export_like(tmp_path, "good", b"good model")
    (tmp_path / "aaa-torn.json").write_text("{not json")
    assert find_model_file(sha, [], tmp_path) == path
    assert find_model_file("f" * 64, [], tmp_path) is None
    assert find_model_file(sha, [], tmp_path / "missing-folder") is None


class _Exported:
    def __init__(self, path, sha):
        self.path, self.sha256 = path, sha


def test_a_re_measurement_controls_todays_file_and_the_baselines_when_found(tmp_path, rng):
    old_path, old_sha = _export_like(tmp_path, "old", b"old model")
    new_path, new_sha = _export_like(tmp_path, "new", b"new model")
    baseline = record_with_controls(rng, sha=old_sha, controls=(old_sha,))
    baseline["model_path"] = str(old_path)
    assert own_control(baseline) is not None
    # The model code changed: today's export is another file; the baseline's is measured beside it.
    assert _control_files(baseline, _Exported(new_path, new_sha), tmp_path) == {new_sha: new_path, old_sha: old_path}
    # Unchanged: one file, one control.
    assert _control_files(baseline, _Exported(old_path, old_sha), tmp_path) == {old_sha: old_path}
    # The baseline's file is gone: only today's control (for the next baseline); the check falls back to the reference.
    old_path.unlink()
    assert _control_files(baseline, _Exported(new_path, new_sha), tmp_path) == {new_sha: new_path}
    # A baseline without controls gets none of its own looked for.
    del baseline["controls"]
    assert _control_files(baseline, _Exported(new_path, new_sha), tmp_path) == {new_sha: new_path}


def test_result_files_from_before_the_rename_keep_their_controls_under_twins():
    from mnbench.measure.control import control_entry, own_control

    entry = {"settings": {}, "samples_ms": [1.0], "round_sizes": [1]}
    old_record = {"model_sha256": OLD, "twins": {OLD: entry}}
    assert own_control(old_record) is entry
    assert control_entry(old_record, "other") is None


def record_with_sessions(rng, model_offsets, control_offsets, *, machine=0.0, rounds_per_rep=8, per_round=9,
                         sample_sd=0.05, round_sd=0.02, latency_ms=6.0):
    """A record of `len(model_offsets)` repetitions, each with fresh sessions of the model and its control (one
    file): every session runs its whole life at its own speed (`*_offsets`, log scale), as two sessions of one
    file do on a shared VM (benchmarks/results/session_effect.md)."""
    reps = len(model_offsets)
    speed = machine + rng.normal(0, round_sd, reps * rounds_per_rep)

    def samples(offsets):
        return [float(s) for r in range(reps) for i in range(rounds_per_rep)
                for s in latency_ms * np.exp(offsets[r] + speed[r * rounds_per_rep + i]
                                             + rng.normal(0, sample_sd, per_round))]

    record = record_with_controls(rng, rounds=reps * rounds_per_rep, per_round=per_round)
    record["samples_ms"] = samples(model_offsets)
    record["latency_ms"] = summarize(record["samples_ms"])
    record["controls"][OLD]["samples_ms"] = samples(control_offsets)
    record["repetition_rounds"] = [rounds_per_rep] * reps
    return record


def test_a_baseline_session_effect_is_not_read_as_a_change(rng):
    """Issue 10's false 'improvement': at baseline time the model's session ran 14 % slower than its control's
    (one file, so the true ratio is 1). Judged against today's control of that file, an unchanged model passes
    and its CI holds 0; the baseline's own ratio would have read as a 12 % improvement."""
    baseline = record_with_sessions(rng, [math.log(1.14)] * 3, [0.0] * 3)
    current = record_with_sessions(rng, rng.normal(0, 0.04, 8), rng.normal(0, 0.04, 8), machine=0.3)
    (verdict,) = compare_results(doc(baseline), doc(current), 0.10).models
    assert verdict.method == "paired" and verdict.normaliser == CONTROL
    assert verdict.ci_low <= 0.0 <= verdict.ci_high
    assert verdict.verdict == PASS
    assert verdict.machine_shift == pytest.approx(math.expm1(0.3), abs=0.06)


def test_sessions_that_differ_widen_the_interval_at_the_repetition_level(rng):
    """Today's sessions of model and control differ by 5 % (sd) per repetition, far more than the rounds inside a
    repetition vary: the CI is built from the repetitions, so over many checks it holds the true change (0) about
    as often as it promises and is as wide as the sessions' spread says, not as narrow as the rounds would make it."""
    baseline = record_with_sessions(rng, [0.0] * 3, [0.0] * 3)
    reps, offset_sd, covered, errors = 6, 0.05, 0, []
    for _ in range(60):
        current = record_with_sessions(rng, rng.normal(0, offset_sd, reps), [0.0] * reps, rounds_per_rep=4,
                                       per_round=5)
        comparison = compare_records(baseline, current)
        assert comparison.df == reps - 1 and comparison.repetitions == reps
        low, high = comparison.interval()
        covered += low <= 0.0 <= high
        errors.append(comparison.se)
    assert covered >= 0.85 * 60
    # Rounds alone would give about 0.02/sqrt(24) = 0.004; the sessions' spread gives 0.05/sqrt(6) = 0.02.
    assert float(np.median(errors)) >= 0.7 * offset_sd / math.sqrt(reps)


def test_a_baseline_whose_model_and_control_were_not_one_workload_is_compared_as_two_runs(rng):
    """The baseline's control ran under other settings than its model: their ratio is not 1 by construction, so
    the baseline's own ratio is part of the estimate again (the comparison of two runs)."""
    baseline = record_with_controls(rng, control_settings={**SETTINGS, "intra_op_allow_spinning": False})
    current = record_with_controls(rng)
    assert compare_records(baseline, current).method == "rounds"


def test_an_injected_regression_is_read_from_the_recorded_scale(rng):
    """`with_latencies_scaled` records its factor: the baseline's model is then its control × that factor, and an
    unchanged model today reads as the injected change, with today's precision."""
    baseline = record_with_sessions(rng, [0.0] * 3, [0.0] * 3)
    current = record_with_sessions(rng, rng.normal(0, 0.02, 6), rng.normal(0, 0.02, 6))
    scaled = results.with_latencies_scaled(doc(baseline), 1 / 1.2)
    assert scaled["records"][0][results.LATENCY_SCALE_KEY] == pytest.approx(1 / 1.2)
    (verdict,) = compare_results(scaled, doc(current), 0.10).models
    assert verdict.change == pytest.approx(0.2, abs=0.04)
    assert verdict.verdict == REGRESSION
