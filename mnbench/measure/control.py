"""The model's control: the very ONNX file a baseline measured, run with pinned settings in the same rounds.

A large model can feel a state of the machine that the small reference does not, and the only workload sure to
feel exactly what the model feels is the model itself. So `mnbench run --for-check` also measures each model's file
a second time through a session with frozen settings (`pin_settings=True`), and `mnbench check` measures that
same file (found by its sha256) next to today's model:

    change = (log model_now − log control_now) − (log model_baseline − log control_baseline)   per round

Both differences are taken within rounds, so machine speed cancels in each. A change to the model code, the
exporter or the benchmark's session settings moves the model, never its control. Records carry their controls
under "controls", keyed by the file's sha256 (docs/gate.md).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

CONTROLS_KEY = "controls"
LEGACY_CONTROLS_KEY = "twins"  # the key in result files written before the rename; still read


def control_entry(record: dict[str, Any], sha256: str | None) -> dict[str, Any] | None:
    """The record's control of the file with this sha256, if it was measured in the record's rounds."""
    return (record.get(CONTROLS_KEY) or record.get(LEGACY_CONTROLS_KEY) or {}).get(sha256)


def own_control(record: dict[str, Any]) -> dict[str, Any] | None:
    """The control of the record's own model file, if it was measured."""
    return control_entry(record, record.get("model_sha256"))


def one_workload_at_baseline(baseline: dict[str, Any]) -> bool:
    """Whether the baseline's model and its own control were one workload (the same file under the same settings,
    measured in the same rounds): then their ratio is 1 by construction, and the baseline's measured ratio is
    nothing but its two sessions' noise."""
    control = own_control(baseline)
    return control is not None and control.get("settings") == baseline.get("settings")


def find_model_file(sha256: str, candidates: Iterable[str | os.PathLike | None],
                    models_dir: str | os.PathLike | None = None) -> Path | None:
    """A file whose bytes have this sha256: one of `candidates` (checked in order), else an export in the models
    folder whose manifest names the sha256 (verified against the file). None if there is none."""
    from mnbench import paths
    from mnbench.hashing import has_sha256
    from mnbench.manifest import file_with_sha256

    for candidate in candidates:
        if candidate and has_sha256(candidate, sha256):
            return Path(candidate)
    return file_with_sha256(paths.models_dir(models_dir), sha256)


def open_control(device, model_path: str | os.PathLike, *, batch: int, precision: str, threads: int | None,
              models_dir: str | os.PathLike | None = None):
    """A session of `model_path` with the settings frozen for references; `infer` is the workload to interleave."""
    from mnbench.backends import open_session

    return open_session(device, model_path, batch=batch, precision=precision, threads=threads,
                        models_dir=models_dir, pin_settings=True)
