"""Generated Questionnaires and the CodeSystem: valid R4, with the SDC extensions renderers read."""

import pytest

from adapter import registry
from adapter.config import from_environ
from adapter.questionnaire import SDC_CALCULATED, build_questionnaire
from adapter.settings import DEFAULT as SETTINGS
from adapter.terminology import codesystem
from tests.support import assert_valid_fhir

INSTRUMENTS = sorted(registry.instruments())


def _walk(items):
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def _extensions(element, suffix):
    return [e for e in element.get("extension", []) if e["url"].endswith(suffix)]


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_questionnaire_is_valid_r4(instrument_id):
    questionnaire = build_questionnaire(registry.get(instrument_id), SETTINGS)
    assert_valid_fhir(questionnaire)
    assert questionnaire["url"].endswith(f"/Questionnaire/{instrument_id}")
    assert questionnaire["version"] and questionnaire["status"] == "active"


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_every_score_has_a_read_only_calculated_item(instrument_id):
    instrument = registry.get(instrument_id)
    items = {i["linkId"]: i for i in _walk(build_questionnaire(instrument, SETTINGS)["item"])}
    for score in instrument.scores:
        item = items[score.code.code]
        calculated = _extensions(item, "calculatedExpression")
        if score.code.code in instrument.item_index:
            # pain-mean / pain-max: the score is the answer itself; the item carries the code.
            assert not calculated and not item.get("readOnly")
            continue
        assert item["readOnly"] is True and item["type"] == score.value_type
        assert calculated[0]["url"] == SDC_CALCULATED
        assert calculated[0]["valueExpression"]["language"] == "text/fhirpath"
        assert item["code"][0]["code"] == score.code.code


def test_choice_options_carry_ordinal_value_and_item_weight():
    for instrument_id in ("sss", "phq4"):
        for item in _walk(build_questionnaire(registry.get(instrument_id), SETTINGS)["item"]):
            for n, option in enumerate(item.get("answerOption", [])):
                assert _extensions(option, "/ordinalValue")[0]["valueDecimal"] == n
                assert _extensions(option, "/itemWeight")[0]["valueDecimal"] == n


def test_ratings_are_sliders_with_min_and_max():
    for instrument_id, high in (("fiqr", 10), ("pain-nrs", 100)):
        for item in build_questionnaire(registry.get(instrument_id), SETTINGS)["item"]:
            if item.get("readOnly"):
                continue
            assert _extensions(item, "/minValue")[0]["valueInteger"] == 0
            assert _extensions(item, "/maxValue")[0]["valueInteger"] == high
            control = _extensions(item, "questionnaire-itemControl")[0]
            assert control["valueCodeableConcept"]["coding"][0]["code"] == "slider"


def test_codesystem_is_valid_and_holds_every_local_code():
    resource = codesystem(SETTINGS)
    assert_valid_fhir(resource)
    concepts = {c["code"]: c["display"] for c in resource["concept"]}
    assert resource["count"] == len(concepts)
    for instrument in registry.instruments().values():
        for item in _walk(build_questionnaire(instrument, SETTINGS)["item"]):
            codings = list(item.get("code", []))
            codings += [o["valueCoding"] for o in item.get("answerOption", [])]
            for coding in codings:
                if coding["system"] == SETTINGS.codesystem_url:
                    assert concepts[coding["code"]] == coding["display"]
    for band in (
        "none",
        "normal",
        "mild",
        "moderate",
        "severe",
        "very-severe",
        "positive",
        "negative",
    ):
        assert band in concepts


def test_canonical_base_is_configurable():
    base = {"FMS_FHIR_CANONICAL_BASE": "https://fhir.example-hospital.org/"}
    settings = from_environ(base).settings
    questionnaire = build_questionnaire(registry.get("fiqr"), settings)
    assert questionnaire["url"] == "https://fhir.example-hospital.org/Questionnaire/fiqr"
    assert questionnaire["item"][0]["code"][0]["system"] == (
        "https://fhir.example-hospital.org/CodeSystem/fms-instruments"
    )
