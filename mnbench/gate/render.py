"""The gate's report as a terminal table, JSON, or Markdown (for a CI step summary): pure functions of a GateReport."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mnbench.gate.compare import (IMPROVEMENT, INCONCLUSIVE, MISSING, PASS, REGRESSION, CONTROL, VERDICTS,
                                  GateReport, ModelVerdict)

VERDICT_STYLE = {REGRESSION: "bold red", INCONCLUSIVE: "yellow", MISSING: "yellow", IMPROVEMENT: "green",
                 PASS: "green"}
VERDICT_ICON = {REGRESSION: "❌", INCONCLUSIVE: "⚠️", MISSING: "⚠️", IMPROVEMENT: "🚀", PASS: "✅"}
COLUMNS = ("model", "baseline ms", "now ms", "change", "CI", "p (Holm)", "verdict", "note")
NUMERIC_COLUMNS = ("baseline ms", "now ms", "change", "p (Holm)")


def _percent(x: float | None) -> str:
    if x is None:
        return "–"
    if math.isinf(x):
        return "+∞" if x > 0 else "−∞"
    return f"{x:+.1%}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def _p(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2g}" if x >= 1e-4 else "<1e-4"


def _note(m: ModelVerdict) -> str:
    parts = [m.note] if m.note else []
    ruler = "the model's control" if m.normaliser == CONTROL else "the machine-speed reference"
    if m.normalised:
        parts.append(f"normalised by {ruler}")
    if m.machine_shift is not None and abs(m.machine_shift) >= 0.02:
        parts.append(f"{ruler} {_percent(m.machine_shift)} vs baseline")
    if m.method == "chunks":
        parts.append("no rounds in the file: compared on sample chunks")
    return "; ".join(parts)


def cells(m: ModelVerdict) -> list[str]:
    """One row of the report, as text, in COLUMNS order."""
    ci = "–" if m.ci_low is None else f"{_percent(m.ci_low)} … {_percent(m.ci_high)}"
    return [m.name, _ms(m.baseline_ms), _ms(m.current_ms), _percent(m.change), ci, _p(m.p_adjusted), m.verdict,
            _note(m)]


def summary_line(report: GateReport) -> str:
    counts = ", ".join(f"{report.count(v)} {v}" for v in VERDICTS if report.count(v))
    how = {"files": "two result files", "remeasure": "baseline re-measured here",
           "paired": "both models measured in alternating rounds"}.get(report.mode, report.mode)
    return (f"{counts or 'nothing compared'} (threshold {report.threshold:.0%}, {report.confidence:.0%} CI, "
            f"Holm over {len(report.models)} model{'s' * (len(report.models) != 1)}; {how})")


def render_table(report: GateReport) -> Group:
    """A Rich table, with each model's note on a line below it (so it fits a narrow terminal), then the report's."""
    table = Table(title="mnbench check", caption=summary_line(report))
    for header in COLUMNS[:-1]:
        table.add_column(header, overflow="fold", justify="right" if header in NUMERIC_COLUMNS else "left")
    notes = []
    for m in report.models:
        *row, note = cells(m)
        row = [escape(cell) for cell in row]
        row[COLUMNS.index("verdict")] = f"[{VERDICT_STYLE[m.verdict]}]{m.verdict}[/]"
        table.add_row(*row)
        if note:
            notes.append(Text(f"{m.name}: {note}", style="dim"))
    return Group(table, *notes, *(Text(note, style="dim") for note in report.notes))


def _finite_or_none(value: Any) -> Any:
    # JSON has no Infinity: an unknown bound is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def render_json(report: GateReport) -> str:
    return json.dumps(_finite_or_none(report.as_dict()), indent=2) + "\n"


def render_markdown(report: GateReport) -> str:
    """A heading, one table row per model, and the notes: fits `$GITHUB_STEP_SUMMARY`."""
    worst = next((v for v in VERDICTS if report.count(v)), PASS)
    lines = [f"### {VERDICT_ICON[worst]} Latency gate: {summary_line(report)}", "",
             "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in NUMERIC_COLUMNS else "---" for c in COLUMNS) + "|"]
    for m in report.models:
        row = cells(m)
        row[COLUMNS.index("verdict")] = f"{VERDICT_ICON[m.verdict]} {m.verdict}"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines.append("")
    lines.append(f"change = now / baseline − 1; a regression needs the whole {report.confidence:.0%} CI above "
                 f"+{report.threshold:.0%} (Holm-adjusted); pass needs its upper bound at or below it.")
    if any(m.normalised and m.normaliser == CONTROL for m in report.models):
        lines.append("Changes normalised by the model's control are relative to the baseline's own model file, run "
                     "again with frozen settings in the same rounds: machine speed cancels, and what is left is "
                     "what changed in the model and its runtime settings.")
    if any(m.normalised and m.normaliser != CONTROL for m in report.models):
        lines.append("Changes normalised by the machine-speed reference are relative to a small fixed network "
                     "measured in the same rounds; their CI also allows for the reference tracking the model "
                     "imperfectly, the more so the further the machine moved since the baseline.")
    lines.extend(f"- {note}" for note in report.notes)
    return "\n".join(lines) + "\n"
