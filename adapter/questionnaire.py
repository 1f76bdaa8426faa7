"""Instrument -> FHIR R4 Questionnaire with the SDC extensions form renderers read."""

from __future__ import annotations

from typing import Any

from adapter.config import questionnaire_url
from adapter.instrument import AnswerOption, Instrument, Item, Score
from adapter.terminology import coding

EXT = "http://hl7.org/fhir/StructureDefinition/"
SDC_CALCULATED = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
VALUE_KEY = {"integer": "valueInteger", "decimal": "valueDecimal"}


def _item_control(control: str) -> dict[str, Any]:
    return {
        "url": EXT + "questionnaire-itemControl",
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": control}]},
    }


def _answer_option(option: AnswerOption) -> dict[str, Any]:
    # ordinalValue is the R4 core name, itemWeight the current one; LHC-Forms reads them here.
    return {
        "extension": [
            {"url": EXT + "ordinalValue", "valueDecimal": option.score},
            {"url": EXT + "itemWeight", "valueDecimal": option.score},
        ],
        "valueCoding": coding(option.code),
    }


def questionnaire_item(item: Item) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = []
    value_key = VALUE_KEY.get(item.type, "valueInteger")
    if item.min_value is not None:
        extensions.append({"url": EXT + "minValue", value_key: item.min_value})
    if item.max_value is not None:
        extensions.append({"url": EXT + "maxValue", value_key: item.max_value})
    if item.control:
        extensions.append(_item_control(item.control))
        if item.control == "slider":
            extensions.append({"url": EXT + "questionnaire-sliderStepValue", "valueInteger": 1})
    result: dict[str, Any] = {}
    if extensions:
        result["extension"] = extensions
    result["linkId"] = item.link_id
    if item.code:
        result["code"] = [coding(item.code)]
    if item.prefix:
        result["prefix"] = item.prefix
    result["text"] = item.text
    result["type"] = item.type
    if item.type not in ("group", "display"):
        result["required"] = item.required
    if item.options:
        result["answerOption"] = [_answer_option(option) for option in item.options]
    if item.children:
        result["item"] = [questionnaire_item(child) for child in item.children]
    return result


def calculated_item(score: Score, instrument: Instrument) -> dict[str, Any]:
    """Read-only item whose linkId is the score's code, so a renderer's total matches the Observation."""
    expression = score.formula.fhirpath(instrument.item_index)
    return {
        "extension": [
            {
                "url": SDC_CALCULATED,
                "valueExpression": {
                    "description": score.method,
                    "language": "text/fhirpath",
                    "expression": expression,
                },
            }
        ],
        "linkId": score.code.code,
        "code": [coding(score.code)],
        "text": score.code.display,
        "type": score.value_type,
        "required": False,
        "readOnly": True,
    }


def calculated_scores(instrument: Instrument) -> list[Score]:
    """Scores that need an item of their own (a score equal to an item is that item)."""
    return [score for score in instrument.scores if score.code.code not in instrument.item_index]


def build_questionnaire(instrument: Instrument) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.id,
        "meta": {"profile": ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"]},
        "url": questionnaire_url(instrument.id),
        "version": instrument.version,
        "name": "".join(part.capitalize() for part in instrument.id.replace("-", " ").split()),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "fms-fhir",
        "description": instrument.description
        + (f" Source: {instrument.citation}." if instrument.citation else ""),
    }
    if instrument.copyright:
        resource["copyright"] = instrument.copyright
    if instrument.code:
        resource["code"] = [coding(instrument.code)]
    resource["item"] = [questionnaire_item(item) for item in instrument.items] + [
        calculated_item(score, instrument) for score in calculated_scores(instrument)
    ]
    return resource
