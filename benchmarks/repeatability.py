"""Do realized speedups reproduce? N separate `mnbench run --arch all --device cpu,openvino` (defaults), then:

- per pair (arch, device), the spread of the realized speedup over the runs (max / min - 1);
- interval coverage: the share of ordered pairs of runs (A, B) in which B's estimate falls inside A's 95 % interval,
  for the interval mnbench reports now (the repetitions' rerun interval) and, on the very same samples, for the
  interval it reported before (a bootstrap over all samples pooled, as if independent: `stats.ratio_of_medians_ci`),
  and for each pair's rerun interval from its own repetitions alone (before the other pairs of the run lent it
  their variance: `report/shared_noise.py`), with the median half-width of both;
- the model-vs-control agreement inside a run: |p50(model) / p50(control) - 1| per record and repetition (the
  control is the same file in a second session, so this is the session effect left);
- the wall time of each run (warm model cache; goal 150 s).

Goals on the shared 2-core VM (issue 10): coverage >= 90 %; spread median <= 5 %, worst <= 10 %; model vs control
within 2 % at the 90th percentile; each run <= 150 s.

    python benchmarks/repeatability.py [--runs 5] [--from DIR] [--threads N] [--output FILE]
    # --from: recompute from result files already made; --threads: passed to `mnbench run` (default: its own)
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

from mnbench import atomic, repetitions, results
from mnbench.machine import machine_info
from mnbench.report.pairs import SourcedRecord, build_report, realized_speedup
from mnbench.stats import ratio_of_medians_ci

COMMAND = ["run", "--arch", "all", "--device", "cpu,openvino"]
GOAL_WALL_S = 150.0


def run_all(n: int, folder: Path, extra: list[str]) -> list[tuple[Path, float]]:
    mnbench = str(Path(sys.executable).with_name("mnbench"))
    env = os.environ | {"MNBENCH_REPORTS_DIR": str(folder / "reports")}
    subprocess.run([mnbench, "models", "--format", "json"], env=env, check=True, capture_output=True)
    for device in ("cpu", "openvino"):
        subprocess.run([mnbench, "peak", "--device", device], env=env, check=True, capture_output=True)
    out = []
    for i in range(n):
        path = folder / f"run{i + 1}.json"
        start = time.perf_counter()
        done = subprocess.run([mnbench, *COMMAND, *extra, "--output", str(path)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"run {i + 1} failed: {done.stderr[-2000:]}")
        print(f"run {i + 1}: {wall:.1f} s", flush=True)
        out.append((path, wall))
    return out


def pair_rows(path: Path) -> dict[tuple, dict]:
    doc = results.load_result(path)
    report = build_report([(path, doc)])
    by_key = {(r["arch"], r["device"]): r for r in report.rows}
    records = {(r["arch"], r["device"], r["variant"]): r for r in doc["records"]}
    for (arch, device), row in by_key.items():
        std, sep = records[(arch, device, "standard")], records[(arch, device, "separable")]
        _, lo, hi = ratio_of_medians_ci(std["samples_ms"], sep["samples_ms"], n_boot=1000)
        row["pooled_ci"] = (lo, hi)
        alone = realized_speedup(*(SourcedRecord(machine="", source=str(path), created_utc="", record=r)
                                   for r in (std, sep)))
        row["own_ci"], row["own_halfwidth"] = alone["realized_speedup_ci"], alone["realized_speedup_rerun_halfwidth"]
    return by_key


def control_agreement(path: Path) -> list[float]:
    out = []
    for data in results.load_result(path)["records"]:
        record = results.Record.from_json(data)
        control = record.controls.get(data["model_sha256"])
        if control is None:
            continue
        model_reps = record.repetitions()
        control_reps = repetitions.repetition_samples(control.series.samples_ms, control.series.round_sizes,
                                                      record.repetition_rounds)
        for m, c in zip(model_reps, control_reps):
            out.append(abs(float(np.median(m.samples_ms)) / float(np.median(c)) - 1))
    return out


def coverage(rows_per_run: list[dict], key: str) -> tuple[int, int]:
    hits = total = 0
    for a, b in itertools.permutations(range(len(rows_per_run)), 2):
        for pair, row in rows_per_run[a].items():
            other = rows_per_run[b].get(pair)
            interval = row.get(key)
            if other is None or not interval:
                continue
            total += 1
            hits += interval[0] <= other["realized_speedup"] <= interval[1]
    return hits, total


def summarize(runs: list[tuple[Path, float]], extra: list[str]) -> str:
    rows_per_run = [pair_rows(path) for path, _ in runs]
    pairs = sorted(set().union(*rows_per_run))
    lines = ["| pair | realized speedup per run | spread | last run's 95 % rerun interval |", "|---|---|---:|---|"]
    spreads = []
    for pair in pairs:
        values = [r[pair]["realized_speedup"] for r in rows_per_run if pair in r]
        spread = max(values) / min(values) - 1
        spreads.append(spread)
        ci = rows_per_run[-1][pair].get("realized_speedup_ci")
        lines.append(f"| {pair[0]} / {pair[1]} | {', '.join(f'{v:.2f}' for v in values)} | {spread:.1%} | "
                     + (f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "–") + " |")
    new_hits, total = coverage(rows_per_run, "realized_speedup_ci")
    old_hits, _ = coverage(rows_per_run, "pooled_ci")
    mean_hits, _ = coverage(rows_per_run, "realized_speedup_mean_ci")
    own_hits, _ = coverage(rows_per_run, "own_ci")
    halfwidth = {key: np.median([r[key] for rows in rows_per_run for r in rows.values()])
                 for key in ("realized_speedup_rerun_halfwidth", "own_halfwidth")}
    agreement = [x for path, _ in runs for x in control_agreement(path)]
    walls = [w for _, w in runs]
    threads = sorted({r["threads"] for path, _ in runs for r in results.load_result(path)["records"]})
    info = machine_info()
    head = [
        f"# Repeatability of realized speedups: {len(runs)} runs of `mnbench {' '.join(COMMAND + extra)}`", "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {info.get('cpu_model')}, "
        f"{info.get('logical_cpus') or os.cpu_count()} vCPUs, onnxruntime {info.get('versions', {}).get('onnxruntime')}, "
        f"openvino {info.get('versions', {}).get('openvino')}; defaults (3 repetitions, 3-9 s per group); "
        f"threads as run: {', '.join(map(str, threads))}.", "",
        f"- Coverage (B's estimate inside A's 95 % interval, {total} ordered checks): rerun interval (reported now) "
        f"**{new_hits / total:.0%}**; the same samples with the pooled bootstrap reported before {old_hits / total:.0%}; "
        f"the CI of the mean {mean_hits / total:.0%}; each pair's own rerun interval, before the run's other pairs "
        f"lent it their variance, {own_hits / total:.0%}. Goal >= 90 %.",
        f"- Median half-width of the rerun interval: **±{halfwidth['realized_speedup_rerun_halfwidth']:.0%}** "
        f"(each pair alone: ±{halfwidth['own_halfwidth']:.0%}).",
        f"- Run-to-run spread of the realized speedup: median **{np.median(spreads):.1%}**, worst "
        f"**{max(spreads):.1%}** (goals 5 % and 10 %).",
        f"- Model vs its control (same file, second session) inside a run, per repetition: median "
        f"{np.median(agreement):.1%}, 90th percentile **{np.percentile(agreement, 90):.1%}**, worst "
        f"{max(agreement):.1%} over {len(agreement)} (goal 2 % at the 90th percentile).",
        f"- Wall time per run: {', '.join(f'{w:.0f}' for w in walls)} s (goal <= {GOAL_WALL_S:.0f} s).", "",
    ]
    return "\n".join(head + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--from", dest="source", type=Path, help="a folder of run*.json made by an earlier call")
    parser.add_argument("--keep", type=Path, help="keep the result files in this folder")
    parser.add_argument("--threads", type=int, help="passed to `mnbench run --threads` (default: its own)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "repeatability.md")
    args = parser.parse_args()
    extra = ["--threads", str(args.threads)] if args.threads else []
    if args.source:
        runs = [(p, float("nan")) for p in sorted(args.source.glob("run*.json"))]
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="mnbench-repeat-"))
        folder.mkdir(parents=True, exist_ok=True)
        runs = run_all(args.runs, folder, extra)
    text = summarize(runs, extra)
    print(text)
    atomic.write_text(args.output, text)


if __name__ == "__main__":
    main()
