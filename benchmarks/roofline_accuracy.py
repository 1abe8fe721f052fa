"""Is the roofline prediction closer to the realized speedup than the MAC ratio? Checked on result files, not assumed.

For every pair of a `mnbench run` result (cpu and openvino by default, all four archs) whose run's peak has the
bandwidth and layer overhead (`mnbench peak`, issue 12) and whose model files are at hand:

  MAC error       theoretical_speedup / realized_speedup - 1   (time follows MACs)
  roofline error  roofline_speedup / realized_speedup - 1      (mnbench.roofline.model)

It prints both per pair, the median and worst |error| of each, how many pairs the roofline wins, and the share
within ±10 % (nn-Meter, MobiSys 2021: 89 % of unseen models within ±10 % with kernel-level predictors, 22 % for
FLOPs), and writes benchmarks/results/roofline_accuracy.md. The figures in the README come from:

    .venv/bin/mnbench peak --device cpu,openvino
    .venv/bin/mnbench run --arch all --device cpu,openvino
    .venv/bin/python benchmarks/roofline_accuracy.py reports/runs/<that run>.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from mnbench import atomic
from mnbench.report import load_report

RESULTS = Path(__file__).parent / "results" / "roofline_accuracy.md"
WITHIN = 0.10


def accuracy_rows(report, devices: list[str]) -> list[dict]:
    rows = []
    for row in report.rows:
        if row["device"] not in devices or not row.get("roofline_speedup") or not row.get("realized_speedup"):
            continue
        realized = row["realized_speedup"]
        rows.append({"machine": row["machine"], "device": row["device"], "arch": row["arch"],
                     "width": row["width"], "resolution": row["resolution"], "realized": realized,
                     "theoretical": row["theoretical_speedup"], "roofline": row["roofline_speedup"],
                     "mac_error": row["theoretical_speedup"] / realized - 1, "roofline_error": row["roofline_error"],
                     "bound_separable": row["roofline"]["separable"]["bound"],
                     "bound_standard": row["roofline"]["standard"]["bound"]})
    return rows


def summary_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return ["No pair had a roofline prediction: the run's peak needs gbytes_per_s and layer_overhead_us "
                "(`mnbench peak`), and the model files must be on this machine."]
    mac, roof = [abs(r["mac_error"]) for r in rows], [abs(r["roofline_error"]) for r in rows]
    wins = sum(abs(r["roofline_error"]) < abs(r["mac_error"]) for r in rows)
    return [
        f"- pairs: {len(rows)}; roofline closer to realized than the MAC ratio in {wins} of {len(rows)}"
        + (" (every pair)" if wins == len(rows) else " (NOT every pair: the goal is missed)"),
        f"- |error| of the MAC ratio: median {statistics.median(mac):.0%}, worst {max(mac):.0%}; "
        f"within ±10 %: {sum(e <= WITHIN for e in mac) / len(mac):.0%}",
        f"- |error| of the roofline: median {statistics.median(roof):.0%}, worst {max(roof):.0%}; "
        f"within ±10 %: {sum(e <= WITHIN for e in roof) / len(roof):.0%}",
        "- anchor: nn-Meter (MobiSys 2021) puts 89 % of unseen models within ±10 % with kernel-level predictors, "
        "FLOPs 22 %.",
    ]


def markdown(rows: list[dict], sources: list[str]) -> str:
    lines = ["# Roofline prediction against realized speedup", "",
             f"Result files: {', '.join(sources)}", "", *summary_lines(rows), "",
             "| machine | device | arch | width | res | realized | MAC ratio | MAC err | roofline | roofline err "
             "| bound sep | bound std |", "|---" * 12 + "|"]
    lines += [f"| {r['machine']} | {r['device']} | {r['arch']} | {r['width']:g} | {r['resolution']} "
              f"| {r['realized']:.2f}× | {r['theoretical']:.2f}× | {r['mac_error']:+.0%} | {r['roofline']:.2f}× "
              f"| {r['roofline_error']:+.0%} | {r['bound_separable']} | {r['bound_standard']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", default=["reports/runs"], help="result files or folders")
    parser.add_argument("--devices", default="cpu,openvino")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"markdown to write (default {RESULTS})")
    args = parser.parse_args(argv)
    report = load_report(args.results)
    rows = accuracy_rows(report, [d.strip() for d in args.devices.split(",") if d.strip()])
    text = markdown(rows, report.sources)
    print(text, end="")
    atomic.write_text(args.output, text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
