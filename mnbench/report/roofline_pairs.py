"""The roofline prediction beside each pair's theoretical and realized speedup, and per category beside profiles.

A pair gets `roofline_speedup` (`mnbench.roofline.model`: predicted time standard / separable) and `roofline_error`
(roofline_speedup / realized - 1) when two things are at hand:
- the device's roofs: the result file's peak when it has `gbytes_per_s` and `layer_overhead_us`, else this
  machine's peaks file (reports/peaks/<host>.json) when the result was measured on this host;
- both model files, at the `model_path` the record names, unchanged (`model_sha256`).
Otherwise the fields are None; a note says so where the roofs are there but a model file is not.
"""

from __future__ import annotations

import functools
import hashlib
import socket
from pathlib import Path
from typing import Any, Mapping

import onnx

from mnbench.graph.cost import count_cost
from mnbench.errors import MnbenchError
from mnbench.roofline.layers import analyse
from mnbench.roofline.model import Prediction, Roofs, fused_activations, predict, roofline_speedup

NO_ROOFLINE = {"roofline_speedup": None, "roofline_error": None, "roofline": None}


def roofline_fields(standard: Mapping[str, Any], separable: Mapping[str, Any], peak: Mapping[str, Any] | None,
                    machine: Mapping[str, Any], realized: float | None, notes: list[str]) -> dict[str, Any]:
    """The pair row's roofline fields from its two records; a note in `notes` when a model file is missing."""
    roofs = device_roofs(standard, peak, machine)
    if roofs is None:  # a peak from before bandwidth was measured: the legend says what to run, no note per pair
        return dict(NO_ROOFLINE)
    try:
        std, sep = record_prediction(standard, roofs), record_prediction(separable, roofs)
    except MnbenchError as exc:
        _note_once(notes, f"roofline: {exc}")
        return dict(NO_ROOFLINE)
    speedup = roofline_speedup(std, sep)
    return {
        "roofline_speedup": speedup,
        "roofline_error": speedup / realized - 1 if speedup and realized else None,
        "roofline": {"roofs": roofs.as_dict(), "standard": std.summary(), "separable": sep.summary()},
    }


def device_roofs(record: Mapping[str, Any], peak: Mapping[str, Any] | None,
                 machine: Mapping[str, Any]) -> Roofs | None:
    """The roofs of the record's device: from the result file's peak, else this host's peaks file."""
    roofs = Roofs.from_peak(peak, name=record["device"]) if peak else None
    if roofs is None and machine.get("hostname") == socket.gethostname():
        from mnbench.roofline.peak import load_peak  # reads this host's peaks file only

        stored = load_peak(record["device"], precision=record["precision"], threads=record.get("threads"))
        roofs = Roofs.from_peak(stored, name=record["device"]) if stored else None
    return roofs


def record_prediction(record: Mapping[str, Any], roofs: Roofs) -> Prediction:
    """The roofline prediction of the model file a record ran; a MnbenchError when the file is gone or changed."""
    path = record.get("model_path")
    if not path or not Path(path).is_file():
        raise MnbenchError(f"model file {path or '(not recorded)'} of {_label(record)} is not here; "
                           "run the benchmark on this machine (or `mnbench export` the model into the same path)")
    cost, fused, layers = _graph_cost(str(path), Path(path).stat().st_mtime_ns, record.get("model_sha256"))
    model = record.get("model") if isinstance(record.get("model"), Mapping) else {}
    scale = int(record["batch"]) if model.get("dynamic_batch") else 1  # costed per image
    return predict(cost, roofs, precision=record["precision"], fused=fused, batch_scale=scale, layers=layers)


@functools.lru_cache(maxsize=64)
def _graph_cost(path: str, _mtime_ns: int, sha256: str | None):
    data = Path(path).read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise MnbenchError(f"model file {path} changed since it was measured (sha256 differs)")
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors have no common type
        raise MnbenchError(f"model file {path} is not a readable ONNX file: {exc}") from exc
    return count_cost(model), fused_activations(model), analyse(model)


def with_predicted_shares(profiles: list[dict[str, Any]], rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`profiles` with the roofline's predicted time share on each category (`predicted_time_share`), where the
    pair of the profiled model has a prediction; the others as they are."""
    keys = ("machine", "device", "arch", "width", "resolution", "batch", "precision")
    by_key = {_key(row, keys): row for row in rows if row.get("roofline")}
    out = []
    for profile in profiles:
        row, variant = by_key.get(_key(profile, keys)), profile.get("variant")
        if row is None or variant not in ("standard", "separable"):
            out.append(profile)
            continue
        predicted = row["roofline"][variant]["categories"]
        categories = [{**c, "predicted_time_share": predicted.get(c.get("category"), {}).get("time_share", 0.0)}
                      if isinstance(c, Mapping) else c for c in profile.get("categories") or []]
        out.append({**profile, "categories": categories})
    return out


def _key(item: Mapping[str, Any], keys: tuple[str, ...]) -> tuple:
    return tuple(float(item[k]) if k == "width" and isinstance(item.get(k), (int, float)) else item.get(k)
                 for k in keys)


def _label(record: Mapping[str, Any]) -> str:
    return f"{record['arch']} {record['variant']} w{float(record['width']):g} r{record['resolution']}"


def _note_once(notes: list[str], line: str) -> None:
    if line not in notes:
        notes.append(line)
