"""Does the realized speedup reproduce, as a first run on a new machine promises? N separate runs of
`mnbench run --arch all --device cpu,openvino` with default settings, each with a fresh reports folder (no peak
file, no history: every run is a first run), then per pair (arch, device):

- coverage: the share of ordered pairs of runs (A, B) in which B's realized speedup falls inside A's 95 % interval;
- the interval's half-width (median and 90th percentile over runs and pairs);
- the spread of the realized speedup over the runs (max / min - 1);
- the pooled figure of all N runs (what `mnbench report` shows over them) and its half-width;
and each run's wall time, as a user waits for it (export cache warm, peak measured inside the run).

Targets (issue 28): coverage >= 90 % overall and >= 80 % for every pair; half-width median <= 10 %, p90 <= 20 %;
each run <= 150 s.

    python benchmarks/repeatability.py [--runs 5] [--keep DIR] [--from DIR] [--output FILE] [-- extra run options]
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnbench import atomic, results
from mnbench.host.machine import machine_info
from mnbench.report.pairs import build_report

COMMAND = ["run", "--arch", "all", "--device", "cpu,openvino"]
GOAL_WALL_S = 150.0


def run_all(n: int, folder: Path, extra: list[str]) -> list[tuple[Path, float]]:
    mnbench = str(Path(sys.executable).with_name("mnbench"))
    subprocess.run([mnbench, "models", "--format", "json"], check=True, capture_output=True)  # warm export cache
    out = []
    for i in range(n):
        path = folder / f"run{i + 1}.json"
        env = os.environ | {"MNBENCH_REPORTS_DIR": str(folder / f"reports{i + 1}")}  # a first run, every time
        start = time.perf_counter()
        done = subprocess.run([mnbench, *COMMAND, *extra, "--output", str(path)], env=env, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"run {i + 1} failed: {done.stderr[-2000:]}")
        print(f"run {i + 1}: {wall:.1f} s", flush=True)
        (folder / f"run{i + 1}.wall_s").write_text(f"{wall:.1f}\n")
        out.append((path, wall))
    return out


def pair_rows(path: Path) -> dict[tuple[str, str], dict]:
    report = build_report([(path, results.load_result(path))])
    return {(row["arch"], row["device"]): row for row in report.rows}


def summarize(paths: list[Path], walls: list[float]) -> str:
    runs = [pair_rows(p) for p in paths]
    pooled = {(r["arch"], r["device"]): r for r in build_report([(p, results.load_result(p)) for p in paths]).rows}
    lines = ["| pair | realized per run | coverage | half-width median | spread | pooled (all runs) |",
             "|---|---|---|---|---|---|"]
    hits = total = 0
    halves, worst = [], 1.0
    for key in sorted(runs[0], key=lambda k: (k[1], k[0])):
        rows = [run[key] for run in runs if key in run]
        pair_hits = sum(a["realized_speedup_ci"][0] <= b["realized_speedup"] <= a["realized_speedup_ci"][1]
                        for a, b in itertools.permutations(rows, 2))
        pair_total = len(rows) * (len(rows) - 1)
        hits, total = hits + pair_hits, total + pair_total
        worst = min(worst, pair_hits / pair_total)
        pair_halves = [r["realized_speedup_halfwidth"] for r in rows]
        halves += pair_halves
        points = [r["realized_speedup"] for r in rows]
        p = pooled[key]
        lines.append(f"| {key[0]} / {key[1]} | {', '.join(f'{x:.2f}' for x in points)} | "
                     f"{pair_hits}/{pair_total} | ±{np.median(pair_halves):.1%} | {max(points) / min(points) - 1:.1%} | "
                     f"{p['realized_speedup']:.2f} [{p['realized_speedup_ci'][0]:.2f}–{p['realized_speedup_ci'][1]:.2f}] "
                     f"({p['repetitions']} repetitions) |")
    lines += ["", f"- coverage: **{hits / total:.0%}** overall ({hits}/{total}), worst pair {worst:.0%} "
                  f"(targets >= 90 %, >= 80 %)",
              f"- half-width: median **±{np.median(halves):.1%}**, p90 **±{np.percentile(halves, 90):.1%}** "
              f"(targets <= 10 %, <= 20 %)",
              f"- wall time per run: {', '.join(f'{w:.0f} s' for w in walls)} (target <= {GOAL_WALL_S:.0f} s; "
              f"fresh reports folder each: the peak is measured in every run)"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep", type=Path, help="folder for the result files (default: a temp folder)")
    p.add_argument("--from", dest="source", type=Path, help="recompute from run*.json kept in this folder")
    p.add_argument("--output", type=Path)
    p.add_argument("extra", nargs="*", help="more `mnbench run` options, after --")
    args = p.parse_args()
    started = dt.datetime.now(dt.timezone.utc)
    if args.source:
        paths = sorted(args.source.glob("run*.json"), key=lambda q: int(q.stem[3:]))
        walls = [float((q.with_suffix(".wall_s")).read_text()) if q.with_suffix(".wall_s").exists() else float("nan")
                 for q in paths]
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="mnbench-repeat-"))
        folder.mkdir(parents=True, exist_ok=True)
        made = run_all(args.runs, folder, args.extra)
        paths, walls = [p for p, _ in made], [w for _, w in made]
    info = machine_info()
    header = [f"# Repeatability of `mnbench {' '.join(COMMAND + args.extra)}`", "",
              f"{len(paths)} runs, started {started:%Y-%m-%d %H:%M} UTC; {info.get('cpu_model')} "
              f"({info.get('available_cpus')} CPUs available), {info.get('os')}; versions "
              f"{info.get('versions')}.", ""]
    text = "\n".join(header) + summarize(paths, walls) + "\n"
    print(text)
    if args.output:
        atomic.write_text(args.output, text)


if __name__ == "__main__":
    main()
