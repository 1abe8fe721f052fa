"""Figures from repetitions (mnbench.repetitions), the typed record (mnbench.results.Record) and the warnings
(mnbench.stability): the promise that a re-run's estimate falls inside the interval, checked on simulated runs."""
import math

import numpy as np
import pytest

from mnbench import repetitions, results, stability
from mnbench.report.pairs import SourcedRecord, realized_speedup
from mnbench.stats import ratio_of_medians_ci


def _run(rng, *, repetitions_n=3, session_sd=0.06, state_sd=0.04, rounds=5, per_round=40, speedup=3.0):
    """One simulated run: per repetition, a machine state both variants feel (state_sd) and a session effect of
    each variant's own session (session_sd), for its whole life; lognormal per-call noise on top."""
    std, sep, sizes = [], [], []
    for _ in range(repetitions_n):
        state = rng.normal(0, state_sd)
        s_std, s_sep = rng.normal(0, session_sd, size=2)
        n = rounds * per_round
        std.append(np.exp(math.log(6.0 * speedup) + state + s_std + rng.normal(0, 0.05, n)))
        sep.append(np.exp(math.log(6.0) + 1.5 * state + s_sep + rng.normal(0, 0.05, n)))
        sizes.append([per_round] * rounds)
    return std, sep, sizes


def _by_round(reps, sizes):
    return [np.split(r, np.cumsum(n)[:-1]) for r, n in zip(reps, sizes)]


def test_the_rerun_interval_holds_the_next_runs_estimate_where_a_pooled_bootstrap_does_not():
    rng = np.random.default_rng(1)
    # Many runs: with three repetitions each interval's width varies a lot, so its coverage is an average.
    runs = [_run(rng) for _ in range(150)]
    estimates = [repetitions.ratio_estimate(_by_round(std, n), _by_round(sep, n)) for std, sep, n in runs]
    pooled = [ratio_of_medians_ci(np.concatenate(std), np.concatenate(sep), n_boot=200) for std, sep, _ in runs]
    pairs = [(a, b) for a in range(len(runs)) for b in range(len(runs)) if a != b]
    rerun_hits = sum(estimates[a].rerun[0] <= estimates[b].point <= estimates[a].rerun[1] for a, b in pairs)
    pooled_hits = sum(pooled[a][1] <= estimates[b].point <= pooled[a][2] for a, b in pairs)
    assert rerun_hits / len(pairs) >= 0.9
    assert pooled_hits / len(pairs) < 0.4  # the v1 interval: samples of one session treated as independent


def test_a_state_both_variants_feel_alike_cancels_in_the_paired_ratio():
    rng = np.random.default_rng(2)
    std, sep = [], []
    for slowdown in (1.0, 1.6, 0.8):  # the machine's speed moves a lot between repetitions
        std.append(slowdown * 18 * np.exp(rng.normal(0, 0.01, 200)))
        sep.append(slowdown * 6 * np.exp(rng.normal(0, 0.01, 200)))
    paired = repetitions.ratio_estimate([[s] for s in std], [[s] for s in sep])
    assert paired.point == pytest.approx(3.0, rel=0.01)
    assert paired.rerun_rel_halfwidth < 0.03
    separately = repetitions.quotient(
        repetitions.estimate([math.log(np.median(s)) for s in std]),
        repetitions.estimate([math.log(np.median(s)) for s in sep]))
    assert separately.rerun_rel_halfwidth > 0.3  # unpaired, the machine's moves are noise


def test_one_repetition_promises_nothing_about_the_next():
    estimate = repetitions.estimate([math.log(2.0)])
    assert estimate.point == pytest.approx(2.0)
    assert estimate.rerun == (0.0, math.inf)
    assert estimate.as_json()["rerun_interval"] == [None, None]


def test_a_burst_that_hits_some_rounds_of_one_variant_barely_moves_the_round_paired_ratio():
    rng = np.random.default_rng(8)
    std = [18 * np.exp(rng.normal(0, 0.01, 20)) for _ in range(8)]
    sep = [6 * np.exp(rng.normal(0, 0.01, 20)) for _ in range(8)]
    for i in (1, 4, 6):  # a neighbour's job doubles three of the separable model's blocks
        sep[i] = sep[i] * 2
    paired = repetitions.ratio_estimate([std], [sep])
    pooled = float(np.median(np.concatenate(std)) / np.median(np.concatenate(sep)))
    assert abs(paired.point / 3.0 - 1) < abs(pooled / 3.0 - 1)


def test_lucky_agreement_of_three_repetitions_never_gives_less_than_their_own_noise():
    estimate = repetitions.estimate([0.0, 0.0, 0.0], within_sd=[0.02, 0.02, 0.02])
    assert estimate.rerun_rel_halfwidth > 0.02 * 4.3 * math.sqrt(2 / 3) * 0.9


def test_disagreeing_repetitions_are_flagged():
    assert repetitions.estimate([0.0, 0.2, -0.2], within_sd=[0.01] * 3).repetitions_disagree
    assert not repetitions.estimate([0.0, 0.01, -0.01], within_sd=[0.01] * 3).repetitions_disagree


def _record(std_or_sep, sizes, variant="separable", **extra):
    series = results.SampleSeries.concat([results.SampleSeries.of(s, r) for s, r in zip(std_or_sep, sizes)])
    fields = {"arch": "v2", "variant": variant, "width": 1.0, "resolution": 224, "batch": 1, "device": "cpu",
              "runtime": "onnxruntime", "precision": "fp32", "threads": 2, "macs": 300_000_000,
              "params": 3_504_872, "model_sha256": "a" * 64} | extra
    return results.Record(fields=fields, series=series, repetition_rounds=tuple(len(r) for r in sizes))


def test_a_record_round_trips_and_derives_its_figures_on_write():
    rng = np.random.default_rng(3)
    std, sep, sizes = _run(rng)
    written = _record(sep, sizes).to_json()
    results.validate_record(written)
    assert written["repetition_rounds"] == [5, 5, 5]
    assert len(written["repetition_p50_ms"]) == 3
    assert written["n"] == sum(len(s) for s in sep) == len(written["samples_ms"])
    assert written["p50_estimate"]["repetitions"] == 3
    again = results.Record.from_json(written)
    assert again.to_json() == written
    assert [len(s.samples_ms) for s in again.repetitions()] == [200, 200, 200]


def test_a_schema_v1_record_reads_as_one_repetition_and_the_file_says_it_is_v1(tmp_path):
    import json
    from pathlib import Path

    doc = json.loads(Path("tests/fixtures/results/bench-xeon-2026-11-27.json").read_text())
    assert doc["schema_version"] == 1
    record = results.Record.from_json(doc["records"][0])
    assert record.repetition_rounds == () and len(record.repetitions()) == 1
    assert "schema v1" in results.schema_note(doc, "old.json")


def test_repetition_rounds_that_do_not_add_up_are_a_damaged_record():
    rng = np.random.default_rng(4)
    _, sep, sizes = _run(rng)
    written = _record(sep, sizes).to_json()
    written["repetition_rounds"] = [5, 5]
    with pytest.raises(results.DamagedResultError, match="repetition_rounds"):
        results.validate_record(written)


def test_the_report_pairs_repetitions_and_shows_the_rerun_interval():
    rng = np.random.default_rng(5)
    std, sep, sizes = _run(rng, session_sd=0.0, state_sd=0.0)
    pair = realized_speedup(SourcedRecord(machine="m", source="a", created_utc="", record=_record(std, sizes, "standard").to_json()),
                            SourcedRecord(machine="m", source="a", created_utc="", record=_record(sep, sizes).to_json()))
    assert pair["repetitions"] == 3
    lo, hi = pair["realized_speedup_ci"]
    assert lo < 3.0 < hi and hi / lo < 1.1
    assert pair["realized_speedup_mean_ci"][0] >= lo


def test_machine_and_pair_warnings_name_the_cause_and_what_helps():
    doc = {"machine_state": {"steal_fraction_max": 0.12, "reference_vs_host_best": {"cpu": {"slowdown": 1.6, "runs_seen": 4}}},
           "records": []}
    lines = stability.machine_warnings(doc)
    assert any("stole 12%" in line for line in lines)
    assert "--repetitions 5" in stability.with_advice(lines)[-1] and stability.with_advice([]) == []
    # What helps is what the run has not tried: twice its repetitions, and one thread only where it used more.
    tried = stability.with_advice(lines, [{"repetitions": 5, "threads": 1}, {"repetitions": 5, "threads": 1}])[-1]
    assert "--repetitions 10" in tried and "--threads 1" not in tried and "quieter machine" in tried
    assert "--threads 1" in stability.with_advice(lines, [{"repetitions": 3, "threads": 2}])[-1]
    assert any("1.60x slower than the best" in line for line in lines)
    row = {"arch": "v2", "width": 1.0, "resolution": 224, "device": "cpu", "repetitions_disagree": True,
           "between_repetition_sd": 0.1, "within_repetition_sd": 0.01, "realized_speedup_rerun_halfwidth": 0.2}
    lines = stability.pair_warnings([row])
    assert any("disagree" in line for line in lines) and any("±20%" in line for line in lines)
    assert stability.pair_warnings([row | {"repetitions_disagree": False, "realized_speedup_rerun_halfwidth": 0.02}]) == []


def test_the_reference_moving_between_repetitions_is_a_warning():
    rng = np.random.default_rng(6)
    reference = results.SampleSeries.concat([results.SampleSeries.of(m * np.exp(rng.normal(0, 0.01, 50)), [50])
                                             for m in (1.0, 1.3, 1.0)])
    _, sep, _ = _run(rng, rounds=1, per_round=50)
    record = _record(sep, [[50]] * 3)
    record = results.Record(fields=record.fields, series=record.series, repetition_rounds=(1, 1, 1),
                            reference=results.Companion(reference, {"name": "ref"}))
    lines = stability.machine_warnings({"records": [record.to_json()]})
    assert any("moved 30% between repetitions" in line for line in lines)
