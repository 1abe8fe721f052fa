"""Ablations: each changes exactly the design choice it names (layer listing against the published net), by the
MACs and parameters hand-computed here, and the MobileNetV3 paper's MAdds figures are reproduced where it gives them.

Layer listings come from `describe_blocks` (no export). Costs are counted on exported ONNX graphs at resolution 64;
the paper's MAdds figures are checked against the same hand counts at 224, and on 224-pixel exports in the `slow` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import onnx
import pytest
from typer.testing import CliRunner

from mnbench.archs import describe_blocks
from mnbench.archs.ablations import ABLATION_LIST, ABLATIONS, ablations_for, expansion
from mnbench.archs.plan import make_divisible
from mnbench.archs.tables import NETWORKS, V2
from mnbench.config import ARCHS, VARIANTS, ModelConfig
from mnbench.errors import MnbenchError
from mnbench.artifacts.export import ExportedModel, cache_key, export_model, model_path_for

SMALL = 64
MILLION = 1e6
# The layer-listing keys an ablation may change; every other key of every row must stay as published.
LAYER_KEYS = ("index", "kind", "in", "out", "kernel", "stride", "expand", "se", "se_channels", "act", "residual")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(arch, ablation=None, resolution=64, variant="separable") -> ExportedModel, each once per module."""
    models_dir = tmp_path_factory.mktemp("ablation-models")
    cache: dict[ModelConfig, ExportedModel] = {}

    def export(arch: str, ablation: str | None = None, resolution: int = SMALL,
               variant: str = "separable") -> ExportedModel:
        config = ModelConfig(arch=arch, variant=variant, resolution=resolution, ablation=ablation)
        if config not in cache:
            cache[config] = export_model(config, models_dir=models_dir, progress=False)
        return cache[config]

    return export


def layers(arch: str, ablation: str | None = None, variant: str = "separable") -> list[dict]:
    return describe_blocks(ModelConfig(arch=arch, variant=variant, ablation=ablation))


def changed_keys(published: dict, ablated: dict) -> set[str]:
    return {key for key in LAYER_KEYS if published[key] != ablated[key]}


def op_counts(model: ExportedModel) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(model.path)).graph.node)


def se_params(rows: list[dict]) -> int:
    """Parameters of every squeeze-and-excite: two 1×1 convs with bias, C → S → C."""
    return sum(2 * row["expand"] * row["se_channels"] + row["se_channels"] + row["expand"]
               for row in rows if row["se"])


# --- the registry and the config -------------------------------------------------------------------------------

def test_registry_names_the_issues_ablations_for_each_arch():
    v3 = ("no-se", "se-reduction-16", "relu", "original-last-stage", "stem-32")
    assert ablations_for("v3-large") == ablations_for("v3-small") == v3
    assert ablations_for("v2") == ("expansion-2", "expansion-4", "expansion-10", "expansion-15", "no-residual")
    assert ablations_for("v1") == ()
    for ablation in ABLATION_LIST:
        assert set(ablation.archs) <= set(ARCHS) and "\n" not in ablation.description
        for claim in ablation.claims:
            assert claim.source and claim.statement


def test_paper_claims_are_recorded_as_ablated_minus_published():
    # MobileNetV3 (Howard et al. 2019), Sec. 5.1 / Figure 5: the efficient last stage saves 30M MAdds and 7 ms (11 %);
    # 16 stem filters save 10M MAdds and 2 ms; Table 5: V3-Large 51.4 ms with h-swish, 50.5 ms with ReLU.
    last_stage = ABLATIONS["original-last-stage"].claims[0]
    assert (last_stage.madds_delta, last_stage.latency_delta_ms, last_stage.latency_change) == (30e6, 7.0, 0.11)
    stem = ABLATIONS["stem-32"].claims[0]
    assert (stem.madds_delta, stem.latency_delta_ms) == (10e6, 2.0)
    assert ABLATIONS["relu"].claims[0].latency_delta_ms == pytest.approx(-0.9)


@pytest.mark.parametrize(("arch", "name", "message"), [
    ("v3-large", "no-such", "unknown ablation 'no-such' for v3-large; choose one of: no-se, se-reduction-16, relu, "
                            "original-last-stage, stem-32"),
    ("v2", "no-se", "ablation 'no-se' does not apply to v2 (only to v3-large, v3-small); choose one of: expansion-2, "
                    "expansion-4, expansion-10, expansion-15, no-residual"),
    ("v1", "relu", "v1 has none"),
])
def test_config_refuses_an_ablation_that_does_not_apply(arch, name, message):
    with pytest.raises(MnbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(arch=arch, ablation=name)


def test_ablation_is_in_the_slug_and_the_cache_key_and_published_names_are_as_before():
    published = ModelConfig(arch="v3-large")
    ablated = ModelConfig(arch="v3-large", ablation="no-se")
    assert published.slug == "v3-large-separable-w1-r224-b1"
    assert ablated.slug == "v3-large-separable-w1-r224-b1-no-se"
    # A published config's dict is what it was before ablations existed (so are result files and the cache key's
    # config part); an ablated one names its ablation.
    assert published.as_dict() == {"arch": "v3-large", "variant": "separable", "width": 1.0, "resolution": 224,
                                   "batch": 1, "dynamic_batch": False}
    assert ablated.as_dict() == {**published.as_dict(), "ablation": "no-se"}
    assert ModelConfig(**ablated.as_dict()) == ablated
    assert cache_key(ablated) != cache_key(published)
    assert model_path_for(ablated).name.startswith("v3-large-separable-w1-r224-b1-no-se-opset17-")


def test_ablated_export_is_a_different_file_and_cached(exported):
    published, ablated = exported("v3-small"), exported("v3-small", "no-se")
    assert ablated.path != published.path and ablated.sha256 != published.sha256
    again = export_model(ablated.config, models_dir=ablated.path.parent, progress=False)
    assert again.reused and again.sha256 == ablated.sha256


def test_expansion_6_is_the_published_table():
    # MobileNetV2 (Sandler et al. 2018), Table 2: t = 6 in every row but the first.
    assert expansion(6)(V2) == V2 == NETWORKS["v2"]


# --- what each ablation changes, layer by layer ----------------------------------------------------------------

@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_no_se_removes_every_se_and_nothing_else(arch, variant):
    published, ablated = layers(arch, variant=variant), layers(arch, "no-se", variant)
    assert any(row["se"] for row in published) and not any(row["se"] for row in ablated)
    for before, after in zip(published, ablated, strict=True):
        assert changed_keys(before, after) <= ({"se", "se_channels"} if before["se"] else set())
    delta = sum(row["params"] for row in ablated) - sum(row["params"] for row in published)
    assert delta == -se_params(published)


@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_se_reduction_16_squeezes_to_a_sixteenth(arch):
    published, ablated = layers(arch), layers(arch, "se-reduction-16")
    for before, after in zip(published, ablated, strict=True):
        assert changed_keys(before, after) <= {"se_channels"}
        if before["se"]:
            assert before["se_channels"] == make_divisible(before["expand"] // 4, 8)
            # never below 8 channels: V3-Small's 16-channel first SE squeezes to 8 either way
            assert after["se_channels"] == make_divisible(after["expand"] // 16, 8) <= before["se_channels"]
    assert sum(row["params"] for row in ablated) < sum(row["params"] for row in published)


@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_relu_replaces_hswish_only(arch):
    published, ablated = layers(arch), layers(arch, "relu")
    for before, after in zip(published, ablated, strict=True):
        assert changed_keys(before, after) <= ({"act"} if before["act"] == "hswish" else set())
        assert after["act"] == ("relu" if before["act"] == "hswish" else before["act"])
        assert after["params"] == before["params"]


@pytest.mark.parametrize("arch, last_out, head", [("v3-large", 160, 1280), ("v3-small", 96, 1024)])
def test_original_last_stage_is_figure_5(arch, last_out, head):
    # MobileNetV3 (Howard et al. 2019), Figure 5, "Original Last Stage" for V3-Large: 7×7×160 → 1×1 → 7×7×960 →
    # 3×3 depthwise → 1×1 → 7×7×320 → 1×1 → 7×7×1280 → pool → 1×1 → 1000. V3-Small in the same proportions.
    published, ablated = layers(arch), layers(arch, "original-last-stage")
    blocks = len(published) - 2  # the last conv and the classifier follow the blocks
    assert ablated[:blocks] == published[:blocks]
    expanded = published[-2]["out"]  # the published last 1×1 conv: 960 / 576
    added, last_conv, classifier = ablated[blocks:]
    assert (added["kind"], added["in"], added["expand"], added["out"], added["kernel"], added["stride"],
            added["se"], added["act"], added["residual"]) == (
        "inverted-residual", last_out, expanded, 2 * last_out, 3, 1, False, "hswish", False)
    assert (last_conv["kind"], last_conv["in"], last_conv["out"], last_conv["kernel"]) == ("last-conv", 2 * last_out,
                                                                                           head, 1)
    assert (classifier["in"], classifier["expand"], classifier["out"]) == (head, None, 1000)


@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_stem_32_widens_the_stem_and_the_first_blocks_depthwise(arch):
    published, ablated = layers(arch), layers(arch, "stem-32")
    assert (published[0]["out"], ablated[0]["out"]) == (16, 32)
    first = ablated[1]
    assert (first["kind"], first["in"], first["expand"], first["out"], first["residual"]) == (
        "depthwise-separable", 32, 32, 16, False)
    assert changed_keys(published[0], ablated[0]) == {"out"}
    assert ablated[2:] == published[2:]


@pytest.mark.parametrize("ratio", [2, 4, 10, 15])
def test_expansion_n_changes_only_the_t6_blocks_hidden_channels(ratio):
    published, ablated = layers("v2"), layers("v2", f"expansion-{ratio}")
    for before, after in zip(published, ablated, strict=True):
        if before["kind"] == "inverted-residual":  # Table 2's t = 6 rows
            assert before["expand"] == 6 * before["in"] and after["expand"] == ratio * after["in"]
            assert changed_keys(before, after) == {"expand"}
        else:
            assert after == before


def test_no_residual_drops_every_shortcut_and_nothing_else():
    published, ablated = layers("v2"), layers("v2", "no-residual")
    # MobileNetV2 Table 2: the n - 1 repeats of the rows with n > 1 and stride-1 repeats have shortcuts: 10.
    assert sum(row["residual"] for row in published) == 10
    for before, after in zip(published, ablated, strict=True):
        assert changed_keys(before, after) <= {"residual"} and not after["residual"]
        assert after["params"] == before["params"]


# --- the cost on the exported graph ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_no_se_has_no_se_macs_and_fewer_params(exported, arch):
    published, ablated = exported(arch), exported(arch, "no-se")
    se_macs = published.cost.by_category()["se"].macs
    assert se_macs > 0 and ablated.cost.by_category()["se"].macs == 0
    assert ablated.cost.macs == published.cost.macs - se_macs  # at 1×1 after the pool: SE MACs = SE weights
    assert published.params - ablated.params == se_params(layers(arch))
    assert op_counts(ablated)["HardSigmoid"] == 0 < op_counts(published)["HardSigmoid"]


@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_se_reduction_16_has_fewer_se_macs(exported, arch):
    published, ablated = exported(arch), exported(arch, "se-reduction-16")
    assert 0 < ablated.cost.by_category()["se"].macs < published.cost.by_category()["se"].macs
    assert ablated.params < published.params
    assert ablated.cost.macs - ablated.cost.by_category()["se"].macs == (
        published.cost.macs - published.cost.by_category()["se"].macs)


@pytest.mark.parametrize("arch", ["v3-large", "v3-small"])
def test_relu_has_no_hardswish_but_keeps_hardsigmoid(exported, arch):
    published, ablated = exported(arch), exported(arch, "relu")
    before, after = op_counts(published), op_counts(ablated)
    assert before["HardSwish"] > 0 and after["HardSwish"] == 0
    assert after["HardSigmoid"] == before["HardSigmoid"] > 0  # one per SE gate
    assert after["Relu"] == before["Relu"] + before["HardSwish"]
    assert (ablated.cost.macs, ablated.params) == (published.cost.macs, published.params)


def stem_32_macs_by_hand(resolution: int) -> int:
    """What 32 stem filters add to V3-Large, the stem and the first block both at resolution / 2 square."""
    side = resolution // 2
    stem = side * side * 3 * 9 * 16  # 16 more 3×3 filters over 3 channels
    depthwise = side * side * 9 * 16  # the first block's depthwise over 32 channels instead of 16
    projection = side * side * 16 * 16  # its 1×1 projection from 32 channels instead of 16
    return stem + depthwise + projection


def test_stem_32_costs_what_its_layers_say(exported):
    # At 64 (the paper's figure below needs 224, which is `slow`): the same layers at 32×32.
    delta = exported("v3-large", "stem-32").cost.macs - exported("v3-large").cost.macs
    assert delta == stem_32_macs_by_hand(SMALL) == 851_968
    # MobileNetV3 (Howard et al. 2019), Sec. 5.1: 16 instead of 32 stem filters "saves ... 10 million MAdds". The
    # same layers at 224 give 10.4M: 4.4 % above the paper's round 10M (the paper rounds and does not say how it
    # built the 32-filter first block). Both count only multiply-adds of convs here (the paper's MAdds also hold SE
    # and activation work, and the stem change has neither), so the issue's 15 % is a generous bound; 5 % catches
    # a wrong first block (an added 1×1 expansion 32 → 16 instead would give 11.8M, +18 %).
    assert stem_32_macs_by_hand(224) == 10_436_608 == pytest.approx(10e6, rel=0.05)


@pytest.mark.slow
def test_stem_32_costs_the_papers_10m_madds_at_224(exported):
    delta = exported("v3-large", "stem-32", 224).cost.macs - exported("v3-large", resolution=224).cost.macs
    assert delta == stem_32_macs_by_hand(224) == 10_436_608
    assert delta == pytest.approx(10e6, rel=0.05)


def original_last_stage_macs_by_hand(resolution: int) -> int:
    """What Figure 5's original last stage adds to V3-Large, its layers at resolution / 32 square."""
    area = (resolution // 32) ** 2
    depthwise = area * 960 * 9
    projection = area * 960 * 320
    head = area * 320 * 1280  # the 1×1 to 1280 before pooling ...
    efficient_head = 960 * 1280  # ... instead of after it, from the pooled 960
    return depthwise + projection + head - efficient_head


# Params by hand: depthwise and projection with BatchNorm, the 1×1 to 1280 with BatchNorm, less the published
# Linear 960 → 1280 with its bias: the original stage has fewer parameters though it costs more.
ORIGINAL_LAST_STAGE_PARAMS = (960 * 9 + 2 * 960) + (960 * 320 + 2 * 320) + (320 * 1280 + 2 * 1280) - (960 * 1280 + 1280)


def test_original_last_stage_costs_what_its_layers_say(exported):
    # At 64 (the paper's figure below needs 224, which is `slow`): the stage at 2×2.
    published, ablated = exported("v3-large"), exported("v3-large", "original-last-stage")
    assert ablated.cost.macs - published.cost.macs == original_last_stage_macs_by_hand(SMALL) == 1_672_960
    assert ablated.params - published.params == ORIGINAL_LAST_STAGE_PARAMS == -499_520  # any resolution
    # MobileNetV3 (Howard et al. 2019), Sec. 5.1 / Figure 5: the efficient last stage "reduces the number of
    # operations by 30 millions MAdds". The same layers at 224 (7×7) give 34.3M, 14.4 % above the paper's 30M:
    # Figure 5's layers give 34.3M by any count of conv multiply-adds (the paper's MAdds would add activation
    # work, raising ours further), so the paper's figure is rounded down or was counted on a slightly different
    # stage; within the issue's 15 %, and the test says so.
    assert original_last_stage_macs_by_hand(224) == 34_317_760 == pytest.approx(30e6, rel=0.15)


@pytest.mark.slow
def test_original_last_stage_costs_the_papers_30m_madds_at_224(exported):
    published = exported("v3-large", resolution=224)
    ablated = exported("v3-large", "original-last-stage", 224)
    assert ablated.cost.macs - published.cost.macs == original_last_stage_macs_by_hand(224) == 34_317_760
    assert ablated.params - published.params == ORIGINAL_LAST_STAGE_PARAMS
    assert ablated.cost.macs - published.cost.macs == pytest.approx(30e6, rel=0.15)


def test_expansion_macs_grow_with_the_ratio_and_6_is_published(exported):
    macs = {ratio: exported("v2", f"expansion-{ratio}").cost.macs for ratio in (2, 4, 10, 15)}
    macs[6] = exported("v2").cost.macs
    params = {ratio: exported("v2", f"expansion-{ratio}").params for ratio in (2, 4, 10, 15)}
    params[6] = exported("v2").params
    ratios = sorted(macs)
    assert [macs[r] for r in ratios] == sorted(macs.values()) and len(set(macs.values())) == 5
    assert [params[r] for r in ratios] == sorted(params.values())
    # Expansion, depthwise and projection are each linear in the hidden channels t × C_in, so MACs are linear in t:
    # 2, 6, 10 equally spaced, and 15 - 6 = 9/4 × (6 - 2).
    assert macs[10] - macs[6] == macs[6] - macs[2]
    assert 4 * (macs[15] - macs[6]) == 9 * (macs[6] - macs[2])


def test_no_residual_has_no_add_nodes(exported):
    published, ablated = exported("v2"), exported("v2", "no-residual")
    adds = [node.name for node in onnx.load(str(published.path)).graph.node if node.op_type == "Add"]
    assert len(adds) == 10 and all(name.startswith("/features/") for name in adds)
    assert op_counts(ablated)["Add"] == 0
    assert (ablated.cost.macs, ablated.params) == (published.cost.macs, published.params)
    assert ablated.cost.other_flops < published.cost.other_flops


@pytest.mark.parametrize("name", [ablation.name for ablation in ABLATION_LIST])
def test_every_ablation_exports_and_validates_as_standard_too(exported, name):
    arch = ABLATIONS[name].archs[0]
    standard = exported(arch, name, variant="standard")  # export_model refuses a file that differs from PyTorch
    published = exported(arch, variant="standard")
    assert standard.cost.by_category()["depthwise"].macs == 0
    assert standard.sha256 != published.sha256


# --- the command line -----------------------------------------------------------------------------------------

def test_models_lists_the_ablated_cost_with_deltas(app, tmp_path, exported):
    result = CliRunner().invoke(app, ["models", "--arch", "v3-small", "--ablation", "no-se", "--resolution", "64",
                                      "--format", "json", "--models-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    separable = next(row for row in rows if row["variant"] == "separable")
    published = exported("v3-small")
    assert separable["ablation"] == "no-se"
    assert separable["macs_delta"] == -published.cost.by_category()["se"].macs
    assert separable["params_delta"] == -se_params(layers("v3-small"))


def test_models_ablation_list_and_bad_names(app):
    listing = CliRunner().invoke(app, ["models", "--arch", "v2", "--ablation", "list", "--format", "json"])
    assert listing.exit_code == 0
    assert [row["name"] for row in json.loads(listing.stdout)] == list(ablations_for("v2"))


@pytest.mark.parametrize("args", [["models", "--arch", "v2", "--ablation", "no-se"],
                                  ["export", "--arch", "v3-large", "--ablation", "expansion-4"]])
def test_an_ablation_that_does_not_apply_is_one_line_and_exit_2(args):
    # Through `python -m mnbench`: main() is what turns MnbenchError into one line and exit code 2.
    result = subprocess.run([sys.executable, "-m", "mnbench", *args], capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "does not apply" in lines[0] and "choose one of" in lines[0]
