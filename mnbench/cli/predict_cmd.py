"""`mnbench predict`: the roofline model's latency and speedup for a device described on paper (or this one)."""

from __future__ import annotations

from typing import Annotated

import typer

from mnbench.cli.common import (ArchOpt, BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt,
                                note, parse_archs, parse_numbers, render, status)
from mnbench.config import ModelConfig

COLUMNS = [("arch", "arch"), ("width", "width"), ("resolution", "res"), ("batch", "batch"),
           ("theoretical_speedup", "theoretical"), ("predicted_speedup", "roofline"),
           ("predicted_ms_separable", "pred. sep (ms)"), ("predicted_ms_standard", "pred. std (ms)"),
           ("bound_separable", "bound sep"), ("bound_standard", "bound std")]


def predict(
    spec: Annotated[str, typer.Option("--spec", "-s", help="A TOML device spec, a shipped spec's name "
                                      "(h200, intel-iris-xe, raspberry-pi-5), or 'this' (this machine's peak).")],
    arch: ArchOpt = "all",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    batch: BatchOpt = 1,
    precision: Annotated[str, typer.Option("--precision", "-p", help="Bytes per element: fp32 4, fp16/bf16 2, "
                                           "int8 1.")] = "fp32",
    device: Annotated[str, typer.Option("--device", "-d", help="With --spec this: whose measured peak.")] = "cpu",
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Predict each arch's latency and roofline speedup on a device from its peak GMAC/s, bandwidth and cost
    per layer: time per layer = max(MACs / peak, bytes / bandwidth) + overhead. A prediction, not a measurement."""
    from mnbench.roofline.predict import load_spec, predict_rows, this_machine
    from mnbench.roofline.model import bytes_per_element

    bytes_per_element(precision)
    roofs = this_machine(device, precision=precision, reports_dir=reports_dir) if spec == "this" else load_spec(spec)
    configs = [(a, w, r) for a in parse_archs(arch) for w in parse_numbers(width, "width", float)
               for r in parse_numbers(resolution, "resolution", int)]
    for a, w, r in configs:  # validate everything before the first (slow) export
        ModelConfig(arch=a, width=w, resolution=r, batch=batch)
    with status("Exporting models", enabled=fmt is Format.table) as show:
        rows = predict_rows(roofs, configs, batch=batch, precision=precision, models_dir=models_dir, progress=show)
    render(rows, fmt, COLUMNS, title=f"Roofline prediction for {roofs.name} (not a measurement)")
    note(f"prediction, not a measurement, from {roofs.describe()}")
    if roofs.notes:
        note(f"figures: {roofs.notes}", style="yellow")
