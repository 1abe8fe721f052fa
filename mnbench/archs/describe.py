"""One row per layer of `features` (stem, each block, last 1×1 conv), for `mnbench models --detail`."""

from __future__ import annotations

import torch
from torch import nn

from mnbench.archs.blocks import MobileBlock, SqueezeExcite
from mnbench.archs.builder import make_classifier, plain_conv, pytorch_param_count
from mnbench.archs.plan import BlockPlan, ConvPlan, plan_network
from mnbench.config import ModelConfig


def describe_blocks(config: ModelConfig) -> list[dict]:
    """Each dict: index (position in model.features, as in ONNX node names `/features.<index>/…`), name, kind,
    in, out, kernel, stride, expand (hidden channels; None for plain convs), se (bool), se_channels, act,
    residual, replaces (standard variant: which separable parts this block's dense conv stands for; else None),
    params (including BatchNorm). The classifier, same in both variants, is the last dict (kind "classifier")."""
    plan = plan_network(config)
    separable = config.variant == "separable"
    rows = [_conv_row(0, "stem", plan.stem, plan.bn_eps)]
    for index, block in enumerate(plan.blocks, start=1):
        rows.append(_block_row(index, block, separable, plan.bn_eps))
    if plan.last_conv is not None:
        rows.append(_conv_row(len(rows), "last-conv", plan.last_conv, plan.bn_eps))
    with torch.device("meta"):  # shapes only: no memory, no init
        classifier = make_classifier(plan.classifier)
    rows.append({
        "index": None, "name": "classifier", "kind": "classifier", "in": plan.classifier.in_features,
        "out": plan.classifier.classes, "kernel": None, "stride": None, "expand": plan.classifier.hidden,
        "se": False, "se_channels": None, "act": plan.classifier.act, "residual": False, "replaces": None,
        "params": pytorch_param_count(classifier),
    })
    return rows


def _conv_row(index: int, kind: str, conv: ConvPlan, bn_eps: float) -> dict:
    with torch.device("meta"):
        params = pytorch_param_count(plain_conv(conv, bn_eps))
    return {
        "index": index, "name": f"features.{index}", "kind": kind, "in": conv.in_channels,
        "out": conv.out_channels, "kernel": conv.kernel, "stride": conv.stride, "expand": None, "se": False,
        "se_channels": None, "act": conv.act, "residual": False, "replaces": None, "params": params,
    }


def _block_row(index: int, block: BlockPlan, separable: bool, bn_eps: float) -> dict:
    with torch.device("meta"):
        module: nn.Module = MobileBlock(block, separable=separable, bn_eps=bn_eps)
    se_channels = module.se.fc1.out_channels if isinstance(module.se, SqueezeExcite) else None
    return {
        "index": index, "name": f"features.{index}", "kind": block_kind(block, separable),
        "in": block.in_channels, "out": block.out_channels, "kernel": block.kernel, "stride": block.stride,
        "expand": block.hidden_channels, "se": block.se, "se_channels": se_channels, "act": block.act,
        "residual": block.residual, "replaces": None if separable else _replaced_parts(block),
        "params": pytorch_param_count(module),
    }


def block_kind(block: BlockPlan, separable: bool) -> str:
    if separable:
        return "inverted-residual" if block.has_expansion else "depthwise-separable"
    return "fused-inverted-residual" if block.has_expansion else "conv"


def _replaced_parts(block: BlockPlan) -> str:
    k = f"{block.kernel}x{block.kernel}"
    if block.has_expansion:
        return (f"expand 1x1 {block.in_channels}->{block.hidden_channels} + depthwise {k} {block.hidden_channels}"
                f" => conv {k} {block.in_channels}->{block.hidden_channels}")
    return (f"depthwise {k} {block.in_channels} + pointwise 1x1 {block.in_channels}->{block.out_channels}"
            f" => conv {k} {block.in_channels}->{block.out_channels}")
