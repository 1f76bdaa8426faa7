"""The responder rules of the follow-up report: one declarative table, each rule with its source.

Percent rules compare the reduction from baseline, (baseline - follow-up) / baseline x 100, with
their thresholds (largest first); band rules compare the severity bands of the score's own band
scheme in `mappings/` (not re-declared here). A score without a rule gets its change only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from adapter.report import codes

RuleKind = Literal["percent-reduction", "band-transition", "change-only"]


@dataclass(frozen=True)
class ResponderRule:
    code: str
    """Observation.method of the change Observations (a code of `adapter.report.codes`)."""
    scores: tuple[str, ...]
    """Score codes (Observation.code of the score Observations) the rule applies to."""
    kind: RuleKind
    thresholds: tuple[tuple[Fraction, str], ...]
    """(least reduction in percent, category), largest first."""
    name: str
    summary: str
    source: str
    caveat: str = ""


RULES: tuple[ResponderRule, ...] = (
    ResponderRule(
        code=codes.IMMPACT,
        scores=("pain-mean", "pain-max"),
        kind="percent-reduction",
        thresholds=((Fraction(50), codes.SUBSTANTIAL), (Fraction(30), codes.MODERATE)),
        name="IMMPACT, Dworkin 2008",
        summary=(
            "a reduction in pain intensity of 30% or more is moderately important, 50% or more "
            "substantial (percent thresholds do not depend on the scale, so they apply to 0-100 "
            "ratings)"
        ),
        source=(
            "Dworkin RH, Turk DC, Wyrwich KW, et al. Interpreting the clinical importance of "
            "treatment outcomes in chronic pain clinical trials: IMMPACT recommendations. "
            "J Pain 2008;9(2):105-121"
        ),
    ),
    ResponderRule(
        code=codes.FIQ_MCID,
        scores=("fiqr-total",),
        kind="percent-reduction",
        thresholds=((Fraction(14), codes.IMPORTANT),),
        name="minimal important change of the original FIQ, Bennett 2009",
        summary="a reduction of 14% or more is the minimal clinically important improvement",
        source=(
            "Bennett RM, Bushmakin AG, Cappelleri JC, et al. Minimal clinically important "
            "difference in the fibromyalgia impact questionnaire. J Rheumatol "
            "2009;36(6):1304-1311"
        ),
        caveat=(
            "derived for the original FIQ (pooled from three pregabalin trials); no FIQR-specific "
            "value was found, so applying it to the FIQR is an extrapolation"
        ),
    ),
    ResponderRule(
        code=codes.BAND_TRANSITION,
        scores=("70272-0", "fs-score"),
        kind="band-transition",
        thresholds=(),
        name="band transition",
        summary=(
            "the severity band at follow-up against the band at baseline, in the score's band "
            "scheme (PHQ-4: normal, mild, moderate, severe; FS: none, mild, moderate, severe, "
            "very severe)"
        ),
        source=(
            "PHQ-4 bands: Kroenke K, Spitzer RL, Williams JBW, Lowe B. Psychosomatics "
            "2009;50(6):613-621. FS bands: Wolfe F, Walitt BT, Rasker JJ, Katz RS, Hauser W. "
            "J Rheumatol 2015;42:1494-1501"
        ),
    ),
)

CHANGE_ONLY = ResponderRule(
    code=codes.CHANGE_ONLY,
    scores=(),
    kind="change-only",
    thresholds=(),
    name="change only",
    summary="no responder threshold in the project's sources: change and percent change only",
    source="",
)

_BY_SCORE = {score: rule for rule in RULES for score in rule.scores}


def rule_for(score_code: str) -> ResponderRule:
    """The rule of a score, or CHANGE_ONLY: every score gets its change, some a category."""
    return _BY_SCORE.get(score_code, CHANGE_ONLY)
