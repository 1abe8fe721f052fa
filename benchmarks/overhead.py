"""Does mnbench's timing harness add overhead over the vendors' own tools? Measured, not assumed.

On the same ONNX file and thread count, in alternating rounds (so machine drift hits both sides alike):

  openvino  mnbench `openvino` session + measure_single   vs  OpenVINO's benchmark_app (sync, latency hint)
  cpu       mnbench `cpu` session (IOBinding) + measure   vs  a bare `InferenceSession.run` loop timed with
                                                               perf_counter (the simplest thing a user writes)

Per round, each side runs about `--seconds` and reports its p50 (and its fastest call); the figure of merit is
the median over rounds of mnbench p50 / yardstick p50 (goal: <= 1.03), with its min..max across rounds. The ratio
of the fastest calls is reported beside it: on a shared machine it is the figure neighbours disturb least.

benchmark_app settings that have to be spelled out to match mnbench's session (checked against what it prints):
  -hint latency + -load_config {"CPU": {"INFERENCE_NUM_THREADS": N, "NUM_STREAMS": 1}}: the Python benchmark_app
      refuses `-nthreads` together with a hint (its "fine tune options" UI rule), and `-hint none` would drop the
      LATENCY hint that mnbench sets.
  -ip f32: benchmark_app otherwise makes 4-D inputs u8 and adds a u8->f32 conversion to the compiled graph.
  -infer_precision f32: on CPUs with AVX512_BF16/AMX the CPU plugin would otherwise run bf16.

Round-to-round load on a shared machine moves either side by more than 3 %, so each comparison ends with a paired
check that load moves far less: OpenVINO, the wall time mnbench records and the `InferRequest.latency`
benchmark_app records, read from the same call (the binding times `latency` in C++ with the GIL released, so the
Python call, re-taking the GIL and building the output dict fall outside it); ONNX Runtime, mnbench's
`session.infer()` and the bare `session.run()` in alternating blocks of about 50 ms (at more than one thread
this still moves with a neighbour that holds a core: one of the session's threads waits for it).

    .venv/bin/python benchmarks/overhead.py                       # both models, both runtimes, 5 x 5 s rounds
    .venv/bin/python benchmarks/overhead.py --models v2-1.0-224 --runtimes cpu --rounds 3 --seconds 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnbench import atomic, paths
from mnbench.backends import open_session
from mnbench.config import ModelConfig
from mnbench.devices.registry import default_threads
from mnbench.errors import MnbenchError
from mnbench.artifacts.export import export_model
from mnbench.measure.loop import measure_single
from mnbench.run.plan import MeasureSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "overhead.md"
GOAL_RATIO = 1.03

MODELS = {
    # The published network, a few milliseconds per call: per-call overhead is a small share.
    "v2-1.0-224": ModelConfig(arch="v2", variant="separable", width=1.0, resolution=224),
    # The smallest common MobileNet, well under a millisecond: the worst case for any per-call overhead.
    "v1-0.25-128": ModelConfig(arch="v1", variant="separable", width=0.25, resolution=128),
}
RUNTIMES = ("openvino", "cpu")
YARDSTICKS = {"openvino": "benchmark_app", "cpu": "bare ORT run() loop"}
# benchmark_app's printed properties that decide latency, kept for the report.
REPORTED_SETTINGS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
                     "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE", "input_element_type")

# mnbench's own measuring settings (what `mnbench run` uses); only the duration is fixed per round here.
_SETTINGS = MeasureSettings()


@dataclass(frozen=True, kw_only=True)
class Latency:
    """One side's result for one round."""

    p50_ms: float
    min_ms: float


@dataclass(frozen=True, kw_only=True)
class PairedCalls:
    """The per-call difference between the two sides, from calls close enough in time that machine load cancels
    out: the same call (OpenVINO) or adjacent calls (ONNX Runtime). See `openvino_paired`, `onnxruntime_paired`."""

    ratio: float  # mnbench's call over the yardstick's
    gap_p50_us: float  # how much longer mnbench's call is, typically
    gap_min_us: float  # the same between the fastest calls


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One model on one runtime: each side's latency in each round, in the order measured."""

    model: str
    runtime: str
    threads: int
    mnbench: list[Latency]
    yardstick: list[Latency]
    yardstick_settings: dict[str, str]  # what the yardstick reported it ran with
    paired: PairedCalls | None = None

    @property
    def ratios(self) -> list[float]:
        """mnbench p50 / yardstick p50, per round."""
        return [m.p50_ms / y.p50_ms for m, y in zip(self.mnbench, self.yardstick)]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def median_min_ratio(self) -> float:
        """Median over rounds of mnbench's fastest call / the yardstick's fastest call."""
        return statistics.median(m.min_ms / y.min_ms for m, y in zip(self.mnbench, self.yardstick))


# ---------------------------------------------------------------------------------------------------------------
# The mnbench side


def mnbench_latency(device: str, model_path: Path, *, threads: int, seconds: float) -> Latency:
    """A fresh mnbench session measured for `seconds` with the harness and settings `mnbench run` uses."""
    with open_session(device, model_path, batch=1, precision="fp32", threads=threads) as session:
        if session.info["threads"] != threads or session.info["precision"] != "fp32":
            raise MnbenchError(f"{device} session runs {session.info['threads']} threads, "
                               f"{session.info['precision']}; asked {threads}, fp32")
        measured = measure_single(session.infer, min_time_s=seconds, max_time_s=seconds,
                                  warmup_s=_SETTINGS.warmup_s, round_s=_SETTINGS.round_s,
                                  target_rel_ci=None)
    summary = measured.summary()
    return Latency(p50_ms=summary["p50"], min_ms=summary["min"])


# ---------------------------------------------------------------------------------------------------------------
# Yardstick 1: OpenVINO's benchmark_app


def benchmark_app_command() -> list[str]:
    script = Path(sys.executable).with_name("benchmark_app")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "openvino.tools.benchmark.main"]


def benchmark_app_latency(model_path: Path, *, threads: int, seconds: int) -> tuple[Latency, dict[str, str]]:
    """benchmark_app's median and min latency, and the settings it printed for the compiled model."""
    with tempfile.TemporaryDirectory(prefix="mnbench-overhead-") as folder:
        config_path = Path(folder) / "cpu_config.json"
        config_path.write_text(json.dumps({"CPU": {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1"}}))
        command = [*benchmark_app_command(), "-m", str(model_path), "-d", "CPU", "-hint", "latency", "-api", "sync",
                   "-infer_precision", "f32", "-ip", "f32", "-load_config", str(config_path), "-t", str(seconds),
                   "-report_type", "no_counters", "-json_stats", "-report_folder", folder]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MnbenchError(f"benchmark_app could not run ({' '.join(command[:1])}): {exc}") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise MnbenchError(f"benchmark_app failed ({done.returncode}): {' | '.join(tail)}")
        report = Path(folder) / "benchmark_report.json"
        # The console summary first: below 1 ms it prints microseconds to 0.01 us, the JSON report 0.01 ms steps.
        latency = latency_from_stdout(done.stdout)
        if latency is None and report.is_file():
            latency = _latency_from_report(report)
    if latency is None:
        raise MnbenchError("benchmark_app printed no 'Median:'/'Min:' latency lines and wrote no JSON report")
    settings = benchmark_app_settings(done.stdout)
    _check_benchmark_app_settings(settings, threads)
    return latency, {key: settings[key] for key in REPORTED_SETTINGS if key in settings}


def _latency_from_report(report: Path) -> Latency | None:
    results = json.loads(report.read_text()).get("execution_results", {})
    # "latency (ms)" is the 50th percentile unless -latency_percentile says otherwise.
    if "latency (ms)" not in results or "min latency" not in results:
        return None
    return Latency(p50_ms=float(results["latency (ms)"]), min_ms=float(results["min latency"]))


def latency_from_stdout(stdout: str) -> Latency | None:
    """From the console summary, `Median:        515.97 us` / `Min:           3.58 ms`."""
    values = {}
    for label in ("Median", "Min"):
        match = re.search(rf"{label}:\s+([\d.]+)\s*(ms|us)\b", stdout)
        if not match:
            return None
        values[label] = float(match.group(1)) / (1000.0 if match.group(2) == "us" else 1.0)
    return Latency(p50_ms=values["Median"], min_ms=values["Min"])


def benchmark_app_settings(stdout: str) -> dict[str, str]:
    """The compiled model's properties (step 8) and the input element type (step 6) as benchmark_app printed them."""
    settings: dict[str, str] = {}
    step8 = re.search(r"\[Step 8/11\](.*?)\[Step 9/11\]", stdout, re.S)
    for line in (step8.group(1) if step8 else "").splitlines():
        match = re.match(r"\[ INFO \]\s+([A-Z_]+): (.*)$", line.strip())
        if match:
            settings[match.group(1)] = match.group(2).strip()
    step6 = re.search(r"\[Step 6/11\].*?Model inputs:\s*\n\[ INFO \]\s+\S+ \(node: [^)]*\) : (\w+)", stdout, re.S)
    if step6:
        settings["input_element_type"] = step6.group(1)
    return settings


def _check_benchmark_app_settings(settings: dict[str, str], threads: int) -> None:
    """Refuse a comparison whose two sides did not run the same configuration."""
    expected = {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY",
                "input_element_type": "f32"}
    wrong = {key: settings.get(key) for key, value in expected.items() if settings.get(key) != value}
    precision = settings.get("INFERENCE_PRECISION_HINT", "")
    if "float32" not in precision and precision != "f32":  # printed as "<Type: 'float32'>"
        wrong["INFERENCE_PRECISION_HINT"] = precision
    if wrong:
        raise MnbenchError(f"benchmark_app did not run what mnbench runs: {wrong} (expected {expected}, f32)")


# ---------------------------------------------------------------------------------------------------------------
# Yardstick 2: a bare ONNX Runtime loop


def bare_onnxruntime_session(model_path: Path, *, threads: int):
    """What a user would write: an InferenceSession with the options mnbench sets, and a feed dict."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    feed = {model_input.name: np.random.default_rng(0).standard_normal(model_input.shape, dtype=np.float32)}
    return session, feed


def bare_onnxruntime_latency(model_path: Path, *, threads: int, seconds: float, warmup_s: float) -> Latency:
    """`session.run(None, feed)` in a plain loop timed with perf_counter, GC left on, as a user would."""
    session, feed = bare_onnxruntime_session(model_path, threads=threads)
    warm_until = time.perf_counter() + warmup_s
    while time.perf_counter() < warm_until:
        session.run(None, feed)
    latencies = []
    end = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        session.run(None, feed)
        stop = time.perf_counter()
        latencies.append(stop - start)
        if stop >= end:
            break
    return Latency(p50_ms=statistics.median(latencies) * 1e3, min_ms=min(latencies) * 1e3)


# ---------------------------------------------------------------------------------------------------------------
# Paired calls: where a difference comes from, with machine load cancelled out


def openvino_paired(model_path: Path, *, threads: int, seconds: float) -> PairedCalls:
    """Per call, the wall time mnbench would record against the `InferRequest.latency` benchmark_app records.
    The binding times `latency` in C++ between releasing and re-taking the GIL, so the Python call, the GIL and
    building the output dict fall outside it. Same compile settings and call as mnbench's session."""
    import openvino as ov

    from mnbench.backends import make_input
    from mnbench.backends.openvino_backend import openvino_compile_config

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(model_path)), "CPU", openvino_compile_config("fp32", threads))
    request = compiled.create_infer_request()
    array = make_input(list(compiled.inputs[0].shape))
    request.set_input_tensor(ov.Tensor(array, shared_memory=True))
    for _ in range(20):
        request.infer(share_outputs=True)
    wall_ms, latency_ms = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter_ns()
        request.infer(share_outputs=True)
        wall_ms.append((time.perf_counter_ns() - start) / 1e6)
        latency_ms.append(request.latency)
    gaps_us = [(w - lat) * 1e3 for w, lat in zip(wall_ms, latency_ms)]
    return PairedCalls(ratio=statistics.median(w / lat for w, lat in zip(wall_ms, latency_ms)),
                       gap_p50_us=statistics.median(gaps_us), gap_min_us=min(gaps_us))


def onnxruntime_paired(model_path: Path, *, threads: int, seconds: float, block_s: float = 0.05) -> PairedCalls:
    """mnbench's `cpu` session.infer() and the bare session.run() in turn, in blocks of about `block_s` each,
    every call timed. The first call of each block is dropped: with more than one thread, the other session's
    worker thread is still spinning after its last call and competes with it."""
    session, feed = bare_onnxruntime_session(model_path, threads=threads)
    with open_session("cpu", model_path, batch=1, precision="fp32", threads=threads) as mnbench:
        calls = {"mnbench": mnbench.infer, "bare": lambda: session.run(None, feed)}
        samples_ms: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            for _ in range(10):
                call()
        one_call_s = max(_time_one_call(call) for call in calls.values())
        per_block = max(3, int(block_s / one_call_s))
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for name, call in calls.items():
                block = [_time_one_call(call) * 1e3 for _ in range(per_block)]
                samples_ms[name].extend(block[1:])
    mnbench_p50, bare_p50 = (statistics.median(samples_ms[name]) for name in calls)
    return PairedCalls(ratio=mnbench_p50 / bare_p50, gap_p50_us=(mnbench_p50 - bare_p50) * 1e3,
                       gap_min_us=(min(samples_ms["mnbench"]) - min(samples_ms["bare"])) * 1e3)


def _time_one_call(call) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e9


# ---------------------------------------------------------------------------------------------------------------
# Rounds


def compare(model: str, model_path: Path, runtime: str, *, threads: int, rounds: int, seconds: int,
            log=print) -> Comparison:
    """`rounds` rounds; mnbench goes first in even rounds, the yardstick in odd ones."""
    mnbench, yardstick = [], []
    settings: dict[str, str] = {}

    def run_mnbench() -> None:
        mnbench.append(mnbench_latency(runtime, model_path, threads=threads, seconds=seconds))

    def run_yardstick() -> None:
        nonlocal settings
        if runtime == "openvino":
            latency, settings = benchmark_app_latency(model_path, threads=threads, seconds=seconds)
        else:
            latency = bare_onnxruntime_latency(model_path, threads=threads, seconds=seconds,
                                               warmup_s=_SETTINGS.warmup_s)
            settings = {"intra_op_num_threads": str(threads), "graph_optimization_level": "ORT_ENABLE_ALL",
                        "execution_mode": "ORT_SEQUENTIAL", "call": "session.run(None, feed)"}
        yardstick.append(latency)

    for index in range(rounds):
        for side in ((run_mnbench, run_yardstick) if index % 2 == 0 else (run_yardstick, run_mnbench)):
            side()
        ours, theirs = mnbench[-1].p50_ms, yardstick[-1].p50_ms
        log(f"  {model} {runtime} {threads}t round {index + 1}/{rounds}: p50 mnbench {ours:.3f} ms, "
            f"{YARDSTICKS[runtime]} {theirs:.3f} ms, ratio {ours / theirs:.3f}")
    paired_check = openvino_paired if runtime == "openvino" else onnxruntime_paired
    paired = paired_check(model_path, threads=threads, seconds=min(seconds, 3))
    log(f"  {model} {runtime} {threads}t paired calls: ratio {paired.ratio:.3f}, "
        f"gap p50 {paired.gap_p50_us:.1f} us (fastest calls {paired.gap_min_us:.1f} us)")
    return Comparison(model=model, runtime=runtime, threads=threads, mnbench=mnbench, yardstick=yardstick,
                      yardstick_settings=settings, paired=paired)


# ---------------------------------------------------------------------------------------------------------------
# Report


def summary_table(comparisons: list[Comparison]) -> str:
    lines = ["| model | runtime | yardstick | threads | mnbench p50 (ms) | yardstick p50 (ms) | ratio (median) "
             "| ratio min..max | min-call ratio | paired-call ratio | paired gap us p50 (fastest) "
             "| <= 1.03 (rounds / paired) |",
             "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for c in comparisons:
        p = c.paired
        paired = f"{p.ratio:.3f}" if p else "-"
        gap = f"{p.gap_p50_us:.1f} ({p.gap_min_us:.1f})" if p else "-"
        lines.append(
            f"| {c.model} | {c.runtime} | {YARDSTICKS[c.runtime]} | {c.threads} "
            f"| {statistics.median(m.p50_ms for m in c.mnbench):.3f} "
            f"| {statistics.median(y.p50_ms for y in c.yardstick):.3f} "
            f"| {c.median_ratio:.3f} | {min(c.ratios):.3f}..{max(c.ratios):.3f} | {c.median_min_ratio:.3f} "
            f"| {paired} | {gap} | {_verdict(c.median_ratio)} / {_verdict(p.ratio) if p else '-'} |")
    return "\n".join(lines)


def _verdict(ratio: float) -> str:
    return "yes" if ratio <= GOAL_RATIO else "NO"


def rounds_table(comparisons: list[Comparison]) -> str:
    lines = ["| model | runtime | threads | round | first | mnbench p50 (ms) | yardstick p50 (ms) | ratio "
             "| mnbench min (ms) | yardstick min (ms) |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for c in comparisons:
        for index, (m, y) in enumerate(zip(c.mnbench, c.yardstick)):
            first = "mnbench" if index % 2 == 0 else "yardstick"
            lines.append(f"| {c.model} | {c.runtime} | {c.threads} | {index + 1} | {first} "
                         f"| {m.p50_ms:.3f} | {y.p50_ms:.3f} "
                         f"| {m.p50_ms / y.p50_ms:.3f} | {m.min_ms:.3f} | {y.min_ms:.3f} |")
    return "\n".join(lines)


def machine_lines() -> list[str]:
    try:
        from mnbench.host.machine import machine_info

        info = machine_info()
    except ImportError:
        import platform

        info = {"cpu_model": platform.processor(), "logical_cpus": os.cpu_count(), "python": platform.python_version()}
    versions = info.get("versions") or {}
    flags = [flag for flag, present in (info.get("cpu_flags") or {}).items() if present]
    return [
        f"- CPU: {info.get('cpu_model')} ({info.get('cpu_signature')}), {info.get('physical_cores')} physical cores, "
        f"{info.get('logical_cpus')} logical CPUs; ISA: {', '.join(flags) or 'unknown'}",
        f"- OS: {info.get('os')}, kernel {info.get('kernel')}, Python {info.get('python')}",
        f"- onnxruntime {versions.get('onnxruntime')} ({info.get('onnxruntime_build')}), "
        f"openvino {versions.get('openvino')}, numpy {versions.get('numpy')}, mnbench {versions.get('mnbench')}",
        f"- git commit: {info.get('git_commit')}",
    ]


def render_markdown(comparisons: list[Comparison], *, rounds: int, seconds: int, load_before: tuple[float, ...],
                    load_after: tuple[float, ...], when: datetime.datetime, command: str) -> str:
    settings = "\n".join(f"- {c.model} / {c.runtime} / threads={c.threads}: "
                         + ", ".join(f"{key}={value}" for key, value in c.yardstick_settings.items())
                         for c in comparisons)
    return "\n".join([
        "# mnbench timing overhead vs the vendors' own tools",
        "",
        f"Date: {when.isoformat(timespec='seconds')}. Command: `{command}`.",
        f"{rounds} alternating rounds of about {seconds} s per side (mnbench first in odd-numbered rounds).",
        "Ratio = mnbench p50 / yardstick p50 (same ONNX file, same thread count, fp32); goal <= "
        f"{GOAL_RATIO:.2f}. `min-call ratio` = median over rounds of mnbench's fastest call / the yardstick's "
        "fastest call. `paired-call ratio` and `paired gap` come from calls close enough in time that machine "
        "load moves them far less than the rounds: for OpenVINO, the same call's wall time (what mnbench "
        "records) against its `InferRequest.latency` (what benchmark_app records, timed in C++ with the GIL "
        "released), p50 of the per-call ratio and difference; for ONNX Runtime, mnbench's `session.infer()` "
        "(IOBinding) and the bare `session.run(None, feed)` in alternating blocks of about 50 ms, ratio and "
        "difference of their p50s.",
        "",
        summary_table(comparisons),
        "",
        "## Machine",
        "",
        *machine_lines(),
        f"- load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)}",
        "- Shared machine: other engineers were running tests and benchmarks on the same cores during this run, "
        "so absolute latencies are inflated and noisy; alternating rounds make both sides see the same load, "
        "but single rounds can still differ by more than the 3 % being tested.",
        "",
        "## Method notes",
        "",
        "- benchmark_app ran as `benchmark_app -m MODEL -d CPU -hint latency -api sync -infer_precision f32 "
        "-ip f32 -load_config CFG -t SECONDS -report_type no_counters -json_stats -report_folder DIR`, CFG being "
        '`{"CPU": {"INFERENCE_NUM_THREADS": "N", "NUM_STREAMS": "1"}}`. The Python benchmark_app refuses '
        "`-nthreads` next to `-hint latency` (a UI rule of the tool, not of OpenVINO), hence the config file; "
        "without `-ip f32` it feeds a u8 input through an extra conversion node; without `-infer_precision f32` "
        "this CPU (AMX, AVX512_BF16) would run bf16. The script refuses to compare if the properties "
        "benchmark_app prints for the compiled model differ from mnbench's (threads, streams, hint, f32).",
        "- benchmark_app's latency is `InferRequest.latency`, timed in C++ inside the Python binding between "
        "releasing and re-taking the GIL; read from its console summary (0.01 us steps below 1 ms), not its "
        "JSON report (0.01 ms steps, up to 0.8 % off for a 0.6 ms call). "
        "mnbench records the wall time of the Python call, as a user's code sees it. The difference is "
        "`paired gap` above; it is per call, so it weighs most on the smallest model.",
        "- The bare ONNX Runtime loop uses `session.run(None, feed)`, which converts the input and allocates "
        "the outputs on every call; mnbench's `cpu` session binds both once (IOBinding). Its paired check "
        "alternates the two sessions in blocks of about 50 ms and drops the first call of each block: with more "
        "than one thread, the other session's worker thread is still spinning then and competes with it.",
        "",
        "## What the yardsticks ran with (as they reported it)",
        "",
        settings,
        "",
        "## Per round",
        "",
        rounds_table(comparisons),
        "",
    ])


# ---------------------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated, from: openvino, cpu")
    parser.add_argument("--threads", default="", help="comma-separated thread counts, the same on both sides "
                        "(default: physical cores); e.g. 2,1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="per side per round (whole seconds: benchmark_app -t)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for name, chosen, allowed in (("model", args.models, MODELS), ("runtime", args.runtimes, RUNTIMES)):
        unknown = [c for c in chosen if c not in allowed]
        if unknown or not chosen:
            parser.error(f"unknown or no {name} {unknown}; choose from {', '.join(allowed)}")
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t.strip()] or [default_threads()]
    except ValueError:
        parser.error(f"--threads takes whole numbers, e.g. 2 or 2,1; got {args.threads!r}")
    if args.rounds < 1 or args.seconds < 1 or min(args.threads) < 1:
        parser.error("--rounds, --seconds and --threads must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models_dir = paths.models_dir(os.environ.get("MNBENCH_MODELS_DIR") or REPO_ROOT / "models")
    when = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    comparisons = []
    try:
        for model in args.models:
            model_path = export_model(MODELS[model], models_dir=models_dir, progress=False).path
            for threads in args.threads:
                for runtime in args.runtimes:
                    comparisons.append(compare(model, model_path, runtime, threads=threads, rounds=args.rounds,
                                               seconds=args.seconds, log=lambda line: print(line, flush=True)))
    except MnbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "benchmarks/overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render_markdown(comparisons, rounds=args.rounds, seconds=args.seconds, load_before=load_before,
                           load_after=os.getloadavg(), when=when, command=command.strip())
    print()
    print(summary_table(comparisons))
    atomic.write_text(args.output, text)
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
