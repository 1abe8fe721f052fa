"""Does `mnbench predict` foretell the latency of models nobody here wrote? Predicted against measured, per model.

The held-out models are timm architectures exported by benchmarks/zoo_export.py (random init, 224 x 224, batch 1);
none of them is a MobileNet V1-V3, and nothing in the predictor was fitted on them: its calibration comes from
`mnbench peak`'s own small benchmarks, its design was tuned on mnbench's MobileNets and frozen (committed) before
these models were measured. The whole study:

    /work/zoo-venv/bin/python benchmarks/zoo_export.py
    flock /tmp/mnbench-cpu.lock .venv/bin/mnbench peak --device cpu,openvino --threads 1 --reports-dir R
    for each pair A B:  flock /tmp/mnbench-cpu.lock .venv/bin/mnbench run --model models/zoo/A.onnx \\
                          --model models/zoo/B.onnx --device cpu,openvino --reports-dir R
    .venv/bin/python benchmarks/predict_validation.py R/runs --reports-dir R --frozen COMMIT

For every user-model record (the newest run of each model and device): measured latency (the record's fastest-call
latency, as the report shows it), predicted latency (`--spec this` at the record's thread count), and the
MAC-count baseline (MACs / the measured peak GMAC/s); for every pair the run formed, measured against predicted
speedup, and the MAC ratio. Targets (issue 25): predicted within ±20 % for >= 80 % of models and within ±10 % for
>= 50 %, a smaller median |error| than the MAC baseline, and pair speedups within ±15 % for >= 80 % of pairs.
`--mobilenets` judges mnbench's own archs instead (the tuning set).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mnbench import atomic
from mnbench.errors import MnbenchError
from mnbench.host.facts import cpu_model, cpuinfo
from mnbench.report import load_report
from mnbench.report.pairs import min_ms
from mnbench.report.roofline_pairs import record_prediction
from mnbench.roofline.predict import this_machine

RESULTS = Path(__file__).parent / "results" / "predict_validation.md"
TARGETS = {"within_20": 0.80, "within_10": 0.50, "pairs_within_15": 0.80}


def model_rows(report, *, reports_dir: Path | None, mobilenets: bool) -> list[dict[str, Any]]:
    rows = []
    for item in report.records:
        record = item.record
        user = isinstance(record.get("model"), dict) and record["model"].get("source") == "onnx-file"
        if user == mobilenets or record["precision"] != "fp32":
            continue
        roofs = this_machine(record["device"], threads=record.get("threads"), reports_dir=reports_dir)
        prediction = record_prediction(record, roofs)
        measured = min_ms(record)
        mac_ms = record["macs"] * record["batch"] / (roofs.peak_gmacs_per_s * 1e6)
        rows.append({"device": record["device"], "label": record["arch"] if user else
                     f"{record['arch']}-{record['variant']}", "pair": (record["model"].get("pair") or {}).get("name")
                     if user else record["arch"], "role": record["variant"], "macs": record["macs"],
                     "measured_ms": measured, "predicted_ms": prediction.time_ms, "mac_ms": mac_ms,
                     "error": prediction.time_ms / measured - 1, "mac_error": mac_ms / measured - 1,
                     "bound": prediction.bound, "calibrated": roofs.calibration is not None})
    return sorted(rows, key=lambda r: (r["device"], r["label"]))


def pair_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Baseline over candidate (standard over separable for MobileNets), measured, predicted and by MACs."""
    first, second = ("baseline", "candidate") if any(r["role"] == "baseline" for r in rows) else ("standard",
                                                                                                 "separable")
    by = {(r["device"], r["pair"], r["role"]): r for r in rows if r["pair"]}
    out = []
    for (device, pair, role), base in sorted(by.items()):
        cand = by.get((device, pair, second))
        if role != first or cand is None:
            continue
        measured = base["measured_ms"] / cand["measured_ms"]
        predicted = base["predicted_ms"] / cand["predicted_ms"]
        mac = base["macs"] / cand["macs"]
        out.append({"device": device, "pair": pair, "measured": measured, "predicted": predicted, "mac": mac,
                    "error": predicted / measured - 1, "mac_error": mac / measured - 1})
    return out


def _share(errors: list[float], bound: float) -> float:
    return sum(abs(e) <= bound for e in errors) / len(errors) if errors else 0.0


def summary(rows: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for device in sorted({r["device"] for r in rows}) + ["all"]:
        chosen = [r for r in rows if device in ("all", r["device"])]
        err, mac = [r["error"] for r in chosen], [r["mac_error"] for r in chosen]
        lines.append(
            f"- **{device}** ({len(chosen)} models): predicted within ±10 % {_share(err, .10):.0%}, within ±20 % "
            f"{_share(err, .20):.0%}, median |error| {statistics.median(map(abs, err)):.1%}; MAC baseline within "
            f"±10 % {_share(mac, .10):.0%}, within ±20 % {_share(mac, .20):.0%}, median |error| "
            f"{statistics.median(map(abs, mac)):.1%}")
    if pairs:
        err, mac = [p["error"] for p in pairs], [p["mac_error"] for p in pairs]
        lines.append(f"- **pairs** ({len(pairs)}): predicted speedup within ±15 % of measured for "
                     f"{_share(err, .15):.0%}, median |error| {statistics.median(map(abs, err)):.1%}; MAC ratio "
                     f"within ±15 % {_share(mac, .15):.0%}, median |error| {statistics.median(map(abs, mac)):.1%}")
    err = [r["error"] for r in rows]
    met = {"±20 % for >= 80 %": _share(err, .20) >= TARGETS["within_20"],
           "±10 % for >= 50 %": _share(err, .10) >= TARGETS["within_10"],
           "median below the MAC baseline's": statistics.median(map(abs, err)) < statistics.median(
               abs(r["mac_error"]) for r in rows),
           "pairs ±15 % for >= 80 %": _share([p["error"] for p in pairs], .15) >= TARGETS["pairs_within_15"]}
    lines.append("- targets (all models, both devices): " + "; ".join(
        f"{name}: {'met' if ok else 'MISSED'}" for name, ok in met.items()))
    return lines


def markdown(rows, pairs, *, sources: list[str], measured: tuple[str, str], frozen: str, title: str) -> str:
    versions = _versions()
    lines = [f"# {title}", "",
             f"Runs {measured[0]} to {measured[1]} (UTC, result files' creation), one thread per model, default "
             f"`mnbench run` settings; table written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {_cpu()} "
             f"({os.cpu_count()} CPUs seen), {versions}. Predictor design frozen at commit `{frozen}` before any of these models was measured.",
             "", f"Result files: {', '.join(sources)}", "", "## Summary", "", *summary(rows, pairs), "",
             "## Per model", "",
             "| device | model | MACs (M) | measured (ms) | predicted (ms) | error | MACs/peak (ms) | MAC error | bound |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['device']} | {r['label']} | {r['macs'] / 1e6:,.0f} | {r['measured_ms']:.2f} | "
              f"{r['predicted_ms']:.2f} | {r['error']:+.1%} | {r['mac_ms']:.2f} | {r['mac_error']:+.1%} | "
              f"{r['bound']} |" for r in rows]
    if pairs:
        lines += ["", "## Pairs (baseline over candidate)", "",
                  "| device | pair | measured speedup | predicted | error | MAC ratio | MAC error |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {p['device']} | {p['pair']} | {p['measured']:.2f}× | {p['predicted']:.2f}× | "
                  f"{p['error']:+.1%} | {p['mac']:.2f}× | {p['mac_error']:+.1%} |" for p in pairs]
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    fields = cpuinfo()
    return f"{cpu_model(fields)} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def _versions() -> str:
    from importlib.metadata import version

    parts = [f"Python {platform.python_version()}"]
    for package in ("onnxruntime", "openvino", "onnx"):
        try:
            parts.append(f"{package} {version(package)}")
        except Exception:  # noqa: BLE001 - a package that is not installed
            pass
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="result files or folders of `mnbench run --model`")
    parser.add_argument("--reports-dir", type=Path, default=None, help="where the peaks file is")
    parser.add_argument("--frozen", default=None, help="commit of the frozen design (default: HEAD)")
    parser.add_argument("--mobilenets", action="store_true", help="judge mnbench's own archs (the tuning set)")
    parser.add_argument("--tuning", nargs="*", default=[], help="result files of the MobileNet tuning run, "
                        "summarised beside the held-out figures")
    parser.add_argument("--output", type=Path, default=None, help=f"markdown to write (default {RESULTS})")
    args = parser.parse_args(argv)
    report = load_report(args.results)
    try:
        rows = model_rows(report, reports_dir=args.reports_dir, mobilenets=args.mobilenets)
    except MnbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("no records to judge", file=sys.stderr)
        return 1
    frozen = args.frozen or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                           text=True).stdout.strip()
    title = ("Predicted against measured latency: mnbench's MobileNets (tuning set)" if args.mobilenets else
             "Predicted against measured latency on held-out timm models")
    created = sorted(str(item.created_utc) for item in report.records)
    text = markdown(rows, pair_rows(rows), sources=report.sources, measured=(created[0], created[-1]), frozen=frozen,
                    title=title)
    if args.tuning:
        tuning = load_report(args.tuning)
        tuned = model_rows(tuning, reports_dir=args.reports_dir, mobilenets=True)
        text += "\n".join(["", "## The tuning set: mnbench's MobileNets (design chosen on these)", "",
                            f"Result files: {', '.join(tuning.sources)}", "", *summary(tuned, pair_rows(tuned))]) + "\n"
    print(text, end="")
    output = args.output or (None if args.mobilenets else RESULTS)
    if output is not None:
        atomic.write_text(output, text)
        print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
