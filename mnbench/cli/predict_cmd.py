"""`mnbench predict`: the roofline model's latency and speedup for a device described on paper (or this one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mnbench.cli.common import (ArchOpt, BatchOpt, Format, ModelsDirOpt, ReportsDirOpt, ResolutionOpt, WidthOpt,
                                note, parse_archs, parse_numbers, print_json, render, status)
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError

COLUMNS = [("arch", "arch"), ("width", "width"), ("resolution", "res"), ("batch", "batch"),
           ("theoretical_speedup", "theoretical"), ("predicted_speedup", "roofline"),
           ("predicted_ms_separable", "pred. sep (ms)"), ("predicted_ms_standard", "pred. std (ms)"),
           ("bound_separable", "bound sep"), ("bound_standard", "bound std")]
MODEL_COLUMNS = [("label", "model"), ("macs_m", "MACs (M)"), ("predicted_ms", "predicted (ms)"), ("bound", "bound"),
                 ("mac_baseline_ms", "MACs/peak (ms)"), ("layer_count", "layers"), ("pair_text", "pair"),
                 ("predicted_speedup", "pred. speedup")]
LAYER_COLUMNS = [("name", "layer"), ("op_type", "op"), ("macs_m", "MACs (M)"), ("predicted_us", "pred. (µs)"),
                 ("share_pct", "share"), ("bound", "bound"), ("priced", "priced as")]


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
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="With --spec this: the peak measured at "
                                                "this thread count (default: the stored one).")] = None,
    model: Annotated[list[Path] | None, typer.Option("--model", help="Your own ONNX file (repeat for more), "
                                                     "instead of --arch.")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="A name for each --model, in order.")] = None,
    pair: Annotated[str | None, typer.Option("--pair", help="BASELINE,CANDIDATE labels of two --model files "
                                             "(default: the first two): their predicted speedup.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Table: the N slowest layers of each --model "
                                     "(0: every layer).")] = 10,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Predict each arch's (or --model file's) latency, per layer, and roofline speedup on a device from its peak
    GMAC/s, bandwidth and cost per layer, calibrated per operator class where `mnbench peak` measured them.
    A prediction, not a measurement."""
    from mnbench.roofline.predict import load_spec, predict_rows, this_machine
    from mnbench.roofline.model import bytes_per_element

    bytes_per_element(precision)
    if (label or pair) and not model:
        raise MnbenchError("--label and --pair name --model files; give the files with --model")
    roofs = (this_machine(device, precision=precision, reports_dir=reports_dir, threads=threads) if spec == "this"
             else load_spec(spec))
    if model:
        from mnbench.roofline.predict import predict_user_models

        rows = predict_user_models(roofs, model, labels=label or (), pair=pair, batch=batch, precision=precision)
        _render_models(rows, fmt, top=top, title=f"Prediction for {roofs.name} (not a measurement)")
        _notes(roofs, rows)
        return
    configs = [(a, w, r) for a in parse_archs(arch) for w in parse_numbers(width, "width", float)
               for r in parse_numbers(resolution, "resolution", int)]
    for a, w, r in configs:  # validate everything before the first (slow) export
        ModelConfig(arch=a, width=w, resolution=r, batch=batch)
    with status("Exporting models", enabled=fmt is Format.table) as show:
        rows = predict_rows(roofs, configs, batch=batch, precision=precision, models_dir=models_dir, progress=show)
    render(rows, fmt, COLUMNS, title=f"Roofline prediction for {roofs.name} (not a measurement)")
    _notes(roofs, [])


def _render_models(rows: list[dict[str, Any]], fmt: Format, *, top: int, title: str) -> None:
    if fmt is Format.json:
        print_json([{k: v for k, v in row.items() if k != "unknown_lines"} for row in rows])
        return
    summary = [row | {"macs_m": row["macs"] / 1e6,
                      "pair_text": f"{row['pair']['role']} of {row['pair']['name']}" if row["pair"] else None}
               for row in rows]
    render(summary, fmt, MODEL_COLUMNS, title=title)
    for row in rows:
        total = sum(layer["predicted_us"] for layer in row["layers"]) or 1.0
        layers = sorted(row["layers"], key=lambda layer: -layer["predicted_us"])[:top or None]
        render([layer | {"macs_m": layer["macs"] / 1e6, "share_pct": f"{layer['predicted_us'] / total:.1%}"}
                for layer in layers], fmt, LAYER_COLUMNS,
               title=f"{row['label']}: {'every layer' if not top else f'the {len(layers)} slowest layers'} "
                     f"of {len(row['layers'])}")


def _notes(roofs, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for line in row["unknown_lines"]:
            note(line, style="yellow")
    note(f"prediction, not a measurement, from {roofs.describe()}")
    if roofs.calibration is None:
        note("no operator-class calibration for these figures: every layer priced by the plain roofline "
             "(`mnbench peak` measures the classes on this machine)", style="yellow")
    if roofs.notes:
        note(f"figures: {roofs.notes}", style="yellow")
