"""`mnbench check`: the CI latency-regression gate (see `mnbench.gate`)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnbench.cli.common import BatchOpt, ModelsDirOpt, note, stderr, wide_console
from mnbench.errors import MnbenchError


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class InconclusivePolicy(str, Enum):
    passes = "pass"
    fail = "fail"
    exit3 = "exit3"


def check(
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Baseline result file (from `mnbench run` or `mnbench check --output`).")] = None,
    current: Annotated[Path | None, typer.Option("--current", help="Compare against this result file instead of re-measuring here.")] = None,
    threshold: Annotated[str, typer.Option("--threshold", help="Regression threshold: 10% or 0.1.")] = "10%",
    max_time: Annotated[float, typer.Option("--max-time", help="Seconds of measuring at most, per model (a model left undecided gets as long again).")] = 20.0,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="table, json, or markdown (for $GITHUB_STEP_SUMMARY).")] = CheckFormat.table,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write JUnit XML here: one testcase per model.")] = None,
    inconclusive: Annotated[InconclusivePolicy, typer.Option("--inconclusive", help="Exit code when a model is inconclusive: pass (0), fail (1) or exit3 (3).")] = InconclusivePolicy.exit3,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write what was measured here as a result file (e.g. the next baseline).")] = None,
    baseline_model: Annotated[Path | None, typer.Option("--baseline-model", help="Paired mode: the old ONNX model ...")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="... and the new one, measured in alternating rounds.")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Paired mode: the device both run on.")] = "cpu",
    batch: BatchOpt = 1,
    precision: Annotated[str, typer.Option("--precision", "-p", help="Paired mode: fp32, fp16 or bf16.")] = "fp32",
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="Paired mode: threads (default: physical cores).")] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Fail CI on a latency regression: compare against a baseline, re-measuring here unless --current is given.

    Exit 0: no regression; 1: a regression, confirmed by a re-measurement; 2: usage error or incompatible
    baseline; 3: inconclusive (see --inconclusive); 130: interrupted (Ctrl-C), nothing written.
    """
    from mnbench.gate import junit as junit_xml, render, remeasure
    from mnbench.gate.compare import parse_threshold

    paired = baseline_model is not None or model is not None
    if paired and (baseline_model is None or model is None):
        raise MnbenchError("paired mode needs both --baseline-model OLD.onnx and --model NEW.onnx")
    if paired and (baseline is not None or current is not None):
        raise MnbenchError("give either --baseline (with or without --current) or --baseline-model/--model, not both")
    if not paired and baseline is None:
        raise MnbenchError("missing --baseline FILE (or --baseline-model OLD.onnx --model NEW.onnx for paired mode)")
    if output is not None and (paired or current is not None):
        raise MnbenchError("--output writes a re-measurement: it needs --baseline without --current")
    settings = remeasure.GateSettings(threshold=parse_threshold(threshold), max_time_s=max_time)

    try:
        report = _judge(paired, baseline, current, baseline_model, model, device, batch, precision, threads, output,
                        settings, models_dir)
    except KeyboardInterrupt:
        # Nothing is written before every model is measured: say so, rather than leave the user to look.
        note("interrupted: nothing written" + (" (--output and --junit are written only once every model is "
                                               "measured)" if output or junit else ""))
        raise typer.Exit(130) from None

    if fmt is CheckFormat.table:
        # Piped or redirected (a CI log), Rich would assume 80 columns and fold every cell; give the table room.
        console = wide_console()
        console.print(render.render_table(report))
    else:
        sys.stdout.write(render.render_json(report) if fmt is CheckFormat.json else render.render_markdown(report))
    if junit is not None:
        junit_xml.write_junit(report, junit, inconclusive.value)
    code = report.exit_code(inconclusive.value)
    if code:
        raise typer.Exit(code)


def _judge(paired, baseline, current, baseline_model, model, device, batch, precision, threads, output, settings,
           models_dir):
    """The gate's report: measured here (paired, or the baseline re-measured; the re-measurement written to `output`
    once complete) or from two files."""
    from mnbench import results
    from mnbench.gate import remeasure
    from mnbench.gate.compare import compare_results

    with stderr.status("starting") as status:
        def on_progress(label: str, elapsed_s: float, comparison) -> None:
            status.update(f"measuring {label}: {elapsed_s:.0f} s, change {comparison.change:+.1%} "
                          f"± {comparison.half_width(settings.confidence):.1%}")

        if paired:
            report = remeasure.check_paired(baseline_model, model, device, batch=batch, precision=precision,
                                            threads=threads, settings=settings, models_dir=models_dir,
                                            on_progress=on_progress)
        elif current is not None:
            report = compare_results(results.load_result(baseline), results.load_result(current),
                                     settings.threshold, confidence=settings.confidence)
        else:
            report, measured = remeasure.check_baseline(results.load_result(baseline), settings,
                                                        models_dir=models_dir, on_progress=on_progress)
            if output is not None:
                results.write_result(measured, output)

    return report
