"""Does mnbench's `torch` device add latency over a bare PyTorch loop on the very same module? Measured, not assumed.

Both sides run one nn.Module (the session's own, already on its device, in eval mode, BatchNorm folded) on one
bound input, in alternating blocks of about `--block` seconds per round, so machine drift hits both alike:

  mnbench   `session.infer()` timed per call by mnbench's timed loop (perf_counter_ns, gc off; each call enters
            torch.inference_mode, and on a GPU ends with torch.cuda.synchronize)
  bare      `module(x)` in one `with torch.inference_mode():` block, each call timed with perf_counter_ns (and
            synchronized on a GPU): the simplest loop a user writes

Per round each side's p50; the figure is the median over rounds of mnbench p50 / bare p50 (goal: within a few
per cent), with its min..max across rounds. Written with the CPU model, date and versions into
benchmarks/results/torch_overhead.md.

    .venv/bin/python benchmarks/torch_overhead.py                                  # v2 1.0/224 and v1 0.25/128
    .venv/bin/python benchmarks/torch_overhead.py --models v1-0.25-96 --rounds 2 --block 0.2 --output /tmp/t.md
"""

from __future__ import annotations

import argparse
import datetime
import gc
import statistics
import time
from pathlib import Path

import torch

from mnbench import atomic
from mnbench.backends import open_session
from mnbench.config import ModelConfig
from mnbench.devices.registry import default_threads
from mnbench.artifacts.export import export_model
from mnbench.host.machine import machine_info
from mnbench.measure.loop import measure_single

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "torch_overhead.md"
GOAL_RATIO = 1.03


def bare_loop(module: torch.nn.Module, x: torch.Tensor, seconds: float, on_gpu: bool) -> list[float]:
    """Per-call milliseconds of `module(x)` for about `seconds`, the way a user would time it."""
    samples = []
    gc.disable()
    try:
        with torch.inference_mode():
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                start = time.perf_counter_ns()
                module(x)
                if on_gpu:
                    torch.cuda.synchronize()
                samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        gc.enable()
    return samples


def compare(name: str, device: str, threads: int, rounds: int, block: float) -> dict:
    arch, width, resolution = name.split("-")[0], float(name.split("-")[-2]), int(name.split("-")[-1])
    if name.startswith("v3-"):
        arch = "-".join(name.split("-")[:2])
    exported = export_model(ModelConfig(arch=arch, width=width, resolution=resolution), progress=False)
    ratios, mnbench_p50s, bare_p50s = [], [], []
    with open_session(device, exported.path, batch=1, threads=threads) as session:
        module, (x,), on_gpu = session._module, session._inputs, session._on_gpu  # the session's own module and input
        for _ in range(3):
            bare_loop(module, x, block / 4, on_gpu)  # warm both sides
            session.infer()
        for index in range(rounds):
            sides = ["mnbench", "bare"] if index % 2 == 0 else ["bare", "mnbench"]
            p50 = {}
            for side in sides:
                if side == "mnbench":
                    samples = measure_single(session.infer, min_time_s=block, max_time_s=block, warmup_s=0.0).samples_ms
                else:
                    samples = bare_loop(module, x, block, on_gpu)
                p50[side] = statistics.median(samples)
            mnbench_p50s.append(p50["mnbench"])
            bare_p50s.append(p50["bare"])
            ratios.append(p50["mnbench"] / p50["bare"])
        info = session.info
    return {"model": name, "device": device, "threads": info["threads"], "torch": info["runtime_version"],
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "mnbench_p50_ms": statistics.median(mnbench_p50s), "bare_p50_ms": statistics.median(bare_p50s),
            "rounds": rounds, "block_s": block}


def write_markdown(rows: list[dict], output: Path, command: str) -> None:
    machine = machine_info()
    lines = [
        "# torch backend overhead: mnbench `torch` session against a bare PyTorch loop on the same module",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine.get('hostname')}, {machine.get('cpu_model')}, {machine.get('available_cpus')} CPUs "
        f"available, torch {torch.__version__}",
        f"- command: `{command}`",
        f"- goal: ratio <= {GOAL_RATIO} (mnbench p50 / bare p50, median over rounds)",
        "",
        "| model | device | threads | rounds × block | mnbench p50 (ms) | bare p50 (ms) | ratio | min..max | goal |",
        "|---|---|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['device']} | {r['threads']} | {r['rounds']} × {r['block_s']:g} s | "
                     f"{r['mnbench_p50_ms']:.3f} | {r['bare_p50_ms']:.3f} | {r['ratio']:.3f} | "
                     f"{r['ratio_min']:.3f}..{r['ratio_max']:.3f} | {'met' if r['ratio'] <= GOAL_RATIO else 'NOT met'} |")
    atomic.write_text(output, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="v2-1.0-224,v1-0.25-128", help="arch-width-resolution, comma-separated")
    parser.add_argument("--device", default="torch")
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=float, default=1.0, help="seconds per side per round")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    threads = args.threads or default_threads()
    rows = [compare(name, args.device, threads, args.rounds, args.block) for name in args.models.split(",")]
    for r in rows:
        print(f"{r['model']} on {r['device']}, {r['threads']} threads: mnbench {r['mnbench_p50_ms']:.3f} ms, "
              f"bare {r['bare_p50_ms']:.3f} ms, ratio {r['ratio']:.3f} ({r['ratio_min']:.3f}..{r['ratio_max']:.3f})")
    command = "benchmarks/torch_overhead.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "output" and v is not None)
    write_markdown(rows, args.output, command)
    print(args.output)


if __name__ == "__main__":
    main()
