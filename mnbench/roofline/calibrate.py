"""What each operator class costs on this device, measured by `mnbench peak` as small benchmarks, and how a layer of
any shape is priced from them.

One roof for every layer misses where runtimes do: a depthwise or grouped conv never reaches the dense peak, a
conv on 16 channels reaches less of it than one on 256, and an activation after a conv costs nothing or a pass
over memory depending on whether the runtime fuses it. So `mnbench peak` also times, through the benchmark's own
session (`mnbench.roofline.workloads.ConvBench`):

- MAC classes (`MAC_POINTS`): pointwise (1x1), dense kxk, depthwise 3/5/7, grouped by group width, stems (3 input
  channels) and fully connected layers, each at a few shapes of an ImageNet network's stages. A layer's time is
  `layer overhead + MACs / efficiency`, the efficiency interpolated (inverse-distance, in log space) from the
  points of its class nearest in width, output size and kernel;
- elementwise layers (`EltwiseBench`) at two sizes: a fixed cost plus bytes over a cache-level bandwidth;
- epilogues (Relu, swish, residual Add + Relu) after a 1x1 conv at two sizes, against the bare conv: the extra
  time per layer as a fixed part plus a part per output element; near zero where the runtime fuses them.

Stored in the peak as `calibration`; a peak without it (measured before) is priced by the plain roofline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mnbench.roofline.workloads import EPILOGUES, ConvBench, EltwiseBench

CALIBRATION_SCHEMA = 1
# (width, input size): widths and map sizes of an ImageNet network's stages, plus a few off the diagonal.
_STAGES = ((16, 112), (32, 112), (64, 56), (128, 28), (256, 14), (512, 7), (16, 28), (64, 14), (256, 28))
# (channels, input size) of depthwise convs in inverted-residual nets.
_DEPTHWISE = ((32, 112), (96, 56), (144, 28), (240, 28), (480, 14), (960, 7), (16, 28), (128, 7))
# (group width, channels, input size) of grouped convs in ResNeXt / RegNet stages.
_GROUPED = ((4, 128, 56), (8, 32, 56), (8, 128, 28), (8, 368, 7), (16, 256, 28), (32, 512, 14), (32, 1024, 7),
            (64, 512, 14))
# Rough GMAC/s of each class, only to size a benchmark chain to about a millisecond per call.
_GUESS_GMACS = {"pointwise": 40.0, "dense": 40.0, "stem": 20.0, "depthwise": 4.0, "grouped": 10.0, "fc": 4.0}
TARGET_CALL_US = 1000.0
MAX_DEPTH = 16
EPILOGUE_SIZES = (28, 56)
ELTWISE_SIZES = (28, 112)
NEIGHBOURS = 3
KERNEL_WEIGHT = 2.0  # a 5x5 depthwise is priced from 5x5 points before 3x3 ones


def _chain(kind: str, **shape: Any) -> ConvBench:
    single = ConvBench(kind=kind, **shape)
    depth = round(TARGET_CALL_US * _GUESS_GMACS[kind] * 1e3 / single.layer_macs) if kind not in ("stem", "fc") else 1
    return ConvBench(kind=kind, depth=max(1, min(MAX_DEPTH, depth)), **shape)


def mac_benches() -> list[ConvBench]:
    """Every MAC-class benchmark `mnbench peak` runs."""
    benches = [_chain("pointwise", channels=c, size=s) for c, s in (*_STAGES, (1024, 7), (32, 7))]
    benches += [_chain("dense", channels=c, size=s, kernel=3) for c, s in _STAGES]
    benches += [_chain("dense", channels=c, size=s, kernel=k) for k in (5, 7) for c, s in _STAGES[1:6]]
    benches += [_chain("depthwise", channels=c, size=s, kernel=k) for k in (3, 5, 7) for c, s in _DEPTHWISE]
    benches += [_chain("grouped", channels=c, size=s, kernel=3, group_width=g) for g, c, s in _GROUPED]
    benches += [_chain("stem", channels=3, out_channels=c, size=224, kernel=k, stride=2)
                for k, c in ((3, 16), (3, 32), (3, 64), (7, 64))]
    benches += [_chain("fc", channels=k, out_channels=1000, size=1) for k in (256, 1024, 2048)]
    return benches


def epilogue_benches() -> list[ConvBench]:
    return [ConvBench(kind="pointwise", channels=64, size=s, depth=4, epilogue=e)
            for s in EPILOGUE_SIZES for e in EPILOGUES]


def eltwise_benches() -> list[EltwiseBench]:
    return [EltwiseBench(channels=64, size=s) for s in ELTWISE_SIZES]


def layer_features(kind: str, *, width: float, size: int, kernel: int) -> tuple[float, float, float]:
    """Where a layer sits among the points of its class: log2 of its width, output size and kernel."""
    return (math.log2(max(width, 1)), math.log2(max(size, 1)), KERNEL_WEIGHT * math.log2(max(kernel, 1)))


def bench_width(bench: ConvBench) -> float:
    """The width feature of a benchmark, as `mnbench.roofline.layers` computes it for a graph's conv."""
    if bench.kind == "depthwise":
        return bench.channels
    if bench.kind == "grouped":
        return bench.group_width
    if bench.kind == "stem":
        return bench.outputs
    return math.sqrt(bench.channels * bench.outputs)


def measure_calibration(time_us: Callable[[Any], float], *, call_us: float, overhead_us: float) -> dict[str, Any]:
    """The `calibration` of a peak: `time_us(workload)` is one call's median µs through the device's session;
    `call_us` the fixed cost of a call, `overhead_us` of a layer (both from the peak's layer chains)."""
    points = []
    for bench in mac_benches():
        layer_us = max(1e-3, (time_us(bench) - call_us) / bench.depth)
        busy_us = max(layer_us - overhead_us, 0.05 * layer_us)  # a layer all overhead still has some work
        points.append({"kind": bench.kind, "width": bench_width(bench), "size": bench.out_size,
                       "kernel": bench.kernel, "macs": bench.layer_macs, "layer_us": layer_us,
                       "gmacs_per_s": bench.layer_macs / busy_us / 1e3, "method": bench.method})
    elt = [(b, max(1e-3, time_us(b) - call_us)) for b in eltwise_benches()]
    (small, t_small), (large, t_large) = elt
    bytes_per_us = (large.bytes_moved - small.bytes_moved) / max(t_large - t_small, 1e-3)
    eltwise = {"overhead_us": max(0.0, t_small - small.bytes_moved / bytes_per_us),
               "gbytes_per_s": bytes_per_us / 1e3,
               "method": f"{small.method} and {large.method}: fixed cost + bytes / bandwidth through both"}
    epilogues = _epilogues({(b.size, b.epilogue): (time_us(b) - call_us) / b.depth for b in epilogue_benches()})
    return {"schema": CALIBRATION_SCHEMA, "call_us": call_us, "points": points, "eltwise": eltwise,
            "epilogues": epilogues}


def _epilogues(per_layer_us: Mapping[tuple[int, str], float]) -> dict[str, dict[str, float]]:
    """Extra µs of each epilogue over the bare conv, as fixed + per 1000 output elements (a line through 2 sizes)."""
    small, large = EPILOGUE_SIZES
    elements = {s: ConvBench(kind="pointwise", channels=64, size=s).output_elements for s in EPILOGUE_SIZES}
    out = {}
    for kind in EPILOGUES[1:]:
        extra = {s: max(0.0, per_layer_us[(s, kind)] - per_layer_us[(s, "none")]) for s in EPILOGUE_SIZES}
        slope = max(0.0, (extra[large] - extra[small]) / (elements[large] - elements[small]))
        out[kind] = {"fixed_us": max(0.0, extra[small] - slope * elements[small]), "us_per_kelement": slope * 1e3}
    return out


@dataclass(frozen=True)
class Calibration:
    """A peak's `calibration`, ready to price layers; `from_dict` is None for anything malformed (then the plain
    roofline prices the model)."""

    call_us: float
    points: tuple[tuple[str, tuple[float, float, float], float], ...]  # (kind, features, GMAC/s)
    eltwise_overhead_us: float
    eltwise_gbytes_per_s: float
    epilogues: Mapping[str, tuple[float, float]]  # kind -> (fixed µs, µs per 1000 elements)

    @classmethod
    def from_dict(cls, doc: Any) -> Calibration | None:
        try:
            if doc.get("schema") != CALIBRATION_SCHEMA:
                return None
            points = tuple((str(p["kind"]), layer_features(str(p["kind"]), width=float(p["width"]),
                                                           size=int(p["size"]), kernel=int(p["kernel"])),
                            float(p["gmacs_per_s"])) for p in doc["points"])
            epilogues = {str(k): (float(v["fixed_us"]), float(v["us_per_kelement"]))
                         for k, v in doc["epilogues"].items()}
            calibration = cls(call_us=float(doc["call_us"]), points=points,
                              eltwise_overhead_us=float(doc["eltwise"]["overhead_us"]),
                              eltwise_gbytes_per_s=float(doc["eltwise"]["gbytes_per_s"]), epilogues=epilogues)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        if not points or calibration.eltwise_gbytes_per_s <= 0 or any(p[2] <= 0 for p in points):
            return None
        return calibration

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.points)

    def gmacs_per_s(self, kind: str, *, width: float, size: int, kernel: int) -> float:
        """The interpolated efficiency of a `kind` layer of this shape (log-space inverse-distance weighting)."""
        here = layer_features(kind, width=width, size=size, kernel=kernel)
        near = sorted((math.dist(here, f), g) for k, f, g in self.points if k == kind)[:NEIGHBOURS]
        if not near:
            raise KeyError(kind)
        if near[0][0] < 1e-9:
            return near[0][1]
        weights = [1.0 / d ** 2 for d, _ in near]
        return math.exp(sum(w * math.log(g) for w, (_, g) in zip(weights, near)) / sum(weights))

    def eltwise_us(self, nbytes: float) -> tuple[float, float]:
        """(memory µs, fixed µs) of an unfused elementwise layer moving `nbytes`."""
        return nbytes / (self.eltwise_gbytes_per_s * 1e3), self.eltwise_overhead_us

    def epilogue_us(self, kind: str, elements: int) -> float:
        fixed, per_k = self.epilogues.get(kind, (0.0, 0.0))
        return fixed + per_k * elements / 1e3
