"""The gate's report as JUnit XML, one testcase per model, so CI shows regressions as failed tests."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from mnbench import atomic
from mnbench.gate.compare import INCONCLUSIVE, MISSING, REGRESSION, GateReport, ModelVerdict
from mnbench.gate.render import cells, COLUMNS, summary_line

SUITE_NAME = "mnbench latency gate"


def _detail(m: ModelVerdict) -> str:
    return "\n".join(f"{header}: {cell}" for header, cell in zip(COLUMNS, cells(m)))


def _message(m: ModelVerdict, threshold: float) -> str:
    if m.verdict == MISSING:
        return "not in the current results"
    return (f"{m.verdict}: change {cells(m)[COLUMNS.index('change')]} "
            f"(CI {cells(m)[COLUMNS.index('CI')]}), threshold +{threshold:.0%}")


def junit_xml(report: GateReport, inconclusive: str = "exit3") -> str:
    """A regression is a <failure>; an inconclusive or missing model is a <failure> under `--inconclusive fail`,
    otherwise <skipped> (the exit code still says 3 under the default policy)."""
    failed = {REGRESSION} | ({INCONCLUSIVE, MISSING} if inconclusive == "fail" else set())
    skipped = {INCONCLUSIVE, MISSING} - failed
    n_failed = sum(m.verdict in failed for m in report.models)
    n_skipped = sum(m.verdict in skipped for m in report.models)
    counts = {"tests": str(len(report.models)), "failures": str(n_failed), "errors": "0", "skipped": str(n_skipped)}
    root = ET.Element("testsuites", name="mnbench check", **counts)
    suite = ET.SubElement(root, "testsuite", name=SUITE_NAME, time="0", **counts)
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="summary", value=summary_line(report))
    for m in report.models:
        case = ET.SubElement(suite, "testcase", classname="mnbench.latency", name=m.name, time="0")
        if m.verdict in failed:
            ET.SubElement(case, "failure", type=m.verdict, message=_message(m, report.threshold)).text = _detail(m)
        elif m.verdict in skipped:
            ET.SubElement(case, "skipped", message=_message(m, report.threshold))
        ET.SubElement(case, "system-out").text = _detail(m)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: GateReport, path: str | os.PathLike, inconclusive: str = "exit3") -> Path:
    return atomic.write_text(path, junit_xml(report, inconclusive))
