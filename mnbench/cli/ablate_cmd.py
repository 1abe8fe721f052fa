"""`mnbench ablate`: each ablated net measured beside the published one; the papers' claims judged on this device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnbench.cli.common import (ArchOpt, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt, parse_archs,
                                parse_numbers, print_json, render, stderr, stdout, write_text)
from mnbench.errors import MnbenchError

FORMATS = ("table", "markdown", "json")


def ablate(
    arch: ArchOpt = "v3-large",
    device: Annotated[str, typer.Option("--device", "-d", help="Device name(s), comma-separated, or 'all' (see `mnbench devices`).")] = "cpu",
    ablation: Annotated[str, typer.Option("--ablation", help="Ablation name(s), comma-separated, or 'all' (see `mnbench models --ablation list`).")] = "all",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (what ran is recorded).")] = "fp32",
    threads: Annotated[str, typer.Option("--threads", "-t", help="Threads per model: a number, or 'all' for the physical cores available (default 1, as `mnbench run`).")] = "1",
    repetitions: Annotated[int, typer.Option("--repetitions", help="Repetitions of each group at least (fresh sessions each, spread over the run); intervals come from their spread.")] = 5,
    max_time: Annotated[float, typer.Option("--max-time", help="Seconds measured at most per group (a published net and its ablations) and device, over all its repetitions.")] = 18.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Result file (default: reports/runs/<UTC time>-<host>-ablate.json).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, markdown or json.")] = "table",
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Measure each ablated net interleaved with the published one (same rounds, with repetitions); print per change
    the cost deltas, the latency change with its 95 % interval, the papers' claim and a verdict on this device."""
    from mnbench import results
    from mnbench.ablate.run import ablation_groups, resolve_ablations, run_ablations
    from mnbench.cli.run_cmd import _check_writable, _run_with_progress
    from mnbench.cli.run_cmd import parse_threads
    from mnbench.devices.registry import resolve_devices
    from mnbench.report.ablations import ABLATION_COLUMNS, ABLATION_LEGEND, ablation_rows, display_rows
    from mnbench.run.plan import MeasureSettings, RunInterrupted, RunPlan
    from mnbench.paths import default_run_output

    if fmt not in FORMATS:
        raise MnbenchError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    archs = parse_archs(arch)
    groups = ablation_groups(resolve_ablations(archs, ablation), parse_numbers(width, "width", float),
                             parse_numbers(resolution, "resolution", int))
    plan = RunPlan(archs=archs, devices=resolve_devices(device), groups=groups, precision=precision,
                   threads=parse_threads(threads),
                   measure=MeasureSettings(repetitions=repetitions, max_time_s=max_time),
                   with_peak=False, with_memory=False)  # no roofline or memory table reads an ablate file
    output = output or default_run_output(reports_dir, suffix="-ablate")
    _check_writable(output)
    try:
        doc = run_ablations(plan, models_dir=models_dir, reports_dir=reports_dir,
                            run=lambda p, **kw: _run_with_progress(p, kw["models_dir"], kw["reports_dir"]))
    except RunInterrupted as exc:
        partial = exc.partial_result
        if partial is not None:
            results.write_result(partial, output)
            stderr.print(f"interrupted: kept the {len(partial['records'])} completed records in {output}")
        else:
            stderr.print("interrupted before any group finished: nothing written")
        raise typer.Exit(130) from None
    results.write_result(doc, output)
    rows = ablation_rows(doc, machine=doc["machine"].get("hostname") or "", source=str(output))
    if fmt == "json":
        print_json(rows)  # stdout stays one JSON document; the path goes to stderr
        stderr.print(str(output), highlight=False)
        return
    render(display_rows(rows), fmt, [(key, header) for key, header, _ in ABLATION_COLUMNS if key != "machine"],
           title="mnbench ablate: one design choice changed, against the published net")
    if fmt == "markdown":
        write_text("\n" + "".join(f"- **{term}**: {text}\n" for term, text in ABLATION_LEGEND))
    else:
        stdout.print("\n".join(f"{term}: {text}" for term, text in ABLATION_LEGEND), style="dim", highlight=False)
    print(output)
