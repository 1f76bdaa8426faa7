"""Response (checked answers) -> FHIR R4 QuestionnaireResponse."""

from __future__ import annotations

from typing import Any

from adapter.answers import Response
from adapter.ids import identifier, resource_id
from adapter.instrument import AnswerOption, Item
from adapter.settings import Settings
from adapter.terminology import coding


def response_id(response: Response) -> str:
    return resource_id(
        response.subject.key, response.instrument.id, response.authored, "QuestionnaireResponse"
    )


def _answer(value: object, settings: Settings) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, AnswerOption):
        return {"valueCoding": coding(value.code, settings)}
    return {"valueInteger": value}


def _items(
    items: tuple[Item, ...], answers: dict[str, Any] | Any, settings: Settings
) -> list[dict[str, Any]]:
    result = []
    for item in items:
        if item.children:
            children = _items(item.children, answers, settings)
            if children:
                result.append({"linkId": item.link_id, "text": item.text, "item": children})
        elif item.link_id in answers:
            result.append(
                {
                    "linkId": item.link_id,
                    "text": item.text,
                    "answer": [_answer(answers[item.link_id], settings)],
                }
            )
    return result


def build_response(response: Response, settings: Settings) -> dict[str, Any]:
    instrument = response.instrument
    rid = response_id(response)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "identifier": identifier(rid, settings),
        "questionnaire": f"{settings.questionnaire_url(instrument.id)}|{instrument.version}",
        "status": response.status,
        "subject": response.subject.fhir(),
        "authored": response.authored,
        "item": _items(instrument.items, response.answers, settings),
    }
