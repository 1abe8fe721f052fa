"""The calls into `onnxruntime.quantization` (mnbench.int8.quantize decides the settings and owns the cache), and the
optimized graph ONNX Runtime really runs, read back for what ran in int8.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from mnbench.graph.kernels import KernelTime
from mnbench.errors import MnbenchError, exception_text

# Kernels of ORT's optimized graph that compute in integers (QDQ Conv/Gemm/MatMul fused by the CPU provider).
ORT_INT8_KERNELS = frozenset({"QLinearConv", "ConvInteger", "QGemm", "QLinearMatMul", "MatMulInteger",
                              "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "NhwcQLinearConv"})


def onnxruntime_version() -> str:
    return ort.__version__


def _reader(feeds: dict[str, list[np.ndarray]]) -> Any:
    """A CalibrationDataReader feeding the calibration inputs once, in order (read until get_next gives None)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Inputs(CalibrationDataReader):
        def __init__(self) -> None:
            names = list(feeds)
            self._batches = iter([dict(zip(names, arrays)) for arrays in zip(*feeds.values())])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return Inputs()


def quantize_static_qdq(source: Path, target: Path, settings: dict[str, Any],
                        feeds: dict[str, list[np.ndarray]]) -> None:
    """`quant_pre_process` then `quantize_static` of `source` into `target`, with mnbench.int8.quantize's settings."""
    # Imported here: onnxruntime.quantization takes a second to import, and only quantizing needs it.
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if settings["quant_format"] != "QDQ" or settings["calibrate_method"] != "MinMax":
        raise MnbenchError(f"mnbench quantizes to QDQ with MinMax calibration, got {settings}")
    with tempfile.TemporaryDirectory(prefix="mnbench-quantize-") as scratch, _quiet():
        prepared = Path(scratch) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared))
            quantize_static(
                str(prepared), str(target), _reader(feeds), quant_format=QuantFormat.QDQ,
                per_channel=settings["per_channel"], reduce_range=settings["reduce_range"],
                activation_type=QuantType[settings["activation_type"]],
                weight_type=QuantType[settings["weight_type"]], calibrate_method=CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": settings["weight_symmetric"],
                               "ActivationSymmetric": settings["activation_symmetric"]},
            )
        except MnbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - the quantizer raises many types
            raise MnbenchError(f"ONNX Runtime could not quantize {source.name}: {exception_text(exc)}") from None


def optimized_graph_kernels(model_path: Path, options: Any) -> list[KernelTime]:
    """The nodes of the graph ORT's CPU provider runs after its optimizations, as kernels with a precision:
    int8 for the integer kernels (QLinearConv, QGemm, ...), fp32 for a float Conv/Gemm/MatMul. `options` are the
    benchmark's SessionOptions, so the optimizations are the ones the timed session gets."""
    with tempfile.TemporaryDirectory(prefix="mnbench-optimized-") as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 3  # ORT warns that the saved graph is hardware specific: it is meant to be
        try:
            ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(str(optimized), load_external_data=False).graph
        except Exception as exc:  # noqa: BLE001
            raise MnbenchError(f"cannot read back ONNX Runtime's optimized graph of {model_path.name}: "
                               f"{exception_text(exc)}") from None
    return [KernelTime(name=node.name, op_type=node.op_type, time_ms=0.0, exec_type="CPUExecutionProvider",
                       precision="int8" if node.op_type in ORT_INT8_KERNELS else "fp32")
            for node in graph.node]


@contextlib.contextmanager
def _quiet():
    """The quantizer logs and prints per node; none of it is the user's concern (errors still raise)."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
