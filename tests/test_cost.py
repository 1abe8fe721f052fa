"""Cost counting on small hand-made graphs, every expected number worked out by hand."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from mnbench.config import CATEGORIES
from mnbench.graph.cost import count_cost
from mnbench.errors import MnbenchError

FLOAT_BYTES = 4


def export(model: nn.Module, shape: tuple[int, ...], path: Path, *, dynamic_batch: bool = False) -> Path:
    """Export the way mnbench does (TorchScript exporter, opset 17), so node names are module paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (torch.randn(*shape),), str(path), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
        )
    return path


def only_node(cost, op_type):
    (node,) = [n for n in cost.nodes if n.op_type == op_type]
    return node


def test_depthwise_conv(tmp_path):
    cost = count_cost(export(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 10, 10), tmp_path / "m.onnx"))
    conv = only_node(cost, "Conv")
    assert conv.category == "depthwise"
    assert conv.macs == (8 * 10 * 10) * (1 * 3 * 3)  # output elements x weight[1:]
    assert conv.params == 8 * 1 * 3 * 3 + 8
    assert conv.weight_bytes == conv.params * FLOAT_BYTES
    assert conv.activation_bytes == (8 * 10 * 10 + 8 * 10 * 10) * FLOAT_BYTES  # input read + output written


def test_pointwise_conv(tmp_path):
    cost = count_cost(export(nn.Conv2d(8, 16, 1, bias=False), (1, 8, 10, 10), tmp_path / "m.onnx"))
    conv = only_node(cost, "Conv")
    assert conv.category == "pointwise"
    assert conv.macs == (16 * 10 * 10) * 8
    assert conv.params == 16 * 8
    assert conv.activation_bytes == (8 * 100 + 16 * 100) * FLOAT_BYTES


def test_standard_conv_with_stride(tmp_path):
    cost = count_cost(export(nn.Conv2d(3, 8, 3, stride=2, padding=1), (1, 3, 16, 16), tmp_path / "m.onnx"))
    conv = only_node(cost, "Conv")
    assert conv.category == "standard"
    assert conv.macs == (8 * 8 * 8) * (3 * 3 * 3)
    assert conv.params == 8 * 3 * 3 * 3 + 8


def test_grouped_conv(tmp_path):
    cost = count_cost(export(nn.Conv2d(8, 16, 3, padding=1, groups=2), (1, 8, 10, 10), tmp_path / "m.onnx"))
    conv = only_node(cost, "Conv")
    assert conv.category == "grouped"
    assert conv.macs == (16 * 10 * 10) * (4 * 3 * 3)
    assert conv.params == 16 * 4 * 3 * 3 + 16


def test_linear_counts_batch(tmp_path):
    cost = count_cost(export(nn.Linear(16, 10), (3, 16), tmp_path / "m.onnx"))
    gemm = only_node(cost, "Gemm")
    assert gemm.category == "fc"
    assert gemm.macs == 3 * 10 * 16  # M x N x K
    assert gemm.params == 16 * 10 + 10
    assert gemm.other_flops == 0


def test_batched_matmul(tmp_path):
    cost = count_cost(export(nn.Linear(16, 10, bias=False), (2, 5, 16), tmp_path / "m.onnx"))
    matmul = only_node(cost, "MatMul")
    assert matmul.category == "fc"
    assert matmul.macs == 2 * 5 * 10 * 16
    assert matmul.params == 160


def test_one_by_one_conv_on_pooled_features_is_fc(tmp_path):
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 12, 1))  # a classifier written as a conv
    cost = count_cost(export(head, (1, 8, 7, 7), tmp_path / "m.onnx"))
    assert only_node(cost, "Conv").category == "fc"
    assert only_node(cost, "Conv").macs == 12 * 8
    assert only_node(cost, "GlobalAveragePool").category == "other"


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class ResidualSEBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.act = nn.Hardswish()
        self.se = SqueezeExcite(16, 4)
        self.pw = nn.Conv2d(16, 16, 1, bias=False)

    def forward(self, x):
        return x + self.pw(self.se(self.act(self.dw(x))))


@pytest.fixture(scope="module")
def se_block_cost(tmp_path_factory):
    return count_cost(export(ResidualSEBlock(), (1, 16, 8, 8), tmp_path_factory.mktemp("se") / "m.onnx"))


def test_se_branch_is_found_structurally(se_block_cost):
    by_op = {}
    for node in se_block_cost.nodes:
        by_op.setdefault(node.category, []).append(node.op_type)
    assert sorted(by_op["se"]) == sorted(["GlobalAveragePool", "Conv", "Relu", "Conv", "HardSigmoid", "Mul"])
    assert by_op["depthwise"] == ["Conv"]
    assert by_op["pointwise"] == ["Conv"]
    assert sorted(by_op["other"]) == ["Add", "HardSwish"]


def test_se_and_residual_costs(se_block_cost):
    se = se_block_cost.by_category()["se"]
    assert se.macs == 16 * 4 + 4 * 16  # the two 1x1 convs on a 1x1 map
    assert se.params == (16 * 4 + 4) + (4 * 16 + 16)
    # pool reads every input element; relu, hardsigmoid and the gating Mul one per output element
    assert se.other_flops == 16 * 8 * 8 + 4 + 16 + 16 * 8 * 8
    add = only_node(se_block_cost, "Add")
    assert (add.macs, add.other_flops) == (0, 16 * 8 * 8)


def test_macs_never_include_elementwise_work(se_block_cost):
    conv_macs = (16 * 64 * 9) + (16 * 4 + 4 * 16) + (16 * 64 * 16)  # depthwise + SE convs + pointwise
    assert se_block_cost.macs == conv_macs
    assert all(n.macs == 0 for n in se_block_cost.nodes if n.op_type not in ("Conv", "Gemm", "MatMul"))
    assert se_block_cost.other_flops == sum(n.other_flops for n in se_block_cost.nodes) > 0


def test_by_category_lists_every_category_and_shares_sum_to_one(se_block_cost):
    table = se_block_cost.by_category()
    assert tuple(table) == CATEGORIES
    assert sum(c.mac_share for c in table.values()) == pytest.approx(1.0)
    assert sum(c.macs for c in table.values()) == se_block_cost.macs
    assert sum(c.params for c in table.values()) == se_block_cost.params
    assert table["grouped"].nodes == 0 and table["grouped"].mac_share == 0.0


def test_totals_and_params_match_torch(se_block_cost):
    assert se_block_cost.params == sum(p.numel() for p in ResidualSEBlock().parameters())
    assert se_block_cost.weight_bytes == se_block_cost.params * FLOAT_BYTES


def test_category_of_uses_onnx_node_names(se_block_cost):
    dw = next(n for n in se_block_cost.nodes if n.category == "depthwise")
    assert dw.name == "/dw/Conv"  # module-path names from the exporter
    assert se_block_cost.category_of("/dw/Conv") == "depthwise"
    assert se_block_cost.category_of("/se/fc1/Conv") == "se"
    assert se_block_cost.category_of("fused_by_runtime", default="other") == "other"
    with pytest.raises(MnbenchError, match="fused_by_runtime"):
        se_block_cost.category_of("fused_by_runtime")


def test_swish_style_mul_is_not_se(tmp_path):
    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    cost = count_cost(export(nn.Sequential(nn.Conv2d(4, 4, 1), Swish()), (1, 4, 6, 6), tmp_path / "m.onnx"))
    assert only_node(cost, "Mul").category == "other"


def test_dynamic_batch_is_costed_per_sample(tmp_path):
    model = nn.Conv2d(3, 8, 3, padding=1)
    static = count_cost(export(model, (1, 3, 8, 8), tmp_path / "static.onnx"))
    dynamic = count_cost(export(model, (2, 3, 8, 8), tmp_path / "dynamic.onnx", dynamic_batch=True))
    assert dynamic.macs == static.macs == (8 * 8 * 8) * 27


def test_accepts_a_loaded_model(tmp_path):
    path = export(nn.Conv2d(8, 8, 1), (1, 8, 4, 4), tmp_path / "m.onnx")
    assert count_cost(onnx.load(str(path))).macs == count_cost(path).macs == count_cost(str(path)).macs


def test_unreadable_model_raises(tmp_path):
    with pytest.raises(MnbenchError, match="missing.onnx"):
        count_cost(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a protobuf\xff" * 10)
    with pytest.raises(MnbenchError):
        count_cost(garbage)


def test_biases_the_exporter_stored_once_still_count_per_conv(tmp_path):
    model = nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU(), nn.Conv2d(6, 6, 1))
    with torch.no_grad():  # identical (zero) biases, as freshly initialised SE convs have: stored once
        model[0].bias.zero_()
        model[2].bias.zero_()
    path = export(model, (1, 4, 5, 5), tmp_path / "m.onnx")
    model_proto = onnx.load(str(path))
    if not any(n.op_type == "Identity" for n in model_proto.graph.node):
        pytest.skip("this exporter kept both biases; nothing to check")
    cost = count_cost(path)
    assert cost.params == sum(p.numel() for p in model.parameters())
    second = [n for n in cost.nodes if n.op_type == "Conv"][1]
    assert second.activation_bytes == (6 * 25 + 6 * 25) * FLOAT_BYTES  # the aliased bias is not an activation


def test_clip_bounds_are_not_activations(tmp_path):
    cost = count_cost(export(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU6()), (1, 3, 5, 5), tmp_path / "m.onnx"))
    clip = only_node(cost, "Clip")  # ReLU6: its min / max arrive as Constant nodes
    assert clip.activation_bytes == (4 * 25 + 4 * 25) * FLOAT_BYTES
    assert clip.other_flops == 4 * 25 and clip.params == 0
    assert all(n.activation_bytes == 0 for n in cost.nodes if n.op_type == "Constant")
