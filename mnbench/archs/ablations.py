"""Ablations: the published network with exactly one design choice changed, as a transform of its table rows.

Each ablation is a function from a `Network` table to another one; `plan.py` applies it before width rounding, so
the ablated net is made by the same plan, block factory and builder as the published one, in both variants.
A `Claim` is what a paper (or the survey that started mnbench) says the published choice buys against the ablated
one; its figures are signed as "ablated minus published" (+: the ablation costs more), like `mnbench ablate`'s
deltas. Statements are paraphrases unless in quotation marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from mnbench.archs.tables import Block, Classifier, Conv, Network
from mnbench.config import ABLATION_ARCHS, ablations_for, check_ablation  # noqa: F401  (named and checked there)

V3_PAPER = "MobileNetV3 (Howard et al. 2019)"
V2_PAPER = "MobileNetV2 (Sandler et al. 2018)"
SURVEY = "YiJie Zhang, the survey ('Research and Development of Lightweight Neural Network Mobilenet'; no year in the seed text)"
PIXEL_1 = "Google Pixel 1, single big core (TFLite)"


@dataclass(frozen=True, kw_only=True)
class Claim:
    source: str  # who says it and where: paper with section / table / figure, or the survey
    statement: str
    arch: str | None = None  # the network the figures were given for, when the source names or implies one
    device: str | None = None  # where the source measured its latency figures
    madds_delta: int | None = None  # ablated minus published, multiply-adds as the source counts them
    latency_delta_ms: float | None = None  # ablated minus published, on `device`
    latency_change: float | None = None  # relative, ablated / published - 1 (+: the ablation is slower)


@dataclass(frozen=True, kw_only=True)
class Ablation:
    name: str  # one of `mnbench.config.ABLATION_ARCHS`, which says the archs it applies to
    description: str  # one line: what is changed against the published table
    transform: Callable[[Network], Network] = field(repr=False, compare=False)
    claims: tuple[Claim, ...] = ()

    @property
    def archs(self) -> tuple[str, ...]:
        """The archs it applies to (both variants of each)."""
        return ABLATION_ARCHS[self.name]


def _without_se(network: Network) -> Network:
    return replace(network, blocks=tuple(replace(row, se=False) for row in network.blocks))


def _se_reduction(reduction: int) -> Callable[[Network], Network]:
    return lambda network: replace(network, se_reduction=reduction)


def _relu_for_hswish(network: Network) -> Network:
    """ReLU wherever h-swish is used: stem, blocks, last 1×1 conv, classifier. SqueezeExcite's hard-sigmoid gate
    is not an activation of the table and stays."""
    def swap(act):
        return "relu" if act == "hswish" else act

    last_conv = network.last_conv and replace(network.last_conv, act=swap(network.last_conv.act))
    return replace(
        network, stem=replace(network.stem, act=swap(network.stem.act)),
        blocks=tuple(replace(row, act=swap(row.act)) for row in network.blocks), last_conv=last_conv,
        classifier=replace(network.classifier, act=swap(network.classifier.act)),
    )


def _original_last_stage(network: Network) -> Network:
    """MobileNetV3 Figure 5, "Original Last Stage" (MobileNetV2's tail): at 7×7, the last bottleneck's 1×1 expansion
    to 960 (the published last 1×1 conv), a 3×3 depthwise, a linear 1×1 projection to 320 and a 1×1 to the
    1280-wide head, all with BatchNorm; then the pool and the 1000-way classifier on 1280 features.

    The figure is drawn for V3-Large (160 → 960 → 320 → 1280); for V3-Small the same shape is kept in proportion:
    projection to 2 × the last block's output (96 → 576 → 192), head at its 1024. The added bottleneck has no SE
    (Figure 5 shows none) and the net's late activation, h-swish.
    """
    assert network.last_conv is not None and network.classifier.hidden is not None
    last_block, head = network.blocks[-1], network.classifier
    bottleneck = Block(kernel=3, exp_size=network.last_conv.out, out=2 * last_block.out, se=False,
                       act=network.last_conv.act, stride=1)
    return replace(
        network, blocks=(*network.blocks, bottleneck),
        last_conv=Conv(kernel=1, out=head.hidden, act=head.act),
        last_conv_width="scale",  # the head's width scales with α, as the published head does
        classifier=Classifier(dropout=head.dropout),
    )


def _stem_filters(filters: int) -> Callable[[Network], Network]:
    """`filters` stem filters. The first block keeps having no expansion (its exp size follows the stem, as in
    MobileNetV2, whose 32-filter stem feeds a t = 1 block): its depthwise runs on the stem's channels."""
    def transform(network: Network) -> Network:
        first = network.blocks[0]
        if first.exp_size == network.stem.out:
            first = replace(first, exp_size=filters)
        return replace(network, stem=replace(network.stem, out=filters), blocks=(first, *network.blocks[1:]))

    return transform


def expansion(ratio: float) -> Callable[[Network], Network]:
    """MobileNetV2 with expansion ratio t = `ratio` wherever Table 2 has t = 6 (the t = 1 first row stays)."""
    return lambda network: replace(
        network, blocks=tuple(replace(row, expand=ratio) if row.expand == 6 else row for row in network.blocks))


def _no_residual(network: Network) -> Network:
    return replace(network, residual=False)


_V2_EXPANSION_CLAIMS = (
    Claim(source=f"{V2_PAPER}, Sec. 4 (model architecture)",
          statement="expansion rates between 5 and 10 give nearly identical accuracy curves (an accuracy claim; "
                    "cost grows with the rate)"),
    Claim(source=SURVEY + ", Sec. III",
          statement='"better feature protection effect after 15, but considering the amount of parameters and the '
                    'amount of calculation ... selected 6": 6 is the compromise'),
)

ABLATION_LIST = (
    Ablation(
        name="no-se", transform=_without_se,
        description="every squeeze-and-excite removed",
        claims=(Claim(source=SURVEY + ", Sec. IV",
                      statement='SE reduced to a quarter "improves the accuracy without increasing the time '
                                'consumption": removing it should not make the net faster',
                      latency_change=0.0),),
    ),
    Ablation(
        name="se-reduction-16", transform=_se_reduction(16),
        description="squeeze-and-excite squeezes to make_divisible(C/16, 8) instead of C/4",
        claims=(Claim(source=f"{V3_PAPER}, Sec. 5 'Large squeeze-and-excite'",
                      statement="SE fixed at 1/4 of the expansion channels (larger than MnasNet's, which was 1/4 of "
                                "the bottleneck) raises accuracy for a modest parameter increase and no discernible "
                                "latency cost", device=PIXEL_1, latency_change=0.0),),
    ),
    Ablation(
        name="relu", transform=_relu_for_hswish,
        description="ReLU wherever the published net uses h-swish (stem, blocks, last conv, head); the SE gate's "
                    "hard-sigmoid kept",
        claims=(Claim(source=f"{V3_PAPER}, Table 5 (effect of non-linearities)",
                      statement="optimized h-swish costs about 1 ms over ReLU on V3-Large: 51.4 ms with h-swish, "
                                "50.5 ms with ReLU (MAdds unchanged)",
                      arch="v3-large", device=PIXEL_1, madds_delta=0, latency_delta_ms=50.5 - 51.4,
                      latency_change=50.5 / 51.4 - 1),),
    ),
    Ablation(
        name="original-last-stage", transform=_original_last_stage,
        description="the tail before the efficient last stage (Figure 5): expand 1x1, depthwise 3x3, project 1x1 "
                    "to 2x the last block's output and 1x1 to the head, all at 7x7, pooling after them",
        claims=(
            Claim(source=f"{V3_PAPER}, Sec. 5.1 'Redesigning expensive layers', Figure 5",
                  statement="the efficient last stage saves 30M MAdds and 7 ms, 11 % of the running time, with "
                            "almost no loss of accuracy",
                  arch="v3-large", device=PIXEL_1, madds_delta=30_000_000, latency_delta_ms=7.0,
                  latency_change=0.11),
            Claim(source=SURVEY + ", Sec. IV",
                  statement='pooling moved before the 1x1 conv and the last 3x3 and 1x1 removed: "15 ms is improved"',
                  latency_delta_ms=15.0),
        ),
    ),
    Ablation(
        name="stem-32", transform=_stem_filters(32),
        description="32 stem filters instead of 16; the first block's depthwise runs on all 32 (no expansion)",
        claims=(
            Claim(source=f"{V3_PAPER}, Sec. 5.1 'Redesigning expensive layers'",
                  statement="16 stem filters keep the accuracy of 32 and save 2 ms and 10M MAdds (the paper does "
                            "not name the model; the figures fit V3-Large)",
                  arch="v3-large", device=PIXEL_1, madds_delta=10_000_000, latency_delta_ms=2.0),
            Claim(source=SURVEY + ", Sec. IV",
                  statement="the first layer changed to 16 filters, 3 ms faster", latency_delta_ms=3.0),
        ),
    ),
    *(Ablation(name=f"expansion-{ratio}", transform=expansion(ratio),
               description=f"expansion ratio t = {ratio} instead of 6 in every bottleneck with t = 6",
               claims=_V2_EXPANSION_CLAIMS)
      for ratio in (2, 4, 10, 15)),
    Ablation(
        name="no-residual", transform=_no_residual,
        description="no shortcut (residual add) in any bottleneck (0 MACs: the adds are elementwise work)",
    ),
)

ABLATIONS: dict[str, Ablation] = {ablation.name: ablation for ablation in ABLATION_LIST}
if list(ABLATIONS) != list(ABLATION_ARCHS):
    raise RuntimeError(f"the ablations made here {list(ABLATIONS)} are not the ones mnbench.config names "
                       f"{list(ABLATION_ARCHS)}, in its order")
