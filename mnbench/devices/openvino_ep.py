"""Which devices ONNX Runtime's OpenVINO execution provider offers as a plugin library
(`pip install 'mnbench[openvino-ep]'`): the discovery half; `mnbench.backends.openvino_ep_plugin` sets a session up.

Since ONNX Runtime 1.23 a provider can come as a library the ordinary `onnxruntime` wheel loads:
`onnxruntime-ep-openvino` ships it (with its own OpenVINO). mnbench registers it once per process and lists the
OpenVINO devices it offers (`get_ep_devices()`, `ep_metadata["ov_device"]`); sessions open on one of them with
`SessionOptions.add_provider_for_devices`. The `onnxruntime-openvino` build, where present, is used as before.
Nothing here imports the rest of mnbench but its errors, so the device registry (`mnbench.devices.registry`) calls in.

The plugin's factory (`ov_factory.cc`, `GetSupportedDevices`) offers only hardware whose vendor id is Intel's
(0x8086): on an AMD or other non-Intel CPU it loads and offers nothing, although OpenVINO itself runs there
(`--device openvino`). `openvino_ep_status` says exactly that.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from mnbench.errors import MnbenchError, exception_text

PLUGIN_MODULE = "onnxruntime_ep_openvino"
PLUGIN_DISTRIBUTION = "onnxruntime-ep-openvino"
REGISTRATION_NAME = "mnbench_openvino_ep"  # any name: ONNX Runtime keys the library by it
EP_NAME = "OpenVINOExecutionProvider"
INTEL_VENDOR_ID = 0x8086
VENDORS = {0x8086: "Intel", 0x1022: "AMD", 0x10DE: "NVIDIA", 0x1002: "AMD", 0x41: "Arm"}
INSTALL_HINT = "pip install 'mnbench[openvino-ep]' (the onnxruntime-ep-openvino plugin)"


def _import(module: str) -> Any | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


@functools.lru_cache(maxsize=1)
def _registered(ort: Any, plugin: Any) -> str:
    """Register the plugin library with ONNX Runtime once per process; '' on success, else why it failed."""
    if not hasattr(ort, "register_execution_provider_library") or not hasattr(ort, "get_ep_devices"):
        return f"ONNX Runtime {getattr(ort, '__version__', '?')} cannot load provider plugins (1.23 or newer can)"
    try:
        ort.register_execution_provider_library(REGISTRATION_NAME, plugin.get_library_path())
    except Exception as exc:  # ORT's Fail, a missing library file (FileNotFoundError), a loader error
        if "already registered" not in str(exc):
            return f"the {PLUGIN_DISTRIBUTION} plugin failed to load: {exception_text(exc, limit=200)}"
    return ""


def plugin_ep_devices(ort: Any, plugin: Any) -> tuple[list[Any], str]:
    """(the plugin's OrtEpDevices, '') once registered, or ([], why not)."""
    problem = _registered(ort, plugin)
    if problem:
        return [], problem
    name = plugin.get_ep_name() if hasattr(plugin, "get_ep_name") else EP_NAME
    return [d for d in ort.get_ep_devices() if d.ep_name == name], ""


def ov_device(ep_device: Any) -> str:
    return str(dict(ep_device.ep_metadata).get("ov_device") or "")


def _matches(offered: str, wanted: str) -> bool:
    """`GPU` picks the first GPU the plugin offers (`GPU` or `GPU.0`), `GPU.1` that one only."""
    return offered == wanted or ("." not in wanted and offered.split(".")[0] == wanted)


def _no_device_reason(ort: Any, wanted: str, offered: list[str]) -> str:
    if offered:
        return (f"the {PLUGIN_DISTRIBUTION} plugin offers OpenVINO devices {', '.join(offered)}, not {wanted}")
    vendors = sorted({int(d.device.vendor_id) for d in ort.get_ep_devices()
                      if str(d.device.type).endswith("CPU")})
    here = ", ".join(f"{hex(v)} ({VENDORS.get(v, 'not Intel')})" for v in vendors) or "not reported"
    return (f"the {PLUGIN_DISTRIBUTION} plugin loads but offers no OpenVINO device: its factory lists only Intel "
            f"hardware (vendor id 0x8086), and this CPU's vendor id is {here}; native OpenVINO runs here: "
            "use --device openvino (or install the onnxruntime-openvino build in place of onnxruntime)")


def openvino_ep_status(name: str, *, build_reason: str,
                       modules: Callable[[], tuple[Any, Any]] | None = None) -> tuple[str, str, str]:
    """(name, target, reason) of `openvino-ep` or `openvino-ep:<DEVICE>`; reason '' when it can run.

    `build_reason`: why the onnxruntime-openvino build's provider is not usable ('' when it is: then `openvino-ep`
    runs on it, on CPU). `modules`: (onnxruntime, the plugin module) or None where absent, for tests."""
    name = name.strip()
    wanted = _wanted_device(name)
    if not wanted:
        raise MnbenchError(f"unknown device {name!r}; write openvino-ep or openvino-ep:<device>, e.g. openvino-ep:GPU")
    ort, plugin = modules() if modules else (_import("onnxruntime"), plugin_module())
    if not build_reason:
        reason = "" if wanted == "CPU" else (f"with the onnxruntime-openvino build mnbench runs openvino-ep on CPU "
                                             f"only; use --device openvino:{wanted}")
        return name, EP_NAME, reason
    if ort is None or plugin is None:
        return name, EP_NAME, f"{build_reason}; or {INSTALL_HINT}" if ort is not None else build_reason
    devices, problem = plugin_ep_devices(ort, plugin)
    if problem:
        return name, EP_NAME, problem
    if not [d for d in devices if _matches(ov_device(d), wanted)]:
        return name, EP_NAME, _no_device_reason(ort, wanted, [ov_device(d) for d in devices])
    return name, EP_NAME, ""


def plugin_device_names(*, build_present: bool) -> list[str]:
    """`openvino-ep:<DEVICE>` for each non-CPU OpenVINO device the plugin offers (none without the plugin)."""
    ort, plugin = _import("onnxruntime"), plugin_module()
    if build_present or ort is None or plugin is None:
        return []
    devices, _ = plugin_ep_devices(ort, plugin)
    return [f"openvino-ep:{ov_device(d)}" for d in devices if ov_device(d) and ov_device(d) != "CPU"]


def plugin_module() -> Any | None:
    """The plugin's Python module, or None where it is not installed."""
    return _import(PLUGIN_MODULE)


def _wanted_device(device_name: str) -> str:
    """The OpenVINO device an `openvino-ep[:<DEVICE>]` name asks for (CPU when it names none)."""
    return device_name.split(":", 1)[1] if ":" in device_name else "CPU"


def chosen_ep_device(ort: Any, plugin: Any, device_name: str) -> Any:
    """The plugin's OrtEpDevice that `device_name` runs on; a MnbenchError saying why where there is none."""
    wanted = _wanted_device(device_name)
    devices, problem = plugin_ep_devices(ort, plugin)
    chosen = [d for d in devices if _matches(ov_device(d), wanted)][:1]
    if problem or not chosen:
        problem = problem or _no_device_reason(ort, wanted, [ov_device(d) for d in devices])
        raise MnbenchError(f"{device_name}: {problem}")
    return chosen[0]
