"""The CI latency-regression gate behind `mnbench check`.

compare    statistics and verdicts, pure functions of the samples in result documents
remeasure  measuring a baseline's models again on this machine, or two model files side by side
render     the report as a table, JSON or Markdown; junit: as JUnit XML
"""

from mnbench.gate.compare import DEFAULT_THRESHOLD, GateReport, ModelVerdict, compare_results

__all__ = ["DEFAULT_THRESHOLD", "GateReport", "ModelVerdict", "compare_results"]
