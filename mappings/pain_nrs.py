"""Pain intensity, past week, on a 0-100 numeric rating scale (docs/instruments.md, `pain-nrs`).

No LOINC code covers 0-100 mean/maximum pain (72514-3 is the 0-10 scale), so both use the
project's own codes and values are not rescaled. Each score is its item's answer, so the item
itself (linkId = score code) is what a form renderer shows; there is no separate calculated item.
"""

from adapter.formulas import ItemValue
from adapter.instrument import Code, Instrument, Item, Score

RATINGS = (
    ("pain-mean", "Mean pain intensity, past week (NRS 0-100)", "Average pain over the past week"),
    (
        "pain-max",
        "Maximum pain intensity, past week (NRS 0-100)",
        "Maximum pain over the past week",
    ),
)

ITEMS = tuple(
    Item(
        link_id=link_id,
        text=f"{question} (0 = no pain, 100 = worst pain imaginable)",
        type="integer",
        code=Code(link_id, display),
        min_value=0,
        max_value=100,
        control="slider",
        # Each rating is its own score and needs no other: a response may hold just one.
        required=False,
    )
    for link_id, display, question in RATINGS
)

# How the follow-up report shows each rating: (label, rank); both in the chart's panel (a) with
# the FIQR, as in the case report's figure 2, and judged by the IMMPACT benchmarks.
REPORT = {"pain-max": ("Pain, maximum", 20), "pain-mean": ("Pain, mean", 30)}

SCORES = tuple(
    Score(
        code=Code(link_id, display),
        value_type="integer",
        formula=ItemValue(link_id),
        method=f"{display}: the patient's own rating, not rescaled",
        low=0,
        high=100,
        report_label=REPORT[link_id][0],
        report_rank=REPORT[link_id][1],
        report_change="immpact-pain",
        chart_panel="a",
        chart_label=f"{REPORT[link_id][0]} (NRS 0-100)",
        chart_topic="pain intensity",
    )
    for link_id, display, _ in RATINGS
)

INSTRUMENT = Instrument(
    rank=60,
    id="pain-nrs",
    title="Pain intensity, past week, 0-100",
    version="1.0.0",
    description="Rate your pain over the past week from 0 (no pain) to 100 (worst pain imaginable).",
    code=Code("pain-nrs", "Pain intensity, past week, numeric rating scale 0-100"),
    items=ITEMS,
    scores=SCORES,
    citation="Dworkin RH et al. (IMMPACT) J Pain 2008;9:105-121",
)
