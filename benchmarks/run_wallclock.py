"""Wall time of `mnbench run --arch all --device cpu,openvino` with a warm model cache (goal: under 2 minutes on 2 cores).

Warms the cache first (exports are not what is being timed), then times the whole command as a user runs it, and
writes the figures to benchmarks/results/run_wallclock.md.

    python benchmarks/run_wallclock.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnbench import atomic, results
from mnbench.host.machine import machine_info

COMMAND = ["mnbench", "run", "--arch", "all", "--device", "cpu,openvino"]
GOAL_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    mnbench = str(Path(sys.executable).with_name("mnbench"))
    with tempfile.TemporaryDirectory(prefix="mnbench-wallclock-") as tmp:
        env = os.environ | {"MNBENCH_REPORTS_DIR": tmp}  # models/ stays the shared cache; results go to a temp dir
        # Warm what a second run on a machine finds ready: the exported models and each device's peak.
        subprocess.run([mnbench, "models", "--format", "json"], env=env, check=True, capture_output=True)
        for device in ("cpu", "openvino"):
            subprocess.run([mnbench, "peak", "--device", device], env=env, check=True, capture_output=True)
        rows = []
        for i in range(args.repeats):
            out = Path(tmp) / f"run{i}.json"
            start = time.perf_counter()
            subprocess.run([mnbench, *COMMAND[1:], "--output", str(out)], env=env, check=True, capture_output=True)
            wall_s = time.perf_counter() - start
            doc = results.load_result(out)
            rows.append((i + 1, wall_s, len(doc["records"])))
    info = machine_info()
    lines = [
        "# `mnbench run --arch all --device cpu,openvino` wall time, warm model cache",
        "",
        f"Machine: {info.get('cpu_model')}, {info.get('physical_cores')} physical cores; "
        f"load average before the last run: {os.getloadavg()[0]:.2f}. Goal: under {GOAL_S:.0f} s. "
        "Defaults: --min-time 2 --max-time 10 per arch group; models exported and device peaks measured beforehand, as "
        "on any run after a machine's first.",
        "",
        "| repeat | wall time (s) | records | within goal |",
        "|---:|---:|---:|---|",
        *[f"| {i} | {wall:.1f} | {n} | {'yes' if wall <= GOAL_S else 'NO'} |" for i, wall, n in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    atomic.write_text(Path(__file__).parent / "results" / "run_wallclock.md", text)


if __name__ == "__main__":
    main()
