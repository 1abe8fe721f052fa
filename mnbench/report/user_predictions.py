"""The predicted latency of each user model (`mnbench run --model`) beside its measured one, for every format.

A record's prediction needs its device's roofs (the result file's peak at the record's thread count, else this
host's peaks file, `roofline_pairs.device_roofs`) and its model file, unchanged; a record without them is left
out, and `prediction_notes` says why once per reason.
"""

from __future__ import annotations

from typing import Any, Mapping

from mnbench.errors import MnbenchError
from mnbench.report.columns import Column, ms, plain, signed_percent
from mnbench.report.pairs import Report, min_ms
from mnbench.report.roofline_pairs import device_roofs, record_prediction

USER_PREDICTION_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("threads", "threads", plain),
    ("label", "model", plain), ("measured_ms", "measured (ms)", ms), ("predicted_ms", "predicted (ms)", ms),
    ("error", "error", signed_percent), ("mac_baseline_ms", "MACs/peak (ms)", ms),
    ("mac_error", "MACs/peak error", signed_percent), ("bound", "bound", plain), ("priced", "priced", plain),
]

USER_PREDICTION_LEGEND = [
    ("predicted", "mnbench predict's latency for the model file the record ran, from the device's peak at the "
                  "record's thread count (calibrated per operator class where `mnbench peak` measured them)"),
    ("error", "predicted / measured - 1; MACs/peak error: the same for MACs over the peak GMAC/s"),
]


def user_model_predictions(report: Report, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per user model record of `report` (newest run of each) with a prediction."""
    rows = []
    for item in report.records:
        record = item.record
        model = record.get("model")
        if not isinstance(model, Mapping) or model.get("source") != "onnx-file":
            continue
        peak = report.peaks.get(item.machine, {}).get(record["device"])
        if peak is not None and peak.get("threads") not in (None, record.get("threads")):
            peak = None  # another thread count's ceiling; device_roofs looks for this host's own
        roofs = device_roofs(record, peak, report.machines.get(item.machine, {}))
        if roofs is None:
            _note(notes, f"{record['device']}: no peak with bandwidth and layer overhead at {record.get('threads')} "
                         "thread(s), so no prediction beside user models; run `mnbench peak`")
            continue
        try:
            prediction = record_prediction(record, roofs)
        except MnbenchError as exc:
            _note(notes, f"prediction: {exc}")
            continue
        measured = min_ms(record)
        scale = int(record["batch"]) if model.get("dynamic_batch") else 1
        mac_ms = record["macs"] * scale / (roofs.peak_gmacs_per_s * 1e6)
        rows.append({
            "machine": item.machine, "device": record["device"], "threads": record.get("threads"),
            "label": model.get("label", record["arch"]), "measured_ms": measured,
            "predicted_ms": prediction.time_ms, "error": prediction.time_ms / measured - 1 if measured else None,
            "mac_baseline_ms": mac_ms, "mac_error": mac_ms / measured - 1 if measured else None,
            "bound": prediction.bound, "priced": "calibrated" if roofs.calibration else "plain roofline",
        })
    return rows


def _note(notes: list[str] | None, line: str) -> None:
    if notes is not None and line not in notes:
        notes.append(line)
