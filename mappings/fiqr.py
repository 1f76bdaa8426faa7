"""Revised Fibromyalgia Impact Questionnaire, past 7 days (docs/instruments.md, `fiqr`).

The items and anchors are the published wording (Bennett et al. 2009), copyright its authors;
the FIQR is distributed by the Fibromyalgia Information Foundation.
"""

from adapter.formulas import ProratedSum, Total
from adapter.instrument import Band, BandScheme, Code, Instrument, Item, Score

FUNCTION = (
    "Brush or comb your hair",
    "Walk continuously for 20 minutes",
    "Prepare a homemade meal",
    "Vacuum, scrub or sweep floors",
    "Lift and carry a bag full of groceries",
    "Climb one flight of stairs",
    "Change bed sheets",
    "Sit in a chair for 45 minutes",
    "Go shopping for groceries",
)
OVERALL = (
    "Fibromyalgia prevented me from accomplishing goals for the week",
    "I was completely overwhelmed by my fibromyalgia symptoms",
)
# (topic, anchor 0, anchor 10); 10 is the worst for every item, no reverse scoring (3.1).
SYMPTOMS = (
    ("Pain", "no pain", "unbearable pain"),
    ("Energy", "lots of energy", "no energy"),
    ("Stiffness", "no stiffness", "severe stiffness"),
    ("Quality of sleep", "awoke well rested", "awoke very tired"),
    ("Depression", "not depressed", "very depressed"),
    ("Memory problems", "good memory", "very poor memory"),
    ("Anxiety", "not anxious", "very anxious"),
    ("Tenderness to touch", "no tenderness", "very tender"),
    ("Balance problems", "no imbalance", "severe imbalance"),
    (
        "Sensitivity to loud noises, bright lights, odors and cold",
        "no sensitivity",
        "extreme sensitivity",
    ),
)


def _rating(link_id: str, prefix: str, topic: str, anchors: str, required: bool = True) -> Item:
    return Item(
        link_id=link_id,
        text=f"{topic} ({anchors})",
        type="integer",
        code=Code(link_id, f"FIQR {prefix}: {topic}"),
        min_value=0,
        max_value=10,
        control="slider",
        prefix=prefix,
        required=required,
    )


# Not `required`: the function domain tolerates one unanswered item (prorated), so a completed
# response may lack one; two or more leave the domain and the total out (dataAbsentReason).
FUNCTION_ITEMS = tuple(
    _rating(f"fiqr-f{n}", f"F{n}", topic, "0 = no difficulty, 10 = very difficult", False)
    for n, topic in enumerate(FUNCTION, 1)
)
OVERALL_ITEMS = tuple(
    _rating(f"fiqr-o{n}", f"O{n}", topic, "0 = never, 10 = always")
    for n, topic in enumerate(OVERALL, 1)
)
SYMPTOM_ITEMS = tuple(
    _rating(f"fiqr-s{n}", f"S{n}", topic, f"0 = {low}, 10 = {high}")
    for n, (topic, low, high) in enumerate(SYMPTOMS, 1)
)


def _ids(items: tuple[Item, ...]) -> tuple[str, ...]:
    return tuple(item.link_id for item in items)


# The default, as the project has always banded: attributed to Bennett et al. 2009, a study of
# the ORIGINAL FIQ, and reused for the FIQR; the exact cut-offs were not found in a readable copy
# of the source (docs/instruments.md). The name says so in every Observation.
BENNETT = BandScheme(
    "FIQ severity, Bennett 2009, derived for the original FIQ and applied to the FIQR "
    "(mild < 39, moderate 39 to < 59, severe >= 59)",
    (
        Band("mild", "Mild", None, 39),
        Band("moderate", "Moderate", 39, 59),
        Band("severe", "Severe", 59, None),
    ),
    id="bennett-fiq",
)
# FIQR-specific, five states (Salaffi et al., Rheumatology 2020; 2,339 patients): remission 0-23,
# mild 24-40, moderate 41-63, severe 64-82, very severe above 83 as published. FIQR totals are
# not whole numbers, so each band runs up to the next one's published lower bound (half-open),
# and 83, unassigned as published, opens "very severe".
SALAFFI_2020 = BandScheme(
    "FIQR severity, Salaffi 2020 (remission < 24, mild 24 to < 41, moderate 41 to < 64, "
    "severe 64 to < 83, very severe >= 83)",
    (
        Band("remission", "Remission", None, 24),
        Band("mild", "Mild", 24, 41),
        Band("moderate", "Moderate", 41, 64),
        Band("severe", "Severe", 64, 83),
        Band("very-severe", "Very severe", 83, None),
    ),
    id="salaffi-2020",
)

FUNCTION_SCORE = Score(
    code=Code("fiqr-function", "FIQR function domain score"),
    value_type="decimal",
    formula=ProratedSum(_ids(FUNCTION_ITEMS), 3, 1, "FIQR function"),
    method=(
        "FIQR function = sum(F1..F9) / 3, 0-30; exactly one missing item is prorated (sum x 9/8); "
        "two or more missing: not computed (Bennett 2009; fiqr.info)"
    ),
    low=0,
    high=30,
)
OVERALL_SCORE = Score(
    code=Code("fiqr-overall", "FIQR overall impact domain score"),
    value_type="decimal",
    formula=ProratedSum(_ids(OVERALL_ITEMS), 1, 0, "FIQR overall impact"),
    method="FIQR overall impact = O1 + O2, 0-20; any missing item: not computed (fiqr.info)",
    low=0,
    high=20,
)
SYMPTOMS_SCORE = Score(
    code=Code("fiqr-symptoms", "FIQR symptoms domain score"),
    value_type="decimal",
    formula=ProratedSum(_ids(SYMPTOM_ITEMS), 2, 0, "FIQR symptoms"),
    method="FIQR symptoms = sum(S1..S10) / 2, 0-50; any missing item: not computed (fiqr.info)",
    low=0,
    high=50,
)
TOTAL_SCORE = Score(
    code=Code("fiqr-total", "FIQR total score"),
    value_type="decimal",
    formula=Total(
        (FUNCTION_SCORE.formula, OVERALL_SCORE.formula, SYMPTOMS_SCORE.formula), "FIQR total"
    ),
    method="FIQR total = function + overall impact + symptoms, 0-100 (Bennett 2009)",
    members=("fiqr-function", "fiqr-overall", "fiqr-symptoms"),
    bands=BENNETT,
    band_options=(SALAFFI_2020,),
    low=0,
    high=100,
    report_label="FIQR total",
    report_rank=10,
    report_change="fiq-mcid",
    chart_panel="a",
    chart_label="FIQR total",
)

INSTRUMENT = Instrument(
    rank=40,
    id="fiqr",
    title="Revised Fibromyalgia Impact Questionnaire (past 7 days)",
    version="1.0.0",
    description=(
        "For each item, choose the number that best describes the past 7 days. If you did not "
        "do an activity in the past 7 days, rate the last time you did it; if you cannot do it "
        "at all, choose 10."
    ),
    code=Code("fiqr", "Revised Fibromyalgia Impact Questionnaire"),
    items=(*FUNCTION_ITEMS, *OVERALL_ITEMS, *SYMPTOM_ITEMS),
    scores=(FUNCTION_SCORE, OVERALL_SCORE, SYMPTOMS_SCORE, TOTAL_SCORE),
    copyright=(
        "FIQR: copyright its authors (Bennett RM, Friend R, Jones KD, Ward R, Han BK, Ross RL; "
        "Arthritis Res Ther 2009;11:R120, doi 10.1186/ar2783); the items and their anchors are "
        "the published wording. Distributed by the Fibromyalgia Information Foundation."
    ),
    citation="Bennett RM et al. Arthritis Res Ther 2009;11:R120, doi 10.1186/ar2783",
)
