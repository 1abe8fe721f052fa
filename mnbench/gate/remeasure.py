"""Measuring for the gate on this machine: a baseline's records again (`check_baseline`), or two model files side
by side in one process (`check_paired`), each until the change's CI is narrow enough or the time limit is reached.

`measure_interleaved` stops on its own rule (every workload's median known to ±target); the gate stops on the
change's CI (`Comparison.precise_enough`), which also depends on the baseline. So it measures in short slices and
checks its rule between them. Each slice is a repetition, as in `mnbench run`: fresh sessions, their warm-up, a
`measure_interleaved` call. A session that is slow for its whole life is then between-repetition variance on both
sides of the comparison, never a false regression or a masked one (`mnbench.stats.repetitions.pooled_difference`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import random
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping


from mnbench import results
from mnbench.measure import loop as measure
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.gate.compare import (DEFAULT_CONFIDENCE, DEFAULT_THRESHOLD, REGRESSION, Comparison, GateReport,
                                  check_machine_compatible, check_settings_compatible, check_threshold,
                                  compare_records, compare_results, decide, merge_extension, paired_change,
                                  record_name, round_values)
from mnbench.measure.control import find_model_file, open_control, own_control
from mnbench.measure.loop import Measurement
from mnbench.measure.records import (REFERENCE_WORKLOAD, control_companion, control_workload, make_record,
                               reference_companion, series_of)
from mnbench.measure.reference import open_reference
from mnbench.results import Record
from mnbench.stats.samples import summarize

MODEL = "model"
EXTENSION_SEED_OFFSET = 1000  # an extension shuffles its rounds differently from the first measurement

# (what is measured, seconds so far, the change's comparison so far)
OnProgress = Callable[[str, float, Comparison], None]


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    threshold: float = DEFAULT_THRESHOLD
    confidence: float = DEFAULT_CONFIDENCE
    max_time_s: float = 20.0  # per model and measurement (a re-measurement gets as long again)
    min_rounds: int = 20  # below this the per-round variance and autocorrelation are too rough to stop on
    min_repetitions: int = 3  # below this the between-repetition spread is unknown
    # One repetition's measuring time; the stopping rule is checked after each. Each repetition is one draw of the
    # sessions' own speeds, which dominate the change's variance (benchmarks/results/session_effect.md): more,
    # shorter repetitions beat fewer, longer ones as long as each keeps a few rounds.
    slice_s: float = 1.0
    # Per workload and round, as `mnbench run` measures. Shorter blocks give more rounds, but a block much shorter
    # than the neighbours' thread spin-down (50-90 ms, see mnbench.measure.loop) is mostly transient: with two sessions
    # of v2 1.0/224 the per-round model/control ratio's standard error over 12 s was 0.04-0.06 at 0.05 s and 0.010 at
    # 0.1 s; for v1 0.25/96, 0.009 either way.
    round_s: float = 0.1
    warmup_s: float = 0.2  # per workload and repetition (fresh sessions); each block is settled as well
    seed: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if not self.max_time_s > 0:
            raise MnbenchError(f"max time must be > 0 s, got {self.max_time_s}")


def _no_progress(label: str, elapsed_s: float, comparison: Comparison) -> None:
    pass


Workloads = Mapping[str, Callable[[], object]]


def measure_until_precise(open_workloads: Callable[[], ContextManager[Workloads]],
                          compare: Callable[[dict[str, list[Measurement]]], list[Comparison]],
                          settings: GateSettings, *, label: str = "", on_progress: OnProgress = _no_progress,
                          ) -> tuple[dict[str, list[Measurement]], list[Comparison]]:
    """Measure repetition after repetition (each: `open_workloads()` gives fresh sessions, measured interleaved
    for `slice_s`) until every comparison `compare(repetitions so far)` returns is precise enough (with at least
    `min_rounds` rounds and `min_repetitions` repetitions) or `max_time_s` has passed. Never stops on the p-value.
    `on_progress` sees the least precise comparison."""
    parts: dict[str, list[Measurement]] = {}
    start = time.monotonic()
    for index in itertools.count():
        remaining = settings.max_time_s - (time.monotonic() - start)
        slice_s = max(settings.round_s, min(settings.slice_s, remaining))
        with open_workloads() as workloads:
            measured = measure.measure_interleaved(
                workloads, min_time_s=slice_s, max_time_s=slice_s, warmup_s=settings.warmup_s,
                target_rel_ci=1.0,  # never binding: the slice length decides, the gate's own rule stops
                confidence=settings.confidence, round_s=settings.round_s, seed=settings.seed + index)
        for name, m in measured.items():
            parts.setdefault(name, []).append(m)
        comparisons = compare(parts)
        elapsed_s = time.monotonic() - start
        on_progress(label, elapsed_s, max(comparisons, key=lambda c: c.half_width(settings.confidence)))
        n_rounds = sum(len(m.round_sizes) for m in next(iter(parts.values())))
        if (n_rounds >= settings.min_rounds and index + 1 >= settings.min_repetitions
                and all(c.precise_enough(settings.threshold, settings.confidence) for c in comparisons)):
            break
        if elapsed_s >= settings.max_time_s:
            break
    return parts, comparisons


def _as_record(model: list[Measurement], reference: list[Measurement] | None = None,
               info: dict[str, Any] | None = None, sha256: str | None = None,
               controls: dict[str, Any] | None = None) -> dict[str, Any]:
    """Just enough of a record for `compare_records` while measuring."""
    fields = {"settings": (info or {}).get("settings"), "model_sha256": sha256, "batch": 1}
    return Record(fields=fields, series=series_of(model), repetition_rounds=tuple(len(m.round_sizes) for m in model),
                  reference=None if reference is None else reference_companion(reference),
                  controls=controls or {}).to_json()


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
    controls (`mnbench.measure.control`: the baseline's own file when it is at hand, and today's file), in repetitions
    with fresh sessions, until every change is precise enough; return the new records (as `mnbench run` writes
    them), in order."""
    from mnbench.devices.registry import resolve_device
    from mnbench.artifacts.export import DEFAULT_OPSET, export_model
    from mnbench.int8.quantize import for_precision

    device = resolve_device(baselines[0]["device"])
    exported = [for_precision(export_model(model_config(b), models_dir=models_dir, progress=False,
                                           opset=(b.get("model") or {}).get("opset") or DEFAULT_OPSET),
                              b.get("requested_precision") or b["precision"])  # int8: the quantized file
                for b in baselines]
    control_files = [_control_files(b, e, models_dir) for b, e in zip(baselines, exported)]
    infos: dict[str, Any] = {}
    open_workloads = _session_opener(baselines, exported, control_files, device, models_dir, infos,
                                     seed=settings.seed)

    def controls_of(m: dict[str, list[Measurement]], i: int) -> dict[str, Any]:
        return {sha: control_companion(m[control_workload(sha)], infos["controls"][sha]) for sha in control_files[i]}

    def compare_all(m: dict[str, list[Measurement]]) -> list[Comparison]:
        return [compare_records(b, _as_record(m[f"{MODEL}{i}"], m[REFERENCE_WORKLOAD], infos["sessions"][i],
                                              exported[i].sha256, controls_of(m, i)))
                for i, b in enumerate(baselines)]

    measured, _ = measure_until_precise(open_workloads, compare_all, settings,
                                        label=", ".join(record_name(b) for b in baselines), on_progress=on_progress)
    return [make_record(e, device, infos["sessions"][i], measured[f"{MODEL}{i}"], measured[REFERENCE_WORKLOAD],
                        infos["reference"], controls_of(measured, i)).to_json()
            for i, e in enumerate(exported)]


TORCH_SWITCHES = ("cuda_graph", "channels_last")  # what `mnbench run --cuda-graph/--channels-last` set


def session_options(record: dict[str, Any], device) -> dict[str, bool] | None:
    """The per-session switches a torch record ran with, so today's session runs as the baseline's did (a CUDA
    graph re-measured without its graph would be another workload); None for other runtimes, which have none."""
    from mnbench.devices.registry import TORCH

    if getattr(device, "runtime", None) != TORCH:
        return None
    settings = record.get("settings") or {}
    return {k: bool(settings[k]) for k in TORCH_SWITCHES if k in settings}


def _session_opener(baselines: list[dict[str, Any]], exported: list, control_files: list[dict[str, Path]], device,
                    models_dir, infos: dict[str, Any], seed: int = 0) -> Callable[[], ContextManager[Workloads]]:
    """A context manager factory: each call opens fresh sessions of the models, the reference and the controls
    (a file shared by two records, an unchanged model, once) and yields their workloads; `infos` gets what ran.

    Each call opens them in a new shuffled order (seeded): which session is created, allocated and warmed up first
    must not be a constant difference between a model and its control, or it reads as a change of the model. A
    repetition's order is then part of its variance, which the repetition-level interval carries."""
    from mnbench.backends import open_session

    first = baselines[0]
    precision = first.get("requested_precision") or first["precision"]
    order_rng = random.Random(seed)
    openers: dict[str, Callable[[], ContextManager]] = {}
    for i, (b, e) in enumerate(zip(baselines, exported)):
        openers[f"{MODEL}{i}"] = functools.partial(open_session, device, e.path, batch=b["batch"], precision=precision,
                                                   threads=b["threads"], models_dir=models_dir,
                                                   options=session_options(b, device))
    for b, files in zip(baselines, control_files):
        for sha, path in files.items():
            openers.setdefault(control_workload(sha), functools.partial(
                open_control, device, path, batch=b["batch"], precision=precision, threads=b["threads"],
                models_dir=models_dir))
    openers[REFERENCE_WORKLOAD] = functools.partial(open_reference, device, precision=precision,
                                                    threads=first["threads"], models_dir=models_dir)

    @contextmanager
    def open_workloads() -> Iterator[Workloads]:
        names = list(openers)
        order_rng.shuffle(names)
        with ExitStack() as stack:
            opened = {name: stack.enter_context(openers[name]()) for name in names}
            sessions = [opened[f"{MODEL}{i}"] for i in range(len(baselines))]
            for b, session in zip(baselines, sessions):
                check_settings_compatible(b, session.info)  # what actually runs here, not what was asked
            infos.update(sessions=[s.info for s in sessions], reference=opened[REFERENCE_WORKLOAD].info,
                         controls={sha: opened[control_workload(sha)].info
                                   for files in control_files for sha in files})
            yield {name: session.infer for name, session in opened.items()}  # warmed up in that order too

    return open_workloads


def compare_paired(baseline: dict[str, Any], current: dict[str, Any]) -> Comparison:
    """The change of `current` over `baseline` measured in the same interleaved rounds (`compare.paired_change`)."""
    base, now = round_values(baseline), round_values(current)
    if base.method != "rounds" or base.model.size != now.model.size:
        raise MnbenchError("paired comparison needs both models measured in the same interleaved rounds")
    log_change, se, df, reps = paired_change(now.model - base.model, now.repetition)
    return Comparison(log_change=log_change, se=se, df=df, method="paired", normalised=False,
                      rounds_baseline=base.model.size, rounds_current=now.model.size, repetitions=reps)


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
    a model the first measurement leaves undecided (a regression to confirm, or an interval still reaching above
    the threshold) is measured as long again with its group and judged on both measurements together
    (`compare.merge_extension`). Returns the report and the current result document (each model's whole
    measurement), ready for `results.write_result`.

    MnbenchError, before anything is measured, when the baseline is from an incompatible machine or names a device
    this machine lacks.
    """
    from mnbench.devices.registry import resolve_device
    from mnbench.host.machine import machine_info

    baseline_records = baseline_doc["records"]
    if not baseline_records:
        raise MnbenchError("the baseline has no records to re-measure")
    machine = machine_info()
    check_machine_compatible(baseline_doc.get("machine") or {}, machine,
                             runtimes={r["runtime"] for r in baseline_records})
    for record in baseline_records:
        resolve_device(record["device"])

    def measure_groups(indices, run_settings) -> dict[int, dict[str, Any]]:
        measured = {}
        for group in measured_together(baseline_records):
            if set(group) & set(indices):
                records = remeasure_group([baseline_records[i] for i in group], run_settings,
                                          models_dir=models_dir, on_progress=on_progress)
                measured |= dict(zip(group, records))
        return measured

    def judged(records: dict[int, dict[str, Any]]) -> tuple[GateReport, dict[str, Any]]:
        doc = results.new_result(machine, [records[i] for i in range(len(baseline_records))])
        return compare_results(baseline_doc, doc, settings.threshold, confidence=settings.confidence,
                               mode="remeasure"), doc

    current = measure_groups(range(len(baseline_records)), settings)
    report, doc = judged(current)
    undecided = [i for i, m in enumerate(report.models) if m.measure_more]
    if not undecided:
        return report, doc
    again = measure_groups(undecided, dataclasses.replace(settings, seed=settings.seed + EXTENSION_SEED_OFFSET))
    for i in undecided:
        current[i] = Record.from_json(current[i]).extended_by(Record.from_json(again[i])).to_json()
    extended, doc = judged(current)
    return merge_extension(report, extended), doc


def check_paired(baseline_model: str | os.PathLike, model: str | os.PathLike, device: str, *, batch: int = 1,
                 precision: str = "fp32", threads: int | None = None, settings: GateSettings = GateSettings(),
                 models_dir: str | os.PathLike | None = None, on_progress: OnProgress = _no_progress) -> GateReport:
    """Measure two model files in alternating rounds of one process and apply the gate's verdict to the change of
    `model` over `baseline_model`. Machine drift hits both alike within each round, so it cancels completely. An
    undecided change is measured as long again and judged on all of it, as in `check_baseline`."""
    from mnbench.backends import open_session
    from mnbench.devices.registry import resolve_device

    resolved = resolve_device(device)
    old_path, new_path = Path(baseline_model), Path(model)
    infos: dict[str, Any] = {}

    @contextmanager
    def open_workloads() -> Iterator[Workloads]:
        with open_session(resolved, old_path, batch=batch, precision=precision, threads=threads,
                          models_dir=models_dir) as old, \
                open_session(resolved, new_path, batch=batch, precision=precision, threads=threads,
                             models_dir=models_dir) as new:
            # Both must run alike (a model that cannot take the precision falls back differently): say which.
            check_settings_compatible({**old.info, "model": {"slug": old_path.name}, "device": resolved.name},
                                      new.info)
            infos.update(old=old.info, new=new.info)
            yield {"baseline": old.infer, "current": new.infer}

    label = f"{new_path.name} vs {old_path.name} {resolved.name}"

    def compare(m: dict[str, list[Measurement]]) -> list[Comparison]:
        return [compare_paired(_as_record(m["baseline"]), _as_record(m["current"]))]

    def judged(m: dict[str, list[Measurement]]) -> GateReport:
        # What ran, as the sessions reported it (a bad file or setting failed in the first repetition's opening).
        name = f"{label}/{infos['new'].get('runtime')} {infos['new'].get('precision')}"
        base_record, current_record = ({"latency_ms": summarize(series_of(m[k]).samples_ms)}
                                       for k in ("baseline", "current"))
        models = decide([(name, base_record, current_record, compare(m)[0])], threshold=settings.threshold,
                        confidence=settings.confidence)
        return GateReport(threshold=settings.threshold, confidence=settings.confidence, models=models, mode="paired")

    measured, _ = measure_until_precise(open_workloads, compare, settings, label=label, on_progress=on_progress)
    report = judged(measured)
    if not report.models[0].measure_more:
        return report
    # Undecided: as long again, judged on all of it (as `check_baseline` does).
    more, _ = measure_until_precise(open_workloads, compare,
                                    dataclasses.replace(settings, seed=settings.seed + EXTENSION_SEED_OFFSET),
                                    label=label, on_progress=on_progress)
    return merge_extension(report, judged({k: measured[k] + more[k] for k in measured}))
