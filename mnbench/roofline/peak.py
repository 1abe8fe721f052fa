"""The attainable GMAC/s of a device: the best of a few large dense convolutions, run through the same runtime as the models.

A MobileNet layer's achieved GMAC/s only means something next to what the same runtime reaches on the work it
is best at. That ceiling is measured here on a standard 3x3 convolution, 256 -> 256 channels on 56x56 (ResNet's
conv2 stage: large enough to be compute-bound, small enough to take milliseconds), through `open_session`, so
threads, precision and provider settings are the benchmark's own, together with two 1x1 (GEMM-shaped) convs;
peak = the best of their MACs / median latency (see `peak_candidates`).

The same call measures the second roof and the fixed cost of a layer (workloads in `mnbench.roofline.workloads`):
`gbytes_per_s`, the best of two streaming ops over 256 MiB float32 tensors, traffic = bytes of the inputs read
once + the output written once, over the median latency; and `layer_overhead_us`, the time per layer of a chain
of tiny convolutions: (p50 of 144 layers - p50 of 16 layers) / 128, the best of a 1x1 and a depthwise chain.

On a batch-1 device it also measures `calibration`: what each operator class (pointwise, dense, depthwise,
grouped, stem, fully connected; elementwise layers; fused epilogues) costs, from about eighty small benchmarks
(`mnbench.roofline.calibrate`), which `mnbench predict` prices layers with. A peak stored before has none and is
priced by the plain roofline.

One file per machine, `reports/peaks/<hostname>.json`, keeps the peaks of every device and precision measured
there: {"schema_version": 1, "host": ..., "peaks": {device: {precision: newest peak}},
"by_threads": {device: {precision: {threads: peak}}}} (the second for runs that sweep threads).
"""

from __future__ import annotations

import json
import socket
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mnbench import atomic, paths
from mnbench.backends import open_session
from mnbench.devices.registry import resolve_device
from mnbench.errors import MnbenchError
from mnbench.measure.loop import measure_single
from mnbench.roofline.calibrate import measure_calibration
from mnbench.roofline.workloads import LayerChain, StreamWorkload
from mnbench.results import utc_now_iso

PEAKS_SCHEMA_VERSION = 1
MIN_TIME_S = 1.0
MAX_TIME_S = 3.0  # per candidate shape
# The two depths of the layer chain: their difference over the layers between them is the cost of one layer.
CHAIN_DEPTHS = (16, 144)
WEIGHT_SEED = 0


@dataclass(frozen=True, kw_only=True)
class PeakConv:
    """The peak workload: one `kernel`x`kernel` convolution, stride 1, 'same' padding, no bias."""

    channels: int = 256
    size: int = 56
    kernel: int = 3
    batch: int = 1
    # A chain of convs: the layout reorders a runtime does at the graph's edges (OpenVINO: planar <-> blocked) are
    # paid once per chain, as in a real network, not once per conv.
    depth: int = 4

    @property
    def macs(self) -> int:
        """Output elements x MACs per output element (the cost model's Conv rule)."""
        return self.depth * self.batch * self.channels * self.size * self.size * self.channels * self.kernel * self.kernel

    @property
    def method(self) -> str:
        return (f"onnx {self.depth} x Conv {self.kernel}x{self.kernel} {self.channels}->{self.channels} on "
                f"{self.size}x{self.size}, batch {self.batch} ({self.macs / 1e9:.2f} GMAC per call)")

    def onnx_model(self) -> onnx.ModelProto:
        rng = np.random.default_rng(WEIGHT_SEED)
        weight = rng.standard_normal((self.channels, self.channels, self.kernel, self.kernel), dtype=np.float32)
        weight *= np.float32(1.0 / np.sqrt(self.channels * self.kernel * self.kernel))  # keeps outputs O(1)
        pad = self.kernel // 2
        shape = [self.batch, self.channels, self.size, self.size]
        graph = helper.make_graph(
            [helper.make_node("Conv", [f"x{i}" if i else "input", "weight"],
                              [f"x{i + 1}" if i + 1 < self.depth else "output"], name=f"peak_conv_{i}",
                              kernel_shape=[self.kernel, self.kernel], pads=[pad] * 4)
             for i in range(self.depth)],
            "mnbench_peak",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
            initializer=[numpy_helper.from_array(weight, "weight")],
        )
        # Opset 17 / IR 8: what every runtime build mnbench supports reads.
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def peak_workload(device: Any) -> PeakConv:
    """A GPU needs a batch to fill it; a CPU core is saturated by one image of this size."""
    target = str(getattr(device, "target", "") or "")
    on_gpu = getattr(device, "is_gpu_provider", False) or "GPU" in target or target.startswith("cuda")
    return PeakConv(batch=16 if on_gpu else 1)


def peak_candidates(workload: PeakConv) -> list[PeakConv]:
    """The dense shapes tried: the 3x3 conv, and 1x1 convs with 2x and 4x the channels on 1/2 and 1/4 the map.

    Runtimes differ in which dense shape they run best (a 1x1 conv is a plain GEMM; a 3x3 one may take a Winograd
    or im2col path), and a ceiling that some model layers beat is no ceiling: the peak is the best of them.
    """
    c, s = workload.channels, workload.size
    return [workload, replace(workload, kernel=1, channels=2 * c, size=max(1, s // 2)),
            replace(workload, kernel=1, channels=4 * c, size=max(1, s // 4))]


def bandwidth_candidates(device: Any) -> list[StreamWorkload]:
    """Streaming ops tried for the memory roof: one tensor read and one written, and two read and one written."""
    return [StreamWorkload(kind="scale"), StreamWorkload(kind="add")]


def overhead_candidates(device: Any) -> list[tuple[LayerChain, LayerChain]]:
    """(short, long) chains of tiny layers, as 1x1 and as depthwise convs: the two kinds a MobileNet is made of."""
    short, long = CHAIN_DEPTHS
    return [(LayerChain(depth=short, kind=kind), LayerChain(depth=long, kind=kind))
            for kind in ("pointwise", "depthwise")]


def measure_peak(device: Any, *, threads: int | None = None, precision: str = "fp32",
                 min_time_s: float = MIN_TIME_S, max_time_s: float = MAX_TIME_S,
                 calibrate: bool = True) -> dict[str, Any]:
    """Attainable GMAC/s, GB/s and microseconds per layer of `device` (a DeviceInfo or a name) at `precision`,
    through the benchmark's runtime; with `calibrate`, also what each operator class costs
    (`mnbench.roofline.calibrate`; batch-1 devices only)."""
    device = resolve_device(device)
    timing = dict(threads=threads, precision=precision, min_time_s=min_time_s, max_time_s=max_time_s)
    tried = [_measure_dense(device, candidate, **timing) for candidate in peak_candidates(peak_workload(device))]
    best = max(tried, key=lambda t: t["gmacs_per_s"])
    streams = [_measure_stream(device, candidate, **timing) for candidate in bandwidth_candidates(device)]
    chains = [_measure_chain(device, short, long, **timing) for short, long in overhead_candidates(device)]
    best_stream = max(streams, key=lambda t: t["gbytes_per_s"])
    best_chain = min(chains, key=lambda t: t["layer_overhead_us"])
    calibration = {}
    if calibrate and peak_workload(device).batch == 1:
        calibration = {"calibration": _calibration(device, best_chain, **timing)}
    return best | calibration | {
        "device": device.name,
        "candidates": [{"method": t["method"], "gmacs_per_s": t["gmacs_per_s"]} for t in tried],
        "gbytes_per_s": best_stream["gbytes_per_s"],
        "bandwidth_method": best_stream["method"],
        "bandwidth_candidates": streams,
        "layer_overhead_us": best_chain["layer_overhead_us"],
        "overhead_method": best_chain["method"],
        "overhead_candidates": chains,
        "measured_utc": utc_now_iso(),
    }


def _measure_dense(device, workload: PeakConv, *, threads, precision, min_time_s, max_time_s) -> dict[str, Any]:
    p50_ms, n, info = _time_model(device, workload.onnx_model(), batch=workload.batch, threads=threads,
                                  precision=precision, min_time_s=min_time_s, max_time_s=max_time_s)
    return {
        "gmacs_per_s": workload.macs / (p50_ms * 1e-3) / 1e9,
        "method": workload.method,
        "runtime": info.get("runtime"),
        "runtime_version": info.get("runtime_version"),
        "precision": info.get("precision", precision),
        "threads": info.get("threads", threads),
        "macs": workload.macs,
        "p50_ms": p50_ms,
        "n": n,
    }


def _measure_stream(device, workload: StreamWorkload, **timing) -> dict[str, Any]:
    p50_ms, n, _ = _time_model(device, workload.onnx_model(), batch=workload.batch, **timing)
    return {"gbytes_per_s": workload.bytes_moved / (p50_ms * 1e-3) / 1e9, "method": workload.method,
            "bytes_moved": workload.bytes_moved, "p50_ms": p50_ms, "n": n}


def _measure_chain(device, short: LayerChain, long: LayerChain, **timing) -> dict[str, Any]:
    p50_short, _, _ = _time_model(device, short.onnx_model(), batch=short.batch, **timing)
    p50_long, _, _ = _time_model(device, long.onnx_model(), batch=long.batch, **timing)
    # A noisy pair can come out reversed; a negative cost per layer means "too small to see", i.e. zero.
    per_layer_us = max(0.0, (p50_long - p50_short) * 1e3 / (long.depth - short.depth))
    return {"layer_overhead_us": per_layer_us, "method": f"{long.method}: (p50 of {long.depth} - p50 of "
            f"{short.depth} layers) / {long.depth - short.depth}", "p50_ms": [p50_short, p50_long],
            "depths": [short.depth, long.depth]}


def _calibration(device, chain: dict[str, Any], *, min_time_s, max_time_s, **settings) -> dict[str, Any]:
    """The operator classes' costs, each benchmark timed briefly: there are about seventy."""
    # A call of the short chain is one call's fixed cost plus its layers.
    call_us = max(0.0, chain["p50_ms"][0] * 1e3 - chain["depths"][0] * chain["layer_overhead_us"])

    def time_us(workload) -> float:
        p50_ms, _, _ = _time_model(device, workload.onnx_model(), batch=1, min_time_s=min(0.2, min_time_s),
                                   max_time_s=min(0.4, max_time_s), **settings)
        return p50_ms * 1e3

    return measure_calibration(time_us, call_us=call_us, overhead_us=chain["layer_overhead_us"])


def _time_model(device, model: onnx.ModelProto, *, batch: int, threads, precision, min_time_s,
                max_time_s) -> tuple[float, int, dict[str, Any]]:
    """p50 latency (ms), sample count and session info of `model` through the benchmark's own session."""
    with tempfile.TemporaryDirectory(prefix="mnbench-peak-") as tmp:
        model_path = Path(tmp) / "peak.onnx"
        onnx.save(model, str(model_path))
        with open_session(device, model_path, batch=batch, precision=precision, threads=threads) as session:
            # A short measurement (tests, smoke runs) gets a short warm-up too.
            measured = measure_single(session.infer, min_time_s=min_time_s, max_time_s=max_time_s,
                                      warmup_s=min(0.5, min_time_s))
            info = dict(session.info)
    return float(np.median(measured.samples_ms)), measured.n, info


# ---------------------------------------------------------------------------------------------------------------
# One file per machine


def peaks_path(*, reports_dir: str | Path | None = None, host: str | None = None) -> Path:
    return paths.reports_dir(reports_dir) / "peaks" / f"{host or socket.gethostname()}.json"


def load_peaks(*, reports_dir: str | Path | None = None, host: str | None = None) -> dict[str, dict[str, dict]]:
    """device -> precision -> peak for this machine; empty when none was measured (or the file is damaged)."""
    path = peaks_path(reports_dir=reports_dir, host=host)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"ignoring damaged peaks file {path}: {exc}; `mnbench peak` measures it again", stacklevel=2)
        return {}
    if not isinstance(doc, dict) or doc.get("schema_version") != PEAKS_SCHEMA_VERSION or not isinstance(
            doc.get("peaks"), dict):
        warnings.warn(f"ignoring peaks file {path}: not a schema {PEAKS_SCHEMA_VERSION} peaks file", stacklevel=2)
        return {}
    return doc["peaks"]


def load_peak(device: Any, *, precision: str = "fp32", threads: int | None = None,
              reports_dir: str | Path | None = None, host: str | None = None) -> dict[str, Any] | None:
    """The stored peak of `device` (a name or DeviceInfo) at `precision` on this machine, or None.

    With `threads`, a peak measured with another thread count is None too: it is not this run's ceiling.
    """
    name = getattr(device, "name", device)
    peak = load_peaks(reports_dir=reports_dir, host=host).get(name, {}).get(precision)
    if threads is not None and isinstance(peak, dict) and peak.get("threads") not in (None, threads):
        # the newest peak was measured at another thread count: the one kept for this count, if any
        peak = _peaks_by_threads(reports_dir, host).get(name, {}).get(precision, {}).get(str(threads))
    if not isinstance(peak, dict) or not isinstance(peak.get("gmacs_per_s"), (int, float)):
        return None
    return peak


def _peaks_by_threads(reports_dir: str | Path | None, host: str | None) -> dict[str, Any]:
    """device -> precision -> threads -> peak: every thread count's newest peak (a run that sweeps threads needs
    each); older peaks files have none."""
    try:
        doc = json.loads(peaks_path(reports_dir=reports_dir, host=host).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    by_threads = doc.get("by_threads") if isinstance(doc, dict) else None
    return by_threads if isinstance(by_threads, dict) else {}


def save_peak(peak: dict[str, Any], *, reports_dir: str | Path | None = None, host: str | None = None) -> Path:
    """Store `peak` (a `measure_peak` result) in this machine's peaks file, replacing that device+precision only
    (and, under `by_threads`, that device+precision+thread count)."""
    if not isinstance(peak.get("device"), str) or not isinstance(peak.get("gmacs_per_s"), (int, float)):
        raise MnbenchError("a peak needs a 'device' name and a numeric 'gmacs_per_s'")
    host = host or socket.gethostname()
    peaks, by_threads = load_peaks(reports_dir=reports_dir, host=host), _peaks_by_threads(reports_dir, host)
    precision = str(peak.get("precision", "fp32"))
    peaks.setdefault(peak["device"], {})[precision] = peak
    by_threads.setdefault(peak["device"], {}).setdefault(precision, {})[str(peak.get("threads"))] = peak
    doc = {"schema_version": PEAKS_SCHEMA_VERSION, "host": host, "peaks": peaks, "by_threads": by_threads}
    return atomic.write_text(peaks_path(reports_dir=reports_dir, host=host), json.dumps(doc, indent=1) + "\n")
