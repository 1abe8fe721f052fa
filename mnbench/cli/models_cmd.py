"""`mnbench models` and `mnbench export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnbench.cli.common import (ArchOpt, BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt,
                                parse_archs, parse_numbers, render, status, stdout)
from mnbench.config import ARCHS, CATEGORIES, ModelConfig

AblationOpt = Annotated[str | None, typer.Option(
    "--ablation", help="One design choice changed from the published net (e.g. no-se, expansion-10); "
                       "'list' shows every ablation with the papers' claims.")]


def models(
    arch: ArchOpt = "all",
    width: WidthOpt = "1.0",
    resolution: ResolutionOpt = "224",
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    detail: Annotated[bool, typer.Option("--detail", help="Show each layer and what the standard twin replaced.")] = False,
    ablation: AblationOpt = None,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """List each arch's separable network and its standard-convolution twin: parameters, MACs, MAC share per category,
    the least memory each needs and, where `mnbench run` measured it, the peak its session took."""
    from mnbench.archs import CONVERSION_RULE
    from mnbench.artifacts.catalog import model_table

    archs = parse_archs(arch)
    if ablation == "list":
        _show_ablations(archs, fmt)
        return
    if ablation is not None and arch.strip() == "all":  # all the archs it applies to
        archs = [name for name in ARCHS if name in _ablation_archs(ablation)] or archs
    widths = parse_numbers(width, "width", float)
    resolutions = parse_numbers(resolution, "resolution", int)
    for name in archs:  # validate everything before the first (slow) export
        for w in widths:
            for r in resolutions:
                ModelConfig(arch=name, width=w, resolution=r, ablation=ablation)
    if detail:
        _show_layers(archs, widths[0], resolutions[0], fmt, ablation)
        return
    with status("Exporting models", enabled=fmt is Format.table) as show:
        rows = model_table(archs, widths, resolutions, ablation=ablation, models_dir=models_dir, progress=show)
    measured = _measured_peaks(reports_dir)
    for row in rows:
        key = (row["arch"], row["variant"], float(row["width"]), row["resolution"], row["batch"])
        row["memory_peak_bytes"] = measured.get(key, {}) if ablation is None else {}
    if fmt is Format.json:
        render(rows, fmt, [])
        return
    for row in rows:
        row["min_mb"] = row["memory_minimum_bytes"] / 1e6
        row["peak_mb"] = ", ".join(f"{device} {peak / 1e6:,.1f}" for device, peak in row["memory_peak_bytes"].items())
        row["params_m"] = row["params"] / 1e6
        row["macs_m"] = row["macs"] / 1e6
        for name in CATEGORIES:
            share = row["categories"].get(name, {}).get("mac_share")
            row[name] = f"{share:.1%}" if share else ""
    shown = [name for name in CATEGORIES if any(row[name] for row in rows)]
    deltas = []
    if ablation is not None:
        for row in rows:
            row["macs_delta_m"] = row["macs_delta"] / 1e6
        deltas = [("params_delta", "Δparams"), ("macs_delta_m", "ΔMACs (M)")]
    title = "Theoretical cost (MACs of Conv/Gemm on the BN-folded ONNX graph; params as PyTorch counts them)"
    if ablation is not None:
        title += f"\nablation {ablation}; Δ: ablated minus published"
    render(rows, fmt, [("arch", "arch"), ("variant", "variant"), ("width", "width"), ("resolution", "res"),
                       ("params_m", "params (M)"), ("macs_m", "MACs (M)"), *deltas,
                       ("theoretical_speedup", "std/sep MACs"), *[(name, f"{name} %") for name in shown],
                       ("min_mb", "min MB"), *([("peak_mb", "peak MB (run)")] if measured else [])],
           title=title)
    stdout.print(f"[dim]standard variant: {CONVERSION_RULE}[/dim]")


def _measured_peaks(reports_dir: Path | None) -> dict[tuple, dict[str, int]]:
    """(arch, variant, width, resolution, batch) -> device -> the newest measured session peak (bytes), from the
    result files under reports/runs; empty before the first run. The files' records are read as written: the
    report's pairing and roofline (seconds for many files) are not needed here."""
    import warnings

    from mnbench import results
    from mnbench.errors import MnbenchError
    from mnbench.report.pairs import default_result_paths

    try:
        with warnings.catch_warnings():  # a damaged file is `mnbench report`'s to name, not this listing's
            warnings.simplefilter("ignore")
            loaded = results.load_results(default_result_paths(reports_dir))
    except MnbenchError:
        return {}
    out: dict[tuple, dict[str, int]] = {}
    for _, doc in sorted(loaded, key=lambda item: str(item[1].get("created_utc") or "")):  # newest last, so it wins
        for r in doc["records"]:
            memory = r.get("memory") or {}
            if isinstance(memory.get("peak_bytes"), int) and r.get("threads") == 1:
                key = (r["arch"], r["variant"], float(r["width"]), r["resolution"], r["batch"])
                out.setdefault(key, {})[r["device"]] = memory["peak_bytes"]
    return out


def _ablation_archs(name: str) -> tuple[str, ...]:
    from mnbench.archs.ablations import ABLATIONS

    return ABLATIONS[name].archs if name in ABLATIONS else ()


def _show_ablations(archs: list[str], fmt: Format) -> None:
    """Every ablation of the archs with each claim about it (figures: ablated minus published, as the source states)."""
    from mnbench.artifacts.catalog import ablation_table

    rows = ablation_table(archs)
    if fmt is Format.json:
        render(rows, fmt, [])
        return
    for row in rows:
        row["archs"] = ", ".join(row["archs"])
        row["claims"] = "\n".join(_claim_text(claim) for claim in row["claims"])
    render(rows, fmt, [("name", "ablation"), ("archs", "archs"), ("description", "changes"),
                       ("claims", "claims (ablated minus published)")],
           title="Ablations: the published net with one design choice changed (mnbench models --ablation NAME)")


def _claim_text(claim: dict) -> str:
    figures = []
    if claim["madds_delta"] is not None:
        figures.append(f"{claim['madds_delta'] / 1e6:+g}M MAdds")
    if claim["latency_delta_ms"] is not None:
        figures.append(f"{claim['latency_delta_ms']:+.3g} ms")
    if claim["latency_change"] is not None:
        figures.append(f"{claim['latency_change']:+.1%}")
    where = ", ".join(part for part in (claim["arch"], claim["device"]) if part)
    summary = f"{'; '.join(figures)}{f' ({where})' if where else ''}: " if figures else ""
    return f"{summary}{claim['statement']} [{claim['source']}]"


def _show_layers(archs: list[str], width: float, resolution: int, fmt: Format, ablation: str | None) -> None:
    """Layer tables from the architecture plan (nothing is built or exported)."""
    from mnbench.archs import describe_blocks

    columns = [("index", "#"), ("kind", "kind"), ("in", "in"), ("out", "out"), ("kernel", "k"), ("stride", "s"),
               ("expand", "expand"), ("se", "SE"), ("act", "act"), ("params", "params"), ("replaces", "standard twin replaces")]
    for arch in archs:
        rows = describe_blocks(ModelConfig(arch=arch, variant="standard", width=width, resolution=resolution,
                                           ablation=ablation))
        changed = f", ablation {ablation}" if ablation else ""
        render(rows, fmt, columns, title=f"{arch} (width {width:g}{changed}): standard twin, layer by layer")


def export(
    arch: Annotated[str, typer.Option("--arch", "-a", help="v1, v2, v3-large or v3-small.")],
    variant: Annotated[str, typer.Option("--variant", help="separable or standard.")] = "separable",
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    resolution: Annotated[int, typer.Option("--resolution", "-r")] = 224,
    batch: BatchOpt = 1,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Export with a dynamic batch dimension.")] = False,
    opset: Annotated[int, typer.Option("--opset", min=17)] = 17,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the file here.")] = None,
    ablation: AblationOpt = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Export one model to ONNX (validated, cached) and print its path as the last line."""
    from mnbench.artifacts.export import export_model

    config = ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution, batch=batch,
                         dynamic_batch=dynamic_batch, ablation=ablation)
    with status(f"Exporting {config.slug}") as show:
        exported = export_model(config, models_dir=models_dir, opset=opset, output=output, progress=show)
    state = "reused cached" if exported.reused else "exported"
    stdout.print(f"[dim]{state} {config.slug}: {exported.params:,} params, {exported.cost.macs / 1e6:,.1f}M MACs, "
                 f"sha256 {exported.sha256[:12]}[/dim]")
    print(output if output else exported.path)
