"""`mnbench run`: export (cached), open one runtime session per model, measure, and build the result document.

The variants of one arch are measured in interleaved rounds together with the machine-speed reference workload and
each model's frozen control (`mnbench.control`), so the realized speedup (and the regression gate's normalisation) is
robust to machine drift.
"""

from __future__ import annotations

import itertools
import socket
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mnbench import results
from mnbench.config import ModelConfig, check_choice, PRECISIONS
from mnbench.errors import MnbenchError
from mnbench.reference import REFERENCE_NAME, open_reference
from mnbench.stats import summarize, throughput_ips
from mnbench.control import CONTROLS_KEY, open_control, control_fields

REFERENCE_WORKLOAD = "__reference__"  # the reference's key among the measured workloads
CONTROL_WORKLOAD = "__control__"  # prefix of the controls' keys: `__control__<sha256>`


@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    min_time_s: float = 2.0
    max_time_s: float = 10.0
    warmup_s: float = 0.5
    target_rel_ci: float = 0.01
    round_s: float = 0.1
    # Enough rounds that the between-round noise (what `mnbench check` compares against) is estimated, not guessed.
    min_rounds: int = 12
    seed: int = 0


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

    def __post_init__(self) -> None:
        check_choice("precision", self.precision, PRECISIONS)
        if self.threads is not None and self.threads <= 0:
            raise MnbenchError(f"threads must be a positive integer, got {self.threads}")
        # Validate every model config up front: a bad width fails before minutes of measuring.
        self.configs()

    def configs(self) -> list[list[ModelConfig]]:
        """One group per (arch, width, resolution): the variants measured together."""
        return [
            [ModelConfig(arch=a, variant=v, width=w, resolution=r, batch=self.batch) for v in self.variants]
            for a, w, r in itertools.product(self.archs, self.widths, self.resolutions)
        ]


def default_output_path(reports_dir: Path | None = None, suffix: str = "") -> Path:
    from mnbench.paths import runs_dir

    stamp = results.utc_now_iso().replace(":", "").replace("-", "")
    return runs_dir(reports_dir) / f"{stamp}-{socket.gethostname()}{suffix}.json"


def make_record(exported, device, session_info: dict, measurement, reference=None,
                reference_info: dict | None = None, controls: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One model's result record; `reference` (a Measurement from the same rounds) and `reference_info` (its
    session's info) add the machine-speed reference; `controls` (`control_fields` by file sha256), the controls."""
    config = exported.config
    samples = [float(s) for s in measurement.samples_ms]
    record = {
        "arch": config.arch,
        "variant": config.variant,
        "width": config.width,
        "resolution": config.resolution,
        "batch": config.batch,
        "device": device.name,
        "runtime": session_info["runtime"],
        "runtime_version": session_info.get("runtime_version"),
        "precision": session_info["precision"],
        "requested_precision": session_info.get("requested_precision"),
        "threads": int(session_info["threads"]),
        "providers": session_info.get("providers"),
        "settings": session_info.get("settings", {}),
        "macs": int(exported.macs_per_image),  # per image; latency and throughput carry the batch
        "params": int(exported.params),
        "latency_ms": summarize(samples),
        "n": len(samples),
        "samples_ms": samples,
        "round_sizes": list(measurement.round_sizes),
        "throughput_ips": throughput_ips(samples, config.batch),
        "model_sha256": exported.sha256,
        "model_path": str(exported.path),
        "model": config.as_dict() | {"slug": config.slug, "opset": exported.opset},
    }
    if reference is not None:
        record["reference"] = reference_fields(reference, reference_info)
    if controls:
        record[CONTROLS_KEY] = controls
    return record


def reference_fields(reference, reference_info: dict | None = None) -> dict[str, Any]:
    """The record's "reference" entry: the reference's name, how it ran, and its samples in the record's rounds."""
    info = reference_info or {}
    return {"name": REFERENCE_NAME, "runtime": info.get("runtime"), "precision": info.get("precision"),
            "threads": info.get("threads"), "samples_ms": [float(s) for s in reference.samples_ms],
            "round_sizes": list(reference.round_sizes)}


def run_plan(plan: RunPlan, *, models_dir: Path | None = None, reports_dir: Path | None = None,
             on_status: Callable[[str], None] = lambda _: None,
             on_round: Callable[[float, float], None] | None = None,
             on_group: Callable[[int, int, str], None] = lambda i, n, label: None) -> dict[str, Any]:
    """Measure every model group on every device and return the result document (not yet written).

    On KeyboardInterrupt the completed records are attached to the exception as `partial_result`, so the caller can
    keep them whole.
    """
    from mnbench.machine import machine_info

    doc = results.new_result(machine_info())
    groups = plan.configs()
    total = len(groups) * len(plan.devices)
    try:
        for device in plan.devices:
            if plan.with_peak:
                doc.setdefault("peaks", {})[device.name] = _device_peak(device, plan, reports_dir, on_status)
            with ExitStack() as device_stack:
                reference = None
                if plan.with_reference:  # one reference session per device, measured in every group's rounds
                    reference = device_stack.enter_context(open_reference(
                        device, precision=plan.precision, threads=plan.threads, models_dir=models_dir))
                for configs in groups:
                    label = f"{configs[0].arch} w{configs[0].width:g} r{configs[0].resolution} on {device.name}"
                    on_group(len(doc["records"]) // len(plan.variants), total, label)
                    doc["records"] += _measure_group(plan, device, configs, reference, models_dir, on_round)
    except KeyboardInterrupt as exc:
        exc.partial_result = doc if doc["records"] else None  # type: ignore[attr-defined]
        raise
    return doc


def _measure_group(plan: RunPlan, device, configs: list[ModelConfig], reference, models_dir: Path | None,
                   on_round) -> list[dict[str, Any]]:
    """The records of one group's variants on `device`, measured interleaved with `reference` (None: without)."""
    from mnbench.backends import open_session
    from mnbench.export import export_model
    from mnbench.measure import measure_interleaved

    exported = [export_model(c, models_dir=models_dir, progress=False) for c in configs]
    with ExitStack() as stack:
        sessions = [stack.enter_context(open_session(device, e.path, batch=plan.batch, precision=plan.precision,
                                                     threads=plan.threads, models_dir=models_dir))
                    for e in exported]
        workloads = {e.config.variant: s.infer for e, s in zip(exported, sessions)}
        controls = {}
        if plan.with_controls:
            controls = {e.sha256: stack.enter_context(open_control(device, e.path, batch=plan.batch,
                                                             precision=plan.precision, threads=plan.threads,
                                                             models_dir=models_dir))
                     for e in exported}
            workloads |= {CONTROL_WORKLOAD + sha: control.infer for sha, control in controls.items()}
        if reference is not None:
            workloads[REFERENCE_WORKLOAD] = reference.infer
        m = plan.measure
        measured = measure_interleaved(workloads, min_time_s=m.min_time_s, max_time_s=m.max_time_s,
                                       warmup_s=m.warmup_s, target_rel_ci=m.target_rel_ci, round_s=m.round_s,
                                       seed=m.seed, on_round=on_round, min_rounds=m.min_rounds)
        return [make_record(e, device, s.info, measured[e.config.variant], measured.get(REFERENCE_WORKLOAD),
                            reference.info if reference is not None else None,
                            {e.sha256: control_fields(measured[CONTROL_WORKLOAD + e.sha256], controls[e.sha256].info)}
                            if e.sha256 in controls else None)
                for e, s in zip(exported, sessions)]


def _device_peak(device, plan: RunPlan, reports_dir: Path | None, on_status) -> dict[str, Any]:
    """The device's attainable GMAC/s, measured once per machine and kept under reports/peaks/."""
    from mnbench.peak import load_peak, measure_peak, save_peak

    peak = load_peak(device, precision=plan.precision, threads=plan.threads, reports_dir=reports_dir)
    if peak is None:
        on_status(f"measuring the peak GMAC/s of {device.name} (once per machine)")
        peak = measure_peak(device, threads=plan.threads, precision=plan.precision)
        save_peak(peak, reports_dir=reports_dir)
    return peak
