"""Records from measurements: what `mnbench run` and `mnbench check` both write, built in one place.

The workloads measured together are keyed by name: each model by its own key, the machine-speed reference by
REFERENCE_WORKLOAD, and each control by `control_workload(sha256)` of its file.
"""
from __future__ import annotations

from typing import Any

from mnbench.measure.loop import Measurement
from mnbench.measure.worker import REFERENCE_WORKLOAD, control_workload  # noqa: F401 - the workload keys, one place
from mnbench.measure.reference import REFERENCE_NAME
from mnbench.results import Companion, Record, SampleSeries


def make_record(exported, device, session_info: dict, measurements: list[Measurement],
                references: list[Measurement] | None = None, reference_info: dict | None = None,
                controls: dict[str, Companion] | None = None, memory: dict[str, Any] | None = None) -> Record:
    """One model's record from its repetitions (one Measurement each); `references`, the machine-speed reference
    measured in the same rounds; `controls`, the controls by file sha256 (`control_companion`); `memory`, the
    session's measured peak beside the graph's minimum (`mnbench.run.memory`)."""
    config = exported.config
    fields = {
        "arch": config.arch, "variant": config.variant, "width": config.width, "resolution": config.resolution,
        "batch": config.batch, "device": device.name, "runtime": session_info["runtime"],
        "runtime_version": session_info.get("runtime_version"), "precision": session_info["precision"],
        "requested_precision": session_info.get("requested_precision"), "threads": int(session_info["threads"]),
        "providers": session_info.get("providers"), "settings": session_info.get("settings", {}),
        "macs": int(exported.macs_per_image),  # per image; latency and throughput carry the batch
        "params": int(exported.params), "model_sha256": exported.sha256, "model_path": str(exported.path),
        "model": config.as_dict() | {"slug": config.slug, "opset": exported.opset},
    }
    if session_info.get("streams", 1) != 1:  # OpenVINO's throughput mode: streams x batch images per call
        fields["streams"] = int(session_info["streams"])
    if memory is not None:
        fields["memory"] = dict(memory)
    if session_info.get("quantization") is not None:  # int8: what ran in int8, how far outputs moved
        fields["quantization"] = session_info["quantization"]
    return Record(fields=fields, series=series_of(measurements),
                  repetition_rounds=tuple(len(m.round_sizes) for m in measurements),
                  reference=reference_companion(references, reference_info) if references else None,
                  controls=controls or {})


def series_of(measurements: list[Measurement]) -> SampleSeries:
    return SampleSeries.concat([SampleSeries.of(m.samples_ms, m.round_sizes) for m in measurements])


def reference_companion(references: list[Measurement], info: dict | None = None) -> Companion:
    """The record's "reference" entry: the reference's name, how it ran, and its samples in the record's rounds."""
    info = info or {}
    return Companion(series_of(references), {"name": REFERENCE_NAME, "runtime": info.get("runtime"),
                                             "precision": info.get("precision"), "threads": info.get("threads")})


def control_companion(measurements: list[Measurement], info: dict[str, Any]) -> Companion:
    """One entry of a record's "controls": how the control ran and its samples in the record's rounds."""
    return Companion(series_of(measurements), {"settings": info.get("settings", {})})
