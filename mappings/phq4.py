"""PHQ-4 with its PHQ-2 (depression) and GAD-2 (anxiety) subscales (docs/instruments.md, `phq4`)."""

from adapter.formulas import Sum
from adapter.instrument import LOINC, AnswerOption, Band, BandScheme, Code, Instrument, Item, Score

# LOINC answer list LL358-3, shared with PHQ-9 and GAD-7.
FREQUENCY = tuple(
    AnswerOption(score, Code(code, display, LOINC))
    for score, code, display in (
        (0, "LA6568-5", "Not at all"),
        (1, "LA6569-3", "Several days"),
        (2, "LA6570-1", "More than half the days"),
        (3, "LA6571-9", "Nearly every day"),
    )
)

QUESTION = "Over the last 2 weeks, how often have you been bothered by the following problems?"

# The copyright of the PHQ family (PHQ-4, PHQ-9, GAD-7), shared by their declarations.
PFIZER_COPYRIGHT = (
    "PHQ family: Copyright Pfizer Inc. No permission required to reproduce, translate, "
    "display or distribute."
)


def frequency_item(link_id: str, loinc: str, text: str, prefix: str | None = None) -> Item:
    """A PHQ-family question: its LOINC code, the four LOINC frequency answers, radio buttons."""
    return Item(
        link_id=link_id,
        text=text,
        type="choice",
        code=Code(loinc, text, LOINC),
        options=FREQUENCY,
        control="radio-button",
        prefix=prefix,
    )


# Items are keyed by LOINC code, never by position: published versions order them differently.
ITEMS = tuple(
    frequency_item(link_id, loinc, text)
    for link_id, loinc, text in (
        ("phq4-nervous", "69725-0", "Feeling nervous, anxious or on edge"),
        ("phq4-worry", "68509-9", "Not being able to stop or control worrying"),
        ("phq4-interest", "44250-9", "Little interest or pleasure in doing things"),
        ("phq4-down", "44255-8", "Feeling down, depressed, or hopeless"),
    )
)

ANXIETY = ("phq4-nervous", "phq4-worry")
DEPRESSION = ("phq4-interest", "phq4-down")

KROENKE = BandScheme(
    "Kroenke 2009 PHQ-4 psychological distress (normal 0-2, mild 3-5, moderate 6-8, severe 9-12)",
    (
        Band("normal", "Normal", 0, 3),
        Band("mild", "Mild", 3, 6),
        Band("moderate", "Moderate", 6, 9),
        Band("severe", "Severe", 9, None),
    ),
)


def _screen(name: str) -> BandScheme:
    return BandScheme(
        f"{name} screen, cut-off 3 (Kroenke 2009): positive >= 3, else negative",
        (Band("negative", "Negative", None, 3), Band("positive", "Positive", 3, None)),
    )


ANXIETY_SCORE = Score(
    code=Code("phq4-anxiety", "PHQ-4 anxiety subscale (GAD-2) score"),
    value_type="integer",
    formula=Sum(ANXIETY, "PHQ-4 anxiety subscale"),
    method="GAD-2 = nervous + worry, 0-6; both items needed (Kroenke 2009)",
    bands=_screen("GAD-2 anxiety"),
    low=0,
    high=6,
)
DEPRESSION_SCORE = Score(
    code=Code(
        "55758-7", "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]", LOINC
    ),
    label="PHQ-4 depression subscale (PHQ-2) score",
    value_type="integer",
    formula=Sum(DEPRESSION, "PHQ-4 depression subscale"),
    method="PHQ-2 = interest + down, 0-6; both items needed (Kroenke 2009)",
    bands=_screen("PHQ-2 depression"),
    low=0,
    high=6,
)
TOTAL_SCORE = Score(
    code=Code("70272-0", "Patient Health Questionnaire-4 (PHQ-4) total score [Reported]", LOINC),
    label="PHQ-4 total score",
    value_type="integer",
    formula=Sum(ANXIETY + DEPRESSION, "PHQ-4 total"),
    method="PHQ-4 total = sum of the 4 items, 0-12; all items needed (Kroenke 2009)",
    members=("phq4-anxiety", "55758-7"),
    bands=KROENKE,
    low=0,
    high=12,
    report_label="PHQ-4 total",
    report_rank=50,
    report_change="band-transition",
    chart_panel="b",
    chart_topic="PHQ-4",
)

INSTRUMENT = Instrument(
    rank=50,
    id="phq4",
    title="PHQ-4 (last 2 weeks)",
    version="1.0.0",
    description=QUESTION,
    code=Code("69724-3", "Patient Health Questionnaire-4 (PHQ-4)", LOINC),
    items=ITEMS,
    scores=(ANXIETY_SCORE, DEPRESSION_SCORE, TOTAL_SCORE),
    copyright=PFIZER_COPYRIGHT,
    citation="Kroenke K, Spitzer RL, Williams JB, Lowe B. Psychosomatics 2009;50:613-621",
)
