"""int8 as a precision: the fp32 export quantized statically with ONNX Runtime's tools, cached beside it.

Method (ONNX Runtime's post-training static quantization, `backends/ort_quantize.py` makes the calls):
`quant_pre_process` (shape inference and graph clean-up), then `quantize_static` in the QDQ format, weights int8,
symmetric and per output channel, MinMax calibration on a fixed, seeded set of standard-normal images that mnbench
makes (the benchmark's own inputs are standard normal too; no dataset is downloaded). Activations: uint8 on x86-64
(U8S8, the format of x86's u8*s8 multiply-add instructions, VNNI's included), int8 elsewhere (S8S8, which ONNX
Runtime's docs name the default and first choice). On x86-64 the docs' S8S8 left convolutions in float: ORT 1.32's
CPU provider fused only 74 % of V2's and 37 % of V3-Small's MACs into QLinearConv with S8S8, 100 % with U8S8 (read
back from its optimized graph, w0.25 r96). `reduce_range` (7-bit weights) where the CPU has no VNNI: the docs
recommend it for U8S8 on AVX2/AVX-512 machines without VNNI, whose u8*s8 instructions saturate in int16.

The quantized file is `<fp32 stem>-int8-<12 hex>.onnx` beside the fp32 export, the hex a hash over the fp32 file's
sha256, the settings and the onnxruntime version; a manifest beside it keeps its sha256. A cached file is reused only
while its sha256 matches and `onnx.checker` passes it, else it is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from mnbench import atomic
from mnbench.errors import MnbenchError
from mnbench.hashing import file_sha256
from mnbench.manifest import cached_manifest, write_manifest

INT8 = "int8"
# Bump when the recipe changes in a way the settings and versions in the key would not show.
QUANTIZE_RECIPE = 1
CALIBRATION_SEED = 1414  # not the benchmark input's seed (0) nor the held-out set's
CALIBRATION_IMAGES = 16
# Bytes of one stored element per precision, for traffic estimates (weights and activations alike; an int8
# model's non-quantized tensors are counted at 1 byte too, so this is the lower bound of what it moves).
_BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "bf16": 2, INT8: 1}
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")


def bytes_per_element(precision: str) -> int:
    """Bytes per stored tensor element at `precision` (the roofline's traffic at the precision that ran)."""
    try:
        return _BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise MnbenchError(f"unknown precision {precision!r}; choose one of: {', '.join(_BYTES_PER_ELEMENT)}") from None


@dataclass(frozen=True, kw_only=True)
class QuantSettings:
    """Everything about the quantization that decides the file's bytes (with the fp32 file and ORT's version)."""

    method: str = "onnxruntime.quantization.quantize_static"
    quant_format: str = "QDQ"
    per_channel: bool = True
    weight_type: str = "QInt8"
    weight_symmetric: bool = True
    activation_type: str = "QUInt8"
    activation_symmetric: bool = False
    reduce_range: bool = False
    calibrate_method: str = "MinMax"
    calibration_images: int = CALIBRATION_IMAGES
    calibration_seed: int = CALIBRATION_SEED

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def settings_for_cpu(cpu_flags: set[str] | None, *, x86: bool = True) -> QuantSettings:
    """The settings for this CPU: uint8 activations on x86-64, int8 elsewhere; reduce_range on x86-64 without VNNI
    (unknown flags count as no VNNI)."""
    if not x86:
        return QuantSettings(activation_type="QInt8", reduce_range=False)
    has_vnni = bool(cpu_flags) and any(flag in cpu_flags for flag in VNNI_FLAGS)
    return QuantSettings(activation_type="QUInt8", reduce_range=not has_vnni)


def host_settings() -> QuantSettings:
    import platform

    from mnbench.host.facts import cpu_flags, cpuinfo

    return settings_for_cpu(cpu_flags(cpuinfo()), x86=platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"))


def quantized_path_for(fp32_path: Path, key: str) -> Path:
    return fp32_path.with_name(f"{fp32_path.stem}-int8-{key[:12]}.onnx")


def cache_key(fp32_sha256: str, settings: QuantSettings, ort_version: str) -> str:
    identity = {"fp32_sha256": fp32_sha256, "settings": settings.as_dict(), "onnxruntime": ort_version,
                "recipe": QUANTIZE_RECIPE}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def calibration_inputs(shape: tuple[int, ...], *, count: int, seed: int) -> list[np.ndarray]:
    """`count` seeded standard-normal float32 inputs of `shape` (calibration and held-out sets alike)."""
    rng = np.random.default_rng(seed)
    return [np.ascontiguousarray(rng.standard_normal(shape, dtype=np.float32)) for _ in range(count)]


def quantize_model(fp32_path: str | Path, *, settings: QuantSettings | None = None,
                   fp32_sha256: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The int8 (QDQ) file of the fp32 ONNX file `fp32_path` and its manifest: the verified cached one, or made now."""
    from mnbench.backends.ort_quantize import onnxruntime_version, quantize_static_qdq

    fp32_path = Path(fp32_path)
    if not fp32_path.is_file():
        raise MnbenchError(f"model file not found: {fp32_path} (run `mnbench export` first)")
    settings = settings or host_settings()
    source_sha = fp32_sha256 or file_sha256(fp32_path)
    key = cache_key(source_sha, settings, onnxruntime_version())
    path = quantized_path_for(fp32_path, key)
    manifest = cached_manifest(path, key, validate=lambda cached, _: _validate(cached))
    if manifest is not None:
        return path, manifest
    input_name, shape = _static_input(fp32_path)
    calibration = calibration_inputs(shape, count=settings.calibration_images, seed=settings.calibration_seed)
    with atomic.atomic_path(path) as tmp:
        quantize_static_qdq(fp32_path, tmp, settings.as_dict(), {input_name: calibration})
        _validate(tmp)
        sha256 = file_sha256(tmp)
    manifest = {"file": path.name, "sha256": sha256, "cache_key": key, "source": fp32_path.name,
                "source_sha256": source_sha, "settings": settings.as_dict(), "onnxruntime": onnxruntime_version()}
    write_manifest(path, manifest)
    return path, manifest


def quantize_export(exported: Any) -> Any:
    """An `mnbench.artifacts.export.ExportedModel` of the int8 file: same config, cost (MACs stay) and params, its own path
    and sha256. `quantization` settings are on the manifest (`mnbench.manifest.read_manifest`)."""
    path, manifest = quantize_model(exported.path, fp32_sha256=exported.sha256)
    return dataclasses.replace(exported, path=path, sha256=manifest["sha256"], reused=False, output=None)


def for_precision(exported: Any, precision: str) -> Any:
    """`exported` itself, or its int8 file when `precision` is int8: the one hook every command calls."""
    return quantize_export(exported) if precision == INT8 else exported


def _validate(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - checker and shape-inference errors alike
        raise MnbenchError(f"the quantized model {path.name} fails onnx.checker: {exc}") from None
    ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
    if not {"QuantizeLinear", "DequantizeLinear"} <= ops:
        raise MnbenchError(f"quantizing gave {path.name} without QuantizeLinear/DequantizeLinear nodes")


def _static_input(model_path: Path) -> tuple[str, tuple[int, ...]]:
    """The one graph input's name and static shape (a dynamic batch calibrates with batch 1)."""
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError and friends
        raise MnbenchError(f"{model_path}: not a readable ONNX model ({exc})") from None
    constants = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise MnbenchError(f"{model_path.name}: int8 calibration needs a model with one input, it has {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim]
    if any(d <= 0 for d in dims[1:]):
        raise MnbenchError(f"{model_path.name}: int8 calibration needs static dimensions besides the batch, got {dims}")
    return inputs[0].name, (max(dims[0], 1), *dims[1:])
