"""openvino-ep through the onnxruntime-ep-openvino plugin: device listing and session set-up against fake
onnxruntime and plugin modules (the plugin's factory lists only vendor 0x8086 hardware, so on an AMD CPU it offers
no device); one check against the real plugin where it is installed."""

import importlib.util

import pytest

from mnbench.devices import registry as devices
from mnbench.devices import openvino_ep as discovery
from mnbench.backends import openvino_ep_plugin as plugin_mod
from mnbench.errors import MnbenchError

BUILD_REASON = ("OpenVINOExecutionProvider is not in this ONNX Runtime build (onnxruntime); install "
                "onnxruntime-openvino in place of onnxruntime")


class _Hardware:
    def __init__(self, vendor_id: int, kind: str = "CPU") -> None:
        self.vendor_id, self.type = vendor_id, f"OrtHardwareDeviceType.{kind}"


class _EpDevice:
    def __init__(self, ep_name: str, vendor_id: int, ov_device: str | None = None, kind: str = "CPU") -> None:
        self.ep_name, self.device = ep_name, _Hardware(vendor_id, kind)
        self.ep_metadata = {"ov_device": ov_device} if ov_device else {"version": "1.32.0"}


class _FakeOrt:
    __version__ = "1.32.0"

    def __init__(self, ep_devices: list, fail: str | None = None) -> None:
        self.ep_devices, self.fail, self.registered = ep_devices, fail, []

    def register_execution_provider_library(self, name: str, path: str) -> None:
        self.registered.append((name, path))
        if self.fail:
            raise RuntimeError(self.fail)

    def get_ep_devices(self) -> list:
        return self.ep_devices

    def get_available_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


class _FakePlugin:
    __version__ = "1.8.1"

    def get_library_path(self) -> str:
        return "/site-packages/onnxruntime_ep_openvino/libonnxruntime_providers_openvino_plugin.so"

    def get_ep_name(self) -> str:
        return "OpenVINOExecutionProvider"


class _Options:
    def __init__(self) -> None:
        self.added = []

    def add_provider_for_devices(self, ep_devices, options) -> None:
        self.added.append((list(ep_devices), dict(options)))


AMD_CPU = _EpDevice("CPUExecutionProvider", 0x1022)
INTEL = [_EpDevice("CPUExecutionProvider", 0x8086), _EpDevice("OpenVINOExecutionProvider", 0x8086, "CPU"),
         _EpDevice("OpenVINOExecutionProvider", 0x8086, "GPU.0", kind="GPU")]


def _status(name, ort, plugin=None, build_reason=BUILD_REASON):
    return discovery.openvino_ep_status(name, build_reason=build_reason,
                                         modules=lambda: (ort, plugin if plugin is not None else _FakePlugin()))


def test_on_an_amd_cpu_the_plugin_offers_nothing_and_says_why():
    ort = _FakeOrt([AMD_CPU])  # what get_ep_devices() lists on AMD EPYC with the plugin registered
    name, target, reason = _status("openvino-ep", ort)
    assert (name, target) == ("openvino-ep", "OpenVINOExecutionProvider")
    assert "offers no OpenVINO device" in reason and "0x8086" in reason and "0x1022 (AMD)" in reason
    assert "--device openvino" in reason
    assert ort.registered == [(discovery.REGISTRATION_NAME, _FakePlugin().get_library_path())]


def test_on_intel_the_plugin_devices_run():
    ort = _FakeOrt(INTEL)
    plugin = _FakePlugin()
    assert _status("openvino-ep", ort, plugin)[2] == ""
    assert _status("openvino-ep:GPU", ort, plugin)[2] == ""  # GPU picks GPU.0
    npu = _status("openvino-ep:NPU", ort, plugin)[2]
    assert "offers OpenVINO devices CPU, GPU.0, not NPU" in npu
    assert len(ort.registered) == 1  # registered once per process, however many devices are asked about


def test_without_the_plugin_the_reason_names_both_ways_to_get_it():
    reason = discovery.openvino_ep_status("openvino-ep", build_reason=BUILD_REASON,
                                           modules=lambda: (_FakeOrt([]), None))[2]
    assert "onnxruntime-openvino" in reason and "mnbench[openvino-ep]" in reason


def test_the_onnxruntime_openvino_build_keeps_running_openvino_ep_on_cpu():
    ort = _FakeOrt([])
    assert _status("openvino-ep", ort, build_reason="")[2] == ""
    assert "CPU only" in _status("openvino-ep:GPU", ort, build_reason="")[2]
    assert ort.registered == []  # the plugin is never loaded beside the build


def test_a_plugin_that_fails_to_load_or_an_old_runtime():
    assert "failed to load: boom" in _status("openvino-ep", _FakeOrt([], fail="boom"))[2]
    already = _FakeOrt(INTEL, fail="EP library is already registered under mnbench_openvino_ep")
    assert _status("openvino-ep", already)[2] == ""

    class _OldOrt:
        __version__ = "1.20.1"

    assert "cannot load provider plugins" in _status("openvino-ep", _OldOrt())[2]


def test_the_session_gets_the_chosen_device_and_string_options(monkeypatch):
    ort, plugin = _FakeOrt(INTEL), _FakePlugin()
    monkeypatch.setattr(discovery, "_import", lambda module: plugin if module == discovery.PLUGIN_MODULE else ort)
    assert plugin_mod.uses_plugin(ort)  # the build's provider is not listed: the plugin path
    options = _Options()
    info = plugin_mod.add_plugin_provider(ort, options, "openvino-ep:GPU",
                                          {"device_type": "CPU", "precision": "FP32", "num_of_threads": 4,
                                           "num_streams": 1})
    [(chosen, given)] = options.added
    assert chosen == [INTEL[2]]
    assert given == {"precision": "FP32", "num_of_threads": "4", "num_streams": "1"}  # device from the EpDevice
    assert info["ov_device"] == "GPU.0" and info["provider_library"] == "onnxruntime-ep-openvino 1.8.1"
    assert info["provider_options"] == given
    with pytest.raises(MnbenchError, match="openvino-ep:NPU: the onnxruntime-ep-openvino plugin offers"):
        plugin_mod.add_plugin_provider(ort, _Options(), "openvino-ep:NPU", {})


def test_extra_device_names_come_from_the_plugin(monkeypatch):
    ort, plugin = _FakeOrt(INTEL), _FakePlugin()
    monkeypatch.setattr(discovery, "_import", lambda module: plugin if module == discovery.PLUGIN_MODULE else ort)
    assert discovery.plugin_device_names(build_present=False) == ["openvino-ep:GPU.0"]
    assert discovery.plugin_device_names(build_present=True) == []


def _cpu_vendor() -> str:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("vendor_id")), "")


@pytest.mark.skipif(importlib.util.find_spec(discovery.PLUGIN_MODULE) is None
                    or _cpu_vendor() in ("", "GenuineIntel"), reason="needs the plugin on a non-Intel CPU")
def test_the_real_plugin_on_a_non_intel_cpu():
    devices.clear_cache()
    info = devices.device_info("openvino-ep")
    assert not info.available and "0x8086" in info.reason and "--device openvino" in info.reason


def test_the_ort_backend_opens_plugin_sessions_without_cpu_fallback(monkeypatch, tmp_path):
    from mnbench.backends import onnxruntime_backend as backend

    device = devices.DeviceInfo(name="openvino-ep", runtime="onnxruntime", available=True,
                                target="OpenVINOExecutionProvider")
    calls = {}
    # The plugin's own code picks the device and converts the options, against a fake Intel machine's device list
    # (the real SessionOptions cannot take fake OrtEpDevices, so they are recorded on a stand-in).
    fake_ort, plugin, recorded = _FakeOrt(INTEL), _FakePlugin(), _Options()
    monkeypatch.setattr(discovery, "_import", lambda module: plugin if module == discovery.PLUGIN_MODULE else fake_ort)
    real_add = plugin_mod.add_plugin_provider

    def add(ort, options, name, provider_options):
        calls["add"] = (name, provider_options)
        return real_add(fake_ort, recorded, name, provider_options)

    class _Session:
        def __init__(self, path, options, providers=None, enable_fallback=1):
            calls["session"] = (providers, enable_fallback, options.get_session_config_entry(
                "session.disable_cpu_ep_fallback"))

        def get_providers(self):
            return calls.get("in_use", ["OpenVINOExecutionProvider", "CPUExecutionProvider"])

    monkeypatch.setattr(backend.openvino_ep_plugin, "uses_plugin", lambda ort: True)
    monkeypatch.setattr(backend.openvino_ep_plugin, "add_plugin_provider", add)
    monkeypatch.setattr(backend.ort, "InferenceSession", _Session)
    options = backend.ort_session_options(device, threads=2)
    _, info = backend._inference_session(device, tmp_path / "m.onnx", options, precision="fp32", threads=2,
                                         models_dir=None)
    assert calls["add"] == ("openvino-ep", {"device_type": "CPU", "precision": "FP32", "num_of_threads": 2,
                                            "num_streams": 1})
    # What the session records (settings.openvino_ep_plugin): the plugin's CPU device, not its GPU, given the
    # benchmark's thread count and precision as the strings the plugin takes, device_type left to the EpDevice.
    [(chosen, given)] = recorded.added
    assert chosen == [INTEL[1]]
    assert given == {"precision": "FP32", "num_of_threads": "2", "num_streams": "1"}
    assert info == {"provider_library": "onnxruntime-ep-openvino 1.8.1", "ov_device": "CPU",
                    "ep_metadata": {"ov_device": "CPU"}, "provider_options": given}
    assert calls["session"] == (None, 0, "1")  # the provider comes from the options; CPU fallback disabled
    calls["in_use"] = ["CPUExecutionProvider"]
    with pytest.raises(MnbenchError, match="fell back to CPUExecutionProvider"):
        backend._inference_session(device, tmp_path / "m.onnx", options, precision="fp32", threads=2,
                                   models_dir=None)


def test_report_sets_openvino_ep_beside_openvino_and_cpu():
    import copy
    import json
    import math
    from pathlib import Path

    import numpy as np

    from record_helpers import repetition_fastest

    from mnbench.report import build_report, render
    from mnbench.results import load_result

    path = Path(__file__).parent / "fixtures" / "results" / "bench-xeon-2026-11-27.json"
    doc = load_result(path)
    for record in [r for r in doc["records"] if r["device"] == "openvino"]:
        ep = copy.deepcopy(record) | {"device": "openvino-ep", "runtime": "onnxruntime"}
        ep["samples_ms"] = [x * 1.25 for x in record["samples_ms"]]  # the provider 25 % slower than native
        ep["latency_ms"] = {k: v * 1.25 for k, v in record["latency_ms"].items()}
        doc["records"].append(ep)
    report = build_report([(path, doc)])
    rows = json.loads(render(report, "json"))["openvino_ep"]
    native = {(r["arch"], r["variant"]): r for r in doc["records"] if r["device"] == "openvino"}
    cpu = {(r["arch"], r["variant"]): r for r in doc["records"] if r["device"] == "cpu"}
    assert len(rows) == len(native) and all(r["ep_over_native"] == pytest.approx(1.25) for r in rows)
    v1 = next(r for r in rows if r["model"].startswith("v1 separable"))
    # The report's latency (the geometric mean of the repetitions' fastest calls), the same for every table.
    def latency(record):
        return math.exp(np.mean(np.log(repetition_fastest(record))))

    assert v1["cpu_over_ep"] == pytest.approx(latency(cpu["v1", "separable"])
                                              / (1.25 * latency(native["v1", "separable"])), rel=1e-9)
    assert "## openvino-ep beside openvino and cpu" in render(report, "markdown")
    # Without openvino-ep records the section and the key stay out.
    plain = build_report([(path, load_result(path))])
    assert "openvino_ep" not in json.loads(render(plain, "json"))
