"""ACR 2010/2011 fibromyalgia criteria, self-report survey (docs/instruments.md, `fm2011`).

The same WPI and SSS items and duration question as fm2016 (the 2011 modification made the 2010
criteria a self-report survey), judged by the older rule, so legacy records are judged by the
rule they were collected under: WPI >= 7 and SSS >= 5, or WPI 3-6 and SSS >= 9, and symptoms at a
similar level for at least 3 months. There is no generalized-pain requirement. The third 2010
condition (no other disorder that would sufficiently explain the pain) is not asked by the
survey and is not assessed. The result is an Observation, never a Condition.
"""

from adapter.formulas import AcrCriteria, SeverityRule
from adapter.instrument import Code, Instrument, Score
from mappings import fm2016, sss, wpi

CRITERIA = Score(
    code=Code("acr2011-criteria", "ACR 2010/2011 fibromyalgia survey criteria met (self-report)"),
    label=(
        "ACR 2010/2011 fibromyalgia survey criteria met (self-report): the survey's rule only; "
        "the 2010 condition that no other disorder explains the pain is not assessed by the "
        "survey, so this is not a diagnosis (Wolfe 2010, 2011)"
    ),
    value_type="boolean",
    formula=AcrCriteria(
        wpi=wpi.WPI_SCORE.formula,
        sss=sss.SSS_SCORE.formula,
        duration=fm2016.DURATION,
        severity=(SeverityRule(7, None, 5), SeverityRule(3, 6, 9)),
        label="ACR 2010/2011 criteria",
    ),
    method=(
        "ACR 2010 criteria in the 2011 self-report modification (Wolfe 2010, Wolfe 2011): "
        "(WPI >= 7 and SSS >= 5, or WPI 3-6 and SSS >= 9) and symptoms at a similar level >= 3 "
        "months; no generalized-pain requirement; the condition that no other disorder explains "
        "the pain is not assessed; valid for research, not for diagnosing an individual"
    ),
    members=("wpi-score", "sss-score"),
    report_label="ACR 2010/2011 survey criteria (self-report)",
    report_rank=85,
)

INSTRUMENT = Instrument(
    rank=35,
    id="fm2011",
    title="ACR 2010/2011 fibromyalgia criteria, self-report survey",
    version="1.0.0",
    description=(
        "Self-report survey of the ACR 2010 fibromyalgia criteria as modified in 2011: Widespread "
        "Pain Index, Symptom Severity Scale and symptom duration, judged by the 2010/2011 rule. "
        "For records collected under that rule; new surveys use the 2016 revision (fm2016). "
        "Criteria met on self-report is a research classification, not a diagnosis."
    ),
    code=Code("fm2011", "ACR 2010/2011 fibromyalgia criteria, self-report survey"),
    items=fm2016.ITEMS,
    scores=(wpi.WPI_SCORE, sss.SSS_SCORE, CRITERIA),
    citation=("Wolfe F et al. Arthritis Care Res 2010;62:600-610; J Rheumatol 2011;38:1113-1122"),
)
