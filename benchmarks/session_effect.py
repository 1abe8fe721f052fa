"""Do two ONNX Runtime sessions of one file run alike? Which session setting makes them differ? (issue 10, item 1)

Each variant runs in its own fresh process (ONNX Runtime's global thread pool is per process): it opens K sessions
of the same ONNX file, binds their inputs once (IOBinding, as mnbench does) and measures all K in mnbench's own
interleaved, shuffled, settled rounds for S seconds. The figure is the spread of the K sessions' medians
(max / min - 1): 0 for sessions that run alike. Each variant is run in P processes, so a process-level effect
shows as well.

Variants (what is suspected, and the knob that tests it):
  default       ORT's defaults as mnbench uses them: a thread pool per session, workers spin while idle
  no-spin       session.intra_op.allow_spinning=0: idle sessions' workers sleep instead of spinning
  global-pool   one thread pool for every session of the process (set_global_thread_pool_sizes,
                use_per_session_threads=False): sessions share the very same worker threads
  affinity      the worker thread pinned to the second core (session.intra_op_thread_affinities): placement
  one-thread    intra_op_num_threads=1: no worker thread at all (the issue saw 3 % at 1 thread, 20 % at 2)

Usage: python benchmarks/session_effect.py [--arch v2] [--width 1] [--resolution 224] [--sessions 4]
       [--seconds 15] [--processes 2] [--variants default,no-spin,...] [--output benchmarks/results/session_effect.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

VARIANTS = ("default", "no-spin", "global-pool", "affinity", "one-thread")


def _sessions(model_path: str, k: int, variant: str, threads: int):
    import numpy as np
    import onnxruntime as ort

    if variant == "global-pool":
        ort.set_global_thread_pool_sizes(threads, 1)
    calls = []
    for _ in range(k):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if variant == "one-thread" else threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if variant == "no-spin":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if variant == "global-pool":
            options.use_per_session_threads = False
        if variant == "affinity" and threads == 2:
            options.add_session_config_entry("session.intra_op_thread_affinities", "2")  # 1-based logical CPU
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        binding = session.io_binding()
        binding.bind_cpu_input(session.get_inputs()[0].name, x)
        binding.bind_output(session.get_outputs()[0].name)
        calls.append((session, binding))
    return {f"s{i}": (lambda s=s, b=b: s.run_with_iobinding(b)) for i, (s, b) in enumerate(calls)}


def worker(model_path: str, k: int, variant: str, seconds: float, threads: int) -> dict:
    import numpy as np

    from mnbench.measure.loop import measure_interleaved

    workloads = _sessions(model_path, k, variant, threads)
    measured = measure_interleaved(workloads, min_time_s=seconds, max_time_s=seconds, warmup_s=0.5,
                                   round_s=0.1, target_rel_ci=1e-9)
    p50s = [float(np.median(m.samples_ms)) for m in measured.values()]
    return {"variant": variant, "p50_ms": p50s, "spread": max(p50s) / min(p50s) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="v2")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", default="benchmarks/results/session_effect.md")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # internal: model path, variant
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.sessions, args.worker[1], args.seconds, args.threads)))
        return

    from mnbench.config import ModelConfig
    from mnbench.artifacts.export import export_model
    from mnbench.host.machine import machine_info

    exported = export_model(ModelConfig(arch=args.arch, variant="separable", width=args.width,
                                        resolution=args.resolution), progress=False)
    rows = []
    for variant in args.variants.split(","):
        for process in range(args.processes):
            out = subprocess.run([sys.executable, __file__, "--worker", str(exported.path), variant,
                                  "--sessions", str(args.sessions), "--seconds", str(args.seconds),
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1]) | {"process": process}
            rows.append(row)
            print(f"{variant:12s} process {process}: spread {row['spread']:.1%}  p50s "
                  + " ".join(f"{p:.3f}" for p in row["p50_ms"]), flush=True)
    machine = machine_info()
    lines = [f"# Session effect: {args.sessions} sessions of one file, interleaved ({args.arch} {args.width:g}/"
             f"{args.resolution}, {args.threads} threads, {args.seconds:g} s each, {args.processes} processes per "
             "variant)", "",
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine.get('cpu_model')}, "
             f"{os.cpu_count()} vCPUs, Python {platform.python_version()}, onnxruntime "
             f"{machine.get('versions', {}).get('onnxruntime')}", "",
             "| variant | process | spread of session p50s | p50 per session (ms) |", "|---|---:|---:|---|"]
    lines += [f"| {r['variant']} | {r['process']} | {r['spread']:.1%} | {' '.join(f'{p:.3f}' for p in r['p50_ms'])} |"
              for r in rows]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(args.output)


if __name__ == "__main__":
    main()
