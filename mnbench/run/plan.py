"""`mnbench run`: export (cached), then measure every model group in passes until each is precise enough.

A pass measures one repetition of every group not yet done, on every device, in a fresh worker process with fresh
sessions (`mnbench.measure.worker`). Passes are the outer loop, so each group's repetitions are spread over the whole
run: a process or session that is slow for its whole life, or a minute in which the machine is busy, becomes
between-repetition variance instead of a bias, and the interval (`mnbench.stats.repetitions`) carries it.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mnbench import results
from mnbench.config import PRECISIONS, ModelConfig, check_choice
from mnbench.devices.registry import OPENVINO, TORCH
from mnbench.errors import MnbenchError
from mnbench.host import load as machine_state
from mnbench.int8.accuracy import complete_quantization
from mnbench.int8.quantize import for_precision
from mnbench.measure import stability
from mnbench.measure.loop import Measurement
from mnbench.measure.records import REFERENCE_WORKLOAD, control_companion, control_workload, make_record
from mnbench.measure.worker import GroupMeasured, ModelFile, PassGroup, PassJob, run_pass
from mnbench.run.memory import session_memory
from mnbench.run.peaks import call_ms, record_peaks
from mnbench.results import Record
from mnbench.stats import repetitions

# What the time estimate counts besides the repetitions themselves (seconds, on a 2-vCPU VM): a worker process's
# start with its runtimes' imports, opening one model's session, the calls its warm-up and settling take, and one
# model's memory measurement (benchmarks/results/parallelism.md).
PASS_START_S = 1.5
SESSION_OPEN_S = 0.6
WARMUP_CALLS = 2
MEMORY_PER_MODEL_S = 2.0


@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    """How each group is measured: in short repetitions (fresh sessions each) until its speedups are precise enough.

    A group (a model pair, or any models measured together) gets at least `repetitions` repetitions, each
    `repetition_s` of interleaved rounds; after each pass over the groups, a group stops once every ratio in it is
    known to ±`target_halfwidth` (its 95 % interval from the spread between repetitions), or once `max_time_s` of
    measuring (all its repetitions) is spent, or at `max_repetitions`.
    """

    repetitions: int = 5
    repetition_s: float = 1.0
    max_time_s: float = 6.0
    target_halfwidth: float = 0.03
    max_repetitions: int = 40
    warmup_s: float = 0.1  # per workload and repetition; each block is settled as well (mnbench.measure.loop)
    round_s: float = 0.1
    min_rounds: int = 3  # per repetition: so that every model of the group is measured in several alternations
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repetitions < 2 or self.max_repetitions < self.repetitions:
            raise MnbenchError(f"repetitions must be at least 2 (an interval needs two), and at most max_repetitions "
                               f"({self.max_repetitions}); got {self.repetitions}")
        if not (self.repetition_s > 0 and self.max_time_s > 0 and self.target_halfwidth > 0):
            raise MnbenchError("repetition time, max time and target half-width must be > 0, got "
                               f"{self.repetition_s}, {self.max_time_s} and {self.target_halfwidth}")

    def for_repetition(self, index: int) -> dict[str, Any]:
        """`measure_interleaved` keywords for one repetition: a fixed time, no sample-level stopping rule."""
        # The cap lets a slow model's rounds reach min_rounds: a repetition is a fixed time unless its calls are long.
        return {"min_time_s": self.repetition_s, "max_time_s": 3 * self.repetition_s, "warmup_s": self.warmup_s,
                "target_rel_ci": None, "round_s": self.round_s, "min_rounds": self.min_rounds,
                "seed": self.seed + index}

    def is_done(self, repetitions: int, halfwidth: float) -> bool:
        """Whether a group measured `repetitions` times, whose widest ratio interval is ±`halfwidth`, is done."""
        spent = repetitions * self.repetition_s
        return repetitions >= self.max_repetitions or (repetitions >= self.repetitions and (
            halfwidth <= self.target_halfwidth or spent + self.repetition_s > self.max_time_s + 1e-9))


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    archs: list[str]
    devices: list[Any]  # mnbench.devices.registry.DeviceInfo, already resolved (available)
    variants: tuple[str, ...] = ("separable", "standard")
    widths: list[float] = field(default_factory=lambda: [1.0])
    resolutions: list[int] = field(default_factory=lambda: [224])
    # A number, or a list to sweep: every point (threads x batch) is a group of its own, with its own interval.
    batch: int | Sequence[int] = 1
    precision: str = "fp32"
    threads: int | None | Sequence[int] = None
    # OpenVINO's throughput mode: streams sharing the threads, a request on each at once (openvino devices only;
    # the other devices measure the points with one stream).
    streams: int | Sequence[int] = 1
    measure: MeasureSettings = MeasureSettings()
    # What `mnbench check` divides by, measured in the same rounds (a baseline for the gate, `run --for-check`): the
    # machine-speed reference, and each model's own file again with pinned settings (its control).
    with_reference: bool = False
    with_controls: bool = False
    with_peak: bool = True
    # Settings of the torch devices' sessions (`cuda_graph`, `channels_last`: mnbench.backends.torch_backend),
    # passed to their model sessions only; controls and the reference stay eager and contiguous (pinned).
    torch_options: dict[str, Any] = field(default_factory=dict)
    # Explicit model groups, each measured in the same rounds (`mnbench ablate`: a published net and its ablated
    # nets); when given, they replace archs x widths x resolutions x variants.
    groups: tuple[tuple[ModelConfig, ...], ...] = ()
    # The user's own ONNX files (mnbench.artifacts.user_models.UserModel), measured as one more group per batch
    # they were loaded at, after the above.
    user_models: tuple[Any, ...] = ()
    # Each model's session memory, measured once per point in a fresh process after the timing (measure/memory.py).
    with_memory: bool = True

    def __post_init__(self) -> None:
        check_choice("precision", self.precision, PRECISIONS)
        if self.torch_options and not any(self.options_for(d) for d in self.devices):
            raise MnbenchError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(self.torch_options))} "
                               "apply only to the torch devices "
                               f"(torch, torch:cuda); --device gave {', '.join(d.name for d in self.devices)}")
        for name, values in (("threads", [t for t in self.thread_counts if t is not None]), ("batch", self.batches),
                             ("streams", self.stream_counts)):
            if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values) or len(set(values)) < len(values):
                raise MnbenchError(f"{name} must be positive integers, each once; got {list(values)}")
        points = len(self.thread_counts) * len(self.batches) * len(self.stream_counts)
        if (self.with_reference or self.with_controls) and points > 1:
            raise MnbenchError("a baseline for `mnbench check` is one point: give one --threads, --batch and "
                               "--streams with --for-check")
        if max(self.stream_counts) > 1 and not any(d.runtime == OPENVINO for d in self.devices):
            raise MnbenchError(f"--streams is OpenVINO's throughput mode: it needs the openvino device, --device "
                               f"gave {', '.join(d.name for d in self.devices)}")
        # Validate every model config up front: a bad width fails before minutes of measuring.
        self.configs()

    @property
    def batches(self) -> tuple[int, ...]:
        return tuple(self.batch) if isinstance(self.batch, (list, tuple)) else (self.batch,)

    @property
    def thread_counts(self) -> tuple[int | None, ...]:
        return tuple(self.threads) if isinstance(self.threads, (list, tuple)) else (self.threads,)

    @property
    def stream_counts(self) -> tuple[int, ...]:
        return tuple(self.streams) if isinstance(self.streams, (list, tuple)) else (self.streams,)

    def measures(self, device, streams: int) -> bool:
        """Whether `device` runs a point with `streams` streams (only openvino has a throughput mode)."""
        return streams == 1 or device.runtime == OPENVINO

    def configs(self) -> list[list[ModelConfig]]:
        """One group per (arch, width, resolution, batch): the variants measured together (or `groups`, as given)."""
        if self.groups:
            return [list(group) for group in self.groups]
        return [
            [ModelConfig(arch=a, variant=v, width=w, resolution=r, batch=b) for v in self.variants]
            for b, a, w, r in itertools.product(self.batches, self.archs, self.widths, self.resolutions)
        ]

    def user_groups(self) -> list[list[Any]]:
        """The user's files, one group per batch they were loaded at."""
        by_batch: dict[int, list[Any]] = {}
        for model in self.user_models:
            by_batch.setdefault(model.config.batch, []).append(model)
        return list(by_batch.values())

    def estimate_s(self, group_calls_ms: list[list[float]] | None = None) -> tuple[float, float]:
        """Seconds the measuring takes at the least (every group done at its minimum repetitions) and at the most
        (every group at its time cap, and the passes a busy machine makes measure again), for the progress bar.

        A pass costs a process start; a group its sessions' opening and warm-up, and a repetition: its time (a group
        of n models gets n/2 times a pair's), or the minimum rounds of its models' calls where those are longer.
        `group_calls_ms`: each measured group's models' expected call times (the run estimates them from their MACs
        and the peak it measured); without them, calls count as instant."""
        if group_calls_ms is None:
            sizes = [len(g) for g in self.configs() + self.user_groups()] * len(self.thread_counts) * sum(
                self.measures(d, s) for d in self.devices for s in self.stream_counts)
            group_calls_ms = [[0.0] * n for n in sizes]
        settings = self.measure
        per_pass = PASS_START_S
        for calls in group_calls_ms:
            calls_s = sum(calls) / 1e3
            per_pass += (len(calls) * SESSION_OPEN_S + WARMUP_CALLS * calls_s
                         + max(settings.repetition_s * max(1.0, len(calls) / 2), settings.min_rounds * calls_s))
        most_repetitions = max(settings.repetitions, math.ceil(settings.max_time_s / settings.repetition_s))
        memory = MEMORY_PER_MODEL_S * sum(map(len, group_calls_ms)) if self.with_memory else 0.0
        return (settings.repetitions * per_pass + memory,
                (most_repetitions + stability.MAX_DISCARDED) * per_pass + memory)

    def options_for(self, device) -> dict[str, Any]:
        """The backend options a model session on `device` gets (only torch devices take any)."""
        return dict(self.torch_options) if getattr(device, "runtime", None) == TORCH else {}

    def steps(self) -> int:
        """Group repetitions in the whole run at the least (for progress)."""
        groups = (len(self.configs()) + len(self.user_groups())) * len(self.thread_counts)
        return groups * sum(self.measures(d, s) for d in self.devices for s in self.stream_counts) * \
            self.measure.repetitions


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; `partial_result` holds the records whose repetitions so far were complete (or None)."""

    def __init__(self, partial_result: dict[str, Any] | None) -> None:
        super().__init__()
        self.partial_result = partial_result


@dataclass
class _Measured:
    """One model's repetitions so far: what ran, and per repetition its measurement and its neighbours'."""

    exported: Any
    device: Any
    info: dict[str, Any]
    model: list[Measurement] = field(default_factory=list)
    reference: list[Measurement] = field(default_factory=list)
    reference_info: dict[str, Any] = field(default_factory=dict)
    control: list[Measurement] = field(default_factory=list)
    control_info: dict[str, Any] = field(default_factory=dict)


def run_plan(plan: RunPlan, *, models_dir: Path | None = None, reports_dir: Path | None = None,
             on_status: Callable[[str], None] = lambda _: None,
             on_group: Callable[[int, int, str], None] = lambda i, n, label: None,
             on_record: Callable[[Record], None] = lambda _: None,
             on_estimate: Callable[[float, float], None] = lambda low, high: None) -> dict[str, Any]:
    """Measure every model group on every device in passes, each one repetition of every group not yet done
    (`MeasureSettings.is_done`) in a fresh worker process (`mnbench.measure.worker`), and return the result document
    (not yet written). Ctrl-C raises `RunInterrupted` with the records of the passes completed so far."""
    from mnbench.artifacts.export import export_model
    from mnbench.host.machine import machine_info

    doc = results.new_result(machine_info(), settings={"measure": asdict(plan.measure)}
                             | ({"torch_options": dict(plan.torch_options)} if plan.torch_options else {}))
    if plan.with_peak:
        record_peaks(doc, plan, reports_dir, on_status)
    # int8: each fp32 export quantized (cached beside it), and that file measured (mnbench.int8.quantize)
    exported = [[for_precision(export_model(c, models_dir=models_dir, progress=False), plan.precision) for c in group]
                for group in plan.configs()] + plan.user_groups()
    # A unit is what one worker measures together: one group of models at one thread count and stream count (its
    # batch is the models' own).
    units = [(threads, streams, models) for threads in plan.thread_counts for streams in plan.stream_counts
             for models in exported]
    measured: dict[tuple[str, int, str], _Measured] = {}
    pending = [(device, index) for device in plan.devices for index, unit in enumerate(units)
               if plan.measures(device, unit[1])]
    # The time it will take, now that the models' MACs and the device's peak are known (`on_estimate`: the bar).
    estimate = plan.estimate_s([[call_ms(e, doc, device, units[index]) for e in units[index][2]]
                                for device, index in pending])
    doc["settings"]["estimate_s"] = [round(s, 1) for s in estimate]
    on_estimate(*estimate)
    started = time.monotonic()
    states: list[dict[str, Any]] = []
    progress = _Progress(plan, len(pending), on_group)
    try:
        for repetition in itertools.count():
            if not pending:
                break
            before, this_pass = machine_state.snapshot(), []
            run_pass(_pass_job(plan, units, pending, len(states), models_dir),
                     on_group=lambda label: progress.start(f"{label} (pass {repetition + 1})"),
                     on_measured=this_pass.append)
            state = machine_state.between(before, machine_state.snapshot())
            state["discarded"] = (stability.disturbed(state)
                                  and sum(s.get("discarded", False) for s in states) < stability.MAX_DISCARDED)
            states.append(state)
            if state["discarded"]:  # measured again: another process took the CPU the models needed
                on_status(f"pass {len(states)} discarded: other processes used {state['others_fraction']:.0%} "
                          "of the CPU; measuring it again")
                continue
            for group in this_pass:
                device = next(d for d, _ in pending if d.name == group.device)
                entries = _keep(measured, group, device, units[group.index][2])
                if plan.measure.is_done(len(entries[0].model), group_halfwidth(entries)):
                    pending.remove((device, group.index))
                    progress.finish_group(len(entries[0].model))
        if plan.with_memory:
            on_status("measuring each model's memory (a fresh process each)")
            memory = session_memory(plan, measured.values(), models_dir)
        else:
            memory = {}
    except KeyboardInterrupt:
        doc["records"] = [r.to_json() for r in _records(measured)]
        doc["machine_state"] = stability.summarize_states(states)
        raise RunInterrupted(doc if doc["records"] else None) from None
    doc["settings"]["measured_s"] = round(time.monotonic() - started, 1)  # beside the estimate made at the start
    for record in _records(measured, memory):
        on_record(record)
        doc["records"].append(record.to_json())
    doc["machine_state"] = stability.summarize_states(states)
    return doc


def _pass_job(plan: RunPlan, units: list[tuple[int | None, int, list]], pending: list[tuple[Any, int]],
              repetition: int, models_dir: Path | None) -> PassJob:
    return PassJob(
        groups=tuple(PassGroup(device=device, index=index, threads=units[index][0], streams=units[index][1],
                               batch=units[index][2][0].config.batch,
                               models=tuple(ModelFile(e.config.slug, Path(e.path), e.sha256) for e in units[index][2]))
                     for device, index in pending),
        precision=plan.precision, options={d.name: plan.options_for(d) for d in plan.devices},
        with_reference=plan.with_reference, with_controls=plan.with_controls, repetition=repetition,
        timing=plan.measure.for_repetition(repetition), seed=plan.measure.seed, models_dir=models_dir)


def _keep(measured: dict[tuple, _Measured], group: GroupMeasured, device, exported: list) -> list[_Measured]:
    """Append one group's repetition to its models' entries; the entries."""
    entries = []
    for e in exported:
        entry = measured.setdefault((device.name, group.index, e.config.slug),
                                    _Measured(exported=e, device=device, info=group.infos[e.config.slug]))
        entry.model.append(group.measured[e.config.slug])
        if REFERENCE_WORKLOAD in group.measured:
            entry.reference.append(group.measured[REFERENCE_WORKLOAD])
            entry.reference_info = group.infos[REFERENCE_WORKLOAD]
        if control_workload(e.sha256) in group.measured:
            entry.control.append(group.measured[control_workload(e.sha256)])
            entry.control_info = group.infos[control_workload(e.sha256)]
        entries.append(entry)
    return entries


def group_halfwidth(members: list[_Measured]) -> float:
    """The widest 95 % interval (relative half-width) among a group's ratios, each model against the group's first
    (the ratio's direction does not change its width), or of the one model's latency in a group of one."""
    values = [[math.log(repetitions.repetition_value(m.samples_ms)) for m in entry.model] for entry in members]
    if len(values) == 1:
        return repetitions.estimate(values[0]).rel_halfwidth
    first = values[0]
    return max(repetitions.estimate([a - b for a, b in zip(other, first)]).rel_halfwidth for other in values[1:])


class _Progress:
    """What the progress bar shows: group repetitions done, out of an estimate that grows while groups need more
    than the minimum repetitions (`on_group(done, total, label)`)."""

    def __init__(self, plan: RunPlan, groups: int, on_group: Callable[[int, int, str], None]) -> None:
        self.minimum, self.on_group = plan.measure.repetitions, on_group
        self.done, self.open_groups, self.finished_steps = 0, groups, 0

    def start(self, label: str) -> None:
        # Every open group needs at least the minimum, and at least one more than the passes so far.
        passes = (self.done - self.finished_steps) // self.open_groups if self.open_groups else 0
        total = self.finished_steps + self.open_groups * max(self.minimum, passes + 1)
        self.on_group(self.done, max(total, self.done + 1), label)
        self.done += 1

    def finish_group(self, repetitions_used: int) -> None:
        self.open_groups -= 1
        self.finished_steps += repetitions_used


def _records(measured: dict[tuple, _Measured], memory: dict[int, dict[str, Any]] | None = None) -> list[Record]:
    """Records in plan order. After Ctrl-C a group may have one repetition fewer than the groups before it;
    the variants of one group always have the same repetitions (they are measured together)."""
    out = []
    for m in measured.values():
        controls = {m.exported.sha256: control_companion(m.control, m.control_info)} if m.control else None
        info = complete_quantization(m.info, m.exported, m.device)  # int8 only: settings, sqnr_db, top1
        out.append(make_record(m.exported, m.device, info, m.model, m.reference or None, m.reference_info,
                               controls, memory=(memory or {}).get(id(m))))
    return out
