"""Per-category profiles: kernel -> graph-node mapping on hand-made traces, and real profiles on ORT and OpenVINO."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import typer
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from mnbench import results
from mnbench.cli import profile_cmd
from mnbench.config import CATEGORIES, ModelConfig
from mnbench.graph.cost import count_cost
from mnbench.errors import MnbenchError
from mnbench.graph.kernels import ConvGeometry, KernelTime
from mnbench.backends.openvino_counters import mean_of_measured, ov_precision
from mnbench.backends.ort_trace import ort_kernel_times
from mnbench.profiling import OVERHEAD_NODE, profile_caveats, profile_model
from mnbench.graph.attribution import GraphIndex, attribute_kernels, effective_precision
from mnbench.profiling.table import build_profile

CATEGORY_KEYS = {"category", "macs", "mac_share", "time_ms", "time_share", "gmacs_per_s"}
PROFILE_KEYS = {"arch", "variant", "width", "resolution", "batch", "device", "runtime", "precision", "threads",
                "total_time_ms", "categories", "nodes"}
NODE_KEYS = {"name", "op_type", "category", "macs", "time_ms"}


# ---------------------------------------------------------------------------------------------------------------
# A hand-made separable graph, named as torch's TorchScript exporter names nodes


def _conv(name: str, x: str, weight: str, out: str, group: int = 1) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, weight], [out], name=name, group=group, pads=[1, 1, 1, 1]
                            if weight.endswith("3x3") else [0, 0, 0, 0])


def separable_graph() -> onnx.ModelProto:
    """stem 3x3 conv -> relu -> depthwise 3x3 -> relu -> pointwise 1x1 -> relu -> pool -> flatten -> Gemm."""
    rng = np.random.default_rng(0)
    weights = {
        "stem.w3x3": (8, 3, 3, 3), "dw.w3x3": (8, 1, 3, 3), "pw.w1x1": (16, 8, 1, 1), "fc.w": (10, 16),
    }
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in weights.items()]
    nodes = [
        _conv("/stem/Conv", "input", "stem.w3x3", "/stem/Conv_output_0"),
        helper.make_node("Relu", ["/stem/Conv_output_0"], ["/stem/Relu_output_0"], name="/stem/Relu"),
        _conv("/dw/Conv", "/stem/Relu_output_0", "dw.w3x3", "/dw/Conv_output_0", group=8),
        helper.make_node("Relu", ["/dw/Conv_output_0"], ["/dw/Relu_output_0"], name="/dw/Relu"),
        _conv("/pw/Conv", "/dw/Relu_output_0", "pw.w1x1", "/pw/Conv_output_0"),
        helper.make_node("Relu", ["/pw/Conv_output_0"], ["/pw/Relu_output_0"], name="/pw/Relu"),
        helper.make_node("GlobalAveragePool", ["/pw/Relu_output_0"], ["/pool/out"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["/pool/out"], ["/flat/out"], name="/flat/Flatten"),
        helper.make_node("Gemm", ["/flat/out", "fc.w"], ["45"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "separable", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("45", TensorProto.FLOAT, [1, 10])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def graph():
    model = separable_graph()
    cost = count_cost(model)
    index = GraphIndex(model, {n.name: n.macs for n in cost.nodes})
    return model, cost, index


def kernel(name: str, op_type: str = "Conv", **kwargs) -> KernelTime:
    return KernelTime(name=name, op_type=op_type, time_ms=kwargs.pop("time_ms", 1.0), **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Kernel -> node mapping


@pytest.mark.parametrize("kernel_name, op_type, node", [
    ("/stem/Conv", "FusedConv", "/stem/Conv"),  # ORT's Conv+Relu fusion keeps the Conv's name
    ("/dw/Relu_output_0_nchwc", "Conv", "/dw/Conv"),  # NCHWc: named after the fused activation's output tensor
    ("/pw/Relu_output_0_nchwc", "Conv", "/pw/Conv"),
    ("45", "FullyConnected", "/fc/Gemm"),  # OpenVINO names the FC after its output tensor
    ("/fc/Gemm/MatMulAddFusion", "Gemm", "/fc/Gemm"),  # a suffix the runtime appended
    ("/pool/GlobalAveragePool", "GlobalAveragePool", "/pool/GlobalAveragePool"),
    ("/stem/Relu", "Relu", "/stem/Relu"),  # a non-MAC kernel stays on its own node
    ("ReorderOutput_token_11", "ReorderOutput", None),
    ("TensorrtExecutionProvider_TRTKernel_graph_main_0", "TRTKernel", None),
])
def test_ort_kernel_names_map_back_to_graph_nodes(graph, kernel_name, op_type, node):
    _, _, index = graph
    assert index.resolve(kernel(kernel_name, op_type)) == node


def test_openvino_fused_layer_lands_on_the_node_with_the_macs(graph):
    _, _, index = graph
    fused = kernel("/dw/Conv/WithoutBiases", "GroupConvolution", origins=("/dw/Conv/WithoutBiases", "/dw/Conv",
                                                                           "/dw/Relu"))
    assert index.resolve(fused) == "/dw/Conv"
    # Even when the activation is listed first.
    assert index.resolve(kernel("x", "Convolution", origins=("/pw/Relu", "/pw/Conv/WithoutBiases"))) == "/pw/Conv"


def test_unmatched_kernels_are_classified_by_their_own_shapes(graph):
    _, cost, index = graph
    dw = ConvGeometry(in_channels=32, weight_in_channels=1, kernel=(3, 3), in_spatial=(56, 56))
    pw = ConvGeometry(in_channels=32, weight_in_channels=32, kernel=(1, 1), in_spatial=(56, 56))
    grouped = ConvGeometry(in_channels=32, weight_in_channels=8, kernel=(3, 3), in_spatial=(56, 56))
    kernels = [kernel("mystery_dw", conv=dw), kernel("mystery_pw", conv=pw), kernel("mystery_g", conv=grouped),
               kernel("mystery_fc", "FusedMatMul"), kernel("ReorderInput", "ReorderInput"),
               kernel("/dw/Relu_output_0_nchwc", "Conv", conv=pw)]  # a name match beats the shapes
    categories = [a.category for a in attribute_kernels(kernels, index, {n.name: n.category for n in cost.nodes})]
    assert categories == ["depthwise", "pointwise", "grouped", "fc", "other", "depthwise"]


# ---------------------------------------------------------------------------------------------------------------
# ORT trace parsing


def _event(name, ts, dur, op_name="Conv", cat="Node", shapes=None):
    args = {"op_name": op_name, "provider": "CPUExecutionProvider"}
    if shapes is not None:
        args["input_type_shape"] = shapes
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "ph": "X", "args": args}


# Two runs: a warm-up (slow) and a measured one; fence events and session events are not kernels.
TRACE = [
    {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 50, "ph": "X", "args": {}},
    {"cat": "Session", "name": "model_run", "ts": 100, "dur": 1000, "ph": "X", "args": {}},
    _event("/dw/Relu_output_0_nchwc_kernel_time", 110, 900, shapes=[{"float": [1, 8, 16, 16]},
                                                                   {"float": [8, 1, 3, 3]}]),
    _event("/fc/Gemm_kernel_time", 1050, 40, "Gemm"),
    {"cat": "Session", "name": "model_run", "ts": 2000, "dur": 500, "ph": "X", "args": {}},
    _event("/dw/Relu_output_0_nchwc_fence_before", 2005, 1),
    _event("/dw/Relu_output_0_nchwc_kernel_time", 2010, 300, shapes=[{"float": [1, 8, 16, 16]},
                                                                    {"float": [8, 1, 3, 3]}]),
    _event("ReorderOutput_kernel_time", 2320, 50, "ReorderOutput"),
    _event("/fc/Gemm_kernel_time", 2400, 20, "Gemm"),
]


def test_ort_trace_drops_warmup_runs_and_averages_the_rest():
    kernels, run_ms = ort_kernel_times(TRACE, skip_runs=1)
    assert run_ms == [0.5]
    times = {k.name: k.time_ms for k in kernels}
    assert times == {"/dw/Relu_output_0_nchwc": 0.3, "ReorderOutput": 0.05, "/fc/Gemm": 0.02}
    dw = kernels[0]
    assert dw.conv == ConvGeometry(in_channels=8, weight_in_channels=1, kernel=(3, 3), in_spatial=(16, 16))
    assert dw.precision == "fp32" and dw.conv.category() == "depthwise"

    both, run_ms = ort_kernel_times(TRACE, skip_runs=0)
    assert run_ms == [1.0, 0.5]
    assert {k.name: k.time_ms for k in both}["/dw/Relu_output_0_nchwc"] == pytest.approx(0.6)  # (900 + 300) / 2


def test_ort_trace_without_measured_runs_is_an_error():
    with pytest.raises(MnbenchError, match="none after the 2 warm-up runs"):
        ort_kernel_times(TRACE, skip_runs=2)


# ---------------------------------------------------------------------------------------------------------------
# OpenVINO counters


def test_running_means_give_the_measured_runs_mean():
    # 5 warm-up runs at 10 ms, then 20 measured ones at 1 ms: the plugin reports 10 ms, then (50 + 20) / 25.
    assert mean_of_measured(10.0, 70 / 25, warmup=5, measured=20) == pytest.approx(1.0)
    assert mean_of_measured(3.0, 3.0, warmup=0, measured=7) == pytest.approx(3.0)


@pytest.mark.parametrize("exec_type, precision", [
    ("brgconv_avx512_bf16", "bf16"), ("brgconv_avx512_1x1_f32", "fp32"), ("jit_avx512_f16", "fp16"),
    ("gemm_mlas_f32", "fp32"), ("jit_avx512_amx_I8", "int8"), ("undef", None), ("", None),
])
def test_openvino_exec_type_reveals_the_precision(exec_type, precision):
    assert ov_precision(exec_type) == precision


def test_effective_precision_is_what_the_conv_kernels_spent_their_time_in(graph):
    _, cost, index = graph
    kernels = [kernel("/stem/Conv", time_ms=1.0, precision="fp32"), kernel("/pw/Conv", time_ms=3.0, precision="bf16"),
               kernel("/stem/Relu", "Eltwise", time_ms=9.0, precision="fp32")]
    attributed = attribute_kernels(kernels, index, {n.name: n.category for n in cost.nodes})
    assert effective_precision(attributed) == "bf16"


# ---------------------------------------------------------------------------------------------------------------
# The per-category table


def test_category_table_adds_up_and_counts_overhead_as_other(graph):
    _, cost, index = graph
    kernels = [kernel("/stem/Conv", time_ms=1.0), kernel("/dw/Relu_output_0_nchwc", time_ms=2.0),
               kernel("/pw/Conv", time_ms=3.0), kernel("45", "Gemm", time_ms=0.5),
               kernel("ReorderOutput", "ReorderOutput", time_ms=0.25)]
    attributed = attribute_kernels(kernels, index, {n.name: n.category for n in cost.nodes})
    table = build_profile(attributed, cost, total_time_ms=7.0, samples_per_graph_mac=1)

    by_cat = {c["category"]: c for c in table["categories"]}
    assert set(by_cat) == {"standard", "depthwise", "pointwise", "fc", "other"}
    assert table["total_time_ms"] == pytest.approx(7.0)
    assert table["unattributed_ms"] == pytest.approx(0.25)
    assert by_cat["other"]["time_ms"] == pytest.approx(0.5)  # the reorder plus the overhead
    assert math.fsum(c["time_share"] for c in table["categories"]) == pytest.approx(1.0, abs=1e-6)
    assert math.fsum(c["mac_share"] for c in table["categories"]) == pytest.approx(1.0, abs=1e-6)
    # depthwise 3x3 on 8 channels, 16x16 output: 8 * 16 * 16 * 9 MACs.
    assert by_cat["depthwise"]["macs"] == 8 * 16 * 16 * 9
    assert by_cat["depthwise"]["gmacs_per_s"] == pytest.approx(8 * 16 * 16 * 9 / 2e-3 / 1e9)
    assert by_cat["other"]["gmacs_per_s"] is None
    assert {n["name"] for n in table["nodes"]} >= {"/stem/Conv", "/dw/Conv", "/pw/Conv", "/fc/Gemm", OVERHEAD_NODE}


def test_kernels_summing_past_the_wall_time_still_give_shares_of_one(graph):
    _, cost, index = graph
    attributed = attribute_kernels([kernel("/pw/Conv", time_ms=3.0)], index, {n.name: n.category for n in cost.nodes})
    table = build_profile(attributed, cost, total_time_ms=2.0, samples_per_graph_mac=1)
    assert table["unattributed_ms"] == 0 and table["total_time_ms"] == 3.0
    assert math.fsum(c["time_share"] for c in table["categories"]) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------
# Real profiles


@pytest.fixture(scope="module")
def tiny_v1(tmp_path_factory):
    """A real MobileNet V1 export, as small as it comes (width 0.25, 64x64): one cache shared by the tests below."""
    from mnbench.artifacts.export import export_model

    models_dir = tmp_path_factory.mktemp("models")
    return export_model(ModelConfig(arch="v1", width=0.25, resolution=64), models_dir=models_dir, progress=False)


@pytest.mark.measures
@pytest.mark.parametrize("device", ["cpu", "openvino"])
def test_profile_of_a_real_v1_accounts_for_every_category(tiny_v1, device):
    profile = profile_model(tiny_v1, device, batch=1, threads=1, iterations=8, warmup=2)

    assert PROFILE_KEYS <= set(profile)
    assert json.loads(json.dumps(profile)) == profile  # JSON-ready as it is
    assert (profile["arch"], profile["variant"], profile["device"]) == ("v1", "separable", device)
    assert profile["runtime"] == {"cpu": "onnxruntime", "openvino": "openvino"}[device]
    assert profile["precision"] == "fp32" and profile["effective_precision"] == "fp32"
    categories = {c["category"]: c for c in profile["categories"]}
    assert all(set(c) == CATEGORY_KEYS for c in profile["categories"])
    present = {name for name, c in tiny_v1.cost.by_category().items() if c.nodes}
    assert present <= set(categories) <= set(CATEGORIES)
    assert math.fsum(c["mac_share"] for c in categories.values()) == pytest.approx(1.0, abs=1e-6)
    assert math.fsum(c["time_share"] for c in categories.values()) == pytest.approx(1.0, abs=1e-6)
    depthwise_macs = sum(n.macs for n in tiny_v1.cost.nodes if n.category == "depthwise")
    assert categories["depthwise"]["macs"] == depthwise_macs
    assert categories["depthwise"]["mac_share"] == pytest.approx(depthwise_macs / tiny_v1.cost.macs)
    for name in ("depthwise", "pointwise", "standard"):
        assert categories[name]["time_ms"] > 0 and categories[name]["gmacs_per_s"] > 0
    assert profile["total_time_ms"] > 0
    assert math.fsum(n["time_ms"] for n in profile["nodes"]) == pytest.approx(profile["total_time_ms"])
    assert all(set(n) >= NODE_KEYS for n in profile["nodes"])
    # Every depthwise and pointwise conv of the graph got its own kernel time. OpenVINO's CPU counters are a running
    # mean in whole microseconds, so a sub-microsecond kernel of this tiny net can honestly read 0 (seen once in a
    # full run); none can be negative, and together they must have taken time.
    convs = [n for n in profile["nodes"] if n["category"] in ("depthwise", "pointwise")]
    assert len(convs) == sum(1 for n in tiny_v1.cost.nodes if n.category in ("depthwise", "pointwise"))
    assert all(n["time_ms"] >= 0 for n in convs) and sum(n["time_ms"] > 0 for n in convs) > len(convs) // 2


def test_unsupported_precision_is_refused_before_profiling(tiny_v1):
    with pytest.raises(MnbenchError, match="precision bf16 is not supported on cpu"):
        profile_model(tiny_v1, "cpu", batch=1, precision="bf16", iterations=1)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("profile")(profile_cmd.profile)

    @app.command("noop", hidden=True)  # two commands, so "profile" stays a subcommand name as in mnbench
    def _noop() -> None:
        pass

    return app


@pytest.mark.measures
def test_profile_command_prints_json_and_saves_a_result_file(tiny_v1, tmp_path):
    env = {"MNBENCH_MODELS_DIR": str(tiny_v1.path.parent), "MNBENCH_REPORTS_DIR": str(tmp_path)}
    args = ["profile", "--arch", "v1", "--width", "0.25", "--resolution", "64", "--device", "cpu", "--threads", "1",
            "--iterations", "3", "--format", "json"]
    result = CliRunner().invoke(_app(), args, env=env)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert {c["category"] for c in printed["categories"]} >= {"depthwise", "pointwise"}
    assert all(set(c) == CATEGORY_KEYS for c in printed["categories"])

    saved = list((tmp_path / "runs").glob("*-profile.json"))
    assert len(saved) == 1
    doc = results.load_result(saved[0])
    assert doc["records"] == [] and doc["profiles"][0]["categories"] == printed["categories"]

    result = CliRunner().invoke(_app(), [*args[:-2], "--no-save"], env=env)
    assert result.exit_code == 0, result.output
    assert "depthwise" in result.stdout
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_caveats_say_when_the_split_cannot_be_trusted():
    assert profile_caveats(SimpleNamespace(is_gpu_provider=False), 0.95) == []
    (gpu,) = profile_caveats(SimpleNamespace(is_gpu_provider=True), 0.95)
    assert "at launch" in gpu
    (fused,) = profile_caveats(SimpleNamespace(is_gpu_provider=False), 0.1)
    assert "only 10%" in fused
