"""The public contract (docs/instruments.md, docs/command-line.md): instrument ids, linkIds and score codes are fixed."""

from adapter import registry
from adapter.questionnaire import build_questionnaire
from adapter.settings import DEFAULT as SETTINGS

WPI = [
    "wpi-jaw-l", "wpi-jaw-r", "wpi-shoulder-l", "wpi-shoulder-r", "wpi-upper-arm-l",
    "wpi-upper-arm-r", "wpi-lower-arm-l", "wpi-lower-arm-r", "wpi-hip-l", "wpi-hip-r",
    "wpi-upper-leg-l", "wpi-upper-leg-r", "wpi-lower-leg-l", "wpi-lower-leg-r", "wpi-neck",
    "wpi-upper-back", "wpi-lower-back", "wpi-chest", "wpi-abdomen",
]  # fmt: skip
SSS_CHOICE = ["sss-fatigue", "sss-unrefreshed", "sss-cognitive"]
SSS_BOOLEAN = ["sss-headache", "sss-abdominal", "sss-depression"]
FIQR = (
    [f"fiqr-f{n}" for n in range(1, 10)]
    + ["fiqr-o1", "fiqr-o2"]
    + [f"fiqr-s{n}" for n in range(1, 11)]
)
PHQ4 = {
    "phq4-nervous": "69725-0",
    "phq4-worry": "68509-9",
    "phq4-interest": "44250-9",
    "phq4-down": "44255-8",
}

SCORES = {
    "wpi": ["wpi-score", "gp-regions"],
    "sss": ["sss-score"],
    "fm2016": ["wpi-score", "gp-regions", "sss-score", "fs-score", "acr2016-criteria"],
    "fiqr": ["fiqr-function", "fiqr-overall", "fiqr-symptoms", "fiqr-total"],
    "phq4": ["phq4-anxiety", "55758-7", "70272-0"],
    "pain-nrs": ["pain-mean", "pain-max"],
    "phq9": ["44261-6", "phq9-q9-flag"],
    "gad7": ["70274-6"],
    "pgic": ["pgic-score"],
    "fm2011": ["wpi-score", "sss-score", "acr2011-criteria"],
}


def _answerable(instrument_id):
    instrument = registry.get(instrument_id)
    return {i.link_id: i.type for i in instrument.answerable_items()}


def test_the_contract_instruments_exist():
    """Every instrument of the contract is registered (others may be added: no count pinned)."""
    assert set(SCORES) <= set(registry.instruments())


def test_item_link_ids_and_types():
    assert _answerable("wpi") == dict.fromkeys(WPI, "boolean")
    assert _answerable("sss") == {
        **dict.fromkeys(SSS_CHOICE, "choice"),
        **dict.fromkeys(SSS_BOOLEAN, "boolean"),
    }
    assert _answerable("fm2016") == {
        **_answerable("wpi"), **_answerable("sss"), "fm-duration-3m": "boolean"
    }  # fmt: skip
    assert _answerable("fiqr") == dict.fromkeys(FIQR, "integer")
    assert _answerable("phq4") == dict.fromkeys(PHQ4, "choice")
    assert _answerable("pain-nrs") == {"pain-mean": "integer", "pain-max": "integer"}


def test_item_order_follows_the_contract():
    order = {
        "wpi": WPI, "sss": SSS_CHOICE + SSS_BOOLEAN, "fiqr": FIQR, "phq4": list(PHQ4),
        "pain-nrs": ["pain-mean", "pain-max"],
    }  # fmt: skip
    for instrument_id, link_ids in order.items():
        assert list(_answerable(instrument_id)) == link_ids


def test_fm2016_holds_wpi_and_sss_as_groups():
    items = build_questionnaire(registry.get("fm2016"), SETTINGS)["item"]
    groups = {i["linkId"]: i for i in items if i["type"] == "group"}
    assert [c["linkId"] for c in groups["wpi"]["item"]] == WPI
    assert [c["linkId"] for c in groups["sss"]["item"]] == SSS_CHOICE + SSS_BOOLEAN


def test_phq4_items_carry_their_loinc_codes_and_answers():
    for item in registry.get("phq4").items:
        assert item.code.system == "http://loinc.org" and item.code.code == PHQ4[item.link_id]
        assert [(o.score, o.code.code) for o in item.options] == [
            (0, "LA6568-5"), (1, "LA6569-3"), (2, "LA6570-1"), (3, "LA6571-9")
        ]  # fmt: skip


def test_score_codes():
    for instrument_id, codes in SCORES.items():
        assert [s.code.code for s in registry.get(instrument_id).scores] == codes
    loinc = {
        s.code.code for i in registry.instruments().values() for s in i.scores if s.code.system
    }
    assert {"55758-7", "70272-0", "44261-6", "70274-6"} <= loinc


def test_ranges():
    for instrument_id in ("fiqr", "pain-nrs"):
        for item in registry.get(instrument_id).answerable_items():
            assert item.min_value == 0
            assert item.max_value == (10 if instrument_id == "fiqr" else 100)
    for item in registry.get("sss").answerable_items():
        if item.type == "choice":
            assert [o.score for o in item.options] == [0, 1, 2, 3]


def test_linkids_are_unique_in_every_questionnaire():
    for instrument in registry.instruments().values():
        link_ids = []

        def collect(items, link_ids=link_ids):
            for item in items:
                link_ids.append(item["linkId"])
                collect(item.get("item", []))

        collect(build_questionnaire(instrument, SETTINGS)["item"])
        assert len(link_ids) == len(set(link_ids)), instrument.id
