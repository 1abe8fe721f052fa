"""One pass of a run: one repetition of every pending group, measured in a fresh worker process.

A process can be fast or slow for its whole life (where its memory landed, which core it was placed on, the
runtime's thread pools and caches), so a run whose repetitions all shared one process promised a re-run more than
it kept. Each pass therefore runs in a new process (started with `spawn`: nothing of the parent's runtimes is
inherited), opens fresh sessions per group and measures them interleaved (`mnbench.measure.loop`); the parent only
collects the measurements. pyperf's worker processes do the same for the same reason.

`MNBENCH_IN_PROCESS=1` measures in the calling process instead (debugging, tests that replace the loop).
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import random
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mnbench.measure import loop as measure
from mnbench.errors import MnbenchError

REFERENCE_WORKLOAD = "__reference__"
IN_PROCESS_ENV = "MNBENCH_IN_PROCESS"


def control_workload(sha256: str) -> str:
    """The key of the control of the file with this sha256 among the measured workloads."""
    return f"__control__{sha256}"


@dataclass(frozen=True)
class ModelFile:
    """What a worker needs of one model: its name in the group, its file and the file's sha256."""

    slug: str
    path: Path
    sha256: str


@dataclass(frozen=True, kw_only=True)
class PassGroup:
    """One group of a pass: its models, measured together on `device` at `threads` and `batch`."""

    device: Any
    index: int
    models: tuple[ModelFile, ...]
    threads: int | None
    batch: int
    streams: int = 1  # OpenVINO's throughput mode (mnbench.backends.openvino_backend)


@dataclass(frozen=True, kw_only=True)
class PassJob:
    """Everything one pass measures; plain data, so that it crosses into the worker process."""

    groups: tuple[PassGroup, ...]  # in order
    precision: str
    options: dict[str, dict[str, Any]]  # device name -> backend options of its model sessions
    with_reference: bool
    with_controls: bool
    repetition: int
    timing: dict[str, Any]  # measure_interleaved keywords for a pair (a larger group gets as much time per model)
    seed: int
    models_dir: Path | None = None


@dataclass
class GroupMeasured:
    """One group's repetition: each workload's measurement and what ran (`info` of each session)."""

    device: str
    index: int
    measured: dict[str, measure.Measurement]
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_pass(job: PassJob, *, on_group: Callable[[str], None] = lambda label: None,
             on_measured: Callable[[GroupMeasured], None] = lambda group: None) -> None:
    """Measure the pass in a fresh worker process (or here, under MNBENCH_IN_PROCESS=1): `on_group(label)` before
    each group, `on_measured(group)` after it, so that Ctrl-C loses only the group being measured. A failure in the
    worker is raised here; Ctrl-C stops the worker and raises KeyboardInterrupt."""
    if os.environ.get(IN_PROCESS_ENV) == "1":
        measure_pass(job, on_group=on_group, on_measured=on_measured)
        return
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    worker = context.Process(target=_worker, args=(job, messages), daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, payload = messages.get(timeout=1.0)
            except queue.Empty:
                if not worker.is_alive():
                    raise MnbenchError(f"the measuring process ended without a result (exit code {worker.exitcode})")
                continue
            if kind == "group":
                on_group(payload)
            elif kind == "measured":
                on_measured(payload)
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=5)


def _worker(job: PassJob, messages) -> None:
    parent = os.getppid()

    def on_group(label: str) -> None:
        if os.getppid() != parent:  # the run was killed: measuring on would only disturb what runs next
            raise SystemExit(1)
        messages.put(("group", label))

    try:
        measure_pass(job, on_group=on_group,
                     on_measured=lambda group: messages.put(("measured", group)))
        messages.put(("done", None))
    except KeyboardInterrupt:
        pass  # the parent got the same Ctrl-C and keeps what was measured before it
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        messages.put(("error", exc if _picklable(exc) else MnbenchError(f"{type(exc).__name__}: {exc}")))


def _picklable(exc: BaseException) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return True
    except Exception:  # noqa: BLE001
        return False


def measure_pass(job: PassJob, *, on_group: Callable[[str], None] = lambda label: None,
                 on_measured: Callable[[GroupMeasured], None] = lambda group: None) -> None:
    """The pass itself: per device, the reference session (when asked) for all its groups, then each group with
    fresh sessions."""
    from mnbench.measure.reference import open_reference

    devices = list({group.device.name: group.device for group in job.groups}.values())
    for device in devices:
        with ExitStack() as device_stack:
            references: dict[int | None, Any] = {}  # one reference session per thread count, for all its groups
            for group in job.groups:
                if group.device.name != device.name:
                    continue
                if job.with_reference and group.threads not in references:
                    references[group.threads] = device_stack.enter_context(open_reference(
                        device, precision=job.precision, threads=group.threads, models_dir=job.models_dir))
                on_group(f"{group.models[0].slug}{_point_label(group)} on {device.name}")
                on_measured(_measure_group(job, device, group, references.get(group.threads)))


def _point_label(group: PassGroup) -> str:
    threads = f" at {group.threads} thread{'s' if group.threads != 1 else ''}" if group.threads else ""
    return threads + (f", {group.streams} streams" if group.streams > 1 else "")


def _scaled(timing: dict[str, Any], models: int) -> dict[str, Any]:
    """A repetition's time is set for a pair; a group of more models gets as much time per model."""
    scale = max(1.0, models / 2)
    return timing | {key: timing[key] * scale for key in ("min_time_s", "max_time_s") if key in timing}


def _measure_group(job: PassJob, device, group: PassGroup, reference) -> GroupMeasured:
    from mnbench.backends import open_session
    from mnbench.measure.control import open_control

    models = group.models
    openers = {m.slug: functools.partial(open_session, device, m.path, batch=group.batch, precision=job.precision,
                                         threads=group.threads, models_dir=job.models_dir,
                                         options=job.options.get(device.name, {})
                                         | ({"streams": group.streams} if group.streams > 1 else {}))
               for m in models}
    if job.with_controls:
        openers |= {control_workload(m.sha256): functools.partial(
            open_control, device, m.path, batch=group.batch, precision=job.precision, threads=group.threads,
            models_dir=job.models_dir) for m in models}
    # Opened in a seeded shuffled order per repetition: which session is created and allocated first must not be a
    # constant difference between the models of a group, or between a model and its control.
    names = list(openers)
    random.Random(job.seed + job.repetition).shuffle(names)
    with ExitStack() as stack:
        opened = {name: stack.enter_context(openers[name]()) for name in names}
        workloads = {name: session.infer for name, session in opened.items()}
        infos = {name: dict(session.info) for name, session in opened.items()}
        if reference is not None:
            workloads[REFERENCE_WORKLOAD] = reference.infer
            infos[REFERENCE_WORKLOAD] = dict(reference.info)
        measured = measure.measure_interleaved(workloads, **_scaled(job.timing, len(models)))
    return GroupMeasured(device=device.name, index=group.index, measured=measured, infos=infos)
