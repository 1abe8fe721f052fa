"""The PyTorch backend (`torch`, `torch:cuda[:N]`): end to end on this machine's CPU, the CUDA paths behind mocks.

That the torch session runs the exported network is shown by its logits: they match ONNX Runtime on the exported
file for the same seeded input, as closely as export's own validation demands (1e-4 of the output scale).
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from typer.testing import CliRunner

from mnbench import results
from mnbench.devices import registry as devices
from mnbench.devices import torch_discovery as devices_torch
from mnbench.backends import open_session, torch_backend, torch_info
from mnbench.config import ModelConfig
from mnbench.devices.registry import DeviceInfo
from mnbench.errors import MnbenchError
from mnbench.artifacts.export import RELATIVE_TOLERANCE, export_model
from mnbench.roofline.peak import PeakConv
from mnbench.roofline.workloads import LayerChain, StreamWorkload
from mnbench.measure.reference import reference_path
from mnbench.run.plan import MeasureSettings, RunPlan, run_plan

TINY = {"arch": "v1", "width": 0.25, "resolution": 96}
QUICK = MeasureSettings(repetition_s=0.2, max_time_s=0.4, repetitions=2, warmup_s=0.02)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    exported = {v: export_model(ModelConfig(variant=v, batch=2, **TINY), models_dir=folder, progress=False)
                for v in ("separable", "standard")}
    return folder, exported


def _ort_logits(path, batch):
    with open_session("cpu", path, batch=batch, threads=1) as session:
        session.infer()
        return session.inputs, session.output(0)


# ---------------------------------------------------------------------------------------------------------------
# End to end on the CPU


@pytest.mark.parametrize("variant", ["separable", "standard"])
def test_torch_runs_the_exported_network(models, variant):
    _, exported = models
    ort_inputs, expected = _ort_logits(exported[variant].path, batch=2)
    with open_session("torch", exported[variant].path, batch=2, threads=1) as session:
        assert np.array_equal(session.inputs["input"], ort_inputs["input"])  # the same seeded input
        session.infer()
        actual = session.output(0)
        info = session.info
    assert actual.shape == expected.shape == (2, 1000)
    assert np.max(np.abs(actual - expected)) <= RELATIVE_TOLERANCE * max(np.max(np.abs(expected)), 1.0)
    assert info["runtime"] == "torch" and info["runtime_version"] == torch.__version__
    assert info["device"] == "torch" and info["precision"] == "fp32" and info["threads"] == 1
    settings = info["settings"]
    assert settings["model_source"].startswith("mnbench.archs")  # the nn.Module, not an import of the ONNX file
    assert settings["eval_mode"] and settings["inference_mode"] and not settings["cuda_graph"]
    assert settings["intra_op_threads"] == torch.get_num_threads() == 1
    assert info["inputs"] == {"input": [2, 3, 96, 96]}


def test_channels_last_and_bf16_are_what_ran(models):
    _, exported = models
    _, expected = _ort_logits(exported["separable"].path, batch=2)
    with open_session("torch", exported["separable"].path, batch=2, threads=1, precision="bf16",
                      options={"channels_last": True}) as session:
        session.infer()
        actual = session.output(0)
        info = session.info
    assert info["precision"] == "bf16" and info["requested_precision"] == "bf16"
    assert info["settings"]["dtype"] == "bfloat16" and "cast" in info["settings"]["precision_method"]
    assert info["settings"]["channels_last"] and info["settings"]["memory_format"] == "channels_last"
    # bf16 keeps 8 bits of mantissa: the same network, only coarser (28 layers of rounding: 0.989 here), where
    # another network's logits would not correlate at all.
    assert np.corrcoef(actual.ravel(), expected.ravel())[0, 1] > 0.95


def test_the_reference_chain_runs_with_the_files_own_weights(tmp_path):
    path = reference_path(tmp_path)
    _, expected = _ort_logits(path, batch=1)
    with open_session("torch", path, batch=1, threads=1, pin_settings=True) as session:
        session.infer()
        actual = session.output(0)
        assert "rebuilt with the file's own weights" in session.info["settings"]["model_source"]
    assert np.max(np.abs(actual - expected)) <= 1e-4 * max(np.max(np.abs(expected)), 1.0)


@pytest.mark.parametrize("workload", [StreamWorkload(kind="add", elements=4096), StreamWorkload(kind="scale", elements=4096),
                                      LayerChain(depth=3, kind="depthwise"), PeakConv(channels=8, size=8, depth=2)])
def test_the_peak_workloads_run_as_on_onnx_runtime(tmp_path, workload):
    path = tmp_path / "w.onnx"
    onnx.save(workload.onnx_model(), str(path))
    _, expected = _ort_logits(path, batch=workload.batch)
    with open_session("torch", path, batch=workload.batch, threads=1) as session:
        session.infer()
        actual = session.output(0)
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-4 * max(np.max(np.abs(expected)), 1.0)


def test_a_graph_that_is_not_a_conv_chain_is_refused(tmp_path):
    graph = helper.make_graph([helper.make_node("Softmax", ["input"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "add.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    with pytest.raises(MnbenchError, match="Softmax node"):
        open_session("torch", path, batch=1, threads=1)


def test_a_manifest_that_does_not_describe_its_file_is_refused(models, tmp_path):
    _, exported = models
    source = exported["separable"].path
    shutil.copy(source, tmp_path / source.name)
    manifest = json.loads(source.with_suffix(".json").read_text())
    manifest["sha256"] = "0" * 64
    (tmp_path / source.with_suffix(".json").name).write_text(json.dumps(manifest))
    with pytest.raises(MnbenchError, match="sha256 differs"):
        open_session("torch", tmp_path / source.name, batch=2, threads=1)


def test_a_static_batch_other_than_asked_and_options_off_torch_are_refused(models):
    _, exported = models
    with pytest.raises(MnbenchError, match="exported with batch 2"):
        open_session("torch", exported["separable"].path, batch=4, threads=1)
    with pytest.raises(MnbenchError, match="torch devices only"):
        open_session("cpu", exported["separable"].path, batch=2, threads=1, options={"channels_last": True})
    with pytest.raises(MnbenchError, match="needs a GPU"):
        open_session("torch", exported["separable"].path, batch=2, threads=1, options={"cuda_graph": True})
    with pytest.raises(MnbenchError, match="unknown torch option"):
        open_session("torch", exported["separable"].path, batch=2, threads=1, options={"graphs": True})


@pytest.mark.measures
def test_mnbench_run_on_torch_writes_a_record_with_what_ran(app, tmp_path, monkeypatch):
    monkeypatch.setenv("MNBENCH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MNBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["run", "--arch", "v1", "--width", "0.25", "--resolution", "96", "--device",
                                      "torch", "--threads", "1", "--repetitions", "2",
                                      "--max-time", "0.6", "--no-peak", "--channels-last", "--for-check",
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    doc = results.load_result(out)
    assert doc["settings"]["torch_options"] == {"channels_last": True}
    assert {r["variant"] for r in doc["records"]} == {"separable", "standard"}
    for record in doc["records"]:
        exported = export_model(ModelConfig(variant=record["variant"], **TINY), progress=False)
        assert record["device"] == "torch" and record["runtime"] == "torch" and record["threads"] == 1
        assert record["macs"] == exported.cost.macs  # cost from the exported graph of the same config
        assert record["model_sha256"] == exported.sha256
        assert record["settings"]["channels_last"] is True
        control = record["controls"][exported.sha256]
        assert control["settings"]["channels_last"] is False  # controls run pinned: eager, contiguous
        assert record["reference"]["runtime"] == "torch"
        assert len(record["repetition_rounds"]) == 2


def test_cuda_graph_on_a_cpu_device_is_one_line_and_exit_2(tmp_path):
    for device, needle in (("cpu", "--cuda-graph apply only to the torch devices"), ("torch", "needs a GPU")):
        done = subprocess.run([sys.executable, "-m", "mnbench", "run", "--arch", "v1", "--width", "0.25",
                               "--resolution", "64", "--device", device, "--cuda-graph", "--no-peak",
                               "--output", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300,
                              env={k: v for k, v in os.environ.items() if k != "MNBENCH_DEBUG"}
                              | {"MNBENCH_MODELS_DIR": str(tmp_path / "models")})
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and needle in lines[0], done.stderr


# ---------------------------------------------------------------------------------------------------------------
# Device listing, with PyTorch builds mocked


def _fake_torch(*, cuda=None, hip=None, count=0):
    return types.SimpleNamespace(__version__="9.9.9", version=types.SimpleNamespace(cuda=cuda, hip=hip),
                                 cuda=types.SimpleNamespace(device_count=lambda: count))


@pytest.fixture
def fake_torch(monkeypatch):
    def install(**kwargs):
        monkeypatch.setattr(devices_torch, "torch_module", lambda: _fake_torch(**kwargs) if kwargs else None)
        devices.clear_cache()

    yield install
    devices.clear_cache()


def test_torch_devices_are_listed_here():
    names = {d.name: d for d in devices.list_devices(refresh=True)}
    assert names["torch"].available and names["torch"].runtime == "torch" and names["torch"].target == "cpu"
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        assert not names["torch:cuda"].available and "no CUDA" in names["torch:cuda"].reason


def test_device_reasons_without_cuda_build_driver_or_that_gpu(fake_torch, monkeypatch):
    fake_torch(cuda=None)
    assert "this PyTorch build has no CUDA (torch 9.9.9)" in devices.device_info("torch:cuda").reason
    fake_torch(cuda="13.0", count=0)
    monkeypatch.setattr(devices, "nvidia_driver_problem", lambda: "no NVIDIA GPU driver: libcuda.so.1 cannot be loaded")
    reason = devices.device_info("torch:cuda").reason
    assert "built for CUDA 13.0" in reason and "libcuda.so.1" in reason
    fake_torch(cuda="13.0", count=1)
    assert devices.device_info("torch:cuda:0") == devices.device_info("torch:cuda")
    assert devices.device_info("torch:cuda").available and devices.device_info("torch:cuda").target == "cuda:0"
    assert "there is no cuda:1" in devices.device_info("torch:cuda:1").reason
    fake_torch(cuda="13.0", count=2)
    assert devices.known_device_names()[-3:] == ["torch", "torch:cuda", "torch:cuda:1"]
    assert devices.device_info("torch:cuda:1").target == "cuda:1"
    fake_torch(hip="6.2", count=1)  # ROCm builds use the torch.cuda API too
    assert devices.device_info("torch:cuda").available
    fake_torch()
    assert "PyTorch is not installed" in devices.device_info("torch").reason
    with pytest.raises(MnbenchError, match="torch, torch:cuda and torch:cuda:<N>"):
        devices.device_info("torch:gpu")


def test_mnbench_devices_shows_the_reason(app, fake_torch, monkeypatch):
    fake_torch(cuda=None)
    result = CliRunner().invoke(app, ["devices", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = {d["name"]: d for d in json.loads(result.output)}
    assert listed["torch"]["available"] and "no CUDA" in listed["torch:cuda"]["reason"]


# ---------------------------------------------------------------------------------------------------------------
# The CUDA session path, with torch.cuda mocked and the tensors placed on the CPU


class _FakeGraph:
    replays = 0

    def replay(self):
        _FakeGraph.replays += 1


@pytest.fixture
def fake_gpu(monkeypatch):
    calls = {"synchronize": 0, "captured": 0}

    @contextlib.contextmanager
    def graph(g):
        calls["captured"] += 1
        yield

    props = types.SimpleNamespace(name="NVIDIA H200", major=9, minor=0, multi_processor_count=132,
                                  total_memory=141 * 2**30, uuid="1234-abcd")
    fake_cuda = {
        "synchronize": lambda device=None: calls.__setitem__("synchronize", calls["synchronize"] + 1),
        "Stream": lambda device=None: types.SimpleNamespace(wait_stream=lambda other: None),
        "current_stream": lambda device=None: types.SimpleNamespace(wait_stream=lambda other: None),
        "stream": lambda s: contextlib.nullcontext(),
        "CUDAGraph": _FakeGraph,
        "graph": graph,
        "get_device_properties": lambda index: props,
    }
    for name, value in fake_cuda.items():
        monkeypatch.setattr(torch.cuda, name, value, raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91900)
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch_backend, "placement", lambda target: torch.device("cpu"))
    smi = "NVIDIA H200, 580.95.05, 1980 MHz, 3201 MHz, 1980 MHz, 3201 MHz, 700.00 W, P0, 34"
    monkeypatch.setattr(torch_info.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    seen = []

    def run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=smi + "\n", stderr="")

    monkeypatch.setattr(torch_info.subprocess, "run", run)
    _FakeGraph.replays = 0
    device = DeviceInfo(name="torch:cuda", runtime="torch", available=True, target="cuda:0")
    return device, calls, seen


def test_cuda_graph_session_replays_and_reads_back_the_gpu(models, fake_gpu):
    _, exported = models
    device, calls, smi_commands = fake_gpu
    forward_calls = []
    with open_session(device, exported["separable"].path, batch=2, threads=1,
                      options={"cuda_graph": True}) as session:
        session._module.register_forward_hook(lambda *a: forward_calls.append(1))
        for _ in range(5):
            session.infer()
        info = session.info
    assert calls["captured"] == 1 and _FakeGraph.replays == 1 + 5  # open's check run, then every infer
    assert not forward_calls  # replayed, never re-run eagerly
    assert calls["synchronize"] == 6  # every call waits for the GPU: the wall-clock time includes its work
    settings = info["settings"]
    assert settings["cuda_graph"] is True and "synchronize" in settings["timing"]
    assert settings["cudnn_benchmark"] is True and settings["tf32"] is False
    assert settings["gpu_name"] == "NVIDIA H200" and settings["compute_capability"] == "9.0"
    assert settings["cuda_version"] == "13.0" and settings["cudnn_version"] == 91900
    assert settings["driver_version"] == "580.95.05"
    assert settings["nvidia_smi"]["clocks.sm"] == "1980 MHz" and settings["nvidia_smi"]["power.limit"] == "700.00 W"
    assert smi_commands[0][-2:] == ["-i", "GPU-1234-abcd"]  # the GPU torch uses, by UUID, not by index


def test_eager_gpu_session_synchronizes_each_call(models, fake_gpu):
    _, exported = models
    device, calls, _ = fake_gpu
    with open_session(device, exported["standard"].path, batch=2, threads=1, precision="fp16") as session:
        session.infer()
        assert session.info["settings"]["cuda_graph"] is False and session.info["precision"] == "fp16"
    assert calls["captured"] == 0 and calls["synchronize"] == 2


@pytest.mark.measures
def test_run_gives_the_cuda_graph_to_models_not_to_controls_or_reference(models, fake_gpu, tmp_path, monkeypatch):
    folder, _ = models
    device, calls, _ = fake_gpu
    monkeypatch.setenv("MNBENCH_IN_PROCESS", "1")  # the fake GPU lives in this process
    plan = RunPlan(archs=["v1"], devices=[device], widths=[0.25], resolutions=[96], batch=2, threads=1,
                   measure=QUICK, with_peak=False, torch_options={"cuda_graph": True}, with_reference=True,
                   with_controls=True)
    doc = run_plan(plan, models_dir=folder, reports_dir=tmp_path)
    assert doc["settings"]["torch_options"] == {"cuda_graph": True}
    # The two models, in each pass (fresh sessions; a pass discarded for a busy machine captured too); controls and
    # reference run eager (pinned).
    assert calls["captured"] == 2 * len(doc["machine_state"]["repetitions"])
    for record in doc["records"]:
        assert record["settings"]["cuda_graph"] is True and record["device"] == "torch:cuda"
        assert all(c["settings"]["cuda_graph"] is False for c in record["controls"].values())


def test_torch_options_need_a_torch_device():
    with pytest.raises(MnbenchError, match="apply only to the torch devices"):
        RunPlan(archs=["v1"], devices=[devices.device_info("cpu")], torch_options={"cuda_graph": True})


def test_nvidia_smi_missing_or_failing_is_none(monkeypatch):
    monkeypatch.setattr(torch_info.shutil, "which", lambda name: None)
    assert torch_info.nvidia_smi_query("0") is None
    monkeypatch.setattr(torch_info.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(torch_info.subprocess, "run",
                        lambda command, **kw: subprocess.CompletedProcess(command, 9, stdout="", stderr="boom"))
    assert torch_info.nvidia_smi_query("0") is None


def test_gpu_check_dry_run_lists_every_command_within_the_budget(tmp_path):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")}
    done = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    commands = [line for line in lines if line.startswith("+ ")]
    joined = "\n".join(commands)
    assert "pip install -q --no-deps --no-build-isolation --no-index -e ." in joined
    assert "mnbench devices" in joined and "mnbench report" in joined
    assert any("mnbench profile" in line for line in lines)  # skipped on torch devices, which do not profile
    for precision in ("fp32", "fp16"):
        runs = [c for c in commands if "mnbench run --arch all --device torch:cuda" in c
                and "--batch 1 " in c and f"--precision {precision} " in c]
        assert len(runs) == 2, (precision, runs)  # eager and CUDA graph
        assert sum("--cuda-graph" in c for c in runs) == 1
    # The survey's GPU claim as a curve: one run sweeping the batch from 1 to 256, and the H200 roofline beside it.
    (sweep,) = [c for c in commands if "--batch 1,8,32,128,256 " in c]
    assert "--device torch:cuda" in sweep and "--output" in sweep
    assert any("predict --spec h200" in line and "for b in 1 8 32 128 256" in line for line in lines)
    # The ORT GPU steps stay in the script; without onnxruntime-gpu they are listed as skipped, with no budget.
    assert any("--device cuda,tensorrt" in line for line in lines)
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    budgets = [int(line.split()[1]) for line in lines if line.startswith("  budget ")]
    assert len(budgets) >= len(commands) == len([line for line in lines if line.startswith("+ ")])
    total = int(next(line for line in lines if line.startswith("budget:")).split()[1])
    assert total == sum(budgets) <= 8 * 60
