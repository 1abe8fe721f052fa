"""Can mnbench's `openvino` session call the runtime more cheaply from Python? The per-call time outside the
runtime (wall time of the Python call minus `InferRequest.latency`, which benchmark_app reports) for each way of
running one inference on inputs bound once.

- `infer(share_outputs=True)`: what `OpenVinoSession.infer` does (views of the output tensors, no copies);
- `infer()`: the default, which copies every output into a fresh numpy array;
- `start_async()` + `wait()`: returns nothing, so no output dict is built;
- the binding's C++ `infer({})`, skipping the Python wrapper's input dispatch and its OVDict.

Calls of the four ways alternate in blocks, so machine load hits them alike; the figure is the p50 of the per-call
gap, which the runtime's own work (and the load on it) largely cancels out of.

    .venv/bin/python benchmarks/openvino_call_paths.py     # v1 0.25 at 128 px, about 1 minute
"""

from __future__ import annotations

import argparse
import datetime
import gc
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "openvino_call_paths.md"


def call_paths(request):
    import openvino as ov

    bare_infer = super(ov.InferRequest, request).infer  # the pybind11 method under the Python wrapper

    def async_wait() -> None:
        request.start_async()
        request.wait()

    return {
        "infer(share_outputs=True) (mnbench)": lambda: request.infer(share_outputs=True),
        "infer() (copies outputs)": request.infer,
        "start_async() + wait()": async_wait,
        "C++ infer({}) without the wrapper": lambda: bare_infer({}, share_outputs=True, decode_strings=False),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="v1")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--blocks", type=int, default=20, help="blocks per way")
    p.add_argument("--calls", type=int, default=200, help="calls per block")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = p.parse_args()

    from mnbench import atomic
    from mnbench.backends import open_session
    from mnbench.config import ModelConfig
    from mnbench.artifacts.export import export_model
    from mnbench.host.machine import machine_info

    config = ModelConfig(arch=args.arch, width=args.width, resolution=args.resolution)
    exported = export_model(config, models_dir=Path(tempfile.mkdtemp(prefix="mnbench-ov-calls-")), progress=False)
    with open_session("openvino", exported.path, batch=1) as session:
        request = session._request  # the bound request mnbench times; private on purpose, this script only
        paths = call_paths(request)
        for call in paths.values():  # warm-up
            for _ in range(100):
                call()
        gaps: dict[str, list[float]] = {name: [] for name in paths}
        walls: dict[str, list[float]] = {name: [] for name in paths}
        gc.disable()
        try:
            for _ in range(args.blocks):
                for name, call in paths.items():
                    for _ in range(args.calls):
                        start = time.perf_counter_ns()
                        call()
                        wall_us = (time.perf_counter_ns() - start) / 1e3
                        walls[name].append(wall_us)
                        gaps[name].append(wall_us - request.latency * 1e3)  # latency is in ms
        finally:
            gc.enable()
        info = session.info

    machine = machine_info()
    lines = [
        "# OpenVINO: per-call cost of the ways to call the runtime from Python",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine.get('cpu_model')}, "
        f"{config.slug} on `openvino` ({info['runtime_version']}, {info['precision']}, {info['threads']} threads), "
        f"{args.blocks} alternating blocks of {args.calls} calls per way (`benchmarks/openvino_call_paths.py`).",
        "",
        "| way | wall p50 (us) | gap to InferRequest.latency p50 (us) |",
        "|---|---:|---:|",
    ]
    for name in paths:
        lines.append(f"| {name} | {np.median(walls[name]):.1f} | {np.median(gaps[name]):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(args.output, text)


if __name__ == "__main__":
    main()
