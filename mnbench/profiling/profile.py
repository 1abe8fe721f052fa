"""`profile_model`: one model profiled on one device, through the benchmark's own session with the profiler on.

Profiling slows every kernel down a little, so the timed runs never profile: the profile is a session of its
own, opened by `mnbench.backends.open_session(..., profile=True)` with the benchmark's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from mnbench import paths, results
from mnbench.backends import KernelProfile, open_session
from mnbench.config import ModelConfig
from mnbench.graph.cost import ModelCost, count_cost
from mnbench.devices.registry import DeviceInfo, resolve_device
from mnbench.errors import MnbenchError
from mnbench.host.machine import machine_info
from mnbench.graph.attribution import Attribution, GraphIndex, attribute_kernels, effective_precision
from mnbench.profiling.table import build_profile

DEFAULT_ITERATIONS = 50
DEFAULT_WARMUP = 5
# Below this share of the time on named graph nodes, the category split says little.
LOW_ATTRIBUTION = 0.5


def profile_model(
    exported_or_path: Any,
    device: Any,
    *,
    batch: int,
    precision: str = "fp32",
    threads: int | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    models_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Profile one model on one device; the result file's `profiles` entry (times: mean per inference).

    `exported_or_path` is a `mnbench.artifacts.export.ExportedModel` (its config and cost are used) or an ONNX file path
    (costed here; arch, variant, width and resolution are then None).
    """
    if iterations <= 0 or warmup < 0:
        raise MnbenchError(f"need iterations > 0 and warm-up >= 0, got {iterations} and {warmup}")
    if batch <= 0:
        raise MnbenchError(f"batch must be a positive integer, got {batch}")
    device = resolve_device(device)
    model_path, config, cost, sha256 = _model_source(exported_or_path)
    model = onnx.load(str(model_path), load_external_data=False)
    with open_session(device, model_path, batch=batch, precision=precision, threads=threads, models_dir=models_dir,
                      profile=True) as session:
        measured = session.kernel_profile(iterations=iterations, warmup=warmup)

    index = GraphIndex(model, {n.name: n.macs for n in cost.nodes})
    attributions = attribute_kernels(measured.kernels, index, {n.name: n.category for n in cost.nodes})
    table = build_profile(attributions, cost, total_time_ms=measured.total_time_ms,
                          samples_per_graph_mac=batch if _batch_is_symbolic(model) else 1)
    if precision == "int8":  # which categories' time ran in int8 kernels
        from mnbench.graph.readback import int8_time_share_by_category

        shares = int8_time_share_by_category(attributions)
        for category in table["categories"]:
            category["int8_time_share"] = shares.get(category["category"])
    return {
        "arch": config.arch if config else None,
        "variant": config.variant if config else None,
        "width": config.width if config else None,
        "resolution": config.resolution if config else None,
        "batch": batch,
        "device": device.name,
        **_run_fields(measured, precision=precision, warmup=warmup, attributions=attributions),
        "macs": int(cost.macs),
        "model_sha256": sha256,
        "model_path": str(model_path),
        "total_time_ms": table["total_time_ms"],
        "unattributed_ms": table["unattributed_ms"],
        **_attribution_fields(device, attributions, table["total_time_ms"]),
        "settings": measured.settings,
        "categories": table["categories"],
        "nodes": table["nodes"],
    }


def _model_source(exported_or_path: Any) -> tuple[Path, ModelConfig | None, ModelCost, str | None]:
    """(path, config, cost, sha256) of an ExportedModel, or of an ONNX file costed here."""
    if isinstance(exported_or_path, (str, Path)):
        model_path, config, cost, sha256 = Path(exported_or_path), None, None, None
    else:
        exported = exported_or_path
        model_path, config, cost, sha256 = Path(exported.path), exported.config, exported.cost, exported.sha256
    if not model_path.is_file():
        raise MnbenchError(f"model file not found: {model_path} (run `mnbench export` first)")
    return model_path, config, cost if cost is not None else count_cost(model_path), sha256


def _run_fields(measured: KernelProfile, *, precision: str, warmup: int,
                attributions: list[Attribution]) -> dict[str, Any]:
    return {
        "runtime": measured.runtime,
        "runtime_version": measured.runtime_version,
        "precision": measured.settings.get("precision", precision),
        "requested_precision": precision,
        "effective_precision": effective_precision(attributions),
        "threads": measured.threads,
        "iterations": measured.iterations,
        "warmup": warmup,
    }


def _attribution_fields(device: DeviceInfo, attributions: list[Attribution], total_time_ms: float) -> dict[str, Any]:
    attributed_ms = sum(a.kernel.time_ms for a in attributions if a.node is not None)
    attributed_share = attributed_ms / total_time_ms
    # How much of the time landed on a graph node by name; low when the runtime fuses the graph into one
    # engine (TensorRT, the OpenVINO provider), where the categories cannot be told apart.
    return {"attributed_share": attributed_share, "notes": profile_caveats(device, attributed_share)}


def profile_caveats(device: Any, attributed_share: float) -> list[str]:
    notes = []
    if getattr(device, "is_gpu_provider", False):
        notes.append("ONNX Runtime times GPU kernels at launch, on the host; the GPU's own time shows up as "
                     "runtime overhead ('other'), so the category split understates the GPU work")
    if attributed_share < LOW_ATTRIBUTION:
        notes.append(f"only {attributed_share:.0%} of the time could be put on graph nodes (a runtime that fuses "
                     "the graph into one engine, or much overhead): read the categories with care")
    return notes


def _batch_is_symbolic(model: onnx.ModelProto) -> bool:
    """True when the first graph input's batch is symbolic: the cost model then counted one sample."""
    constants = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in constants:
            dims = value.type.tensor_type.shape.dim
            return bool(dims) and not dims[0].HasField("dim_value")
    return False


def save_profiles(profiles: list[dict[str, Any]], *, reports_dir: str | Path | None = None,
                  output: str | Path | None = None) -> Path:
    """Write a result file (no records, these `profiles`) under runs/ as `<UTC time>-<host>-profile.json`."""
    path = Path(output) if output is not None else paths.default_run_output(reports_dir, "-profile")
    return results.write_result(results.new_result(machine_info(), profiles=profiles), path)
