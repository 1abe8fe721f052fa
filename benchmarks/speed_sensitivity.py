"""Does the realized speedup at the machine's best speed reproduce? Two independent sets of runs of one host.

Each set is a folder of `mnbench run --arch all --device cpu,openvino` result files (as `benchmarks/repeatability.py
--keep DIR` leaves them). Per pair (arch, device) and set:
- the fitted line log speedup ~ log reference p50 over the set's repetitions (`mnbench.speed_sensitivity.fit`):
  its slope and how well it fits (r);
- the promise: both sets read at one machine speed (the faster of the two sets' best reference), does each set's
  estimate fall inside the other's 95 % interval?
- leave-one-run-out: each run's repetitions moved along the line fitted on the other runs of its set, to that
  speed; the spread of these over the runs against the spread of the runs' own realized speedups (what the line
  buys a single run).

    python benchmarks/speed_sensitivity.py DIR_A DIR_B [--output benchmarks/results/speed_sensitivity.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

import numpy as np

from mnbench import atomic, results, speed_sensitivity
from mnbench.machine import machine_info


def points_per_pair(folder: Path) -> dict[tuple[str, str], list[speed_sensitivity.Point]]:
    out: dict[tuple[str, str], list[speed_sensitivity.Point]] = {}
    for path in sorted(folder.glob("run*.json")):
        records = {(r["arch"], r["device"], r["variant"]): r for r in results.load_result(path)["records"]}
        for (arch, device, variant), standard in records.items():
            separable = records.get((arch, device, "separable"))
            if variant == "standard" and separable:
                out.setdefault((arch, device), []).extend(
                    speed_sensitivity.repetition_points(path.name, standard, separable))
    return out


def leave_one_run_out(points: list[speed_sensitivity.Point], at_ms: float) -> tuple[list[float], list[float]]:
    """Per run: its own realized speedup (geometric mean over its repetitions) and the same moved to `at_ms`."""
    raw, moved = [], []
    for run in sorted({p.run for p in points}):
        own = [p for p in points if p.run == run]
        found = speed_sensitivity.fit([p for p in points if p.run != run])
        if found is None:
            continue
        raw.append(math.exp(np.mean([p.log_speedup for p in own])))
        moved.append(math.exp(np.mean([p.log_speedup - found.slope * (p.log_reference_ms - math.log(at_ms))
                                       for p in own])))
    return raw, moved


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1 if len(values) > 1 else float("nan")


def correlation(points: list[speed_sensitivity.Point]) -> float:
    return float(np.corrcoef([p.log_reference_ms for p in points], [p.log_speedup for p in points])[0, 1])


def summarize(folder_a: Path, folder_b: Path) -> str:
    sets = [points_per_pair(folder_a), points_per_pair(folder_b)]
    pairs = sorted(set(sets[0]) & set(sets[1]))
    lines = ["| pair | slope A / B (r) | at best speed A | at best speed B | B in A / A in B | spread of runs: own → moved (A, B) |",
             "|---|---|---|---|---|---|"]
    hits = total = 0
    raw_spreads, moved_spreads = [], []
    for pair in pairs:
        a_pts, b_pts = sets[0][pair], sets[1][pair]
        at_ms = min(math.exp(p.log_reference_ms) for p in a_pts + b_pts)
        fa, fb = (speed_sensitivity.fit(pts, at_reference_ms=at_ms) for pts in (a_pts, b_pts))
        if fa is None or fb is None:
            lines.append(f"| {pair[0]} / {pair[1]} | – | – | – | – | – |")
            continue
        b_in_a = fa.speedup_at_best_ci[0] <= fb.speedup_at_best <= fa.speedup_at_best_ci[1]
        a_in_b = fb.speedup_at_best_ci[0] <= fa.speedup_at_best <= fb.speedup_at_best_ci[1]
        hits += b_in_a + a_in_b
        total += 2
        cells = []
        for pts in (a_pts, b_pts):
            raw, moved = leave_one_run_out(pts, at_ms)
            raw_spreads.append(spread(raw))
            moved_spreads.append(spread(moved))
            cells.append(f"{spread(raw):.0%} → {spread(moved):.0%}")
        lines.append(
            f"| {pair[0]} / {pair[1]} | {fa.slope:+.2f} ({correlation(a_pts):+.2f}) / {fb.slope:+.2f} "
            f"({correlation(b_pts):+.2f}) | {fa.speedup_at_best:.2f} [{fa.speedup_at_best_ci[0]:.2f}, "
            f"{fa.speedup_at_best_ci[1]:.2f}] | {fb.speedup_at_best:.2f} [{fb.speedup_at_best_ci[0]:.2f}, "
            f"{fb.speedup_at_best_ci[1]:.2f}] | {'yes' if b_in_a else 'no'} / {'yes' if a_in_b else 'no'} | "
            f"{cells[0]}, {cells[1]} |")
    info = machine_info()
    head = [
        "# Realized speedup at the machine's best speed: two independent sets of runs", "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {info.get('cpu_model')}, "
        f"{info.get('logical_cpus')} vCPUs; sets {folder_a} and {folder_b} (runs of `mnbench run --arch all --device "
        "cpu,openvino`, defaults). Both sets read at the faster of their best reference p50s.", "",
        f"- Each set's estimate inside the other's 95 % interval: **{hits}/{total}**.",
        f"- Spread of a single run's realized speedup over the runs of a set: median {np.nanmedian(raw_spreads):.0%}, "
        f"worst {np.nanmax(raw_spreads):.0%}; moved to that speed along the line of the set's other runs: median "
        f"**{np.nanmedian(moved_spreads):.0%}**, worst **{np.nanmax(moved_spreads):.0%}**.", "",
    ]
    return "\n".join(head + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_a", type=Path)
    parser.add_argument("set_b", type=Path)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "speed_sensitivity.md")
    args = parser.parse_args()
    text = summarize(args.set_a, args.set_b)
    print(text)
    atomic.write_text(args.output, text)


if __name__ == "__main__":
    main()
