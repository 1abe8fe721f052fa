"""Which per-repetition statistic and thread count make the realized speedup reproduce: measures nothing itself.

Reads kept result files of `mnbench run --arch all --device cpu,openvino --threads T --repetitions R` (models only,
many short repetitions) and, per thread count and candidate statistic, judges each run's estimate and its rerun
interval (mean ± t(R−1) · s · √(2/R) over the repetition values, log scale) against the other runs of the same
thread count: coverage of the other runs' estimates, median and p90 half-width, and the spread of the estimates
(max / min − 1 per pair). Candidates, each a value per repetition:
  median       log(median std calls) − log(median sep calls)            (ratio of the repetition's p50s)
  round-median median over the repetition's rounds of log(round p50 std / round p50 sep)
  p10          log(p10 std) − log(p10 sep)
  min          log(min std) − log(min sep)
`--first N` judges every run on its first N repetitions only (what a shorter run would have seen).

    .venv/bin/python benchmarks/estimator_choice.py FILE... [--first N] [--output FILE]
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnbench import repetitions  # noqa: E402

CANDIDATES = ("median", "round-median", "p10", "min")


def repetition_logs(std: dict, sep: dict, candidate: str) -> list[float]:
    out = []
    for s_rounds, p_rounds in zip(repetitions.record_rounds(std), repetitions.record_rounds(sep)):
        s_all, p_all = np.concatenate(s_rounds), np.concatenate(p_rounds)
        if candidate == "median":
            out.append(math.log(np.median(s_all) / np.median(p_all)))
        elif candidate == "round-median":
            out.append(float(np.median([math.log(np.median(a) / np.median(b)) for a, b in zip(s_rounds, p_rounds)])))
        elif candidate == "p10":
            out.append(math.log(np.percentile(s_all, 10) / np.percentile(p_all, 10)))
        else:
            out.append(math.log(s_all.min() / p_all.min()))
    return out


def pairs_of(doc: dict) -> dict[tuple, tuple[dict, dict]]:
    by = defaultdict(dict)
    for r in doc["records"]:
        by[(r["arch"], r["device"])][r["variant"]] = r
    return {k: (v["standard"], v["separable"]) for k, v in by.items() if len(v) == 2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--first", type=int, default=None)
    p.add_argument("--output", type=Path)
    args = p.parse_args()
    runs = defaultdict(list)  # threads -> [pairs]
    for path in args.files:
        doc = json.loads(path.read_text())
        threads = {r["threads"] for r in doc["records"]}
        runs[min(threads)].append(pairs_of(doc))
    lines = ["| threads | statistic | runs | coverage | worst pair | half-width median | p90 | spread median | "
             "spread worst | repetitions |", "|---|---|---|---|---|---|---|---|---|---|"]
    for threads, docs in sorted(runs.items()):
        for candidate in CANDIDATES:
            estimates = defaultdict(list)
            for pairs in docs:
                for key, (std, sep) in pairs.items():
                    logs = repetition_logs(std, sep, candidate)[:args.first]
                    estimates[key].append(repetitions.estimate(logs))
            hits, total, halves, spreads, worst, reps = 0, 0, [], [], 1.0, []
            for key, ests in estimates.items():
                pair_hits = pair_total = 0
                for a, b in itertools.permutations(ests, 2):
                    inside = a.interval[0] <= b.point <= a.interval[1]
                    pair_hits += inside
                    pair_total += 1
                hits, total = hits + pair_hits, total + pair_total
                worst = min(worst, pair_hits / pair_total if pair_total else 1.0)
                halves += [e.rel_halfwidth for e in ests]
                points = [e.point for e in ests]
                spreads.append(max(points) / min(points) - 1)
                reps += [e.repetitions for e in ests]
            if not total:
                continue  # one run of this thread count: nothing to compare with yet
            lines.append(f"| {threads} | {candidate} | {len(docs)} | {hits / total:.0%} | {worst:.0%} | "
                         f"±{np.median(halves):.1%} | ±{np.percentile(halves, 90):.1%} | {np.median(spreads):.1%} | "
                         f"{max(spreads):.1%} | {int(np.median(reps))} |")
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
