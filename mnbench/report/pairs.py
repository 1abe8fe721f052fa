"""Pair each `standard` record with its `separable` twin and derive theoretical and realized speedups.

Records from many result files (and machines) are grouped by machine, device and settings (runtime, precision,
threads, batch); within a group, the two variants of one arch/width/resolution form a row. A pair run more than once
on the same machine/device/settings is pooled: every run's repetitions count, and the spread between runs enters the
interval (`repetitions.pooled`); a note names the runs. The realized speedup is min standard / min separable, each
the geometric mean of the repetitions' fastest calls, so the speedup equals the ratio of the latencies beside it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import math

from mnbench import results
from mnbench.stats import repetitions
from mnbench.measure import stability
from mnbench.config import ARCHS
from mnbench.errors import MnbenchError
from mnbench.paths import runs_dir
from mnbench.report.roofline_pairs import NO_ROOFLINE, roofline_fields, with_predicted_shares
from mnbench.report import ablations, precision_pairs
from mnbench.report.curves import curve_rows
from mnbench.report.memory_rows import memory_rows
from mnbench.artifacts.user_pairs import SLOTS, user_pair

# Every row carries these keys, in this order (json keeps them, csv and markdown show them as columns).
ROW_FIELDS = (
    "machine", "device", "runtime", "threads", "arch", "width", "resolution", "batch", "streams", "precision",
    "macs_standard", "macs_separable", "theoretical_speedup", "roofline_speedup", "roofline_error",
    "min_ms_standard", "min_ms_separable", "realized_speedup", "realized_speedup_ci", "share_kept", "bound",
    "repetitions", "runs", "realized_speedup_mean_ci", "realized_speedup_halfwidth",
    "gmacs_per_s_standard", "gmacs_per_s_separable",
    "peak_gmacs_per_s", "peak_share_standard", "peak_share_separable",
    "n_standard", "n_separable", "source_standard", "source_separable", "roofline",
)
UNPAIRED_FIELDS = (
    "machine", "device", "runtime", "threads", "arch", "variant", "width", "resolution", "batch", "streams",
    "precision", "macs", "min_ms", "gmacs_per_s", "peak_share", "missing", "source",
)


@dataclass(frozen=True, kw_only=True)
class SourcedRecord:
    """One benchmark record with where it came from: the machine label, the file and the file's creation time."""

    machine: str
    source: str
    created_utc: str
    record: Mapping[str, Any]

    @property
    def group_key(self) -> tuple:
        r = self.record
        # A run whose precision was not what it asked for (int8 that ran mostly float) never joins the real one.
        precision = r["precision"] if r.get("requested_precision") in (None, r["precision"]) else \
            f"{r['precision']} (asked {r['requested_precision']})"
        # A CUDA graph or channels_last run (torch devices) is another way of running, never merged with eager:
        # it shows as runtime `torch+cuda-graph`.
        settings = r.get("settings") or {}
        runtime = "+".join([r["runtime"]] + [k.replace("_", "-") for k in ("cuda_graph", "channels_last")
                                             if settings.get(k)])
        return (self.machine, r["device"], runtime, precision, r["threads"], r["batch"], r.get("streams", 1))

    @property
    def model_key(self) -> tuple:
        r = self.record
        pair = user_pair(r)
        return (pair["name"], 1.0, 0) if pair else (r["arch"], float(r["width"]), r["resolution"])

    @property
    def variant(self) -> str:
        pair = user_pair(self.record)  # a user's pair: baseline in the standard slot, candidate in separable
        return SLOTS.get(pair["role"], "model") if pair else self.record["variant"]


    @property
    def recency(self) -> tuple[str, str]:
        return (self.created_utc, self.source)


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything a renderer needs; a pure function of the loaded result files."""

    rows: list[dict[str, Any]]
    unpaired: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    machines: dict[str, dict[str, Any]]
    peaks: dict[str, dict[str, dict[str, Any]]]  # machine label -> device -> {"gmacs_per_s", "method"}
    notes: list[str] = field(default_factory=list)
    load_warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # figures the machine's state or the repetitions undermine
    ablations: list[dict[str, Any]] = field(default_factory=list)  # `mnbench ablate` rows (report/ablations.py)
    # Each model's newest record, for the CI tracker formats (one run, one data point), int8 and provider tables.
    records: list[SourcedRecord] = field(default_factory=list)
    int8: list[dict[str, Any]] = field(default_factory=list)  # int8 beside fp32 (report/precision_pairs.py)

    @property
    def is_empty(self) -> bool:
        return not (self.rows or self.unpaired or self.profiles or self.ablations or self.int8)

    def check_not_empty(self) -> None:
        if self.is_empty:
            read = f"{len(self.sources)} valid result file(s) read"
            skipped = f", {len(self.load_warnings)} damaged file(s) skipped" if self.load_warnings else ""
            raise MnbenchError(f"no benchmark records to report ({read}{skipped}); "
                               "run a benchmark first or pass the result files/folders to report on")

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "unpaired": self.unpaired, "profiles": self.profiles, "machines": self.machines,
                "peaks": self.peaks, "notes": self.notes, "skipped": self.load_warnings, "sources": self.sources,
                "warnings": self.warnings, "ablations": self.ablations, "int8": self.int8,
                "curves": self.curves, "memory": memory_rows(self.records)}

    @property
    def curves(self) -> list[dict[str, Any]]:
        """Pairs measured at several (threads, batch) points, as curves (`report/curves.py`)."""
        return curve_rows(self.rows)


def default_result_paths(reports_dir: str | os.PathLike | None = None) -> list[Path]:
    """`<reports>/runs`, where benchmark runs write their result files; a clear error before the first run."""
    runs = runs_dir(reports_dir)
    if not runs.is_dir():
        raise MnbenchError(f"no results yet: {runs} does not exist; run a benchmark first, "
                           "or pass result files/folders to report on")
    return [runs]


def load_report(paths: Iterable[str | os.PathLike]) -> Report:
    """Read every result file under `paths` and build the report; damaged files become `load_warnings`.

    A path that does not exist is a MnbenchError (from `results.result_files`).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = results.load_results(list(paths))
    return replace(build_report(loaded), load_warnings=[str(w.message) for w in caught])


def build_report(loaded: Iterable[tuple[Path, Mapping[str, Any]]]) -> Report:
    """The report for already loaded and validated result documents (`results.load_results` output)."""
    docs = sorted(((str(path), doc) for path, doc in loaded), key=lambda item: (_created(item[1]), item[0]))
    labels = machine_labels(doc["machine"] for _, doc in docs)
    machines: dict[str, dict[str, Any]] = {}
    peaks: dict[str, dict[str, dict[str, Any]]] = {}
    peaks_by_threads: dict[tuple[str, str], dict[Any, dict[str, Any]]] = {}  # (machine, device) -> threads -> peak
    sourced: list[SourcedRecord] = []
    profiles: dict[tuple, dict[str, Any]] = {}
    run_warnings: list[str] = []
    for source, doc in docs:  # oldest first, so the newest file's machine info, peaks and profiles win
        machine = labels[machine_identity(doc["machine"])]
        run_warnings += [f"{source}: {line}" for line in stability.machine_warnings(doc)]
        if results.schema_note(doc, source):
            run_warnings.append(results.schema_note(doc, source))
        machines[machine] = dict(doc["machine"])
        for device, peak in _mapping(doc.get("peaks")).items():
            if isinstance(peak, Mapping) and isinstance(peak.get("gmacs_per_s"), (int, float)):
                peaks.setdefault(machine, {})[device] = dict(peak)
                peaks_by_threads.setdefault((machine, device), {})[peak.get("threads")] = dict(peak)
        for device, by_threads in _mapping(doc.get("peaks_by_threads")).items():  # a run that swept threads
            for peak in _mapping(by_threads).values():
                if isinstance(peak, Mapping) and isinstance(peak.get("gmacs_per_s"), (int, float)):
                    peaks_by_threads.setdefault((machine, device), {})[peak.get("threads")] = dict(peak)
        # An ablate file's records are its own rows (below), never a speedup pair's side.
        for record in [] if ablations.is_ablation_result(doc) else doc["records"]:
            sourced.append(SourcedRecord(machine=machine, source=source, created_utc=_created(doc), record=record))
        for profile in doc.get("profiles") if isinstance(doc.get("profiles"), list) else []:
            if isinstance(profile, Mapping):
                profiles[_profile_key(machine, profile)] = {**profile, "machine": machine, "source": source}

    notes: list[str] = []
    runs = _runs_per_model(sourced, notes)
    rows, unpaired = [], []
    newest = [items[-1] for by_variant in runs.values() for items in by_variant.values()]
    for (group, model), by_variant in sorted(runs.items(), key=lambda item: _sort_key(*item[0])):
        # The peak measured at the pair's thread count where there is one (the roofline's figures scale with it).
        peak = peaks_by_threads.get(group[:2], {}).get(group[4]) or peaks.get(group[0], {}).get(group[1])
        separable, standard = by_variant.get("separable"), by_variant.get("standard")
        if separable and standard:
            row = pair_row(standard, separable, peak)
            # The roofline models one request using every thread; streams sharing them are not modelled.
            row |= roofline_fields(standard[-1].record, separable[-1].record, peak, machines.get(group[0], {}),
                                   row["realized_speedup"], notes) if row["streams"] == 1 else dict(NO_ROOFLINE)
            row["bound"] = (row.get("roofline") or {}).get("separable", {}).get("bound")
            rows.append({key: row.get(key) for key in ROW_FIELDS})
            if user_pair(standard[-1].record):
                notes.append(f"{_describe(group, model)}: the user's pair; standard columns are the baseline "
                             f"{standard[-1].record['arch']}, separable the candidate {separable[-1].record['arch']}")
            if row["runs"] > 1:
                notes.append(f"{_describe(group, model)}: {row['runs']} runs pooled "
                             f"({row['repetitions']} repetitions): {', '.join(sorted({i.source for i in standard}))}")
            if {i.source for i in separable} != {i.source for i in standard}:
                notes.append(f"{_describe(group, model)}: separable and standard come from different runs "
                             f"({', '.join(sorted({i.source for i in separable}))}; "
                             f"{', '.join(sorted({i.source for i in standard}))}): compared as independent")
        else:
            for present in by_variant.values():
                unpaired.append(unpaired_row(present, peak))
    run_warnings += precision_pairs.int8_warnings(newest)
    return Report(rows=rows, unpaired=unpaired, int8=precision_pairs.int8_rows(
                      newest, min_ms=min_ms, realized_speedup=lambda s, p: realized_speedup([s], [p])),
                  profiles=with_predicted_shares(sorted(profiles.values(), key=lambda p: _profile_sort_key(p)), rows),
                  machines=dict(sorted(machines.items())), peaks=dict(sorted(peaks.items())), notes=notes,
                  records=newest,
                  ablations=ablations.report_rows((labels[machine_identity(d['machine'])], s, d) for s, d in docs),
                  sources=[source for source, _ in docs],
                  warnings=run_warnings + stability.pair_warnings(rows))


def machine_identity(machine: Mapping[str, Any]) -> tuple[str, str]:
    """A machine is its hostname and CPU model; other keys (versions, flags) may differ between runs."""
    return (str(machine.get("hostname") or "unknown-host"), str(machine.get("cpu_model") or "unknown CPU"))


def machine_labels(machines: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """Short labels: the hostname, plus the CPU model only where two different machines share a hostname."""
    identities = sorted({machine_identity(m) for m in machines})
    hostnames = [host for host, _ in identities]
    return {(host, cpu): host if hostnames.count(host) == 1 else f"{host} ({cpu})" for host, cpu in identities}


def pair_row(standard: list[SourcedRecord], separable: list[SourcedRecord],
             peak: Mapping[str, Any] | None) -> dict[str, Any]:
    """A pair's row from its runs (oldest first; every run's records pooled)."""
    std, sep = standard[-1].record, separable[-1].record
    theoretical = std["macs"] / sep["macs"] if sep["macs"] else None
    speedup = realized_speedup(standard, separable)
    min_std, min_sep = speedup.pop("min_ms_standard"), speedup.pop("min_ms_separable")
    realized = speedup.get("realized_speedup")
    gmacs_std, gmacs_sep = achieved_gmacs_per_s(std, min_std), achieved_gmacs_per_s(sep, min_sep)
    peak_gmacs = float(peak["gmacs_per_s"]) if peak else None
    return {
        "machine": standard[-1].machine,
        **{key: std[key] for key in ("device", "runtime", "threads", "arch")},
        "width": float(std["width"]),
        **{key: std[key] for key in ("resolution", "batch", "precision")},
        "streams": std.get("streams", 1),
        **({"arch": user_pair(std)["name"]} if user_pair(std) else {}),  # a user's pair: "<baseline>-vs-<candidate>"
        "macs_standard": std["macs"],
        "macs_separable": sep["macs"],
        "theoretical_speedup": theoretical,
        "min_ms_standard": min_std,
        "min_ms_separable": min_sep,
        **speedup,
        # How much of the MAC saving turned into time saved: 1.0 means latency fell as much as the MACs did.
        "share_kept": realized / theoretical if realized is not None and theoretical else None,
        "gmacs_per_s_standard": gmacs_std,
        "gmacs_per_s_separable": gmacs_sep,
        "peak_gmacs_per_s": peak_gmacs,
        "peak_share_standard": _share(gmacs_std, peak_gmacs),
        "peak_share_separable": _share(gmacs_sep, peak_gmacs),
        "n_standard": sum(item.record["n"] for item in standard),
        "n_separable": sum(item.record["n"] for item in separable),
        "source_standard": standard[-1].source,
        "source_separable": separable[-1].source,
    }


def min_ms(record: Mapping[str, Any]) -> float:
    """The record's latency (ms): the geometric mean of its repetitions' fastest calls (`repetitions.latency`)."""
    return repetitions.latency([record]).point


def realized_speedup(standard: list[SourcedRecord], separable: list[SourcedRecord]) -> dict[str, Any]:
    """min(standard) / min(separable) over the pair's runs, with its 95 % interval, and the two latencies it divides.

    Runs that measured both together pool per repetition (`repetitions.speedup`: each repetition's ratio of fastest
    calls, the runs' spread as a variance of its own); the latencies pool with the same weights, so their ratio is
    the speedup. Records that never ran together are combined as independent estimates. A lone schema v1 pair is
    one repetition: a speedup without an interval (`build_report` notes the file's schema).
    """
    together = [(s.record, p.record) for s in standard for p in separable if s.source == p.source]
    if together and all(len(repetitions.repetition_values(s)) == len(repetitions.repetition_values(p))
                        for s, p in together):
        estimate = repetitions.speedup(together)
        min_std = repetitions.latency([s for s, _ in together]).point
        min_sep = repetitions.latency([p for _, p in together]).point
    else:
        std_estimate = repetitions.latency([s.record for s in standard])
        sep_estimate = repetitions.latency([p.record for p in separable])
        estimate = repetitions.quotient(std_estimate, sep_estimate)
        min_std, min_sep = std_estimate.point, sep_estimate.point
    return {"min_ms_standard": min_std, "min_ms_separable": min_sep, "realized_speedup": estimate.point,
           "realized_speedup_ci": _finite(estimate.interval), "realized_speedup_mean_ci": _finite(estimate.mean_ci),
           "realized_speedup_halfwidth": estimate.rel_halfwidth if math.isfinite(estimate.rel_halfwidth) else None,
           "repetitions": estimate.repetitions, "runs": estimate.runs}


def _finite(pair: tuple[float, float]) -> list[float] | None:
    return list(pair) if all(0 < x < float("inf") for x in pair) else None


def _runs_per_model(sourced: list[SourcedRecord], notes: list[str]) -> dict[tuple, dict[str, list[SourcedRecord]]]:
    """(group, model) -> variant -> its records, oldest run first; where a pair's variants both ran in some runs,
    only those runs (a note names the runs left out)."""
    runs: dict[tuple, dict[str, list[SourcedRecord]]] = {}
    for item in sorted(sourced, key=lambda item: item.recency):
        runs.setdefault((item.group_key, item.model_key), {}).setdefault(item.variant, []).append(item)
    for key, by_variant in runs.items():
        if "standard" in by_variant and "separable" in by_variant:
            both = {i.source for i in by_variant["standard"]} & {i.source for i in by_variant["separable"]}
            if both:
                left_out = sorted({i.source for items in by_variant.values() for i in items} - both)
                if left_out:
                    notes.append(f"{_describe(*key)}: runs without the pair's other variant not used: "
                                 f"{', '.join(left_out)}")
                for variant in ("standard", "separable"):
                    by_variant[variant] = [i for i in by_variant[variant] if i.source in both]
    return runs


def unpaired_row(items: list[SourcedRecord], peak: Mapping[str, Any] | None) -> dict[str, Any]:
    """A model without its twin: its latency pooled over its runs."""
    r = items[-1].record
    latency = repetitions.latency([item.record for item in items]).point
    gmacs = achieved_gmacs_per_s(r, latency)
    return {
        "machine": items[-1].machine,
        **{key: r[key] for key in ("device", "runtime", "threads", "arch", "variant")},
        "width": float(r["width"]),
        **{key: r[key] for key in ("resolution", "batch")},
        "streams": r.get("streams", 1),
        **{key: r[key] for key in ("precision", "macs")},
        "min_ms": latency,
        "gmacs_per_s": gmacs,
        "peak_share": _share(gmacs, float(peak["gmacs_per_s"]) if peak else None),
        "missing": "standard" if r["variant"] == "separable" else "separable",
        "source": items[-1].source,
    }


def achieved_gmacs_per_s(record: Mapping[str, Any], latency: float | None = None) -> float | None:
    """MACs per image times the images of a call (batch x streams) over the latency (the record's own unless
    given); `macs` counts one image."""
    latency = min_ms(record) if latency is None else latency
    images = record["batch"] * record.get("streams", 1)
    return record["macs"] * images / (latency * 1e-3) / 1e9 if latency > 0 else None


def _describe(group: tuple, model: tuple) -> str:
    machine, device, runtime, precision, threads, batch, streams = group
    arch, width, resolution = model
    streams_text = f", {streams} streams" if streams != 1 else ""
    return (f"{machine} · {device} ({runtime}, {precision}, {threads} threads, batch {batch}{streams_text}) · "
            f"{arch} w{width:g} r{resolution}")


def _sort_key(group: tuple, model: tuple) -> tuple:
    arch, width, resolution = model
    arch_order = ARCHS.index(arch) if arch in ARCHS else len(ARCHS)
    return (group, arch_order, arch, width, resolution)


def _profile_key(machine: str, profile: Mapping[str, Any]) -> tuple:
    fields = ("arch", "variant", "width", "resolution", "batch", "device", "runtime", "precision", "threads")
    return (machine, *(str(profile.get(name)) for name in fields))


def _profile_sort_key(profile: Mapping[str, Any]) -> tuple:
    return _profile_key(profile["machine"], profile)


def _mapping(value: Any) -> Mapping[str, Any]:
    """Optional sections written by other commands: anything but an object counts as absent."""
    return value if isinstance(value, Mapping) else {}


def _created(doc: Mapping[str, Any]) -> str:
    created = doc.get("created_utc")
    return created if isinstance(created, str) else ""


def _share(value: float | None, peak: float | None) -> float | None:
    return value / peak if value is not None and peak else None
