"""int8 as a precision (issue 14): the quantized file (QDQ, cached, rebuilt when damaged), what ran in int8 and
how far the outputs moved (on graphs whose answer is known by hand), the report's int8/fp32 pairing from committed
result files (tests/fixtures/int8/: `mnbench run --arch v1 --width 0.25 --resolution 96 --device cpu,openvino
--repetitions 2 --max-time 0.6 --no-peak`, once with `--precision int8`), and the bad combinations."""

import json
import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mnbench.backends import open_session
from mnbench.graph.kernels import KernelTime
from mnbench.backends.onnxruntime_backend import check_precision, ort_provider_options
from mnbench.errors import MnbenchError
from mnbench.graph.readback import int8_readback, mac_shares, precision_that_ran, sqnr_db, top1_agreement
from mnbench.int8.quantize import QuantSettings, bytes_per_element, file_sha256, quantize_model, settings_for_cpu
from mnbench.report.pairs import build_report
from record_helpers import repetition_fastest  # tests/ is on sys.path under pytest

FIXTURES = Path(__file__).parent / "fixtures" / "int8"
# The tiny net's MACs, by hand (Conv = output elements x weight elements per output; input 1x3x32x32, pads 1):
STEM_MACS = 8 * 32 * 32 * 3 * 3 * 3  # 3x3 conv 3 -> 8: 221,184
DEPTHWISE_MACS = 8 * 32 * 32 * 1 * 3 * 3  # 3x3 depthwise on 8 channels: 73,728
POINTWISE_MACS = 16 * 32 * 32 * 8  # 1x1 conv 8 -> 16: 131,072
FC_MACS = 16 * 10  # Gemm 16 -> 10
TOTAL_MACS = STEM_MACS + DEPTHWISE_MACS + POINTWISE_MACS + FC_MACS


def tiny_net(path: Path) -> Path:
    """stem 3x3 conv, depthwise 3x3, pointwise 1x1, global pool, fc: one node of each category, named."""
    rng = np.random.default_rng(3)

    def weight(name, shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * math.sqrt(2 / fan_in)).astype(np.float32), name)

    inits = [weight("w_stem", (8, 3, 3, 3)), weight("w_dw", (8, 1, 3, 3)), weight("w_pw", (16, 8, 1, 1)),
             weight("w_fc", (10, 16)), numpy_helper.from_array(np.zeros(10, np.float32), "b_fc")]
    nodes = [
        helper.make_node("Conv", ["input", "w_stem"], ["a"], name="/stem/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a1"], name="/stem/Relu"),
        helper.make_node("Conv", ["a1", "w_dw"], ["b"], name="/dw/Conv", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["b"], ["b1"], name="/dw/Relu"),
        helper.make_node("Conv", ["b1", "w_pw"], ["c"], name="/pw/Conv"),
        helper.make_node("Relu", ["c"], ["c1"], name="/pw/Relu"),
        helper.make_node("GlobalAveragePool", ["c1"], ["d"], name="/pool"),
        helper.make_node("Flatten", ["d"], ["e"], name="/flatten"),
        helper.make_node("Gemm", ["e", "w_fc", "b_fc"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    fp32 = tiny_net(folder / "tiny.onnx")
    path, manifest = quantize_model(fp32)
    return fp32, path, manifest


def test_quantized_file_is_qdq_with_per_channel_symmetric_int8_weights(quantized):
    fp32, path, manifest = quantized
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 4
    assert ops.count("Conv") == 3 and ops.count("Gemm") == 1  # the float ops stay, wrapped in Q/DQ
    inits = {i.name: i for i in model.graph.initializer}
    stem = next(c for c in model.graph.node if c.name == "/stem/Conv")
    stem_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == stem.input[1])
    assert inits[stem_dq.input[0]].data_type == TensorProto.INT8
    assert list(inits[stem_dq.input[1]].dims) == [8]  # one scale per output channel
    assert not numpy_helper.to_array(inits[stem_dq.input[2]]).any()  # symmetric: zero point 0
    assert manifest["source_sha256"] == file_sha256(fp32) and manifest["sha256"] == file_sha256(path)
    assert manifest["settings"]["quant_format"] == "QDQ" and manifest["settings"]["per_channel"]
    assert path.parent == fp32.parent and path.name.startswith("tiny-int8-")


def test_cached_file_is_reused_then_rebuilt_when_damaged(quantized):
    fp32, path, manifest = quantized
    before = path.stat().st_mtime_ns
    again, second = quantize_model(fp32)
    assert again == path and path.stat().st_mtime_ns == before and second == manifest
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # torn
    rebuilt, third = quantize_model(fp32)
    assert rebuilt == path and file_sha256(path) == third["sha256"] == manifest["sha256"]
    onnx.checker.check_model(str(path), full_check=True)


def test_other_settings_are_another_file(quantized):
    fp32, path, _ = quantized
    other, manifest = quantize_model(fp32, settings=QuantSettings(reduce_range=True))
    assert other != path and manifest["settings"]["reduce_range"] is True


def test_settings_follow_the_cpu():
    assert settings_for_cpu({"avx2", "fma"}).reduce_range is True
    assert settings_for_cpu({"avx2", "avx512f", "avx512_vnni"}).reduce_range is False
    assert settings_for_cpu({"avx2", "avx_vnni"}).reduce_range is False
    assert settings_for_cpu(set()).reduce_range is True  # unknown CPU: the safe choice
    assert settings_for_cpu({"avx2"}).activation_type == "QUInt8"  # x86: U8S8
    arm = settings_for_cpu({"asimd", "asimddp"}, x86=False)
    assert (arm.activation_type, arm.reduce_range) == ("QInt8", False)  # elsewhere: the docs' S8S8


def test_not_an_onnx_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MnbenchError, match="not a readable ONNX model"):
        quantize_model(bad)


def test_mac_shares_by_hand():
    macs = {"stem": STEM_MACS, "dw": DEPTHWISE_MACS, "pw": POINTWISE_MACS, "fc": FC_MACS, "relu": 0}
    categories = {"stem": "standard", "dw": "depthwise", "pw": "pointwise", "fc": "fc", "relu": "other"}
    shares = mac_shares(macs, categories, {"stem": {"int8"}, "pw": {"int8"}, "dw": {"fp32"}, "fc": {"int8", "fp32"}},
                        source="test")
    assert shares["int8_mac_share"] == pytest.approx((STEM_MACS + POINTWISE_MACS) / TOTAL_MACS)
    assert shares["not_int8_mac_share_by_category"] == pytest.approx(
        {"depthwise": DEPTHWISE_MACS / TOTAL_MACS, "fc": FC_MACS / TOTAL_MACS})
    assert shares["unmatched_mac_share"] == 0 and shares["not_int8_layers"] == 2


def test_int8_readback_puts_runtime_kernels_on_graph_nodes(quantized):
    _, path, _ = quantized
    # ORT names fused kernels `<node>_token_N`, OpenVINO lists `<node>/WithoutBiases` among the origins.
    kernels = [KernelTime(name="/stem/Conv_token_7", op_type="QLinearConv", time_ms=0, precision="int8"),
               KernelTime(name="x", op_type="Convolution", time_ms=0, precision="fp32",
                          origins=("/dw/Conv/WithoutBiases", "/dw/Relu")),
               KernelTime(name="/pw/Conv_token_9", op_type="QLinearConv", time_ms=0, precision="int8"),
               KernelTime(name="/fc/Gemm_token_1", op_type="QGemm", time_ms=0, precision="int8")]
    shares = int8_readback(kernels, path, source="test")
    assert shares["int8_mac_share"] == pytest.approx(1 - DEPTHWISE_MACS / TOTAL_MACS)
    assert shares["not_int8_mac_share_by_category"] == pytest.approx({"depthwise": DEPTHWISE_MACS / TOTAL_MACS})
    assert shares["not_int8_layer_names"] == ["/dw/Conv"]
    assert precision_that_ran(shares, "fp32") == "int8"
    assert precision_that_ran({"int8_mac_share": 0.4}, "fp32") == "fp32"


@pytest.mark.parametrize("device", ["cpu", "openvino"])
def test_the_runtime_reports_the_tiny_net_in_int8(quantized, device):
    fp32, path, _ = quantized
    with open_session(device, path, batch=1, precision="int8", threads=1) as session:
        assert session.info["precision"] == "int8"
        assert session.info["quantization"]["int8_mac_share"] == pytest.approx(1.0)
        if device == "openvino":  # the float rest is f32, never a silent bf16
            assert session.info["settings"]["INFERENCE_PRECISION_HINT"] == "f32"
    # The fp32 file asked to run as int8 runs in float, and is labelled so.
    with open_session(device, fp32, batch=1, precision="int8", threads=1) as session:
        assert session.info["precision"] == "fp32" and session.info["requested_precision"] == "int8"
        assert session.info["quantization"]["int8_mac_share"] == 0


def test_sqnr_of_known_noise():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1000))
    noise = rng.standard_normal(x.shape)
    noise *= math.sqrt(np.sum(x ** 2) / np.sum(noise ** 2) / 100)  # noise power exactly 1/100 of the signal's
    assert sqnr_db(x, x + noise) == pytest.approx(20.0)
    assert sqnr_db(x, x) == math.inf
    assert sqnr_db(x, 0.5 * x) == pytest.approx(10 * math.log10(4))  # noise = x/2: a quarter of the power


def test_top1_agreement():
    reference = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 2, 1]])
    test = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 2, 3]])
    assert top1_agreement(reference, test) == 0.5


def test_bytes_per_element():
    assert [bytes_per_element(p) for p in ("fp32", "fp16", "bf16", "int8")] == [4, 2, 2, 1]
    with pytest.raises(MnbenchError):
        bytes_per_element("int4")


def _fixtures():
    return [(path, json.loads(path.read_text())) for path in sorted(FIXTURES.glob("*.json"))]


def test_report_pairs_int8_with_fp32_from_fixtures():
    loaded = _fixtures()
    report = build_report(loaded)
    by_key = {(r["device"], r["variant"]): r for r in report.int8}
    assert set(by_key) == {(d, v) for d in ("cpu", "openvino") for v in ("separable", "standard")}
    records = {(r["requested_precision"] or r["precision"], r["device"], r["variant"]): r
               for _, doc in loaded for r in doc["records"]}
    for (device, variant), row in by_key.items():
        fp32, int8 = records[("fp32", device, variant)], records[("int8", device, variant)]
        # Each latency is the geometric mean of its repetitions' fastest calls, worked out from the files' own samples.
        p50_fp32, p50_int8 = (math.exp(np.mean(np.log(repetition_fastest(r)))) for r in (fp32, int8))
        assert row["int8_speedup"] == pytest.approx(p50_fp32 / p50_int8, rel=1e-9)
        assert row["int8_mac_share"] == int8["quantization"]["int8_mac_share"]
        assert row["sqnr_db"] == int8["quantization"]["sqnr_db"]
        for precision in ("fp32", "int8"):
            # standard / separable latency at that precision, paired by repetition (one round each in these files):
            # the geometric mean over the repetitions of the ratio of their fastest calls, from the files' own samples.
            standard = repetition_fastest(records[(precision, device, "standard")])
            separable = repetition_fastest(records[(precision, device, "separable")])
            expected = math.exp(np.mean([math.log(a / b) for a, b in zip(standard, separable, strict=True)]))
            assert row[f"realized_speedup_{precision}"] == pytest.approx(expected, rel=1e-9)
            pair = next(r for r in report.rows if r["device"] == device and r["precision"] == precision)
            assert pair["realized_speedup"] == pytest.approx(expected, rel=1e-9)  # the pair table says the same
    assert "int8 against fp32" in __import__("mnbench.report.text", fromlist=["to_text"]).to_text(report)


def test_an_int8_run_that_ran_in_float_is_not_merged_with_fp32():
    loaded = _fixtures()
    for _, doc in loaded:
        for r in doc["records"]:
            if r.get("requested_precision") == "int8" and r["device"] == "cpu":
                r["precision"] = "fp32"
                r["quantization"] |= {"int8_mac_share": 0.37, "warning": "only 37% of the MACs ran in int8 kernels"}
    report = build_report(loaded)
    cpu_rows = [r for r in report.rows if r["device"] == "cpu"]
    assert len(cpu_rows) == 2  # the real fp32 pair and the int8 run's, never one merged
    cpu_int8 = [r for r in report.int8 if r["device"] == "cpu"]
    assert {r["precision_ran"] for r in cpu_int8} == {"fp32"} and {r["int8_mac_share"] for r in cpu_int8} == {0.37}
    assert any("only 37% of the MACs ran in int8" in w for w in report.warnings)


def test_devices_without_int8_say_so_in_one_line():
    for device in ("cuda",):
        with pytest.raises(MnbenchError) as caught:
            check_precision(device, "int8")
        assert "\n" not in str(caught.value) and "tensorrt" in str(caught.value)
    assert ort_provider_options("openvino-ep", precision="int8")[0][1]["precision"] == "FP32"
    assert ort_provider_options("tensorrt", precision="int8")[0][1]["trt_int8_enable"] is True


def test_cli_unknown_precision_lists_int8(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "mnbench", "run", "--arch", "v1", "--device", "cpu",
                             "--precision", "int4"], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "int8" in lines[0] and "Traceback" not in result.stderr
