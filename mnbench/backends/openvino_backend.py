"""Native OpenVINO sessions for the `openvino` (CPU) and `openvino:<device>` devices.

The precision is always set explicitly: on CPUs with AVX512_BF16/AMX the CPU plugin otherwise runs bf16 while
the model says fp32. What is recorded is what the compiled model reports back, not what was asked.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from mnbench.backends.base import BenchSession, concrete_shape, make_model_input
from mnbench.graph.kernels import KernelProfile
from mnbench.backends.openvino_counters import (RUNNING_MEAN_PLUGINS, counters_ms, kernel_times, mean_of_measured,
                                               runtime_kernels, untruncated_mean_ms)
from mnbench.devices.registry import DeviceInfo, openvino_core
from mnbench.errors import MnbenchError, exception_text

# Inferences a session makes while it opens (the check run), before any of the caller's.
RUNS_AT_OPEN = 1

# mnbench precision -> OpenVINO element type name, and back
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
MNBENCH_PRECISION = {ov_type: precision for precision, ov_type in OV_PRECISION.items()}
# An int8 (QDQ) file: its quantized layers run in int8 from the QDQ nodes; the hint is what the rest runs in,
# f32, so a CPU with AMX/AVX512_BF16 does not silently run them in bf16.
OV_PRECISION["int8"] = "f32"
# Properties read back from the compiled model into `info["settings"]`, when the device supports them.
READ_BACK = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
             "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE",
             "EXECUTION_DEVICES", "OPTIMAL_NUMBER_OF_INFER_REQUESTS")


def openvino_compile_config(precision: str, threads: int, device: str = "CPU") -> dict[str, Any]:
    """compile_model properties for single-request latency: one stream, `threads` threads, explicit precision.

    Today these equal the reference's frozen properties: change the benchmark's settings here, never in
    `pinned_compile_config`."""
    return pinned_compile_config(precision, threads, device)


def pinned_compile_config(precision: str, threads: int, device: str = "CPU") -> dict[str, Any]:
    """The machine-speed reference's compile properties, frozen: a baseline's reference must run alike in every
    later check, whatever becomes of the benchmark's own settings."""
    if precision not in OV_PRECISION:
        raise MnbenchError(f"unknown precision {precision!r}; choose one of: {', '.join(OV_PRECISION)}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                              "INFERENCE_PRECISION_HINT": OV_PRECISION[precision]}
    if device.split(".")[0] == "CPU":  # GPU/NPU plugins have no thread count and reject the property
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def read_static_model(model_path: Path, batch: int):
    """Read an ONNX file into OpenVINO with every input made static (the batch substituted for a dynamic one).

    A static graph means no shape inference inside the timed call. Returns (model, {input name: shape}).
    """
    model_path = Path(model_path)
    try:
        model = openvino_core().read_model(str(model_path))
    except RuntimeError as exc:
        raise MnbenchError(f"OpenVINO could not read {model_path}: {_error_text(exc)}") from None
    shapes = {}
    for port in model.inputs:
        name = port.get_any_name()
        dims = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        shapes[name] = concrete_shape(name, dims, batch)
    if model.is_dynamic():
        model.reshape(shapes)
    return model, shapes


class OpenVinoSession(BenchSession):
    def __init__(self, device: DeviceInfo, model_path: Path, *, batch: int, precision: str, threads: int,
                 profile: bool = False, pin_settings: bool = False, streams: int = 1) -> None:
        """`profile`: switch the per-node counters on (PERF_COUNT; for `mnbench profile`, never for timed runs).
        `pin_settings`: the reference's frozen properties (`pinned_compile_config`) instead of the benchmark's.
        `streams` > 1: OpenVINO's throughput mode, that many streams sharing `threads`; one `infer()` then runs a
        request on every stream at once and returns when all are done (streams x batch images per call)."""
        core = openvino_core()
        model, shapes = read_static_model(model_path, batch)

        make_config = pinned_compile_config if pin_settings else openvino_compile_config
        config = make_config(precision, threads, device.target)
        if streams > 1:
            config |= {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams}
        self._profile = profile
        if profile:
            config |= {"PERF_COUNT": True}
        self._target = device.target
        try:
            self._compiled = core.compile_model(model, device.target, config)
        except RuntimeError as exc:
            raise MnbenchError(f"{device.name}: OpenVINO could not compile {model_path.name} for {device.target} "
                               f"with {config}: {_error_text(exc)}") from None
        self._requests = [self._compiled.create_infer_request() for _ in range(max(1, streams))]
        self._request = self._requests[0]
        self.inputs = {}
        for index, port in enumerate(self._compiled.inputs):
            array = make_model_input(model_path, port.get_any_name(), shapes[port.get_any_name()], index,
                                     is_float32=port.get_element_type() == ov.Type.f32)
            # shared_memory=True: the tensor wraps the numpy buffer (the default copies it once more); the
            # streams' requests read the same input.
            for request in self._requests:
                request.set_input_tensor(index, ov.Tensor(array, shared_memory=True))
            self.inputs[port.get_any_name()] = array
        try:
            self.infer()  # one run now, so a failure surfaces at open, not inside a timed loop
        except RuntimeError as exc:
            raise MnbenchError(f"{device.name}: first inference of {model_path} failed: {_error_text(exc)}") from None

        settings = _read_back(self._compiled)
        effective = str(settings.get("INFERENCE_PRECISION_HINT", OV_PRECISION[precision]))
        effective = MNBENCH_PRECISION.get(effective, effective)
        quantization = None
        if precision == "int8":
            from mnbench.graph.readback import int8_readback, precision_that_ran  # int8 runs only

            quantization = int8_readback(runtime_kernels(self._compiled), model_path,
                                         source="openvino execution graph (runtimePrecision per node)")
            effective = precision_that_ran(quantization, effective)
        self.info = {
            "runtime": "openvino",
            "runtime_version": ov.get_version(),
            "device": device.name,
            "precision": effective,
            "requested_precision": precision,
            "threads": int(settings.get("INFERENCE_NUM_THREADS", threads)),
            "streams": len(self._requests),
            "settings": settings,
            "inputs": {name: list(array.shape) for name, array in self.inputs.items()},
        }
        if quantization is not None:
            self.info["quantization"] = quantization

    def infer(self) -> None:
        # No inputs passed: the request runs on the tensors set once; share_outputs=True returns views of the
        # request's own output tensors instead of copying them into fresh numpy arrays on every call.
        if len(self._requests) == 1:
            self._request.infer(share_outputs=True)
            return
        for request in self._requests:  # throughput mode: one request per stream, all at once
            request.start_async()
        for request in self._requests:
            request.wait()

    def kernel_profile(self, *, iterations: int, warmup: int) -> KernelProfile:
        if not self._profile:
            return super().kernel_profile(iterations=iterations, warmup=warmup)
        running_mean = self._target.split(".")[0] in RUNNING_MEAN_PLUGINS
        for _ in range(warmup):
            self.infer()
        after_warmup = counters_ms(self._request) if running_mean else {}
        summed: dict[str, float] = defaultdict(float)
        latencies = []
        for _ in range(iterations):
            self.infer()
            latencies.append(self._request.latency)  # ms, as the runtime timed it
            if not running_mean:
                for name, ms in counters_ms(self._request).items():
                    summed[name] += ms
        if running_mean:
            # The running means began with the check run at open.
            before = warmup + RUNS_AT_OPEN
            means = {name: mean_of_measured(untruncated_mean_ms(after_warmup.get(name, 0.0), before),
                                            untruncated_mean_ms(ms, before + iterations), warmup=before,
                                            measured=iterations)
                     for name, ms in counters_ms(self._request).items()}
        else:
            means = {name: ms / iterations for name, ms in summed.items()}
        return KernelProfile(
            kernels=kernel_times(self._request, self._compiled, means),
            total_time_ms=sum(latencies) / len(latencies), runtime="openvino",
            runtime_version=self.info["runtime_version"], threads=self.info["threads"], iterations=iterations,
            settings={"precision": self.info["precision"], "ov_device": self._target,
                      "counters": "running mean, warm-up taken out" if running_mean else "per inference"},
        )

    def output(self, index: int = 0) -> np.ndarray:
        return np.array(self._request.get_output_tensor(index).data, copy=True)

    def predict(self, array: np.ndarray) -> np.ndarray:
        # The compiled model's own request: the bound one (and its timings) stay untouched.
        return np.array(self._compiled(array)[0], copy=True)

    def close(self) -> None:
        self._request, self._requests = None, []
        self._compiled = None


def _read_back(compiled: Any) -> dict[str, Any]:
    supported = set(compiled.get_property("SUPPORTED_PROPERTIES"))
    settings = {}
    for key in READ_BACK:
        if key in supported:
            try:
                settings[key] = _plain(compiled.get_property(key))
            except RuntimeError:
                continue
    return settings


def _plain(value: Any) -> Any:
    """A property value as JSON: element types by name (`f32`), enums by name, the rest as is."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if hasattr(value, "name"):
        return value.name
    return str(value)


def _error_text(exc: BaseException) -> str:
    # OpenVINO's first line is often just "Exception from src/...cpp:123:"; keep the lines that follow.
    return exception_text(exc, first_line_only=False)
