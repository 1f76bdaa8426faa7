"""What the YAML cases of phq9, gad7, pgic and fm2011 cannot say.

The PHQ-9 item 9 has an Observation for every response (LOINC 44260-8 with its LOINC answer):
positive above 0, whatever the total, with a FHIR Flag beside it; negative at 0; a
dataAbsentReason when unanswered. fm2011 and fm2016 judge the same answers by different rules
where the 2010/2011 and 2016 criteria differ.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapter import api, registry
from adapter.answers import check_answers
from adapter.questionnaire import build_questionnaire
from adapter.scoring import score_answers, scores_by_code
from adapter.terminology import codesystem
from tests.support import SETTINGS, assert_valid_fhir, expand_answers

FLAG = "phq9-q9-flag"
TOTAL = "44261-6"
PHQ9_ITEMS = [f"phq9-q{n}" for n in range(1, 10)]


def phq9(patient: str, **answers: int) -> dict[str, Any]:
    """An answers document; one with items left unanswered is sent as 'stopped'."""
    return {
        "instrument": "phq9",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": patient}},
        "authored": "2025-04-10",
        "status": "completed" if set(PHQ9_ITEMS) <= set(answers) else "stopped",
        "answers": answers,
    }


def observations(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }


def flags(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag"]


def all_zero(**changes: int) -> dict[str, int]:
    return {link_id: 0 for link_id in PHQ9_ITEMS} | changes


V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ITEM_9 = "44260-8"


def codes_of(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept["coding"]}


# --- PHQ-9 item 9 (issue: an unanswered item 9 read as "no flag") -------------------------------
# Item 9 has an Observation for every PHQ-9 response, coded with LOINC 44260-8 and its LOINC
# answer: answered 0 is an explicit negative, above 0 raises the flag (POS) and a FHIR Flag,
# unanswered carries a dataAbsentReason and is never a negative.


def test_item_9_answered_0_is_an_explicit_negative():
    bundle = api.convert(phq9("P0", **all_zero()), SETTINGS).bundle
    assert_valid_fhir(bundle)
    found = observations(bundle)
    assert set(found) == {TOTAL, FLAG}
    assert found[TOTAL]["interpretation"][0]["coding"][0]["code"] == "minimal"
    item = found[FLAG]
    assert ("http://loinc.org", ITEM_9) in codes_of(item["code"])
    assert item["valueCodeableConcept"]["coding"][0]["code"] == "LA6568-5"  # Not at all
    assert codes_of(item["interpretation"][0]) == {
        (SETTINGS.codesystem_url, "negative"),
        (V3, "NEG"),
    }
    assert not flags(bundle)


@pytest.mark.parametrize(("q9", "answer"), [(1, "LA6569-3"), (2, "LA6570-1"), (3, "LA6571-9")])
def test_item_9_above_0_is_flagged_whatever_the_total(q9, answer):
    bundle = api.convert(phq9("P1", **all_zero(**{"phq9-q9": q9})), SETTINGS).bundle
    assert_valid_fhir(bundle)
    found = observations(bundle)
    assert found[TOTAL]["valueQuantity"]["value"] == q9
    item = found[FLAG]
    assert item["code"]["coding"][1] == {
        "system": "http://loinc.org",
        "code": ITEM_9,
        "display": "Thoughts that you would be better off dead, or of hurting yourself in some "
        "way in last 2 weeks [Reported.PHQ]",
    }
    assert item["code"]["text"] == "PHQ-9 item 9, thoughts of death or self-harm"
    assert item["valueCodeableConcept"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": answer,
        "display": {1: "Several days", 2: "More than half the days", 3: "Nearly every day"}[q9],
    }
    assert codes_of(item["interpretation"][0]) == {
        (SETTINGS.codesystem_url, "positive"),
        (V3, "POS"),
    }
    assert "dataAbsentReason" not in item and "valueQuantity" not in item
    assert item["derivedFrom"] == found[TOTAL]["derivedFrom"]
    (flag,) = flags(bundle)
    assert flag["status"] == "active" and flag["subject"] == item["subject"]
    assert flag["code"]["coding"] == item["code"]["coding"]
    assert "suicide risk" in flag["code"]["text"]
    assert flag["period"] == {"start": "2025-04-10"}
    detail = flag["extension"][0]
    assert detail["url"] == "http://hl7.org/fhir/StructureDefinition/flag-detail"
    urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}  # a PUT body has no id
    assert urls[detail["valueReference"]["reference"]] == item


def test_item_9_alone_is_flagged_while_the_total_is_not_computed():
    bundle = api.convert(phq9("P2", **{"phq9-q9": 2}), SETTINGS).bundle
    found = observations(bundle)
    assert "valueQuantity" not in found[TOTAL] and "dataAbsentReason" in found[TOTAL]
    assert found[FLAG]["valueCodeableConcept"]["coding"][0]["code"] == "LA6570-1"
    assert len(flags(bundle)) == 1


def test_item_9_unanswered_is_said_and_never_a_negative():
    answers = {link_id: 1 for link_id in PHQ9_ITEMS[:-1]}
    bundle = api.convert(phq9("P3", **answers), SETTINGS).bundle
    assert_valid_fhir(bundle)
    found = observations(bundle)
    assert "dataAbsentReason" in found[TOTAL]
    item = found[FLAG]
    assert "interpretation" not in item and "valueCodeableConcept" not in item
    assert item["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert "phq9-q9 is unanswered" in item["dataAbsentReason"]["text"]
    assert not flags(bundle)


@pytest.mark.parametrize("q9", [0, 1, 3, None])
def test_extract_gives_item_9_and_the_flag_exactly_as_convert_does(q9):
    answers = all_zero(**{"phq9-q9": q9}) if q9 is not None else all_zero()
    if q9 is None:
        del answers["phq9-q9"]
    converted = api.convert(phq9("P4", **answers), SETTINGS).bundle
    response = converted["entry"][0]["resource"]
    extracted = api.extract(response, SETTINGS).bundle
    ours = {code: o["identifier"] for code, o in observations(converted).items()}
    assert {code: o["identifier"] for code, o in observations(extracted).items()} == ours
    assert [f["identifier"] for f in flags(extracted)] == [
        f["identifier"] for f in flags(converted)
    ]
    assert len(flags(converted)) == (1 if q9 else 0)


def test_item_9_is_no_member_of_the_total():
    found = observations(api.convert(phq9("P5", **all_zero(**{"phq9-q9": 3})), SETTINGS).bundle)
    assert "hasMember" not in found[TOTAL] and "hasMember" not in found[FLAG]


@pytest.mark.slow
def test_a_worklist_finds_the_raised_flags_on_a_fhir_server(fhir_server):
    documents = [
        phq9("W-flagged", **all_zero(**{"phq9-q9": 1})),
        phq9("W-none", **all_zero()),
        phq9("W-partial", **{"phq9-q9": 2, "phq9-q1": 3}),
        phq9("W-unanswered", **{link_id: 1 for link_id in PHQ9_ITEMS[:-1]}),
    ]
    for document in documents:
        fhir_server.post_bundle(api.convert(document, SETTINGS).bundle)
    raised = ",".join(f"http://loinc.org|{code}" for code in ("LA6569-3", "LA6570-1", "LA6571-9"))
    found = fhir_server.search(
        "Observation", {"code": f"http://loinc.org|{ITEM_9}", "value-concept": raised}
    )
    subjects = sorted(o["subject"]["identifier"]["value"] for o in found)
    assert subjects == ["W-flagged", "W-partial"]
    stored = fhir_server.search("Flag", {})
    assert sorted(f["subject"]["identifier"]["value"] for f in stored) == subjects
    absent = fhir_server.search(
        "Observation", {"code": f"http://loinc.org|{ITEM_9}", "data-absent-reason": "unknown"}
    )
    assert [o["subject"]["identifier"]["value"] for o in absent] == ["W-unanswered"]
    totals = fhir_server.search("Observation", {"code": f"http://loinc.org|{TOTAL}"})
    assert len(totals) == 4


def test_the_flag_has_a_calculated_item_in_the_questionnaire():
    questionnaire = build_questionnaire(registry.get("phq9"), SETTINGS)
    items = {item["linkId"]: item for item in questionnaire["item"]}
    assert items[FLAG]["readOnly"] is True and items[FLAG]["type"] == "integer"
    assert items["phq9-difficulty"]["required"] is False
    assert items["phq9-difficulty"]["code"][0]["code"] == "69722-7"


# --- GAD-7 and the shared answers ---------------------------------------------------------------


def test_phq9_and_gad7_items_carry_loinc_codes_and_the_phq_answers():
    expected = {
        "phq9": [
            "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
            "44253-3", "44260-8",
        ],
        "gad7": ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"],
    }  # fmt: skip
    for instrument_id, codes in expected.items():
        items = [i for i in registry.get(instrument_id).items if "difficulty" not in i.link_id]
        assert [i.link_id for i in items] == [
            f"{instrument_id}-q{n}" for n in range(1, len(codes) + 1)
        ]
        assert [i.code.code for i in items] == codes
        for item in items:
            assert item.code.system == "http://loinc.org"
            assert [(o.score, o.code.code) for o in item.options] == [
                (0, "LA6568-5"), (1, "LA6569-3"), (2, "LA6570-1"), (3, "LA6571-9")
            ]  # fmt: skip


def test_new_band_codes_are_in_the_codesystem():
    concepts = {c["code"]: c["display"] for c in codesystem(SETTINGS)["concept"]}
    assert concepts["minimal"] == "Minimal"
    assert concepts["moderately-severe"] == "Moderately severe"
    for code in (FLAG, "pgic", "pgic-score", "acr2011-criteria"):
        assert code in concepts


# --- fm2011 against fm2016 ----------------------------------------------------------------------


def both(answers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same answers scored as fm2011 and as fm2016 (the two have the same items)."""
    results = []
    for instrument_id in ("fm2011", "fm2016"):
        instrument = registry.get(instrument_id)
        case = {"defaults": {"boolean": False}, "answers": answers}
        values, issues = check_answers(instrument, expand_answers(instrument_id, case))
        assert not issues, issues
        scored = scores_by_code(score_answers(instrument, values))
        results.append({code: result.value for code, result in scored.items()})
    return results[0], results[1]


SSS_9 = {"sss-fatigue": 3, "sss-unrefreshed": 3, "sss-cognitive": 2, "sss-headache": True}


def test_fm2011_and_fm2016_ask_the_same_items():
    def link_ids(instrument_id):
        return [i.link_id for i in registry.get(instrument_id).answerable_items()]

    assert link_ids("fm2011") == link_ids("fm2016")


def test_wpi_3_with_sss_9_meets_2011_but_not_2016():
    answers = {"wpi-shoulder-l": True, "wpi-hip-l": True, "wpi-neck": True, **SSS_9}
    answers["fm-duration-3m"] = True
    old, new = both(answers)
    assert (old["wpi-score"], old["sss-score"]) == (new["wpi-score"], new["sss-score"]) == (3, 9)
    assert old["acr2011-criteria"] is True
    assert new["acr2016-criteria"] is False


def test_generalized_pain_in_3_regions_meets_2011_but_not_2016():
    areas = ["wpi-jaw-l", "wpi-jaw-r", "wpi-shoulder-l", "wpi-shoulder-r", "wpi-upper-arm-l"]
    areas += ["wpi-upper-arm-r", "wpi-lower-arm-l", "wpi-lower-arm-r", "wpi-neck", "wpi-chest"]
    answers = dict.fromkeys(areas, True) | SSS_9 | {"fm-duration-3m": True}
    old, new = both(answers)
    assert new["gp-regions"] == 3 and "gp-regions" not in old
    assert old["wpi-score"] == new["wpi-score"] == 10
    assert old["acr2011-criteria"] is True
    assert new["acr2016-criteria"] is False


def test_where_the_rules_agree_both_say_so():
    everything = {"sss-fatigue": 3, "sss-unrefreshed": 3, "sss-cognitive": 3}
    answers = {i.link_id: True for i in registry.get("wpi").items} | everything
    answers["fm-duration-3m"] = True
    old, new = both(answers)
    assert old["acr2011-criteria"] is new["acr2016-criteria"] is True
    old, new = both({**answers, "fm-duration-3m": False})
    assert old["acr2011-criteria"] is new["acr2016-criteria"] is False


def test_fm2011_converts_to_valid_fhir_with_its_own_criteria_code():
    answers = {"wpi-shoulder-l": True, "wpi-hip-l": True, "wpi-neck": True, **SSS_9}
    answers |= {i.link_id: answers.get(i.link_id, False) for i in registry.get("wpi").items}
    answers |= {"sss-abdominal": False, "sss-depression": False, "fm-duration-3m": True}
    document = {
        "instrument": "fm2011",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "L1"}},
        "authored": "2012-03-01",
        "answers": answers,
    }
    bundle = api.convert(document, SETTINGS).bundle
    assert_valid_fhir(bundle)
    found = observations(bundle)
    assert set(found) == {"wpi-score", "sss-score", "acr2011-criteria"}
    criteria = found["acr2011-criteria"]
    assert criteria["valueBoolean"] is True
    assert len(criteria["hasMember"]) == 2
    assert "WPI 3-6" in criteria["method"]["text"]
