"""A per-layer roofline: the time each layer of the exported graph would take on a device described by three figures.

For every layer: MACs (from `mnbench.graph.cost`), bytes moved, and

    time = max(MACs / peak compute, bytes / bandwidth) + layer overhead

summed over the model. Roofline speedup = predicted time of `standard` / predicted time of `separable`.

What is assumed (and where it misses, see README "Why the saving is lost"):
- Caches: none. Each layer streams its input and output activations and its weights once from memory, so bytes =
  (activation + weight elements) x bytes per element of the precision that ran. A layer whose tensors stay in
  cache moves less; a layer that re-reads its input (im2col, a tiled GEMM spilling) moves more.
- Layers: one per node of the exported graph, except that an elementwise activation reading the output of a
  Conv/Gemm/MatMul (or of such an activation) that nothing else reads is fused into it, as ONNX Runtime's and
  OpenVINO's CPU plugins do; reshapes and constant-only nodes cost nothing. Other fusions (a residual Add into
  the conv before it) are not modelled.
- One compute roof for every layer: a depthwise conv is assumed to reach the dense peak when it is not memory
  bound, which it does not (no data reuse across channels for the vector units): the model errs on its side.
- Bytes per element come from the precision: fp32 4, fp16/bf16 2, int8 1 (`bytes_per_element`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import onnx

from mnbench.config import CATEGORIES
from mnbench.graph.cost import MAC_OPS, ModelCost
from mnbench.errors import MnbenchError

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
# mnbench's exports are float32 graphs: cost.py's byte counts are 4 bytes per element.
GRAPH_BYTES_PER_ELEMENT = 4
BOUNDS = ("compute", "memory", "overhead")
# Activations the runtimes apply inside the kernel that produced their input (post-ops / fused activations).
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "Tanh", "Elu"})
# Data movement a runtime does as a view of the same buffer.
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})


def bytes_per_element(precision: str) -> int:
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise MnbenchError(f"the roofline knows no bytes per element for precision {precision!r}; "
                           f"known: {', '.join(BYTES_PER_ELEMENT)}") from None


@dataclass(frozen=True, kw_only=True)
class Roofs:
    """The three figures that describe a device to the model; `source` says where they come from."""

    name: str
    peak_gmacs_per_s: float
    bandwidth_gbytes_per_s: float
    layer_overhead_us: float
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        for field_name in ("peak_gmacs_per_s", "bandwidth_gbytes_per_s"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise MnbenchError(f"{self.name}: {field_name} must be a positive number, got {value!r}")
        value = self.layer_overhead_us
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise MnbenchError(f"{self.name}: layer overhead (µs) must be a number >= 0, got {value!r}")

    @property
    def ridge_macs_per_byte(self) -> float:
        """The arithmetic intensity where the two roofs meet: below it a layer is memory bound."""
        return self.peak_gmacs_per_s / self.bandwidth_gbytes_per_s

    def describe(self) -> str:
        return (f"{self.name}: {self.peak_gmacs_per_s:,.1f} GMAC/s, {self.bandwidth_gbytes_per_s:,.1f} GB/s, "
                f"{self.layer_overhead_us:.2f} µs per layer" + (f" ({self.source})" if self.source else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "peak_gmacs_per_s": self.peak_gmacs_per_s,
                "bandwidth_gbytes_per_s": self.bandwidth_gbytes_per_s, "layer_overhead_us": self.layer_overhead_us,
                "source": self.source}

    @classmethod
    def from_peak(cls, peak: Mapping[str, Any], name: str | None = None) -> Roofs | None:
        """From a `mnbench peak` result; None for one measured before bandwidth and overhead were."""
        figures = [peak.get(k) for k in ("gmacs_per_s", "gbytes_per_s", "layer_overhead_us")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in figures) or min(figures[:2]) <= 0:
            return None
        label = name or str(peak.get("device", "device"))
        return cls(name=label, peak_gmacs_per_s=float(figures[0]), bandwidth_gbytes_per_s=float(figures[1]),
                   layer_overhead_us=float(figures[2]),
                   source=f"measured by mnbench peak ({peak.get('runtime', '?')}, {peak.get('precision', '?')}, "
                          f"{peak.get('threads', '?')} threads, {peak.get('measured_utc', 'date not recorded')})")


@dataclass(frozen=True, kw_only=True)
class LayerTime:
    name: str
    op_type: str
    category: str
    macs: int
    bytes: int
    compute_us: float
    memory_us: float
    overhead_us: float

    @property
    def intensity(self) -> float:
        """MACs per byte moved."""
        return self.macs / self.bytes if self.bytes else 0.0

    @property
    def time_us(self) -> float:
        return max(self.compute_us, self.memory_us) + self.overhead_us

    @property
    def bound(self) -> str:
        """Which term is largest: the roof the layer sits under, or its fixed cost."""
        terms = {"compute": self.compute_us, "memory": self.memory_us, "overhead": self.overhead_us}
        return max(BOUNDS, key=lambda b: terms[b])


@dataclass(frozen=True, kw_only=True)
class Prediction:
    roofs: Roofs
    precision: str
    layers: tuple[LayerTime, ...]

    @property
    def time_us(self) -> float:
        return sum(layer.time_us for layer in self.layers)

    @property
    def time_ms(self) -> float:
        return self.time_us / 1e3

    def time_by_bound(self) -> dict[str, float]:
        """µs of the layers each bound governs."""
        out = dict.fromkeys(BOUNDS, 0.0)
        for layer in self.layers:
            out[layer.bound] += layer.time_us
        return out

    @property
    def bound(self) -> str:
        """The bound of the layers that take most of the predicted time."""
        by_bound = self.time_by_bound()
        return max(BOUNDS, key=lambda b: by_bound[b])

    def by_category(self) -> dict[str, dict[str, Any]]:
        """category -> layers, MACs, bytes, predicted µs and share of the predicted time; categories with layers."""
        grouped: dict[str, list[LayerTime]] = defaultdict(list)
        for layer in self.layers:
            grouped[layer.category].append(layer)
        total = self.time_us
        return {category: {"layers": len(members), "macs": sum(m.macs for m in members),
                           "bytes": sum(m.bytes for m in members),
                           "time_us": (t := sum(m.time_us for m in members)),
                           "time_share": t / total if total else 0.0}
                for category in CATEGORIES for members in [grouped.get(category)] if members}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: total, bound and the per-category split."""
        return {"predicted_ms": self.time_ms, "bound": self.bound,
                "time_by_bound_us": self.time_by_bound(), "categories": self.by_category()}


def predict(cost: ModelCost, roofs: Roofs, *, precision: str = "fp32", fused: Iterable[str] = (),
            batch_scale: int = 1) -> Prediction:
    """Predicted time of every layer of `cost` (one graph's `count_cost`) on `roofs`.

    `fused`: node names folded into the layer before them (`fused_activations`); `batch_scale`: images per call
    for a graph costed per image (a dynamic batch): activations and MACs scale, weights do not.
    """
    scale = bytes_per_element(precision) / GRAPH_BYTES_PER_ELEMENT
    fused = set(fused)
    layers = []
    for node in cost.nodes:
        if node.name in fused or node.op_type in VIEW_OPS or (node.activation_bytes == 0 and node.macs == 0):
            continue
        macs = node.macs * batch_scale
        moved = round((node.activation_bytes * batch_scale + node.weight_bytes) * scale)
        layers.append(LayerTime(
            name=node.name, op_type=node.op_type, category=node.category, macs=macs, bytes=moved,
            compute_us=macs / (roofs.peak_gmacs_per_s * 1e3),  # GMAC/s = 1e3 MACs per µs
            memory_us=moved / (roofs.bandwidth_gbytes_per_s * 1e3),
            overhead_us=roofs.layer_overhead_us,
        ))
    return Prediction(roofs=roofs, precision=precision, layers=tuple(layers))


def roofline_speedup(standard: Prediction, separable: Prediction) -> float | None:
    return standard.time_us / separable.time_us if separable.time_us > 0 else None


def fused_activations(model: onnx.ModelProto) -> frozenset[str]:
    """Names of the activation nodes a runtime runs inside the Conv/Gemm/MatMul whose output they read.

    Fused: a node in FUSED_ACTIVATIONS whose one activation input comes from a MAC node (or an already fused
    activation) that no other node reads. Names follow `mnbench.graph.cost` (an unnamed node is `<op>_<index>`).
    """
    nodes = list(model.graph.node)
    constants = {init.name for init in model.graph.initializer}
    constants.update(out for n in nodes if n.op_type == "Constant" for out in n.output)
    names = {id(n): n.name or f"{n.op_type}_{i}" for i, n in enumerate(nodes)}
    producer = {out: n for n in nodes for out in n.output if out}
    readers: dict[str, int] = defaultdict(int)
    for n in nodes:
        for x in n.input:
            readers[x] += 1
    for out in model.graph.output:
        readers[out.name] += 1
    fused: set[str] = set()
    for n in nodes:  # topological order: a chain's earlier member is decided first
        data = [x for x in n.input if x and x not in constants]
        if n.op_type not in FUSED_ACTIVATIONS or len(data) != 1 or readers[data[0]] != 1:
            continue
        source = producer.get(data[0])
        if source is not None and (source.op_type in MAC_OPS or names[id(source)] in fused):
            fused.add(names[id(n)])
    return frozenset(fused)
