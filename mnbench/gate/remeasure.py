"""Measuring for the gate on this machine: a baseline's records again (`check_baseline`), or two model files side
by side in one process (`check_paired`), each until the change's CI is narrow enough or the time limit is reached.

`measure_interleaved` stops on its own rule (every workload's median known to ±target); the gate stops on the
change's CI (`Comparison.precise_enough`), which also depends on the baseline. So it measures in short slices and
checks its rule between them: each slice is a `measure_interleaved` call whose rounds continue the previous ones
(the first slice runs the full warm-up, later ones only the few calls that re-calibrate the round length).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from mnbench import results
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.gate.compare import (DEFAULT_CONFIDENCE, DEFAULT_THRESHOLD, REGRESSION, Comparison, GateReport,
                                  check_machine_compatible, check_settings_compatible, check_threshold,
                                  compare_paired, compare_records, compare_results, decide, merge_retest, record_name)
from mnbench.measure import Measurement, measure_interleaved
from mnbench.reference import open_reference
from mnbench.runner import REFERENCE_WORKLOAD, CONTROL_WORKLOAD, make_record, reference_fields
from mnbench.stats import summarize
from mnbench.control import CONTROLS_KEY, find_model_file, open_control, own_control, control_fields

MODEL = "model"
RETEST_SEED_OFFSET = 1000  # a re-measurement shuffles its rounds differently from the first one

# (what is measured, seconds so far, the change's comparison so far)
OnProgress = Callable[[str, float, Comparison], None]


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    threshold: float = DEFAULT_THRESHOLD
    confidence: float = DEFAULT_CONFIDENCE
    max_time_s: float = 20.0  # per model and measurement (a re-measurement gets as long again)
    min_rounds: int = 20  # below this the per-round variance and autocorrelation are too rough to stop on
    slice_s: float = 2.0  # how often the stopping rule is checked
    # Per workload and round, as `mnbench run` measures. Shorter blocks give more rounds, but a block much shorter
    # than the neighbours' thread spin-down (50-90 ms, see mnbench.measure) is mostly transient: with two sessions
    # of v2 1.0/224 the per-round model/control ratio's standard error over 12 s was 0.04-0.06 at 0.05 s and 0.010 at
    # 0.1 s; for v1 0.25/96, 0.009 either way.
    round_s: float = 0.1
    warmup_s: float = 1.0  # before the first slice
    rewarm_s: float = 0.05  # before each later one: enough calls that its first round is sized right
    seed: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if not self.max_time_s > 0:
            raise MnbenchError(f"max time must be > 0 s, got {self.max_time_s}")


def _no_progress(label: str, elapsed_s: float, comparison: Comparison) -> None:
    pass


def measure_until_precise(workloads: Mapping[str, Callable[[], object]],
                          compare: Callable[[dict[str, Measurement]], list[Comparison]], settings: GateSettings, *,
                          label: str = "", on_progress: OnProgress = _no_progress,
                          ) -> tuple[dict[str, Measurement], list[Comparison]]:
    """Measure `workloads` interleaved, slice by slice, until every comparison `compare(measurements so far)`
    returns is precise enough (with at least `min_rounds` rounds) or `max_time_s` has passed. Never stops on the
    p-value. `on_progress` sees the least precise comparison."""
    samples: dict[str, list[float]] = {name: [] for name in workloads}
    sizes: dict[str, list[int]] = {name: [] for name in workloads}
    start = time.monotonic()
    for slice_index in itertools.count():
        remaining = settings.max_time_s - (time.monotonic() - start)
        slice_s = max(settings.round_s, min(settings.slice_s, remaining))
        measured = measure_interleaved(
            workloads, min_time_s=slice_s, max_time_s=slice_s,
            warmup_s=settings.warmup_s if slice_index == 0 else settings.rewarm_s,
            target_rel_ci=1.0,  # never binding: the slice length decides, the gate's own rule stops
            confidence=settings.confidence, round_s=settings.round_s, seed=settings.seed + slice_index)
        for name, m in measured.items():
            samples[name].extend(m.samples_ms)
            sizes[name].extend(m.round_sizes)
        so_far = {name: Measurement(samples_ms=list(samples[name]), round_sizes=list(sizes[name]))
                  for name in workloads}
        comparisons = compare(so_far)
        elapsed_s = time.monotonic() - start
        on_progress(label, elapsed_s, max(comparisons, key=lambda c: c.half_width(settings.confidence)))
        n_rounds = len(next(iter(sizes.values())))
        if n_rounds >= settings.min_rounds and all(c.precise_enough(settings.threshold, settings.confidence)
                                                   for c in comparisons):
            break
        if elapsed_s >= settings.max_time_s:
            break
    return so_far, comparisons


def _as_record(model: Measurement, reference: Measurement | None = None, info: dict[str, Any] | None = None,
               sha256: str | None = None, controls: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Just enough of a record for `compare_records` while measuring."""
    record: dict[str, Any] = {"samples_ms": model.samples_ms, "round_sizes": model.round_sizes,
                              "settings": (info or {}).get("settings"), "model_sha256": sha256}
    if reference is not None:
        record["reference"] = reference_fields(reference)
    if controls:
        record[CONTROLS_KEY] = controls
    return record


def model_config(record: dict[str, Any]) -> ModelConfig:
    """The model a record measured, rebuilt from its fields."""
    model = record.get("model") or {}
    return ModelConfig(arch=record["arch"], variant=record["variant"], width=float(record["width"]),
                       resolution=record["resolution"], batch=record["batch"],
                       dynamic_batch=bool(model.get("dynamic_batch", False)))


def measured_together(records: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of `records` grouped as `mnbench run` measured them: the variants of one arch, width, resolution and
    batch on one device, with one precision and thread count, in the same interleaved rounds. Re-measuring a group
    together keeps each model's neighbours in the rounds (whose spinning threads and cache traffic the model and
    the reference feel) as they were at baseline time."""
    groups: dict[tuple, list[int]] = {}
    for i, record in enumerate(records):
        key = tuple(record.get(k) for k in ("device", "runtime", "arch", "width", "resolution", "batch", "threads"))
        groups.setdefault(key + (record.get("requested_precision") or record.get("precision"),), []).append(i)
    return list(groups.values())


def remeasure_group(baselines: list[dict[str, Any]], settings: GateSettings, *,
                    models_dir: str | os.PathLike | None = None, on_progress: OnProgress = _no_progress,
                    ) -> list[dict[str, Any]]:
    """Export each baseline record's model with today's code, run them with the same device, precision, threads and
    batch, measure them interleaved with the reference (on that device, precision and threads too) and with the
    controls (`mnbench.control`: the baseline's own file when it is at hand, and today's file) until every change is
    precise enough, and return the new records (same layout as `mnbench run`'s), in order."""
    from mnbench.backends import open_session
    from mnbench.devices import resolve_device
    from mnbench.export import DEFAULT_OPSET, export_model

    first = baselines[0]
    device = resolve_device(first["device"])
    precision = first.get("requested_precision") or first["precision"]
    with ExitStack() as stack:
        opened, control_files = [], []
        for baseline in baselines:
            opset = (baseline.get("model") or {}).get("opset") or DEFAULT_OPSET
            exported = export_model(model_config(baseline), models_dir=models_dir, opset=opset, progress=False)
            session = stack.enter_context(open_session(device, exported.path, batch=baseline["batch"],
                                                       precision=precision, threads=baseline["threads"],
                                                       models_dir=models_dir))
            check_settings_compatible(baseline, session.info)  # what actually runs here, not what was asked
            opened.append((exported, session))
            control_files.append(_control_files(baseline, exported, models_dir))
        reference = stack.enter_context(open_reference(device, precision=precision, threads=first["threads"],
                                                       models_dir=models_dir))
        controls = {}  # sha256 -> session; a file shared by two records (an unchanged model) is measured once
        for baseline, files in zip(baselines, control_files):
            for sha, path in files.items():
                if sha not in controls:
                    controls[sha] = stack.enter_context(open_control(device, path, batch=baseline["batch"],
                                                               precision=precision, threads=baseline["threads"],
                                                               models_dir=models_dir))
        workloads = {f"{MODEL}{i}": session.infer for i, (_, session) in enumerate(opened)}
        workloads |= {CONTROL_WORKLOAD + sha: control.infer for sha, control in controls.items()}
        workloads[REFERENCE_WORKLOAD] = reference.infer

        def control_entries(m: dict[str, Measurement], files: dict[str, Path]) -> dict[str, dict[str, Any]]:
            return {sha: control_fields(m[CONTROL_WORKLOAD + sha], controls[sha].info) for sha in files}

        def compare_all(m: dict[str, Measurement]) -> list[Comparison]:
            return [compare_records(b, _as_record(m[f"{MODEL}{i}"], m[REFERENCE_WORKLOAD], opened[i][1].info,
                                                  opened[i][0].sha256, control_entries(m, control_files[i])))
                    for i, b in enumerate(baselines)]

        measured, _ = measure_until_precise(workloads, compare_all, settings,
                                            label=", ".join(record_name(b) for b in baselines),
                                            on_progress=on_progress)
        return [make_record(exported, device, session.info, measured[f"{MODEL}{i}"], measured[REFERENCE_WORKLOAD],
                            reference.info, control_entries(measured, control_files[i]))
                for i, (exported, session) in enumerate(opened)]


def _control_files(baseline: dict[str, Any], exported, models_dir: str | os.PathLike | None) -> dict[str, Path]:
    """The files whose controls a re-measurement measures, by sha256: today's export (so the new record can be the
    next baseline) and, when the baseline measured its own control, the baseline's file, if it can be found."""
    files = {exported.sha256: exported.path}
    base_file = baseline.get("model_sha256")
    if own_control(baseline) is not None and base_file not in files:
        found = find_model_file(base_file, [baseline.get("model_path")], models_dir)
        if found is not None:
            files[base_file] = found
    return files


def check_baseline(baseline_doc: dict[str, Any], settings: GateSettings = GateSettings(), *,
                   models_dir: str | os.PathLike | None = None, on_progress: OnProgress = _no_progress,
                   ) -> tuple[GateReport, dict[str, Any]]:
    """Re-measure every record of `baseline_doc` here, in the groups `mnbench run` measured together, and compare;
    a model that regresses is re-measured once (with its group) and fails only if it regresses again. Returns the
    report and the current result document (the latest measurement of each model), ready for
    `results.write_result`.

    MnbenchError, before anything is measured, when the baseline is from an incompatible machine or names a device
    this machine lacks.
    """
    from mnbench.devices import resolve_device
    from mnbench.machine import machine_info

    baseline_records = baseline_doc["records"]
    if not baseline_records:
        raise MnbenchError("the baseline has no records to re-measure")
    machine = machine_info()
    check_machine_compatible(baseline_doc.get("machine") or {}, machine,
                             runtimes={r["runtime"] for r in baseline_records})
    for record in baseline_records:
        resolve_device(record["device"])

    groups = measured_together(baseline_records)

    def measure_groups(indices, run_settings) -> None:
        for group in groups:
            if not set(group) & set(indices):
                continue
            records = remeasure_group([baseline_records[i] for i in group], run_settings, models_dir=models_dir,
                                      on_progress=on_progress)
            for i, record in zip(group, records):
                current[i] = record

    current: list[dict[str, Any]] = [{}] * len(baseline_records)
    measure_groups(range(len(baseline_records)), settings)
    doc = results.new_result(machine, list(current))
    report = compare_results(baseline_doc, doc, settings.threshold, confidence=settings.confidence, mode="remeasure")
    failing = [i for i, m in enumerate(report.models) if m.verdict == REGRESSION]
    if failing:
        measure_groups(failing, dataclasses.replace(settings, seed=settings.seed + RETEST_SEED_OFFSET))
        doc = results.new_result(machine, list(current))
        retest = compare_results(baseline_doc, doc, settings.threshold, confidence=settings.confidence,
                                 mode="remeasure")
        report = merge_retest(report, retest)
    return report, doc


def check_paired(baseline_model: str | os.PathLike, model: str | os.PathLike, device: str, *, batch: int = 1,
                 precision: str = "fp32", threads: int | None = None, settings: GateSettings = GateSettings(),
                 models_dir: str | os.PathLike | None = None, on_progress: OnProgress = _no_progress) -> GateReport:
    """Measure two model files in alternating rounds of one process and apply the gate's verdict to the change of
    `model` over `baseline_model`. Machine drift hits both alike within each round, so it cancels completely."""
    from mnbench.backends import open_session
    from mnbench.devices import resolve_device

    resolved = resolve_device(device)
    old_path, new_path = Path(baseline_model), Path(model)
    with open_session(resolved, old_path, batch=batch, precision=precision, threads=threads,
                      models_dir=models_dir) as old, \
            open_session(resolved, new_path, batch=batch, precision=precision, threads=threads,
                         models_dir=models_dir) as new:
        name = (f"{new_path.name} vs {old_path.name} "
                f"{resolved.name}/{new.info.get('runtime')} {new.info.get('precision')}")
        # Both must run alike (a model that cannot take the precision falls back differently): say which differs.
        check_settings_compatible({**old.info, "model": {"slug": old_path.name}, "device": resolved.name}, new.info)
        measured, (comparison,) = measure_until_precise(
            {"baseline": old.infer, "current": new.infer},
            lambda m: [compare_paired(_as_record(m["baseline"]), _as_record(m["current"]))],
            settings, label=name, on_progress=on_progress)
    base_record = {"latency_ms": summarize(measured["baseline"].samples_ms)}
    current_record = {"latency_ms": summarize(measured["current"].samples_ms)}
    models = decide([(name, base_record, current_record, comparison)], threshold=settings.threshold,
                    confidence=settings.confidence)
    return GateReport(threshold=settings.threshold, confidence=settings.confidence, models=models, mode="paired")
