"""What the runs of one host say about a pair, beyond its newest run: how far its realized speedup moved from run
to run, and how it follows the machine's speed (`mnbench.speed_sensitivity`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from mnbench import speed_sensitivity

SPEED_FIELDS = ("speed_sensitivity", "speed_sensitivity_ci", "realized_speedup_at_best_speed",
                "realized_speedup_at_best_speed_ci", "best_reference_ms")


def spread_fields(speedups: Sequence[float | None]) -> dict[str, Any]:
    """The pair's realized speedup per run of this host (oldest first) and its spread, max/min - 1."""
    values = [x for x in speedups if x]
    spread = max(values) / min(values) - 1 if len(values) > 1 else None
    return {"runs": len(values), "realized_speedup_runs": values, "runs_spread": spread}


def speed_fields(runs: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> dict[str, Any]:
    """The speed-sensitivity line over (source, standard record, separable record) of each run; None where it
    cannot be told (fewer than three runs, or a machine whose speed did not move)."""
    points = [point for source, standard, separable in runs
              for point in speed_sensitivity.repetition_points(source, standard, separable)]
    found = speed_sensitivity.fit(points) if points else None
    if found is None:
        return dict.fromkeys(SPEED_FIELDS)
    at_best_ci = found.speedup_at_best_ci
    return {"speed_sensitivity": found.slope, "speed_sensitivity_ci": list(found.slope_ci),
            "realized_speedup_at_best_speed": found.speedup_at_best,
            "realized_speedup_at_best_speed_ci": list(at_best_ci) if all(0 < x < float("inf") for x in at_best_ci)
            else None,
            "best_reference_ms": found.best_reference_ms}


def speed_note(described: str, row: Mapping[str, Any]) -> str:
    lo, hi = row["speed_sensitivity_ci"]
    at_best = row["realized_speedup_at_best_speed_ci"]
    interval = f" [{at_best[0]:.2f}, {at_best[1]:.2f}]" if at_best else ""
    return (f"{described}: the realized speedup changes {row['speed_sensitivity']:+.2f} % [{lo:+.2f}, {hi:+.2f}] "
            f"for each 1 % the machine slows (reference p50, {row['runs']} runs); at this host's best speed "
            f"(reference {row['best_reference_ms']:.3g} ms) it is {row['realized_speedup_at_best_speed']:.2f}"
            f"{interval} (exploratory: a figure to compare, not a measurement)")
