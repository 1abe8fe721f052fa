"""`mnbench ablate`: which nets to measure together, and the result file's `ablate` section.

Each arch's published separable net and its ablated nets form one group, measured in the same interleaved rounds
of every repetition (`mnbench.run.plan`), so each ablation's latency change is paired by round. The rows and
verdicts are the report's (`mnbench.report.ablations`), so `ablate` and `report` never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mnbench.ablate.claims import ARCH_COMPARISONS, TOLERANCE
from mnbench.archs.ablations import ABLATIONS
from mnbench.config import ModelConfig, ablations_for, check_ablation
from mnbench.errors import MnbenchError


def resolve_ablations(archs: list[str], spec: str | None) -> dict[str, list[str]]:
    """arch -> the ablations to measure: `spec` None or 'all' (every one that applies), or a comma list. A name
    that applies to none of `archs` is an error naming the allowed ones."""
    names = None if spec is None or spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    chosen = {arch: list(ablations_for(arch)) if names is None else [n for n in names if n in ablations_for(arch)]
              for arch in archs}
    for name in names or []:
        if not any(name in found for found in chosen.values()):
            if len(archs) == 1:
                check_ablation(archs[0], name)  # raises, naming the arch's ablations
            allowed = ", ".join(n for n in ABLATIONS if any(a in ABLATIONS[n].archs for a in archs)) or "none"
            where = ", ".join(archs)
            if name not in ABLATIONS:
                raise MnbenchError(f"unknown ablation {name!r}; for {where} choose from: {allowed}")
            raise MnbenchError(f"ablation {name!r} does not apply to {where} (only to "
                               f"{', '.join(ABLATIONS[name].archs)}); choose from: {allowed}")
    compared = {a for c in ARCH_COMPARISONS if {c.arch, c.baseline} <= set(archs) for a in (c.arch, c.baseline)}
    kept = {arch: found for arch, found in chosen.items() if found or arch in compared}
    if not kept:
        with_some = ", ".join(sorted({a for n in ABLATIONS.values() for a in n.archs}))
        raise MnbenchError(f"nothing to compare for {', '.join(archs)}: ablations exist for {with_some}; "
                           f"v1 is compared against v2 with --arch all (or --arch v1,v2)")
    return kept


def ablation_groups(chosen: dict[str, list[str]], widths: list[float], resolutions: list[int], batch: int = 1
                    ) -> tuple[tuple[ModelConfig, ...], ...]:
    """Per arch, width and resolution: the published separable net first, then its ablated nets."""
    return tuple(
        tuple(ModelConfig(arch=arch, width=w, resolution=r, batch=batch, ablation=a) for a in (None, *names))
        for arch, names in chosen.items() for w in widths for r in resolutions
    )


def ablate_section(plan, *, models_dir: Path | None = None) -> dict[str, Any]:
    """The result file's `ablate` section: every measured model's cost (cached exports, so cheap) and the
    tolerance the verdicts used."""
    from mnbench.artifacts.export import export_model

    costs = {}
    for group in plan.configs():
        for config in group:
            exported = export_model(config, models_dir=models_dir, progress=False)
            costs[config.slug] = {"macs": int(exported.macs_per_image), "params": int(exported.params),
                                  "other_flops": int(exported.cost.other_flops) // config.batch}
    return {"tolerance": TOLERANCE, "costs": costs}


def run_ablations(plan, *, models_dir: Path | None = None, reports_dir: Path | None = None,
                  run: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Measure the plan (`run`: `runner.run_plan` or a wrapper with progress) and add the `ablate` section.
    After Ctrl-C, the `RunInterrupted` raised carries the groups measured so far with their section, so they can
    be kept: each group (a published net and its ablations) is judged on its own."""
    from mnbench.run.plan import RunInterrupted, run_plan

    try:
        doc = (run or run_plan)(plan, models_dir=models_dir, reports_dir=reports_dir)
    except RunInterrupted as exc:
        if exc.partial_result is not None:
            exc.partial_result["ablate"] = ablate_section(plan, models_dir=models_dir)
        raise
    doc["ablate"] = ablate_section(plan, models_dir=models_dir)
    return doc
