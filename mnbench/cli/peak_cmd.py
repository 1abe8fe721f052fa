"""`mnbench peak`: a device's attainable GMAC/s, memory bandwidth and cost per layer, measured once and kept per
machine."""

from __future__ import annotations

from typing import Annotated

import typer

from mnbench.cli.common import Format, ReportsDirOpt, note, render

COLUMNS = [("device", "device"), ("runtime", "runtime"), ("precision", "precision"), ("threads", "threads"),
           ("gmacs_per_s", "GMAC/s"), ("gbytes_per_s", "GB/s"), ("layer_overhead_us", "µs/layer"),
           ("method", "method")]


def peak(
    device: Annotated[str, typer.Option("--device", "-d", help="Device name(s), comma-separated, or 'all'.")] = "cpu",
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16 or bf16.")] = "fp32",
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="Threads (default: physical cores).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    reports_dir: ReportsDirOpt = None,
) -> None:
    """Measure each device's attainable GMAC/s (the best of three large dense conv chains), memory bandwidth
    (GB/s: 256 MiB streaming ops, bytes read + written), cost per layer (µs: chains of tiny convs) and what each
    operator class costs (the calibration `mnbench predict` prices layers with); store them in
    reports/peaks/<host>.json, per thread count."""
    from mnbench.devices.registry import resolve_devices
    from mnbench.roofline.peak import measure_peak, save_peak

    peaks = []
    for info in resolve_devices(device):
        note(f"measuring the peak of {info.name} …")
        peaks.append(measure_peak(info, threads=threads, precision=precision))
        saved = save_peak(peaks[-1], reports_dir=reports_dir)
    render(peaks, fmt, COLUMNS, title="Attainable GMAC/s")
    note(f"saved to {saved}")
