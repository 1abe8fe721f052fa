"""The result file: one JSON document per run, versioned by its own `schema_version`, and the typed record in it.

Layout (schema_version 2; version 1 files still read, as one repetition each):
{
  "schema_version": 2,
  "created_utc": "2026-11-28T00:00:00Z",
  "machine": {...},            # mnbench.host.machine.machine_info(): CPU, flags, cores, memory, OS, versions, GPU, commit
  "machine_state": {...},      # optional: how stable the machine was during the run (steal, load, reference drift)
  "settings": {...},           # optional: how the run measured (repetitions, times per repetition)
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mnbench import atomic
from mnbench.stats import repetitions
from mnbench.errors import MnbenchError
from mnbench.paths import BOOKKEEPING_DIRS
from mnbench.stats.samples import summarize, throughput_ips

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
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
#   "repetition_rounds": [int]  (v2) rounds per repetition, in order (sum == len(round_sizes)); each repetition
#                          is a complete measurement with fresh sessions. Absent: one repetition (v1).
#   "latency_estimate": {...}  (v2, derived) the latency every report shows: the geometric mean of the repetitions'
#                          fastest calls (`point`), its 95 % `interval` and `mean_ci` (mnbench.stats.repetitions)
#   "repetition_p50_ms": [float]  (v2, derived) each repetition's median
#   "between_round_cv": float  (v2, derived) how much the round medians moved within a repetition
#   "providers": [str]     ONNX Runtime providers actually in use
#   "runtime_version": str, "settings": {...}  effective runtime settings read back (threads, hints, streams)
#   "requested_precision": str   what was asked, when it differs from `precision` (what ran)
#   "model_path": str, "model": {"slug": ...}
#   "reference": {"name", "runtime", "precision", "threads", "samples_ms", "round_sizes"}  the machine-speed
#                          reference (mnbench.measure.reference) measured in the same interleaved rounds as this record
#                          (`mnbench check` divides it out where the model's control is not at hand)
#   "controls": {sha256: {"settings", "samples_ms", "round_sizes"}}  model files run again with frozen settings in
#                          the same rounds (mnbench.measure.control): the record's own file, and in a re-measurement the
#                          baseline's (`mnbench check` divides by the baseline file's control). Older files: "twins".
SERIES_KEYS = ("samples_ms", "round_sizes")
DERIVED_KEYS = ("latency_ms", "n", "throughput_ips", "latency_estimate", "p50_estimate", "repetition_p50_ms",
                "between_round_cv")
LEGACY_CONTROLS_KEY = "twins"


@dataclass(frozen=True)
class SampleSeries:
    """Per-call latencies in the order measured and how many came from each interleaved round."""

    samples_ms: tuple[float, ...]
    round_sizes: tuple[int, ...]

    @classmethod
    def of(cls, samples_ms: Iterable[float], round_sizes: Iterable[int] | None = None) -> "SampleSeries":
        samples = tuple(float(s) for s in samples_ms)
        sizes = tuple(int(n) for n in round_sizes) if round_sizes is not None else (len(samples),)
        return cls(samples, sizes if sum(sizes) == len(samples) else (len(samples),))

    @classmethod
    def concat(cls, parts: Sequence["SampleSeries"]) -> "SampleSeries":
        return cls(tuple(s for p in parts for s in p.samples_ms), tuple(n for p in parts for n in p.round_sizes))

    def to_json(self) -> dict[str, list]:
        return {"samples_ms": list(self.samples_ms), "round_sizes": list(self.round_sizes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SampleSeries":
        return cls.of(data.get("samples_ms") or [], data.get("round_sizes"))


@dataclass(frozen=True)
class Companion:
    """A workload measured in a record's rounds beside it: the machine-speed reference, or a control."""

    series: SampleSeries
    info: Mapping[str, Any] = field(default_factory=dict)  # how it ran: name/runtime/precision/threads, settings

    def to_json(self) -> dict[str, Any]:
        return dict(self.info) | self.series.to_json()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Companion":
        return cls(SampleSeries.from_json(data), {k: v for k, v in data.items() if k not in SERIES_KEYS})


@dataclass(frozen=True, kw_only=True)
class Record:
    """One model's result on one device: what ran (`fields`), its samples, and what was measured beside it."""

    fields: Mapping[str, Any]  # arch, variant, ..., device, runtime, precision, threads, macs, model_sha256, ...
    series: SampleSeries
    repetition_rounds: tuple[int, ...] = ()  # () = one repetition (schema v1)
    reference: Companion | None = None
    controls: Mapping[str, Companion] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as written: every derived figure computed here, from the samples."""
        samples, sizes, reps = self.series.samples_ms, self.series.round_sizes, self.repetition_rounds
        out = dict(self.fields)
        out |= {"latency_ms": summarize(samples), "n": len(samples), **self.series.to_json(),
                # images per call: the batch on each stream (OpenVINO's throughput mode runs several at once)
                "throughput_ips": throughput_ips(samples, int(self.fields["batch"]) * int(self.fields.get("streams", 1)))}
        if reps:
            out["repetition_rounds"] = list(reps)
            out["repetition_p50_ms"] = [float(np.median(s)) for s in
                                        repetitions.repetition_samples(samples, sizes, reps)]
        out["latency_estimate"] = repetitions.estimate(repetitions.repetition_values(
            {"samples_ms": samples, "round_sizes": sizes, "repetition_rounds": reps})).as_json()
        out["between_round_cv"] = repetitions.between_round_cv(samples, sizes, reps)
        if self.reference is not None:
            out["reference"] = self.reference.to_json()
        if self.controls:
            out["controls"] = {sha: c.to_json() for sha, c in self.controls.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Record":
        skip = set(SERIES_KEYS) | set(DERIVED_KEYS) | {"repetition_rounds", "reference", "controls",
                                                       LEGACY_CONTROLS_KEY}
        controls = data.get("controls") or data.get(LEGACY_CONTROLS_KEY) or {}
        return cls(fields={k: v for k, v in data.items() if k not in skip},
                   series=SampleSeries.from_json(data),
                   repetition_rounds=tuple(data.get("repetition_rounds") or ()),
                   reference=Companion.from_json(data["reference"]) if data.get("reference") else None,
                   controls={sha: Companion.from_json(c) for sha, c in controls.items()})

    def extended_by(self, later: "Record") -> "Record":
        """This record with the repetitions of `later` (the same model measured again) appended: one measurement
        of more repetitions. Only what both measured beside the model (reference, controls) is kept."""
        def reps(record: "Record") -> tuple[int, ...]:
            return record.repetition_rounds or (len(record.series.round_sizes),)  # schema v1: one repetition

        def both(a: Companion | None, b: Companion | None) -> Companion | None:
            return None if a is None or b is None else Companion(SampleSeries.concat([a.series, b.series]), a.info)

        controls = {sha: both(c, later.controls[sha]) for sha, c in self.controls.items() if sha in later.controls}
        return Record(fields=self.fields, series=SampleSeries.concat([self.series, later.series]),
                      repetition_rounds=reps(self) + reps(later), reference=both(self.reference, later.reference),
                      controls=controls)

    def repetitions(self) -> list[SampleSeries]:
        """The series of each repetition (one for a schema v1 record)."""
        if not self.repetition_rounds:
            return [self.series]
        rounds = repetitions.split(list(self.series.round_sizes), self.repetition_rounds)
        samples = repetitions.split(self.series.samples_ms, [int(sum(r)) for r in rounds])
        return [SampleSeries(tuple(float(x) for x in s), tuple(int(n) for n in r)) for s, r in zip(samples, rounds)]


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
    reps, sizes = record.get("repetition_rounds"), record.get("round_sizes")
    if reps is not None and (not isinstance(sizes, list) or sum(reps) != len(sizes)):
        raise DamagedResultError(f"{where}: repetition_rounds do not add up to the record's rounds")


def validate_result(doc: Any, where: str = "result") -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DamagedResultError(f"{where}: not a JSON object")
    version = doc.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS:
        raise DamagedResultError(f"{where}: schema_version {version!r} is not one of {READABLE_SCHEMA_VERSIONS}")
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
    """Expand files and folders (recursively, *.json, leaving out mnbench's bookkeeping folders) into a sorted file
    list; a missing path is a MnbenchError."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.json") if not q.name.startswith(".")
                                and not set(q.relative_to(p).parts[:-1]) & set(BOOKKEEPING_DIRS)))
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


LATENCY_SCALE_KEY = "latency_scale"  # set by with_latencies_scaled only


def with_latencies_scaled(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of `doc` in which every record's own latencies (and so every figure derived from them) are × `factor`.

    The machine-speed reference and the controls are left as they were: this is how a known regression is injected
    into a baseline (a baseline made 1/1.2 × as slow makes today's unchanged model look 20 % slower). The factor is
    recorded (`latency_scale`): a model and its own control, one workload when measured, now differ by exactly it.
    """
    out = copy.deepcopy(doc)
    for i, data in enumerate(out["records"]):
        record = Record.from_json(data)
        scaled = SampleSeries(tuple(x * factor for x in record.series.samples_ms), record.series.round_sizes)
        fields = {**record.fields, LATENCY_SCALE_KEY: float(record.fields.get(LATENCY_SCALE_KEY, 1.0)) * factor}
        out["records"][i] = Record(fields=fields, series=scaled, repetition_rounds=record.repetition_rounds,
                                   reference=record.reference, controls=record.controls).to_json()
    return out


def schema_note(doc: Mapping[str, Any], where: str) -> str | None:
    """What a reader should know about an older file's figures, or None for a current one."""
    if doc.get("schema_version") == 1:
        return (f"{where} is a schema v1 result (one repetition): its figures have no interval alone; re-run it, or "
                "report it with other runs of the same pairs")
    return None
