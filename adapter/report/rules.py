"""The change rules of the follow-up report: a catalogue keyed by code, each rule with its source.

Which rule a score gets is declared on the score (`Score.report_change` in `mappings/`), never
here: this module only defines the rules. `rule_of` resolves a score to its rule (`rule_for` by
score code); a score that names none gets band transition when it has bands, else its change
only; flags and yes/no results get no change.

Percent rules compare the reduction from baseline, (baseline - follow-up) / baseline x 100, with
their thresholds (largest first), and a rise with the same thresholds upward; points rules
compare the change in points with the score's individual change, with response and remission
beside it; every compared score with bands also shows its band transition; band rules compare the severity bands of the score's own band
scheme in `mappings/` (not re-declared here); per-visit rules read each visit's band alone (a
score that is itself a change, the PGIC) and compute no change from baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from adapter import registry
from adapter import report_codes as codes
from adapter.instrument import Score

RuleKind = Literal[
    "percent-reduction", "points-change", "band-transition", "change-only", "per-visit", "none"
]


@dataclass(frozen=True)
class ResponderRule:
    code: str
    """Observation.method of the change Observations (a code of `adapter.report_codes`)."""
    kind: RuleKind
    thresholds: tuple[tuple[Fraction, str], ...]
    """(least reduction in percent, category), largest first."""
    name: str
    summary: str
    source: str
    caveat: str = ""
    per_band: tuple[tuple[str, str], ...] = ()
    """Per-visit rules: (band code of the score's scheme, category)."""
    worse_thresholds: tuple[tuple[Fraction, str], ...] = ()
    """Percent rules: (least rise in percent, category), largest first: the same benchmarks
    applied to worsening, so a rise of 1 from 50 is no more "worse" than a fall of 1 is better."""
    points: Fraction | None = None
    """Points rules: the least individual change, in score points, either way."""
    response: Fraction | None = None
    """Points rules: the least fall, in percent, that is a response."""
    remission_below: Fraction | None = None
    """Points rules: a follow-up below this is a remission."""

    @property
    def compares(self) -> bool:
        """Whether the rule compares follow-ups with a baseline (a change from baseline)."""
        return self.kind in ("percent-reduction", "points-change", "band-transition", "change-only")

    def category_of(self, band_code: str | None) -> str | None:
        """Per-visit rules: the category of a visit's band; None for other rules."""
        return dict(self.per_band).get(band_code) if band_code else None


IMMPACT = ResponderRule(
    code=codes.IMMPACT,
    kind="percent-reduction",
    thresholds=(
        (Fraction(50), codes.SUBSTANTIAL),
        (Fraction(30), codes.MODERATE),
        (Fraction(10), codes.MINIMAL),
    ),
    worse_thresholds=(
        (Fraction(50), codes.SUBSTANTIAL_WORSE),
        (Fraction(30), codes.MODERATE_WORSE),
        (Fraction(10), codes.MINIMAL_WORSE),
    ),
    name="IMMPACT, Dworkin 2008",
    summary=(
        "a change in pain intensity of 10% to 20% is minimally important (the project takes "
        "10%, the lower end, as the threshold), 30% or more moderately important, 50% or more "
        "substantial; the same thresholds are applied to a rise (worsening), so a rise below "
        "10% is no important change (percent thresholds do not depend on the scale, so they "
        "apply to 0-100 ratings)"
    ),
    source=(
        "Dworkin RH, Turk DC, Wyrwich KW, et al. Interpreting the clinical importance of "
        "treatment outcomes in chronic pain clinical trials: IMMPACT recommendations. "
        "J Pain 2008;9(2):105-121"
    ),
    caveat=(
        "IMMPACT defines the benchmarks for reductions; applying them to a rise is the "
        "project's symmetric reading"
    ),
)
FIQ_MCID = ResponderRule(
    code=codes.FIQ_MCID,
    kind="percent-reduction",
    thresholds=((Fraction(14), codes.IMPORTANT),),
    worse_thresholds=((Fraction(14), codes.IMPORTANT_WORSE),),
    name="14% change, derived for the original FIQ (Bennett 2009)",
    summary=(
        "a fall of 14% or more is the minimal clinically important difference estimated for "
        "the original FIQ; it marks a change at least that large, not how large it is (a fall "
        "from severe to mild is shown by the band transition beside it); a rise of 14% or more "
        "is read the same way upward"
    ),
    source=(
        "Bennett RM, Bushmakin AG, Cappelleri JC, et al. Minimal clinically important "
        "difference in the fibromyalgia impact questionnaire. J Rheumatol "
        "2009;36(6):1304-1311"
    ),
    caveat=(
        "derived for the original FIQ (pooled from three pregabalin trials); no FIQR-specific "
        "value was found, so applying it to the FIQR is an extrapolation"
    ),
)
PHQ9_CHANGE = ResponderRule(
    code=codes.PHQ9_CHANGE,
    kind="points-change",
    thresholds=(),
    points=Fraction(5),
    response=Fraction(50),
    remission_below=Fraction(5),
    name="PHQ-9 individual change, response and remission",
    summary=(
        "a change of 5 points or more either way is an individual (reliable) change, the "
        "minimal clinically important difference for individual change (Lowe 2004); beside "
        "it: response, a fall of 50% or more, and remission, a follow-up below 5 (Kroenke & "
        "Spitzer 2002), and the band transition"
    ),
    source=(
        "Lowe B, Unutzer J, Callahan CM, Perkins AJ, Kroenke K. Monitoring depression "
        "treatment outcomes with the Patient Health Questionnaire-9. Med Care "
        "2004;42(12):1194-1201; Kroenke K, Spitzer RL. The PHQ-9: a new depression diagnostic "
        "and severity measure. Psychiatr Ann 2002;32(9):509-515"
    ),
)
GAD7_CHANGE = ResponderRule(
    code=codes.GAD7_CHANGE,
    kind="points-change",
    thresholds=(),
    points=Fraction(4),
    response=Fraction(50),
    remission_below=Fraction(5),
    name="GAD-7 individual change, response and remission",
    summary=(
        "a change of 4 points or more either way is the GAD-7's minimal clinically important "
        "difference (Toussaint 2020; the 5 points of Lowe 2004 were derived for the PHQ-9); "
        "beside it: response, a fall of 50% or more, and remission, a follow-up below 5 (the "
        "minimal band of Spitzer 2006), read as for the PHQ-9, and the band transition"
    ),
    source=(
        "Toussaint A, Husing P, Gumz A, et al. Sensitivity to change and minimal clinically "
        "important difference of the 7-item Generalized Anxiety Disorder Questionnaire "
        "(GAD-7). J Affect Disord 2020;265:395-401"
    ),
    caveat=(
        "response and remission are the PHQ-9's definitions carried over to the GAD-7 (no "
        "GAD-7-specific definition was read)"
    ),
)
BAND_TRANSITION = ResponderRule(
    code=codes.BAND_TRANSITION,
    kind="band-transition",
    thresholds=(),
    name="band transition",
    summary=(
        "the severity band at follow-up against the band at baseline, in the score's own band "
        "scheme, ordered from the least to the most severe"
    ),
    source="",  # the score's band scheme, which names its source (mappings/)
)
PGIC_RESPONDER = ResponderRule(
    code=codes.PGIC_RESPONDER,
    kind="per-visit",
    thresholds=(),
    name="PGIC responder",
    summary=(
        "the PGIC asks for the change since treatment began, so it is not compared with a "
        "baseline: each answer is shown with its result, much or very much improved (1-2) "
        "being a responder, at least a moderately important improvement in IMMPACT's reading"
    ),
    source=(
        "Hurst H, Bolton J. J Manipulative Physiol Ther 2004;27(1):26-35 (the PGIC as the "
        "patient's rating of change); Pregabalin in fibromyalgia - responder analysis from "
        "individual patient data. BMC Musculoskelet Disord 2010;11:150 and Dworkin 2008 (the "
        "IMMPACT reading of much and very much improved)"
    ),
    per_band=(("positive", codes.RESPONDER), ("negative", codes.NOT_RESPONDER)),
)

RULES: tuple[ResponderRule, ...] = (
    IMMPACT, FIQ_MCID, PHQ9_CHANGE, GAD7_CHANGE, BAND_TRANSITION, PGIC_RESPONDER
)  # fmt: skip
"""The rules that give a result (a category, or a band per visit), each with its source."""

CHANGE_ONLY = ResponderRule(
    code=codes.CHANGE_ONLY,
    kind="change-only",
    thresholds=(),
    name="change only",
    summary="no responder threshold in the project's sources: change and percent change only",
    source="",
)

NONE = "none"
NO_CHANGE = ResponderRule(
    code=NONE,
    kind="none",
    thresholds=(),
    name="no change",
    summary="shown at each visit; no change from baseline is computed",
    source="",
)
"""Flags and yes/no results, or a score that declares `report_change="none"`; never emitted."""

CATALOGUE: Mapping[str, ResponderRule] = {
    rule.code: rule for rule in (*RULES, CHANGE_ONLY, NO_CHANGE)
}
"""Every rule by the code a score names in `Score.report_change`."""


def rule_of(score: Score) -> ResponderRule:
    """The rule a score declares, or its default; a code not in the catalogue is an error."""
    code = score.report_change
    if code is None:
        if score.emit == "when-computed" or score.value_type == "boolean":
            return NO_CHANGE
        return BAND_TRANSITION if score.bands is not None else CHANGE_ONLY
    rule = CATALOGUE.get(code)
    if rule is None:
        known = ", ".join(CATALOGUE)
        raise ValueError(
            f"score {score.code.code}: report_change {code!r} is not a rule of the report; "
            f"known: {known}"
        )
    return rule


def rule_for(score_code: str) -> ResponderRule:
    """The rule of a declared score by its code; CHANGE_ONLY for a code no mapping declares."""
    score = registry.scores().get(score_code)
    return CHANGE_ONLY if score is None else rule_of(score)
