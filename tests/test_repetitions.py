"""Figures from repetitions (mnbench.stats.repetitions), the typed record (mnbench.results.Record), the warnings
(mnbench.measure.stability) and the stop rule: the promise that a re-run's estimate falls inside the interval, checked on
simulated runs."""
import math

import numpy as np
import pytest

from mnbench import results
from mnbench.stats import repetitions
from mnbench.measure import stability
from mnbench.report.pairs import SourcedRecord, realized_speedup


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


def _values(std, sep):
    """Per repetition log(fastest std / fastest sep): what `repetitions.speedup` pairs."""
    return [math.log(np.min(a) / np.min(b)) for a, b in zip(std, sep)]


def test_the_interval_holds_the_next_runs_estimate():
    rng = np.random.default_rng(1)
    runs = [_run(rng, repetitions_n=6) for _ in range(150)]
    estimates = [repetitions.estimate(_values(std, sep)) for std, sep, _ in runs]
    pairs = [(a, b) for a in range(len(runs)) for b in range(len(runs)) if a != b]
    hits = sum(estimates[a].interval[0] <= estimates[b].point <= estimates[a].interval[1] for a, b in pairs)
    assert hits / len(pairs) >= 0.9


def test_a_state_both_variants_feel_alike_cancels_in_the_paired_ratio():
    rng = np.random.default_rng(2)
    std, sep = [], []
    for slowdown in (1.0, 1.6, 0.8, 1.2, 0.9, 1.4):  # the machine's speed moves a lot between repetitions
        std.append(slowdown * 18 * np.exp(rng.normal(0, 0.01, 200)))
        sep.append(slowdown * 6 * np.exp(rng.normal(0, 0.01, 200)))
    paired = repetitions.estimate(_values(std, sep))
    assert paired.point == pytest.approx(3.0, rel=0.01)
    assert paired.rel_halfwidth < 0.01
    separately = repetitions.quotient(
        repetitions.estimate([math.log(np.median(s)) for s in std]),
        repetitions.estimate([math.log(np.median(s)) for s in sep]))
    assert separately.rel_halfwidth > 0.2  # unpaired, the machine's moves are noise


def test_one_repetition_promises_nothing_about_the_next():
    estimate = repetitions.estimate([math.log(2.0)])
    assert estimate.point == pytest.approx(2.0)
    assert estimate.interval == (0.0, math.inf)
    assert estimate.as_json()["interval"] == [None, None]


def test_the_realized_speedup_is_exactly_the_ratio_of_the_p50s_beside_it():
    rng = np.random.default_rng(9)
    pairs = []
    for reps in (6, 9, 7):  # three runs, each with its own number of repetitions
        std, sep, sizes = _run(rng, repetitions_n=reps)
        pairs.append((_record(std, sizes, "standard").to_json(), _record(sep, sizes).to_json()))
    for subset in (pairs[:1], pairs):
        speedup = repetitions.speedup(subset).point
        p50_std = repetitions.latency([s for s, _ in subset]).point
        p50_sep = repetitions.latency([p for _, p in subset]).point
        assert speedup == pytest.approx(p50_std / p50_sep, rel=1e-12)
    # and the latency is each repetition's fastest call, geometric-meaned: not the fastest of all calls pooled
    std, sep = pairs[0]
    fastest = [np.min(r) for r in repetitions.repetition_samples(std["samples_ms"], std["round_sizes"],
                                                                  std["repetition_rounds"])]
    assert repetitions.latency([std]).point == pytest.approx(math.exp(np.mean(np.log(fastest))), rel=1e-12)
    assert repetitions.latency([std]).point > min(fastest)


def _runs_with_a_run_effect(rng, *, runs, reps=6, run_sd=0.03, rep_sd=0.01):
    """Repetition values of `runs` runs, each shifted by its own run effect (a process, a VM placement)."""
    return [list(rng.normal(rng.normal(0, run_sd), rep_sd, reps)) for _ in range(runs)]


def test_pooling_runs_narrows_the_interval_and_counts_the_runs_own_spread():
    rng = np.random.default_rng(10)
    # Quiet runs (no run effect): pooling three is three times the repetitions, a narrower interval (typically
    # half as wide: sqrt(1/3) and a smaller t).
    ratios = []
    for _ in range(100):
        quiet = [list(rng.normal(0, 0.02, 6)) for _ in range(3)]
        ratios.append(repetitions.pooled(quiet).rel_halfwidth / repetitions.estimate(quiet[0]).rel_halfwidth)
    assert np.median(ratios) < 0.65
    # Runs that differ beyond their repetitions: the between-run part is found, and the pooled interval of three
    # runs holds the pooled estimate of three other runs; treating all repetitions as one run does not.
    hits = naive_hits = trials = 0
    for _ in range(200):
        a, b = (_runs_with_a_run_effect(rng, runs=3) for _ in range(2))
        pooled_a, pooled_b = repetitions.pooled(a), repetitions.pooled(b)
        naive_a = repetitions.estimate([x for run in a for x in run])
        hits += pooled_a.interval[0] <= pooled_b.point <= pooled_a.interval[1]
        naive_hits += naive_a.interval[0] <= pooled_b.point <= naive_a.interval[1]
        trials += 1
    assert hits / trials >= 0.9
    assert naive_hits / trials < 0.7
    assert repetitions.pooled(_runs_with_a_run_effect(rng, runs=4)).between_runs_sd > 0


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
    assert written["repetition_p50_ms"] == [float(np.median(s)) for s in sep]
    assert written["latency_estimate"]["point"] == pytest.approx(math.exp(np.mean(np.log([np.min(s) for s in sep]))))
    assert written["n"] == sum(len(s) for s in sep) == len(written["samples_ms"])
    assert written["latency_estimate"]["repetitions"] == 3
    again = results.Record.from_json(written)
    assert again.to_json() == written
    assert [len(s.samples_ms) for s in again.repetitions()] == [200, 200, 200]


def test_a_schema_v1_record_reads_as_one_repetition_and_the_file_says_it_is_v1(tmp_path):
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).parent / "fixtures/results/bench-xeon-2026-11-20.json").read_text())
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


def test_the_report_pairs_repetitions_and_shows_the_interval():
    rng = np.random.default_rng(5)
    std, sep, sizes = _run(rng, repetitions_n=6, session_sd=0.0, state_sd=0.0)
    std_item = SourcedRecord(machine="m", source="a", created_utc="", record=_record(std, sizes, "standard").to_json())
    sep_item = SourcedRecord(machine="m", source="a", created_utc="", record=_record(sep, sizes).to_json())
    pair = realized_speedup([std_item], [sep_item])
    assert pair["repetitions"] == 6 and pair["runs"] == 1
    lo, hi = pair["realized_speedup_ci"]
    assert lo < 3.0 < hi and hi / lo < 1.1
    assert pair["realized_speedup_mean_ci"][0] >= lo
    assert pair["realized_speedup"] == pytest.approx(pair["min_ms_standard"] / pair["min_ms_separable"], rel=1e-12)


def test_steal_and_a_wide_interval_are_warnings_that_say_what_to_do():
    doc = {"machine_state": {"steal_fraction_max": 0.12}, "records": [],
           "machine": {"cpu_model": "AMD EPYC", "available_cpus": 2}}
    lines = stability.machine_warnings(doc)
    assert len(lines) == 1 and "stole 12%" in lines[0] and "quieter machine" in lines[0]
    assert stability.machine_warnings({"machine_state": {"steal_fraction_max": 0.01}}) == []
    assert "unfit" in stability.machine_line(doc) and "AMD EPYC, 2 CPUs" in stability.machine_line(doc)
    row = {"arch": "v2", "width": 1.0, "resolution": 224, "device": "cpu", "realized_speedup_halfwidth": 0.2}
    lines = stability.pair_warnings([row])
    assert len(lines) == 1 and "±20%" in lines[0] and "--max-time" in lines[0]
    assert stability.pair_warnings([row | {"realized_speedup_halfwidth": 0.02}]) == []


def test_a_group_stops_once_precise_enough_or_out_of_time_never_before_its_minimum():
    from mnbench.run.plan import MeasureSettings

    settings = MeasureSettings(repetitions=6, repetition_s=0.5, max_time_s=6.0, target_halfwidth=0.03)
    assert not settings.is_done(5, 0.001)  # below the minimum, however precise
    assert settings.is_done(6, 0.02)
    assert not settings.is_done(6, 0.05)
    assert not settings.is_done(11, 0.05) and settings.is_done(12, 0.05)  # 12 x 0.5 s is the time budget
    assert MeasureSettings(repetitions=2, max_repetitions=3, max_time_s=99).is_done(3, 1.0)
    with pytest.raises(Exception, match="at least 2"):
        MeasureSettings(repetitions=1)
