"""`mnbench run`: export (cached), measure every model group in repeated, independent measurements, build the result.

A repetition measures every group once on every device: fresh sessions (models, their controls, the machine-speed
reference), its own warm-up, its own interleaved rounds. Repetitions are the outer loop, so each group's
repetitions are spread over the whole run: a session that is slow for its whole life, or a minute in which the
machine is busy, becomes between-repetition variance instead of a bias (`mnbench.repetitions`).
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import socket
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from mnbench import host_history, machine_state, measure, results, speedup_history, stability
from mnbench.config import PRECISIONS, ModelConfig, check_choice
from mnbench.control import open_control
from mnbench.devices import TORCH
from mnbench.errors import MnbenchError
from mnbench.int8_accuracy import complete_quantization
from mnbench.measure import Measurement
from mnbench.quantize import for_precision
from mnbench.recording import REFERENCE_WORKLOAD, control_companion, control_workload, make_record
from mnbench.reference import open_reference
from mnbench.results import Record



@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    """How long each group is measured. Times are per group, over all its repetitions."""

    min_time_s: float = 3.0
    max_time_s: float = 9.0
    warmup_s: float = 0.1  # per workload and repetition; each block is settled as well (mnbench.measure)
    target_rel_ci: float = 0.01  # for the group's median over all repetitions
    round_s: float = 0.1
    # Rounds per repetition: enough that the between-round noise (what `mnbench check` compares) is estimated.
    min_rounds: int = 5
    repetitions: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise MnbenchError(f"repetitions must be a positive integer, got {self.repetitions}")

    def for_repetition(self, index: int) -> dict[str, Any]:
        """`measure_interleaved` keywords for one repetition: its share of the time, and of the precision (a median
        known to ±x in each of R repetitions is known to about ±x/√R over all)."""
        r = self.repetitions
        return {"min_time_s": self.min_time_s / r, "max_time_s": self.max_time_s / r, "warmup_s": self.warmup_s,
                "target_rel_ci": self.target_rel_ci * math.sqrt(r), "round_s": self.round_s,
                "min_rounds": self.min_rounds, "seed": self.seed + index}


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    archs: list[str]
    devices: list[Any]  # mnbench.devices.DeviceInfo, already resolved (available)
    variants: tuple[str, ...] = ("separable", "standard")
    widths: list[float] = field(default_factory=lambda: [1.0])
    resolutions: list[int] = field(default_factory=lambda: [224])
    batch: int = 1
    precision: str = "fp32"
    threads: int | None = None
    measure: MeasureSettings = MeasureSettings()
    with_reference: bool = True
    with_controls: bool = True  # each model's own file again, with pinned settings (what `mnbench check` divides by)
    with_peak: bool = True
    # Settings of the torch devices' sessions (`cuda_graph`, `channels_last`: mnbench.backends.torch_backend),
    # passed to their model sessions only; controls and the reference stay eager and contiguous (pinned).
    torch_options: dict[str, Any] = field(default_factory=dict)
    # Explicit model groups, each measured in the same rounds (`mnbench ablate`: a published net and its ablated
    # nets); when given, they replace archs x widths x resolutions x variants.
    groups: tuple[tuple[ModelConfig, ...], ...] = ()
    # The user's own ONNX files (mnbench.user_models.UserModel), measured as one more group, after the above.
    user_models: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        check_choice("precision", self.precision, PRECISIONS)
        if self.torch_options and not any(self.options_for(d) for d in self.devices):
            raise MnbenchError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(self.torch_options))} "
                               "apply only to the torch devices "
                               f"(torch, torch:cuda); --device gave {', '.join(d.name for d in self.devices)}")
        if self.threads is not None and self.threads <= 0:
            raise MnbenchError(f"threads must be a positive integer, got {self.threads}")
        # Validate every model config up front: a bad width fails before minutes of measuring.
        self.configs()

    def configs(self) -> list[list[ModelConfig]]:
        """One group per (arch, width, resolution): the variants measured together (or `groups`, as given)."""
        if self.groups:
            return [list(group) for group in self.groups]
        return [
            [ModelConfig(arch=a, variant=v, width=w, resolution=r, batch=self.batch) for v in self.variants]
            for a, w, r in itertools.product(self.archs, self.widths, self.resolutions)
        ]

    def options_for(self, device) -> dict[str, Any]:
        """The backend options a model session on `device` gets (only torch devices take any)."""
        return dict(self.torch_options) if getattr(device, "runtime", None) == TORCH else {}

    def steps(self) -> int:
        """Group measurements in the whole run (for progress)."""
        return (len(self.configs()) + bool(self.user_models)) * len(self.devices) * self.measure.repetitions


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


def default_output_path(reports_dir: Path | None = None, suffix: str = "") -> Path:
    from mnbench.paths import runs_dir

    stamp = results.utc_now_iso().replace(":", "").replace("-", "")
    return runs_dir(reports_dir) / f"{stamp}-{socket.gethostname()}{suffix}.json"


def run_plan(plan: RunPlan, *, models_dir: Path | None = None, reports_dir: Path | None = None,
             on_status: Callable[[str], None] = lambda _: None,
             on_round: Callable[[float, float], None] | None = None,
             on_group: Callable[[int, int, str], None] = lambda i, n, label: None,
             on_record: Callable[[Record], None] = lambda _: None) -> dict[str, Any]:
    """Measure every model group on every device, `plan.measure.repetitions` times, and return the result
    document (not yet written). Ctrl-C raises `RunInterrupted` with the records measured so far."""
    from mnbench.export import export_model
    from mnbench.machine import machine_info

    doc = results.new_result(machine_info(), settings={"measure": asdict(plan.measure)}
                             | ({"torch_options": dict(plan.torch_options)} if plan.torch_options else {}))
    if plan.with_peak:
        peaks = {d.name: _device_peak(d, plan, reports_dir, on_status) for d in plan.devices}
        doc["peaks"] = {name: peak for name, peak in peaks.items() if peak is not None}
    # int8: each fp32 export quantized (cached beside it), and that file measured (mnbench.quantize)
    exported = [[for_precision(export_model(c, models_dir=models_dir, progress=False), plan.precision) for c in group]
                for group in plan.configs()]
    exported += [list(plan.user_models)] if plan.user_models else []
    measured: dict[tuple[str, int, str], _Measured] = {}
    states: list[dict[str, Any]] = []
    step = 0
    try:
        for repetition in range(plan.measure.repetitions):
            before = machine_state.snapshot()
            for device in plan.devices:
                with ExitStack() as device_stack:
                    reference = None
                    if plan.with_reference:  # fresh per repetition and device, measured in every group's rounds
                        reference = device_stack.enter_context(open_reference(
                            device, precision=plan.precision, threads=plan.threads, models_dir=models_dir))
                    for index, group in enumerate(exported):
                        on_group(step, plan.steps(), f"{_label(group[0].config, device)} "
                                                     f"(repetition {repetition + 1}/{plan.measure.repetitions})")
                        _measure_group(plan, device, group, reference, repetition, models_dir, on_round,
                                       into={(device.name, index, e.config.slug): e for e in group}, kept=measured)
                        step += 1
            states.append(machine_state.between(before, machine_state.snapshot()))
    except KeyboardInterrupt:
        doc["records"] = [r.to_json() for r in _records(measured)]
        doc["machine_state"] = stability.summarize_states(states)
        raise RunInterrupted(doc if doc["records"] else None) from None
    for record in _records(measured):
        on_record(record)
        doc["records"].append(record.to_json())
    doc["machine_state"] = stability.summarize_states(states)
    doc["machine_state"]["reference_vs_host_best"] = _note_reference_speed(doc, reports_dir)
    speedup_history.attach_priors(doc, reports_dir)
    return doc


def _note_reference_speed(doc: dict[str, Any], reports_dir: Path | None) -> dict[str, Any]:
    """Per device, this run's reference speed against the best this host has recorded (and record it)."""
    out = {}
    for device, p50s in stability.reference_repetition_p50s(doc["records"]).items():
        record = next(r for r in doc["records"] if r["device"] == device and r.get("reference"))
        key = {"hostname": doc["machine"].get("hostname"), "cpu_model": doc["machine"].get("cpu_model"),
               "device": device, "runtime": record["reference"].get("runtime"),
               "runtime_version": record.get("runtime_version"), "precision": record["reference"].get("precision"),
               "threads": record["reference"].get("threads"), "reference": record["reference"].get("name")}
        out[device] = host_history.note_reference(key, float(sorted(p50s)[len(p50s) // 2]), reports_dir=reports_dir)
    return out


def _label(config: ModelConfig, device) -> str:
    return f"{config.arch} w{config.width:g} r{config.resolution} on {device.name}"


def _measure_group(plan: RunPlan, device, exported: list, reference, repetition: int, models_dir: Path | None,
                   on_round, *, into: dict[tuple, Any], kept: dict[tuple, _Measured]) -> None:
    """One repetition of one group on `device` (fresh sessions), interleaved with `reference` (None: without);
    appends each model's measurement to its entry in `kept`."""
    from mnbench.backends import open_session

    # Opened in a shuffled order per repetition (seeded): which session is created and allocated first must not be a
    # constant difference between the variants of a pair, or between a model and its control.
    openers = {e.config.slug: functools.partial(open_session, device, e.path, batch=plan.batch,
                                                precision=plan.precision, threads=plan.threads,
                                                models_dir=models_dir, options=plan.options_for(device))
               for e in exported}  # slug: unique in a group
    if plan.with_controls:
        openers |= {control_workload(e.sha256): functools.partial(
            open_control, device, e.path, batch=plan.batch, precision=plan.precision, threads=plan.threads,
            models_dir=models_dir) for e in exported}
    names = list(openers)
    random.Random(plan.measure.seed + repetition).shuffle(names)
    with ExitStack() as stack:
        opened = {name: stack.enter_context(openers[name]()) for name in names}
        sessions = [opened[e.config.slug] for e in exported]
        controls = {e.sha256: opened[control_workload(e.sha256)] for e in exported if plan.with_controls}
        workloads = {name: session.infer for name, session in opened.items()}
        if reference is not None:
            workloads[REFERENCE_WORKLOAD] = reference.infer
        measured = measure.measure_interleaved(workloads, on_round=on_round,
                                               **plan.measure.for_repetition(repetition))
    for key, e in into.items():
        session = sessions[exported.index(e)]
        entry = kept.setdefault(key, _Measured(exported=e, device=device, info=session.info))
        entry.model.append(measured[e.config.slug])
        if reference is not None:
            entry.reference.append(measured[REFERENCE_WORKLOAD])
            entry.reference_info = reference.info
        if e.sha256 in controls:
            entry.control.append(measured[control_workload(e.sha256)])
            entry.control_info = controls[e.sha256].info


def _records(measured: dict[tuple, _Measured]) -> list[Record]:
    """Records in plan order. After Ctrl-C a group may have one repetition fewer than the groups before it;
    the variants of one group always have the same repetitions (they are measured together)."""
    out = []
    for m in measured.values():
        controls = {m.exported.sha256: control_companion(m.control, m.control_info)} if m.control else None
        info = complete_quantization(m.info, m.exported, m.device)  # int8 only: settings, sqnr_db, top1
        out.append(make_record(m.exported, m.device, info, m.model, m.reference or None, m.reference_info,
                               controls))
    return out


def _device_peak(device, plan: RunPlan, reports_dir: Path | None, on_status) -> dict[str, Any] | None:
    """The device's attainable GMAC/s, measured once per machine and kept under reports/peaks/; None at int8,
    whose peak workloads are not quantized yet (measured in float they would be no int8 ceiling, and would
    overwrite the stored fp32 peak)."""
    from mnbench.peak import load_peak, measure_peak, save_peak

    if plan.precision == "int8":
        on_status(f"no int8 peak for {device.name}: the peak workloads run in float only")
        return None

    peak = load_peak(device, precision=plan.precision, threads=plan.threads, reports_dir=reports_dir)
    if peak is None:
        on_status(f"measuring the peak GMAC/s of {device.name} (once per machine)")
        peak = measure_peak(device, threads=plan.threads, precision=plan.precision)
        save_peak(peak, reports_dir=reports_dir)
    return peak
