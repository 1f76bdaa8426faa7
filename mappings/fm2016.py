"""ACR 2016 fibromyalgia criteria, self-report survey (docs/instruments.md, `fm2016`).

Reuses the WPI and SSS declarations as groups, so their items and scores exist only once.
The result is an Observation "criteria met (self-report)", never a Condition: the self-report
version is valid for research, not for diagnosing an individual (Wolfe 2016).
"""

from adapter.formulas import AcrCriteria, SeverityRule, Total
from adapter.instrument import Band, BandScheme, Code, Instrument, Item, Score
from mappings import sss, wpi

DURATION = "fm-duration-3m"

FS_BANDS = BandScheme(
    "Wolfe 2015 polysymptomatic distress categories (J Rheumatol 2015;42:1494)",
    (
        Band("none", "None", 0, 4),
        Band("mild", "Mild", 4, 8),
        Band("moderate", "Moderate", 8, 12),
        Band("severe", "Severe", 12, 20),
        Band("very-severe", "Very severe", 20, None),
    ),
)

# The WPI and SSS groups and the duration question: the 2010/2011 survey (fm2011) asks the same.
ITEMS = (
    Item(link_id="wpi", text=wpi.QUESTION, type="group", children=wpi.ITEMS),
    Item(link_id="sss", text="Symptom Severity Scale", type="group", children=sss.ITEMS),
    Item(
        link_id=DURATION,
        text="Have the symptoms above been present at a similar level for at least 3 months?",
        type="boolean",
        code=Code(DURATION, "Symptoms at a similar level for at least 3 months"),
    ),
)

FS_SCORE = Score(
    code=Code("fs-score", "Fibromyalgia severity (FS) scale, polysymptomatic distress"),
    value_type="integer",
    formula=Total((wpi.WPI_SCORE.formula, sss.SSS_SCORE.formula), "FS"),
    method="FS (polysymptomatic distress) = WPI + SSS (Wolfe 2011), 0-31",
    members=("wpi-score", "sss-score"),
    bands=FS_BANDS,
    low=0,
    high=31,
    report_label="FS (WPI + SSS)",
    report_rank=60,
    report_change="band-transition",
)

CRITERIA = Score(
    code=Code("acr2016-criteria", "ACR 2016 fibromyalgia survey criteria met (self-report)"),
    label=(
        "ACR 2016 fibromyalgia survey criteria met (self-report): the survey's rule only; a "
        "clinician's evaluation, including of other disorders, is not part of the survey, so "
        "this is not a diagnosis (Wolfe 2016)"
    ),
    value_type="boolean",
    formula=AcrCriteria(
        wpi=wpi.WPI_SCORE.formula,
        sss=sss.SSS_SCORE.formula,
        duration=DURATION,
        severity=(SeverityRule(7, None, 5), SeverityRule(4, 6, 9)),
        label="ACR 2016 criteria",
        regions=wpi.GP_REGIONS.formula,
        min_regions=4,
    ),
    method=(
        "ACR 2016 revised criteria, self-report (Wolfe 2016): (WPI >= 7 and SSS >= 5, or WPI 4-6 "
        "and SSS >= 9) and generalized pain in >= 4 of 5 regions and symptoms >= 3 months: "
        "survey criteria met; the self-report survey is valid for research, not for diagnosing "
        "an individual, and a clinician's evaluation (other disorders included) is not assessed"
    ),
    members=("wpi-score", "sss-score", "gp-regions"),
    report_label="ACR 2016 survey criteria (self-report)",
    report_rank=80,
)

INSTRUMENT = Instrument(
    rank=30,
    id="fm2016",
    title="ACR 2016 fibromyalgia criteria, self-report survey",
    version="1.0.0",
    description=(
        "Self-report survey of the 2016 revised ACR fibromyalgia criteria: Widespread Pain Index, "
        "Symptom Severity Scale and symptom duration. Criteria met on self-report is a research "
        "classification, not a diagnosis."
    ),
    code=Code("fm2016", "ACR 2016 fibromyalgia criteria, self-report survey"),
    items=ITEMS,
    scores=(wpi.WPI_SCORE, wpi.GP_REGIONS, sss.SSS_SCORE, FS_SCORE, CRITERIA),
    citation="Wolfe F et al. Semin Arthritis Rheum 2016;46:319-329",
)
