"""The user's own ONNX files: validation (one line, exit 2), cost on their graphs, integer inputs, pairing in the
report, and a short real run on ONNX Runtime's CPU provider (tiny models built here with onnx.helper).

Hand-counted MACs: a dense 3x3 conv 8->16 channels on 32x32 is 16*8*9*32*32 = 1,179,648; its separable
counterpart, depthwise 3x3 (8*9*32*32 = 73,728) plus pointwise 1x1 8->16 (16*8*32*32 = 131,072), is 204,800.
"""

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from mnbench.backends import make_input, open_session
from mnbench.errors import MnbenchError
from mnbench.graph.inputs import fill, input_specs
from mnbench.report.pairs import build_report
from mnbench.artifacts.user_models import load_user_models
from record_helpers import repetition_fastest  # tests/ is on sys.path under pytest

DENSE_MACS = 16 * 8 * 9 * 32 * 32
SEPARABLE_MACS = 8 * 9 * 32 * 32 + 16 * 8 * 32 * 32


def _save(path: Path, nodes, inits: dict, inputs: list, outputs: list) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _float(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("user-models")
    rng = np.random.default_rng(0)
    w = {"w": rng.standard_normal((16, 8, 3, 3)).astype(np.float32)}
    out = {
        "dense": _save(d / "dense.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], w,
                       [_float("x", ["N", 8, 32, 32])], [_float("y", ["N", 16, 32, 32])]),
        "sep": _save(d / "sep.onnx", [helper.make_node("Conv", ["x", "dw"], ["h"], pads=[1, 1, 1, 1], group=8),
                                      helper.make_node("Conv", ["h", "pw"], ["y"])],
                     {"dw": rng.standard_normal((8, 1, 3, 3)).astype(np.float32),
                      "pw": rng.standard_normal((16, 8, 1, 1)).astype(np.float32)},
                     [_float("x", [1, 8, 32, 32])], [_float("y", [1, 16, 32, 32])]),
        # Token ids into a 50-row embedding table: valid ids are 0..49.
        "embed": _save(d / "embed.onnx", [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                       {"table": rng.standard_normal((50, 4)).astype(np.float32)},
                       [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 7])], [_float("y", [1, 7, 4])]),
        # An integer used arithmetically: no valid range can be read from the graph.
        "int_add": _save(d / "int_add.onnx", [helper.make_node("Add", ["n", "n"], ["y"])], {},
                         [helper.make_tensor_value_info("n", TensorProto.INT64, [1, 3])],
                         [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 3])]),
        "spatial": _save(d / "spatial.onnx", [helper.make_node("Relu", ["x"], ["y"])], {},
                         [_float("x", [1, 3, "H", "W"])], [_float("y", [1, 3, "H", "W"])]),
        "flag": _save(d / "flag.onnx", [helper.make_node("Not", ["b"], ["y"])], {},
                      [helper.make_tensor_value_info("b", TensorProto.BOOL, [1, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.BOOL, [1, 3])]),
    }
    (d / "notes.onnx").write_text("this is not a protobuf")
    out["garbage"] = d / "notes.onnx"
    return out


def test_cost_is_counted_on_the_users_graphs(files):
    dense, sep = load_user_models([files["dense"], files["sep"]])
    assert (dense.macs_per_image, sep.macs_per_image) == (DENSE_MACS, SEPARABLE_MACS)
    assert dense.params == 16 * 8 * 9 and sep.params == 8 * 9 + 16 * 8
    # The first two are the pair by default: the first the baseline, the second the candidate.
    assert (dense.config.variant, sep.config.variant) == ("baseline", "candidate")
    assert dense.config.pair["name"] == "dense-vs-sep" and dense.config.resolution == 32
    assert dense.config.dynamic_batch and not sep.config.dynamic_batch


def test_labels_and_pairs(files):
    a, b, c = load_user_models([files["dense"], files["sep"], files["embed"]], labels=["big", "small", "tok"],
                               pair="small,big")
    assert (a.config.variant, b.config.variant, c.config.variant) == ("candidate", "baseline", "model")
    assert a.config.pair["name"] == "small-vs-big" and c.config.pair is None
    assert c.config.as_dict()["inputs"] == {"ids": {"dtype": "int64", "range": [0, 50]}}
    for kwargs, words in [({"labels": ["one"]}, "1 --label for 2 --model"),
                          ({"labels": ["x", "x"]}, "labels must differ"),
                          ({"pair": "dense"}, "two different labels"),
                          ({"pair": "dense,nope"}, "nope, which is not a model label")]:
        with pytest.raises(MnbenchError, match=words):
            load_user_models([files["dense"], files["sep"]], **kwargs)


@pytest.mark.parametrize("name, words", [
    ("garbage", "not a readable ONNX model"),
    ("spatial", "dynamic dimensions besides the batch"),
    ("int_add", "feeds Add"),
    ("flag", "is BOOL"),
])
def test_files_mnbench_cannot_measure_are_one_line_errors(app, files, name, words):
    with pytest.raises(MnbenchError, match=words) as caught:
        load_user_models([files[name]])
    assert "\n" not in str(caught.value) and str(files[name]) in str(caught.value)
    result = CliRunner().invoke(app, ["run", "--model", str(files[name]), "--device", "cpu"])
    assert isinstance(result.exception, MnbenchError)  # mnbench.cli.app.main: "error: ..." and exit 2


def test_a_batch_that_disagrees_with_the_file(files):
    with pytest.raises(MnbenchError, match="has batch 1, but batch 4 was asked"):
        load_user_models([files["sep"]], batch=4)


def test_integer_inputs_are_filled_within_their_valid_range_and_seeded(files):
    spec = input_specs(onnx.load(str(files["embed"])))["ids"]
    values = fill(spec, [64, 7], seed=0)
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() <= 49
    assert len(np.unique(values)) > 40  # spread over the table, not one id
    assert np.array_equal(values, fill(spec, [64, 7], seed=0))
    # A float32 input gets exactly the benchmark's own input.
    float_spec = input_specs(onnx.load(str(files["dense"])))["x"]
    assert np.array_equal(fill(float_spec, [1, 8, 32, 32], seed=0), make_input((1, 8, 32, 32), 0))


def test_sessions_bind_integer_inputs(files):
    with open_session("cpu", files["embed"], batch=1) as session:
        ids = session.inputs["ids"]
        assert ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 50
        session.infer()
        table = numpy_helper.to_array(onnx.load(str(files["embed"])).graph.initializer[0])
        assert np.allclose(session.output(0), table[ids])


@pytest.mark.measures
def test_a_short_real_run_pairs_baseline_and_candidate(files, tmp_path):
    from mnbench.devices.registry import resolve_devices
    from mnbench.run.plan import MeasureSettings, RunPlan, run_plan

    models = load_user_models([files["dense"], files["sep"]])
    plan = RunPlan(archs=[], devices=resolve_devices("cpu"), user_models=tuple(models), threads=1,
                   measure=MeasureSettings(repetition_s=0.2, max_time_s=0.4, repetitions=2, min_rounds=2),
                   with_reference=False, with_controls=False, with_peak=False)
    doc = run_plan(plan, models_dir=tmp_path, reports_dir=tmp_path)
    records = {r["arch"]: r for r in doc["records"]}
    assert set(records) == {"dense", "sep"}
    assert records["dense"]["model"]["source"] == "onnx-file" and records["dense"]["macs"] == DENSE_MACS
    assert records["sep"]["variant"] == "candidate" and len(records["sep"]["repetition_rounds"]) == 2
    (row,) = build_report([(tmp_path / "run.json", doc)]).rows
    assert row["arch"] == "dense-vs-sep"
    assert row["theoretical_speedup"] == pytest.approx(DENSE_MACS / SEPARABLE_MACS)
    assert (row["macs_standard"], row["macs_separable"]) == (DENSE_MACS, SEPARABLE_MACS)
    assert row["repetitions"] == 2
    # The realized speedup is the baseline's latency over the candidate's, paired by repetition: the geometric mean
    # over the repetitions of the ratio of their fastest calls, worked out here from the records' own samples.
    dense, sep = repetition_fastest(records["dense"]), repetition_fastest(records["sep"])
    expected = math.exp(np.mean([math.log(d / s) for d, s in zip(dense, sep, strict=True)]))
    assert row["realized_speedup"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.measures
def test_profile_takes_a_users_file(app, files):
    import json

    result = CliRunner().invoke(app, ["profile", "--model", str(files["sep"]), "--device", "cpu", "-n", "3",
                                      "--no-save", "--format", "json"])
    assert result.exit_code == 0, result.output
    profile = json.loads(result.stdout)
    assert profile["arch"] == "sep" and profile["macs"] == SEPARABLE_MACS
    shares = {c["category"]: c["mac_share"] for c in profile["categories"]}
    assert shares["depthwise"] == pytest.approx(8 * 9 * 32 * 32 / SEPARABLE_MACS)
    assert shares["pointwise"] == pytest.approx(16 * 8 * 32 * 32 / SEPARABLE_MACS)
