"""`mnbench profile`: where one model's time goes, per operator category, from the runtime's own profiler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mnbench.cli.common import BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, note, print_json, render, status, stdout
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError

COLUMNS = [("category", "category"), ("macs_m", "MACs (M)"), ("mac_share_pct", "MAC share"),
           ("time_ms", "time (ms)"), ("time_share_pct", "time share"), ("gmacs_per_s", "GMAC/s")]
LAYER_COLUMNS = [("name", "layer"), ("op_type", "op"), ("measured_ms", "measured (ms)"),
                 ("predicted_ms", "predicted (ms)"), ("error_pct", "error"), ("bound", "bound")]


def profile(
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="v1, v2, v3-large or v3-small (or --model).")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="One device (see `mnbench devices`).")] = "cpu",
    variant: Annotated[str, typer.Option("--variant", help="separable or standard.")] = "separable",
    width: Annotated[float, typer.Option("--width", "-w")] = 1.0,
    resolution: Annotated[int, typer.Option("--resolution", "-r")] = 224,
    batch: BatchOpt = 1,
    precision: Annotated[str, typer.Option("--precision", "-p",
                                           help="fp32, fp16, bf16 or int8 (what ran is recorded).")] = "fp32",
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="Threads (default: physical cores).")] = None,
    iterations: Annotated[int, typer.Option("--iterations", "-n", min=1,
                                            help="Profiled inferences, after a short warm-up.")] = 50,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write a result file for `mnbench report`.")] = True,
    model: Annotated[Path | None, typer.Option("--model", help="Your own ONNX file instead of --arch (costed on its graph).")] = None,
    label: Annotated[str | None, typer.Option("--label", help="A name for --model (default: the file stem).")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Layers shown beside their prediction, slowest measured "
                                     "first (0: every layer).")] = 15,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Profile one model on one device: MAC share against time share per operator category."""
    if (arch is None) == (model is None):
        raise MnbenchError("give --arch or --model (one of them)")
    from mnbench.devices.registry import resolve_device
    from mnbench.artifacts.export import export_model
    from mnbench.profiling import profile_model, save_profiles
    from mnbench.int8.quantize import for_precision

    target = resolve_device(device)  # a wrong device fails before the export, not after
    if model is not None:
        from mnbench.artifacts.user_models import load_user_models

        (exported,) = load_user_models([model], labels=[label] if label else (), batch=batch)
        config = exported.config
        if precision == "int8":
            raise MnbenchError("--precision int8 quantizes mnbench's own nets; give --model an int8 file instead")
    else:
        config = ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution, batch=batch)
        with status(f"Exporting {config.slug}", enabled=fmt is Format.table) as show:
            exported = export_model(config, models_dir=models_dir, progress=show)
            exported = for_precision(exported, precision)  # int8: the quantized file (mnbench.int8.quantize)
    try:
        result = profile_model(exported, target, batch=batch, precision=precision, threads=threads,
                               iterations=iterations, models_dir=models_dir)
    except KeyboardInterrupt:  # Typer would exit 130 without a word
        note("interrupted: nothing written (the profile is saved only once it is complete)")
        raise typer.Exit(130) from None
    saved = save_profiles([result], reports_dir=reports_dir) if save else None
    side_by_side, missing = _predicted(result, exported, reports_dir)
    if fmt is Format.json:
        print_json(result | ({"layers_predicted": side_by_side} if side_by_side else {}))
    else:
        rows = [c | {"macs_m": c["macs"] / 1e6, "mac_share_pct": f"{c['mac_share']:.1%}",
                     "time_share_pct": f"{c['time_share']:.1%}"} for c in result["categories"]]
        columns = COLUMNS
        if precision == "int8":  # how much of each category's time ran in int8 kernels
            rows = [r | {"int8_pct": "–" if r.get("int8_time_share") is None else f"{r['int8_time_share']:.0%}"}
                    for r in rows]
            columns = COLUMNS + [("int8_pct", "conv time in int8")]
        render(rows, fmt, columns, title=f"{config.slug} on {result['device']} ({result['runtime']}, "
                                         f"{result['precision']}, {result['threads']} threads): "
                                         f"{result['total_time_ms']:.3g} ms per inference")
        stdout.print(f"[dim]{_footnote(result)}[/dim]")
        if side_by_side:
            _render_side_by_side(side_by_side, fmt, top)
        for text in result["notes"] + ([missing] if missing else []):
            note(f"note: {text}")
    if saved is not None:
        note(f"saved to {saved}")


def _predicted(result: dict, exported, reports_dir) -> tuple[dict | None, str | None]:
    """Each layer's predicted time beside the measured one, from this machine's peak at the profile's threads;
    (None, why) without one."""
    from mnbench.profiling.compare import layers_side_by_side
    from mnbench.roofline.model import Roofs
    from mnbench.roofline.peak import load_peak

    peak = load_peak(result["device"], precision=result["precision"], threads=result["threads"],
                     reports_dir=reports_dir)
    roofs = Roofs.from_peak(peak, name=result["device"]) if peak else None
    if roofs is None:
        return None, (f"no predictions beside the profile: no peak of {result['device']} at {result['threads']} "
                      f"threads here; run `mnbench peak --device {result['device']} --threads {result['threads']}`")
    dynamic = getattr(exported.config, "dynamic_batch", False)
    return layers_side_by_side(result, exported.path, exported.cost, roofs,
                               batch_scale=result["batch"] if dynamic else 1), None


def _render_side_by_side(side_by_side: dict, fmt: Format, top: int) -> None:
    rows = sorted(side_by_side["layers"], key=lambda r: -r["measured_ms"])[:top or None]
    rows = [r | {"error_pct": "–" if r["error"] is None else f"{r['error']:+.0%}"} for r in rows]
    render(rows, fmt, LAYER_COLUMNS, title=(
        f"Predicted beside measured, per layer: {side_by_side['predicted_ms']:.3g} ms predicted, "
        f"{side_by_side['measured_ms']:.3g} ms profiled" + ("" if side_by_side["calibrated"] else
                                                            " (plain roofline: no calibration in the peak)")))


def _footnote(result: dict) -> str:
    parts = [f"mean of {result['iterations']} profiled inferences"]
    if result.get("effective_precision") and result["effective_precision"] != result["precision"]:
        parts.append(f"Conv/Gemm kernels ran in {result['effective_precision']}")
    parts.append(f"{result['attributed_share']:.0%} of the time matched a graph node; "
                 f"{result['unattributed_ms']:.3g} ms of runtime overhead counted as 'other'")
    return "; ".join(parts)
