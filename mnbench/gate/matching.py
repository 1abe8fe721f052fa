"""Which baseline record a current record is, and whether the two setups may be compared at all."""
from __future__ import annotations

from typing import Any, Iterable

from mnbench.errors import MnbenchError
from mnbench.host.machine import machine_fingerprint

# What a model is, for matching baseline and current records; precision and threads must then agree too.
MODEL_KEY_FIELDS = ("arch", "variant", "width", "resolution", "batch", "device", "runtime")
SETTING_FIELDS = ("precision", "threads", "runtime_version")


def record_name(record: dict[str, Any]) -> str:
    """`v2-separable-w1-r224-b1 cpu/onnxruntime fp32`: model, where it ran and how."""
    slug = (record.get("model") or {}).get("slug") or (
        f"{record.get('arch')}-{record.get('variant')}-w{record.get('width', 0):g}-r{record.get('resolution')}"
        f"-b{record.get('batch')}")
    return f"{slug} {record.get('device')}/{record.get('runtime')} {record.get('precision')}"


def model_key(record: dict[str, Any]) -> tuple:
    return tuple(float(record[k]) if k == "width" else record[k] for k in MODEL_KEY_FIELDS)


def check_machine_compatible(baseline_machine: dict[str, Any], current_machine: dict[str, Any],
                             runtimes: Iterable[str] = ("onnxruntime", "openvino")) -> None:
    """MnbenchError naming the first `machine_fingerprint` field recorded in both and different.

    Absolute speed (clocks, load, neighbours) may differ: the reference normalises it away. A different CPU model
    or ISA changes which kernels run; a different runtime version (of a runtime in `runtimes`, those the records
    used) changes the environment of the code under test; a different GPU, the hardware.
    """
    base, now = machine_fingerprint(baseline_machine), machine_fingerprint(current_machine)
    runtimes = set(runtimes)
    ignored = set()
    if "onnxruntime" not in runtimes:
        ignored |= {"onnxruntime", "onnxruntime_build"}
    if "openvino" not in runtimes:
        ignored.add("openvino")
    for field_name, a in base.items():
        b = now.get(field_name)
        if field_name in ignored or a in (None, []) or b in (None, []) or a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            shown = f"baseline also has {sorted(set(a) - set(b))}, here also {sorted(set(b) - set(a))}"
        else:
            shown = f"baseline {a!r}, here {b!r}"
        raise MnbenchError(f"baseline is from an incompatible setup: machine {field_name} differs ({shown}); "
                           "record a new baseline on this setup")


def check_settings_compatible(baseline: dict[str, Any], current: dict[str, Any]) -> None:
    """MnbenchError naming the first SETTING_FIELDS entry both records carry and differ in."""
    for key in SETTING_FIELDS:
        a, b = baseline.get(key), current.get(key)
        if a is not None and b is not None and a != b:
            raise MnbenchError(
                f"baseline is from an incompatible setup: {key} differs for {record_name(baseline)} "
                f"(baseline {a!r}, current {b!r}); record a new baseline with the same {key}")


def match_records(baseline_doc: dict[str, Any], current_doc: dict[str, Any]) -> list[tuple[dict, dict | None]]:
    """Each baseline record with the current record of the same model (None if absent); checks their settings."""
    current_by_key: dict[tuple, list[dict]] = {}
    for record in current_doc["records"]:
        current_by_key.setdefault(model_key(record), []).append(record)
    pairs = []
    for record in baseline_doc["records"]:
        candidates = current_by_key.get(model_key(record), [])
        same = [c for c in candidates if all(c.get(k) == record.get(k) for k in ("precision", "threads"))]
        if candidates:
            check_settings_compatible(record, (same or candidates)[0])
        pairs.append((record, same[0] if same else None))
    if pairs and all(current is None for _, current in pairs):
        raise MnbenchError("no model in the current results matches the baseline (same arch, variant, width, "
                           "resolution, batch, device and runtime)")
    return pairs
