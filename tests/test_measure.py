"""The timed loop, driven by a fake clock: workloads advance the clock instead of taking real time."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

from mnbench.measure import loop as measure
from mnbench.stats import samples as stats
from mnbench.errors import MnbenchError

MS = 1_000_000  # ns


class FakeClock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


def steady(clock: FakeClock, ms: float = 1.0):
    """A zero-noise workload: every call takes exactly `ms`."""
    def call():
        clock.now_ns += int(ms * MS)
    return call


def lognormal(clock: FakeClock, sigma: float, seed: int, median_ms: float = 1.0):
    rng = np.random.default_rng(seed)

    def call():
        clock.now_ns += int(median_ms * MS * rng.lognormal(0.0, sigma))
    return call


def run(workloads, clock, **settings):
    """measure_interleaved with fast test defaults; returns (measurements, elapsed_s per round)."""
    elapsed: list[float] = []
    kwargs = dict(min_time_s=2.0, max_time_s=6.0, warmup_s=0.5, target_rel_ci=0.01, round_s=0.05,
                  clock=clock, on_round=lambda e, f: elapsed.append(e))
    kwargs.update(settings)
    return measure.measure_interleaved(workloads, **kwargs), elapsed


def test_zero_noise_stops_right_after_min_time():
    clock = FakeClock()
    result, elapsed = run({"a": steady(clock), "b": steady(clock, 2.0)}, clock)
    assert elapsed[-1] >= 2.0 > elapsed[-2]  # the first round that ends past min time
    assert {m.stop_reason for m in result.values()} == {measure.STOP_TARGET_CI}
    assert set(result["a"].samples_ms) == {1.0} and set(result["b"].samples_ms) == {2.0}


def test_very_noisy_runs_to_max_time():
    clock = FakeClock()
    result, elapsed = run({"quiet": steady(clock), "noisy": lognormal(clock, 1.0, seed=0)}, clock)
    assert elapsed[-1] >= 6.0 > elapsed[-2]
    assert result["noisy"].stop_reason == measure.STOP_MAX_TIME
    assert stats.median_ci_relative_halfwidth(result["noisy"].samples_ms) > 0.01


def test_moderate_noise_stops_at_first_round_that_meets_target():
    clock = FakeClock()
    result, elapsed = run({"w": lognormal(clock, 0.1, seed=1)}, clock, min_time_s=0.2, max_time_s=10.0)
    m = result["w"]
    assert m.stop_reason == measure.STOP_TARGET_CI
    assert 0.2 <= elapsed[-1] < 10.0 and elapsed[-2] >= 0.2  # converged after min time, not at it
    assert stats.median_ci_relative_halfwidth(m.samples_ms) <= 0.01
    before_last_round = m.samples_ms[: m.n - m.round_sizes[-1]]
    assert stats.median_ci_relative_halfwidth(before_last_round) > 0.01


def test_never_stops_before_min_time_even_when_converged():
    clock = FakeClock()
    _, elapsed = run({"a": steady(clock)}, clock, min_time_s=3.0, max_time_s=3.0, target_rel_ci=0.5)
    assert elapsed[-1] >= 3.0 and all(e < 3.0 for e in elapsed[:-1])


def test_needs_minimum_sample_count_before_stopping():
    # One 1 s call per round: zero noise, but the CI needs MIN_SAMPLES_FOR_CI samples first.
    clock = FakeClock()
    result, _ = run({"slow": steady(clock, 1000.0)}, clock, min_time_s=0.0, max_time_s=100.0, warmup_s=0.0)
    assert result["slow"].n == stats.MIN_SAMPLES_FOR_CI
    assert result["slow"].round_sizes == [1] * stats.MIN_SAMPLES_FOR_CI


def test_round_sizes_calibrated_and_sum_to_samples():
    clock = FakeClock()
    result, elapsed = run({"a": steady(clock, 1.0), "b": lognormal(clock, 0.5, seed=2, median_ms=4.0)}, clock)
    assert result["a"].round_sizes == [50] * len(elapsed)  # 0.05 s rounds of 1 ms calls
    for m in result.values():
        assert sum(m.round_sizes) == m.n == len(m.samples_ms)
        assert len(m.round_sizes) == len(elapsed)
        assert [len(r) for r in m.rounds()] == m.round_sizes
    assert all(size >= 1 for size in result["b"].round_sizes)


def test_round_size_follows_a_workload_that_slows_down():
    clock = FakeClock()
    calls = 0

    def slows_down():
        nonlocal calls
        calls += 1
        clock.now_ns += (1 if calls <= 1000 else 5) * MS
    result, _ = run({"w": slows_down}, clock, warmup_s=0.5)
    sizes = result["w"].round_sizes
    assert sizes[0] == 50 and sizes[-1] == 10  # 0.05 s rounds of 1 ms, then of 5 ms calls


def test_warm_up_is_not_recorded():
    clock = FakeClock()
    calls = 0

    def cold_then_steady():
        nonlocal calls
        calls += 1
        clock.now_ns += (100 if calls <= 5 else 1) * MS
    result, _ = run({"w": cold_then_steady}, clock, warmup_s=0.6)
    assert set(result["w"].samples_ms) == {1.0}
    assert calls - result["w"].n >= 5  # at least the cold calls plus warm-up time


def test_warm_up_makes_a_few_calls_even_with_zero_warmup_time():
    clock = FakeClock()
    calls = []
    measure.measure_single(lambda: calls.append(1) or steady(clock)(), clock=clock, warmup_s=0.0,
                           min_time_s=0.0, max_time_s=0.0, round_s=0.001)
    assert len(calls) >= measure.MIN_WARMUP_CALLS + 1


def test_interleaving_order_varies_between_rounds_and_is_seeded():
    def orders(seed):
        clock = FakeClock()
        log: list[str] = []

        def workload(name):
            def call():
                log.append(name)
                clock.now_ns += MS
            return call
        run({name: workload(name) for name in "abc"}, clock, seed=seed, max_time_s=3.0,
            on_round=lambda e, f: log.append("|"))
        rounds = "".join(log).split("|")[1:-1]  # the first segment also holds the warm-up
        blocks = ["".join(dict.fromkeys(r)) for r in rounds]  # the order each workload's block began
        assert all(sorted(b) == ["a", "b", "c"] for b in blocks)
        assert all(r == "".join(ch * r.count(ch) for ch in b) for r, b in zip(rounds, blocks))  # contiguous
        return blocks

    blocks = orders(seed=0)
    assert len(set(blocks)) > 1
    assert blocks == orders(seed=0)
    assert blocks != orders(seed=1)


def test_progress_reaches_one_and_never_goes_past():
    clock = FakeClock()
    progress: list[float] = []
    run({"w": lognormal(clock, 0.1, seed=3)}, clock, on_round=lambda e, f: progress.append(f))
    assert progress[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in progress)


def test_gc_reenabled_after_workload_exception():
    clock = FakeClock()
    calls = 0

    def fails_in_first_round():
        nonlocal calls
        calls += 1
        clock.now_ns += MS
        if calls == 20:
            raise RuntimeError("inference failed")
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="inference failed"):
        run({"w": fails_in_first_round}, clock, warmup_s=0.0)
    assert gc.isenabled()


def test_gc_left_disabled_if_it_was_disabled():
    clock = FakeClock()
    gc.disable()
    try:
        measure.measure_single(steady(clock), clock=clock, warmup_s=0.0, min_time_s=0.0, max_time_s=0.0)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_disabled_inside_timed_calls():
    clock = FakeClock()
    seen = []

    def call():
        seen.append(gc.isenabled())
        clock.now_ns += MS
    run({"w": call}, clock, max_time_s=2.0)
    assert not any(seen)


def test_keyboard_interrupt_propagates_untouched():
    clock = FakeClock()
    calls = 0

    def interrupted():
        nonlocal calls
        calls += 1
        clock.now_ns += MS
        if calls == 700:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run({"w": interrupted}, clock)
    assert gc.isenabled()


def test_measurement_summary_and_single():
    clock = FakeClock()
    m = measure.measure_single(lognormal(clock, 0.2, seed=4), clock=clock, min_time_s=1.0, max_time_s=2.0,
                               warmup_s=0.1, round_s=0.05)
    assert isinstance(m, measure.Measurement)
    assert m.summary() == stats.summarize(m.samples_ms)
    with pytest.raises(AttributeError):
        m.samples_ms = []  # frozen


@pytest.mark.parametrize("bad", [
    dict(min_time_s=5.0, max_time_s=1.0),
    dict(min_time_s=-1.0),
    dict(target_rel_ci=0.0),
    dict(confidence=1.0),
    dict(round_s=0.0),
])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(MnbenchError):
        measure.measure_interleaved({"w": lambda: None}, **bad)
    with pytest.raises(MnbenchError, match="no workloads"):
        measure.measure_interleaved({})


@pytest.mark.measures  # 50 ms of a no-op on the real clock, but the real clock all the same
def test_real_clock_smoke():
    # The default clock, with tiny times: runs and records positive durations (no timing assertions).
    m = measure.measure_single(lambda: sum(range(100)), min_time_s=0.02, max_time_s=0.05, warmup_s=0.01,
                               round_s=0.005)
    assert m.n >= 1 and min(m.samples_ms) > 0 and not math.isnan(m.summary()["p50"])


def test_never_stops_before_min_rounds():
    """A precise median after 2 rounds is not enough: the between-round noise needs rounds to be estimated."""
    clock = FakeClock()
    result, elapsed = run({"a": steady(clock)}, clock, min_time_s=0.01, round_s=0.05, min_rounds=9)
    assert len(result["a"].round_sizes) == 9 == len(elapsed)
    assert result["a"].stop_reason == measure.STOP_TARGET_CI


def _with_neighbour_spin(clock: FakeClock, ms: float, spin_ms: float, last: list[str], name: str):
    """A workload that runs 3x slower while the previous workload's threads still spin: for `spin_ms` after a
    switch from another workload (what ONNX Runtime's spinning workers did on a 2-core VM)."""
    switched_at = [0]

    def call():
        if last[0] != name:
            last[0], switched_at[0] = name, clock.now_ns
        slow = clock.now_ns - switched_at[0] < spin_ms * MS
        clock.now_ns += int(ms * (3.0 if slow else 1.0) * MS)
    return call


def test_blocks_settle_before_timing_so_a_neighbours_spinning_threads_are_not_charged():
    last = [""]
    for settle_max_s, expect_slow in ((None, False), (0.0, True)):
        clock = FakeClock()
        workloads = {"a": _with_neighbour_spin(clock, 5.0, 40.0, last, "a"),
                     "b": _with_neighbour_spin(clock, 5.0, 40.0, last, "b")}
        result, _ = run(workloads, clock, round_s=0.1, settle_max_s=settle_max_s, min_time_s=1.0, max_time_s=1.0)
        slowest = max(result["a"].samples_ms)
        assert (slowest > 10.0) is expect_slow, (settle_max_s, slowest)


def test_settling_stops_at_the_first_call_at_usual_speed_or_gives_up_at_the_cap():
    clock = FakeClock()
    durations_ms = iter([3.0] * 5 + [1.0] * 100)
    calls = [0]

    def spun_down_after_five():
        calls[0] += 1
        clock.now_ns += int(next(durations_ms) * MS)

    measure._settle(spun_down_after_five, usual_ns=1.0 * MS, max_s=0.2, clock=clock)
    assert calls[0] == 6  # five slow calls, then the first usual one ends it

    clock = FakeClock()
    measure._settle(steady(clock, 4.0), usual_ns=1.0 * MS, max_s=0.2, clock=clock)  # really got 4x slower
    assert 0.2 * 1e9 <= clock.now_ns <= 0.2 * 1e9 + 4 * MS  # gave up at the cap, did not stall the round


def test_a_single_workload_gets_no_settling():
    clock = FakeClock()
    calls = [0]

    def counted():
        calls[0] += 1
        clock.now_ns += MS

    result, _ = run({"only": counted}, clock, warmup_s=0.0, min_time_s=0.5, max_time_s=0.5)
    assert calls[0] == result["only"].n + measure.MIN_WARMUP_CALLS  # every call after warm-up was timed
