"""int8 beside fp32 in the report: each int8 record paired with the fp32 record of the same model on the same
machine, device, runtime, threads and batch; int8's speedup over fp32 per arch and variant, and the realized
separable-over-standard speedup under int8 beside fp32's.

An int8 record is one run with `--precision int8` (its `requested_precision`), whatever most of it ran in: a
record labelled fp32 because most MACs stayed in float still shows here, with its int8 MAC share, so the table
says where int8 did not happen. The int8 and fp32 sides come from different runs, not interleaved rounds, so
int8's speedup is a ratio of two runs' medians with no interval (machine drift between the runs is in it).
"""

from __future__ import annotations

from typing import Any, Iterable

from mnbench.report.columns import Column, ms, number, percent, plain, speedup

INT8 = "int8"
INT8_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("model", "model", plain),
    ("variant", "variant", plain), ("precision_ran", "ran as", plain),
    ("min_ms_fp32", "fp32 min ms", ms), ("min_ms_int8", "int8 min ms", ms),
    ("int8_speedup", "int8 ×", speedup), ("int8_mac_share", "MACs in int8", percent),
    ("realized_speedup_fp32", "sep/std × fp32", speedup), ("realized_speedup_int8", "sep/std × int8", speedup),
    ("sqnr_db", "SQNR dB", number), ("top1_agreement", "top-1 agree", percent),
]
INT8_LEGEND = [
    ("int8 ×", "fp32 min / int8 min of the same model on the same device (two runs; no interval)"),
    ("ran as", "what most of the MACs ran in (int8 only when more than half ran in int8 kernels)"),
    ("MACs in int8", "share of the model's MACs the runtime reports in int8 kernels (OpenVINO execution graph; "
                     "ONNX Runtime optimized graph)"),
    ("sep/std ×", "realized separable-over-standard speedup at that precision (standard min / separable min)"),
    ("SQNR dB / top-1 agree", "int8 logits against fp32 on 16 seeded held-out inputs, on the same device"),
]


def asked_precision(record: dict[str, Any]) -> str:
    return record.get("requested_precision") or record["precision"]


def int8_rows(records: Iterable[Any], *, min_ms, realized_speedup) -> list[dict[str, Any]]:
    """Rows for `records` (report.pairs.SourcedRecord, newest per model); `min_ms(record)` and
    `realized_speedup(standard, separable)` are the report's own, so the figures agree with its pair table."""
    sides: dict[tuple, dict[str, Any]] = {}
    for item in records:
        r = item.record
        asked = asked_precision(r)
        if r.get("arch") is None or asked not in ("fp32", INT8) or (asked == "fp32" and r["precision"] != "fp32"):
            continue
        key = (item.machine, r["device"], r["runtime"], r["threads"], r["batch"], r["arch"], float(r["width"]),
               r["resolution"])
        sides.setdefault(key, {})[(asked, r["variant"])] = item
    rows = []
    for key, found in sorted(sides.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        realized = {precision: _realized(found, precision, realized_speedup) for precision in ("fp32", INT8)}
        for variant in ("separable", "standard"):
            fp32, int8 = found.get(("fp32", variant)), found.get((INT8, variant))
            if fp32 is None or int8 is None:
                continue
            rows.append(_row(key, variant, fp32, int8, realized, min_ms))
    return rows


def _realized(found: dict, precision: str, realized_speedup) -> float | None:
    standard, separable = found.get((precision, "standard")), found.get((precision, "separable"))
    if standard is None or separable is None:
        return None
    return realized_speedup(standard, separable).get("realized_speedup")


def _row(key: tuple, variant: str, fp32: Any, int8: Any, realized: dict, min_ms) -> dict[str, Any]:
    machine, device, runtime, threads, batch, arch, width, resolution = key
    quantization = int8.record.get("quantization") or {}
    min_fp32, min_int8 = min_ms(fp32.record), min_ms(int8.record)
    return {"machine": machine, "device": device, "runtime": runtime, "threads": threads, "batch": batch,
            "arch": arch, "width": width, "resolution": resolution, "model": f"{arch} w{width:g} r{resolution}",
            "variant": variant, "precision_ran": int8.record["precision"],
            "min_ms_fp32": min_fp32, "min_ms_int8": min_int8,
            "int8_speedup": min_fp32 / min_int8 if min_fp32 and min_int8 else None,
            "int8_mac_share": quantization.get("int8_mac_share"),
            "not_int8_mac_share_by_category": quantization.get("not_int8_mac_share_by_category"),
            "realized_speedup_fp32": realized["fp32"], "realized_speedup_int8": realized[INT8],
            "sqnr_db": quantization.get("sqnr_db"), "top1_agreement": quantization.get("top1_agreement"),
            "source_fp32": fp32.source, "source_int8": int8.source}


def int8_warnings(records: Iterable[Any]) -> list[str]:
    """One line per int8 record that did not run (verifiably) in int8, as the record's quantization entry says."""
    out = []
    for item in records:
        r = item.record
        warning = (r.get("quantization") or {}).get("warning")
        if asked_precision(r) == INT8 and warning:
            out.append(f"{r.get('arch')} {r.get('variant')} w{r.get('width'):g} r{r.get('resolution')}: {warning}")
    return out
