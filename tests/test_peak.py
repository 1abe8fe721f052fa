"""Device peak: the workload's MAC count, a real measurement per runtime, and the per-machine store."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from mnbench.roofline import peak as peak_module
from mnbench.cli import peak_cmd
from mnbench.graph.cost import count_cost
from mnbench.errors import MnbenchError
from mnbench.roofline.peak import PeakConv, load_peak, load_peaks, measure_peak, peak_workload, peaks_path, save_peak


def test_peak_conv_macs_by_hand_and_by_the_cost_model():
    conv = PeakConv()
    # 4 chained convs, each 256 output channels x 56 x 56 outputs of 256 input channels x 3 x 3 MACs.
    assert conv.macs == 4 * 256 * 56 * 56 * 256 * 3 * 3 == 7_398_752_256
    assert count_cost(conv.onnx_model()).macs == conv.macs
    batched = PeakConv(batch=4, channels=32, size=8, kernel=1, depth=2)
    assert batched.macs == count_cost(batched.onnx_model()).macs == 2 * 4 * 32 * 8 * 8 * 32
    assert "7.40 GMAC" in conv.method


def test_gpu_devices_get_a_batch_to_fill_them():
    assert peak_workload(SimpleNamespace(is_gpu_provider=True, target="CUDAExecutionProvider")).batch > 1
    assert peak_workload(SimpleNamespace(is_gpu_provider=False, target="GPU.0")).batch > 1
    assert peak_workload(SimpleNamespace(is_gpu_provider=False, target="cuda:0")).batch > 1  # torch:cuda
    assert peak_workload(SimpleNamespace(is_gpu_provider=False, target="cpu")).batch == 1  # torch on the CPU
    assert peak_workload(SimpleNamespace(is_gpu_provider=False, target="CPU")).batch == 1


@pytest.mark.measures
@pytest.mark.parametrize("device, runtime", [("cpu", "onnxruntime"), ("openvino", "openvino")])
def test_measured_peak_is_macs_over_median_latency(monkeypatch, device, runtime):
    small = PeakConv(channels=32, size=14)  # the real one takes seconds; the arithmetic is the same
    monkeypatch.setattr(peak_module, "peak_workload", lambda _device: small)
    # calibrate=False: the ~70 calibration benchmarks take half a minute; test_predict_model checks them.
    peak = measure_peak(device, threads=1, min_time_s=0.1, max_time_s=0.3, calibrate=False)
    assert peak["device"] == device and peak["runtime"] == runtime and peak["precision"] == "fp32"
    assert peak["gmacs_per_s"] > 0
    assert peak["gmacs_per_s"] == pytest.approx(small.macs / (peak["p50_ms"] * 1e-3) / 1e9)
    assert peak["macs"] == small.macs and peak["method"] == small.method and peak["threads"] == 1


def _peak(device: str, gmacs: float, precision: str = "fp32") -> dict:
    return {"device": device, "gmacs_per_s": gmacs, "method": "test", "precision": precision}


def test_peaks_round_trip_per_device_and_precision(tmp_path):
    assert load_peak("cpu", reports_dir=tmp_path) is None
    path = save_peak(_peak("cpu", 10.0), reports_dir=tmp_path, host="box")
    assert path == tmp_path / "peaks" / "box.json" == peaks_path(reports_dir=tmp_path, host="box")
    save_peak(_peak("openvino", 20.0), reports_dir=tmp_path, host="box")
    save_peak(_peak("openvino", 50.0, "bf16"), reports_dir=tmp_path, host="box")
    save_peak(_peak("cpu", 12.0), reports_dir=tmp_path, host="box")  # replaces only cpu/fp32

    assert load_peak("cpu", reports_dir=tmp_path, host="box")["gmacs_per_s"] == 12.0
    assert load_peak("openvino", reports_dir=tmp_path, host="box")["gmacs_per_s"] == 20.0
    assert load_peak(SimpleNamespace(name="openvino"), precision="bf16", reports_dir=tmp_path,
                     host="box")["gmacs_per_s"] == 50.0
    assert load_peak("cuda", reports_dir=tmp_path, host="box") is None
    assert load_peak("cpu", reports_dir=tmp_path, host="other-machine") is None
    assert json.loads(path.read_text())["schema_version"] == 1


def test_a_peak_measured_with_other_threads_is_not_this_runs_ceiling(tmp_path):
    save_peak(_peak("cpu", 10.0) | {"threads": 4}, reports_dir=tmp_path, host="box")
    assert load_peak("cpu", threads=4, reports_dir=tmp_path, host="box")["gmacs_per_s"] == 10.0
    assert load_peak("cpu", threads=2, reports_dir=tmp_path, host="box") is None
    assert load_peak("cpu", reports_dir=tmp_path, host="box")["gmacs_per_s"] == 10.0


def test_peak_file_write_is_atomic(tmp_path, monkeypatch):
    path = save_peak(_peak("cpu", 10.0), reports_dir=tmp_path, host="box")
    before = path.read_bytes()

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_peak(_peak("cpu", 99.0), reports_dir=tmp_path, host="box")
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["box.json"]  # no temp file left behind


def test_damaged_peak_file_is_ignored_then_rewritten(tmp_path):
    path = peaks_path(reports_dir=tmp_path, host="box")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="damaged peaks file"):
        assert load_peak("cpu", reports_dir=tmp_path, host="box") is None
    with pytest.warns(UserWarning):
        save_peak(_peak("cpu", 10.0), reports_dir=tmp_path, host="box")
    assert load_peaks(reports_dir=tmp_path, host="box") == {"cpu": {"fp32": _peak("cpu", 10.0)}}


def test_a_peak_without_device_or_number_is_refused(tmp_path):
    with pytest.raises(MnbenchError, match="gmacs_per_s"):
        save_peak({"device": "cpu", "gmacs_per_s": "fast"}, reports_dir=tmp_path)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("peak")(peak_cmd.peak)

    @app.command("noop", hidden=True)  # two commands, so "peak" stays a subcommand name as in mnbench
    def _noop() -> None:
        pass

    return app


def test_peak_command_measures_and_stores(tmp_path, monkeypatch):
    measured = []

    def fake_measure(device, *, threads=None, precision="fp32"):
        measured.append((device.name, threads, precision))
        return _peak(device.name, 42.0, precision) | {"runtime": device.runtime, "threads": threads}

    monkeypatch.setattr(peak_module, "measure_peak", fake_measure)
    result = CliRunner().invoke(_app(), ["peak", "--device", "cpu,openvino", "--threads", "1", "--format", "json"],
                                env={"MNBENCH_REPORTS_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert measured == [("cpu", 1, "fp32"), ("openvino", 1, "fp32")]
    assert [p["gmacs_per_s"] for p in json.loads(result.stdout)] == [42.0, 42.0]
    assert load_peak("openvino", reports_dir=tmp_path)["gmacs_per_s"] == 42.0


@pytest.mark.measures
def test_peak_is_the_best_of_the_dense_candidates(monkeypatch):
    """A ceiling some layers beat is no ceiling: the peak is the fastest candidate shape, and all are recorded."""
    small = PeakConv(channels=16, size=8)
    monkeypatch.setattr(peak_module, "peak_workload", lambda _device: small)
    peak = measure_peak("cpu", threads=1, min_time_s=0.05, max_time_s=0.2, calibrate=False)
    rates = [c["gmacs_per_s"] for c in peak["candidates"]]
    assert len(rates) == 3 and peak["gmacs_per_s"] == max(rates)
    assert peak["method"] == peak["candidates"][rates.index(max(rates))]["method"]


def test_stream_traffic_is_inputs_read_plus_output_written():
    from mnbench.roofline.workloads import STREAM_ELEMENTS, StreamWorkload

    scale, add = StreamWorkload(kind="scale"), StreamWorkload(kind="add")
    # 64 Mi float32 = 256 MiB per tensor: read once and written once, or two read and one written.
    assert STREAM_ELEMENTS * 4 == 256 * 2**20
    assert scale.bytes_moved == 2 * 256 * 2**20 and add.bytes_moved == 3 * 256 * 2**20
    small = StreamWorkload(kind="add", elements=1000, batch=2)
    assert small.bytes_moved == 3 * 2 * 1000 * 4 == count_cost(small.onnx_model()).activation_bytes
    assert count_cost(StreamWorkload(kind="scale", elements=1000).onnx_model()).activation_bytes == 2 * 1000 * 4


def test_layer_chain_is_many_tiny_layers():
    from mnbench.roofline.workloads import LayerChain

    for kind in ("pointwise", "depthwise"):
        cost = count_cost(LayerChain(depth=20, kind=kind).onnx_model())
        assert len(cost.nodes) == 20 and {n.category for n in cost.nodes} == {kind}
        assert cost.macs / 20 <= 8 * 4 * 4 * 9  # at most ~1k MACs a layer: its time is the layer's fixed cost


@pytest.mark.measures
def test_peak_json_has_bandwidth_and_layer_overhead(monkeypatch):
    from mnbench.roofline.workloads import LayerChain, StreamWorkload

    monkeypatch.setattr(peak_module, "peak_workload", lambda _device: PeakConv(channels=16, size=8))
    monkeypatch.setattr(peak_module, "bandwidth_candidates",
                        lambda _device: [StreamWorkload(kind="scale", elements=2**16),
                                         StreamWorkload(kind="add", elements=2**16)])
    monkeypatch.setattr(peak_module, "overhead_candidates",
                        lambda _device: [(LayerChain(depth=2), LayerChain(depth=10))])
    peak = measure_peak("cpu", threads=1, min_time_s=0.05, max_time_s=0.2, calibrate=False)
    streams = peak["bandwidth_candidates"]
    assert len(streams) == 2 and peak["gbytes_per_s"] == max(s["gbytes_per_s"] for s in streams) > 0
    for stream in streams:
        assert stream["gbytes_per_s"] == pytest.approx(stream["bytes_moved"] / (stream["p50_ms"] * 1e-3) / 1e9)
    (chain,) = peak["overhead_candidates"]
    short_ms, long_ms = chain["p50_ms"]
    assert peak["layer_overhead_us"] == pytest.approx(max(0.0, (long_ms - short_ms) * 1e3 / 8))
    assert "bytes" not in peak["method"] and "read + written" in peak["bandwidth_method"]
    assert json.loads(json.dumps(peak))["layer_overhead_us"] == peak["layer_overhead_us"]  # JSON as saved
