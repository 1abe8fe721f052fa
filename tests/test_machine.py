"""machine_info: the keys results rely on, survival without optional packages/tools, and the baseline fingerprint."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys

import numpy as np
import pytest

from mnbench import __version__
from mnbench.devices import registry as devices
from mnbench.host import machine

KEYS = {"hostname", "os", "kernel", "arch", "python", "cpu_model", "cpu_signature", "cpu_flags", "physical_cores",
        "logical_cpus", "available_cpus", "memory_gib", "versions", "onnxruntime_build", "onnxruntime_providers",
        "openvino", "gpus", "git_commit"}


@pytest.fixture(autouse=True)
def fresh_registry():
    devices.clear_cache()
    yield
    devices.clear_cache()


def test_machine_info_has_every_key_and_is_json():
    info = machine.machine_info()
    assert set(info) == KEYS
    json.dumps(info)  # goes into result files as is
    assert info["python"] == platform.python_version()
    assert info["versions"]["mnbench"] == __version__
    assert info["versions"]["numpy"] == np.__version__
    assert info["onnxruntime_build"] and info["versions"]["onnxruntime"]
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]
    assert info["physical_cores"] >= 1 and info["logical_cpus"] >= info["physical_cores"]


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="x86 Linux")
def test_cpu_flags_and_memory_on_x86_linux():
    info = machine.machine_info()
    assert set(info["cpu_flags"]) == set(machine.ISA_FLAGS)
    assert all(isinstance(present, bool) for present in info["cpu_flags"].values())
    assert info["memory_gib"] > 0
    assert info["openvino"]["devices"][0] == "CPU"
    assert info["openvino"]["cpu"]["full_device_name"]


def test_survives_missing_packages_and_tools(monkeypatch, tmp_path):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr(machine.shutil, "which", lambda name: None)  # no nvidia-smi, no git
    monkeypatch.setattr(machine.host.shutil, "which", lambda name: None)  # no lscpu
    info = machine.machine_info()
    assert set(info) == KEYS
    assert info["versions"] == {"mnbench": __version__, "torch": None, "onnx": None, "onnxscript": None,
                                "openvino": None, "numpy": None, "onnxruntime": None}
    assert info["onnxruntime_build"] is None and info["onnxruntime_providers"] is None
    assert info["openvino"] is None and info["gpus"] is None and info["git_commit"] is None


def test_nvidia_smi_output_is_parsed(monkeypatch):
    monkeypatch.setattr(machine, "_run", lambda command: "NVIDIA H100 80GB HBM3, 550.54.15\nNVIDIA A10, 535.1")
    assert machine._nvidia_gpus() == [{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15"},
                                      {"name": "NVIDIA A10", "driver": "535.1"}]


def test_git_commit_is_none_outside_a_repository(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert machine._git_commit() is None


def test_the_cpu_is_read_through_mnbench_host(monkeypatch):
    fields = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "207", "stepping": "2",
              "model name": "Intel(R) Xeon(R) Processor", "flags": "avx2 amx_tile"}
    monkeypatch.setattr(machine.host, "cpuinfo", lambda *args: fields)
    info = machine.machine_info()
    assert info["cpu_model"] == "Intel(R) Xeon(R) Processor" and info["cpu_signature"] == "GenuineIntel 6/207/2"
    assert {flag for flag, present in info["cpu_flags"].items() if present} == {"avx2", "amx_tile"}
    monkeypatch.setattr(machine.host, "cpuinfo", lambda *args: {})  # no /proc/cpuinfo: Python's name, no flags
    assert machine.cpu_model() == (platform.processor() or None) and machine.machine_info()["cpu_flags"] is None


def test_fingerprint_ignores_the_host_but_not_cpu_or_runtimes():
    info = machine.machine_info()
    same_kind_of_machine = {**info, "hostname": "other-host", "git_commit": "0" * 40, "memory_gib": 1.0}
    assert machine.machine_fingerprint(info) == machine.machine_fingerprint(same_kind_of_machine)

    newer_runtime = {**info, "versions": {**info["versions"], "openvino": "2099.1"}}
    assert machine.machine_fingerprint(info) != machine.machine_fingerprint(newer_runtime)
    flags = info["cpu_flags"] or {}
    amx_flipped = {**info, "cpu_flags": {**flags, "amx_bf16": not flags.get("amx_bf16")}}
    assert machine.machine_fingerprint(info) != machine.machine_fingerprint(amx_flipped)


def test_fingerprint_of_a_sparse_record():
    # Result files from machines where everything was missing still fingerprint without errors.
    assert machine.machine_fingerprint({}) == {"cpu_model": None, "cpu_signature": None, "cpu_flags": [],
                                               "onnxruntime": None, "onnxruntime_build": None, "openvino": None,
                                               "gpus": []}
