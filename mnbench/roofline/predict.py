"""`mnbench predict`: the roofline model (`mnbench.roofline.model`) for a device described on paper, in a TOML spec.

A spec (examples in `mnbench/roofline/specs/`):

    name = "NVIDIA H200 SXM"
    peak_gmacs_per_s = 33500.0        # 1 MAC = 2 FLOPs
    bandwidth_gbytes_per_s = 4800.0
    launch_overhead_us = 5.0          # fixed cost of one layer
    estimated = ["launch_overhead_us"]  # optional: the figures that are estimates, not datasheet values
    source = "..."                    # optional: where the figures come from
    notes = "..."                     # optional

`--spec this` takes this machine's measured peak (`mnbench peak`) instead; `--spec h200` a shipped spec by name.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import onnx

from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.roofline.layers import analyse
from mnbench.roofline.model import Roofs, fused_activations, predict, roofline_speedup
from mnbench.roofline.priced import unknown_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SPECS_DIR = Path(__file__).parent / "specs"
REQUIRED = {"name": str, "peak_gmacs_per_s": (int, float), "bandwidth_gbytes_per_s": (int, float),
            "launch_overhead_us": (int, float)}
OPTIONAL = {"notes": str, "source": str, "estimated": list}


def shipped_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def load_spec(spec: str | Path) -> Roofs:
    """The roofs of a spec file, or of a shipped spec by name (`h200`); a missing or malformed one is a
    MnbenchError."""
    path = Path(spec)
    if not path.is_file() and (SPECS_DIR / f"{spec}.toml").is_file():
        path = SPECS_DIR / f"{spec}.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MnbenchError(f"spec file not found: {spec} (shipped specs: {', '.join(shipped_specs())}, "
                           "or 'this' for this machine's measured peak)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MnbenchError(f"cannot read spec {path}: {exc}") from None
    return roofs_from_spec(doc, where=str(path))


def roofs_from_spec(doc: dict[str, Any], *, where: str = "spec") -> Roofs:
    unknown = sorted(set(doc) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise MnbenchError(f"{where}: unknown key(s) {', '.join(unknown)}; a spec has "
                           f"{', '.join([*REQUIRED, *OPTIONAL])}")
    for key, kind in REQUIRED.items():
        if key not in doc:
            raise MnbenchError(f"{where}: missing {key!r}")
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in doc and (not isinstance(doc[key], kind) or isinstance(doc[key], bool)):
            raise MnbenchError(f"{where}: {key!r} must be a {getattr(kind, '__name__', 'number')}, "
                               f"got {doc[key]!r}")
    estimated = [str(x) for x in doc.get("estimated", [])]
    notes = doc.get("notes", "")
    if estimated:
        notes = f"estimates: {', '.join(estimated)}" + (f"; {notes}" if notes else "")
    return Roofs(name=doc["name"], peak_gmacs_per_s=float(doc["peak_gmacs_per_s"]),
                 bandwidth_gbytes_per_s=float(doc["bandwidth_gbytes_per_s"]),
                 layer_overhead_us=float(doc["launch_overhead_us"]), source=doc.get("source", where), notes=notes)


def this_machine(device: str = "cpu", *, precision: str = "fp32", reports_dir: str | Path | None = None,
                 threads: int | None = None) -> Roofs:
    """Roofs from this machine's peaks file (at `threads`, when given); a MnbenchError saying what to run when
    there is none."""
    from mnbench.roofline.peak import load_peak  # the peak module opens runtimes; a paper spec never needs it

    peak = load_peak(device, precision=precision, reports_dir=reports_dir, threads=threads)
    roofs = Roofs.from_peak(peak, name=f"this machine's {device}") if peak else None
    if roofs is None:
        at = f" --threads {threads}" if threads else ""
        raise MnbenchError(f"no measured bandwidth and layer overhead for {device} at {precision}"
                           f"{f' and {threads} threads' if threads else ''} on this machine; "
                           f"run `mnbench peak --device {device} --precision {precision}{at}` first")
    return roofs


def model_prediction(path: str | Path, cost, roofs: Roofs, *, precision: str = "fp32", batch_scale: int = 1):
    """The prediction of one ONNX file already costed (`cost`): calibrated where the roofs are."""
    model = onnx.load(str(path), load_external_data=False)
    return predict(cost, roofs, precision=precision, fused=fused_activations(model), batch_scale=batch_scale,
                   layers=analyse(model))


def predict_user_models(roofs: Roofs, paths: Sequence[Path], *, labels: Sequence[str] = (), pair: str | None = None,
                        batch: int = 1, precision: str = "fp32") -> list[dict[str, Any]]:
    """One row per user ONNX file (validated, costed and labelled as `mnbench run --model` does): its predicted
    latency, bound, MAC-count baseline (MACs / peak), per-layer detail and, for the pair, the predicted speedup."""
    from mnbench.artifacts.user_models import load_user_models

    models = load_user_models(paths, labels=labels, pair=pair, batch=batch)
    rows = []
    for model in models:
        scale = batch if model.config.dynamic_batch else 1
        prediction = model_prediction(model.path, model.cost, roofs, precision=precision, batch_scale=scale)
        macs = model.cost.macs * scale
        rows.append({
            "label": model.config.label, "file": str(model.path), "device": roofs.name, "batch": batch,
            "precision": precision, "macs": macs, "predicted_ms": prediction.time_ms, "bound": prediction.bound,
            "mac_baseline_ms": macs / (roofs.peak_gmacs_per_s * 1e6),
            "calibrated": roofs.calibration is not None, "layer_count": len(prediction.layers),
            "pair": model.config.pair, "predicted_speedup": None, "theoretical_speedup": None,
            "categories": prediction.by_category(),
            "unknown_operators": {op: dict(v) for op, v in prediction.unknown.items()},
            "unknown_lines": unknown_lines(prediction, model.config.label),
            "layers": prediction.layer_rows(), "figures": roofs.as_dict(),
        })
    paired = {row["pair"]["role"]: row for row in rows if row["pair"]}
    if len(paired) == 2:
        base, cand = paired["baseline"], paired["candidate"]
        for row in (base, cand):
            row["predicted_speedup"] = base["predicted_ms"] / cand["predicted_ms"] if cand["predicted_ms"] else None
            row["theoretical_speedup"] = base["macs"] / cand["macs"] if cand["macs"] else None
    return rows


def predict_rows(roofs: Roofs, configs: Iterable[tuple[str, float, int]], *, batch: int = 1,
                 precision: str = "fp32", models_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (arch, width, resolution): theoretical and roofline speedup, predicted latency per variant."""
    from mnbench.artifacts.export import export_model  # torch: only when something is exported

    rows = []
    for arch, width, resolution in configs:
        predictions, macs = {}, {}
        for variant in ("separable", "standard"):
            exported = export_model(ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution,
                                                batch=batch), models_dir=models_dir, progress=progress)
            predictions[variant] = model_prediction(exported.path, exported.cost, roofs, precision=precision)
            macs[variant] = exported.cost.macs
        sep, std = predictions["separable"], predictions["standard"]
        rows.append({
            "device": roofs.name, "arch": arch, "width": width, "resolution": resolution, "batch": batch,
            "precision": precision,
            "theoretical_speedup": macs["standard"] / macs["separable"],
            "predicted_speedup": roofline_speedup(std, sep),
            "predicted_ms_separable": sep.time_ms, "predicted_ms_standard": std.time_ms,
            "bound_separable": sep.bound, "bound_standard": std.bound,
            "categories_separable": sep.by_category(), "categories_standard": std.by_category(),
            "figures": roofs.as_dict(),
        })
    return rows
