"""The MobileNet architectures: parameter counts against the papers and torchvision, the standard twin,
initialisation that keeps activations normal-sized, and BatchNorm folding.

Parameter counts come from `make_network` under the meta device (no memory, no forward); one test checks that
`build_model` returns the same structure. Forward tests run at resolution 64.
"""

import statistics

import pytest
import torch
from torch import nn

from mnbench.archs import CONVERSION_RULE, build_model, describe_blocks, fold_batchnorm, pytorch_param_count
from mnbench.archs.builder import make_network
from mnbench.config import ARCHS, VARIANTS, ModelConfig

SMALL_RESOLUTION = 64
FLOAT32_TINY = torch.finfo(torch.float32).tiny  # smallest normal float32; anything smaller but non-zero is denormal


def param_count(arch: str, variant: str = "separable", width: float = 1.0) -> int:
    with torch.device("meta"):
        return pytorch_param_count(make_network(ModelConfig(arch=arch, variant=variant, width=width)))


# torchvision counts: mobilenet_v2 / mobilenet_v3_large / mobilenet_v3_small(width_mult=...), torchvision 0.29.1,
# sum of p.numel() over parameters. MobileNetV2 0.75 is 2,636,424 there (not 2,629,064).
TORCHVISION_COUNTS = [
    ("v2", 1.0, 3_504_872),
    ("v2", 0.5, 1_968_680),
    ("v2", 0.75, 2_636_424),
    ("v2", 1.4, 6_108_776),
    ("v3-large", 1.0, 5_483_032),
    ("v3-large", 0.75, 3_377_576),
    ("v3-small", 1.0, 2_542_856),
    ("v3-small", 0.75, 1_653_920),
]


@pytest.mark.parametrize("arch, width, expected", TORCHVISION_COUNTS)
def test_param_count_matches_torchvision_exactly(arch, width, expected):
    assert param_count(arch, width=width) == expected


def test_v1_param_count_matches_the_paper():
    # MobileNetV1 Table 1 network, counted as torchvision would (BatchNorm weight+bias, FC bias): 4.2M in Table 4.
    assert param_count("v1") == 4_231_976


def test_v1_standard_is_the_papers_conv_mobilenet():
    # MobileNetV1 Table 4: "Conv MobileNet" has 29.3M parameters.
    assert param_count("v1", "standard") == pytest.approx(29.3e6, rel=0.005)


@pytest.mark.parametrize("width, millions", [(0.75, 2.6), (0.5, 1.3), (0.25, 0.5)])
def test_v1_width_multiplier_matches_table_6(width, millions):
    assert param_count("v1", width=width) == pytest.approx(millions * 1e6, abs=0.1e6)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("width", [0.35, 0.5, 1.0, 1.4])
def test_standard_has_more_parameters_than_separable(arch, width):
    assert param_count(arch, "standard", width) > param_count(arch, "separable", width)


def conv_groups(model: nn.Module) -> list[int]:
    return [m.groups for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("arch, blocks", [("v1", 13), ("v2", 17), ("v3-large", 15), ("v3-small", 11)])
def test_one_depthwise_conv_per_block_and_none_in_standard(arch, blocks):
    with torch.device("meta"):
        separable = make_network(ModelConfig(arch=arch))
        standard = make_network(ModelConfig(arch=arch, variant="standard"))
    assert sum(g > 1 for g in conv_groups(separable)) == blocks
    assert all(g == 1 for g in conv_groups(standard))
    assert len(separable.features) == len(standard.features)


def test_standard_merges_the_pair_beside_the_depthwise_conv():
    with torch.device("meta"):
        v2 = make_network(ModelConfig(arch="v2", variant="standard"))
    # V2's expansion-1 first block: dw 3×3 (32) + pw 1×1 (32→16) becomes one 3×3 conv 32→16 (+ BN + ReLU6).
    first = v2.features[1]
    assert isinstance(first.expand, nn.Identity) and isinstance(first.pointwise, nn.Identity)
    assert first.spatial.conv.weight.shape == (16, 32, 3, 3)
    assert isinstance(first.spatial.act, nn.ReLU6)
    # An expansion block: expand 1×1 (16→96) + dw 3×3 (96, stride 2) becomes a 3×3 conv 16→96, stride 2
    # (Fused-MBConv); the linear 1×1 projection 96→24 stays.
    second = v2.features[2]
    assert isinstance(second.expand, nn.Identity)
    assert second.spatial.conv.weight.shape == (96, 16, 3, 3) and second.spatial.conv.stride == (2, 2)
    assert second.pointwise.conv.weight.shape == (24, 96, 1, 1) and isinstance(second.pointwise.act, nn.Identity)


def test_v3_squeeze_excite_and_activations_follow_torchvision():
    with torch.device("meta"):
        v3 = make_network(ModelConfig(arch="v3-large"))
    block = v3.features[4]  # Table 1: bneck 5×5, exp 72, out 40, SE, RE, s2
    assert block.spatial.conv.weight.shape == (72, 1, 5, 5)
    assert block.se.fc1.out_channels == 24  # _make_divisible(72 // 4, 8)
    assert isinstance(block.se.gate, nn.Hardsigmoid) and isinstance(block.spatial.act, nn.ReLU)
    assert isinstance(v3.features[7].spatial.act, nn.Hardswish)
    assert v3.features[-1].conv.out_channels == 960 and v3.classifier[0].out_features == 1280


# ---- built models: a forward pass at a small resolution -------------------------------------------------

@pytest.fixture(scope="module")
def built():
    cache: dict[tuple[str, str], nn.Module] = {}

    def get(arch: str, variant: str) -> nn.Module:
        if (arch, variant) not in cache:
            cache[arch, variant] = build_model(ModelConfig(arch=arch, variant=variant, resolution=SMALL_RESOLUTION))
        return cache[arch, variant]
    return get


ALL_MODELS = [(arch, variant) for arch in ARCHS for variant in VARIANTS]


def random_input(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, SMALL_RESOLUTION, SMALL_RESOLUTION, generator=torch.Generator().manual_seed(1))


def has_denormal(tensor: torch.Tensor) -> bool:
    magnitude = tensor.detach().abs()
    return bool(((magnitude > 0) & (magnitude < FLOAT32_TINY)).any())


@pytest.mark.parametrize("arch, variant", ALL_MODELS)
def test_forward_is_finite_and_normal_sized(built, arch, variant):
    model = built(arch, variant)
    assert not model.training
    problems, norm_scales = [], []

    def check(module, _inputs, output):
        if not torch.isfinite(output).all():
            problems.append(f"{module._mnbench_name}: non-finite")
        if has_denormal(output):
            problems.append(f"{module._mnbench_name}: denormal")
        if isinstance(module, nn.BatchNorm2d):
            norm_scales.append(output.pow(2).mean().sqrt().item())

    hooks = []
    for name, module in model.named_modules():
        if not list(module.children()):
            module._mnbench_name = name
            hooks.append(module.register_forward_hook(check))
    try:
        with torch.no_grad():
            logits = model(random_input())
    finally:
        for hook in hooks:
            hook.remove()
    assert logits.shape == (2, 1000)
    assert problems == []
    # Calibrated BatchNorm keeps every layer about unit scale. Uncalibrated (default running statistics), the
    # separable nets shrink to ~1e-10..1e-18 with depth and the standard ones have medians of 0.03..1.8.
    assert 0.2 < min(norm_scales) and max(norm_scales) < 5
    assert 0.8 < statistics.median(norm_scales) < 1.25
    assert not any(has_denormal(p) for p in model.parameters())


@pytest.mark.parametrize("arch, variant", ALL_MODELS)
def test_fold_batchnorm_gives_the_same_outputs(built, arch, variant):
    model = built(arch, variant)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # a copy: the original keeps them
    with torch.no_grad():
        x = random_input()
        expected, actual = model(x), folded(x)
    assert torch.allclose(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert not any(has_denormal(p) for p in folded.parameters())


@pytest.mark.parametrize("arch, variant", ALL_MODELS)
def test_built_model_matches_its_description(built, arch, variant):
    model = built(arch, variant)
    config = ModelConfig(arch=arch, variant=variant, resolution=SMALL_RESOLUTION)
    rows = describe_blocks(config)
    assert pytorch_param_count(model) == param_count(arch, variant) == sum(row["params"] for row in rows)
    layers = [row for row in rows if row["kind"] != "classifier"]
    assert len(layers) == len(model.features)
    for before, after in zip(layers, layers[1:]):
        assert before["out"] == after["in"]
    # Every network ends at stride 32 (MobileNetV1's last "dw / s2" row is really stride 1).
    with torch.no_grad():
        features = model.features(random_input(1))
    assert features.shape[-1] == SMALL_RESOLUTION // 32


def test_same_config_gives_identical_weights_and_leaves_global_rng_alone():
    config = ModelConfig(arch="v3-small", resolution=32)
    rng_before = torch.get_rng_state()
    first, second = build_model(config).state_dict(), build_model(config).state_dict()
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


# ---- description and conversion rule -------------------------------------------------------------------

REQUIRED_KEYS = {"index", "kind", "in", "out", "kernel", "stride", "expand", "se", "act", "replaces"}


@pytest.mark.parametrize("arch", ARCHS)
def test_describe_blocks_says_what_standard_replaced(arch):
    separable = describe_blocks(ModelConfig(arch=arch))
    standard = describe_blocks(ModelConfig(arch=arch, variant="standard"))
    assert all(REQUIRED_KEYS <= row.keys() for row in separable + standard)
    blocks = [row for row in standard if row["kind"] in ("conv", "fused-inverted-residual")]
    assert len(blocks) == sum(row["kind"] in ("depthwise-separable", "inverted-residual") for row in separable)
    assert all("depthwise" in row["replaces"] for row in blocks)
    assert all(row["replaces"] is None for row in separable)


def test_describe_v1_standard_first_block():
    first = describe_blocks(ModelConfig(arch="v1", variant="standard"))[1]
    assert (first["kind"], first["in"], first["out"], first["kernel"], first["stride"]) == ("conv", 32, 64, 3, 1)
    assert first["replaces"] == "depthwise 3x3 32 + pointwise 1x1 32->64 => conv 3x3 32->64"
    assert first["params"] == 3 * 3 * 32 * 64 + 2 * 64


def test_describe_v3_small_first_block_keeps_squeeze_excite():
    first = describe_blocks(ModelConfig(arch="v3-small", variant="standard"))[1]
    assert first["kind"] == "conv" and first["se"] and first["se_channels"] == 8 and first["stride"] == 2


def test_conversion_rule_names_both_replacements():
    assert "Conv MobileNet" in CONVERSION_RULE and "Fused-MBConv" in CONVERSION_RULE
