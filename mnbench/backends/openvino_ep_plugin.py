"""A session on ONNX Runtime's OpenVINO execution provider (`EP_NAME`) as a plugin library
(`pip install 'mnbench[openvino-ep]'`): the provider added for the OpenVINO device the plugin offers
(`mnbench.devices.openvino_ep` finds the devices). The `onnxruntime-openvino` build, where present, is used as before.
"""

from __future__ import annotations

from typing import Any

from mnbench.devices import openvino_ep as discovery
from mnbench.devices.openvino_ep import EP_NAME


def uses_plugin(ort: Any) -> bool:
    """True where `openvino-ep` runs through the plugin: the onnxruntime-openvino build is not installed."""
    return EP_NAME not in ort.get_available_providers() and discovery.plugin_module() is not None


def add_plugin_provider(ort: Any, options: Any, device_name: str, provider_options: dict[str, Any]) -> dict[str, Any]:
    """Append the plugin's provider for the device's OpenVINO device to `options`; what was set, for the record."""
    plugin = discovery.plugin_module()
    chosen = discovery.chosen_ep_device(ort, plugin, device_name)
    # The plugin takes string values; the OpenVINO device comes from the chosen OrtEpDevice, not device_type.
    strings = {key: str(value) for key, value in provider_options.items() if key != "device_type"}
    options.add_provider_for_devices([chosen], strings)
    version = getattr(plugin, "__version__", None) or _distribution_version()
    return {"provider_library": f"{discovery.PLUGIN_DISTRIBUTION} {version}", "ov_device": discovery.ov_device(chosen),
            "ep_metadata": {k: str(v) for k, v in dict(chosen.ep_metadata).items()}, "provider_options": strings}


def _distribution_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(discovery.PLUGIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
