"""The papers' and the survey's latency claims about one design choice, each read as a bound on a measured change,
and the verdict a measured interval gives it on this device.

A change is ablated (or newer arch) over published (or older arch): latency_change = p50(changed) / p50(published)
- 1, + is slower. Every claim becomes one inequality on it: `change >= bound` or `change <= bound`. The verdict
reads the change's 95 % interval against the bound: holds when the whole interval is on the claim's side, does not
hold when the whole interval is on the other side, cannot tell when the interval straddles the bound (too wide) or
is unknown (one repetition). How a claim becomes a bound:
- a relative figure s (the published choice saves s; 0 for "costs no time"): change >= s - TOLERANCE;
- a figure in ms only, whose baseline the source does not give: its sign (change > 0 or < 0 at the bound 0);
- the survey's expansion-ratio compromise: a larger ratio than 6 costs more time, a smaller one less.
The per-ablation claims themselves (source, statement, figures) live with the ablations (`archs/ablations.py`);
the arch-against-arch ones are here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnbench.archs.ablations import ABLATIONS, SURVEY, V3_PAPER, Claim

# How far a measured change may fall short of a claimed relative figure and still count as the claim holding:
# "about 1 ms" and "no discernible latency cost" are not exact, and 3 % is below what the papers' own tables resolve.
TOLERANCE = 0.03

HOLDS, DOES_NOT_HOLD, CANNOT_TELL, NO_CLAIM = "holds", "does not hold", "cannot tell", "no latency claim"

RULE_LEGEND = (
    f"each claim is read as a bound on the latency change (changed / published - 1, + is slower): a claim that the "
    f"published choice saves s is tested as change >= s - {TOLERANCE:.0%} (s = 0 for 'costs no time'); a claim in ms "
    f"without a baseline as its sign; the survey's expansion-ratio compromise as 'a larger ratio is slower, a smaller "
    f"one faster'. holds: the whole 95 % interval is on the claim's side of the bound; does not hold: the whole "
    f"interval is on the other side; cannot tell: the interval straddles the bound (too wide) or is unknown (one "
    f"repetition). A claim measured on a phone (Pixel 1) or a GPU is tested on this device as stated.")


@dataclass(frozen=True, kw_only=True)
class ClaimTest:
    claim: Claim
    bound: float  # relative latency change, changed / published - 1
    at_least: bool  # True: the claim says change >= bound; False: change <= bound

    @property
    def rule(self) -> str:
        return f"change {'>=' if self.at_least else '<='} {self.bound:+.1%}"

    def verdict(self, interval: tuple[float, float] | list[float] | None) -> str:
        return verdict(interval, self.bound, at_least=self.at_least)


def verdict(interval: tuple[float, float] | list[float] | None, bound: float, *, at_least: bool) -> str:
    """holds / does not hold / cannot tell for the claim `change >= bound` (at_least) or `change <= bound`."""
    if interval is None or any(x is None for x in interval):
        return CANNOT_TELL
    low, high = interval
    if at_least:
        return HOLDS if low >= bound else DOES_NOT_HOLD if high < bound else CANNOT_TELL
    return HOLDS if high <= bound else DOES_NOT_HOLD if low > bound else CANNOT_TELL


def claim_tests(ablation: str) -> list[ClaimTest | None]:
    """One entry per claim about `ablation` (None for a claim that says nothing about latency)."""
    return [_test_for(ablation, claim) for claim in ABLATIONS[ablation].claims]


def _test_for(ablation: str, claim: Claim) -> ClaimTest | None:
    if claim.latency_change is not None:
        return ClaimTest(claim=claim, bound=claim.latency_change - TOLERANCE, at_least=True)
    if claim.latency_delta_ms:
        return ClaimTest(claim=claim, bound=0.0, at_least=claim.latency_delta_ms > 0)
    if ablation.startswith("expansion-") and claim.source.startswith(SURVEY):
        return ClaimTest(claim=claim, bound=0.0, at_least=float(ablation.split("-", 1)[1]) > 6)
    return None


@dataclass(frozen=True, kw_only=True)
class ArchComparison:
    """`arch` against the older `baseline`, both published, at equal width, resolution, device and settings."""

    arch: str
    baseline: str
    tests: tuple[ClaimTest, ...]


ARCH_COMPARISONS = (
    ArchComparison(arch="v2", baseline="v1", tests=(
        ClaimTest(claim=Claim(source=SURVEY + ", Sec. III",
                              statement='"Compared with v1, v2 version of the model is better at the same time, the '
                                        'calculation amount is reduced by two-fifths. It was done quickly and well": '
                                        'V2 lighter and faster than V1'),
                  bound=0.0, at_least=False),
        ClaimTest(claim=Claim(source="ShuffleNet V2 (Ma et al. 2018), Table 8 (the table number as issue 13 cites it; "
                                     "not checked against the paper here)",
                              statement="MobileNet V1 ran faster than MobileNet V2 on a GPU", device="GPU"),
                  bound=0.0, at_least=True),
    )),
    ArchComparison(arch="v3-large", baseline="v2", tests=(
        ClaimTest(claim=Claim(source=f"{V3_PAPER}, abstract (arXiv v5; versions 1-4 said 15 %)",
                              statement='"MobileNetV3-Large is 3.2% more accurate on ImageNet classification while '
                                        'reducing latency by 20% compared to MobileNetV2"',
                              arch="v3-large", device="Google Pixel phones", latency_change=-0.20),
                  bound=-0.20 + TOLERANCE, at_least=False),
        ClaimTest(claim=Claim(source=SURVEY + ", Sec. I",
                              statement='MobileNetV3 "optimizes the activation function to achieve a faster and lighter '
                                        'lightweight network": faster than V2'),
                  bound=0.0, at_least=False),
    )),
)
