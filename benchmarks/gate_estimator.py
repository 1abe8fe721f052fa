"""Which estimate of a paired change should the gate use? A/A measurements of one model against today's control
of its own file (as `mnbench check` measures them), judged by several estimators of the per-round log ratio.

Per-round differences on a shared VM are heavy-tailed: a burst hits one workload's block in a few rounds. The
estimators, each with its 95 % interval at the repetition level (fresh sessions per repetition):
- medians: the mean of per-repetition medians, t over repetitions (the gate until 2026-12-02);
- means: the mean of per-repetition means, t over repetitions;
- trimmed: the 20 % trimmed mean of all rounds, standard error by the delete-one-repetition jackknife, t with
  R - 1 df (`mnbench.gate.statistics.paired_change`, the gate now).
Each measurement is judged whole and in halves (its first and last repetitions), so there are twice as many
shorter checks. The true change is 0: the spread of the estimates is each estimator's real precision, coverage
is whether its interval keeps its promise, and "+20 % called" is the share of checks in which the same
measurement, with the baseline made 20 % faster, would have a lower bound above the 10 % threshold.

    .venv/bin/python benchmarks/gate_estimator.py --arch v2 --width 1 --resolution 224 --checks 10
    .venv/bin/python benchmarks/gate_estimator.py --load measurements.json      # judge saved measurements again
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnbench import atomic
from mnbench.devices.registry import resolve_device
from mnbench.gate.remeasure import GateSettings, remeasure_group
from mnbench.gate.rounds import round_values
from mnbench.gate.statistics import mean_variance, paired_change, t_ppf
from mnbench.host.machine import machine_info
from mnbench.run.plan import MeasureSettings, RunPlan, run_plan

ROOT = Path(__file__).resolve().parent.parent
CONFIDENCE = 0.95
THRESHOLD = 0.10
INJECTED = 0.20


def per_repetition_medians(d: np.ndarray, reps: np.ndarray) -> tuple[float, float, float]:
    """(estimate, se, df): the gate's estimate until 2026-12-02 (mean of per-repetition medians)."""
    chunks = [d[reps == r] for r in np.unique(reps)]
    medians = np.array([float(np.median(c)) for c in chunks])
    within = 1.2533 ** 2 * float(np.mean([mean_variance(c)[0] for c in chunks if c.size > 1] or [0.0]))
    return float(medians.mean()), math.sqrt(max(float(np.var(medians, ddof=1)), within) / len(chunks)), len(chunks) - 1.0


def per_repetition_means(d: np.ndarray, reps: np.ndarray) -> tuple[float, float, float]:
    means = np.array([float(d[reps == r].mean()) for r in np.unique(reps)])
    return float(means.mean()), float(np.std(means, ddof=1)) / math.sqrt(means.size), means.size - 1.0


def trimmed(d: np.ndarray, reps: np.ndarray) -> tuple[float, float, float]:
    estimate, se, df, _ = paired_change(d, reps)
    return estimate, se, df


ESTIMATORS = {"medians (before)": per_repetition_medians, "means": per_repetition_means,
              "trimmed, jackknife (now)": trimmed}


def paired_rounds(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-round log(model / today's control of its own file) and each round's repetition."""
    values = round_values(record, control=record["model_sha256"])
    return values.model - values.reference, values.repetition


def halves(d: np.ndarray, reps: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    labels = np.unique(reps)
    cut = labels.size // 2
    return [(d[np.isin(reps, part)], reps[np.isin(reps, part)]) for part in (labels[:cut], labels[cut:])]


def judge(checks: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    out = {}
    bound, shift = math.log1p(THRESHOLD), math.log1p(INJECTED)
    for name, estimator in ESTIMATORS.items():
        rows = np.array([estimator(d, reps) for d, reps in checks])
        half = np.array([t_ppf(0.5 + CONFIDENCE / 2, df) * se for _, se, df in rows])
        out[name] = {"sd": float(np.std(rows[:, 0], ddof=1)), "rms": float(np.sqrt(np.mean(rows[:, 0] ** 2))),
                     "half_width": float(np.median(half)), "covered": float(np.mean(np.abs(rows[:, 0]) <= half)),
                     "called": float(np.mean(rows[:, 0] + shift - half > bound))}
    return out


def measure(args) -> dict:
    models_dir = Path(tempfile.mkdtemp(prefix="mnbench-estimator-"))
    plan = RunPlan(archs=[args.arch], devices=[resolve_device("cpu")], variants=("separable",), widths=[args.width],
                   resolutions=[args.resolution], threads=args.threads, measure=MeasureSettings(), with_peak=False,
                   with_reference=True, with_controls=True)
    baseline = run_plan(plan, models_dir=models_dir, reports_dir=models_dir / "reports")
    # A threshold no check can meet: every measurement runs its whole --max-time, as an undecided check does.
    settings = GateSettings(threshold=0.001, max_time_s=args.max_time)
    records = []
    for i in range(args.checks):
        t0 = time.monotonic()
        (record,) = remeasure_group(baseline["records"], dataclasses.replace(settings, seed=100 + i),
                                    models_dir=models_dir)
        records.append(record)
        print(f"measurement {i + 1}/{args.checks}: {time.monotonic() - t0:.1f} s, "
              f"{len(record['repetition_rounds'])} repetitions", file=sys.stderr)
    return {"machine": machine_info(), "model": baseline["records"][0]["model"]["slug"],
            "max_time_s": args.max_time, "when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "records": records}


def render(data: dict) -> str:
    checks = [paired_rounds(r) for r in data["records"]]
    parts = [h for d, reps in checks for h in halves(d, reps)]
    reps_whole = np.mean([np.unique(r).size for _, r in checks])
    machine = data["machine"]
    lines = [f"# Gate estimator: A/A measurements of {data['model']} against today's control of its own file", "",
             f"{data['when'][:16].replace('T', ' ')} UTC, {machine.get('cpu_model')}, "
             f"{machine.get('available_cpus')} CPUs; {len(checks)} measurements of `--max-time {data['max_time_s']:g}` "
             f"({reps_whole:.1f} repetitions each) as `mnbench check` measures them; true change 0; threshold "
             f"{THRESHOLD:.0%}; \"+20 % called\": lower bound above the threshold with the baseline 20 % faster.", ""]
    all_rounds = np.concatenate([d for d, _ in checks])
    mad_sd = 1.4826 * float(np.median(np.abs(all_rounds - np.median(all_rounds))))
    lines += [f"Per-round log differences: sd {all_rounds.std():.3f}, by the MAD {mad_sd:.3f} (heavy tails: bursts).",
              "", "| estimator | checks | sd of estimates | rms error | median 95 % half-width | intervals holding 0 "
              "| +20 % called |", "|---|---|---:|---:|---:|---:|---:|"]
    for label, group in ((f"whole ({len(checks)})", checks), (f"halves ({len(parts)})", parts)):
        for name, figures in judge(group).items():
            lines.append(f"| {name} | {label} | {figures['sd']:.3f} | {figures['rms']:.3f} | "
                         f"{math.expm1(figures['half_width']):.1%} | {figures['covered']:.0%} | {figures['called']:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="v2")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--max-time", type=float, default=20.0)
    parser.add_argument("--load", type=Path, help="judge measurements saved by an earlier run instead")
    parser.add_argument("--save", type=Path, help="also write the measurements here (JSON)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "gate_estimator.md")
    args = parser.parse_args()
    data = json.loads(args.load.read_text()) if args.load else measure(args)
    if args.save:
        atomic.write_text(args.save, json.dumps(data))
    text = render(data)
    atomic.write_text(args.output, text)
    print(text)


if __name__ == "__main__":
    main()
