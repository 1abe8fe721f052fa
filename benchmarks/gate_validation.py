"""Does `mnbench check` keep its error rates on this machine? A/A false alarms, detection of injected slowdowns, and
the wall time of one check. Prints a markdown report and writes it to benchmarks/results/gate_validation.md.

1. A fresh baseline of one model (v1 width 0.25 at 96 px on `cpu` by default), measured by `mnbench run`'s own
   runner with its defaults (3 repetitions with fresh sessions; model, its control and the machine-speed reference
   interleaved in each), unless --baseline-time sets its min and max time.
2. A/A: `--checks` full checks of the unchanged setup (`check_baseline`: export from cache, open the session,
   measure until precise or `--max-time`, an undecided model as long again). Target: at most 1 false alarm in 20.
3. Injected by scaling the baseline: every latency number × 1/1.1 and × 1/1.2 (reference and controls untouched;
   the factor is recorded, see `results.with_latencies_scaled`), so the same A/A measurements now read as 10 % and
   20 % slower. Each check's first measurement is the first look, and a model it leaves undecided is "extended" by
   the next check's first measurement, as the gate would extend it. Targets:
   10 % not passed in >= 90 % of checks (regression or inconclusive: a change at the threshold itself can only be
   "not passed", its CI straddles it), 20 % called a regression in 100 % (issue 10).
   Injected into today's model, `--injected-checks` full checks each: every call of the model's session made 10 %
   and 20 % slower by a busy wait proportional to the call's own time (control and reference untouched). Same
   targets.
4. Real slowdowns, `--real-checks` full checks each, with the true size measured in paired rounds beside it:
   ONNX Runtime graph optimisations off (gross: it loses the blocked NCHWc layout), and ORT's thread spinning
   off (subtle: each call wakes its worker thread). Both change the benchmark's session options, which the
   control and the reference do not share (their settings are pinned), so they do not move with them.
5. One `mnbench check` command line end to end (interpreter start, imports, export cache, measuring): wall time.

    .venv/bin/python benchmarks/gate_validation.py                          # ~10 min on 2 shared cores
    .venv/bin/python benchmarks/gate_validation.py --checks 5 --real-checks 2 --max-time 10   # a quick look
    .venv/bin/python benchmarks/gate_validation.py --arch v2 --width 1 --resolution 224 --checks 10 \
        --output benchmarks/results/gate_validation_v2.md          # the large model of the README's flow
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnbench import atomic, results
from mnbench.backends import open_session
from mnbench.config import ModelConfig
from mnbench.devices.registry import resolve_device
from mnbench.artifacts.export import export_model
from mnbench.gate import compare
from mnbench.gate.compare import (IMPROVEMENT, INCONCLUSIVE, PASS, REGRESSION, GateReport, compare_results,
                                  merge_extension)
from mnbench.gate.remeasure import GateSettings, check_baseline
from mnbench.host.machine import machine_info
from mnbench.measure.loop import measure_interleaved
from mnbench.results import LEGACY_CONTROLS_KEY
from mnbench.run.plan import MeasureSettings, RunPlan, run_plan

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "gate_validation.md"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checks", type=int, default=20, help="A/A checks (also the scaled-injection sample)")
    p.add_argument("--real-checks", type=int, default=3, help="checks per real slowdown")
    p.add_argument("--injected-checks", type=int, default=10,
                   help="checks per slowdown injected into today's model (10 %% and 20 %%)")
    p.add_argument("--max-time", type=float, default=20.0,
                   help="gate --max-time per model and measurement (s) [default: the command's]")
    p.add_argument("--baseline-time", type=float, default=None,
                   help="seconds the baseline is measured [default: what `mnbench run` measures by default]")
    p.add_argument("--threshold", type=float, default=0.10)
    p.add_argument("--arch", default="v1")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--resolution", type=int, default=96)
    p.add_argument("--threads", type=int, default=1, help="[default: 1, as `mnbench run`]")
    p.add_argument("--models-dir", type=Path, default=None, help="[default: a temporary folder]")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--save-measurements", type=Path, default=None,
                   help="also write the baseline and every A/A result document here (JSON), to re-judge offline")
    return p.parse_args()


def conditions() -> str:
    load1, load5, _ = os.getloadavg()
    others = subprocess.run(["ps", "-eo", "stat=,pcpu=,comm="], capture_output=True, text=True).stdout.splitlines()
    busy = sum(1 for line in others if line.split() and line.split()[0].startswith("R"))
    return f"load average {load1:.1f} (5 min {load5:.1f}), {busy} running processes"


@contextlib.contextmanager
def ort_sessions_changed(change):
    """Every ONNX Runtime session opened inside gets `change(options)` applied to its SessionOptions."""
    from mnbench.backends import onnxruntime_backend

    original = onnxruntime_backend.ort_session_options

    def changed(*args, **kwargs):
        options = original(*args, **kwargs)
        change(options)
        return options

    onnxruntime_backend.ort_session_options = changed
    try:
        yield
    finally:
        onnxruntime_backend.ort_session_options = original


@contextlib.contextmanager
def absolute_times_only():
    """Inside, the gate never divides by the reference or the control."""
    original, original_now = compare.use_normalisation, compare.compare_with_control_now
    compare.use_normalisation = lambda *args: False
    compare.compare_with_control_now = lambda *args: None
    try:
        yield
    finally:
        compare.use_normalisation, compare.compare_with_control_now = original, original_now


@contextlib.contextmanager
def as_two_runs():
    """Inside, the gate differences the baseline's and today's model/control ratios (the method before it measured
    the change against today's control alone)."""
    original = compare.compare_with_control_now
    compare.compare_with_control_now = lambda *args: None
    try:
        yield
    finally:
        compare.compare_with_control_now = original


def graph_optimisations_off(options) -> None:
    import onnxruntime as ort

    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def thread_spinning_off(options) -> None:
    # ORT's intra-op workers otherwise spin between calls; without it each call pays for waking them up.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")


def slowed_by(infer, fraction: float):
    """`infer` made `fraction` slower on every call: a busy wait for that share of the call's own time, so the
    slowdown stays proportional however fast the machine runs at the moment."""
    def slow():
        start = time.perf_counter()
        out = infer()
        until = start + (time.perf_counter() - start) * (1.0 + fraction)
        while time.perf_counter() < until:
            pass
        return out
    return slow


@contextlib.contextmanager
def first_measurements():
    """Inside, every `check_baseline` measurement's records are appended to the yielded list, in order: a check's
    first measurement, then its extension if it had one."""
    from mnbench.gate import remeasure

    seen, original = [], remeasure.remeasure_group

    def recording(*args, **kwargs):
        records = original(*args, **kwargs)
        seen.append(records)
        return records

    remeasure.remeasure_group = recording
    try:
        yield seen
    finally:
        remeasure.remeasure_group = original


@contextlib.contextmanager
def models_slowed(fraction: float):
    """Inside, `check_baseline` measures today's model `fraction` slower on every call; its control and the
    reference run as they are (a real regression of the model, not of the machine)."""
    from mnbench.gate import remeasure

    original = remeasure._session_opener

    def opener(*args, **kwargs):
        open_workloads = original(*args, **kwargs)

        @contextlib.contextmanager
        def slowed():
            with open_workloads() as workloads:
                yield {name: slowed_by(f, fraction) if name.startswith(remeasure.MODEL) else f
                       for name, f in workloads.items()}
        return slowed

    remeasure._session_opener = opener
    try:
        yield
    finally:
        remeasure._session_opener = original


def paired_ratio(device, path, threads, change, seconds=6.0) -> float:
    """Median over interleaved rounds of p50(changed) / p50(normal): the true size of a real slowdown here."""
    with open_session(device, path, batch=1, threads=threads) as normal:
        with ort_sessions_changed(change):
            slow = open_session(device, path, batch=1, threads=threads)
        with slow:
            m = measure_interleaved({"normal": normal.infer, "slow": slow.infer}, min_time_s=seconds,
                                    max_time_s=seconds, round_s=0.05, target_rel_ci=1.0)
    ratios = [np.median(s) / np.median(n) for s, n in zip(m["slow"].rounds(), m["normal"].rounds())]
    return float(np.median(ratios))


def judged_with_extension(baseline: dict, first_doc: dict, later_doc: dict, threshold: float) -> GateReport:
    """What `check_baseline` decides when `first_doc` was its first measurement and `later_doc` its extension:
    undecided models are judged on both measurements' repetitions together."""
    first = compare_results(baseline, first_doc, threshold, mode="remeasure")
    if not any(m.measure_more for m in first.models):
        return first
    whole = dict(first_doc, records=[results.Record.from_json(a).extended_by(results.Record.from_json(b)).to_json()
                                     for a, b in zip(first_doc["records"], later_doc["records"])])
    return merge_extension(first, compare_results(baseline, whole, threshold, mode="remeasure"))


def _without_controls(doc: dict) -> dict:
    out = json.loads(json.dumps(doc))
    for record in out["records"]:
        record.pop("controls", None)
        record.pop(LEGACY_CONTROLS_KEY, None)
    return out


def tally(verdicts: list[str]) -> dict[str, int]:
    return {v: verdicts.count(v) for v in (REGRESSION, INCONCLUSIVE, PASS, IMPROVEMENT)}


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    models_dir = args.models_dir or Path(tempfile.mkdtemp(prefix="mnbench-gate-"))
    before = conditions()
    info = machine_info()
    device = resolve_device("cpu")
    config = ModelConfig(arch=args.arch, width=args.width, resolution=args.resolution)
    exported = export_model(config, models_dir=models_dir, progress=False)
    settings = GateSettings(threshold=args.threshold, max_time_s=args.max_time)
    measure = MeasureSettings() if args.baseline_time is None else MeasureSettings(max_time_s=args.baseline_time)
    print(f"[{conditions()}] baseline: {config.slug}, at least {measure.repetitions} repetitions, "
          f"at most {measure.max_time_s:.0f} s", file=sys.stderr)
    # As `mnbench run --for-check` records a baseline: the controls and the reference in the models' rounds.
    plan = RunPlan(archs=[args.arch], devices=[device], variants=("separable",), widths=[args.width],
                   resolutions=[args.resolution], threads=args.threads, measure=measure, with_peak=False,
                   with_reference=True, with_controls=True)
    baseline = run_plan(plan, models_dir=models_dir, reports_dir=models_dir / "reports")
    baseline_path = models_dir / "baseline.json"
    results.write_result(baseline, baseline_path)

    # A/A: full checks, each as `mnbench check --baseline` runs it (in this process).
    # Each check's first measurement alone (`first_docs`) is what the offline judgments below start from: the
    # check itself may have extended it, and a first look must be as long as the gate's.
    aa_reports, aa_docs, first_docs, walls = [], [], [], []
    for i in range(args.checks):
        t0 = time.monotonic()
        with first_measurements() as measured:
            report, doc = check_baseline(baseline, dataclasses.replace(settings, seed=100 + i),
                                         models_dir=models_dir)
        walls.append(time.monotonic() - t0)
        aa_reports.append(report)
        aa_docs.append(doc)
        first_docs.append(dict(doc, records=measured[0]))
        m0 = report.models[0]
        shift = "–" if m0.machine_shift is None else f"{m0.machine_shift:+.1%}"
        print(f"[{conditions()}] A/A {i + 1}/{args.checks}: {m0.verdict} {m0.change:+.1%} "
              f"[{m0.ci_low:+.1%}, {m0.ci_high:+.1%}] normalised {m0.normalised} by {m0.normaliser}, shift {shift}, "
              f"{walls[-1]:.1f} s", file=sys.stderr)

    if args.save_measurements is not None:
        atomic.write_text(args.save_measurements,
                          json.dumps({"baseline": baseline, "aa": aa_docs, "first": first_docs}))

    rows = []
    aa = [r.models[0] for r in aa_reports]
    rows.append(("A/A: unchanged", len(aa), tally([m.verdict for m in aa]),
                 f"false alarms {sum(m.verdict == REGRESSION for m in aa)}/{len(aa)}; CI step red (regression or "
                 f"inconclusive) {sum(m.verdict in (REGRESSION, INCONCLUSIVE) for m in aa)}/{len(aa)}", "≤ 1 in 20"))
    # The same measurements judged by the small reference alone (as before controls), and on absolute times alone.
    without_controls = _without_controls(baseline)
    by_reference = [judged_with_extension(without_controls, doc, first_docs[(i + 1) % len(first_docs)],
                                          args.threshold).models[0] for i, doc in enumerate(first_docs)]
    rows.append(("A/A judged by the small reference (controls ignored)", len(by_reference),
                 tally([m.verdict for m in by_reference]),
                 f"false alarms {sum(m.verdict == REGRESSION for m in by_reference)}/{len(by_reference)}",
                 "for comparison"))
    with as_two_runs():
        two_runs = [judged_with_extension(baseline, doc, first_docs[(i + 1) % len(first_docs)],
                                          args.threshold).models[0] for i, doc in enumerate(first_docs)]
    rows.append(("A/A judged as two runs (baseline's model/control ratio subtracted)", len(two_runs),
                 tally([m.verdict for m in two_runs]),
                 f"false alarms {sum(m.verdict == REGRESSION for m in two_runs)}/{len(two_runs)}, median CI half-width "
                 f"{statistics.median((m.ci_high - m.ci_low) / 2 for m in two_runs):.1%}", "for comparison"))
    with absolute_times_only():
        raw = [judged_with_extension(baseline, doc, first_docs[(i + 1) % len(first_docs)],
                                     args.threshold).models[0] for i, doc in enumerate(first_docs)]
    rows.append(("A/A judged on absolute times (reference ignored)", len(raw), tally([m.verdict for m in raw]),
                 f"false alarms {sum(m.verdict == REGRESSION for m in raw)}/{len(raw)}", "for comparison"))

    # Injected by scaling the baseline; the next A/A measurement plays the extension.
    for slowdown, target in ((1.10, "≥ 90 % not passed"), (1.20, "100 % regression")):
        faster = results.with_latencies_scaled(baseline, 1 / slowdown)
        verdicts = []
        for i, doc in enumerate(first_docs):
            later = first_docs[(i + 1) % len(first_docs)]
            verdicts.append(judged_with_extension(faster, doc, later, args.threshold).models[0].verdict)
        counts = tally(verdicts)
        n = len(verdicts)
        rows.append((f"baseline scaled: now {slowdown - 1:+.0%}", n, counts,
                     f"regression {counts[REGRESSION]}/{n}, not passed {counts[REGRESSION] + counts[INCONCLUSIVE]}/{n}",
                     target))

    def full_checks(name: str, changed, count: int, first_seed: int) -> list[str]:
        """`count` full checks against the baseline with `changed()` in force; their verdicts."""
        verdicts = []
        for i in range(count):
            t0 = time.monotonic()
            with changed():
                report, _ = check_baseline(baseline, dataclasses.replace(settings, seed=first_seed + i),
                                           models_dir=models_dir)
            walls.append(time.monotonic() - t0)
            m0 = report.models[0]
            verdicts.append(m0.verdict)
            print(f"[{conditions()}] {name} {i + 1}/{count}: {m0.verdict} {m0.change:+.1%} "
                  f"[{m0.ci_low:+.1%}, {m0.ci_high:+.1%}], {walls[-1]:.1f} s", file=sys.stderr)
        return verdicts

    # Injected into today's model: every call made 10 % and 20 % slower, full checks against the same baseline.
    for fraction, target in ((0.10, "≥ 90 % not passed"), (0.20, "100 % regression")):
        verdicts = full_checks(f"model {fraction:+.0%}", lambda: models_slowed(fraction), args.injected_checks, 300)
        counts, n = tally(verdicts), len(verdicts)
        rows.append((f"today's model {fraction:+.0%} on every call (busy wait)", n, counts,
                     f"regression {counts[REGRESSION]}/{n}, not passed {counts[REGRESSION] + counts[INCONCLUSIVE]}/{n}",
                     target))

    # Real slowdowns: full checks against the same baseline, with the session options changed.
    real = [(name, change, paired_ratio(device, exported.path, args.threads, change))
            for name, change in (("ONNX Runtime graph optimisations off", graph_optimisations_off),
                                 ("ONNX Runtime thread spinning off", thread_spinning_off))]
    for name, change, true_ratio in real:
        verdicts = full_checks(name, lambda: ort_sessions_changed(change), args.real_checks, 500)
        counts, n = tally(verdicts), len(verdicts)
        target = "100 % regression" if true_ratio >= 1 + 2 * args.threshold else "report"
        rows.append((f"real: {name} (paired: {true_ratio - 1:+.0%})", n, counts,
                     f"regression {counts[REGRESSION]}/{n}", target))

    # One command line, end to end.
    t0 = time.monotonic()
    cli = subprocess.run([sys.executable, "-m", "mnbench", "check", "--baseline", str(baseline_path),
                          "--max-time", str(args.max_time), "--threshold", str(args.threshold),
                          "--models-dir", str(models_dir), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT)
    cli_wall = time.monotonic() - t0
    after = conditions()

    changes = [m.change for m in aa]
    halfwidths = [(m.ci_high - m.ci_low) / 2 for m in aa]
    covered = sum(m.ci_low <= 0.0 <= m.ci_high for m in aa)
    normalised = sum(m.normalised for m in aa)
    by_control = sum(m.normaliser == "control" for m in aa)
    control_shifts = [m.machine_shift for m in aa if m.machine_shift is not None]
    spread = statistics.stdev(changes) if len(changes) > 1 else 0.0
    lines = [
        "# `mnbench check` validation",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {info.get('cpu_model')}, "
        f"{info.get('available_cpus')} CPUs available, {args.threads or info.get('physical_cores')} threads. "
        f"Shared with other engineers' work while it ran: {before} at the start, {after} at the end.",
        "",
        f"Model {config.slug} on `cpu` (ONNX Runtime), baseline measured by `mnbench run`'s runner "
        f"(at least {measure.repetitions} repetitions, at most {measure.max_time_s:g} s); gate threshold "
        f"{args.threshold:.0%}, 95 % CI, `--max-time {args.max_time:g}` per model and measurement; a model the "
        "first measurement leaves undecided is measured as long again and judged on all of it.",
        "",
        "| scenario | checks | regression | inconclusive | pass | improvement | result | target |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, n, counts, result, target in rows:
        lines.append(f"| {name} | {n} | {counts[REGRESSION]} | {counts[INCONCLUSIVE]} | {counts[PASS]} | "
                     f"{counts[IMPROVEMENT]} | {result} | {target} |")
    lines += [
        "",
        f"A/A changes, in order: {', '.join(f'{c:+.1%}' for c in changes)}.",
        f"The same checks by the small reference (controls ignored): "
        f"{', '.join(f'{m.change:+.1%}' for m in by_reference)}.",
        f"The same checks on absolute times (reference ignored): {', '.join(f'{m.change:+.1%}' for m in raw)}.",
        f"How much slower the control ran than at baseline time (the machine's change as the model feels it): "
        f"{', '.join(f'{x:+.0%}' for x in control_shifts)}.",
        f"Their spread from check to check (sd {spread:.1%}) against the CI half-width each check reports "
        f"(median {statistics.median(halfwidths):.1%}): where the spread is the larger, the machine drifts between "
        "runs in a way the normaliser does not track, and a CI can only describe the run it came from. "
        f"The A/A CIs held the true change (0) in {covered}/{len(aa)} checks (a 95 % CI should in about 19). "
        f"Normalisation was kept in {normalised}/{len(aa)} checks, by the control in {by_control}.",
        f"Wall time of one check of one model (in-process, export cached): median {statistics.median(walls):.1f} s, "
        f"max {max(walls):.1f} s over {len(walls)} checks.",
        f"`mnbench check --baseline` as a command line (interpreter start, imports, export cache check, measuring): "
        f"{cli_wall:.1f} s, exit code {cli.returncode}.",
        f"Whole validation: {(time.monotonic() - started) / 60:.1f} min.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(args.output, text)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
