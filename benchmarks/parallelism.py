"""The survey's central claim as a curve on this machine (issue 26): how the share of the MAC saving kept changes
from 1 to 2 threads and from batch 1 to batch 8, with intervals, for v1 and v2 on cpu and openvino; the roofline's
curve against the measured one; each model's measured memory beside its graph's minimum; and whether the run took
the time its progress bar promised at the start.

Runs `mnbench run --arch v1,v2 --device cpu,openvino --threads 1,2 --batch 1,8` N times (default 2, each a separate
command with the default settings), or reads result files from earlier runs, and writes a markdown summary:

    python benchmarks/parallelism.py [--runs 2] [--keep DIR] [--from FILE ...] [--output FILE]

A second run checks the first run's intervals: its figure for each point should fall inside them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnbench import atomic, results
from mnbench.host.machine import machine_info
from mnbench.report.columns import interval
from mnbench.report.curves import curve_rows
from mnbench.report.memory_rows import memory_rows
from mnbench.report.pairs import build_report

COMMAND = ["run", "--arch", "v1,v2", "--device", "cpu,openvino", "--threads", "1,2", "--batch", "1,8"]


def run_all(n: int, folder: Path) -> list[tuple[Path, float]]:
    mnbench = str(Path(sys.executable).with_name("mnbench"))
    out = []
    for i in range(n):
        path = folder / f"run{i + 1}.json"
        started = time.monotonic()
        subprocess.run([mnbench, *COMMAND, "--output", str(path)], check=True, stdout=subprocess.DEVNULL)
        out.append((path, time.monotonic() - started))
    return out


def change_lines(curve: list[dict]) -> list[str]:
    """Per arch x device: the kept share at each point and the change 1 -> 2 threads (batch 1), batch 1 -> 8
    (1 thread), with the change's 95 % interval."""
    lines = ["| device | arch | kept t1 b1 | kept t2 b1 | 1→2 threads | kept t1 b8 | batch 1→8 | kept t2 b8 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    by_model: dict[tuple, dict] = {}
    for c in curve:
        by_model.setdefault((c["device"], c["arch"]), {})[(c["threads"], c["batch"])] = c
    for (device, arch), points in sorted(by_model.items()):
        def kept(p):
            c = points.get(p)
            return f"{c['share_kept']:.1%}" if c else "–"

        def change(p):
            c = points.get(p)
            return f"{c['change']:.2f}× ({interval(c['change_ci'])})" if c and c["change"] else "–"

        lines.append(f"| {device} | {arch} | {kept((1, 1))} | {kept((2, 1))} | {change((2, 1))} | {kept((1, 8))} | "
                     f"{change((1, 8))} | {kept((2, 8))} |")
    return lines


def roofline_lines(curve: list[dict]) -> list[str]:
    lines = ["| device | arch | threads | batch | realized | roofline | roofline error |", "|---|---|---:|---:|---:|---:|---:|"]
    errors = []
    for c in curve:
        err = c["roofline_speedup"] / c["realized_speedup"] - 1 if c["roofline_speedup"] else None
        if err is not None:
            errors.append(abs(err))
        lines.append(f"| {c['device']} | {c['arch']} | {c['threads']} | {c['batch']} | {c['realized_speedup']:.2f}× | "
                     f"{c['roofline_speedup'] or 0:.2f}× | {'–' if err is None else f'{err:+.0%}'} |")
    if errors:
        errors.sort()
        lines.append(f"\n|error| median {errors[len(errors) // 2]:.0%}, worst {errors[-1]:.0%} over {len(errors)} points")
    return lines


def coverage_lines(docs: list[tuple[Path, dict]]) -> list[str]:
    """For each ordered pair of runs (A, B): does B's realized speedup at each point fall inside A's interval?"""
    curves = [{(c["device"], c["arch"], c["threads"], c["batch"]): c
               for c in build_report([(p, d)]).curves} for p, d in docs]
    inside = total = 0
    misses = []
    for i, a in enumerate(curves):
        for j, b in enumerate(curves):
            if i == j:
                continue
            for key, point in a.items():
                ci, other = point["realized_speedup_ci"], b.get(key, {}).get("realized_speedup")
                if ci and other:
                    total += 1
                    if ci[0] <= other <= ci[1]:
                        inside += 1
                    else:
                        misses.append(f"{'/'.join(map(str, key))}: run {j + 1} {other:.2f}× outside run {i + 1} "
                                      f"{ci[0]:.2f}–{ci[1]:.2f}")
    return [f"coverage: {inside}/{total} points of one run inside another run's 95 % interval"
            + (f" ({inside / total:.0%})" if total else ""), *[f"- miss: {m}" for m in misses]]


def memory_lines(docs: list[tuple[Path, dict]]) -> list[str]:
    rows = [r for r in memory_rows(build_report(docs[-1:]).records) if r["model"].startswith("v2 ") and r["threads"] == 1]
    lines = ["| device | variant | batch | peak MB | minimum MB | weights MB | activations MB | peak / minimum |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['device']} | {r['variant']} | {r['batch']} | {r['peak_bytes'] / 1e6:.1f} | "
                     f"{r['minimum_bytes'] / 1e6:.1f} | {r['weight_bytes'] / 1e6:.1f} | "
                     f"{r['activation_bytes'] / 1e6:.1f} | {r['peak_over_minimum']:.1f}× |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--from", dest="sources", type=Path, nargs="*")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.sources:
        runs = [(p, None) for p in args.sources]
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="mnbench-parallelism-"))
        folder.mkdir(parents=True, exist_ok=True)
        runs = run_all(args.runs, folder)
    docs = [(p, results.load_result(p)) for p, _ in runs]
    machine = machine_info()
    out = [f"# Realized speedup against parallelism ({dt.date.today()}, {machine.get('cpu_model')})", "",
           f"Command: `mnbench {' '.join(COMMAND)}`, {len(docs)} run(s); files: {', '.join(str(p) for p, _ in runs)}", "",
           "## Time: promised at the start against taken", ""]
    for (path, wall), (_, doc) in zip(runs, docs):
        low, high = doc["settings"].get("estimate_s", [None, None])
        out.append(f"- {path.name} (started {doc['created_utc']}): estimate {low}–{high} s of measuring, measured "
                   f"{doc['settings'].get('measured_s')} s" + (f", whole command {wall:.0f} s" if wall else ""))
    for i, doc in enumerate(docs, 1):
        curve = curve_rows(build_report([doc]).rows)
        out += ["", f"## Run {i}: kept share and its change (95 % interval)", "", *change_lines(curve),
                "", f"### Run {i}: roofline against measured", "", *roofline_lines(curve)]
    if len(docs) > 1:
        out += ["", "## Does a re-run fall inside the first run's intervals?", "", *coverage_lines(docs)]
    out += ["", "## Memory of v2 (1 thread; last run)", "", *memory_lines(docs)]
    text = "\n".join(out) + "\n"
    if args.output:
        atomic.write_text(args.output, text)
    print(text)


if __name__ == "__main__":
    main()
