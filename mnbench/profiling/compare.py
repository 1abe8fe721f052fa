"""Each layer's predicted time beside the time the runtime's profiler measured for it, so a user sees where the
predictor is wrong.

A predicted layer (`mnbench.roofline`) may hold several graph nodes (a conv and the activation fused into it); its
measured time is the sum over those nodes. Measured nodes no predicted layer holds (a view the runtime copied, an
activation the runtime did not fuse into a priced layer) get a row of their own with no prediction; the runtime's
overhead stands beside the predicted fixed cost of a call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mnbench.graph.cost import ModelCost
from mnbench.profiling.table import OVERHEAD_NODE
from mnbench.roofline.model import Roofs
from mnbench.roofline.predict import model_prediction
from mnbench.roofline.priced import CALL


def layers_side_by_side(profile: Mapping[str, Any], model_path: str | Path, cost: ModelCost, roofs: Roofs, *,
                        batch_scale: int = 1) -> dict[str, Any]:
    """{"predicted_ms", "measured_ms", "layers": rows} for a `profile_model` result of `model_path`."""
    prediction = model_prediction(model_path, cost, roofs, precision=str(profile.get("precision", "fp32")),
                                  batch_scale=batch_scale)
    measured = {str(n["name"]): float(n["time_ms"]) for n in profile.get("nodes") or []}
    ops = {str(n["name"]): n.get("op_type", "") for n in profile.get("nodes") or []}
    claimed: set[str] = set()
    rows = []
    for layer in prediction.layers:
        names = [OVERHEAD_NODE] if layer.name == CALL else [layer.name, *layer.fused]
        claimed.update(names)
        time_ms = sum(measured.get(n, 0.0) for n in names)
        rows.append(_row(layer.name, layer.op_type, layer.time_us / 1e3, time_ms, layer.bound))
    rows += [_row(name, ops.get(name, ""), None, time_ms, "")
             for name, time_ms in measured.items() if name not in claimed and time_ms > 0]
    return {"predicted_ms": prediction.time_ms, "measured_ms": sum(measured.values()),
            "calibrated": roofs.calibration is not None, "roofs": roofs.as_dict(), "layers": rows}


def _row(name: str, op_type: str, predicted_ms: float | None, measured_ms: float, bound: str) -> dict[str, Any]:
    return {"name": name, "op_type": op_type, "predicted_ms": predicted_ms, "measured_ms": measured_ms,
            "error": predicted_ms / measured_ms - 1 if predicted_ms is not None and measured_ms > 0 else None,
            "bound": bound}
