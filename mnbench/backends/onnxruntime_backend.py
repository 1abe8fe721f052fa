"""ONNX Runtime sessions for the `cpu`, `cuda`, `tensorrt` and `openvino-ep` devices.

Inputs and outputs are OrtValues bound once through IOBinding; on CUDA/TensorRT they live on the GPU, so a timed
`run_with_iobinding` copies nothing between host and device. Any provider other than CPU runs with
`session.disable_cpu_ep_fallback`, so a node that would silently run on the CPU fails the session instead.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from mnbench import paths
from mnbench.backends import openvino_ep_plugin
from mnbench.backends.base import BenchSession, concrete_shape, make_model_input
from mnbench.graph.kernels import KernelProfile
from mnbench.backends.ort_quantize import optimized_graph_kernels
from mnbench.backends.ort_trace import ort_kernel_times, read_ort_trace
from mnbench.devices.registry import DeviceInfo, ort_build, prepare_gpu_libraries
from mnbench.errors import MnbenchError, exception_text

# Inferences a session makes while it opens (the check run), before any of the caller's.
RUNS_AT_OPEN = 1

# device name -> precisions it runs, and what to do instead for the others
_PRECISIONS = {
    "cpu": ("fp32", "int8"),
    "cuda": ("fp32",),
    "tensorrt": ("fp32", "fp16", "int8"),
    "openvino-ep": ("fp32", "int8"),
}
_PRECISION_HINTS = {
    "cpu": "ONNX Runtime's CPU provider runs fp32 models in fp32; use --device openvino for bf16/fp16 on this CPU",
    "cuda": "the CUDA provider would need an fp16 copy of the model, which mnbench does not make, and it has no "
            "int8 convolution kernels for QDQ models (it would run them in float); use --device tensorrt",
    "tensorrt": "mnbench builds fp32 or fp16 TensorRT engines; use --precision fp16",
    "openvino-ep": "the OpenVINO provider on CPU takes precision FP32 only; use --device openvino for bf16/fp16",
}
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32}  # int: a user model's argmax/labels


def _name(device: DeviceInfo | str) -> str:
    name = device.name if isinstance(device, DeviceInfo) else device
    return "openvino-ep" if name.startswith("openvino-ep") else name  # openvino-ep:GPU takes openvino-ep's options


def check_precision(device: DeviceInfo | str, precision: str) -> str:
    """The precision the device will run; an unsupported request is a MnbenchError saying what to do instead."""
    name = _name(device)
    if name not in _PRECISIONS:
        raise MnbenchError(f"device {name!r} does not run on ONNX Runtime")
    if precision not in _PRECISIONS[name]:
        raise MnbenchError(f"precision {precision} is not supported on {name}: {_PRECISION_HINTS[name]}")
    return precision


def trt_cache_dir(precision: str, models_dir: str | os.PathLike | None = None) -> Path:
    # One folder per precision: an engine is built for one precision and TensorRT's cache key does not say which.
    return paths.models_dir(models_dir).resolve() / "trt-cache" / precision


def ort_session_options(
    device: DeviceInfo | str,
    *,
    threads: int,
    free_dims: dict[str, int] | None = None,
    log_severity: int = 3,
) -> Any:
    """SessionOptions for a latency benchmark: `threads` intra-op, one inter-op, all graph optimizations,
    sequential execution; CPU fallback disabled for every device but `cpu`; symbolic dims fixed by name.

    Today these are the reference's frozen options plus the dims: change the benchmark's settings here, never in
    `pinned_session_options`."""
    options = pinned_session_options(device, threads=threads, log_severity=log_severity)
    # A fixed batch makes the graph static: shape subgraphs fold away instead of landing on the CPU provider.
    for dim_name, value in (free_dims or {}).items():
        options.add_free_dimension_override_by_name(dim_name, value)
    return options


def pinned_session_options(device: DeviceInfo | str, *, threads: int, free_dims: dict[str, int] | None = None,
                           log_severity: int = 3) -> Any:
    """The machine-speed reference's SessionOptions, frozen: a baseline's reference must run alike in every later
    check, whatever becomes of the benchmark's own settings. `free_dims` is accepted and unused (the reference's
    graph is static), so both option builders take the same arguments."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = log_severity
    if _name(device) != "cpu":
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return options


def ort_provider_options(
    device: DeviceInfo | str,
    *,
    precision: str = "fp32",
    threads: int = 1,
    models_dir: str | os.PathLike | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The `providers=` list for InferenceSession: (provider, options) pairs, most preferred first."""
    name = _name(device)
    check_precision(name, precision)
    if name == "cpu":
        return [("CPUExecutionProvider", {})]
    if name == "cuda":
        return [("CUDAExecutionProvider", {"device_id": 0})]
    if name == "tensorrt":
        cache = str(trt_cache_dir(precision, models_dir))
        trt = {
            "device_id": 0,
            "trt_fp16_enable": precision == "fp16",
            # A QDQ model is explicitly quantized: TensorRT takes its scales, no calibration table.
            "trt_int8_enable": precision == "int8",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
        # Nodes TensorRT declines run on CUDA, never on the CPU (fallback to CPU is disabled).
        return [("TensorrtExecutionProvider", trt), ("CUDAExecutionProvider", {"device_id": 0})]
    if name == "openvino-ep":
        return [("OpenVINOExecutionProvider", {
            "device_type": "CPU",
            # An int8 (QDQ) file runs its quantized layers in int8 whatever this says; the rest in FP32.
            "precision": "FP32" if precision == "int8" else precision.upper(),
            "num_of_threads": threads,
            "num_streams": 1,
        })]
    raise MnbenchError(f"device {name!r} does not run on ONNX Runtime")


def onnx_input_dims(model_path: str | os.PathLike) -> list[tuple[str, list[int | str | None]]]:
    """(name, dims) of the graph inputs, a dim being its size, its symbolic name, or None when unnamed."""
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise MnbenchError(f"{model_path}: not a readable ONNX model ({exc})") from None
    initializers = {init.name for init in model.graph.initializer}
    found = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in value.type.tensor_type.shape.dim]
        found.append((value.name, dims))
    return found


class OnnxRuntimeSession(BenchSession):
    def __init__(self, device: DeviceInfo, model_path: Path, *, batch: int, precision: str, threads: int,
                 models_dir: str | os.PathLike | None = None, profile: bool = False,
                 pin_settings: bool = False) -> None:
        """`profile`: switch ORT's profiler on (for `mnbench profile`, never for timed runs); `kernel_profile` then
        reads its trace. `pin_settings`: the reference's frozen session options (`pinned_session_options`)
        instead of the benchmark's."""
        effective_precision = check_precision(device, precision)
        free_dims = {dims[0]: batch for _, dims in onnx_input_dims(model_path) if dims and isinstance(dims[0], str)}
        make_options = pinned_session_options if pin_settings else ort_session_options
        options = make_options(device, threads=threads, free_dims=free_dims)
        self._trace_dir = tempfile.TemporaryDirectory(prefix="mnbench-profile-") if profile else None
        self._profiled = False
        if self._trace_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(self._trace_dir.name) / "ort-profile")
        self._session, self._plugin = _inference_session(device, model_path, options, precision=precision,
                                                         threads=threads, models_dir=models_dir)
        io_device = "cuda" if device.is_gpu_provider else "cpu"
        self._bind(model_path, batch, io_device)
        # One run now, so a failing kernel or a wrong output shape surfaces at open, not inside a timed loop.
        try:
            self.infer()
        except Exception as exc:
            raise MnbenchError(f"{device.name}: first inference of {model_path} failed: {exc}") from None
        quantization = None
        if precision == "int8":
            from mnbench.graph.readback import precision_that_ran  # loads the cost model: int8 runs only

            quantization = _int8_readback(device, model_path, threads, free_dims)
            effective_precision = precision_that_ran(quantization, "fp32") if quantization else precision
        self.info = self._describe(device, precision=precision, effective_precision=effective_precision,
                                   free_dims=free_dims, io_device=io_device)
        if quantization is not None:
            self.info["quantization"] = quantization

    def _bind(self, model_path: Path, batch: int, io_device: str) -> None:
        """Bind made inputs and preallocated outputs on `io_device` once, for every later `infer()`."""
        self._binding = self._session.io_binding()
        self.inputs = {}
        self._input_values = []
        for index, meta in enumerate(self._session.get_inputs()):
            array = make_model_input(model_path, meta.name, concrete_shape(meta.name, meta.shape, batch), index,
                                     is_float32=meta.type == "tensor(float)")
            value = ort.OrtValue.ortvalue_from_numpy(array, io_device, 0)
            self._binding.bind_ortvalue_input(meta.name, value)
            self.inputs[meta.name] = array
            self._input_values.append(value)
        self._output_values = []
        for meta in self._session.get_outputs():
            dtype = _NUMPY_TYPES.get(meta.type)
            if dtype is None:
                raise MnbenchError(f"model output {meta.name!r} is {meta.type}; expected a float or integer tensor")
            # Outputs are (batch, classes): a symbolic first dim is the batch.
            shape = concrete_shape(meta.name, meta.shape, batch, what="model output")
            value = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, io_device, 0)
            self._binding.bind_ortvalue_output(meta.name, value)
            self._output_values.append(value)
        self._binding.synchronize_inputs()

    def _describe(self, device: DeviceInfo, *, precision: str, effective_precision: str, free_dims: dict[str, int],
                  io_device: str) -> dict[str, Any]:
        """`info`: what the session runs with, read back from ORT where it tells."""
        session_options = self._session.get_session_options()
        return {
            "runtime": "onnxruntime",
            "runtime_version": ort.__version__,
            "device": device.name,
            "precision": effective_precision,
            "requested_precision": precision,
            "threads": session_options.intra_op_num_threads,
            "providers": list(self._session.get_providers()),
            "settings": {
                "build": ort_build(),
                # ORT does not report the thread count it uses; this is the value set, which it honors.
                "intra_op_num_threads": session_options.intra_op_num_threads,
                "inter_op_num_threads": session_options.inter_op_num_threads,
                "graph_optimization_level": session_options.graph_optimization_level.name,
                "execution_mode": session_options.execution_mode.name,
                "disable_cpu_ep_fallback": _config_entry(session_options, "session.disable_cpu_ep_fallback") == "1",
                # ORT spins its workers unless told "0"; spinning decides a small model's latency on a busy machine.
                "intra_op_allow_spinning": _config_entry(session_options, "session.intra_op.allow_spinning") != "0",
                "free_dimension_overrides": free_dims,
                "io_binding_device": io_device,
                "provider_options": self._session.get_provider_options(),
                # openvino-ep through the onnxruntime-ep-openvino plugin: its library, OpenVINO device, options set
                **({"openvino_ep_plugin": self._plugin} if self._plugin else {}),
            },
            "inputs": {name: list(array.shape) for name, array in self.inputs.items()},
        }

    def infer(self) -> None:
        self._session.run_with_iobinding(self._binding)

    def kernel_profile(self, *, iterations: int, warmup: int) -> KernelProfile:
        if self._trace_dir is None:
            return super().kernel_profile(iterations=iterations, warmup=warmup)
        if self._profiled:
            raise MnbenchError("ONNX Runtime's profiler stops at its first read: open a new session to profile again")
        for _ in range(warmup + iterations):
            self.infer()
        self._profiled = True
        events = read_ort_trace(self._session.end_profiling())
        # + RUNS_AT_OPEN: the session's own check run at open comes first in the trace.
        kernels, run_ms = ort_kernel_times(events, skip_runs=warmup + RUNS_AT_OPEN)
        return KernelProfile(
            kernels=kernels, total_time_ms=sum(run_ms) / len(run_ms), runtime="onnxruntime",
            runtime_version=self.info["runtime_version"], threads=self.info["threads"], iterations=len(run_ms),
            settings={"precision": self.info["precision"], "providers": self.info["providers"],
                      "graph_optimization_level": self.info["settings"]["graph_optimization_level"]},
        )

    def output(self, index: int = 0) -> np.ndarray:
        return self._output_values[index].numpy().copy()

    def predict(self, array: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._session.get_inputs()[0].name: array})[0]

    def close(self) -> None:
        # The runtime frees session and buffers (host or GPU) when the last reference goes.
        self._binding = None
        self._input_values = []
        self._output_values = []
        self._session = None
        if self._trace_dir is not None:
            self._trace_dir.cleanup()


def _inference_session(device: DeviceInfo, model_path: Path, options: Any, *, precision: str, threads: int,
                       models_dir: str | os.PathLike | None) -> tuple[Any, dict[str, Any] | None]:
    """The InferenceSession on the device's providers, and what the OpenVINO plugin was given (None when it is not
    used); a MnbenchError if it fails or falls back to another provider."""
    providers = ort_provider_options(device, precision=precision, threads=threads, models_dir=models_dir)
    plugin = None
    if device.target == openvino_ep_plugin.discovery.EP_NAME and openvino_ep_plugin.uses_plugin(ort):
        plugin = openvino_ep_plugin.add_plugin_provider(ort, options, device.name, providers[0][1])
        providers = None  # the provider is in `options` (add_provider_for_devices)
    if device.is_gpu_provider:
        prepare_gpu_libraries()
    if device.name == "tensorrt":
        trt_cache_dir(precision, models_dir).mkdir(parents=True, exist_ok=True)
    try:
        # enable_fallback=0: the Python wrapper would otherwise retry on the CPU provider after an EP error.
        session = ort.InferenceSession(str(model_path), options, providers=providers, enable_fallback=0)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/EPFail types as well as RuntimeError
        raise MnbenchError(_session_error(device, model_path, exc)) from None
    in_use = session.get_providers()
    if device.target not in in_use:
        raise MnbenchError(f"{device.name}: ONNX Runtime fell back to {', '.join(in_use)} instead of "
                           f"{device.target}; refusing to report CPU timings as {device.name}")
    return session, plugin


def _int8_readback(device: DeviceInfo, model_path: Path, threads: int, free_dims: dict[str, int]) -> dict | None:
    """What ran in int8, from the optimized graph the CPU provider runs; None where the provider compiles the graph
    into an engine of its own that ONNX Runtime cannot show (TensorRT, OpenVINO)."""
    if device.name != "cpu":
        return None
    stat = model_path.stat()
    return _cpu_int8_readback(str(model_path), stat.st_mtime_ns, stat.st_size, threads,
                              tuple(sorted(free_dims.items())))


@functools.lru_cache(maxsize=64)
def _cpu_int8_readback(path: str, mtime_ns: int, size: int, threads: int, free_dims: tuple) -> dict:
    # Once per file and settings: every repetition opens fresh sessions of the same file.
    from mnbench.graph.readback import int8_readback

    options = ort_session_options("cpu", threads=threads, free_dims=dict(free_dims))
    return int8_readback(optimized_graph_kernels(Path(path), options), path,
                         source="onnxruntime optimized graph (SessionOptions.optimized_model_filepath)")


def _config_entry(options: Any, key: str) -> str | None:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # ORT raises for a key that was never set
        return None


def _session_error(device: DeviceInfo, model_path: Path, exc: BaseException) -> str:
    text = str(exc)
    first = exception_text(exc)
    if "fallback to CPU EP has been explicitly disabled" in text:
        return (f"{device.name}: some nodes of {model_path.name} would run on the CPU instead of {device.target}, "
                f"so the timings would not be {device.name} timings ({first})")
    return f"{device.name}: ONNX Runtime could not load {model_path} on {device.target}: {first}"
