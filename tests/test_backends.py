"""Runtime backends: option building (pure, no GPU needed) and real `cpu` / `openvino` sessions on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mnbench.backends import concrete_shape, make_input, open_session
from mnbench.backends.onnxruntime_backend import check_precision, ort_provider_options, ort_session_options
from mnbench.backends.openvino_backend import openvino_compile_config
from mnbench.devices.registry import DeviceInfo, openvino_core
from mnbench.errors import MnbenchError

RESOLUTION, CLASSES = 16, 10


def tiny_convnet(path: Path, batch: int | str) -> Path:
    """A small separable conv net with the exporter's contract: `input` (B,3,R,R) -> `logits` (B,N)."""
    rng = np.random.default_rng(1)

    def weight(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("Conv", ["input", "w_stem"], ["stem"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
        helper.make_node("Relu", ["stem"], ["stem_act"]),
        helper.make_node("Conv", ["stem_act", "w_dw"], ["dw"], kernel_shape=[3, 3], pads=[1] * 4, group=8),
        helper.make_node("Conv", ["dw", "w_pw"], ["pw"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["pw"], ["pw_act"]),
        helper.make_node("GlobalAveragePool", ["pw_act"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, RESOLUTION, RESOLUTION])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        initializer=[weight("w_stem", 8, 3, 3, 3), weight("w_dw", 8, 1, 3, 3), weight("w_pw", 16, 8, 1, 1),
                     weight("w_fc", CLASSES, 16), weight("b_fc", CLASSES)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def static_model(tmp_path_factory) -> Path:
    return tiny_convnet(tmp_path_factory.mktemp("models") / "tiny-b2.onnx", 2)


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory) -> Path:
    return tiny_convnet(tmp_path_factory.mktemp("models") / "tiny-bdyn.onnx", "batch")


def reference_logits(model: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, inputs)[0]


# ---------------------------------------------------------------------------------------------------------------
# Option building: pure functions, checked for every device without its hardware


def test_cpu_provider_and_session_options():
    assert ort_provider_options("cpu") == [("CPUExecutionProvider", {})]
    options = ort_session_options("cpu", threads=3)
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    with pytest.raises(RuntimeError):  # fallback to the CPU is what `cpu` is; the entry is never set
        options.get_session_config_entry("session.disable_cpu_ep_fallback")


@pytest.mark.parametrize("device", ["cuda", "tensorrt", "openvino-ep"])
def test_non_cpu_devices_disable_cpu_fallback(device):
    options = ort_session_options(device, threads=2)
    assert options.get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
    providers = [name for name, _ in ort_provider_options(device)]
    assert "CPUExecutionProvider" not in providers  # ORT rejects an explicit CPU EP when fallback is disabled


def test_cuda_provider_options():
    assert ort_provider_options("cuda") == [("CUDAExecutionProvider", {"device_id": 0})]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_options_cache_under_models_dir_and_fp16_flag(tmp_path, precision):
    providers = ort_provider_options("tensorrt", precision=precision, models_dir=tmp_path / "models")
    (name, trt), (fallback, _) = providers
    assert (name, fallback) == ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert trt["trt_fp16_enable"] is (precision == "fp16")
    assert trt["trt_engine_cache_enable"] and trt["trt_timing_cache_enable"]
    cache = Path(trt["trt_engine_cache_path"])
    assert cache.is_relative_to((tmp_path / "models" / "trt-cache").resolve())
    assert cache.name == precision  # fp32 and fp16 engines never share a cache folder


def test_tensorrt_cache_follows_models_dir_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "elsewhere"))
    (_, trt), _ = ort_provider_options("tensorrt")
    assert Path(trt["trt_engine_cache_path"]) == (tmp_path / "elsewhere" / "trt-cache" / "fp32").resolve()


def test_openvino_ep_provider_options():
    [(name, options)] = ort_provider_options("openvino-ep", threads=4)
    assert name == "OpenVINOExecutionProvider"
    assert options == {"device_type": "CPU", "precision": "FP32", "num_of_threads": 4, "num_streams": 1}


@pytest.mark.parametrize("device,precision", [("cpu", "fp16"), ("cpu", "bf16"), ("cuda", "fp16"), ("cuda", "bf16"),
                                              ("tensorrt", "bf16"), ("openvino-ep", "bf16")])
def test_unsupported_precisions_are_refused_with_an_alternative(device, precision):
    expected = f"precision {precision} is not supported on {device}: .*--(device|precision) "
    with pytest.raises(MnbenchError, match=expected):
        check_precision(device, precision)
    with pytest.raises(MnbenchError):
        ort_provider_options(device, precision=precision)


@pytest.mark.parametrize("precision,ov_type", [("fp32", "f32"), ("bf16", "bf16"), ("fp16", "f16")])
def test_openvino_compile_config_always_sets_precision(precision, ov_type):
    config = openvino_compile_config(precision, 3)
    assert config == {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": ov_type,
                      "INFERENCE_NUM_THREADS": 3}


def test_openvino_compile_config_has_no_threads_for_gpu():
    assert "INFERENCE_NUM_THREADS" not in openvino_compile_config("fp32", 3, device="GPU.0")


def test_concrete_shape_fills_dynamic_batch_and_checks_static_one():
    assert concrete_shape("input", ["batch", 3, 16, 16], 4) == [4, 3, 16, 16]
    assert concrete_shape("input", [None, 3, 16, 16], 2) == [2, 3, 16, 16]
    assert concrete_shape("input", [2, 3, 16, 16], 2) == [2, 3, 16, 16]
    with pytest.raises(MnbenchError, match="exported with batch 1"):
        concrete_shape("input", [1, 3, 16, 16], 8)
    with pytest.raises(MnbenchError, match="dynamic dimensions besides the batch"):
        concrete_shape("input", ["batch", 3, "h", "w"], 1)


def test_inputs_are_deterministic_float32():
    a, b = make_input([2, 3, 4, 4]), make_input([2, 3, 4, 4])
    assert a.dtype == np.float32 and a.flags.c_contiguous and np.array_equal(a, b)
    assert not np.array_equal(a, make_input([2, 3, 4, 4], index=1))


# ---------------------------------------------------------------------------------------------------------------
# Real sessions on this machine


@pytest.mark.parametrize("device", ["cpu", "openvino"])
@pytest.mark.parametrize("which,batch", [("static", 2), ("dynamic", 3)])
def test_session_output_matches_plain_onnxruntime(device, which, batch, static_model, dynamic_model):
    model = static_model if which == "static" else dynamic_model
    with open_session(device, model, batch=batch, precision="fp32", threads=1) as session:
        session.infer()
        logits = session.output()
        assert session.inputs["input"].shape == (batch, 3, RESOLUTION, RESOLUTION)
        np.testing.assert_allclose(logits, reference_logits(model, session.inputs), rtol=1e-4, atol=1e-5)
        assert logits.shape == (batch, CLASSES)
        assert session.info["device"] == device and session.info["threads"] == 1
        assert session.info["precision"] == session.info["requested_precision"] == "fp32"


def test_inputs_are_bound_once_and_shared(static_model):
    # infer() takes no data: it runs on the bound buffers, so changing the host array in place changes the result.
    for device in ("cpu", "openvino"):
        with open_session(device, static_model, batch=2, threads=1) as session:
            session.infer()
            before = session.output()
            session.inputs["input"][:] = 0
            session.infer()
            np.testing.assert_allclose(session.output(), reference_logits(static_model, session.inputs),
                                       rtol=1e-4, atol=1e-5)
            assert not np.allclose(before, session.output())


def test_cpu_session_info(static_model):
    with open_session("cpu", static_model, batch=2, threads=2) as session:
        info = session.info
    assert info["runtime"] == "onnxruntime" and info["runtime_version"] == ort.__version__
    assert info["providers"] == ["CPUExecutionProvider"] and info["threads"] == 2
    assert info["settings"]["intra_op_num_threads"] == 2 and info["settings"]["inter_op_num_threads"] == 1
    assert info["settings"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert info["settings"]["disable_cpu_ep_fallback"] is False


def test_openvino_fp32_is_read_back_as_fp32(static_model):
    with open_session("openvino", static_model, batch=2, precision="fp32", threads=2) as session:
        info = session.info
    assert info["runtime"] == "openvino"
    assert info["precision"] == "fp32" and info["settings"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert info["threads"] == 2 and info["settings"]["INFERENCE_NUM_THREADS"] == 2
    assert info["settings"]["NUM_STREAMS"] == 1 and info["settings"]["PERFORMANCE_HINT"] == "LATENCY"


def test_openvino_bf16_is_read_back_as_bf16_where_the_cpu_has_it(static_model):
    if "BF16" not in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16 support in OpenVINO")
    with open_session("openvino", static_model, batch=2, precision="bf16", threads=1) as session:
        session.infer()
        if session.info["settings"]["INFERENCE_PRECISION_HINT"] != "bf16":
            pytest.skip("OpenVINO chose another precision on this CPU")
        assert session.info["precision"] == "bf16" and session.info["requested_precision"] == "bf16"
        # bf16 keeps ~3 significant digits: close to fp32, but not equal.
        np.testing.assert_allclose(session.output(), reference_logits(static_model, session.inputs), atol=0.05)


def test_unsupported_precision_on_cpu_is_refused(static_model):
    with pytest.raises(MnbenchError, match="not supported on cpu"):
        open_session("cpu", static_model, batch=2, precision="bf16")


def test_wrong_batch_for_a_static_model_is_refused(static_model):
    with pytest.raises(MnbenchError, match="exported with batch 2"):
        open_session("openvino", static_model, batch=4)


def test_missing_model_file(tmp_path):
    with pytest.raises(MnbenchError, match="model file not found"):
        open_session("cpu", tmp_path / "nope.onnx", batch=1)


def test_unavailable_device_is_refused(static_model, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    from mnbench.devices import registry as devices

    devices.clear_cache()
    try:
        with pytest.raises(MnbenchError, match="'cuda' is not available"):
            open_session("cuda", static_model, batch=2)
    finally:
        devices.clear_cache()


@pytest.mark.filterwarnings("ignore:Specified provider")
@pytest.mark.parametrize("name,provider", [("cuda", "CUDAExecutionProvider"),
                                           ("openvino-ep", "OpenVINOExecutionProvider")])
def test_silent_fallback_to_cpu_is_an_error(static_model, name, provider, tmp_path):
    # A provider that cannot take the graph (here: not in this build at all) leaves the nodes to the CPU
    # provider; with CPU fallback disabled that must fail loudly instead of timing the CPU.
    if provider in ort.get_available_providers():
        pytest.skip(f"{provider} is really available here")
    pretend = DeviceInfo(name=name, runtime="onnxruntime", available=True, target=provider)
    with pytest.raises(MnbenchError, match=f"{name}:.*CPU"):
        open_session(pretend, static_model, batch=2, models_dir=tmp_path)
