"""What a model is: arch, variant, width multiplier, input resolution, batch. Validated once, here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mnbench.errors import MnbenchError

ARCHS = ("v1", "v2", "v3-large", "v3-small")
VARIANTS = ("separable", "standard")
PRECISIONS = ("fp32", "fp16", "bf16")
# Operator categories used by the cost model, the profiler and every report.
CATEGORIES = ("depthwise", "pointwise", "standard", "grouped", "fc", "se", "other")


def check_choice(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise MnbenchError(f"unknown {kind} {value!r}; choose one of: {', '.join(allowed)}")
    return value


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    arch: str
    variant: str = "separable"
    width: float = 1.0
    resolution: int = 224
    batch: int = 1
    dynamic_batch: bool = False

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        check_choice("variant", self.variant, VARIANTS)
        if not self.width > 0:
            raise MnbenchError(f"width must be > 0 (e.g. 0.25, 0.5, 0.75, 1.0), got {self.width}")
        if self.resolution <= 0 or self.resolution % 32:
            raise MnbenchError(f"resolution must be a positive multiple of 32 (e.g. 128, 160, 192, 224), got {self.resolution}")
        if self.batch <= 0:
            raise MnbenchError(f"batch must be a positive integer, got {self.batch}")

    @property
    def slug(self) -> str:
        """File-name stem: `v2-separable-w1.0-r224-b1` (`-bdyn` for a dynamic batch)."""
        batch = "dyn" if self.dynamic_batch else str(self.batch)
        return f"{self.arch}-{self.variant}-w{self.width:g}-r{self.resolution}-b{batch}"

    def as_dict(self) -> dict:
        return asdict(self)
