"""A record's `quantization` entry, completed: how the file was quantized (its manifest), what ran in int8 (read
back by the backend at open), and how far the int8 logits moved from fp32 on the same device, on a fixed held-out
set of seeded inputs that calibration never saw.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

from mnbench.manifest import read_manifest
from mnbench.graph.readback import INT8, sqnr_db, top1_agreement
from mnbench.int8.quantize import calibration_inputs

HELD_OUT_SEED = 2718  # neither calibration's (mnbench.int8.quantize.CALIBRATION_SEED) nor the benchmark input's
HELD_OUT_IMAGES = 16


def complete_quantization(info: dict[str, Any], exported: Any, device: Any) -> dict[str, Any]:
    """`info` with its `quantization` entry completed (method, settings, sqnr_db, top1_agreement, a warning when
    the record is not labelled int8); `info` itself when the session was not an int8 one."""
    readback = info.get("quantization")
    if readback is None:
        return info
    manifest = read_manifest(exported.path) or {}
    entry: dict[str, Any] = {"method": (manifest.get("settings") or {}).get("method"),
                             "settings": manifest.get("settings"), "source_sha256": manifest.get("source_sha256"),
                             "onnxruntime": manifest.get("onnxruntime"), **readback}
    source = Path(exported.path).with_name(manifest["source"]) if manifest.get("source") else None
    if source is not None and source.is_file():
        entry |= output_distance(device.name, str(source), str(exported.path), batch=exported.config.batch,
                                 threads=int(info["threads"]))
    if info.get("precision") != INT8:
        share = readback.get("int8_mac_share")
        entry["warning"] = (f"only {share:.0%} of the MACs ran in int8 kernels on {info.get('device')}: the record "
                            f"is labelled {info.get('precision')}, what most of it ran in")
    elif readback.get("int8_mac_share") is None:
        entry["warning"] = f"{info.get('device')} compiles the graph into its own engine: int8 is not verified"
    return info | {"quantization": entry}


@functools.lru_cache(maxsize=64)
def output_distance(device: str, fp32_path: str, int8_path: str, *, batch: int, threads: int) -> dict[str, Any]:
    """sqnr_db and top1_agreement of the int8 file's logits against the fp32 file's, both run on `device`, over
    HELD_OUT_IMAGES seeded inputs (one per call at the model's batch)."""
    from mnbench.backends import open_session

    with open_session(device, fp32_path, batch=batch, precision="fp32", threads=threads) as fp32, \
            open_session(device, int8_path, batch=batch, precision=INT8, threads=threads) as int8:
        shape = tuple(next(iter(fp32.inputs.values())).shape)
        inputs = calibration_inputs(shape, count=HELD_OUT_IMAGES, seed=HELD_OUT_SEED)
        reference = np.concatenate([fp32.predict(x) for x in inputs])
        quantized = np.concatenate([int8.predict(x) for x in inputs])
    sqnr = sqnr_db(reference, quantized)
    return {"sqnr_db": round(sqnr, 2) if math.isfinite(sqnr) else None,
            "top1_agreement": top1_agreement(reference, quantized),
            "held_out": {"inputs": HELD_OUT_IMAGES, "seed": HELD_OUT_SEED, "batch": batch}}
