"""Instrument -> FHIR R4 Questionnaire with the SDC extensions form renderers read."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from adapter.instrument import AnswerOption, EnableWhen, Instrument, Item
from adapter.settings import Settings
from adapter.terminology import coding

EXT = "http://hl7.org/fhir/StructureDefinition/"
SDC_CALCULATED = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
VALUE_KEY = {"integer": "valueInteger", "decimal": "valueDecimal"}


@cache
def form_items(instrument: Instrument) -> tuple[Item, ...]:
    """The instrument's items plus a read-only item per calculated score (linkId = score code).

    A score that is an item's own answer (pain-mean, pain-max) is that item: no extra item.
    """
    calculated = tuple(
        Item(
            link_id=score.code.code,
            text=score.code.display,
            type=score.value_type,
            code=score.code,
            required=False,
            score=score,
        )
        for score in instrument.scores
        if score.code.code not in instrument.item_index
    )
    return instrument.items + calculated


def _item_control(control: str) -> dict[str, Any]:
    return {
        "url": EXT + "questionnaire-itemControl",
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": control}]},
    }


def _answer_option(option: AnswerOption, settings: Settings) -> dict[str, Any]:
    # ordinalValue is the R4 core name, itemWeight the current one; LHC-Forms reads them here.
    return {
        "extension": [
            {"url": EXT + "ordinalValue", "valueDecimal": option.score},
            {"url": EXT + "itemWeight", "valueDecimal": option.score},
        ],
        "valueCoding": coding(option.code, settings),
    }


def _enable_when(
    condition: EnableWhen, index: Mapping[str, Item], settings: Settings
) -> dict[str, Any]:
    result: dict[str, Any] = {"question": condition.question, "operator": condition.operator}
    question = index.get(condition.question)
    if condition.operator == "exists" or isinstance(condition.answer, bool):
        result["answerBoolean"] = condition.answer
    elif question is not None and question.type == "choice":
        option = question.option_for(condition.answer)
        result["answerCoding"] = (
            coding(option.code, settings) if option else {"code": str(condition.answer)}
        )
    else:
        result["answerInteger"] = condition.answer
    return result


def questionnaire_item(item: Item, index: Mapping[str, Item], settings: Settings) -> dict[str, Any]:
    extensions: list[dict[str, Any]] = []
    if item.score is not None:
        extensions.append(
            {
                "url": SDC_CALCULATED,
                "valueExpression": {
                    "description": item.score.method,
                    "language": "text/fhirpath",
                    "expression": item.score.formula.fhirpath(index),
                },
            }
        )
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
        result["code"] = [coding(item.code, settings)]
    if item.prefix:
        result["prefix"] = item.prefix
    result["text"] = item.text
    result["type"] = item.type
    if item.enable_when:
        result["enableWhen"] = [_enable_when(c, index, settings) for c in item.enable_when]
        if len(item.enable_when) > 1:
            result["enableBehavior"] = item.enable_behavior
    if item.type not in ("group", "display"):
        result["required"] = item.required
    if item.repeats:
        result["repeats"] = True
    if item.score is not None:
        result["readOnly"] = True
    if item.max_length is not None:
        result["maxLength"] = item.max_length
    if item.options:
        result["answerOption"] = [_answer_option(option, settings) for option in item.options]
    if item.children:
        result["item"] = [questionnaire_item(child, index, settings) for child in item.children]
    return result


def build_questionnaire(instrument: Instrument, settings: Settings) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.id,
        "meta": {"profile": ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"]},
        "url": settings.questionnaire_url(instrument.id),
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
        resource["code"] = [coding(instrument.code, settings)]
    index = instrument.item_index
    resource["item"] = [
        questionnaire_item(item, index, settings) for item in form_items(instrument)
    ]
    return resource
