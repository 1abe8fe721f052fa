"""Memory per model: the graph's exact minimum on a hand-built graph, and the measured peak of a real session."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mnbench.devices.registry import resolve_device
from mnbench.graph.memory import memory_minimum
from mnbench.measure.memory import HWM_METHOD, measure_peak_memory


def _conv_relu_add() -> onnx.ModelProto:
    """x [1,4,8,8] -> Conv (8x4x3x3, no bias) -> a -> Relu -> b; Add(a, b) -> y. a stays alive across the Relu."""
    weight = numpy_helper.from_array(np.zeros((8, 4, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_minimum_of_a_hand_built_graph_is_exact():
    minimum = memory_minimum(_conv_relu_add())
    # Weights: 8*4*3*3 floats. Live bytes per node: conv x(1024)+a(2048); relu a+b (4096, x is dead);
    # add a+b+y = 3 * 2048: the peak, at the Add.
    assert minimum.weight_bytes == 8 * 4 * 3 * 3 * 4 == 1152
    assert minimum.activation_bytes == 3 * 8 * 8 * 8 * 4 == 6144
    assert minimum.peak_node == "add"
    assert minimum.minimum_bytes == 1152 + 6144


def test_minimum_of_a_chain_is_its_largest_input_output_pair():
    chain = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="r1"), helper.make_node("MaxPool", ["a"], ["y"], name="pool",
                                                                              kernel_shape=[2, 2], strides=[2, 2])],
        "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])])
    minimum = memory_minimum(helper.make_model(chain, opset_imports=[helper.make_opsetid("", 17)]))
    # r1: x + a = 2 * 2048; pool: a + y = 2048 + 512 (x is dead): the Relu's pair is the peak.
    assert (minimum.weight_bytes, minimum.activation_bytes, minimum.peak_node) == (0, 4096, "r1")


def _big_matmul(path, rows: int = 2048, cols: int = 4096):
    weight = numpy_helper.from_array(np.ones((rows, cols), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return rows * cols * 4


def test_measured_peak_holds_at_least_the_weights(tmp_path):
    path = tmp_path / "mm.onnx"
    weights = _big_matmul(path)  # 32 MiB: far above what the process's own noise moves
    peak = measure_peak_memory(resolve_device("cpu"), path, batch=1, precision="fp32", threads=1)
    assert peak["method"] == HWM_METHOD  # Linux: the kernel's reset high-water mark
    assert peak["peak_bytes"] >= weights
    assert peak["peak_bytes"] < 20 * weights  # the session's own, not the whole process's (torch, numpy, ...)
    assert memory_minimum(path).minimum_bytes == weights + (2048 + 4096) * 4


def test_models_listing_takes_each_models_newest_measured_peak(tmp_path):
    import json

    from mnbench.cli.models_cmd import _measured_peaks

    sweep = json.loads((Path(__file__).parent / "fixtures" / "real" / "sweep-epyc-zen3-2026-12-07.json").read_text())
    runs = tmp_path / "runs"
    runs.mkdir()
    newer = json.loads(json.dumps(sweep))
    newer["created_utc"] = "2026-12-08T00:00:00Z"
    for record in newer["records"]:
        record["memory"]["peak_bytes"] += 1
    (runs / "b-older.json").write_text(json.dumps(sweep))
    (runs / "a-newer.json").write_text(json.dumps(newer))  # sorted by name first: the date must decide
    peaks = _measured_peaks(tmp_path)
    (expected,) = [r for r in newer["records"] if (r["variant"], r["threads"], r["batch"]) == ("separable", 1, 1)]
    assert peaks[("v1", "separable", 1.0, 224, 1)] == {"cpu": expected["memory"]["peak_bytes"]}
    assert all(key[4] in (1, 8) for key in peaks)  # one entry per batch, 1-thread records only
    assert _measured_peaks(tmp_path / "nothing-yet") == {}
