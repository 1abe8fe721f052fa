"""The calibrated predictor on graphs built here: layers and fusions found, classes priced from a peak's
calibration, a peak without one priced as before, unknown operators named, `mnbench predict --model` rows.

Nothing here times the machine: calibrations are written by hand, and `measure_calibration` is fed a fake clock.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from mnbench.graph.cost import count_cost
from mnbench.roofline.calibrate import Calibration, epilogue_benches, mac_benches, measure_calibration
from mnbench.roofline.layers import analyse
from mnbench.roofline.model import Roofs, fused_activations, predict
from mnbench.roofline.peak import save_peak
from mnbench.roofline.predict import predict_user_models
from mnbench.roofline.workloads import ConvBench

RNG = np.random.default_rng(0)
OVERHEAD_US = 0.5
# One point per class: pointwise 40 GMAC/s, depthwise 3x3 10 GMAC/s, anything else 20.
CALIBRATION = {
    "schema": 1, "call_us": 3.0,
    "points": [{"kind": "pointwise", "width": 16, "size": 16, "kernel": 1, "gmacs_per_s": 40.0},
               {"kind": "depthwise", "width": 16, "size": 16, "kernel": 3, "gmacs_per_s": 10.0},
               {"kind": "dense", "width": 16, "size": 16, "kernel": 3, "gmacs_per_s": 20.0},
               {"kind": "fc", "width": 16, "size": 1, "kernel": 1, "gmacs_per_s": 20.0}],
    "eltwise": {"overhead_us": 1.0, "gbytes_per_s": 50.0},
    "epilogues": {"relu": {"fixed_us": 0.0, "us_per_kelement": 0.0},
                  "swish": {"fixed_us": 0.5, "us_per_kelement": 0.2},
                  "residual": {"fixed_us": 0.0, "us_per_kelement": 0.1}},
}
PEAK = {"device": "cpu", "precision": "fp32", "threads": 1, "runtime": "onnxruntime", "gmacs_per_s": 50.0,
        "gbytes_per_s": 20.0, "layer_overhead_us": OVERHEAD_US, "calibration": CALIBRATION}


def _weight(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _save(path: Path, nodes, inits: dict, in_shape, out_shape) -> Path:
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _block(path: Path, extra: list | None = None) -> Path:
    """pw conv + swish, dw conv + Relu, pw conv + residual Add + Relu, SE-like gate (not fused), then `extra`."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="pw1"),
        helper.make_node("Sigmoid", ["a"], ["s"], name="sig"), helper.make_node("Mul", ["a", "s"], ["b"], name="swish"),
        helper.make_node("Conv", ["b", "dw"], ["c"], name="dw", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["d"], name="relu"),
        helper.make_node("Conv", ["d", "w2"], ["e"], name="pw2"),
        helper.make_node("Add", ["e", "b"], ["f"], name="add"), helper.make_node("Relu", ["f"], ["g"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["g"], ["p"], name="pool"),
        helper.make_node("Sigmoid", ["p"], ["q"], name="gate"),
        helper.make_node("Mul", ["g", "q"], ["y" if not extra else "h"], name="scale"),
        *(extra or []),
    ]
    return _save(path, nodes, {"w1": _weight(16, 16, 1, 1), "dw": _weight(16, 1, 3, 3), "w2": _weight(16, 16, 1, 1)},
                 [1, 16, 16, 16], [1, 16, 16, 16])


@pytest.fixture()
def block(tmp_path) -> Path:
    return _block(tmp_path / "block.onnx")


def test_layers_find_classes_and_the_fusions_runtimes_make(block):
    layers = analyse(onnx.load(str(block)))
    assert {n: s.kind for n, s in layers.macs.items()} == {"pw1": "pointwise", "dw": "depthwise", "pw2": "pointwise"}
    assert layers.macs["dw"].kernel == 3 and layers.macs["dw"].width == 16 and layers.macs["dw"].size == 16
    by_nodes = {r.nodes: r for r in layers.regions}
    assert by_nodes[("sig", "swish")].into == "pw1" and by_nodes[("sig", "swish")].epilogue == "swish"
    assert by_nodes[("relu",)].into == "dw" and by_nodes[("relu",)].epilogue == "relu"
    assert by_nodes[("add", "relu2")].into == "pw2" and by_nodes[("add", "relu2")].epilogue == "residual"
    # The gate reads a 1x1 map and the pooled tensor's reader is not elementwise: its Mul is a pass of its own.
    gate = by_nodes[("gate", "scale")]
    assert gate.into is None and gate.bytes == 4 * (16 + 2 * 16 * 16 * 16)
    assert layers.unknown == {}


def test_a_calibrated_layer_costs_overhead_plus_macs_over_its_class_efficiency_plus_its_epilogue(block):
    roofs = Roofs.from_peak(PEAK)
    assert roofs.calibration is not None
    model = onnx.load(str(block))
    prediction = predict(count_cost(model), roofs, layers=analyse(model))
    layers = {layer.name: layer for layer in prediction.layers}
    assert set(layers) == {"pw1", "dw", "pw2", "pool", "gate", "(session call)"}  # fused nodes are no layers
    macs, pw_weights_us = 16 * 16 * 16 * 16, 16 * 16 * 4 / 20e3  # weights stream at the peak's 20 GB/s
    assert layers["pw1"].time_us == pytest.approx(OVERHEAD_US + macs / 40e3 + pw_weights_us + 0.5 + 0.2 * 4.096)
    assert layers["dw"].time_us == pytest.approx(OVERHEAD_US + 16 * 9 * 256 / 10e3 + 16 * 9 * 4 / 20e3)
    assert layers["pw2"].time_us == pytest.approx(OVERHEAD_US + macs / 40e3 + pw_weights_us + 0.1 * 4.096)
    assert layers["pw2"].fused == ("add", "relu2")
    assert layers["gate"].time_us == pytest.approx(1.0 + 4 * (16 + 2 * 4096) / 50e3)
    assert layers["(session call)"].time_us == 3.0
    assert prediction.time_us == pytest.approx(sum(layer.time_us for layer in layers.values()))


def test_a_peak_without_calibration_is_priced_by_the_plain_roofline(block):
    plain_peak = {k: v for k, v in PEAK.items() if k != "calibration"}
    roofs = Roofs.from_peak(plain_peak)
    assert roofs.calibration is None
    model = onnx.load(str(block))
    cost = count_cost(model)
    with_layers = predict(cost, roofs, fused=fused_activations(model), layers=analyse(model))
    before = predict(cost, roofs, fused=fused_activations(model))
    assert with_layers.time_us == pytest.approx(before.time_us) and len(with_layers.layers) == len(before.layers)
    for broken in ({**CALIBRATION, "schema": 99}, {**CALIBRATION, "points": []}, {"schema": 1}, "nonsense"):
        assert Roofs.from_peak({**PEAK, "calibration": broken}).calibration is None


def test_interpolation_returns_a_measured_point_and_stays_between_neighbours():
    calibration = Calibration.from_dict({**CALIBRATION, "points": [
        {"kind": "pointwise", "width": 16, "size": 56, "kernel": 1, "gmacs_per_s": 10.0},
        {"kind": "pointwise", "width": 256, "size": 56, "kernel": 1, "gmacs_per_s": 40.0}]})
    assert calibration.gmacs_per_s("pointwise", width=16, size=56, kernel=1) == 10.0
    middle = calibration.gmacs_per_s("pointwise", width=64, size=56, kernel=1)
    assert 10.0 < middle < 40.0 and middle == pytest.approx(20.0)  # halfway in log space
    with pytest.raises(KeyError):
        calibration.gmacs_per_s("grouped", width=8, size=56, kernel=3)


def test_an_unknown_operator_is_named_with_its_share_never_a_silent_zero(tmp_path):
    path = _block(tmp_path / "odd.onnx", extra=[helper.make_node("Hardmax", ["h"], ["y"], name="odd", axis=1)])
    (row,) = predict_user_models(Roofs.from_peak(PEAK), [path])
    assert set(row["unknown_operators"]) == {"Hardmax"}
    share = row["unknown_operators"]["Hardmax"]
    assert share["nodes"] == 1 and share["node_share"] == pytest.approx(1 / 12) and share["bytes_share"] > 0
    (line,) = row["unknown_lines"]
    assert "Hardmax" in line and "8% of the graph's nodes" in line
    odd = next(layer for layer in row["layers"] if layer["name"] == "odd")
    assert odd["predicted_us"] > 0 and odd["priced"].startswith("unknown operator")


def test_predict_user_models_labels_pairs_and_the_mac_baseline(tmp_path):
    a, b = _block(tmp_path / "a.onnx"), _block(tmp_path / "b.onnx", extra=[
        helper.make_node("Conv", ["h", "w3"], ["y"], name="pw3")])
    model = onnx.load(str(b))
    model.graph.initializer.append(numpy_helper.from_array(_weight(16, 16, 1, 1), "w3"))
    onnx.save(model, str(b))
    rows = predict_user_models(Roofs.from_peak(PEAK), [a, b], labels=["small", "big"])
    small, big = rows
    assert (small["label"], small["pair"]["role"], big["pair"]["role"]) == ("small", "baseline", "candidate")
    assert small["predicted_speedup"] == pytest.approx(small["predicted_ms"] / big["predicted_ms"])
    assert small["predicted_speedup"] < 1  # the candidate has one more conv
    assert small["mac_baseline_ms"] == pytest.approx(small["macs"] / 50e6)
    assert small["predicted_ms"] == pytest.approx(sum(layer["predicted_us"] for layer in small["layers"]) / 1e3)


def test_cli_predict_model_json_rows_and_a_bad_file_is_one_line(app, block, tmp_path):
    save_peak(PEAK, reports_dir=tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["predict", "--spec", "this", "--model", str(block), "--format", "json",
                                 "--reports-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["label"] == "block" and row["calibrated"] and row["predicted_ms"] > 0
    assert {layer["name"] for layer in row["layers"]} >= {"pw1", "dw", "pw2"}
    (tmp_path / "bad.onnx").write_text("not a model")
    env = {k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"}
    bad = subprocess.run([sys.executable, "-m", "mnbench", "predict", "--spec", "this", "--model",
                          str(tmp_path / "bad.onnx"), "--reports-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "not a readable ONNX model" in lines[0], bad.stderr
    table = runner.invoke(app, ["predict", "--spec", "this", "--model", str(block), "--top", "2",
                                "--reports-dir", str(tmp_path)])
    assert table.exit_code == 0 and "the 2 slowest layers of 6" in table.output


def test_measure_calibration_on_a_fake_clock_recovers_what_it_was_given():
    """A clock where every MAC class runs at 25 GMAC/s, a Relu is free and a swish costs 1 ns per element."""
    overhead, call = 0.5, 4.0

    def clock(bench) -> float:
        if not isinstance(bench, ConvBench):  # an elementwise Add: 2 µs + bytes at 40 GB/s
            return call + 2.0 + bench.bytes_moved / 40e3
        extra = {"swish": bench.output_elements * 1e-3, "residual": 1.0}.get(bench.epilogue, 0.0)
        return call + bench.depth * (overhead + bench.layer_macs / 25e3 + extra)

    doc = measure_calibration(clock, call_us=call, overhead_us=overhead)
    assert len(doc["points"]) == len(mac_benches()) and len(epilogue_benches()) == 8
    assert all(p["gmacs_per_s"] == pytest.approx(25.0) for p in doc["points"])
    assert doc["eltwise"]["gbytes_per_s"] == pytest.approx(40.0) and doc["eltwise"]["overhead_us"] == pytest.approx(2)
    assert doc["epilogues"]["relu"] == {"fixed_us": 0.0, "us_per_kelement": 0.0}
    assert doc["epilogues"]["swish"]["us_per_kelement"] == pytest.approx(1.0)
    assert doc["epilogues"]["residual"]["fixed_us"] == pytest.approx(1.0)
    calibration = Calibration.from_dict(doc)
    assert math.isclose(calibration.gmacs_per_s("depthwise", width=100, size=20, kernel=5), 25.0)


def test_every_benchmark_graph_is_valid_onnx_with_the_macs_the_cost_model_counts():
    for bench in [*mac_benches(), *epilogue_benches()][::7]:
        model = bench.onnx_model()
        onnx.checker.check_model(model)
        assert count_cost(model).macs == bench.depth * bench.layer_macs, bench.method


@pytest.mark.measures
def test_measure_peak_stores_a_calibration_that_prices_layers(monkeypatch, tmp_path):
    from mnbench.roofline import calibrate, peak as peak_module
    from mnbench.roofline.peak import PeakConv, load_peak, measure_peak
    from mnbench.roofline.workloads import LayerChain, StreamWorkload

    monkeypatch.setattr(peak_module, "peak_workload", lambda _device: PeakConv(channels=16, size=8))
    monkeypatch.setattr(peak_module, "bandwidth_candidates", lambda _device: [StreamWorkload(elements=2**16)])
    monkeypatch.setattr(peak_module, "overhead_candidates",
                        lambda _device: [(LayerChain(depth=2), LayerChain(depth=10))])
    monkeypatch.setattr(calibrate, "mac_benches", lambda: [ConvBench(kind="pointwise", channels=16, size=16, depth=2),
                                                           ConvBench(kind="depthwise", channels=16, size=16, kernel=3)])
    peak = measure_peak("cpu", threads=1, min_time_s=0.05, max_time_s=0.1)
    assert [p["kind"] for p in peak["calibration"]["points"]] == ["pointwise", "depthwise"]
    assert set(peak["calibration"]["epilogues"]) == {"relu", "swish", "residual"}
    save_peak(peak, reports_dir=tmp_path)
    roofs = Roofs.from_peak(load_peak("cpu", threads=1, reports_dir=tmp_path))
    assert roofs.calibration is not None and roofs.calibration.kinds == {"pointwise", "depthwise"}
    assert "calibration" not in measure_peak("cpu", threads=1, min_time_s=0.05, max_time_s=0.1, calibrate=False)
