"""The report in the formats CI benchmark trackers read: Bencher Metric Format, github-action-benchmark's
`customSmallerIsBetter` list, and a pytest-benchmark JSON document.

Every benchmark is named from what the model and the run are, never from where or when it ran
(`v2/separable/w1/r224/b1/fp32/cpu`), so a tracker's history lines up across runs and machines; the machine is
the tracker's testbed, so one output holds one machine's results. Latency is the record's min, as every mnbench table shows it (from its
repetitions) and its 95 % rerun interval where the record has repetitions.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import numpy as np

from mnbench.stats import repetitions
from mnbench.errors import MnbenchError
from mnbench.report.pairs import Report, SourcedRecord

# The pytest-benchmark release whose `--benchmark-json` layout `to_pytest_benchmark` follows.
PYTEST_BENCHMARK_LAYOUT = "5.1.0"


def benchmark_name(record: Mapping[str, Any]) -> str:
    """`arch/variant[/ablation]/w<width>/r<resolution>/b<batch>/<precision>/<device>`; a user's ONNX file is
    `model/<label>/...` with its input's resolution."""
    model = record.get("model") if isinstance(record.get("model"), Mapping) else {}
    ablation = record.get("ablation") or model.get("ablation")
    if model.get("source") == "onnx-file":
        head = ["model", str(model.get("label") or record["arch"])]
    else:
        head = [str(record["arch"]), str(record["variant"]), *([str(ablation)] if ablation else []),
                f"w{float(record['width']):g}"]
    return "/".join([*head, f"r{record['resolution']}", f"b{record['batch']}", str(record["precision"]),
                     str(record["device"])])


def _one_machine(report: Report) -> list[tuple[str, SourcedRecord]]:
    """(name, record) sorted by name; one machine, one record per name, or a MnbenchError saying what to pass."""
    machines = sorted({item.machine for item in report.records})
    if len(machines) > 1:
        raise MnbenchError(f"the results come from {len(machines)} machines ({', '.join(machines)}); a CI format "
                           "holds one machine's results (the tracker's testbed): pass that machine's result files")
    named: dict[str, SourcedRecord] = {}
    for item in report.records:
        name = benchmark_name(item.record)
        if name in named:
            raise MnbenchError(f"two records would both be named {name!r} (threads {named[name].record['threads']} "
                               f"and {item.record['threads']}, or runtimes); pass the result files of one setup")
        named[name] = item
    if not named:
        raise MnbenchError("no benchmark records to write in a CI format")
    return sorted(named.items())


def latency_interval_ms(record: Mapping[str, Any]) -> tuple[float, float | None, float | None]:
    """The latency (min) and its 95 % interval in ms; the bounds are None for a one-repetition (schema v1) record."""
    estimate = repetitions.latency([record])
    low, high = estimate.interval
    if not (math.isfinite(high) and low > 0):
        return estimate.point, None, None
    return estimate.point, low, high


def _extra(item: SourcedRecord) -> dict[str, Any]:
    r = item.record
    return {"machine": item.machine, "runtime": r["runtime"], "runtime_version": r.get("runtime_version"),
            "threads": r["threads"], "providers": r.get("providers"), "macs": r["macs"], "params": r["params"],
            "repetitions": len(r.get("repetition_rounds") or [1]), "samples": r["n"],
            "model_sha256": r["model_sha256"], "source": item.source}


def to_bmf(report: Report) -> str:
    """Bencher Metric Format: latency in nanoseconds (Bencher's built-in `latency` measure) with the rerun interval
    as lower/upper values, throughput in images per second (its built-in `throughput`, operations/s)."""
    out: dict[str, Any] = {}
    for name, item in _one_machine(report):
        latency, low, high = latency_interval_ms(item.record)
        latency = {"value": latency * 1e6}
        if low is not None and high is not None:
            latency |= {"lower_value": low * 1e6, "upper_value": high * 1e6}
        out[name] = {"latency": latency, "throughput": {"value": float(item.record["throughput_ips"])}}
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def to_github_action_benchmark(report: Report) -> str:
    """github-action-benchmark's `customSmallerIsBetter` input: latency in ms, range the rerun interval's half-width
    (the sample standard deviation for a one-repetition record, and `extra` says which)."""
    out = []
    for name, item in _one_machine(report):
        r = item.record
        latency, low, high = latency_interval_ms(r)
        if low is not None and high is not None:
            spread, what = max(high - latency, latency - low), "95% rerun interval half-width"
        else:
            spread, what = float(r["latency_ms"]["std"]), "sample standard deviation (one repetition)"
        extra = (f"range: {what}; p90 {r['latency_ms']['p90']:.4g} ms, p99 {r['latency_ms']['p99']:.4g} ms; "
                 f"{r['throughput_ips']:.4g} img/s; "
                 f"{' '.join(str(x) for x in (r['runtime'], r.get('runtime_version')) if x)}, "
                 f"{r['threads']} threads; {item.machine}")
        out.append({"name": name, "unit": "ms", "value": latency, "range": f"± {spread:.4g}", "extra": extra})
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def pytest_stats(samples_ms: list[float]) -> dict[str, Any]:
    """pytest-benchmark's `stats` of one benchmark, in seconds: each sample is one round of one iteration."""
    x = np.asarray(samples_ms, dtype=float) / 1000.0
    mean, stddev = float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0
    q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    iqr = q3 - q1
    inside = x[(x >= q1 - 1.5 * iqr) & (x <= q3 + 1.5 * iqr)]
    iqr_outliers = int(x.size - inside.size)
    stddev_outliers = int(np.sum((x < mean - stddev) | (x > mean + stddev)))
    return {"min": float(x.min()), "max": float(x.max()), "mean": mean, "stddev": stddev, "rounds": int(x.size),
            "median": median, "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_outliers,
            "stddev_outliers": stddev_outliers, "outliers": f"{stddev_outliers};{iqr_outliers}",
            "ld15iqr": float(inside.min()), "hd15iqr": float(inside.max()), "ops": 1.0 / mean if mean > 0 else 0.0,
            "total": float(x.sum()), "iterations": 1}


def to_pytest_benchmark(report: Report) -> str:
    """A pytest-benchmark JSON document (`machine_info`, `commit_info`, `benchmarks[].stats` in seconds)."""
    named = _one_machine(report)
    machine = report.machines.get(named[0][1].machine, {})
    versions = machine.get("versions") if isinstance(machine.get("versions"), Mapping) else {}
    benchmarks = []
    for name, item in named:
        r = item.record
        latency, low, high = latency_interval_ms(r)
        params = {key: r[key] for key in ("arch", "variant", "width", "resolution", "batch", "precision", "device")}
        benchmarks.append({
            "group": "mnbench", "name": name, "fullname": f"mnbench::{name}", "params": params,
            "param": name, "extra_info": _extra(item) | {"min_ms": latency, "min_interval_ms": [low, high]},
            "options": {"timer": "time.perf_counter", "disable_gc": False, "warmup": True,
                        "min_rounds": len(r.get("round_sizes") or [1])},
            "stats": pytest_stats(r["samples_ms"]),
        })
    created = max((item.created_utc for _, item in named), default="")
    doc = {
        "machine_info": {"node": machine.get("hostname"), "processor": machine.get("arch"),
                         "machine": machine.get("arch"), "python_implementation": "CPython",
                         "python_version": machine.get("python") or versions.get("python"),
                         "python_compiler": None, "release": machine.get("kernel"), "system": machine.get("os"),
                         "cpu": {"brand_raw": machine.get("cpu_model"),
                                 "count": machine.get("logical_cpus") or machine.get("cores_logical")},
                         "mnbench": machine},  # everything mnbench recorded about the machine
        "commit_info": {"id": machine.get("git_commit") or machine.get("commit"), "time": None,
                        "author_time": None, "dirty": None, "project": "mnbench", "branch": None},
        "benchmarks": benchmarks,
        "datetime": created,
        "version": PYTEST_BENCHMARK_LAYOUT,
    }
    return json.dumps(doc, indent=2) + "\n"
