"""GAD-7 anxiety scale, last 2 weeks (docs/instruments.md, `gad7`).

Items carry their LOINC codes (panel 69737-5) and the LOINC answers of PHQ-4 (LL358-3).
"""

from adapter.formulas import Sum
from adapter.instrument import LOINC, Band, BandScheme, Code, Instrument, Item, Score
from mappings.phq4 import PFIZER_COPYRIGHT, QUESTION, frequency_item
from mappings.phq9 import DIFFICULTY, DIFFICULTY_CODE, DIFFICULTY_QUESTION

# (linkId, LOINC item code, published wording), in the order of the form. Item 6 is 69689-8:
# the contract's 69689-0 fails the LOINC check digit, and the LOINC GAD-7 form uses 69689-8.
QUESTIONS = (
    ("gad7-q1", "69725-0", "Feeling nervous, anxious or on edge"),
    ("gad7-q2", "68509-9", "Not being able to stop or control worrying"),
    ("gad7-q3", "69733-4", "Worrying too much about different things"),
    ("gad7-q4", "69734-2", "Trouble relaxing"),
    ("gad7-q5", "69735-9", "Being so restless that it is hard to sit still"),
    ("gad7-q6", "69689-8", "Becoming easily annoyed or irritable"),
    ("gad7-q7", "69736-7", "Feeling afraid as if something awful might happen"),
)
LINK_IDS = tuple(link_id for link_id, _, _ in QUESTIONS)

ITEMS = (
    *(
        frequency_item(link_id, loinc, text, f"{number}.")
        for number, (link_id, loinc, text) in enumerate(QUESTIONS, start=1)
    ),
    # The published GAD-7 form ends with the PHQ-9's difficulty question, word for word, with the
    # same answers (LL359-1): LOINC codes that question 69722-7, whatever form asks it (the
    # contract's 69726-8 was not found in LOINC material).
    Item(
        link_id="gad7-difficulty",
        text=DIFFICULTY_QUESTION,
        type="choice",
        code=DIFFICULTY_CODE,
        options=DIFFICULTY,
        control="radio-button",
        required=False,
        prefix="8.",
    ),
)

SPITZER = BandScheme(
    "Spitzer 2006 GAD-7 anxiety severity (minimal 0-4, mild 5-9, moderate 10-14, severe 15-21)",
    (
        Band("minimal", "Minimal", 0, 5),
        Band("mild", "Mild", 5, 10),
        Band("moderate", "Moderate", 10, 15),
        Band("severe", "Severe", 15, None),
    ),
)

TOTAL_SCORE = Score(
    code=Code(
        "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]", LOINC
    ),
    label="GAD-7 total score",
    value_type="integer",
    formula=Sum(LINK_IDS, "GAD-7 total"),
    method=(
        "GAD-7 total = sum of items 1-7, 0-21; every item needed, no proration; the difficulty "
        "question is not scored (Spitzer 2006)"
    ),
    bands=SPITZER,
    low=0,
    high=21,
    report_label="GAD-7 total",
    report_rank=54,
    report_change="gad7-change",
    chart_panel="c",
    chart_topic="GAD-7",
)

INSTRUMENT = Instrument(
    rank=54,
    id="gad7",
    title="GAD-7 (last 2 weeks)",
    version="1.0.0",
    description=QUESTION,
    code=Code("69737-5", "Generalized anxiety disorder 7 item (GAD-7)", LOINC),
    items=ITEMS,
    scores=(TOTAL_SCORE,),
    copyright=PFIZER_COPYRIGHT,
    citation="Spitzer RL, Kroenke K, Williams JB, Lowe B. Arch Intern Med 2006;166:1092-1097",
)
