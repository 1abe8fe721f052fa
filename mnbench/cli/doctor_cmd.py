"""`mnbench doctor`: is this machine fit for benchmarking, and what to change. Exit 0 fit, 1 unfit, 2 usage error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from mnbench.cli.common import Format, ModelsDirOpt, ReportsDirOpt, print_json, render, stderr, stdout

COLUMNS = [("name", "check"), ("status", "status"), ("seen", "seen"), ("why", "why it matters"),
           ("what_to_do", "what to do")]
_STATUS_STYLE = {"ok": "green", "warn": "yellow", "unfit": "bold red", "unknown": "dim"}


def doctor(
    device: Annotated[str, typer.Option("--device", "-d", help="Device the stability probe runs on.")] = "cpu",
    probe_time: Annotated[float, typer.Option("--probe-time", help="Seconds of stability probe (at least 1).")] = 10.0,
    no_probe: Annotated[bool, typer.Option("--no-probe", help="Skip the stability probe (the checks take ~1 s).")] = False,
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="Probe threads (default: physical cores).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    models_dir: ModelsDirOpt = None,
    reports_dir: ReportsDirOpt = None,
    proc_root: Annotated[Path, typer.Option("--proc-root", hidden=True)] = Path("/proc"),
    sys_root: Annotated[Path, typer.Option("--sys-root", hidden=True)] = Path("/sys"),
) -> None:
    """Check whether this machine is fit for benchmarking (governor, turbo, SMT, isolation, cgroup quota, steal,
    load, THP, memory, a stability probe) and say what to change. Reads only; prints root commands, never runs them."""
    from mnbench.doctor import Host, diagnose

    diagnosis = diagnose(device=device, probe_time_s=probe_time, with_probe=not no_probe, threads=threads,
                         models_dir=models_dir, reports_dir=reports_dir, host=Host(proc_root=proc_root, sys_root=sys_root),
                         on_status=lambda line: stderr.print(line))
    if fmt is Format.json:
        print_json(diagnosis)
    else:
        render([_table_row(f) for f in diagnosis["findings"]], fmt, COLUMNS, title="Is this machine fit for benchmarking?")
        stdout.print(_verdict(diagnosis))
    if not diagnosis["fit"]:
        raise typer.Exit(code=1)


def _table_row(finding: dict[str, Any]) -> dict[str, str]:
    """A finding as table cells: text escaped (THP reads '[madvise]', which Rich would take for markup), the
    status coloured, the command on its own line; why it matters only where it is not ok (JSON has every field)."""
    what = escape(finding["what_to_do"] or "")
    if finding.get("command"):
        what += ("\n" if what else "") + f"[bold]$ {escape(finding['command'])}[/bold]"
    style = _STATUS_STYLE.get(finding["status"], "")
    return {"name": escape(finding["name"]), "status": f"[{style}]{finding['status']}[/{style}]",
            "seen": escape(finding["seen"]), "why": escape(finding["why"]) if finding["status"] != "ok" else "–",
            "what_to_do": what or "–"}


def _verdict(diagnosis: dict[str, Any]) -> str:
    unfit = [f["name"] for f in diagnosis["findings"] if f["status"] == "unfit"]
    if not unfit:
        return "[green]fit for benchmarking[/green]"
    return f"[bold red]unfit for benchmarking[/bold red]: {escape(', '.join(unfit))} (see 'what to do')"
