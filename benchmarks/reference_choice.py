"""Which machine-speed reference, and which per-round statistic, keep a model's normalised latency steadiest from run
to run? The evidence behind `mnbench.measure.reference` and `mnbench.gate.compare.ROUND_QUANTILE`.

The gate compares a baseline run with a check run made minutes or days later, so what matters is how much a
model's normalised value moves between separate runs (separate processes), not how precisely one run pins it down.
Each run here is a fresh process that measures, interleaved in shuffled rounds like `mnbench run`:
- two models: v1 0.25 at 96 px (~0.2 ms) and v2 1.0 at 160 px (~2 ms), on `cpu` (ONNX Runtime), default threads;
- the runtime reference (`mnbench.measure.reference.open_reference`: a small depthwise/pointwise/dense conv network on the
  models' runtime, precision and threads, with pinned settings);
- the numpy reference mnbench used before (96 float32 GEMMs of 48x48 and an add over 2 MiB arrays, single-threaded).
Per run and candidate: the mean over rounds of log(statistic of the model's round) − log(statistic of the
reference's round). Reported: the standard deviation of that value across runs (between-run), next to the median
within-run standard error (the part a single run's CI can see).

    .venv/bin/python benchmarks/reference_choice.py              # 10 runs of 12 s: ~3 min on 2 cores
    .venv/bin/python benchmarks/reference_choice.py --runs 4 --seconds 6
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "reference_choice.md"
MODELS = {"v1 0.25 r96": ("v1", 0.25, 96), "v2 1.0 r160": ("v2", 1.0, 160)}
REFERENCES = ("none", "numpy", "runtime")
STATISTICS = {"round median": 0.5, "round 10th percentile": 0.1}


def numpy_reference():
    """The reference mnbench used before the runtime one, kept here as the candidate it was measured against."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((96, 48, 48), dtype=np.float32)
    b = rng.standard_normal((96, 48, 48), dtype=np.float32)
    product = np.empty_like(a)
    x = rng.standard_normal(2**19, dtype=np.float32)
    y = rng.standard_normal(2**19, dtype=np.float32)
    total = np.empty_like(x)

    def run() -> None:
        np.matmul(a, b, out=product)
        np.add(x, y, out=total)

    return run


def measure_one_run(output: Path, seconds: float, models_dir: Path) -> None:
    """One run (call it in a fresh process): every workload's samples and round sizes, as JSON."""
    from contextlib import ExitStack

    from mnbench.backends import open_session
    from mnbench.config import ModelConfig
    from mnbench.artifacts.export import export_model
    from mnbench.measure.loop import measure_interleaved
    from mnbench.measure.reference import open_reference

    with ExitStack() as stack:
        workloads = {}
        for name, (arch, width, resolution) in MODELS.items():
            exported = export_model(ModelConfig(arch=arch, width=width, resolution=resolution),
                                    models_dir=models_dir, progress=False)
            workloads[name] = stack.enter_context(open_session("cpu", exported.path, batch=1)).infer
        workloads["runtime"] = stack.enter_context(open_reference("cpu", precision="fp32", threads=None,
                                                                  models_dir=models_dir)).infer
        workloads["numpy"] = numpy_reference()
        measured = measure_interleaved(workloads, min_time_s=seconds, max_time_s=seconds, round_s=0.05,
                                       target_rel_ci=1.0)
    output.write_text(json.dumps({name: {"samples_ms": m.samples_ms, "round_sizes": m.round_sizes}
                                  for name, m in measured.items()}))


def per_round(workload: dict, quantile: float) -> np.ndarray:
    samples = np.asarray(workload["samples_ms"])
    rounds = np.split(samples, np.cumsum(workload["round_sizes"])[:-1])
    return np.log([np.quantile(r, quantile) for r in rounds])


def summarize_runs(runs: list[dict]) -> list[tuple[str, str, str, float, float, float | None]]:
    """(model, statistic, reference, between-run sd, median within-run se, between-run slope) per candidate; the
    slope is that of the runs' mean log model time on their mean log reference time (1 is what dividing assumes)."""
    rows = []
    for model in MODELS:
        for statistic, quantile in STATISTICS.items():
            for reference in REFERENCES:
                values, ses, model_means, reference_means = [], [], [], []
                for run in runs:
                    v = per_round(run[model], quantile)
                    model_means.append(v.mean())
                    if reference != "none":
                        r = per_round(run[reference], quantile)
                        reference_means.append(r.mean())
                        v = v - r
                    values.append(v.mean())
                    ses.append(v.std(ddof=1) / np.sqrt(v.size))
                slope = float(np.polyfit(reference_means, model_means, 1)[0]) if reference_means else None
                rows.append((model, statistic, reference, float(np.std(values, ddof=1)), float(np.median(ses)),
                             slope))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seconds", type=float, default=12.0, help="measuring time per run")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)  # internal: the child process's output file
    p.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_run:
        measure_one_run(args.one_run, args.seconds, args.models_dir)
        return

    from mnbench import atomic
    from mnbench.host.machine import machine_info

    work = Path(tempfile.mkdtemp(prefix="mnbench-reference-choice-"))
    runs = []
    for i in range(args.runs):
        out = work / f"run{i}.json"
        subprocess.run([sys.executable, __file__, "--one-run", str(out), "--seconds", str(args.seconds),
                        "--models-dir", str(work / "models")], check=True, cwd=ROOT)
        runs.append(json.loads(out.read_text()))
        print(f"run {i + 1}/{args.runs} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)

    info = machine_info()
    lines = [
        "# Machine-speed reference and per-round statistic: run-to-run steadiness",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {info.get('cpu_model')}, "
        f"{info.get('available_cpus')} CPUs, {args.runs} separate processes of {args.seconds:g} s each "
        f"(`benchmarks/reference_choice.py`). Lower between-run sd is better; a within-run se far below it means a "
        "single run's CI cannot see the run-to-run part.",
        "",
        "| model | per-round statistic | divided by reference | between-run sd | within-run se (median) "
        "| between-run slope on the reference |",
        "|---|---|---|---:|---:|---:|",
    ]
    for model, statistic, reference, between, within, slope in summarize_runs(runs):
        shown = "–" if slope is None else f"{slope:.2f}"
        lines.append(f"| {model} | {statistic} | {reference} | {between:.1%} | {within:.1%} | {shown} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(args.output, text)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
