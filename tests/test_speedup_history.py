"""A pair alone in its run borrows its variance from this host's earlier runs of it (mnbench.speedup_history)."""
import copy
import json

import numpy as np
import pytest

from mnbench import repetitions, results, speedup_history
from mnbench.report.pairs import build_report
from test_repetitions import _record, _run  # pytest puts tests/ on sys.path


def _doc(rng, arch="v2", device="cpu"):
    std, sep, sizes = _run(rng)
    records = [_record(s, sizes, v, arch=arch, device=device, runtime_version="1.32.0").to_json()
               for v, s in (("standard", std), ("separable", sep))]
    return {"schema_version": results.SCHEMA_VERSION, "created_utc": "2026-12-03T13:00:00Z",
            "machine": {"hostname": "h", "cpu_model": "c"}, "records": records}


def _own_variance(doc):
    report = build_report([("x.json", copy.deepcopy({**doc, "records": [
        {k: v for k, v in r.items() if k != speedup_history.PRIOR_FIELD} for r in doc["records"]]}))])
    return report.rows[0]["between_repetition_sd"] ** 2


def test_the_first_run_has_no_prior_and_each_later_one_gets_the_earlier_runs(tmp_path):
    rng = np.random.default_rng(21)
    docs = [_doc(rng) for _ in range(3)]
    speedup_history.attach_priors(docs[0], tmp_path)
    assert all(speedup_history.PRIOR_FIELD not in r for r in docs[0]["records"])
    speedup_history.attach_priors(docs[1], tmp_path)
    assert speedup_history.prior_of(docs[1]["records"][1]) == pytest.approx((_own_variance(docs[0]), 2.0))
    speedup_history.attach_priors(docs[2], tmp_path)
    pooled = (_own_variance(docs[0]) + _own_variance(docs[1])) / 2
    assert speedup_history.prior_of(docs[2]["records"][0]) == pytest.approx((pooled, 4.0))
    other = _doc(rng, arch="v1")  # another pair's history is not this one's
    speedup_history.attach_priors(other, tmp_path)
    assert all(speedup_history.PRIOR_FIELD not in r for r in other["records"])


def test_only_the_recent_runs_are_kept(tmp_path):
    rng = np.random.default_rng(22)
    for _ in range(speedup_history.HISTORY_RUNS + 3):
        speedup_history.attach_priors(_doc(rng), tmp_path)
    doc = json.loads(speedup_history.history_path(tmp_path).read_text())
    runs = [e["runs"] for e in doc["entries"]]
    assert [len(r) for r in runs] == [speedup_history.HISTORY_RUNS]


def test_a_damaged_history_is_replaced_with_a_warning_not_a_crash(tmp_path):
    path = speedup_history.history_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    doc = _doc(np.random.default_rng(23))
    with pytest.warns(UserWarning, match="speedup variance history"):
        speedup_history.attach_priors(doc, tmp_path)
    assert json.loads(path.read_text())["entries"][0]["runs"]


def test_the_report_uses_the_history_only_for_a_pair_alone_in_its_run(tmp_path):
    rng = np.random.default_rng(24)
    earlier, lone = _doc(rng), _doc(rng)
    speedup_history.attach_priors(earlier, tmp_path)
    bare = copy.deepcopy(lone)
    speedup_history.attach_priors(lone, tmp_path)
    with_history = build_report([(tmp_path / "lone.json", lone)]).rows[0]
    without = build_report([(tmp_path / "bare.json", bare)]).rows[0]
    assert with_history["prior_df"] == repetitions.PRIOR_DF_CAP and without["prior_df"] == 0.0
    assert with_history["realized_speedup"] == without["realized_speedup"]
    # Companions in the run come first: with another pair on its device, the history is not used.
    together = copy.deepcopy(lone)
    together["records"] += _doc(rng, arch="v1")["records"]
    rows = build_report([(tmp_path / "together.json", together)]).rows
    v2 = next(r for r in rows if r["arch"] == "v2")
    assert v2["prior_df"] == repetitions.PRIOR_DF_CAP
    assert v2["realized_speedup_ci"] != with_history["realized_speedup_ci"]
