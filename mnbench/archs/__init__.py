"""MobileNet V1/V2/V3 as published (`separable`) and with standard convolutions (`standard`).

tables.py holds the papers' tables, plan.py applies the width multiplier, blocks.py is the one block factory
(where separable/standard is a switch), builder.py makes and initialises the nn.Module.
"""

from mnbench.archs.blocks import CONVERSION_RULE
from mnbench.archs.builder import build_model, fold_batchnorm, pytorch_param_count
from mnbench.archs.describe import describe_blocks

__all__ = ["CONVERSION_RULE", "build_model", "describe_blocks", "fold_batchnorm", "pytorch_param_count"]
