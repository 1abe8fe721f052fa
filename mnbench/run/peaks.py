"""The device peaks a run needs: measured once per machine, device and thread count (`mnbench.roofline.peak`), kept in
the result file for the roofline beside each pair, and used to tell how long each model's call will take."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def call_ms(model, doc: dict[str, Any], device, unit: tuple) -> float:
    """One call's expected time (ms): the images of a call times the model's MACs per image, at the peak measured
    at the unit's thread count; 0 where no peak was measured."""
    threads, streams, _ = unit
    peak = (doc.get("peaks_by_threads", {}).get(device.name, {}).get(str(threads))
            or doc.get("peaks", {}).get(device.name) or {})
    gmacs = peak.get("gmacs_per_s")
    images = model.config.batch * streams
    return model.macs_per_image * images / (gmacs * 1e6) if gmacs else 0.0


def record_peaks(doc: dict[str, Any], plan, reports_dir: Path | None, on_status) -> None:
    """The peak of each device at each thread count of the run: `peaks` holds the first thread count's (what a
    single-point run has always written), `peaks_by_threads` every thread count's when the run sweeps threads."""
    by_threads: dict[str, dict[str, Any]] = {}
    for device in plan.devices:
        for threads in plan.thread_counts:
            peak = _device_peak(device, plan.precision, threads, reports_dir, on_status)
            if peak is not None:
                by_threads.setdefault(device.name, {})[str(peak.get("threads", threads))] = peak
    doc["peaks"] = {name: next(iter(peaks.values())) for name, peaks in by_threads.items()}
    if len(plan.thread_counts) > 1:
        doc["peaks_by_threads"] = by_threads


def _device_peak(device, precision: str, threads: int | None, reports_dir: Path | None,
                 on_status) -> dict[str, Any] | None:
    """The device's attainable GMAC/s, measured once per machine and thread count and kept under reports/peaks/;
    None at int8, whose peak workloads are not quantized yet (measured in float they would be no int8 ceiling, and
    would overwrite the stored fp32 peak)."""
    from mnbench.roofline.peak import load_peak, measure_peak, save_peak

    if precision == "int8":
        on_status(f"no int8 peak for {device.name}: the peak workloads run in float only")
        return None

    peak = load_peak(device, precision=precision, threads=threads, reports_dir=reports_dir)
    if peak is None:
        on_status(f"measuring the peak GMAC/s of {device.name} (once per machine and thread count)")
        # Short and uncalibrated: the roofline's figures need their order of magnitude, not `mnbench peak`'s
        # precision, and the operator-class benchmarks would add half a minute per device to a first run
        # (`mnbench peak` measures them for `mnbench predict`).
        peak = measure_peak(device, threads=threads, precision=precision, min_time_s=0.15, max_time_s=0.3,
                            calibrate=False)
        save_peak(peak, reports_dir=reports_dir)
    return peak
