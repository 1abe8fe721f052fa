"""Pair each `standard` record with its `separable` twin and derive theoretical and realized speedups.

Records from many result files (and machines) are grouped by machine, device and settings (runtime, precision,
threads, batch); within a group, the two variants of one arch/width/resolution form a row. When a model was run
more than once on the same machine/device/settings, the newest file's record wins and a note says so: runs from
different days are never averaged silently.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from mnbench import repetitions, results, stability
from mnbench.config import ARCHS
from mnbench.errors import MnbenchError
from mnbench.paths import runs_dir
from mnbench.report.roofline_pairs import roofline_fields, with_predicted_shares
from mnbench.report import ablations, precision_pairs, run_history, shared_noise
from mnbench.stats import ratio_of_medians_ci
from mnbench.user_pairs import SLOTS, user_pair

CONFIDENCE = 0.95
# Every row carries these keys, in this order (json keeps them, csv and markdown show them as columns).
ROW_FIELDS = (
    "machine", "device", "runtime", "threads", "arch", "width", "resolution", "batch", "precision",
    "macs_standard", "macs_separable", "theoretical_speedup", "roofline_speedup", "roofline_error",
    "p50_ms_standard", "p50_ms_separable", "realized_speedup", "realized_speedup_ci", "efficiency",
    "repetitions", "realized_speedup_mean_ci", "realized_speedup_rerun_halfwidth", "repetitions_disagree",
    "between_repetition_sd", "within_repetition_sd", "prior_df", "runs", "realized_speedup_runs", "runs_spread",
    "speed_sensitivity", "speed_sensitivity_ci", "realized_speedup_at_best_speed",
    "realized_speedup_at_best_speed_ci", "best_reference_ms",
    "gmacs_per_s_standard", "gmacs_per_s_separable",
    "peak_gmacs_per_s", "peak_share_standard", "peak_share_separable",
    "n_standard", "n_separable", "source_standard", "source_separable", "roofline",
)
UNPAIRED_FIELDS = (
    "machine", "device", "runtime", "threads", "arch", "variant", "width", "resolution", "batch", "precision",
    "macs", "p50_ms", "gmacs_per_s", "peak_share", "missing", "source",
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
        return (self.machine, r["device"], runtime, precision, r["threads"], r["batch"])

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
    records: list[SourcedRecord] = field(default_factory=list)  # the records used (newest per model), for CI formats
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
                "warnings": self.warnings, "ablations": self.ablations, "int8": self.int8}


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
        # An ablate file's records are its own rows (below), never a speedup pair's side.
        for record in [] if ablations.is_ablation_result(doc) else doc["records"]:
            sourced.append(SourcedRecord(machine=machine, source=source, created_utc=_created(doc), record=record))
        for profile in doc.get("profiles") if isinstance(doc.get("profiles"), list) else []:
            if isinstance(profile, Mapping):
                profiles[_profile_key(machine, profile)] = {**profile, "machine": machine, "source": source}

    notes: list[str] = []
    per_run = _pairs_per_run(sourced)
    chosen = _newest_per_model(sourced, notes)
    priors = shared_noise.run_priors(chosen, realized_speedup)
    rows, unpaired = [], []
    for (group, model), by_variant in sorted(chosen.items(), key=lambda item: _sort_key(*item[0])):
        peak = peaks.get(group[0], {}).get(group[1])
        separable, standard = by_variant.get("separable"), by_variant.get("standard")
        if separable and standard:
            runs_of_pair = per_run.get((group, model), [])
            speedups = [realized_speedup(v["standard"], v["separable"]).get("realized_speedup") for _, v in runs_of_pair]
            row = pair_row(standard, separable, peak, priors.get((group, model))) | run_history.spread_fields(speedups)
            row |= run_history.speed_fields([(src, v["standard"].record, v["separable"].record)
                                             for src, v in runs_of_pair])
            row |= roofline_fields(standard.record, separable.record, peak, machines.get(group[0], {}),
                                   row["realized_speedup"], notes)
            rows.append({key: row.get(key) for key in ROW_FIELDS})
            if user_pair(standard.record):
                notes.append(f"{_describe(group, model)}: the user's pair; standard columns are the baseline "
                             f"{standard.record['arch']}, separable the candidate {separable.record['arch']}")
            if row["runs"] > 1:
                notes.append(f"{_describe(group, model)}: realized speedup over the {row['runs']} runs of this "
                             f"host: {', '.join(f'{x:.2f}' for x in row['realized_speedup_runs'])} "
                             f"(spread {row['runs_spread']:.0%})")
            if row["speed_sensitivity"] is not None:
                notes.append(run_history.speed_note(_describe(group, model), row))
            if separable.source != standard.source:
                notes.append(f"{_describe(group, model)}: separable and standard come from different runs "
                             f"({separable.source}, {standard.source})")
        else:
            for present in by_variant.values():
                unpaired.append(unpaired_row(present, peak))
    used = [item for by_variant in chosen.values() for item in by_variant.values()]
    run_warnings += precision_pairs.int8_warnings(used)
    return Report(rows=rows, unpaired=unpaired, int8=precision_pairs.int8_rows(used, p50_ms=p50_ms,
                                                                             realized_speedup=realized_speedup),
                  profiles=with_predicted_shares(sorted(profiles.values(), key=lambda p: _profile_sort_key(p)), rows),
                  machines=dict(sorted(machines.items())), peaks=dict(sorted(peaks.items())), notes=notes,
                  records=[item for by_variant in chosen.values() for item in by_variant.values()],
                  ablations=ablations.report_rows((labels[machine_identity(d['machine'])], s, d) for s, d in docs),
                  sources=[source for source, _ in docs],
                  warnings=stability.with_advice(run_warnings + stability.pair_warnings(rows), rows))


def machine_identity(machine: Mapping[str, Any]) -> tuple[str, str]:
    """A machine is its hostname and CPU model; other keys (versions, flags) may differ between runs."""
    return (str(machine.get("hostname") or "unknown-host"), str(machine.get("cpu_model") or "unknown CPU"))


def machine_labels(machines: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """Short labels: the hostname, plus the CPU model only where two different machines share a hostname."""
    identities = sorted({machine_identity(m) for m in machines})
    hostnames = [host for host, _ in identities]
    return {(host, cpu): host if hostnames.count(host) == 1 else f"{host} ({cpu})" for host, cpu in identities}


def pair_row(standard: SourcedRecord, separable: SourcedRecord, peak: Mapping[str, Any] | None,
             prior: shared_noise.Prior | None = None) -> dict[str, Any]:
    std, sep = standard.record, separable.record
    theoretical = std["macs"] / sep["macs"] if sep["macs"] else None
    speedup = realized_speedup(standard, separable, prior)
    p50_std, p50_sep = p50_ms(std), p50_ms(sep)
    realized = speedup.get("realized_speedup")
    gmacs_std, gmacs_sep = achieved_gmacs_per_s(std), achieved_gmacs_per_s(sep)
    peak_gmacs = float(peak["gmacs_per_s"]) if peak else None
    row = {
        "machine": standard.machine,
        **{key: std[key] for key in ("device", "runtime", "threads", "arch")},
        "width": float(std["width"]),
        **{key: std[key] for key in ("resolution", "batch", "precision")},
        **({"arch": user_pair(std)["name"]} if user_pair(std) else {}),  # a user's pair: "<baseline>-vs-<candidate>"
        "macs_standard": std["macs"],
        "macs_separable": sep["macs"],
        "theoretical_speedup": theoretical,
        "p50_ms_standard": p50_std,
        "p50_ms_separable": p50_sep,
        **speedup,
        # How much of the MAC saving turned into time saved: 1.0 means latency fell as much as the MACs did.
        "efficiency": realized / theoretical if realized is not None and theoretical else None,
        "gmacs_per_s_standard": gmacs_std,
        "gmacs_per_s_separable": gmacs_sep,
        "peak_gmacs_per_s": peak_gmacs,
        "peak_share_standard": _share(gmacs_std, peak_gmacs),
        "peak_share_separable": _share(gmacs_sep, peak_gmacs),
        "n_standard": std["n"],
        "n_separable": sep["n"],
        "source_standard": standard.source,
        "source_separable": separable.source,
    }
    return row


def p50_ms(record: Mapping[str, Any]) -> float:
    """The record's p50: from its repetitions' medians (schema v2), else the median of its samples."""
    estimate = record.get("p50_estimate")
    point = estimate.get("point") if isinstance(estimate, Mapping) else None
    return float(point) if isinstance(point, (int, float)) else float(record["latency_ms"]["p50"])


def realized_speedup(standard: SourcedRecord, separable: SourcedRecord,
                     prior: shared_noise.Prior | None = None) -> dict[str, Any]:
    """p50(standard) / p50(separable) with its intervals.

    Measured together (one run, the same repetitions): paired by repetition, so each repetition's machine state
    cancels in its ratio (`repetitions.ratio_estimate`), and its variance moderated by `prior`, the other pairs
    of its run (`shared_noise`). From different runs, the two latencies' estimates are
    combined as independent. A schema v1 pair (one repetition) keeps the sample bootstrap it was written with,
    and `build_report` warns that it promises more than a re-run keeps.
    """
    std, sep = standard.record, separable.record
    std_reps, sep_reps = repetitions.record_rounds(std), repetitions.record_rounds(sep)
    if not std["samples_ms"] or not sep["samples_ms"]:
        return {"realized_speedup": None, "realized_speedup_ci": None}
    if standard.source == separable.source and len(std_reps) == len(sep_reps):
        estimate = repetitions.ratio_estimate(std_reps, sep_reps)
        if prior is not None:
            estimate = repetitions.moderated(estimate, *prior)
    else:
        def latency(reps: list[list]) -> repetitions.RepeatedEstimate:
            return repetitions.estimate([repetitions.log_median_and_se(np.concatenate(r))[0] for r in reps])

        estimate = repetitions.quotient(latency(std_reps), latency(sep_reps))
    out = {"realized_speedup": estimate.point, "repetitions": estimate.repetitions,
           "realized_speedup_ci": _finite(estimate.rerun), "realized_speedup_mean_ci": _finite(estimate.ci),
           "realized_speedup_rerun_halfwidth": estimate.rerun_rel_halfwidth,
           "repetitions_disagree": estimate.repetitions_disagree,
           "between_repetition_sd": estimate.between_sd, "within_repetition_sd": estimate.within_sd,
           "prior_df": estimate.prior_df}
    if estimate.repetitions == 1:  # schema v1: the figure and the interval it was always reported with
        out["realized_speedup"] = p50_ms(std) / p50_ms(sep) if p50_ms(sep) > 0 else None
        try:
            _, lo, hi = ratio_of_medians_ci(std["samples_ms"], sep["samples_ms"], CONFIDENCE)
            out["realized_speedup_ci"] = [lo, hi]
        except ValueError:  # a zero median: the ratio has no interval
            out["realized_speedup_ci"] = None
        out["realized_speedup_rerun_halfwidth"] = None
    return out


def _finite(pair: tuple[float, float]) -> list[float] | None:
    return list(pair) if all(0 < x < float("inf") for x in pair) else None


def _pairs_per_run(sourced: list[SourcedRecord]) -> dict[tuple, list[tuple[str, dict[str, SourcedRecord]]]]:
    """(group, model) -> [(source, {variant: record})] for every file that holds both variants, oldest first."""
    by_file: dict[tuple, dict[str, dict[str, SourcedRecord]]] = {}
    for item in sorted(sourced, key=lambda item: item.recency):
        by_file.setdefault((item.group_key, item.model_key), {}).setdefault(item.source, {})[item.variant] = item
    return {key: [(src, v) for src, v in files.items() if "standard" in v and "separable" in v]
            for key, files in by_file.items()}


def unpaired_row(sourced: SourcedRecord, peak: Mapping[str, Any] | None) -> dict[str, Any]:
    r = sourced.record
    gmacs = achieved_gmacs_per_s(r)
    row = {
        "machine": sourced.machine,
        **{key: r[key] for key in ("device", "runtime", "threads", "arch", "variant")},
        "width": float(r["width"]),
        **{key: r[key] for key in ("resolution", "batch", "precision", "macs")},
        "p50_ms": p50_ms(r),
        "gmacs_per_s": gmacs,
        "peak_share": _share(gmacs, float(peak["gmacs_per_s"]) if peak else None),
        "missing": "standard" if r["variant"] == "separable" else "separable",
        "source": sourced.source,
    }
    return row


def achieved_gmacs_per_s(record: Mapping[str, Any]) -> float | None:
    """MACs per image times batch over the median latency; `macs` counts one image."""
    p50 = p50_ms(record)
    return record["macs"] * record["batch"] / (p50 * 1e-3) / 1e9 if p50 > 0 else None


def _newest_per_model(sourced: list[SourcedRecord], notes: list[str]) -> dict[tuple, dict[str, SourcedRecord]]:
    """(group, model) -> variant -> the newest record; a note for each model that was run more than once."""
    candidates: dict[tuple, dict[str, list[SourcedRecord]]] = {}
    for item in sourced:
        candidates.setdefault((item.group_key, item.model_key), {}).setdefault(item.variant, []).append(item)
    chosen: dict[tuple, dict[str, SourcedRecord]] = {}
    for key, by_variant in candidates.items():
        # Stable sort: within one file, a later record of the same model wins too.
        ordered = {variant: sorted(items, key=lambda item: item.recency)
                   for variant, items in sorted(by_variant.items())}
        chosen[key] = {variant: items[-1] for variant, items in ordered.items()}
        older = sorted({item.source for items in ordered.values() for item in items[:-1]})
        if older:
            used = sorted({item.source for item in chosen[key].values()})
            runs = max(len(items) for items in ordered.values())
            notes.append(f"{_describe(*key)}: {runs} runs; using the newest ({', '.join(used)}); "
                         f"not used: {', '.join(older)}")
    return chosen


def _describe(group: tuple, model: tuple) -> str:
    machine, device, runtime, precision, threads, batch = group
    arch, width, resolution = model
    return (f"{machine} · {device} ({runtime}, {precision}, {threads} threads, batch {batch}) · "
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
