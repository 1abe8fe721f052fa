"""Each pair's between-repetition variance moderated by the other pairs of its run (mnbench.report.shared_noise,
repetitions.moderated): the rerun promise kept on simulated runs, with intervals that no longer pay t(2) = 4.3."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from mnbench import repetitions, results
from mnbench.report.pairs import build_report
from mnbench.report.shared_noise import leave_one_out_priors
from test_repetitions import _by_round, _record, _run  # pytest puts tests/ on sys.path

PAIRS = ("v1", "v2", "v3-small", "v3-large")


def _full_run(rng, **kwargs):
    """One simulated `mnbench run`: four pairs measured in the same three repetitions on one device."""
    return {arch: _run(rng, speedup=2.0 + i, **kwargs) for i, arch in enumerate(PAIRS)}


def _intervals(run, moderate: bool):
    own = {arch: repetitions.ratio_estimate(_by_round(std, n), _by_round(sep, n)) for arch, (std, sep, n) in run.items()}
    if not moderate:
        return own
    priors = leave_one_out_priors({arch: ("run", e.between_sd ** 2, e.repetitions) for arch, e in own.items()})
    return {arch: repetitions.moderated(e, *priors[arch]) for arch, e in own.items()}


def test_moderated_intervals_keep_the_rerun_promise_and_are_narrower():
    rng = np.random.default_rng(11)
    runs = [_full_run(rng) for _ in range(40)]
    for moderate in (False, True):
        estimates = [_intervals(run, moderate) for run in runs]
        hits = total = 0
        for a in range(len(runs)):
            for b in range(len(runs)):
                if a != b:
                    for arch in PAIRS:
                        lo, hi = estimates[a][arch].rerun
                        hits += lo <= estimates[b][arch].point <= hi
                        total += 1
        widths = [e.rerun_rel_halfwidth for run in estimates for e in run.values()]
        if moderate:
            assert hits / total >= 0.9
            assert np.median(widths) < 0.85 * plain_median  # t(2 + d0) instead of t(2)
            assert np.percentile(widths, 90) < 0.6 * plain_p90  # and no unlucky huge s
        else:
            plain_median, plain_p90 = np.median(widths), np.percentile(widths, 90)


def test_a_pair_never_lends_itself_its_own_variance():
    priors = leave_one_out_priors({"a": ("run1", 0.04, 3), "b": ("run1", 0.01, 3), "c": ("run1", 0.01, 3),
                                   "alone": ("run2", 0.09, 3), "v1-file": ("run3", 0.0, 1), "d": ("run3", 0.02, 3)})
    assert priors["a"] == pytest.approx((0.01, 4.0))
    assert priors["b"] == pytest.approx(((0.04 + 0.01) / 2, 4.0))
    assert "alone" not in priors  # nothing else was measured with it
    assert "d" not in priors  # its companion had one repetition: no variance to lend
    assert priors["v1-file"] == pytest.approx((0.02, 2.0))


def test_moderation_keeps_the_point_and_caps_what_the_prior_may_weigh():
    own = repetitions.estimate([math.log(2.0), math.log(2.2), math.log(2.1)])
    assert repetitions.moderated(own, 0.01, 0.0) == own
    lent = repetitions.moderated(own, own.between_sd ** 2, 100.0)
    assert lent.point == own.point and lent.prior_df == repetitions.PRIOR_DF_CAP
    # The same variance on 2 + d0 degrees of freedom: t(2 + d0) instead of t(2) = 4.30.
    def log_half(e):
        return math.log(e.rerun[1] / e.point)

    t = student_t.ppf(0.975, 2 + repetitions.PRIOR_DF_CAP) / student_t.ppf(0.975, 2)
    assert log_half(lent) == pytest.approx(log_half(own) * t, rel=1e-9)
    noisy_companions = repetitions.moderated(own, 25 * own.between_sd ** 2, 4.0)
    assert noisy_companions.rerun_rel_halfwidth > own.rerun_rel_halfwidth
    single = repetitions.estimate([math.log(2.0)])
    assert repetitions.moderated(single, 0.01, 4.0) == single  # one repetition: still no promise


def _result_doc(run, device="cpu"):
    records = []
    for arch, (std, sep, sizes) in run.items():
        for variant, samples in (("standard", std), ("separable", sep)):
            records.append(_record(samples, sizes, variant, arch=arch, device=device).to_json())
    return {"schema_version": results.SCHEMA_VERSION, "created_utc": "2026-12-03T12:00:00Z",
            "machine": {"hostname": "h", "cpu": "c"}, "records": records}


def test_the_report_moderates_pairs_measured_together_and_leaves_a_lone_pair_alone(tmp_path):
    rng = np.random.default_rng(12)
    full = _result_doc(_full_run(rng))
    report = build_report([(tmp_path / "full.json", full)])
    assert {row["prior_df"] for row in report.rows} == {repetitions.PRIOR_DF_CAP}
    lone = _result_doc({"v2": _run(rng)}, device="openvino")
    report = build_report([(tmp_path / "lone.json", lone)])
    assert [row["prior_df"] for row in report.rows] == [0.0]
    # Two files are two runs: one file's pairs never lend another file's pair their variance.
    report = build_report([(tmp_path / "full.json", full), (tmp_path / "lone2.json", _result_doc({"v2": _run(rng)}))])
    assert [row["prior_df"] for row in report.rows if row["arch"] == "v2"] == [0.0]
