"""What a runtime's profiler reports: one `KernelTime` per executed kernel, with its shapes where they show.

Backends fill these in (`BenchSession.kernel_profile`); `mnbench.profiling` maps them back to graph nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mnbench.graph.cost import conv_category

# Runtime kernels doing the Conv/Gemm/MatMul work (ORT: Conv, FusedConv, NhwcConv, QLinearConv, FusedGemm,
# FusedMatMul, ...; OpenVINO: Convolution, GroupConvolution, FullyConnected, MatMul, ...).
_MAC_KERNEL = re.compile(r"conv|gemm|matmul|fullyconnected|innerproduct", re.IGNORECASE)
_FC_KERNEL = re.compile(r"gemm|matmul|fullyconnected|innerproduct", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class ConvGeometry:
    """A convolution as a kernel's own shapes describe it: enough to tell depthwise from pointwise."""

    in_channels: int
    weight_in_channels: int  # in_channels / groups
    kernel: tuple[int, ...]
    in_spatial: tuple[int, ...]

    @property
    def groups(self) -> int:
        return max(1, self.in_channels // max(1, self.weight_in_channels))

    def category(self) -> str:
        """The cost model's rule (`mnbench.graph.cost.conv_category`), applied to a kernel's shapes."""
        return conv_category(in_channels=self.in_channels, groups=self.groups,
                             weight_in_channels=self.weight_in_channels, kernel=self.kernel,
                             in_spatial=self.in_spatial)


@dataclass(frozen=True, kw_only=True)
class KernelTime:
    """One kernel of the runtime's executed graph, with its mean time per inference."""

    name: str
    op_type: str  # the runtime's op type: FusedConv, Convolution, ReorderOutput, ...
    time_ms: float
    origins: tuple[str, ...] = ()  # original layer names the runtime reports for it (OpenVINO)
    exec_type: str = ""  # OpenVINO's primitive (brgconv_avx512_bf16, ...) or ORT's provider
    precision: str | None = None  # what the kernel computed in, when it shows
    conv: ConvGeometry | None = None

    @property
    def is_mac_kernel(self) -> bool:
        return bool(_MAC_KERNEL.search(self.op_type))

    def fallback_category(self) -> str:
        """The category from the kernel alone, for a kernel that matches no graph node."""
        if self.conv is not None and self.is_mac_kernel:
            return self.conv.category()
        if _FC_KERNEL.search(self.op_type):
            return "fc"
        return "other"


@dataclass(frozen=True, kw_only=True)
class KernelProfile:
    """A profiled session's measured runs: kernels with mean times, and the mean wall time of one run."""

    kernels: list[KernelTime]
    total_time_ms: float  # mean wall time of one measured inference, as the runtime timed it
    runtime: str
    runtime_version: str = ""
    threads: int | None = None
    iterations: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
