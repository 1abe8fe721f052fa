"""What a model is: arch, variant, width multiplier, input resolution, batch, ablation. Validated once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mnbench.errors import MnbenchError

ARCHS = ("v1", "v2", "v3-large", "v3-small")
VARIANTS = ("separable", "standard")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # int8: the fp32 export quantized (mnbench/int8/quantize.py)
# Operator categories used by the cost model, the profiler and every report.
CATEGORIES = ("depthwise", "pointwise", "standard", "grouped", "fc", "se", "other")
# Each ablation (one design choice changed from the published net) and the archs it applies to, in listing order;
# how each one changes the net, and what the papers claim for it, is in mnbench/archs/ablations.py.
_V3 = ("v3-large", "v3-small")
ABLATION_ARCHS: dict[str, tuple[str, ...]] = {
    "no-se": _V3, "se-reduction-16": _V3, "relu": _V3, "original-last-stage": _V3, "stem-32": _V3,
    "expansion-2": ("v2",), "expansion-4": ("v2",), "expansion-10": ("v2",), "expansion-15": ("v2",),
    "no-residual": ("v2",),
}


def check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MnbenchError(f"unknown {kind} {value!r}; choose one of: {', '.join(allowed)}")
    return value


def ablations_for(arch: str) -> tuple[str, ...]:
    return tuple(name for name, archs in ABLATION_ARCHS.items() if arch in archs)


def check_ablation(arch: str, name: str) -> str:
    """`name` if it is an ablation of `arch`; else a MnbenchError naming the ones that are."""
    valid = ablations_for(arch)
    if name in valid:
        return name
    allowed = f"choose one of: {', '.join(valid)}" if valid else f"{arch} has none"
    if name not in ABLATION_ARCHS:
        raise MnbenchError(f"unknown ablation {name!r} for {arch}; {allowed}")
    raise MnbenchError(f"ablation {name!r} does not apply to {arch} (only to {', '.join(ABLATION_ARCHS[name])}); "
                       f"{allowed}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    arch: str
    variant: str = "separable"
    width: float = 1.0
    resolution: int = 224
    batch: int = 1
    dynamic_batch: bool = False
    ablation: str | None = None  # one design choice changed (ABLATION_ARCHS); None: as published

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        check_choice("variant", self.variant, VARIANTS)
        if self.ablation is not None:
            check_ablation(self.arch, self.ablation)
        if not self.width > 0:
            raise MnbenchError(f"width must be > 0 (e.g. 0.25, 0.5, 0.75, 1.0), got {self.width}")
        if self.resolution <= 0 or self.resolution % 32:
            raise MnbenchError(f"resolution must be a positive multiple of 32 (e.g. 128, 160, 192, 224), got {self.resolution}")
        if self.batch <= 0:
            raise MnbenchError(f"batch must be a positive integer, got {self.batch}")

    @property
    def slug(self) -> str:
        """File-name stem: `v2-separable-w1-r224-b1` (`-bdyn` for a dynamic batch; `-no-se` etc. for an ablation)."""
        batch = "dyn" if self.dynamic_batch else str(self.batch)
        ablation = f"-{self.ablation}" if self.ablation else ""
        return f"{self.arch}-{self.variant}-w{self.width:g}-r{self.resolution}-b{batch}{ablation}"

    def as_dict(self) -> dict:
        """Every field; `ablation` only when set, so a published model's dict (its export cache key, the `model`
        entry of result files) is what it was before ablations existed."""
        fields = asdict(self)
        if self.ablation is None:
            del fields["ablation"]
        return fields
