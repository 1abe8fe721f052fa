"""Device registry: availability and reasons with runtimes/providers mocked away, device specs, thread counts."""

from __future__ import annotations

import os
import sys

import onnxruntime
import pytest

from mnbench.devices import registry as devices
from mnbench.errors import MnbenchError


@pytest.fixture(autouse=True)
def fresh_registry():
    devices.clear_cache()
    yield
    devices.clear_cache()


def by_name(name: str) -> devices.DeviceInfo:
    return {d.name: d for d in devices.list_devices()}[name]


def cpu_only_providers(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])


def test_every_fixed_device_is_listed_and_reasons_match_availability():
    listed = devices.list_devices()
    names = [d.name for d in listed]
    assert names[:4] == ["cpu", "cuda", "tensorrt", "openvino"]
    assert names[names.index("openvino-ep") + 1:names.index("openvino-ep") + 3] == ["torch", "torch:cuda"]
    for device in listed:
        assert device.runtime in ("onnxruntime", "openvino", "torch")
        assert bool(device.reason) != device.available, device  # a reason exactly when unavailable
    assert by_name("cpu").available  # onnxruntime is a hard dependency


def test_list_devices_is_cached_per_process(monkeypatch):
    first = devices.list_devices()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [])
    assert devices.list_devices() == first  # no second discovery
    assert not devices.list_devices(refresh=True)[0].available  # until asked to look again


def test_providers_missing_from_this_build_name_the_build_to_install(monkeypatch):
    cpu_only_providers(monkeypatch)
    cuda, trt, ov_ep = by_name("cuda"), by_name("tensorrt"), by_name("openvino-ep")
    assert not cuda.available and "CUDAExecutionProvider" in cuda.reason and "onnxruntime-gpu" in cuda.reason
    assert not trt.available and "onnxruntime-gpu" in trt.reason
    assert not ov_ep.available and "onnxruntime-openvino" in ov_ep.reason
    assert by_name("cpu").available


def test_listed_gpu_provider_without_driver_says_so(monkeypatch):
    monkeypatch.setattr(devices, "nvidia_driver_problem",
                        lambda: "no NVIDIA GPU driver: libcuda.so.1 cannot be loaded (nvidia-smi: not found)")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    for name in ("cuda", "tensorrt"):
        device = by_name(name)
        assert not device.available and "driver" in device.reason and "libcuda" in device.reason


def test_driver_check_reports_libcuda_on_a_machine_without_one():
    problem = devices.nvidia_driver_problem()
    if problem == "":
        pytest.skip("this machine has an NVIDIA driver")
    assert "libcuda" in problem or "nvcuda" in problem


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_listed_provider_that_fails_to_load_is_unavailable(monkeypatch):
    # CUDA listed and a driver present, but the provider cannot run a one-node model (here: CPU-only ORT).
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime build really has CUDA")
    listed = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: listed)
    monkeypatch.setattr(devices, "nvidia_driver_problem", lambda: "")
    cuda = by_name("cuda")
    assert not cuda.available and "failed to load" in cuda.reason


def test_onnxruntime_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    cpu = by_name("cpu")
    assert not cpu.available and "not installed" in cpu.reason
    assert by_name("openvino").available


def test_openvino_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    openvino = by_name("openvino")
    assert not openvino.available and "OpenVINO is not installed" in openvino.reason
    assert not any(name.startswith("openvino:") for name in devices.known_device_names())


def test_extra_openvino_devices_get_their_own_names(monkeypatch):
    monkeypatch.setattr(devices, "openvino_devices", lambda: ["CPU", "GPU.0", "NPU"])
    names = devices.known_device_names()
    assert "openvino:GPU.0" in names and "openvino:NPU" in names and "openvino:CPU" not in names
    assert devices.device_info("openvino:NPU").target == "NPU"
    assert devices.device_info("openvino:CPU").name == "openvino"


def test_openvino_device_not_reported_here_is_unavailable():
    npu = devices.device_info("openvino:NPU-that-is-not-here")
    assert not npu.available and "reports no" in npu.reason


def test_resolve_single_list_and_all():
    assert [d.name for d in devices.resolve_devices("cpu")] == ["cpu"]
    assert [d.name for d in devices.resolve_devices(" openvino , cpu,cpu")] == ["openvino", "cpu"]
    everything = devices.resolve_devices("all")
    assert everything == [d for d in devices.list_devices() if d.available]
    assert all(d.available for d in everything)


def test_resolve_unknown_device_lists_the_valid_names():
    with pytest.raises(MnbenchError) as err:
        devices.resolve_devices("cpu,gpu")
    message = str(err.value)
    assert "'gpu'" in message
    for valid in ("cpu", "cuda", "tensorrt", "openvino", "openvino-ep", "all"):
        assert valid in message


def test_resolve_unavailable_device_gives_reason_and_what_is_available(monkeypatch):
    cpu_only_providers(monkeypatch)
    with pytest.raises(MnbenchError) as err:
        devices.resolve_devices("cuda")
    message = str(err.value)
    assert "not available" in message and "onnxruntime-gpu" in message
    assert "Available here: cpu" in message


def test_resolve_empty_spec_is_an_error():
    with pytest.raises(MnbenchError):
        devices.resolve_devices(" , ")


def test_resolve_device_wants_exactly_one():
    assert devices.resolve_device("cpu").name == "cpu"
    with pytest.raises(MnbenchError):
        devices.resolve_device("cpu,openvino")


def test_physical_cores_on_this_machine_is_within_the_affinity():
    cores = devices.physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    assert devices.default_threads() == cores
