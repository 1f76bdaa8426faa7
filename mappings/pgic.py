"""Patient Global Impression of Change, 7 points (docs/instruments.md, `pgic`).

The patient rates the change in their condition since treatment began, from 1 "very much
improved" through 4 "no change" to 7 "very much worse", the anchors of the Clinical Global
Impression of Improvement (Guy 1976) put to the patient. "Much" or "very much improved" (1-2)
is the usual responder definition.
"""

from adapter.formulas import ItemValue
from adapter.instrument import AnswerOption, Band, BandScheme, Code, Instrument, Item, Score

PGIC = "pgic"

LEVELS = tuple(
    AnswerOption(score, Code(f"pgic-{score}", display))
    for score, display in (
        (1, "Very much improved"),
        (2, "Much improved"),
        (3, "Minimally improved"),
        (4, "No change"),
        (5, "Minimally worse"),
        (6, "Much worse"),
        (7, "Very much worse"),
    )
)

QUESTION = (
    "Since you started treatment, how would you describe the change, if any, in your condition "
    "overall?"
)

# A single-item instrument: the item and the instrument share their code.
CODE = Code(PGIC, "Patient Global Impression of Change (PGIC)")

ITEMS = (
    Item(
        link_id=PGIC,
        text=QUESTION,
        type="choice",
        code=CODE,
        options=LEVELS,
        control="radio-button",
    ),
)

RESPONDER = BandScheme(
    "PGIC responder: much or very much improved (1-2) is positive, 3-7 negative",
    (
        Band("positive", "Positive", None, 3),
        Band("negative", "Negative", 3, None),
    ),
)

SCORE = Score(
    code=Code("pgic-score", "Patient Global Impression of Change (PGIC) score"),
    value_type="integer",
    formula=ItemValue(PGIC),
    method=(
        "PGIC: the answer, 1 very much improved to 7 very much worse (4 no change); a responder "
        "is much or very much improved (1-2)"
    ),
    bands=RESPONDER,
    low=1,
    high=7,
    # Already a change since treatment began: shown per visit with its responder result, never
    # compared with a baseline.
    report_label="PGIC",
    report_rank=56,
    report_change="pgic-responder",
)

INSTRUMENT = Instrument(
    rank=70,
    id="pgic",
    title="Patient Global Impression of Change",
    version="1.0.0",
    description=QUESTION,
    code=CODE,
    items=ITEMS,
    scores=(SCORE,),
    citation=(
        "Guy W. ECDEU Assessment Manual for Psychopharmacology, revised 1976 (Clinical Global "
        "Impressions); Hurst H, Bolton J. J Manipulative Physiol Ther 2004;27:26-35"
    ),
)
