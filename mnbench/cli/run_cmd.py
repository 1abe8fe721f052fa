"""`mnbench run`: benchmark models on devices and write a result file."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mnbench.cli.common import (BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt,
                                parse_archs, parse_numbers, print_json, render, stderr, stdout)
from mnbench.measure import stability
from mnbench.errors import MnbenchError

VARIANT_CHOICES = {"both": ("separable", "standard"), "separable": ("separable",), "standard": ("standard",)}


def run(
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="One of v1, v2, v3-large, v3-small, a comma list, or 'all' (default v2; none with --model unless given).")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Device name(s), comma-separated, or 'all' (see `mnbench devices`).")] = "cpu",
    variant: Annotated[str, typer.Option("--variant", help="separable, standard or both.")] = "both",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    batch: Annotated[str, typer.Option("--batch", "-b", help="Batch size(s), comma-separated: each is a point of its own (images/s beside latency).")] = "1",
    streams: Annotated[str, typer.Option("--streams", help="openvino only: OpenVINO's throughput mode, requests on this many streams at once sharing the threads; a comma list sweeps it (default 1: one request, latency).")] = "1",
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (what ran is recorded).")] = "fp32",
    threads: Annotated[str, typer.Option("--threads", "-t", help="Threads per model: a number, a comma list to sweep (1,2), 'all' for the physical cores available, or 'auto' for 1, 2, 4, ... up to them. Default 1: the steadiest figure on a shared machine (docs/measurement.md).")] = "1",
    repetitions: Annotated[int, typer.Option("--repetitions", help="Repetitions of each group at least (fresh sessions each, spread over the run); its interval comes from their spread.")] = 5,
    max_time: Annotated[float, typer.Option("--max-time", help="Seconds measured at most per group and device, over all its repetitions.")] = 6.0,
    target: Annotated[float, typer.Option("--target", help="Stop measuring a group once its speedup is known to ±this fraction (95 % interval).")] = 0.03,
    for_check: Annotated[bool, typer.Option("--for-check", help="Record a baseline for `mnbench check`: also measure what it divides by (each model's own file again with frozen settings, and the machine-speed reference), about doubling the run.")] = False,
    peak: Annotated[bool, typer.Option("--peak/--no-peak", help="Measure each device's peak GMAC/s once per machine (the roofline's figures behind the bound column).")] = True,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Measure each model's session memory after the timing (a fresh process each), beside the least its graph needs.")] = True,
    cuda_graph: Annotated[bool, typer.Option("--cuda-graph", help="torch:cuda devices: replay each model from a captured CUDA graph (recorded).")] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="torch devices: run models in channels_last memory format (recorded).")] = False,
    model: Annotated[list[Path] | None, typer.Option("--model", help="Your own ONNX file (repeat for more); measured as one group, costed on its graph.")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="A name for each --model, in order (default: the file stem).")] = None,
    pair: Annotated[str | None, typer.Option("--pair", help="BASELINE,CANDIDATE labels of two --model files whose speedup the report shows (default: the first two).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Result file (default: reports/runs/<UTC time>-<host>.json).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Measure each arch's separable net against its standard twin on each device: theoretical and realized speedup,
    its 95 % interval, the share of the saving kept and what bounds it; write a result file."""
    from mnbench import results
    from mnbench.devices.registry import resolve_devices
    from mnbench.run.plan import MeasureSettings, RunInterrupted, RunPlan
    from mnbench.paths import default_run_output

    if variant not in VARIANT_CHOICES:
        raise MnbenchError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANT_CHOICES)}")
    batches = parse_numbers(batch, "batch", int)
    user_models = [m for b in batches for m in _user_models(model, label, pair, b)]
    plan = RunPlan(
        archs=parse_archs(arch or "v2") if arch or not user_models else [], user_models=tuple(user_models),
        devices=resolve_devices(device), variants=VARIANT_CHOICES[variant],
        widths=parse_numbers(width, "width", float), resolutions=parse_numbers(resolution, "resolution", int),
        batch=batches, precision=precision, threads=parse_thread_counts(threads),
        streams=parse_numbers(streams, "streams", int),
        measure=MeasureSettings(repetitions=repetitions, max_time_s=max_time, target_halfwidth=target),
        with_reference=for_check, with_controls=for_check, with_peak=peak, with_memory=memory,
        torch_options={k: True for k, on in (("cuda_graph", cuda_graph), ("channels_last", channels_last)) if on},
    )
    output = output or default_run_output(reports_dir)
    _check_writable(output)
    try:
        doc = _run_with_progress(plan, models_dir, reports_dir)
    except RunInterrupted as exc:
        partial = exc.partial_result
        if partial is not None:
            results.write_result(partial, output)
            stderr.print(f"interrupted: kept the {len(partial['records'])} completed records in {output}")
        else:
            stderr.print("interrupted before any model finished: nothing written")
        raise typer.Exit(130)
    results.write_result(doc, output)
    if fmt is Format.json:
        print_json(doc)  # stdout stays one JSON document; the path goes to stderr
        stderr.print(str(output), highlight=False)
        return
    rows, warnings = summary_rows(doc)
    render(rows, fmt, SUMMARY_COLUMNS, title="mnbench run", compact=True)
    if fmt is Format.table:
        stdout.print("[dim]" + "\n".join(textwrap.wrap(SUMMARY_LEGEND, 100)) + "[/dim]", highlight=False)
    lines = textwrap.wrap(stability.machine_line(doc), 100) + _what_ran(doc["records"]).splitlines()
    stdout.print("[dim]" + "\n".join(lines) + "[/dim]", highlight=False)
    for line in warnings:
        stderr.print(f"warning: {line}", highlight=False, soft_wrap=True)
    print(output)


def parse_thread_counts(spec: str) -> list[int]:
    """--threads of `run`: one count or a sweep: a comma list (each a number or 'all'), or 'auto' (1, 2, 4, ... up
    to the physical cores available, those included)."""
    from mnbench.host.facts import physical_cores

    if spec.strip().lower() == "auto":
        cores, counts = physical_cores(), [1]
        while counts[-1] * 2 < cores:
            counts.append(counts[-1] * 2)
        return counts + ([cores] if cores > counts[-1] else [])
    counts = [parse_threads(part) for part in spec.split(",") if part.strip()]
    if not counts:
        raise MnbenchError(f"--threads must be a positive number, a comma list, 'all' or 'auto', got {spec!r}")
    return list(dict.fromkeys(counts))


def parse_threads(spec: str) -> int:
    """--threads: a positive number, or 'all' (the physical cores this process may use)."""
    from mnbench.host.facts import physical_cores

    if spec.strip().lower() == "all":
        return physical_cores()
    try:
        value = int(spec)
    except ValueError:
        value = 0
    if value <= 0:
        raise MnbenchError(f"--threads must be a positive number or 'all', got {spec!r}")
    return value


def _user_models(paths: list[Path] | None, labels: list[str] | None, pair: str | None, batch: int) -> list:
    """The --model files, validated and costed (mnbench.artifacts.user_models); [] without --model."""
    if not paths:
        if labels or pair:
            raise MnbenchError("--label and --pair name --model files; give the files with --model")
        return []
    from mnbench.artifacts.user_models import load_user_models

    return load_user_models(paths, labels=labels or (), pair=pair, batch=batch)


def _check_writable(output: Path) -> None:
    """Fail before measuring, not after: the result folder must be creatable and writable."""
    import os

    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MnbenchError(f"cannot write results to {output}: {exc.strerror or exc}") from None
    if output.is_dir() or not os.access(folder, os.W_OK):
        raise MnbenchError(f"cannot write results to {output}: not a writable file path")


def _run_with_progress(plan, models_dir, reports_dir) -> dict[str, Any]:
    from mnbench.run.plan import run_plan

    low, high = plan.estimate_s()
    # The bar says at the start how long the measuring takes, from the plan (`RunPlan.estimate_s`).
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
               TimeElapsedColumn(), TextColumn("{task.fields[estimate]}"))
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("starting", total=plan.steps(), estimate=f"of about {_minutes(low)}–{_minutes(high)}")

        def on_estimate(low: float, high: float) -> None:  # from the models' MACs and the measured peak
            progress.update(task, estimate=f"of about {_minutes(low)}–{_minutes(high)}")

        def on_group(done: int, total: int, label: str) -> None:
            if done == 0:  # the clock beside the estimate counts the measuring, not the exports and peaks before it
                progress.reset(task, total=total)
            progress.update(task, completed=done, total=total, description=f"measuring {label}")

        doc = run_plan(plan, models_dir=models_dir, reports_dir=reports_dir, on_group=on_group,
                       on_status=lambda text: progress.update(task, description=text), on_estimate=on_estimate)
        progress.update(task, completed=progress.tasks[0].total)
    return doc


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# The answer first, in at most 100 columns; everything else is in the result file and `mnbench report`.
SUMMARY_COLUMNS = [("device", "device"), ("arch", "model"), ("min_standard", "min std"),
                   ("min_separable", "min sep"), ("theoretical", "theoretical"), ("realized", "realized"),
                   ("interval", "95% interval"), ("kept", "kept"), ("bound", "bound")]
SUMMARY_LEGEND = ("min std / min sep: latency in ms, each repetition's fastest call (geometric mean); "
                  "realized = min std / min sep; kept = realized / theoretical; bound: the roofline's limit "
                  "(docs/measurement.md)")


def summary_rows(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per pair (and per model without its twin) and the run's warnings, from the report's own rows
    (`mnbench.report.pairs`), so `run` and `report` show the same figures."""
    from mnbench.report.columns import interval, ms, percent, speedup
    from mnbench.report.pairs import build_report

    report = build_report([(Path("this run"), doc)])
    swept = len({r["threads"] for r in report.rows + report.unpaired}) > 1  # then each label names its threads
    rows = [{"device": r["device"], "arch": _arch_label(r, swept), "min_standard": ms(r["min_ms_standard"]),
             "min_separable": ms(r["min_ms_separable"]), "theoretical": speedup(r["theoretical_speedup"]),
             "realized": speedup(r["realized_speedup"]), "interval": interval(r["realized_speedup_ci"]),
             "kept": percent(r["share_kept"]), "bound": r.get("bound") or "–"} for r in report.rows]
    for r in report.unpaired:
        latency = {"min_standard" if r["variant"] in ("standard", "baseline") else "min_separable": ms(r["min_ms"])}
        rows.append({"device": r["device"], "arch": f"{_arch_label(r, swept)} {r['variant']}"} | latency)
    return rows, report.warnings


def _arch_label(row: dict[str, Any], threads: bool = False) -> str:
    """"v2", or "v2 w0.5 r160" off the papers' headline width and resolution; "t2" for the thread count when the
    run swept threads, "b8" for a batch other than 1."""
    name = str(row["arch"])
    if (float(row["width"]), row["resolution"]) != (1.0, 224) and row["resolution"]:
        name += f" w{row['width']:g} r{row['resolution']}"
    return (name + (f" t{row['threads']}" if threads else "") + (f" s{row['streams']}" if row.get("streams", 1) != 1 else "")
            + (f" b{row['batch']}" if row.get("batch", 1) != 1 else ""))


def _what_ran(records: list[dict[str, Any]]) -> str:
    """One line per (device, runtime): what ran, read back from the runtime, not what was asked (full versions and
    settings are in the result file)."""
    seen = {}
    for r in records:
        version = str(r.get("runtime_version") or "").split("-")[0]
        asked = r.get("requested_precision")
        providers = ",".join(p.replace("ExecutionProvider", "") for p in r.get("providers") or [])
        line = (f"{r['device']}: {r['runtime']} {version}, {r['precision']}"
                + (f" (asked {asked})" if asked not in (None, r["precision"]) else "")
                + f", {r['threads']} thread{'' if r['threads'] == 1 else 's'}"
                + (f", {r['streams']} streams" if r.get("streams", 1) != 1 else "") + (f", {providers}" if providers else ""))
        seen.setdefault(line, None)
    return "\n".join(seen)
