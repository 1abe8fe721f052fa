"""The published MobileNets, one table per arch, row by row as the papers print them.

Channels here are the width-1.0 numbers; `plan.py` applies the width multiplier, once.
Every row is the separable (published) block; the `standard` twin is derived from it in `blocks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mnbench.errors import MnbenchError

Activation = Literal["relu", "relu6", "hswish"]


@dataclass(frozen=True, kw_only=True)
class Block:
    """One block row: a depthwise k×k conv then a 1×1, with an optional 1×1 expansion before it.

    Hidden (expanded) channels come from `expand` (MobileNetV2's ratio t: round(t × input channels))
    or `exp_size` (MobileNetV3's absolute "exp size", scaled by the width multiplier like `out`).
    """

    out: int
    kernel: int = 3
    stride: int = 1
    repeat: int = 1  # MobileNetV2's n: the row is stacked n times, only the first one strided
    expand: float = 1
    exp_size: int | None = None
    se: bool = False
    act: Activation = "relu"

    def __post_init__(self) -> None:
        if self.exp_size is not None and self.expand != 1:
            raise MnbenchError(f"a block row gives either expand or exp_size, not both: {self}")


@dataclass(frozen=True, kw_only=True)
class Conv:
    """A plain conv row (the stem, the last 1×1 conv): a standard conv in both variants."""

    kernel: int
    out: int
    stride: int = 1
    act: Activation


@dataclass(frozen=True, kw_only=True)
class Classifier:
    """What follows the global average pool: [Linear(hidden) → act] → dropout → Linear(1000)."""

    hidden: int | None = None  # MobileNetV3's 1280 / 1024 "conv2d 1×1, NBN" layer, scaled by width
    act: Activation | None = None
    dropout: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Network:
    source: str
    stem: Conv
    blocks: tuple[Block, ...]
    last_conv: Conv | None
    classifier: Classifier
    # "truncate": int(c·α) as MobileNetV1 does; "multiple_of_8": torchvision's make_divisible(c·α, 8).
    width_rounding: Literal["truncate", "multiple_of_8"]
    # How the width multiplier treats the last 1×1 conv, as torchvision does: V2 keeps 1280 for α < 1
    # ("never_shrink"); V3 makes it (960 / 160 =) 6 × the last block's scaled channels ("times_last_block").
    last_conv_width: Literal["scale", "never_shrink", "times_last_block"] = "scale"
    # MobileNetV2 onwards: a block's last 1×1 has no activation ...
    linear_bottleneck: bool
    # ... and a block that keeps its shape adds its input.
    residual: bool
    # MobileNetV3 ("Large squeeze-and-excite"): SE squeezes to 1/4 of the expansion layer's channels.
    se_reduction: int = 4
    bn_eps: float = 1e-5


# MobileNetV1 (Howard et al. 2017), Table 1: "Conv dw / s" + "Conv / s1" pairs, ReLU after each.
V1 = Network(
    source="MobileNetV1, Howard et al. 2017, Table 1",
    stem=Conv(kernel=3, out=32, stride=2, act="relu"),
    blocks=(
        Block(out=64),
        Block(out=128, stride=2),
        Block(out=128),
        Block(out=256, stride=2),
        Block(out=256),
        Block(out=512, stride=2),
        Block(out=512, repeat=5),
        Block(out=1024, stride=2),
        # The table prints "Conv dw / s2" here, but its input and output are both 7×7: the stride is 1.
        Block(out=1024),
    ),
    last_conv=None,  # avg pool 7×7 then FC 1024 → 1000
    classifier=Classifier(),
    width_rounding="truncate",
    linear_bottleneck=False,
    residual=False,
)

# MobileNetV2 (Sandler et al. 2018), Table 2: rows are (t, c, n, s) bottlenecks, ReLU6, 3×3 depthwise.
V2 = Network(
    source="MobileNetV2, Sandler et al. 2018, Table 2",
    stem=Conv(kernel=3, out=32, stride=2, act="relu6"),
    blocks=(
        Block(expand=1, out=16, repeat=1, stride=1, act="relu6"),
        Block(expand=6, out=24, repeat=2, stride=2, act="relu6"),
        Block(expand=6, out=32, repeat=3, stride=2, act="relu6"),
        Block(expand=6, out=64, repeat=4, stride=2, act="relu6"),
        Block(expand=6, out=96, repeat=3, stride=1, act="relu6"),
        Block(expand=6, out=160, repeat=3, stride=2, act="relu6"),
        Block(expand=6, out=320, repeat=1, stride=1, act="relu6"),
    ),
    last_conv=Conv(kernel=1, out=1280, act="relu6"),
    classifier=Classifier(dropout=0.2),  # torchvision: Dropout(0.2) → Linear
    width_rounding="multiple_of_8",
    last_conv_width="never_shrink",
    linear_bottleneck=True,
    residual=True,
)

# MobileNetV3-Large (Howard et al. 2019), Table 1: bneck rows (kernel, exp size, #out, SE, NL, s).
V3_LARGE = Network(
    source="MobileNetV3-Large, Howard et al. 2019, Table 1",
    stem=Conv(kernel=3, out=16, stride=2, act="hswish"),
    blocks=(
        Block(kernel=3, exp_size=16, out=16, se=False, act="relu", stride=1),
        Block(kernel=3, exp_size=64, out=24, se=False, act="relu", stride=2),
        Block(kernel=3, exp_size=72, out=24, se=False, act="relu", stride=1),
        Block(kernel=5, exp_size=72, out=40, se=True, act="relu", stride=2),
        Block(kernel=5, exp_size=120, out=40, se=True, act="relu", stride=1),
        Block(kernel=5, exp_size=120, out=40, se=True, act="relu", stride=1),
        Block(kernel=3, exp_size=240, out=80, se=False, act="hswish", stride=2),
        Block(kernel=3, exp_size=200, out=80, se=False, act="hswish", stride=1),
        Block(kernel=3, exp_size=184, out=80, se=False, act="hswish", stride=1),
        Block(kernel=3, exp_size=184, out=80, se=False, act="hswish", stride=1),
        Block(kernel=3, exp_size=480, out=112, se=True, act="hswish", stride=1),
        Block(kernel=3, exp_size=672, out=112, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=672, out=160, se=True, act="hswish", stride=2),
        Block(kernel=5, exp_size=960, out=160, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=960, out=160, se=True, act="hswish", stride=1),
    ),
    # The efficient last stage (Sec. 5.1): 1×1 to 960, pool, then 1×1 (no BN) to 1280 — a Linear, as torchvision.
    last_conv=Conv(kernel=1, out=960, act="hswish"),
    classifier=Classifier(hidden=1280, act="hswish", dropout=0.2),
    width_rounding="multiple_of_8",
    last_conv_width="times_last_block",
    linear_bottleneck=True,
    residual=True,
    bn_eps=1e-3,  # torchvision's BatchNorm2d(eps=0.001) for V3
)

# MobileNetV3-Small (Howard et al. 2019), Table 2.
V3_SMALL = Network(
    source="MobileNetV3-Small, Howard et al. 2019, Table 2",
    stem=Conv(kernel=3, out=16, stride=2, act="hswish"),
    blocks=(
        Block(kernel=3, exp_size=16, out=16, se=True, act="relu", stride=2),
        Block(kernel=3, exp_size=72, out=24, se=False, act="relu", stride=2),
        Block(kernel=3, exp_size=88, out=24, se=False, act="relu", stride=1),
        Block(kernel=5, exp_size=96, out=40, se=True, act="hswish", stride=2),
        Block(kernel=5, exp_size=240, out=40, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=240, out=40, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=120, out=48, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=144, out=48, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=288, out=96, se=True, act="hswish", stride=2),
        Block(kernel=5, exp_size=576, out=96, se=True, act="hswish", stride=1),
        Block(kernel=5, exp_size=576, out=96, se=True, act="hswish", stride=1),
    ),
    # Table 2 marks SE on this 1×1 conv; torchvision (and its 2,542,856 parameters) has none, and we match torchvision.
    last_conv=Conv(kernel=1, out=576, act="hswish"),
    classifier=Classifier(hidden=1024, act="hswish", dropout=0.2),
    width_rounding="multiple_of_8",
    last_conv_width="times_last_block",
    linear_bottleneck=True,
    residual=True,
    bn_eps=1e-3,
)

NETWORKS: dict[str, Network] = {"v1": V1, "v2": V2, "v3-large": V3_LARGE, "v3-small": V3_SMALL}
