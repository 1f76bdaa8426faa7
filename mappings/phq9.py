"""PHQ-9 depression scale, last 2 weeks (docs/instruments.md, `phq9`).

Items carry their LOINC codes (panel 44249-1) and the LOINC answers of PHQ-4 (LL358-3). Item 9
(thoughts of death or self-harm) is surfaced on its own, whatever the total: an Observation
coded with LOINC 44260-8 and its LOINC answer for every response (positive above 0, negative at
0, a dataAbsentReason when unanswered), and a FHIR Flag when it is above 0.
"""

from adapter.formulas import ItemValue, Sum
from adapter.instrument import LOINC, AnswerOption, Band, BandScheme, Code, Instrument, Item, Score
from mappings.phq4 import PFIZER_COPYRIGHT, QUESTION, frequency_item

# LOINC answer list LL359-1 (perceived difficulty); the order of LA6575-0 and LA6574-3 is LOINC's.
DIFFICULTY = tuple(
    AnswerOption(score, Code(code, display, LOINC))
    for score, code, display in (
        (0, "LA6572-7", "Not difficult at all"),
        (1, "LA6573-5", "Somewhat difficult"),
        (2, "LA6575-0", "Very difficult"),
        (3, "LA6574-3", "Extremely difficult"),
    )
)
DIFFICULTY_CODE = Code(
    "69722-7",
    "How difficult have these made it for you to do your work, take care of things at home, or "
    "get along with other people",
    LOINC,
)
DIFFICULTY_QUESTION = (
    "If you checked off any problems, how difficult have these problems made it for you to do "
    "your work, take care of things at home, or get along with other people?"
)

# (linkId, LOINC item code, published wording), in the order of the form.
QUESTIONS = (
    ("phq9-q1", "44250-9", "Little interest or pleasure in doing things"),
    ("phq9-q2", "44255-8", "Feeling down, depressed, or hopeless"),
    ("phq9-q3", "44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("phq9-q4", "44254-1", "Feeling tired or having little energy"),
    ("phq9-q5", "44251-7", "Poor appetite or overeating"),
    (
        "phq9-q6",
        "44258-2",
        "Feeling bad about yourself - or that you are a failure or have let yourself or your "
        "family down",
    ),
    (
        "phq9-q7",
        "44252-5",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
    ),
    (
        "phq9-q8",
        "44253-3",
        "Moving or speaking so slowly that other people could have noticed. Or the opposite - "
        "being so fidgety or restless that you have been moving around a lot more than usual",
    ),
    (
        "phq9-q9",
        "44260-8",
        "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ),
)
LINK_IDS = tuple(link_id for link_id, _, _ in QUESTIONS)
SELF_HARM = "phq9-q9"

ITEMS = (
    *(
        frequency_item(link_id, loinc, text, f"{number}.")
        for number, (link_id, loinc, text) in enumerate(QUESTIONS, start=1)
    ),
    Item(
        link_id="phq9-difficulty",
        text=DIFFICULTY_QUESTION,
        type="choice",
        code=DIFFICULTY_CODE,
        options=DIFFICULTY,
        control="radio-button",
        required=False,
        prefix="10.",
    ),
)

KROENKE = BandScheme(
    "Kroenke 2001 PHQ-9 depression severity (minimal 0-4, mild 5-9, moderate 10-14, "
    "moderately severe 15-19, severe 20-27)",
    (
        Band("minimal", "Minimal", 0, 5),
        Band("mild", "Mild", 5, 10),
        Band("moderate", "Moderate", 10, 15),
        Band("moderately-severe", "Moderately severe", 15, 20),
        Band("severe", "Severe", 20, None),
    ),
)

TOTAL_SCORE = Score(
    code=Code(
        "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", LOINC
    ),
    label="PHQ-9 total score",
    value_type="integer",
    formula=Sum(LINK_IDS, "PHQ-9 total"),
    method=(
        "PHQ-9 total = sum of items 1-9, 0-27; every item needed, no proration; the difficulty "
        "question is not scored (Kroenke 2001)"
    ),
    bands=KROENKE,
    low=0,
    high=27,
    report_label="PHQ-9 total",
    report_rank=52,
    report_change="phq9-change",
    chart_panel="c",
    chart_topic="PHQ-9",
)

# LOINC's long common name of 44260-8, as LOINC writes it (the US Core PHQ-9 item example).
ITEM_9 = Code(
    "44260-8",
    "Thoughts that you would be better off dead, or of hurting yourself in some way in last 2 "
    "weeks [Reported.PHQ]",
    LOINC,
)

SELF_HARM_FLAG = Score(
    code=Code("phq9-q9-flag", "PHQ-9 item 9: thoughts of death or of self-harm (the flag)"),
    codings=(ITEM_9,),
    label="PHQ-9 item 9, thoughts of death or self-harm",
    value_type="integer",
    formula=ItemValue(SELF_HARM),
    method=(
        "PHQ-9 item 9 (thoughts that you would be better off dead, or of hurting yourself) as "
        "answered, with its LOINC answer: above 0 (several days or more) raises the flag, "
        "whatever the total; 0 is an explicit negative; unanswered is not a negative and is "
        "sent with a dataAbsentReason"
    ),
    bands=BandScheme(
        "PHQ-9 item 9: positive when answered above 0 (for clinician review, whatever the "
        "total), negative when answered 0",
        (Band("negative", "Negative", 0, 1), Band("positive", "Positive", 1, None)),
    ),
    low=0,
    high=3,
    answer_item=SELF_HARM,
    alert=(
        "PHQ-9 item 9 answered above 0 (thoughts of death or of self-harm): a clinician "
        "reviews it and assesses suicide risk following the clinic's protocol"
    ),
    # A flag: the report lists it at the top whenever it is raised, and says when it is
    # unanswered; never compared with a baseline.
    report_label="PHQ-9 item 9 (self-harm thoughts)",
    report_rank=53,
    report_change="none",
)

INSTRUMENT = Instrument(
    rank=52,
    id="phq9",
    title="PHQ-9 (last 2 weeks)",
    version="1.0.0",
    description=QUESTION,
    code=Code("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]", LOINC),
    items=ITEMS,
    scores=(TOTAL_SCORE, SELF_HARM_FLAG),
    copyright=PFIZER_COPYRIGHT,
    citation="Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med 2001;16:606-613",
)
