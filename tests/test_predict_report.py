"""Prediction beside measurement: user-model rows for the report, and per-layer rows beside a profile.

The measured side is written by hand (a profile's nodes, a record's latency), so nothing here times the machine.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import onnx
import pytest

from mnbench.graph.cost import count_cost
from mnbench.profiling.compare import layers_side_by_side
from mnbench.report import user_predictions
from mnbench.roofline.model import Roofs
from mnbench.roofline.predict import predict_user_models
from test_predict_model import PEAK, _block  # tests/ is on sys.path under pytest


def _record(path, *, threads=1, label="block"):
    return {"device": "cpu", "threads": threads, "precision": "fp32", "batch": 1, "macs": count_cost(path).macs,
            "arch": label, "variant": "model", "width": 1.0, "resolution": 16, "model_path": str(path),
            "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "model": {"source": "onnx-file", "label": label, "dynamic_batch": False}}


def test_user_models_get_their_prediction_beside_the_measured_latency(tmp_path, monkeypatch):
    path = _block(tmp_path / "block.onnx")
    monkeypatch.setattr(user_predictions, "min_ms", lambda record: 0.02)  # the measured latency
    mobilenet = {**_record(path), "model": None, "arch": "v2", "variant": "separable"}
    report = SimpleNamespace(
        records=[SimpleNamespace(machine="box", record=_record(path)), SimpleNamespace(machine="box", record=mobilenet),
                 SimpleNamespace(machine="box", record=_record(path, threads=2, label="two"))],
        peaks={"box": {"cpu": PEAK}}, machines={"box": {"hostname": "not-this-host"}})
    notes: list[str] = []
    (row,) = user_predictions.user_model_predictions(report, notes)  # neither the MobileNet nor the 2-thread one
    (expected,) = predict_user_models(Roofs.from_peak(PEAK), [path])
    assert row["label"] == "block" and row["predicted_ms"] == pytest.approx(expected["predicted_ms"])
    assert row["error"] == pytest.approx(expected["predicted_ms"] / 0.02 - 1)
    assert row["mac_baseline_ms"] == pytest.approx(expected["mac_baseline_ms"])
    assert row["priced"] == "calibrated"
    assert len(notes) == 1 and "2 thread(s)" in notes[0]  # the peak is a 1-thread one, from another host


def test_each_layer_is_set_beside_the_time_its_nodes_took(tmp_path):
    path = _block(tmp_path / "block.onnx")
    roofs = Roofs.from_peak(PEAK)
    profile = {"precision": "fp32", "nodes": [
        {"name": "pw1", "op_type": "Conv", "time_ms": 0.004}, {"name": "swish", "op_type": "Mul", "time_ms": 0.001},
        {"name": "dw", "op_type": "Conv", "time_ms": 0.003}, {"name": "pw2", "op_type": "Conv", "time_ms": 0.002},
        {"name": "reorder_7", "op_type": "ReorderInput", "time_ms": 0.0005},
        {"name": "(runtime overhead)", "op_type": "", "time_ms": 0.01}]}
    side = layers_side_by_side(profile, path, count_cost(onnx.load(str(path))), roofs)
    rows = {row["name"]: row for row in side["layers"]}
    assert rows["pw1"]["measured_ms"] == pytest.approx(0.005)  # its fused swish's time is its own
    assert rows["pw1"]["error"] == pytest.approx(rows["pw1"]["predicted_ms"] / 0.005 - 1)
    assert rows["(session call)"]["measured_ms"] == pytest.approx(0.01)
    assert rows["reorder_7"]["predicted_ms"] is None and rows["reorder_7"]["error"] is None  # no layer holds it
    assert rows["pool"]["measured_ms"] == 0.0 and rows["pool"]["error"] is None
    assert side["measured_ms"] == pytest.approx(0.0205) and side["calibrated"]
    assert side["predicted_ms"] == pytest.approx(sum(r["predicted_ms"] or 0 for r in side["layers"]))


@pytest.mark.measures
def test_profile_of_a_users_file_sets_each_layer_beside_its_prediction(app, tmp_path):
    import json

    from typer.testing import CliRunner

    from mnbench.roofline.peak import save_peak

    path = _block(tmp_path / "block.onnx")
    save_peak(PEAK, reports_dir=tmp_path)  # a 1-thread cpu peak with a calibration
    result = CliRunner().invoke(app, ["profile", "--model", str(path), "--device", "cpu", "--threads", "1", "-n", "3",
                                      "--no-save", "--format", "json", "--reports-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    side = json.loads(result.stdout)["layers_predicted"]
    names = {row["name"] for row in side["layers"]}
    assert {"pw1", "dw", "pw2", "(session call)"} <= names and side["calibrated"]
    (expected,) = predict_user_models(Roofs.from_peak(PEAK), [path])
    assert side["predicted_ms"] == pytest.approx(expected["predicted_ms"])
    two = CliRunner().invoke(app, ["profile", "--model", str(path), "--device", "cpu", "--threads", "2", "-n", "3",
                                   "--no-save", "--reports-dir", str(tmp_path)])
    assert two.exit_code == 0 and "no peak of cpu at 2 threads" in two.output


def test_markdown_html_and_the_terminal_show_the_user_prediction_rows(monkeypatch):
    from html_helpers import html_rows
    from mnbench.report import html as html_report, text
    from mnbench.report.columns import cell
    from mnbench.report.pairs import build_report
    from mnbench.report.user_predictions import USER_PREDICTION_COLUMNS

    row = {"machine": "box", "device": "cpu", "threads": 1, "label": "resnet18", "measured_ms": 41.5,
           "predicted_ms": 39.9, "error": 39.9 / 41.5 - 1, "mac_baseline_ms": 31.0, "mac_error": 31.0 / 41.5 - 1,
           "bound": "compute", "priced": "calibrated"}
    for module in (text, html_report):
        monkeypatch.setattr(module, "user_model_predictions", lambda report: [row])
    report = build_report([])
    cells = [cell(row, column) for column in USER_PREDICTION_COLUMNS]
    assert "| " + " | ".join(cells) + " |" in text.to_markdown(report)
    page = html_report.to_html(report)
    assert cells in html_rows(page)
    terminal = text.to_text(report)
    assert all(c in terminal for c in cells if c != "–")
