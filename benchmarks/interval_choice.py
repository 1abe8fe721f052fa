"""How much may the other pairs of a run lend one pair's variance? Re-judges saved sets of runs offline.

Each folder holds the run*.json of one `benchmarks/repeatability.py --keep` set (separate runs of
`mnbench run --arch all --device cpu,openvino`). For each candidate prior weight d0 (`repetitions.moderated`; 0 is
each pair alone, "all" pools the other pairs outright) it prints the rerun-interval coverage (B's estimate inside
A's 95 % interval over ordered pairs of runs in one set), the worst pair's coverage, and the median and 90th
percentile half-width. Nothing is measured: the choice of `repetitions.PRIOR_DF_CAP` rests on these figures.

    python benchmarks/interval_choice.py SET_DIR [SET_DIR ...] [--output FILE]
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np

from mnbench import atomic, repetitions, results, speedup_history
from mnbench.report.shared_noise import leave_one_out_priors

CANDIDATES = (0.0, 2.0, 4.0, 8.0, math.inf)


def pair_estimates(path: Path) -> dict[tuple, repetitions.RepeatedEstimate]:
    """(arch, device) -> the pair's own estimate from its repetitions, as the report computes it."""
    records = {(r["arch"], r["device"], r["variant"]): r for r in results.load_result(path)["records"]}
    out = {}
    for arch, device, variant in records:
        if variant == "standard" and (arch, device, "separable") in records:
            std, sep = records[(arch, device, "standard")], records[(arch, device, "separable")]
            out[(arch, device)] = repetitions.ratio_estimate(repetitions.record_rounds(std),
                                                             repetitions.record_rounds(sep))
    return out


def moderated_run(own: dict[tuple, repetitions.RepeatedEstimate], d0: float) -> dict[tuple, repetitions.RepeatedEstimate]:
    """Each pair's estimate with the other pairs of its device in the run as a prior worth at most d0."""
    priors = leave_one_out_priors({pair: (pair[1], e.between_sd ** 2, e.repetitions) for pair, e in own.items()})
    return {pair: repetitions.moderated(e, *priors.get(pair, (math.nan, 0.0)), cap=d0) for pair, e in own.items()}


def judge(sets: list[list[dict]], d0: float) -> str:
    hits = total = 0
    per_pair_hits, per_pair_total, widths = Counter(), Counter(), []
    for runs in sets:
        estimates = [moderated_run(own, d0) for own in runs]
        widths += [e.rerun_rel_halfwidth for run in estimates for e in run.values()]
        for a, b in itertools.permutations(range(len(runs)), 2):
            for pair, e in estimates[a].items():
                if pair in runs[b]:
                    inside = e.rerun[0] <= runs[b][pair].point <= e.rerun[1]
                    hits, total = hits + inside, total + 1
                    per_pair_hits[pair] += inside
                    per_pair_total[pair] += 1
    worst = min(per_pair_hits[p] / per_pair_total[p] for p in per_pair_total)
    label = "each pair alone" if d0 == 0 else "pooled outright" if d0 == math.inf else f"d0 = {d0:g}"
    return (f"| {label} | {hits}/{total} = {hits / total:.0%} | {worst:.0%} | ±{np.median(widths):.0%} | "
            f"±{np.percentile(widths, 90):.0%} |")


def judge_history(sets: list[list[dict]], d0: float) -> str:
    """Each pair as if alone in its run, its prior the same pair in the host's earlier runs (all sets in order,
    the last `speedup_history.HISTORY_RUNS`), as `mnbench run` attaches it."""
    earlier: dict[tuple, list[float]] = {}
    hits = total = 0
    widths = []
    for runs in sets:
        judged = []
        for own in runs:
            run = {}
            for pair, e in own.items():
                past = earlier.get(pair, [])[-speedup_history.HISTORY_RUNS:]
                run[pair] = repetitions.moderated(e, float(np.mean(past)) if past else math.nan,
                                                  2.0 * len(past), cap=d0)
                earlier.setdefault(pair, []).append(e.between_sd ** 2)
            judged.append(run)
        for a, b in itertools.permutations(range(len(runs)), 2):
            for pair, e in judged[a].items():
                hits += e.rerun[0] <= runs[b][pair].point <= e.rerun[1]
                total += 1
        widths += [e.rerun_rel_halfwidth for run in judged for e in run.values()]
    label = "each pair alone" if d0 == 0 else f"d0 = {d0:g}"
    return f"| {label} | {hits}/{total} = {hits / total:.0%} | ±{np.median(widths):.0%} | ±{np.percentile(widths, 90):.0%} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/interval_choice.md"))
    args = parser.parse_args()
    sets = [[pair_estimates(p) for p in sorted(folder.glob("run*.json"))] for folder in args.sets]
    described = []
    for folder, runs in zip(args.sets, sets):
        first = results.load_result(sorted(folder.glob("run*.json"))[0])
        described.append(f"{len(runs)} runs from {first.get('created_utc')} on {first['machine'].get('cpu_model')}")
    lines = [f"# Rerun intervals with the run's other pairs as a prior ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"{len(sets)} sets of separate runs of `mnbench run --arch all --device cpu,openvino` (defaults): "
             f"{'; '.join(described)}. Coverage over ordered pairs of runs in one set; half-widths relative to the "
             f"estimate; the default is d0 = {repetitions.PRIOR_DF_CAP:g}.", "",
             "| prior weight | coverage | worst pair's coverage | median half-width | p90 half-width |",
             "|---|---:|---:|---:|---:|"]
    lines += [judge(sets, d0) for d0 in CANDIDATES]
    lines += ["", "Each pair as if it were alone in its run (`mnbench run --arch v2`), with the same pair's earlier runs on",
              f"this host as its prior (the last {speedup_history.HISTORY_RUNS}, all sets in order; a pair's first run "
              "has none): `mnbench.speedup_history`.", "",
              "| prior weight | coverage | median half-width | p90 half-width |", "|---|---:|---:|---:|"]
    lines += [judge_history(sets, d0) for d0 in (0.0, 2.0, 4.0)]
    text = "\n".join(lines) + "\n"
    atomic.write_text(args.output, text)
    print(text)


if __name__ == "__main__":
    main()
