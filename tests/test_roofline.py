"""The roofline model: bytes and intensity of a hand-computable conv, time = max(compute, memory) + overhead, the
fusion rule, the report's roofline columns from real model files, and the plot's labels keeping clear."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
import numpy as np

from mnbench.graph.cost import count_cost
from mnbench.errors import MnbenchError
from mnbench.report.pairs import build_report
from mnbench.report.roofline_plot import LABEL_GID, roofline_figure, roofline_figures
from mnbench.roofline.model import Roofs, bytes_per_element, fused_activations, predict, roofline_speedup

FIXTURE = Path(__file__).parent / "fixtures" / "results" / "bench-xeon-2026-11-27.json"


def _conv_graph(*, cin=8, cout=16, size=10, kernel=3, group=1, relu=False) -> onnx.ModelProto:
    """One conv (pad 'same', no bias), optionally followed by a Relu."""
    weight = np.ones((cout, cin // group, kernel, kernel), dtype=np.float32)
    nodes = [helper.make_node("Conv", ["input", "w"], ["y" if relu else "output"], name="conv",
                              kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4, group=group)]
    if relu:
        nodes.append(helper.make_node("Relu", ["y"], ["output"], name="relu"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, size, size])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, cout, size, size])],
                              initializer=[numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _separable_graph(*, cin=8, cout=16, size=10) -> onnx.ModelProto:
    """Depthwise 3x3 then pointwise 1x1, each with a Relu: the separable form of `_conv_graph`."""
    dw = np.ones((cin, 1, 3, 3), dtype=np.float32)
    pw = np.ones((cout, cin, 1, 1), dtype=np.float32)
    nodes = [helper.make_node("Conv", ["input", "dw"], ["a"], name="dw", kernel_shape=[3, 3], pads=[1] * 4, group=cin),
             helper.make_node("Relu", ["a"], ["b"], name="dw_relu"),
             helper.make_node("Conv", ["b", "pw"], ["c"], name="pw", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["output"], name="pw_relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, size, size])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, cout, size, size])],
                              initializer=[numpy_helper.from_array(dw, "dw"), numpy_helper.from_array(pw, "pw")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


ROOFS = Roofs(name="test", peak_gmacs_per_s=1.0, bandwidth_gbytes_per_s=1.0, layer_overhead_us=2.0)


def test_bytes_and_intensity_of_a_conv_by_hand():
    (layer,) = predict(count_cost(_conv_graph()), ROOFS).layers
    # 16 x 10 x 10 outputs, 8 x 3 x 3 MACs each; input 8x10x10, output 16x10x10, weights 16x8x3x3 floats.
    assert layer.macs == 16 * 10 * 10 * 8 * 9 == 115_200
    assert layer.bytes == (800 + 1600 + 1152) * 4 == 14_208
    assert layer.intensity == pytest.approx(115_200 / 14_208)
    (half,) = predict(count_cost(_conv_graph()), ROOFS, precision="fp16").layers
    assert half.bytes == 14_208 // 2 and half.macs == layer.macs
    (int8,) = predict(count_cost(_conv_graph()), ROOFS, precision="int8").layers
    assert int8.bytes == 14_208 // 4
    with pytest.raises(MnbenchError, match="bytes per element"):
        bytes_per_element("fp8")


def test_time_is_the_larger_roof_plus_the_layer_overhead():
    cost = count_cost(_conv_graph())
    # 1 GMAC/s = 1000 MACs per µs; 1 GB/s = 1000 bytes per µs.
    (layer,) = predict(cost, ROOFS).layers
    assert layer.compute_us == pytest.approx(115.2) and layer.memory_us == pytest.approx(14.208)
    assert layer.time_us == pytest.approx(115.2 + 2.0) and layer.bound == "compute"
    slow_memory = Roofs(name="m", peak_gmacs_per_s=1.0, bandwidth_gbytes_per_s=0.01, layer_overhead_us=2.0)
    (layer,) = predict(cost, slow_memory).layers
    assert layer.time_us == pytest.approx(1420.8 + 2.0) and layer.bound == "memory"
    heavy_launch = Roofs(name="o", peak_gmacs_per_s=1.0, bandwidth_gbytes_per_s=1.0, layer_overhead_us=500.0)
    prediction = predict(cost, heavy_launch)
    assert prediction.layers[0].bound == "overhead" and prediction.bound == "overhead"
    assert prediction.time_us == pytest.approx(115.2 + 500.0)


def test_model_time_is_the_sum_and_speedup_the_ratio():
    standard, separable = predict(count_cost(_conv_graph()), ROOFS), predict(count_cost(_separable_graph()), ROOFS)
    # Unfused: depthwise (8x10x10 outputs x 9 MACs), two Relus, pointwise (16x10x10 x 8): four layers.
    assert [layer.name for layer in separable.layers] == ["dw", "dw_relu", "pw", "pw_relu"]
    assert separable.time_us == pytest.approx(sum(layer.time_us for layer in separable.layers))
    assert roofline_speedup(standard, separable) == pytest.approx(standard.time_us / separable.time_us)
    assert set(separable.by_category()) == {"depthwise", "pointwise", "other"}
    assert sum(c["time_share"] for c in separable.by_category().values()) == pytest.approx(1.0)


def test_activations_fuse_into_the_mac_node_that_feeds_only_them():
    model = _separable_graph()
    assert fused_activations(model) == {"dw_relu", "pw_relu"}
    fused = predict(count_cost(model), ROOFS, fused=fused_activations(model))
    assert [layer.name for layer in fused.layers] == ["dw", "pw"]
    # A Relu whose input is also read elsewhere (here: the graph output) stays a layer of its own.
    shared = copy.deepcopy(_conv_graph(relu=True))
    shared.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 10, 10]))
    assert fused_activations(shared) == frozenset()


def test_roofs_from_a_peak_need_bandwidth_and_overhead():
    assert Roofs.from_peak({"device": "cpu", "gmacs_per_s": 50.0}) is None  # measured before issue 12
    roofs = Roofs.from_peak({"device": "cpu", "gmacs_per_s": 50.0, "gbytes_per_s": 20.0, "layer_overhead_us": 1.5})
    assert (roofs.peak_gmacs_per_s, roofs.bandwidth_gbytes_per_s, roofs.layer_overhead_us) == (50.0, 20.0, 1.5)
    assert roofs.ridge_macs_per_byte == 2.5
    with pytest.raises(MnbenchError, match="positive"):
        Roofs(name="x", peak_gmacs_per_s=0.0, bandwidth_gbytes_per_s=1.0, layer_overhead_us=0.0)


def _result_with_models(tmp_path: Path) -> tuple[Path, dict]:
    """The committed fixture, its v1 cpu pair pointed at two small graphs, its cpu peak given both roofs."""
    doc = json.loads(FIXTURE.read_text())
    files = {}
    for variant, model in (("standard", _conv_graph(relu=True)), ("separable", _separable_graph())):
        files[variant] = tmp_path / f"{variant}.onnx"
        onnx.save(model, str(files[variant]))
    for record in doc["records"]:
        if record["device"] == "cpu" and record["arch"] == "v1":
            path = files[record["variant"]]
            record["model_path"] = str(path)
            record["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc["peaks"]["cpu"] |= {"gmacs_per_s": 1.0, "gbytes_per_s": 1.0, "layer_overhead_us": 2.0}
    return FIXTURE, doc


def test_report_rows_carry_the_roofline_speedup_and_its_error(tmp_path):
    source, doc = _result_with_models(tmp_path)
    report = build_report([(source, doc)])
    (row,) = [r for r in report.rows if r["device"] == "cpu" and r["arch"] == "v1"]
    std, sep = _conv_graph(relu=True), _separable_graph()
    expected = roofline_speedup(predict(count_cost(std), ROOFS, fused=fused_activations(std)),
                                predict(count_cost(sep), ROOFS, fused=fused_activations(sep)))
    assert row["roofline_speedup"] == pytest.approx(expected)
    assert row["roofline_error"] == pytest.approx(expected / row["realized_speedup"] - 1)
    assert row["roofline"]["roofs"]["bandwidth_gbytes_per_s"] == 1.0
    assert row["roofline"]["separable"]["categories"]["depthwise"]["layers"] == 1
    others = [r for r in report.rows if r is not row]
    assert others and all(r["roofline_speedup"] is None for r in others)  # their peaks have no bandwidth
    assert set(roofline_figures(report)) == {f"{row['machine']} · cpu ({row['runtime']}, {row['precision']})"}


def test_a_changed_model_file_gives_no_roofline_and_a_note(tmp_path):
    source, doc = _result_with_models(tmp_path)
    (tmp_path / "separable.onnx").write_bytes(_conv_graph().SerializeToString())
    report = build_report([(source, doc)])
    (row,) = [r for r in report.rows if r["device"] == "cpu" and r["arch"] == "v1"]
    assert row["roofline_speedup"] is None
    assert any("changed since it was measured" in note for note in report.notes)


def test_profiles_get_the_predicted_time_share_of_their_pair(tmp_path):
    source, doc = _result_with_models(tmp_path)
    row = next(r for r in doc["records"] if r["device"] == "cpu" and r["arch"] == "v1")
    doc["profiles"] = [{"arch": "v1", "variant": "separable", "width": row["width"], "resolution": row["resolution"],
                        "batch": row["batch"], "device": "cpu", "runtime": row["runtime"],
                        "precision": row["precision"], "threads": row["threads"],
                        "categories": [{"category": "depthwise", "time_share": 0.4},
                                       {"category": "pointwise", "time_share": 0.6}]}]
    report = build_report([(source, doc)])
    (profile,) = report.profiles
    pair = next(r for r in report.rows if r["roofline"])
    predicted = pair["roofline"]["separable"]["categories"]
    assert [c["predicted_time_share"] for c in profile["categories"]] == pytest.approx(
        [predicted["depthwise"]["time_share"], predicted["pointwise"]["time_share"]])


def _crowded_models() -> list[dict]:
    """Twelve points, several on the same spot: the hard case for labels."""
    categories = {"depthwise": {"macs": 1e6, "bytes": 1e6, "time_us": 100.0},
                  "pointwise": {"macs": 1e8, "bytes": 1e7, "time_us": 2000.0},
                  "fc": {"macs": 1e6, "bytes": 4e6, "time_us": 300.0}}
    return [{"label": arch, "variant": variant, "categories": categories}
            for arch, variant in itertools.product(("v1", "v2"), ("separable", "standard"))]


def test_plot_labels_overlap_neither_each_other_nor_the_points():
    roofs = {"peak_gmacs_per_s": 60.0, "bandwidth_gbytes_per_s": 20.0, "layer_overhead_us": 1.0}
    fig = roofline_figure(roofs, _crowded_models(), title="test")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    labels = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() == LABEL_GID]
    unlabelled = [t for t in fig.texts if t.get_text().startswith("unlabelled")]
    placed_or_listed = len(labels) + (len(unlabelled[0].get_text().split(", ")) if unlabelled else 0)
    assert placed_or_listed == 12
    assert len(labels) >= 6
    for a, b in itertools.combinations(labels, 2):
        assert not a.overlaps(b)
    points = [ax.transData.transform(xy) for c in ax.collections for xy in c.get_offsets()]
    assert len(points) == 12
    for box in labels:
        for px, py in points:
            assert not (box.x0 - 4 < px < box.x1 + 4 and box.y0 - 4 < py < box.y1 + 4)
