"""`mnbench models`: every arch × variant with its theoretical cost, counted on the exported ONNX graph; ablations."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from mnbench.archs.ablations import ABLATION_LIST
from mnbench.config import CATEGORIES, ModelConfig
from mnbench.artifacts.export import ExportedModel, export_model
from mnbench.graph.memory import memory_minimum


def summarize_exported(exported: ExportedModel) -> dict[str, Any]:
    """One model's cost: params (PyTorch count, BN included), MACs and other FLOPs (ONNX graph), MAC share per category."""
    cost = exported.cost
    by_category = cost.by_category()
    config = exported.config
    return {
        "arch": config.arch,
        "variant": config.variant,
        "width": config.width,
        "resolution": config.resolution,
        "batch": config.batch,
        "ablation": config.ablation,
        "params": int(exported.params),
        "graph_params": int(cost.params),
        "macs": int(cost.macs),
        "other_flops": int(cost.other_flops),
        "weight_bytes": int(cost.weight_bytes),
        # The least memory it needs: weights + the most live activations (graph order; mnbench.graph.memory)
        "memory_minimum_bytes": memory_minimum(exported.path).minimum_bytes,
        "categories": {
            name: {"macs": int(by_category[name].macs), "mac_share": by_category[name].mac_share}
            for name in CATEGORIES
            if name in by_category
        },
        "path": str(exported.path),
    }


def model_table(archs: list[str], widths: list[float], resolutions: list[int], *, ablation: str | None = None,
                models_dir: Path | None = None,
                progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Summaries of separable and standard for each arch/width/resolution, with the theoretical speedup on both rows.

    With an ablation, the rows are the ablated nets, and each also carries `params_delta`, `macs_delta` and
    `other_flops_delta`: ablated minus published, same arch, variant, width and resolution. `progress` is told
    each export step (`export_model`)."""
    rows = []
    for arch in archs:
        for width in widths:
            for resolution in resolutions:
                pair = {}
                for variant in ("separable", "standard"):
                    config = ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution,
                                         ablation=ablation)
                    row = summarize_exported(export_model(config, models_dir=models_dir, progress=progress))
                    if ablation is not None:
                        published = summarize_exported(export_model(
                            ModelConfig(arch=arch, variant=variant, width=width, resolution=resolution),
                            models_dir=models_dir, progress=progress))
                        for key in ("params", "macs", "other_flops"):
                            row[f"{key}_delta"] = row[key] - published[key]
                    pair[variant] = row
                speedup = pair["standard"]["macs"] / pair["separable"]["macs"]
                for row in pair.values():
                    row["theoretical_speedup"] = speedup
                    rows.append(row)
    return rows


def ablation_table(archs: list[str]) -> list[dict[str, Any]]:
    """One row per ablation of any of `archs`, each claim about it as a dict (figures: ablated minus published)."""
    return [
        {
            "name": ablation.name,
            "archs": list(ablation.archs),
            "description": ablation.description,
            "claims": [asdict(claim) for claim in ablation.claims],
        }
        for ablation in ABLATION_LIST
        if any(arch in ablation.archs for arch in archs)
    ]
