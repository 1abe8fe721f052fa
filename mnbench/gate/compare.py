"""The regression gate's change estimates: pure functions of the samples in two result documents.

Per record, per-round values (log median of each interleaved round), normalised by the model's control (its own
file in a second session) or the machine-speed reference where that makes the estimate more precise; the change is
the difference of the two sides' means, at the repetition level where both sides hold repetitions (a session's own
speed is variance then), else Welch over rounds widened for their autocorrelation, plus a slope term for how far
the machine moved. Verdicts: regression only when the Holm-adjusted one-sided p rules out the threshold, pass when
the CI's upper bound is within it, else inconclusive. The method, and the measurements behind each choice, are in
docs/gate-method.md; statistics in `gate.statistics`, record matching in `gate.matching`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from mnbench import results
from mnbench.stats import repetitions
from mnbench.measure.control import control_entry, one_workload_at_baseline, own_control
from mnbench.errors import MnbenchError
from mnbench.gate.matching import (MODEL_KEY_FIELDS, SETTING_FIELDS, check_machine_compatible,  # noqa: F401
                                   check_settings_compatible, match_records, model_key, record_name)
from mnbench.gate.rounds import FALLBACK_ROUNDS, ROUND_QUANTILE, RoundValues, round_values  # noqa: F401
from mnbench.gate.thresholds import check_threshold, parse_threshold  # noqa: F401
from mnbench.gate.statistics import (MAX_AUTOCORRELATION, MIN_ROUNDS_FOR_AUTOCORRELATION, _var, _welch,  # noqa: F401
                                     holm_adjust, lag1_autocorrelation, mean_variance, paired_change, t_ppf,
                                     t_sf)

DEFAULT_THRESHOLD = 0.10
DEFAULT_CONFIDENCE = 0.95
STOP_HALFWIDTH_FRACTION = 0.25
DRIFT_Z = 2.0
SLOPE_UNCERTAINTY = 0.25  # sd of the model-on-reference slope around 1 (see the module doc)
# A variance estimated from fewer rounds than this can be tiny by luck and make a CI look precise: no verdict on it.
MIN_ROUNDS_FOR_VERDICT = 10

PASS = "pass"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
INCONCLUSIVE = "inconclusive"
MISSING = "missing"
VERDICTS = (REGRESSION, INCONCLUSIVE, MISSING, IMPROVEMENT, PASS)
CONTROL = "control"  # normalised by the model file's control (mnbench.measure.control)
REFERENCE = "reference"  # by the machine-speed reference network (mnbench.measure.reference)

def use_normalisation(base: RoundValues, now: RoundValues, slope_uncertainty: float = SLOPE_UNCERTAINTY) -> bool:
    """Whether dividing by the reference makes the change estimate more precise (the rule in the module doc)."""
    if base.reference is None or now.reference is None or base.reference_name != now.reference_name:
        return False
    raw = mean_variance(base.model)[0] + mean_variance(now.model)[0]
    norm = mean_variance(base.model - base.reference)[0] + mean_variance(now.model - now.reference)[0]
    shift = reference_shift(base, now)
    shift_se2 = mean_variance(base.reference)[0] + mean_variance(now.reference)[0]
    drift2 = shift * shift if shift * shift > DRIFT_Z ** 2 * shift_se2 else 0.0
    return norm + slope_variance(shift, slope_uncertainty) < raw + drift2


def reference_shift(base: RoundValues, now: RoundValues) -> float:
    """How much slower (log scale) the reference ran now than at baseline time: the machine's change."""
    return float(now.reference.mean() - base.reference.mean())


def slope_variance(shift: float, slope_uncertainty: float = SLOPE_UNCERTAINTY) -> float:
    """The variance a normalised change inherits from not knowing the model-on-reference slope exactly."""
    return (slope_uncertainty * shift) ** 2


# ---- one model's change ----

@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The change of one model, current over baseline, on the log scale: estimate, standard error, t's df."""

    log_change: float
    se: float
    df: float
    method: str  # "rounds", "chunks" or "paired"
    normalised: bool
    rounds_baseline: int
    rounds_current: int
    machine_shift: float | None = None  # exp(mean ref now − mean ref base) − 1: >0 means the machine got slower
    slope_se: float = 0.0  # the part of `se` that is the slope term (see the module doc); 0 unless normalised
    normaliser: str = ""  # what `machine_shift` was measured with, and normalised by: CONTROL or REFERENCE
    repetitions: int = 0  # repetitions the estimate's variance comes from (0: from rounds)

    @property
    def change(self) -> float:
        return math.expm1(self.log_change)

    @property
    def mostly_machine_shift(self) -> bool:
        """Whether most of the CI's width comes from how far the machine moved since the baseline (the slope term),
        so measuring longer would not help."""
        return math.isfinite(self.se) and self.slope_se ** 2 > 0.5 * self.se ** 2

    def interval(self, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
        """Two-sided CI of the change (a fraction: 0.1 = 10 % slower); (-1, inf) when nothing is known."""
        if not math.isfinite(self.se):
            return -1.0, math.inf
        half = t_ppf(0.5 + confidence / 2.0, self.df) * self.se
        return math.expm1(self.log_change - half), math.expm1(self.log_change + half)

    def half_width(self, confidence: float = DEFAULT_CONFIDENCE) -> float:
        low, high = self.interval(confidence)
        return (high - low) / 2.0

    def precise_enough(self, threshold: float, confidence: float = DEFAULT_CONFIDENCE) -> bool:
        """The stopping rule: the CI's half-width without the slope term (the part measuring longer shrinks) is at
        most STOP_HALFWIDTH_FRACTION of the threshold."""
        if not math.isfinite(self.se):
            return False
        measurable = replace(self, se=math.sqrt(max(self.se ** 2 - self.slope_se ** 2, 0.0)), slope_se=0.0)
        return measurable.half_width(confidence) <= STOP_HALFWIDTH_FRACTION * threshold

    def p_value(self, threshold: float) -> float:
        """One-sided p for H0: change ≤ threshold (small when the change is clearly beyond it)."""
        bound = math.log1p(threshold)
        if not math.isfinite(self.se):
            return 1.0
        if self.se == 0.0:
            return 0.0 if self.log_change > bound else 1.0
        return t_sf((self.log_change - bound) / self.se, self.df)


def _difference(base: RoundValues, now: RoundValues, base_values: np.ndarray, now_values: np.ndarray
                ) -> tuple[float, float, float]:
    """(mean difference, standard error, df): at the repetition level where the two sides hold enough repetitions
    (a session's own speed is then variance, `repetitions.pooled_difference`), else Welch over rounds."""
    if base.repetition is not None and now.repetition is not None:
        pooled = repetitions.pooled_difference(base_values, base.repetition, now_values, now.repetition,
                                               lambda x: mean_variance(x)[0])
        if pooled is not None:
            return pooled
    return _welch(base_values, now_values)


def compare_with_control_now(baseline: dict[str, Any], current: dict[str, Any]) -> Comparison | None:
    """The change measured today against the baseline's own file, in the same rounds (its control), or None when
    that is not possible. Where the baseline's model and control were one workload, the baseline's own ratio is 1
    by construction, so today's model over today's control of the baseline's file is the whole change; using the
    baseline's measured ratio as well would only add its two sessions' noise (doubling the variance). The baseline's
    latencies then give the machine's shift (context), not the yardstick."""
    base_file = baseline.get("model_sha256")
    if not one_workload_at_baseline(baseline):
        return None
    base, now = round_values(baseline, control=base_file), round_values(current, control=base_file)
    if now.reference is None or now.method != "rounds":
        return None
    diff, se, df, reps = paired_change(now.model - now.reference, now.repetition)
    diff -= math.log(float(baseline.get(results.LATENCY_SCALE_KEY, 1.0)))  # an injected regression (validations)
    shift = math.expm1(reference_shift(base, now)) if base.reference is not None else None
    # Today's model another file or under other settings: the two files may feel the machine's change since the
    # baseline differently, so the change measured now carries the slope term (nil for an unchanged model).
    slope_se = math.sqrt(slope_variance(math.log1p(shift), control_slope_uncertainty(baseline, current))
                         ) if shift is not None else 0.0
    return Comparison(log_change=diff, se=math.hypot(se, slope_se), df=df, method="paired", normalised=True,
                      rounds_baseline=base.model.size, rounds_current=now.model.size, machine_shift=shift,
                      slope_se=slope_se, normaliser=CONTROL, repetitions=reps)


def compare_records(baseline: dict[str, Any], current: dict[str, Any]) -> Comparison:
    """The change of `current` over `baseline`: against today's control of the baseline's file where both runs
    measured it (`compare_with_control_now`); else two independent runs of the same model (Welch on per-round values,
    or the repetition level), normalised by the baseline file's control where both runs measured it, else by the
    machine-speed reference."""
    paired = compare_with_control_now(baseline, current)
    if paired is not None:
        return paired
    base_file = baseline.get("model_sha256")
    base, now = round_values(baseline, control=base_file), round_values(current, control=base_file)
    normaliser, slope_uncertainty = CONTROL, control_slope_uncertainty(baseline, current)
    if base.reference is None or now.reference is None:
        base, now = round_values(baseline), round_values(current)
        normaliser, slope_uncertainty = REFERENCE, SLOPE_UNCERTAINTY
    normalised = use_normalisation(base, now, slope_uncertainty)
    slope_se = 0.0
    if normalised:
        diff, se, df = _difference(base, now, base.model - base.reference, now.model - now.reference)
        slope_se = math.sqrt(slope_variance(reference_shift(base, now), slope_uncertainty))
        se = math.sqrt(se * se + slope_se * slope_se)
    else:
        diff, se, df = _difference(base, now, base.model, now.model)
    shift = None
    if base.reference is not None and now.reference is not None and base.reference_name == now.reference_name:
        shift = math.expm1(reference_shift(base, now))
    method = "rounds" if base.method == now.method == "rounds" else "chunks"
    return Comparison(log_change=diff, se=se, df=df, method=method, normalised=normalised,
                      rounds_baseline=base.model.size, rounds_current=now.model.size, machine_shift=shift,
                      slope_se=slope_se, normaliser=normaliser if shift is not None else "")


def control_slope_uncertainty(baseline: dict[str, Any], current: dict[str, Any]) -> float:
    """0 when, on both sides, the model is its control's very file under the same settings: then model and control are
    one workload and slow down exactly alike. Otherwise (today's model or its settings differ) the two may feel a
    change of the machine differently, as a model and the reference do: SLOPE_UNCERTAINTY."""
    base_file = baseline.get("model_sha256")
    for record in (baseline, current):
        control = control_entry(record, base_file) or {}
        if record.get("model_sha256") != base_file or control.get("settings") != record.get("settings"):
            return SLOPE_UNCERTAINTY
    return 0.0


# ---- verdicts ----

@dataclass(frozen=True, kw_only=True)
class ModelVerdict:
    name: str
    verdict: str
    baseline_ms: float | None  # median latency per call
    current_ms: float | None
    change: float | None  # fraction: 0.1 = 10 % slower now
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # one-sided, H0: change <= threshold
    p_adjusted: float | None  # Holm over every compared model
    method: str = ""
    normalised: bool = False
    machine_shift: float | None = None
    normaliser: str = ""  # what machine_shift was measured with (and normalised by): CONTROL or REFERENCE
    rounds_baseline: int = 0
    rounds_current: int = 0
    # Whether measuring longer could decide it: a regression to confirm, or an interval measuring narrows.
    measure_more: bool = False
    extended: bool = False  # measured as long again, and judged on all of it (`merge_extension`)
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class GateReport:
    threshold: float
    confidence: float
    models: tuple[ModelVerdict, ...]
    mode: str = "files"  # "files" (two result files), "remeasure" (baseline re-measured here) or "paired"
    notes: tuple[str, ...] = field(default=())

    def count(self, verdict: str) -> int:
        return sum(m.verdict == verdict for m in self.models)

    def exit_code(self, inconclusive: str = "exit3") -> int:
        """1 on a confirmed regression; else 3 (or per `inconclusive`: pass → 0, fail → 1) if any model is
        inconclusive or missing; else 0."""
        if self.count(REGRESSION):
            return 1
        if self.count(INCONCLUSIVE) or self.count(MISSING):
            return {"pass": 0, "fail": 1, "exit3": 3}[inconclusive]
        return 0

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "confidence": self.confidence, "mode": self.mode,
                "counts": {v: self.count(v) for v in VERDICTS}, "notes": list(self.notes),
                "models": [asdict(m) for m in self.models]}


def _median_ms(record: dict[str, Any] | None) -> float | None:
    if record is None:
        return None
    p50 = (record.get("latency_ms") or {}).get("p50")
    return float(p50) if isinstance(p50, (int, float)) else None


def decide(items: Sequence[tuple[str, dict, dict | None, Comparison | None]], *, threshold: float,
           confidence: float) -> tuple[ModelVerdict, ...]:
    """Verdicts for (name, baseline record, current record, comparison) items, Holm-adjusted together."""
    check_threshold(threshold)
    alpha = (1.0 - confidence) / 2.0
    compared = [i for i, item in enumerate(items) if item[3] is not None]
    p_values = {i: items[i][3].p_value(threshold) for i in compared}
    adjusted = dict(zip(compared, holm_adjust([p_values[i] for i in compared])))
    verdicts = []
    for i, (name, base, now, comparison) in enumerate(items):
        if comparison is None:
            verdicts.append(ModelVerdict(name=name, verdict=MISSING, baseline_ms=_median_ms(base), current_ms=None,
                                         change=None, ci_low=None, ci_high=None, p_value=None, p_adjusted=None,
                                         note="not in the current results"))
            continue
        low, high = comparison.interval(confidence)
        measure_more = False
        fewest_rounds = min(comparison.rounds_baseline, comparison.rounds_current)
        if fewest_rounds < MIN_ROUNDS_FOR_VERDICT and comparison.repetitions < 3:
            verdict, note = INCONCLUSIVE, (f"only {fewest_rounds} rounds on one side (at least {MIN_ROUNDS_FOR_VERDICT} "
                                           "needed to trust its noise estimate): record the baseline with `mnbench run`")
            measure_more = comparison.rounds_current < MIN_ROUNDS_FOR_VERDICT  # today's side is the short one
        elif adjusted[i] < alpha:
            verdict, note, measure_more = REGRESSION, f"slower than the baseline beyond {threshold:.0%}", True
        elif high < -threshold:
            verdict, note = IMPROVEMENT, "faster beyond the threshold: refresh the baseline to keep the gate tight"
        elif high <= threshold:
            verdict, note = PASS, ""
        elif comparison.mostly_machine_shift:
            shift = comparison.machine_shift
            verdict, note = INCONCLUSIVE, (
                f"CI reaches above {threshold:.0%}: the machine runs {abs(shift):.0%} "
                f"{'slower' if shift > 0 else 'faster'} than when the baseline was recorded, more than "
                f"{'the control of a changed model' if comparison.normaliser == CONTROL else 'the reference'} "
                "can vouch for; record the baseline again on this kind of runner, or compare both models in one "
                "process (--baseline-model/--model)")
        else:
            verdict, measure_more = INCONCLUSIVE, True
            note = f"CI reaches above {threshold:.0%}: measure longer (--max-time) or on a quieter machine"
        verdicts.append(ModelVerdict(
            name=name, verdict=verdict, baseline_ms=_median_ms(base), current_ms=_median_ms(now),
            change=comparison.change, ci_low=low, ci_high=high, p_value=p_values[i], p_adjusted=adjusted[i],
            method=comparison.method, normalised=comparison.normalised, machine_shift=comparison.machine_shift,
            normaliser=comparison.normaliser, rounds_baseline=comparison.rounds_baseline,
            rounds_current=comparison.rounds_current, measure_more=measure_more, note=note))
    return tuple(verdicts)


def compare_results(baseline_doc: dict[str, Any], current_doc: dict[str, Any], threshold: float = DEFAULT_THRESHOLD,
                    *, confidence: float = DEFAULT_CONFIDENCE, mode: str = "files") -> GateReport:
    """The gate's verdict on two result documents (schema v1): every baseline model against the current run.

    MnbenchError when the two come from incompatible setups (the message names the field) or share no model.
    """
    check_threshold(threshold)
    if not baseline_doc.get("records"):
        raise MnbenchError("the baseline has no records to compare against")
    check_machine_compatible(baseline_doc.get("machine") or {}, current_doc.get("machine") or {},
                             runtimes={r.get("runtime") for r in baseline_doc["records"]})
    items = []
    for base, now in match_records(baseline_doc, current_doc):
        items.append((record_name(base), base, now, compare_records(base, now) if now is not None else None))
    notes = []
    compared = [(base, now, c) for _, base, now, c in items if c is not None]
    without_control = [record_name(base) for base, now, c in compared if own_control(base) and c.normaliser != CONTROL]
    if without_control:
        notes.append(f"the baseline's own model file was not measured again for {', '.join(without_control)}: "
                     "normalised by the small machine-speed reference instead, which a large model on a busy machine "
                     "can outrun; keep the exports the baseline names (its models folder) with the baseline")
    if compared and not any(own_control(base) for base, _, _ in compared):
        notes.append("the baseline has no model controls (recorded with --no-controls or an older mnbench): normalised by "
                     "the small machine-speed reference; record a new baseline for the sounder control normalisation")
    reference_changed = any(base.get("reference") and now.get("reference") and c.normaliser != CONTROL
                            and base["reference"].get("name") != now["reference"].get("name")
                            for base, now, c in compared)
    if reference_changed:
        notes.append("the baseline was measured with another machine-speed reference (an older mnbench): compared "
                     "on absolute times; record a new baseline to get the normalisation back")
    if any(c is not None and c.method == "chunks" for *_, c in items):
        notes.append("some records have no interleaved rounds (older or foreign file): compared on chunks of "
                     "their samples, without the machine-speed reference")
    return GateReport(threshold=threshold, confidence=confidence, mode=mode, notes=tuple(notes),
                      models=decide(items, threshold=threshold, confidence=confidence))


def merge_extension(first: GateReport, extended: GateReport) -> GateReport:
    """The final report of a check that measured its undecided models (`ModelVerdict.measure_more`) as long again:
    those take the verdict on all their repetitions (`extended`), every other model keeps its first verdict.

    A model fails only when the first look did not pass it and the whole measurement calls it a regression, so the
    false-alarm rate is at most that of one test on the whole measurement, and the extra data narrows the interval
    by about 1/√2 where the first look left it open. (Requiring a second, independent regression instead, as the
    gate once did, multiplied two detection rates: 7 of 10 +20 % regressions of v2 1.0/224 were called,
    benchmarks/results/gate_validation_v2.md of 2026-12-02 16:31.)"""
    again = {m.name: m for m in extended.models}
    models = []
    for m in first.models:
        later = again.get(m.name) if m.measure_more else None
        if later is None:
            models.append(m)
            continue
        note = f"measured as long again (first {m.change:+.1%}, {m.verdict}); judged on all of it"
        models.append(replace(later, extended=True, note=f"{later.note}; {note}" if later.note else note))
    return GateReport(threshold=first.threshold, confidence=first.confidence, models=tuple(models), mode=first.mode,
                      notes=first.notes)
