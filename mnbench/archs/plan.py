"""A table plus a width multiplier → concrete channels for every layer. Width rounding happens here, once."""

from __future__ import annotations

from dataclasses import dataclass

from mnbench.archs.ablations import ABLATIONS
from mnbench.archs.tables import NETWORKS, Activation, Network
from mnbench.config import ModelConfig

NUM_CLASSES = 1000


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: nearest multiple of `divisor`, never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def squeeze_channels(channels: int, reduction: int = 4) -> int:
    """Squeeze-and-excite bottleneck width: torchvision's `_make_divisible(expanded // 4, 8)` (reduction 4)."""
    return make_divisible(channels // reduction, 8)


@dataclass(frozen=True, kw_only=True)
class ConvPlan:
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    act: Activation


@dataclass(frozen=True, kw_only=True)
class BlockPlan:
    in_channels: int
    hidden_channels: int  # after the 1×1 expansion; equal to in_channels when the block has none
    out_channels: int
    kernel: int
    stride: int
    se: bool
    se_reduction: int  # the SE squeezes its channels to make_divisible(channels // se_reduction, 8)
    act: Activation
    linear_projection: bool  # the closing 1×1 has no activation (V2/V3)
    residual: bool

    @property
    def has_expansion(self) -> bool:
        # torchvision's test (V3: expanded != input; V2: t != 1, the same thing for its t ∈ {1, 6}).
        return self.hidden_channels != self.in_channels


@dataclass(frozen=True, kw_only=True)
class ClassifierPlan:
    in_features: int
    hidden: int | None
    act: Activation | None
    dropout: float
    classes: int = NUM_CLASSES


@dataclass(frozen=True, kw_only=True)
class NetworkPlan:
    network: Network
    stem: ConvPlan
    blocks: tuple[BlockPlan, ...]
    last_conv: ConvPlan | None
    classifier: ClassifierPlan
    bn_eps: float


def scale_channels(channels: int, width: float, rounding: str) -> int:
    if rounding == "truncate":
        return max(1, int(channels * width))  # MobileNetV1: "the number of input channels M becomes αM"
    return make_divisible(channels * width, 8)


def plan_network(config: ModelConfig) -> NetworkPlan:
    network = network_table(config)

    def scale(channels: int) -> int:
        return scale_channels(channels, config.width, network.width_rounding)

    stem = ConvPlan(in_channels=3, out_channels=scale(network.stem.out), kernel=network.stem.kernel,
                    stride=network.stem.stride, act=network.stem.act)
    blocks: list[BlockPlan] = []
    channels = stem.out_channels
    for row in network.blocks:
        out = scale(row.out)
        for repeat_index in range(row.repeat):
            stride = row.stride if repeat_index == 0 else 1
            # V2 expands the (already rounded) input by t, V3 scales its exp size: both as torchvision.
            hidden = int(round(channels * row.expand)) if row.exp_size is None else scale(row.exp_size)
            blocks.append(BlockPlan(
                in_channels=channels, hidden_channels=hidden, out_channels=out, kernel=row.kernel,
                stride=stride, se=row.se, se_reduction=network.se_reduction, act=row.act,
                linear_projection=network.linear_bottleneck,
                residual=network.residual and stride == 1 and channels == out,
            ))
            channels = out

    last_conv = None
    if network.last_conv is not None:
        last_conv = ConvPlan(in_channels=channels, out_channels=_last_conv_channels(network, channels, config.width),
                             kernel=network.last_conv.kernel, stride=network.last_conv.stride,
                             act=network.last_conv.act)
        channels = last_conv.out_channels

    head = network.classifier
    classifier = ClassifierPlan(in_features=channels, hidden=None if head.hidden is None else scale(head.hidden),
                                act=head.act, dropout=head.dropout)
    return NetworkPlan(network=network, stem=stem, blocks=tuple(blocks), last_conv=last_conv,
                       classifier=classifier, bn_eps=network.bn_eps)


def network_table(config: ModelConfig) -> Network:
    """The arch's published table, or the table with the config's ablation applied to its rows."""
    network = NETWORKS[config.arch]
    if config.ablation is None:
        return network
    return ABLATIONS[config.ablation].transform(network)


def _last_conv_channels(network: Network, last_block_channels: int, width: float) -> int:
    assert network.last_conv is not None
    base = network.last_conv.out
    if network.last_conv_width == "never_shrink":  # torchvision V2: 1280 · max(1, α)
        return scale_channels(base, max(1.0, width), network.width_rounding)
    if network.last_conv_width == "times_last_block":  # torchvision V3: 6 × the last block (960 = 6 × 160)
        last_row_out = network.blocks[-1].out
        return base // last_row_out * last_block_channels
    return scale_channels(base, width, network.width_rounding)
