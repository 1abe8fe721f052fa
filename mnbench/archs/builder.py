"""Build a random-initialised MobileNet from a ModelConfig; fold its BatchNorms; count its parameters."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mnbench.archs.blocks import ConvNormAct, MobileBlock, activation
from mnbench.archs.plan import ClassifierPlan, ConvPlan, NetworkPlan, plan_network
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError

SEED = 0
# BatchNorm calibration: at least this many images, and at least this many values per channel where the
# feature map is smallest (stride 32), so that a small resolution's 1×1 or 2×2 maps still give steady statistics.
CALIBRATION_MIN_BATCH = 8
CALIBRATION_MIN_SAMPLES = 128


class MobileNet(nn.Module):
    """features (stem, blocks, last 1×1 conv) → global average pool → classifier."""

    def __init__(self, plan: NetworkPlan, *, separable: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [plain_conv(plan.stem, plan.bn_eps)]
        layers += [MobileBlock(block, separable=separable, bn_eps=plan.bn_eps) for block in plan.blocks]
        if plan.last_conv is not None:
            layers.append(plain_conv(plan.last_conv, plan.bn_eps))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = make_classifier(plan.classifier)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.pool(self.features(x))))


def plain_conv(conv: ConvPlan, bn_eps: float) -> ConvNormAct:
    return ConvNormAct(conv.in_channels, conv.out_channels, kernel=conv.kernel, stride=conv.stride,
                       act=conv.act, bn_eps=bn_eps)


def make_classifier(plan: ClassifierPlan) -> nn.Sequential:
    """torchvision's heads: V1 Linear; V2 Dropout → Linear; V3 Linear → Hardswish → Dropout → Linear."""
    layers: list[nn.Module] = []
    features = plan.in_features
    if plan.hidden is not None:
        layers += [nn.Linear(features, plan.hidden), activation(plan.act)]
        features = plan.hidden
    if plan.dropout:
        layers.append(nn.Dropout(plan.dropout))
    layers.append(nn.Linear(features, plan.classes))
    return nn.Sequential(*layers)


def build_model(config: ModelConfig) -> nn.Module:
    """The config's network with seeded random weights and calibrated BatchNorm, in eval mode.

    No pretrained weights: latency does not depend on them, only on keeping activations finite and
    normal-sized. The same config gives bit-identical weights on one machine (the BatchNorm statistics
    come from a forward pass, so other CPUs may differ in the last bits).
    """
    # Built on the meta device, then given storage: no default init to pay for, and the global RNG is not
    # touched (every value below comes from our own seeded generator).
    with torch.device("meta"):
        model = make_network(config)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(SEED)
    init_weights(model, generator)
    calibrate_batchnorm(model, config.resolution, generator)
    return model.eval()


def make_network(config: ModelConfig) -> MobileNet:
    """The config's layers with PyTorch's default init: for counting and inspecting (works under
    `torch.device("meta")`), not for running — build_model initialises and calibrates it."""
    return MobileNet(plan_network(config), separable=config.variant == "separable")


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """torchvision's MobileNet init: Kaiming-normal fan_out convs, unit BatchNorm, N(0, 0.01) Linear.
    (PyTorch's fan_out ignores groups, so depthwise weights start small; calibration rescales their output.)"""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01, generator=generator)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, resolution: int, generator: torch.Generator) -> None:
    """Give each BatchNorm the running statistics of what reaches it from a seeded random batch, so that in
    eval mode every layer's output is about unit scale (default statistics let activations grow or shrink
    with depth). One eval-mode pass: a pre-hook sets each BatchNorm's statistics from its input just before
    it runs, so every layer is calibrated against the already-calibrated layers before it, in exactly the
    mode the model is exported and run in."""
    model.eval()

    def take_input_statistics(norm: nn.BatchNorm2d, inputs: tuple[Tensor, ...]) -> None:
        batch = inputs[0]
        norm.running_mean.copy_(batch.mean(dim=(0, 2, 3)))
        norm.running_var.copy_(batch.var(dim=(0, 2, 3), unbiased=False))

    hooks = [module.register_forward_pre_hook(take_input_statistics)
             for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    smallest_map = math.ceil(resolution / 32) ** 2
    batch = max(CALIBRATION_MIN_BATCH, math.ceil(CALIBRATION_MIN_SAMPLES / smallest_map))
    try:
        model(torch.randn(batch, 3, resolution, resolution, generator=generator))
    finally:
        for hook in hooks:
            hook.remove()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy, in eval mode, where every BatchNorm is folded into the conv before it and replaced by
    nn.Identity: the graph a deployment runs. The original model is left as it is."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, ConvNormAct) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    leftover = [name for name, module in folded.named_modules() if isinstance(module, nn.BatchNorm2d)]
    if leftover:
        raise MnbenchError(f"cannot fold BatchNorm outside a conv → BatchNorm → activation unit: "
                           f"{', '.join(leftover)}; fold_batchnorm takes models made by mnbench.archs.build_model")
    return folded


def pytorch_param_count(model: nn.Module) -> int:
    """Parameters as torchvision counts them: every weight and bias, BatchNorm's included (not its buffers)."""
    return sum(parameter.numel() for parameter in model.parameters())
