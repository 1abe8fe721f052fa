"""The machine-speed reference: a fixed network, built without the code under test, run with frozen settings."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import onnx
import pytest

from mnbench.measure import reference
from mnbench.graph.cost import count_cost


def test_reference_graph_is_built_without_torch_or_the_exporter():
    # It must not move when the architectures, the exporter or torch change: only onnx.helper and numpy.
    tree = ast.parse(inspect.getsource(reference))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "torch" not in imported
    assert not any(name and name.startswith(("mnbench.archs", "mnbench.artifacts.export")) for name in imported)


def test_graph_is_valid_deterministic_and_has_every_conv_kind():
    graph = reference.reference_graph()
    onnx.checker.check_model(graph, full_check=True)
    assert graph.SerializeToString() == reference.reference_graph().SerializeToString()
    cost = count_cost(graph)
    # Depthwise, pointwise and dense convs, like the models: a machine change that hits one kind shows here too.
    assert {"depthwise", "pointwise", "standard"} <= {c for c, v in cost.by_category().items() if v.macs > 0}
    c, s = reference.CHANNELS, reference.SIZE
    per_block = c * 9 * s * s + c * c * s * s + c * c * 9 * s * s
    assert cost.macs == reference.BLOCKS * per_block


def test_name_says_what_is_computed():
    # Two references with different work must never be compared: the name carries the sizes.
    for value in (reference.BLOCKS, reference.CHANNELS, reference.SIZE):
        assert str(value) in reference.REFERENCE_NAME


def test_file_is_written_once_and_a_damaged_one_is_replaced(tmp_path):
    path = reference.reference_path(tmp_path)
    assert path.parent == tmp_path and onnx.load(str(path)).graph.name == "mnbench_reference"
    path.write_bytes(b"not onnx")
    assert reference.reference_path(tmp_path).read_bytes() == reference.reference_graph().SerializeToString()


def test_reference_runs_with_frozen_settings_not_the_benchmarks(tmp_path, monkeypatch):
    # A change to the benchmark's session options (here: graph optimisations off) must move the models only.
    import onnxruntime as ort
    from mnbench.backends import onnxruntime_backend

    def unoptimised(*args, **kwargs):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return options

    monkeypatch.setattr(onnxruntime_backend, "ort_session_options", unoptimised)
    with reference.open_reference("cpu", precision="fp32", threads=1, models_dir=tmp_path) as session:
        session.infer()
        assert session.info["settings"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
        assert session.info["threads"] == 1
        assert np.isfinite(session.output()).all()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_reference_takes_the_models_precision(tmp_path, precision):
    pytest.importorskip("openvino")
    with reference.open_reference("openvino", precision=precision, threads=1, models_dir=tmp_path) as session:
        session.infer()
        assert session.info["runtime"] == "openvino"
        assert session.info["threads"] == 1
        if precision == "fp32":
            assert session.info["precision"] == "fp32"
