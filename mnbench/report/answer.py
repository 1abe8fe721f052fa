"""The report's answer in words, one or two sentences per device, from the report's own pair rows and profiles.

"Keeps X %" is realized / theoretical speedup on a linear scale, the table's `share_kept` (kept)
column, so the sentence and the table cannot disagree. Speedups are shown as the table shows them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Mapping

from mnbench.report.columns import plain, profile_categories, speedup
from mnbench.report.pairs import Report

# A device's pairs are listed one by one up to this many; beyond it the sentence gives the range and median.
MAX_LISTED = 4
DEVICE_FIELDS = ("machine", "device", "runtime", "precision", "threads", "batch")
KEEPS_MEANS = ("keeps = realized / theoretical speedup (the table's kept column): the share of the MAC "
               "saving that became time saved.")


@dataclass(frozen=True, kw_only=True)
class DeviceAnswer:
    device: str  # "bench-xeon · cpu (onnxruntime, fp32, 4 threads, batch 1)"
    sentences: tuple[str, ...]


def answers(report: Report) -> list[DeviceAnswer]:
    """One answer per machine/device/settings group that has pairs, in the report's row order."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in report.rows:
        groups.setdefault(tuple(row[key] for key in DEVICE_FIELDS), []).append(row)
    out = []
    for key, rows in groups.items():
        device = describe_device(dict(zip(DEVICE_FIELDS, key)))
        sentences = [f"On {device}, {_saving_sentence(rows)}."]
        depthwise = _depthwise_sentence(key, report.profiles)
        if depthwise:
            sentences.append(depthwise)
        out.append(DeviceAnswer(device=device, sentences=tuple(sentences)))
    return out


def describe_device(group: Mapping[str, Any]) -> str:
    return (f"{group['machine']} · {group['device']} ({group['runtime']}, {group['precision']}, "
            f"{group['threads']} threads, batch {group['batch']})")


def model_name(item: Mapping[str, Any]) -> str:
    """"V1", or "V2 w0.5 r160" where width or resolution is not the papers' headline 1.0 / 224."""
    name = str(item.get("arch", "?")).replace("v", "V", 1)
    width, resolution = item.get("width"), item.get("resolution")
    if (width, resolution) != (1.0, 224):
        name += f" w{plain(width)} r{plain(resolution)}"
    return name


def keeps(row: Mapping[str, Any]) -> float | None:
    realized, theoretical = row.get("realized_speedup"), row.get("theoretical_speedup")
    return realized / theoretical if realized and theoretical else None


def percent(share: float) -> str:
    """"84 %", or "3.0 %" below ten, so a small share does not round to nothing."""
    value = 100 * share
    return f"{value:.0f} %" if abs(value) >= 9.95 else f"{value:.1f} %"


def _saving_sentence(rows: list[Mapping[str, Any]]) -> str:
    measured = [row for row in rows if keeps(row) is not None]
    if not measured:
        return "no pair has both a theoretical and a realized speedup"
    if len(measured) <= MAX_LISTED:
        first, *rest = measured
        parts = [f"{model_name(first)} keeps {_kept(first)}"]
        parts += [f"{model_name(row)} {_kept(row)}" for row in rest]
        return _join(parts)
    ordered = sorted(measured, key=keeps)
    low, high = ordered[0], ordered[-1]
    return (f"the {len(measured)} models keep {percent(keeps(low))} to {percent(keeps(high))} of their MAC saving "
            f"(median {percent(statistics.median(keeps(row) for row in measured))}): least {model_name(low)}, "
            f"{_kept(low)}; most {model_name(high)}, {_kept(high)}")


def _kept(row: Mapping[str, Any]) -> str:
    """"51 % of its 8.55× MAC saving (realized 4.32×)", the roofline's prediction beside it when there is one."""
    realized = f"realized {speedup(row['realized_speedup'])}"
    roofline = row.get("roofline_speedup")
    if isinstance(roofline, (int, float)):
        realized += f", roofline predicts {speedup(roofline)}"
    return f"{percent(keeps(row))} of its {speedup(row['theoretical_speedup'])} MAC saving ({realized})"


def _depthwise_sentence(key: tuple, profiles: list[Mapping[str, Any]]) -> str | None:
    """Time share against MAC share of the depthwise layers in this device's profiles of separable nets."""
    parts = []
    for profile in profiles:
        if profile.get("variant") != "separable" or tuple(profile.get(k) for k in DEVICE_FIELDS) != key:
            continue
        for category in profile_categories(profile):
            time_share, mac_share = category.get("time_share"), category.get("mac_share")
            if (category.get("category") == "depthwise" and isinstance(time_share, (int, float))
                    and isinstance(mac_share, (int, float))):
                parts.append((model_name(profile), time_share, mac_share))
    if not parts:
        return None
    (name, time_share, mac_share), *rest = parts
    text = f"Depthwise layers take {percent(time_share)} of the time for {percent(mac_share)} of the MACs in {name}"
    text += "".join(f", {percent(t)} for {percent(m)} in {n}" for n, t, m in rest)
    return text + " (runtime profiler)."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
