"""`mnbench models` and `mnbench export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnbench.cli.common import (ArchOpt, BatchOpt, Format, ModelsDirOpt, ResolutionOpt, WidthOpt, parse_archs,
                                parse_numbers, render, stdout)
from mnbench.config import CATEGORIES, ModelConfig


def models(
    arch: ArchOpt = "all",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    detail: Annotated[bool, typer.Option("--detail", help="Show each layer and what the standard twin replaced.")] = False,
    models_dir: ModelsDirOpt = None,
) -> None:
    """List each arch's separable network and its standard-convolution twin: parameters, MACs, MAC share per category."""
    from mnbench.archs import CONVERSION_RULE
    from mnbench.catalog import model_table

    archs = parse_archs(arch)
    widths = parse_numbers(width, "width", float)
    resolutions = parse_numbers(resolution, "resolution", int)
    for w in widths:  # validate everything before the first (slow) export
        for r in resolutions:
            ModelConfig(arch=archs[0], width=w, resolution=r)
    if detail:
        _show_layers(archs, widths[0], resolutions[0], fmt)
        return
    rows = model_table(archs, widths, resolutions, models_dir=models_dir, progress=fmt is Format.table)
    if fmt is Format.json:
        render(rows, fmt, [])
        return
    for row in rows:
        row["params_m"] = row["params"] / 1e6
        row["macs_m"] = row["macs"] / 1e6
        for name in CATEGORIES:
            share = row["categories"].get(name, {}).get("mac_share")
            row[name] = f"{share:.1%}" if share else ""
    shown = [name for name in CATEGORIES if any(row[name] for row in rows)]
    render(rows, fmt, [("arch", "arch"), ("variant", "variant"), ("width", "width"), ("resolution", "res"),
                       ("params_m", "params (M)"), ("macs_m", "MACs (M)"), ("theoretical_speedup", "std/sep MACs"),
                       *[(name, f"{name} %") for name in shown]],
           title="Theoretical cost (MACs of Conv/Gemm on the BN-folded ONNX graph; params as PyTorch counts them)")
    stdout.print(f"[dim]standard variant: {CONVERSION_RULE}[/dim]")


def _show_layers(archs: list[str], width: float, resolution: int, fmt: Format) -> None:
    """Layer tables from the architecture plan (nothing is built or exported)."""
    from mnbench.archs import describe_blocks

    columns = [("index", "#"), ("kind", "kind"), ("in", "in"), ("out", "out"), ("kernel", "k"), ("stride", "s"),
               ("expand", "expand"), ("se", "SE"), ("act", "act"), ("params", "params"), ("replaces", "standard twin replaces")]
    for arch in archs:
        rows = describe_blocks(ModelConfig(arch=arch, variant="standard", width=width, resolution=resolution))
        render(rows, fmt, columns, title=f"{arch} (width {width:g}): standard twin, layer by layer")


def export(
    arch: Annotated[str, typer.Option("--arch", "-a", help="v1, v2, v3-large or v3-small.")],
    variant: Annotated[str, typer.Option("--variant", help="separable or standard.")] = "separable",
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    resolution: Annotated[int, typer.Option("--resolution", "-r")] = 224,
    batch: BatchOpt = 1,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Export with a dynamic batch dimension.")] = False,
    opset: Annotated[int, typer.Option("--opset", min=17)] = 17,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the file here.")] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Export one model to ONNX (validated, cached) and print its path as the last line."""
    from mnbench.export import export_model

    config = ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution, batch=batch,
                         dynamic_batch=dynamic_batch)
    exported = export_model(config, models_dir=models_dir, opset=opset, output=output)
    state = "reused cached" if exported.reused else "exported"
    stdout.print(f"[dim]{state} {config.slug}: {exported.params:,} params, {exported.cost.macs / 1e6:,.1f}M MACs, "
                 f"sha256 {exported.sha256[:12]}[/dim]")
    print(output if output else exported.path)
