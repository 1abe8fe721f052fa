"""`mnbench predict`: spec files (shipped and broken), JSON rows that agree with the roofline model, --spec this."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import onnx
import pytest
from typer.testing import CliRunner

from mnbench.artifacts.export import export_model
from mnbench.config import ModelConfig
from mnbench.errors import MnbenchError
from mnbench.roofline.peak import save_peak
from mnbench.roofline.predict import SPECS_DIR, load_spec, shipped_specs
from mnbench.roofline.model import fused_activations, predict

SMALL = ["--arch", "v1", "--width", "0.25", "--resolution", "96"]


def _predict(app, *args):
    return CliRunner().invoke(app, ["predict", *args])


def _assert_one_line_exit_2(*args, needle: str) -> None:
    """The real entry point, as a user runs it: one `error:` line on stderr, exit code 2."""
    env = {k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "mnbench", "predict", *args], capture_output=True, text=True,
                            env=env, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def test_every_shipped_spec_loads_with_a_source():
    assert {"h200", "intel-iris-xe", "raspberry-pi-5"} <= set(shipped_specs())
    for name in shipped_specs():
        roofs = load_spec(name)
        assert roofs.source.startswith(("NVIDIA", "Intel", "Raspberry")) and "http" in roofs.source
        assert "estimates:" in roofs.notes  # each ships at least one figure that is not from a datasheet
    h200 = load_spec(SPECS_DIR / "h200.toml")
    assert h200.peak_gmacs_per_s == 67_000 / 2  # the datasheet's 67 TFLOPS FP32, 1 MAC = 2 FLOPs
    assert h200.bandwidth_gbytes_per_s == 4_800  # 4.8 TB/s HBM3e


def test_predict_json_rows_follow_the_model(app, models_dir):
    result = _predict(app, "--spec", "raspberry-pi-5", *SMALL, "--format", "json", "--models-dir", str(models_dir))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert {"arch", "theoretical_speedup", "predicted_speedup", "predicted_ms_separable", "predicted_ms_standard",
            "bound_separable", "bound_standard"} <= set(row)
    roofs = load_spec("raspberry-pi-5")
    predicted = {}
    for variant in ("separable", "standard"):
        exported = export_model(ModelConfig(arch="v1", variant=variant, width=0.25, resolution=96),
                                models_dir=models_dir)
        predicted[variant] = predict(exported.cost, roofs, fused=fused_activations(onnx.load(str(exported.path))))
    assert row["predicted_ms_separable"] == pytest.approx(predicted["separable"].time_ms)
    assert row["predicted_speedup"] == pytest.approx(predicted["standard"].time_us / predicted["separable"].time_us)
    assert row["bound_separable"] == predicted["separable"].bound
    assert row["figures"]["bandwidth_gbytes_per_s"] == 17.1
    assert "prediction, not a measurement" in result.stderr and "17.1 GB/s" in result.stderr


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\npeak_gmacs_per_s = 1.0\nbandwidth_gbytes_per_s = 1.0\n", "missing 'launch_overhead_us'"),
    ("name = 'x'\npeak_gmacs_per_s = 'fast'\nbandwidth_gbytes_per_s = 1.0\nlaunch_overhead_us = 1\n", "must be"),
    ("name = 'x'\npeak_gmacs_per_s = 1.0\nbandwidth_gbytes_per_s = 1.0\nlaunch_overhead_us = 1\nbandwith = 2\n",
     "unknown key"),
    ("name = 'x\n", "cannot read spec"),
    ("name = 'x'\npeak_gmacs_per_s = -1.0\nbandwidth_gbytes_per_s = 1.0\nlaunch_overhead_us = 1\n", "positive"),
])
def test_a_malformed_spec_is_one_line_and_exit_2(app, tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    with pytest.raises(MnbenchError, match=message):
        load_spec(spec)


def test_bad_and_missing_specs_are_one_line_and_exit_2(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text("name = 'x'\npeak_gmacs_per_s = 1.0\n")
    _assert_one_line_exit_2("--spec", str(spec), *SMALL, needle="missing 'bandwidth_gbytes_per_s'")
    _assert_one_line_exit_2("--spec", str(tmp_path / "nope.toml"), *SMALL, needle="spec file not found")


def test_a_missing_spec_names_the_shipped_ones(tmp_path):
    with pytest.raises(MnbenchError, match="spec file not found.*h200"):
        load_spec(tmp_path / "nope.toml")


def test_spec_this_reads_the_measured_peak(app, tmp_path, models_dir):
    reports = tmp_path / "reports"
    _assert_one_line_exit_2("--spec", "this", *SMALL, "--reports-dir", str(reports), needle="run `mnbench peak")
    save_peak({"device": "cpu", "precision": "fp32", "gmacs_per_s": 40.0, "gbytes_per_s": 15.0,
               "layer_overhead_us": 1.0, "runtime": "onnxruntime", "threads": 2}, reports_dir=reports)
    result = _predict(app, "--spec", "this", *SMALL, "--format", "json", "--reports-dir", str(reports),
                      "--models-dir", str(models_dir))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["figures"]["peak_gmacs_per_s"] == 40.0 and row["device"] == "this machine's cpu"
