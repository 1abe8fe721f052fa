"""`mnbench run`: benchmark models on devices and write a result file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mnbench.cli.common import (BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt,
                                parse_archs, parse_numbers, print_json, render, stderr, stdout)
from mnbench.errors import MnbenchError

VARIANT_CHOICES = {"both": ("separable", "standard"), "separable": ("separable",), "standard": ("standard",)}


def run(
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="One of v1, v2, v3-large, v3-small, a comma list, or 'all' (default v2; none with --model unless given).")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Device name(s), comma-separated, or 'all' (see `mnbench devices`).")] = "cpu",
    variant: Annotated[str, typer.Option("--variant", help="separable, standard or both.")] = "both",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    batch: BatchOpt = 1,
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (what ran is recorded).")] = "fp32",
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="Threads (default: the physical cores available).")] = None,
    repetitions: Annotated[int, typer.Option("--repetitions", "-r", help="Independent measurements of each group (fresh sessions, spread over the run); intervals come from their spread.")] = 3,
    min_time: Annotated[float, typer.Option("--min-time", help="Seconds measured at least, per model group, over all repetitions.")] = 3.0,
    max_time: Annotated[float, typer.Option("--max-time", help="Seconds measured at most, per model group, over all repetitions.")] = 9.0,
    target_ci: Annotated[float, typer.Option("--target-ci", help="Stop a repetition early when its medians are known to within ±this fraction × √repetitions.")] = 0.01,
    reference: Annotated[bool, typer.Option("--reference/--no-reference", help="Interleave the machine-speed reference network (what `mnbench check` normalises by).")] = True,
    controls: Annotated[bool, typer.Option("--controls/--no-controls", help="Measure each model's file a second time with frozen settings: its control, what `mnbench check` normalises by (about doubles the run).")] = True,
    peak: Annotated[bool, typer.Option("--peak/--no-peak", help="Measure each device's peak GMAC/s once per machine.")] = True,
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
    """Benchmark each arch's separable and standard variants on each device; print a table, write a result file."""
    from mnbench import results
    from mnbench.devices import physical_cores, resolve_devices
    from mnbench.runner import MeasureSettings, RunInterrupted, RunPlan, default_output_path

    if variant not in VARIANT_CHOICES:
        raise MnbenchError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANT_CHOICES)}")
    if not 0 < min_time <= max_time:
        raise MnbenchError(f"need 0 < --min-time <= --max-time, got {min_time} and {max_time}")
    user_models = _user_models(model, label, pair, batch)
    plan = RunPlan(
        archs=parse_archs(arch or "v2") if arch or not user_models else [], user_models=tuple(user_models), devices=resolve_devices(device), variants=VARIANT_CHOICES[variant],
        widths=parse_numbers(width, "width", float), resolutions=parse_numbers(resolution, "resolution", int),
        batch=batch, precision=precision, threads=threads if threads is not None else physical_cores(),
        measure=MeasureSettings(min_time_s=min_time, max_time_s=max_time, target_rel_ci=target_ci,
                                repetitions=repetitions),
        with_reference=reference, with_controls=controls, with_peak=peak,
        torch_options={k: True for k, on in (("cuda_graph", cuda_graph), ("channels_last", channels_last)) if on},
    )
    output = output or default_output_path(reports_dir)
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
    render(rows, fmt, SUMMARY_COLUMNS, title="mnbench run")
    stdout.print(f"[dim]{_what_ran(doc['records'])}[/dim]", highlight=False)
    for line in warnings:  # the last one says what helps
        stderr.print(line if line is warnings[-1] else f"warning: {line}", highlight=False, soft_wrap=True)
    print(output)


def _user_models(paths: list[Path] | None, labels: list[str] | None, pair: str | None, batch: int) -> list:
    """The --model files, validated and costed (mnbench.user_models); [] without --model."""
    if not paths:
        if labels or pair:
            raise MnbenchError("--label and --pair name --model files; give the files with --model")
        return []
    from mnbench.user_models import load_user_models

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
    from mnbench.runner import run_plan

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
               TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("starting", total=plan.steps())

        def on_group(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, description=f"measuring {label}")

        doc = run_plan(plan, models_dir=models_dir, reports_dir=reports_dir, on_group=on_group,
                       on_status=lambda text: progress.update(task, description=text))
        progress.update(task, completed=progress.tasks[0].total)
    return doc


SUMMARY_COLUMNS = [("device", "device"), ("arch", "arch"), ("variant", "variant"), ("width", "width"),
                   ("resolution", "res"), ("precision", "precision"), ("threads", "threads"), ("p50", "p50 ms"),
                   ("p90", "p90 ms"), ("p99", "p99 ms"), ("throughput_ips", "img/s"), ("macs_m", "MACs (M)"),
                   ("theoretical", "theoretical ×"), ("realized", "realized ×"), ("rerun", "95% rerun interval")]


def summary_rows(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per record; the standard row of a pair also shows realized next to theoretical speedup; and the
    run's warnings.

    The pairing, the speedups and the warnings are the report's (`mnbench.report.pairs`), so `run` and `report`
    never disagree.
    """
    from mnbench.report.pairs import build_report

    from mnbench.user_pairs import user_pair

    def key(r):
        arch = user_pair(r)["name"] if user_pair(r) else r["arch"]  # the report's name for a user pair's row
        return (r["device"], arch, float(r["width"]), r["resolution"], r["batch"], r["precision"])

    report = build_report([(Path("this run"), doc)])
    speedups = {key(row): row for row in report.rows}
    rows = []
    for r in doc["records"]:
        row = {k: r[k] for k in ("device", "arch", "variant", "width", "resolution", "precision", "threads",
                                 "throughput_ips")}
        row |= {k: r["latency_ms"][k] for k in ("p50", "p90", "p99")}
        row["macs_m"] = r["macs"] / 1e6
        pair = speedups.get(key(r))
        if r["variant"] in ("standard", "baseline") and pair is not None:
            row["theoretical"] = pair["theoretical_speedup"]
            row["realized"] = pair["realized_speedup"]
            ci = pair.get("realized_speedup_ci")
            row["rerun"] = f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "–"
        rows.append(row)
    return rows, report.warnings


def _what_ran(records: list[dict[str, Any]]) -> str:
    """One line per (device, runtime): effective precision, threads, providers, runtime version — what ran, not what was asked."""
    seen = {}
    for r in records:
        providers = ",".join(r.get("providers") or []) or "-"
        line = (f"{r['device']}: {r['runtime']} {r.get('runtime_version') or ''}, precision {r['precision']}"
                + (f" (asked {r['requested_precision']})" if r.get("requested_precision") not in (None, r["precision"]) else "")
                + f", {r['threads']} threads, providers {providers}")
        seen.setdefault(line, None)
    return "\n".join(seen)
