"""Widespread Pain Index, past week (docs/instruments.md, `wpi`; ACR 2010/2011/2016)."""

from adapter.formulas import RegionCount, Sum
from adapter.instrument import Code, Instrument, Item, Score

# (linkId, ACR wording, 2016 region; None where the area is excluded from generalized pain)
AREAS: tuple[tuple[str, str, int | None], ...] = (
    ("wpi-jaw-l", "Jaw, left", None),
    ("wpi-jaw-r", "Jaw, right", None),
    ("wpi-shoulder-l", "Shoulder girdle, left", 1),
    ("wpi-shoulder-r", "Shoulder girdle, right", 2),
    ("wpi-upper-arm-l", "Upper arm, left", 1),
    ("wpi-upper-arm-r", "Upper arm, right", 2),
    ("wpi-lower-arm-l", "Lower arm, left", 1),
    ("wpi-lower-arm-r", "Lower arm, right", 2),
    ("wpi-hip-l", "Hip (buttock, trochanter), left", 3),
    ("wpi-hip-r", "Hip (buttock, trochanter), right", 4),
    ("wpi-upper-leg-l", "Upper leg, left", 3),
    ("wpi-upper-leg-r", "Upper leg, right", 4),
    ("wpi-lower-leg-l", "Lower leg, left", 3),
    ("wpi-lower-leg-r", "Lower leg, right", 4),
    ("wpi-neck", "Neck", 5),
    ("wpi-upper-back", "Upper back", 5),
    ("wpi-lower-back", "Lower back", 5),
    ("wpi-chest", "Chest", None),
    ("wpi-abdomen", "Abdomen", None),
)

LINK_IDS = tuple(link_id for link_id, _, _ in AREAS)

# Jaw, chest and abdomen count toward the WPI but not toward generalized pain
# (docs/instruments.md, `wpi`).
REGIONS = tuple(
    tuple(link_id for link_id, _, region in AREAS if region == number) for number in range(1, 6)
)

QUESTION = "In which of these areas have you had pain over the past week?"

ITEMS = tuple(
    Item(
        link_id=link_id,
        text=text,
        type="boolean",
        code=Code(link_id, f"WPI: pain in the past week, {text.lower()}"),
    )
    for link_id, text, _ in AREAS
)

WPI_SCORE = Score(
    code=Code("wpi-score", "Widespread Pain Index (WPI) score"),
    value_type="integer",
    formula=Sum(LINK_IDS, "WPI"),
    method="WPI: number of the 19 areas painful in the past week (ACR 2010/2011/2016), 0-19",
    low=0,
    high=19,
    report_label="WPI",
    report_rank=70,
)

GP_REGIONS = Score(
    code=Code("gp-regions", "Generalized pain: regions with pain (ACR 2016)"),
    value_type="integer",
    formula=RegionCount(REGIONS, LINK_IDS, "Generalized pain"),
    method=(
        "ACR 2016 generalized pain: regions (left upper, right upper, left lower, right lower, "
        "axial) with at least one painful area; jaw, chest and abdomen excluded; 0-5"
    ),
    low=0,
    high=5,
)

INSTRUMENT = Instrument(
    rank=10,
    id="wpi",
    title="Widespread Pain Index (past week)",
    version="1.0.0",
    description=QUESTION
    + " Widespread Pain Index of the ACR 2010/2011/2016 fibromyalgia criteria.",
    code=Code("wpi", "Widespread Pain Index"),
    items=ITEMS,
    scores=(WPI_SCORE, GP_REGIONS),
    citation="Wolfe F et al. Semin Arthritis Rheum 2016;46:319-329",
)
