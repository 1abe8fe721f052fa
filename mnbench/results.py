"""The result file: one JSON document per run, versioned by its own `schema_version`.

Layout (schema_version 1):
{
  "schema_version": 1,
  "created_utc": "2026-11-28T00:00:00Z",
  "machine": {...},            # mnbench.machine.machine_info(): CPU, flags, cores, memory, OS, versions, GPU, commit
  "records": [Record, ...],    # one per (model, device, settings)
  "profiles": [...],           # optional, `mnbench profile` output saved with the results
  "peaks": {...}               # optional, device -> attainable GMAC/s (`mnbench peak`)
}
Writers go through `write_result` (atomic); readers through `load_result` / `load_results`, which validate
and skip a damaged file with a warning that names it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

from mnbench import atomic
from mnbench.errors import MnbenchError

SCHEMA_VERSION = 1
LATENCY_KEYS = ("min", "p50", "p90", "p99", "max", "mean", "std")
# Every record carries at least these; `validate_record` checks their presence and types.
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "arch": str,
    "variant": str,
    "width": (int, float),
    "resolution": int,
    "batch": int,
    "device": str,
    "runtime": str,
    "precision": str,
    "threads": int,
    "macs": int,
    "params": int,
    "latency_ms": dict,
    "n": int,
    "samples_ms": list,
    "throughput_ips": (int, float),
    "model_sha256": str,
}
# Optional record fields written by the engine:
#   "round_sizes": [int]   samples per interleaved round, in order (sum == n); splits samples_ms into rounds
#   "providers": [str]     ONNX Runtime providers actually in use
#   "runtime_version": str, "settings": {...}  effective runtime settings read back (threads, hints, streams)
#   "requested_precision": str   what was asked, when it differs from `precision` (what ran)
#   "model_path": str, "model": {"slug": ...}
#   "reference": {"name", "runtime", "precision", "threads", "samples_ms", "round_sizes"}  the machine-speed
#                          reference (mnbench.reference) measured in the same interleaved rounds as this record
#                          (`mnbench check` divides it out where the model's control is not at hand)
#   "controls": {sha256: {"settings", "samples_ms", "round_sizes"}}  model files run again with frozen settings in
#                          the same rounds (mnbench.control): the record's own file, and in a re-measurement the
#                          baseline's (`mnbench check` divides by the baseline file's control)


class DamagedResultError(MnbenchError):
    pass


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_result(machine: dict[str, Any], records: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "created_utc": utc_now_iso(), "machine": machine,
            "records": list(records or []), **extra}


def validate_record(record: Any, where: str = "record") -> None:
    if not isinstance(record, dict):
        raise DamagedResultError(f"{where}: not an object")
    for key, kind in RECORD_FIELDS.items():
        if key not in record:
            raise DamagedResultError(f"{where}: missing field {key!r}")
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise DamagedResultError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    for key in LATENCY_KEYS:
        if not isinstance(record["latency_ms"].get(key), (int, float)):
            raise DamagedResultError(f"{where}: latency_ms.{key} missing or not a number")
    if len(record["samples_ms"]) != record["n"]:
        raise DamagedResultError(f"{where}: n={record['n']} but {len(record['samples_ms'])} samples")


def validate_result(doc: Any, where: str = "result") -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DamagedResultError(f"{where}: not a JSON object")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DamagedResultError(f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}")
    if not isinstance(doc.get("machine"), dict):
        raise DamagedResultError(f"{where}: missing 'machine'")
    if not isinstance(doc.get("records"), list):
        raise DamagedResultError(f"{where}: missing 'records'")
    for i, record in enumerate(doc["records"]):
        validate_record(record, f"{where}: records[{i}]")
    return doc


def write_result(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    validate_result(doc, str(path))
    return atomic.write_text(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one result file; `DamagedResultError` (a MnbenchError) if it is not a valid one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MnbenchError(f"result file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedResultError(f"{path}: not a readable JSON result file ({exc})") from None
    return validate_result(doc, str(path))


def result_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, *.json) into a sorted file list; a missing path is a MnbenchError."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json") if not q.name.startswith(".")))
        elif p.is_file():
            found.append(p)
        else:
            raise MnbenchError(f"no such file or folder: {p}")
    return found


def load_results(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """Load every valid result file under `paths`; damaged ones are skipped with a warning naming them."""
    loaded = []
    for path in result_files(paths):
        try:
            loaded.append((path, load_result(path)))
        except DamagedResultError as exc:
            warnings.warn(f"skipping damaged result file: {exc}", stacklevel=2)
    return loaded


def with_latencies_scaled(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of `doc` in which every record's latency figures (samples, summary, throughput) are × `factor`.

    The machine-speed reference is left as it was: this is how a known regression is injected into a baseline
    (a baseline made 1/1.2 × as slow makes today's unchanged model look 20 % slower).
    """
    out = copy.deepcopy(doc)
    for record in out["records"]:
        record["samples_ms"] = [s * factor for s in record["samples_ms"]]
        record["latency_ms"] = {k: v * factor for k, v in record["latency_ms"].items()}
        record["throughput_ips"] /= factor
    return out
