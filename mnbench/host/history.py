"""The best machine-speed reference latency this host has recorded, per setup: how fast this machine can be.

The reference (`mnbench.measure.reference`) runs in every `mnbench run`; its p50 against the lowest p50 seen before with the
same key (host, CPU, device, runtime and version, precision, threads, reference name) says how much slower this run's
machine was than the machine at its best: a busy neighbour, a throttled clock, stolen time. Only latencies with equal
keys are compared; a key is any JSON-able dict.

One file per reports folder, `reports/host/reference_best.json`:
{"schema_version": 1, "entries": [{"key": {...}, "best_ms": float, "runs_seen": int, "best_at": iso time}]}.
It is written atomically; a damaged file is replaced (with a warning), never a crash. Two runs finishing at the same
moment may lose one update: the file is a hint, not a record.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from mnbench import atomic, paths

SCHEMA_VERSION = 1


def history_path(reports_dir: str | os.PathLike | None = None) -> Path:
    return paths.reports_dir(reports_dir) / "host" / "reference_best.json"


def note_reference(key: Mapping[str, Any], p50_ms: float, reports_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Record this run's reference p50 under `key` (keeping the lowest) and say how it compares:
    {"best_ms", "this_ms", "slowdown": this / best (1.0 = as fast as this host has ever been), "runs_seen"
    (this run included)}. A p50 that is not a positive finite number is not recorded; its slowdown is None."""
    entries = load_entries(history_path(reports_dir), _valid, "reference history")
    entry = find_entry(entries, key)
    if not isinstance(p50_ms, (int, float)) or not math.isfinite(p50_ms) or p50_ms <= 0:
        best = entry["best_ms"] if entry else None
        return {"best_ms": best, "this_ms": None, "slowdown": None, "runs_seen": entry["runs_seen"] if entry else 0}
    p50_ms = float(p50_ms)
    if entry is None:
        entry = {"key": plain_key(key), "best_ms": p50_ms, "runs_seen": 0, "best_at": _now()}
        entries.append(entry)
    elif p50_ms < entry["best_ms"]:
        entry.update(best_ms=p50_ms, best_at=_now())
    entry["runs_seen"] += 1
    doc = {"schema_version": SCHEMA_VERSION, "entries": entries}
    atomic.write_text(history_path(reports_dir), json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return {"best_ms": entry["best_ms"], "this_ms": p50_ms, "slowdown": p50_ms / entry["best_ms"],
            "runs_seen": entry["runs_seen"]}


def read_best(key: Mapping[str, Any], reports_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """{"best_ms", "runs_seen", "best_at"} recorded under `key`, or None when this host has none (or the file is
    damaged)."""
    entry = find_entry(load_entries(history_path(reports_dir), _valid, "reference history"), key)
    if entry is None:
        return None
    return {"best_ms": entry["best_ms"], "runs_seen": entry["runs_seen"], "best_at": entry.get("best_at")}


def plain_key(key: Mapping[str, Any]) -> dict[str, Any]:
    """The key as it reads back from JSON (tuples become lists, keys strings), so a fresh key and a stored one
    compare equal."""
    return json.loads(json.dumps(dict(key), sort_keys=True, default=str))


def find_entry(entries: list[dict[str, Any]], key: Mapping[str, Any]) -> dict[str, Any] | None:
    wanted = plain_key(key)
    return next((e for e in entries if e["key"] == wanted), None)


def load_entries(path: Path, valid: Callable[[Any], bool], what: str) -> list[dict[str, Any]]:
    """The file's entries, each passing `valid`; [] when it does not exist, and [] with a warning when it is
    damaged (the next write replaces it). `what` names the file in the warning."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"replacing damaged {what} {path}: {exc}", stacklevel=3)
        return []
    entries = doc.get("entries") if isinstance(doc, dict) and doc.get("schema_version") == SCHEMA_VERSION else None
    if not isinstance(entries, list) or not all(valid(e) for e in entries):
        warnings.warn(f"replacing {what} {path}: not a schema {SCHEMA_VERSION} history file", stacklevel=3)
        return []
    return entries


def _valid(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("key"), dict)
            and isinstance(entry.get("best_ms"), (int, float)) and not isinstance(entry.get("best_ms"), bool)
            and math.isfinite(entry["best_ms"]) and entry["best_ms"] > 0
            and isinstance(entry.get("runs_seen"), int) and entry["runs_seen"] >= 0)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
