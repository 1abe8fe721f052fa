"""The noise the pairs of one run share: a prior for each pair's between-repetition variance.

The pairs one run measured on one device (one runtime, precision, thread count and batch) ran in the same
repetitions on the same machine, so how far their speedups move between repetitions is much alike. With three
repetitions a pair knows its own variance on two degrees of freedom only; the others of its run know it on many
more. Each pair gets the others' variance (never its own: that would count its data twice), pooled over their
degrees of freedom, and `repetitions.moderated` decides how much it may weigh. A pair alone in its run takes the
host's earlier runs of it instead, where the run attached them (`mnbench.speedup_history`).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

from mnbench import speedup_history

Prior = tuple[float, float]  # (variance on the log scale, its degrees of freedom)


def run_priors(chosen: Mapping[tuple, Mapping[str, Any]], realized_speedup: Callable[..., Mapping[str, Any]]
               ) -> dict[tuple, Prior]:
    """(group, model) -> the prior for its speedup's between-repetition variance: the other pairs one file
    measured in the same group (machine, device and settings), else the host's earlier runs of the pair that the
    run attached to its records (`mnbench.speedup_history`). `chosen`: (group, model) -> variant -> the
    report's sourced record; `realized_speedup(standard, separable)`: the report's own, unmoderated."""
    variances = {}
    for (group, model), by_variant in chosen.items():
        standard, separable = by_variant.get("standard"), by_variant.get("separable")
        if standard and separable and standard.source == separable.source:
            own = realized_speedup(standard, separable)
            if own.get("realized_speedup") is not None:
                variances[(group, model)] = ((group, standard.source), own["between_repetition_sd"] ** 2,
                                             own["repetitions"])
    priors = leave_one_out_priors(variances)
    for key in variances.keys() - priors.keys():  # alone in its run: this host's earlier runs of it, if any
        history = speedup_history.prior_of(chosen[key]["separable"].record)
        if history is not None:
            priors[key] = history
    return priors


def leave_one_out_priors(variances: Mapping[Hashable, tuple[Hashable, float, int]]) -> dict[Hashable, Prior]:
    """pair -> (the pooled variance of the other pairs measured together with it, their degrees of freedom).

    `variances`: pair -> (what it was measured together with, its between-repetition variance, its repetitions).
    A pair alone in its run, or whose companions had one repetition each, gets no prior."""
    sums: dict[Hashable, tuple[float, int]] = {}
    for together, variance, reps in variances.values():
        total, dof = sums.get(together, (0.0, 0))
        sums[together] = (total + (reps - 1) * variance, dof + max(reps - 1, 0))
    priors: dict[Hashable, Prior] = {}
    for pair, (together, variance, reps) in variances.items():
        total, dof = sums[together]
        others_dof = dof - max(reps - 1, 0)
        if others_dof > 0:
            priors[pair] = ((total - (reps - 1) * variance) / others_dof, float(others_dof))
    return priors
