"""The one block factory: a MobileNet block, separable (published) or standard, from one switch.

Parts are named and a missing part is nn.Identity, so `forward` is a straight line and the ONNX graph is too.
"""

from __future__ import annotations

from torch import Tensor, nn

from mnbench.archs.plan import BlockPlan, squeeze_channels

CONVERSION_RULE = (
    "`standard` replaces each depthwise k×k conv with a standard (dense) k×k conv that also does the work of "
    "the 1×1 conv next to it, keeping stride, activation, squeeze-and-excite and residual. "
    "Without an expansion before it (all of MobileNetV1, and the first, expansion-1 block of V2/V3) the "
    "depthwise k×k + pointwise 1×1 pair becomes one k×k conv from the block's input to its output channels: "
    "MobileNetV1's \"Conv MobileNet\" (Table 4: 29.3M parameters and 4866M mult-adds against 4.2M and 569M). "
    "In an inverted residual the 1×1 expansion + depthwise k×k become one k×k conv from the input to the "
    "expanded channels, followed by the unchanged 1×1 projection: EfficientNetV2's Fused-MBConv. "
    "Stem, last 1×1 conv and classifier are the same in both variants."
)

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}


def activation(name: str | None) -> nn.Module:
    """ReLU / ReLU6 / Hardswish modules (each one ONNX op); None: a linear layer."""
    return nn.Identity() if name is None else _ACTIVATIONS[name]()


class ConvNormAct(nn.Module):
    """conv → BatchNorm → activation; `fold_batchnorm` merges the first two."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, groups: int = 1,
                 act: str | None, bn_eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=(kernel - 1) // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """MobileNetV3's squeeze-and-excite (Sec. 5.3), as torchvision: pool, 1×1 + ReLU, 1×1 + hard-sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        squeezed = squeeze_channels(channels, reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class MobileBlock(nn.Module):
    """[expand 1×1] → spatial k×k → [SE] → [pointwise 1×1] (+ input).

    separable: the spatial conv is depthwise, as published.
    standard:  the spatial conv is dense and absorbs the 1×1 beside it — the expansion when there is one
               (Fused-MBConv), else the pointwise conv after it (MobileNetV1's "Conv MobileNet").
    """

    def __init__(self, spec: BlockPlan, *, separable: bool, bn_eps: float) -> None:
        super().__init__()
        absorbs_pointwise = not separable and not spec.has_expansion
        spatial_in = spec.hidden_channels if separable else spec.in_channels
        spatial_out = spec.out_channels if absorbs_pointwise else spec.hidden_channels
        pointwise_act = None if spec.linear_projection else spec.act

        self.expand = (ConvNormAct(spec.in_channels, spec.hidden_channels, kernel=1, act=spec.act, bn_eps=bn_eps)
                       if separable and spec.has_expansion else nn.Identity())
        self.spatial = ConvNormAct(spatial_in, spatial_out, kernel=spec.kernel, stride=spec.stride,
                                   groups=spatial_out if separable else 1, act=spec.act, bn_eps=bn_eps)
        self.se = SqueezeExcite(spatial_out, spec.se_reduction) if spec.se else nn.Identity()
        self.pointwise = (nn.Identity() if absorbs_pointwise else
                          ConvNormAct(spec.hidden_channels, spec.out_channels, kernel=1, act=pointwise_act,
                                      bn_eps=bn_eps))
        self.residual = spec.residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.pointwise(self.se(self.spatial(self.expand(x))))
        return x + out if self.residual else out
