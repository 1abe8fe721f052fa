"""Rows of `mnbench ablate` results: each changed net against the published one, with the claims' verdicts.

An ablate result file holds, per device and setting, the published separable net of each arch and its ablated
nets, measured in the same rounds of each repetition; its `ablate` section holds every model's cost. A row is one
(change, claim): the cost deltas (changed minus published), the latency change with its 95 % rerun interval from
`repetitions.speedup` (paired by repetition: the two nets ran in the same rounds), and the claim's verdict
(`mnbench.ablate.claims`). Arch-against-arch rows (V2 against V1, V3-Large against V2) compare published nets
measured in different groups: two independent estimates.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


from mnbench.stats import repetitions
from mnbench.ablate.claims import ARCH_COMPARISONS, NO_CLAIM, RULE_LEGEND, TOLERANCE, ClaimTest, claim_tests
from mnbench.archs.ablations import ABLATIONS, SURVEY
from mnbench.report.columns import Column, _number_or_text, ms, plain

SECTION = "ablate"  # the result file's section written by `mnbench ablate`
_SETTING = ("device", "runtime", "precision", "threads", "batch", "width", "resolution")


def is_ablation_result(doc: Mapping[str, Any]) -> bool:
    return isinstance(doc.get(SECTION), Mapping)


def report_rows(docs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of every ablate result among (machine label, source, doc), oldest first; a change measured in several
    files on one machine and setting keeps the newest file's row."""
    newest: dict[tuple, dict[str, Any]] = {}
    for machine, source, doc in docs:
        if is_ablation_result(doc):
            for row in ablation_rows(doc, machine=machine, source=source):
                key = (machine, *(row[k] for k in _SETTING), row["arch"], row["change"], row["claim_source"])
                newest[key] = row
    return list(newest.values())


def ablation_rows(doc: Mapping[str, Any], *, machine: str = "", source: str = "") -> list[dict[str, Any]]:
    """The rows of one ablate result document, in the order its records were measured."""
    costs = doc[SECTION].get("costs") or {}
    groups: dict[tuple, dict[tuple[str, str | None], Mapping[str, Any]]] = {}
    for record in doc["records"]:
        ablation = (record.get("model") or {}).get("ablation")
        groups.setdefault(tuple(record[k] for k in _SETTING), {})[(record["arch"], ablation)] = record
    rows = []
    for nets in groups.values():
        for (arch, ablation), record in nets.items():
            published = nets.get((arch, None))
            if ablation is None or published is None:
                continue
            tests = claim_tests(ablation) or [None]
            common = _change(record, published, costs, by_round=True) | {
                "arch": arch, "change": ablation, "baseline": "published",
                "description": ABLATIONS[ablation].description}
            rows += [_with_claim(common, test, machine, source) for test in tests]
        for comparison in ARCH_COMPARISONS:
            newer, older = nets.get((comparison.arch, None)), nets.get((comparison.baseline, None))
            if newer is None or older is None:
                continue
            common = _change(newer, older, costs, by_round=False) | {
                "arch": comparison.arch, "change": f"{comparison.arch} in place of {comparison.baseline}",
                "baseline": comparison.baseline, "description": "the published nets, arch against arch"}
            rows += [_with_claim(common, test, machine, source) for test in comparison.tests]
    return rows


def _change(changed: Mapping[str, Any], published: Mapping[str, Any], costs: Mapping[str, Any], *,
            by_round: bool) -> dict[str, Any]:
    """Cost deltas and the latency change of `changed` over `published` (both records of one result file), paired
    by repetition (`repetitions.speedup`): the change equals the ratio of the two latencies (min) shown beside it."""
    def other_flops(record: Mapping[str, Any]) -> int | None:
        cost = costs.get((record.get("model") or {}).get("slug")) or {}
        return cost.get("other_flops")

    same_passes = len(repetitions.repetition_values(changed)) == len(repetitions.repetition_values(published))
    if by_round or same_passes:  # the same rounds, or at least the same passes: each repetition's ratio
        estimate, paired_by = repetitions.speedup([(changed, published)]), "round" if by_round else "repetition"
    else:  # published nets of different groups that stopped after different numbers of passes: independent
        estimate = repetitions.quotient(repetitions.latency([changed]), repetitions.latency([published]))
        paired_by = "none"
    flops = (other_flops(changed), other_flops(published))
    return {
        **{k: published[k] for k in _SETTING}, "width": float(published["width"]),
        "params_delta": int(changed["params"]) - int(published["params"]),
        "macs_delta": int(changed["macs"]) - int(published["macs"]),
        "macs_change": changed["macs"] / published["macs"] - 1 if published["macs"] else None,
        "other_flops_delta": flops[0] - flops[1] if None not in flops else None,
        "min_ms_published": _min(published), "min_ms_changed": _min(changed),
        "latency_change": estimate.point - 1,
        "latency_change_ci": _minus_one(estimate.interval), "latency_change_mean_ci": _minus_one(estimate.mean_ci),
        "repetitions": estimate.repetitions,
        "paired_by": paired_by,
    }


def _with_claim(common: dict[str, Any], test: ClaimTest | None, machine: str, source: str) -> dict[str, Any]:
    claim = test.claim if test else None
    return {"machine": machine, **common,
            "claim": claim.statement if claim else None, "claim_source": claim.source if claim else None,
            "claim_device": claim.device if claim else None, "rule": test.rule if test else None,
            "verdict": test.verdict(common["latency_change_ci"]) if test else NO_CLAIM,
            "tolerance": TOLERANCE, "source": source}


def _min(record: Mapping[str, Any]) -> float:
    return repetitions.latency([record]).point



def _minus_one(pair: tuple[float, float]) -> list[float] | None:
    return [pair[0] - 1, pair[1] - 1] if all(0 < x < float("inf") for x in pair) else None


@_number_or_text
def signed_percent(value: float) -> str:
    return f"{value:+.1%}"


@_number_or_text
def percent_interval(value: list[float]) -> str:
    return f"{value[0]:+.1%} … {value[1]:+.1%}"


@_number_or_text
def signed_count(value: int) -> str:
    """+1.05M, -44,000, 0: a delta readable at any size."""
    return f"{value / 1e6:+,.2f}M" if abs(value) >= 1e6 else f"{value:+,}" if value else "0"


def claim_cell(row: Mapping[str, Any]) -> str:
    """The claim with a short source: the survey's full title is in the JSON rows."""
    source = (row.get("claim_source") or "").replace(SURVEY, "the survey (Zhang)")
    return f"{row['claim']} ({source})" if row.get("claim") else "–"


ABLATION_COLUMNS: list[Column] = [
    ("machine", "machine", plain), ("device", "device", plain), ("arch", "arch", plain), ("width", "width", plain),
    ("resolution", "res", plain), ("change", "change", plain), ("params_delta", "Δparams", signed_count),
    ("macs_delta", "ΔMACs", signed_count), ("other_flops_delta", "Δother FLOPs", signed_count),
    ("min_ms_published", "min published (ms)", ms), ("min_ms_changed", "min changed (ms)", ms),
    ("latency_change", "latency change", signed_percent), ("latency_change_ci", "95% CI", percent_interval),
    ("claim_text", "claim (source)", plain), ("rule", "tested as", plain), ("verdict", "verdict", plain),
]

ABLATION_LEGEND = [
    ("change", "the published separable net with one design choice changed (`mnbench models --ablation list`), "
               "or a newer arch in place of an older one."),
    ("Δ", "changed minus published: parameters, MACs (Conv/Gemm) and other FLOPs (elementwise work)."),
    ("latency change", "min(changed) / min(published) - 1, + is slower; paired by repetition and, inside each, by "
                       "round (both nets ran in the same rounds); arch-against-arch rows by repetition only."),
    ("95% CI", "rerun interval of the latency change, from the spread between the run's repetitions."),
    ("verdict", RULE_LEGEND),
]


def display_rows(rows: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each row's cells as the tables show them (the claim and its source in one cell)."""
    return [{key: fmt(claim_cell(row) if key == "claim_text" else row.get(key)) for key, _, fmt in ABLATION_COLUMNS}
            for row in rows]
