"""The roofline's figures and results: a device's roofs (`Roofs`), one layer's predicted time (`LayerTime`) and a
model's (`Prediction`). How layers are priced is in `mnbench.roofline.model` (plain) and `mnbench.roofline.priced`
(calibrated per operator class)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from mnbench.config import CATEGORIES
from mnbench.errors import MnbenchError
from mnbench.roofline.calibrate import Calibration

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
# mnbench's exports are float32 graphs: cost.py's byte counts are 4 bytes per element.
GRAPH_BYTES_PER_ELEMENT = 4
BOUNDS = ("compute", "memory", "overhead")
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
    # What each operator class costs here (`mnbench peak`); None for a paper spec or an older peak.
    calibration: Calibration | None = None

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
                f"{self.layer_overhead_us:.2f} µs per layer" + (f" ({self.source})" if self.source else "")
                + ("; operator classes calibrated" if self.calibration else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "peak_gmacs_per_s": self.peak_gmacs_per_s,
                "bandwidth_gbytes_per_s": self.bandwidth_gbytes_per_s, "layer_overhead_us": self.layer_overhead_us,
                "source": self.source, "calibrated": self.calibration is not None}

    @classmethod
    def from_peak(cls, peak: Mapping[str, Any], name: str | None = None) -> Roofs | None:
        """From a `mnbench peak` result; None for one measured before bandwidth and overhead were."""
        figures = [peak.get(k) for k in ("gmacs_per_s", "gbytes_per_s", "layer_overhead_us")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in figures) or min(figures[:2]) <= 0:
            return None
        label = name or str(peak.get("device", "device"))
        return cls(name=label, peak_gmacs_per_s=float(figures[0]), bandwidth_gbytes_per_s=float(figures[1]),
                   layer_overhead_us=float(figures[2]), calibration=Calibration.from_dict(peak.get("calibration")),
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
    epilogue_us: float = 0.0  # fused elementwise work (an activation, a residual Add) measured on this device
    weights_us: float = 0.0  # weights streamed from memory on top of the compute (calibrated layers)
    fused: tuple[str, ...] = ()  # the nodes run inside this layer
    priced: str = "roofline"  # how compute_us was reached: the peak, or a calibrated operator class

    @property
    def intensity(self) -> float:
        """MACs per byte moved."""
        return self.macs / self.bytes if self.bytes else 0.0

    @property
    def time_us(self) -> float:
        return max(self.compute_us, self.memory_us) + self.overhead_us + self.epilogue_us + self.weights_us

    @property
    def bound(self) -> str:
        """Which term is largest: the roof the layer sits under, or its fixed cost."""
        terms = {"compute": self.compute_us, "memory": self.memory_us + self.weights_us, "overhead": self.overhead_us}
        return max(BOUNDS, key=lambda b: terms[b])


@dataclass(frozen=True, kw_only=True)
class Prediction:
    roofs: Roofs
    precision: str
    layers: tuple[LayerTime, ...]
    # Operators the predictor has no model for (priced as memory traffic): op type -> nodes, share of nodes/bytes.
    unknown: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

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
        return {"predicted_ms": self.time_ms, "bound": self.bound, "calibrated": self.roofs.calibration is not None,
                "time_by_bound_us": self.time_by_bound(), "categories": self.by_category(),
                "unknown_operators": {op: dict(v) for op, v in self.unknown.items()}}

    def layer_rows(self) -> list[dict[str, Any]]:
        """JSON-ready: one row per layer, in graph order."""
        return [{"name": layer.name, "op_type": layer.op_type, "category": layer.category, "macs": layer.macs,
                 "bytes": layer.bytes, "predicted_us": layer.time_us, "bound": layer.bound, "priced": layer.priced,
                 "fused": list(layer.fused)} for layer in self.layers]
