"""How long a workload runs slow after a switch from another ONNX Runtime session: what settling must cover.

Two sessions of one model (v2 1.0 at 224 px by default). Session A runs a block of calls, then the script waits a
gap, then times B's first calls one by one. With ORT's default spinning, A's workers keep spinning after A's last
call and take CPU from B on a 2-core machine; with spinning off they sleep at once. Writes the medians over
`--repeats` switches to benchmarks/results/settle.md.

    .venv/bin/python benchmarks/settle.py            # ~1 min
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mnbench import atomic
from mnbench.backends import onnxruntime_backend, open_session
from mnbench.config import ModelConfig
from mnbench.artifacts.export import export_model
from mnbench.host.machine import machine_info
from mnbench.measure.loop import SETTLE_MAX_S, SETTLED_RATIO

ROOT = Path(__file__).resolve().parent.parent
GAPS_MS = (0, 1, 3, 10, 30, 100)
FIRST_CALLS = 8


def first_calls_after_switch(a, b, gap_ms: float, repeats: int) -> list[float]:
    """Median ms of B's 1st, 2nd, ... call after a block of A's and a gap of `gap_ms`."""
    by_position: list[list[float]] = [[] for _ in range(FIRST_CALLS)]
    for _ in range(repeats):
        for _ in range(10):
            a.infer()
        time.sleep(gap_ms / 1000)
        for position in range(FIRST_CALLS):
            start = time.perf_counter_ns()
            b.infer()
            by_position[position].append((time.perf_counter_ns() - start) / 1e6)
    return [statistics.median(times) for times in by_position]


@contextlib.contextmanager
def benchmark_spinning(allowed: bool):
    """Inside, ONNX Runtime sessions opened for benchmarking spin (ORT's default) or not."""
    original = onnxruntime_backend.ort_session_options

    def options(*args, **kwargs):
        made = original(*args, **kwargs)
        if not allowed:
            made.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return made

    onnxruntime_backend.ort_session_options = options
    try:
        yield
    finally:
        onnxruntime_backend.ort_session_options = original


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="v2")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--repeats", type=int, default=25)
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "settle.md")
    args = p.parse_args()
    config = ModelConfig(arch=args.arch, width=args.width, resolution=args.resolution)
    path = export_model(config, models_dir=Path(tempfile.mkdtemp(prefix="mnbench-settle-")), progress=False).path
    rows = []
    for label, allowed in (("spinning (ORT default)", True), ("spinning off", False)):
        with benchmark_spinning(allowed), open_session("cpu", path, batch=1) as a, \
                open_session("cpu", path, batch=1) as b:
            for session in (a, b):
                for _ in range(20):
                    session.infer()
            for gap_ms in GAPS_MS:
                medians = first_calls_after_switch(a, b, gap_ms, args.repeats)
                rows.append((label, gap_ms, medians))
                print(f"{label}, gap {gap_ms} ms: {' '.join(f'{m:.2f}' for m in medians)}", file=sys.stderr)
    info = machine_info()
    load1, _, _ = os.getloadavg()
    lines = [
        "# Slow calls after a switch between ONNX Runtime sessions",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {info.get('cpu_model')}, "
        f"{info.get('available_cpus')} CPUs, load average {load1:.1f}. Model {config.slug}, two sessions of it on "
        f"`cpu` (2 threads each); median ms of session B's first {FIRST_CALLS} calls after 10 calls of session A "
        f"and a pause, over {args.repeats} switches.",
        "",
        "| A's threads | pause (ms) | " + " | ".join(f"call {i + 1}" for i in range(FIRST_CALLS)) + " |",
        "|---|---:|" + "---:|" * FIRST_CALLS,
    ]
    lines += [f"| {label} | {gap} | " + " | ".join(f"{m:.2f}" for m in medians) + " |" for label, gap, medians in rows]
    lines += ["", "Every block of an interleaved measurement starts with untimed calls until one takes at most "
              f"{SETTLED_RATIO:g}x the workload's median in its previous block (at most {SETTLE_MAX_S * 1000:.0f} ms; "
              "`mnbench.measure.loop`), so none of this lands in the samples."]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(args.output, text)


if __name__ == "__main__":
    main()
