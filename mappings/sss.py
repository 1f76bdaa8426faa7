"""Symptom Severity Scale, 2011/2016 self-report variant (docs/instruments.md, `sss`)."""

from adapter.formulas import Sum
from adapter.instrument import AnswerOption, Code, Instrument, Item, Score

LEVELS = tuple(
    AnswerOption(score, Code(f"sss-level-{score}", display))
    for score, display in (
        (0, "No problem"),
        (1, "Slight or mild problems: generally mild or intermittent"),
        (2, "Moderate: considerable problems, often present and/or at a moderate level"),
        (3, "Severe: pervasive, continuous, life-disturbing problems"),
    )
)

CORE = (
    ("sss-fatigue", "Fatigue"),
    ("sss-unrefreshed", "Waking unrefreshed"),
    ("sss-cognitive", "Cognitive symptoms (trouble thinking or remembering)"),
)
SOMATIC = (
    ("sss-headache", "Headaches"),
    ("sss-abdominal", "Pain or cramps in the lower abdomen"),
    ("sss-depression", "Depression"),
)

CORE_QUESTION = "How severe has each of these problems been over the past week?"
SOMATIC_QUESTION = "Have you had any of these during the previous 6 months?"

ITEMS = (
    *(
        Item(
            link_id=link_id,
            text=f"{text} (past week)",
            type="choice",
            code=Code(link_id, f"SSS: {text.lower()}, past week"),
            options=LEVELS,
            control="radio-button",
        )
        for link_id, text in CORE
    ),
    *(
        Item(
            link_id=link_id,
            text=f"{text} (previous 6 months)",
            type="boolean",
            code=Code(link_id, f"SSS: {text.lower()}, previous 6 months"),
        )
        for link_id, text in SOMATIC
    ),
)

LINK_IDS = tuple(item.link_id for item in ITEMS)

SSS_SCORE = Score(
    code=Code("sss-score", "Symptom Severity Scale (SSS) score"),
    value_type="integer",
    formula=Sum(LINK_IDS, "SSS"),
    method=(
        "SSS 2011/2016 self-report: fatigue, waking unrefreshed and cognitive symptoms 0-3 each "
        "(past week) plus headaches, lower abdominal pain or cramps and depression 0/1 each "
        "(previous 6 months); 0-12"
    ),
    low=0,
    high=12,
    report_label="SSS",
    report_rank=40,
    chart_panel="b",
    chart_topic="Symptom severity (SSS)",
)

INSTRUMENT = Instrument(
    rank=20,
    id="sss",
    title="Symptom Severity Scale, 2011/2016 self-report",
    version="1.0.0",
    description=f"{CORE_QUESTION} {SOMATIC_QUESTION}",
    code=Code("sss", "Symptom Severity Scale"),
    items=ITEMS,
    scores=(SSS_SCORE,),
    citation="Wolfe F et al. J Rheumatol 2011;38:1113; Semin Arthritis Rheum 2016;46:319-329",
)
