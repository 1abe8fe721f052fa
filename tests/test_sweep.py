"""Sweeps over parallelism: `--threads` and `--batch` lists, one measured pair per point, and the curve the report
builds from them."""

import math

import pytest

from mnbench.cli import run_cmd
from mnbench.devices.registry import resolve_devices
from mnbench.errors import MnbenchError
from mnbench.report.curves import curve_rows
from mnbench.report.pairs import build_report
from mnbench.run.plan import MeasureSettings, RunPlan, run_plan

QUICK = MeasureSettings(repetition_s=0.2, max_time_s=0.4, repetitions=2, min_rounds=2, warmup_s=0.02)


@pytest.mark.parametrize("cores, expected", [(1, [1]), (2, [1, 2]), (4, [1, 2, 4]), (6, [1, 2, 4, 6]),
                                             (16, [1, 2, 4, 8, 16])])
def test_threads_auto_doubles_up_to_the_physical_cores(monkeypatch, cores, expected):
    monkeypatch.setattr("mnbench.host.facts.physical_cores", lambda *a, **k: cores)
    assert run_cmd.parse_thread_counts("auto") == expected


def test_threads_list_keeps_its_order_once_each(monkeypatch):
    monkeypatch.setattr("mnbench.host.facts.physical_cores", lambda *a, **k: 2)
    assert run_cmd.parse_thread_counts("2,1,all") == [2, 1]
    with pytest.raises(MnbenchError, match="--threads"):
        run_cmd.parse_thread_counts("1,zero")


def test_a_plan_has_one_group_per_point():
    plan = RunPlan(archs=["v1", "v2"], devices=resolve_devices("cpu"), batch=[1, 8], threads=[1, 2])
    groups = plan.configs()
    assert len(groups) == 4 and {g[0].batch for g in groups} == {1, 8}  # arch x batch; threads multiply the units
    assert plan.steps() == 4 * 2 * plan.measure.repetitions
    single = RunPlan(archs=["v1", "v2"], devices=resolve_devices("cpu"))
    low, high = plan.estimate_s()
    assert low < high and low > 3 * single.estimate_s()[0]  # 4x the groups, so at least 3x the time


@pytest.mark.parametrize("kwargs, message", [
    ({"threads": [1, 1]}, "each once"), ({"batch": [0, 2]}, "positive"),
    ({"threads": [1, 2], "with_controls": True, "with_reference": True}, "one point"),
])
def test_a_bad_sweep_is_refused_before_measuring(kwargs, message):
    with pytest.raises(MnbenchError, match=message):
        RunPlan(archs=["v1"], devices=resolve_devices("cpu"), **kwargs)


@pytest.mark.measures
def test_a_swept_run_records_each_point_and_the_report_draws_its_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_IN_PROCESS", "1")
    plan = RunPlan(archs=["v1"], devices=resolve_devices("cpu"), widths=[0.25], resolutions=[64], batch=[1, 2],
                   threads=[1, 2], measure=QUICK, with_peak=False, with_memory=False)
    doc = run_plan(plan, models_dir=tmp_path, reports_dir=tmp_path)
    points = {(r["threads"], r["batch"], r["variant"]) for r in doc["records"]}  # threads as read back
    assert points == {(t, b, v) for t in (1, 2) for b in (1, 2) for v in ("separable", "standard")}
    low, high = doc["settings"]["estimate_s"]
    assert 0 < low < high and doc["settings"]["measured_s"] > 0
    report = build_report([(tmp_path / "run.json", doc)])
    assert len(report.rows) == 4
    curve = report.curves
    assert [(c["threads"], c["batch"]) for c in curve] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    by_point = {(r["threads"], r["batch"]): r for r in report.rows}
    for c in curve:  # the curve shows the pair table's figures, and its throughput is batch over latency
        row = by_point[(c["threads"], c["batch"])]
        assert c["realized_speedup"] == row["realized_speedup"] and c["share_kept"] == row["share_kept"]
        assert c["throughput_separable"] == pytest.approx(c["batch"] * 1e3 / row["min_ms_separable"], rel=1e-12)
    assert curve[0]["change"] == pytest.approx(1.0)


def _row(threads, batch, realized, ci, machine="m", arch="v2"):
    return {"machine": machine, "device": "cpu", "runtime": "onnxruntime", "precision": "fp32", "arch": arch,
            "width": 1.0, "resolution": 224, "threads": threads, "batch": batch, "theoretical_speedup": 3.5,
            "realized_speedup": realized, "realized_speedup_ci": ci, "share_kept": realized / 3.5,
            "roofline_speedup": 2.8, "min_ms_standard": 10.0 * batch, "min_ms_separable": 10.0 * batch / realized}


def test_curve_change_and_its_interval_combine_two_independent_points():
    rows = [_row(2, 1, 2.2, [2.0, 2.42]), _row(1, 1, 2.8, [2.6, 3.0]), _row(1, 1, 3.0, [2.9, 3.1], arch="v1")]
    curve = curve_rows(rows)
    assert [(c["arch"], c["threads"]) for c in curve] == [("v2", 1), ("v2", 2)]  # v1 has one point: no curve
    first, second = curve
    assert first["change"] == 1.0 and first["change_ci"] is None
    assert second["change"] == pytest.approx(2.2 / 2.8)
    half = math.hypot(math.log(2.42 / 2.0) / 2, math.log(3.0 / 2.6) / 2)
    assert second["change_ci"] == pytest.approx([2.2 / 2.8 * math.exp(-half), 2.2 / 2.8 * math.exp(half)])
    assert second["roofline_kept"] == pytest.approx(2.8 / 3.5)
    assert second["throughput_standard"] == pytest.approx(1 * 1e3 / 10.0)


def test_streams_need_the_openvino_device():
    with pytest.raises(MnbenchError, match="needs the openvino device"):
        RunPlan(archs=["v1"], devices=resolve_devices("cpu"), streams=[1, 2])
    plan = RunPlan(archs=["v1"], devices=resolve_devices("cpu,openvino"), streams=[1, 2])
    # cpu measures one stream only; openvino both: 3 groups of repetitions
    assert plan.steps() == 3 * plan.measure.repetitions


def test_an_openvino_session_with_streams_runs_a_request_on_each(tmp_path):
    from mnbench.backends import open_session
    from test_memory import _conv_relu_add
    import onnx

    path = tmp_path / "tiny.onnx"
    onnx.save(_conv_relu_add(), str(path))
    with open_session("openvino", path, batch=1, threads=2, options={"streams": 2}) as session:
        session.infer()
        assert session.info["streams"] == 2
        assert int(session.info["settings"]["NUM_STREAMS"]) == 2  # read back from the compiled model
    with pytest.raises(MnbenchError, match="openvino device only"):
        open_session("cpu", path, batch=1, threads=1, options={"streams": 2})


def test_curve_throughput_counts_every_stream():
    one, two = _row(2, 1, 2.0, [1.9, 2.1]), _row(2, 1, 1.8, [1.7, 1.9]) | {"streams": 2}
    first, second = curve_rows([two, one])
    assert (first["streams"], second["streams"]) == (1, 2)
    assert second["throughput_separable"] == pytest.approx(2 * 1e3 / two["min_ms_separable"])


def test_the_peaks_file_keeps_a_peak_per_thread_count(tmp_path):
    from mnbench.roofline.peak import load_peak, save_peak

    for threads, gmacs in ((1, 50.0), (2, 95.0)):
        save_peak({"device": "cpu", "precision": "fp32", "threads": threads, "gmacs_per_s": gmacs},
                  reports_dir=tmp_path)
    assert load_peak("cpu", threads=1, reports_dir=tmp_path)["gmacs_per_s"] == 50.0  # not overwritten by 2's
    assert load_peak("cpu", threads=2, reports_dir=tmp_path)["gmacs_per_s"] == 95.0
    assert load_peak("cpu", reports_dir=tmp_path)["gmacs_per_s"] == 95.0  # no thread count asked: the newest
    assert load_peak("cpu", threads=4, reports_dir=tmp_path) is None
