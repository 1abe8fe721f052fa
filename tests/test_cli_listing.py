"""`mnbench models`, `mnbench export` and `mnbench devices` through the CLI."""

import json

import pytest
from typer.testing import CliRunner

from mnbench.config import CATEGORIES


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_models_json_lists_both_variants_with_integer_costs(app, models_dir):
    result = CliRunner().invoke(app, ["models", "--arch", "v1", "--width", "0.25", "--resolution", "64", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["arch"], r["variant"]) for r in rows] == [("v1", "separable"), ("v1", "standard")]
    separable, standard = rows
    for row in rows:
        assert isinstance(row["params"], int) and isinstance(row["macs"], int)
        assert (row["width"], row["resolution"]) == (0.25, 64)
        assert set(row["categories"]) <= set(CATEGORIES)
        assert sum(c["macs"] for c in row["categories"].values()) == row["macs"]
    assert standard["macs"] > separable["macs"] and standard["params"] > separable["params"]
    assert separable["theoretical_speedup"] == pytest.approx(standard["macs"] / separable["macs"])
    assert "depthwise" in separable["categories"] and standard["categories"].get("depthwise", {}).get("macs", 0) == 0


def test_models_table_shows_the_conversion_rule(app, models_dir):
    result = CliRunner().invoke(app, ["models", "--arch", "v1", "--width", "0.25", "--resolution", "64"])
    assert result.exit_code == 0, result.output
    assert "Conv MobileNet" in result.stdout and "separable" in result.stdout


def test_models_detail_shows_what_the_twin_replaced(app):
    result = CliRunner().invoke(app, ["models", "--arch", "v2", "--detail", "--format", "json"])
    rows = json.loads(result.stdout)
    fused = [r for r in rows if r["kind"] == "fused-inverted-residual"]
    assert len(fused) == 16  # every V2 bottleneck but the expansion-1 first one (MobileNetV2 Table 2: 17 blocks)
    assert all("expand 1x1" in r["replaces"] for r in fused)


def test_export_prints_the_path_last_and_reuses_the_cache(app, models_dir):
    args = ["export", "--arch", "v1", "--width", "0.25", "--resolution", "64"]
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == second.exit_code == 0, first.output
    path = first.stdout.strip().splitlines()[-1]
    assert path == second.stdout.strip().splitlines()[-1] and path.startswith(str(models_dir))
    assert "reused" in second.stdout


def test_devices_json_says_what_is_available_and_why_not(app):
    result = CliRunner().invoke(app, ["devices", "--format", "json"])
    devices = {d["name"]: d for d in json.loads(result.stdout)}
    assert devices["cpu"]["available"] and devices["cpu"]["runtime"] == "onnxruntime"
    assert devices["openvino"]["available"] and devices["openvino"]["runtime"] == "openvino"
    for name in ("cuda", "tensorrt", "openvino-ep"):
        assert name in devices
        if not devices[name]["available"]:
            assert devices[name]["reason"]
