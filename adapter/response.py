"""Response (checked answers) -> FHIR R4 QuestionnaireResponse."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from adapter.ids import identifier, resource_id
from adapter.instrument import AnswerOption, Instrument, Item
from adapter.model import Response
from adapter.settings import Settings
from adapter.terminology import coding


def response_id(response: Response) -> str:
    return resource_id(
        response.subject.key, response.instrument.id, response.authored, "QuestionnaireResponse"
    )


@dataclass(frozen=True)
class _Node:
    """An item of the form as a response echoes it: built once per instrument and settings."""

    link_id: str
    text: str
    children: tuple[_Node, ...]
    codings: dict[int, dict[str, Any]]
    """Each option's coding by the option's id(): options are declared once, in mappings/."""


@dataclass(frozen=True)
class _Form:
    canonical: str
    """The Questionnaire's canonical with its version."""
    nodes: tuple[_Node, ...]


@lru_cache(maxsize=64)
def _form(instrument: Instrument, settings: Settings) -> _Form:
    def node(item: Item) -> _Node:
        codings = {id(option): coding(option.code, settings) for option in item.options}
        return _Node(item.link_id, item.text, tuple(map(node, item.children)), codings)

    canonical = f"{settings.questionnaire_url(instrument.id)}|{instrument.version}"
    return _Form(canonical, tuple(map(node, instrument.items)))


def _answer(value: object, node: _Node, settings: Settings) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, AnswerOption):
        known = node.codings.get(id(value))
        return {"valueCoding": dict(known) if known else coding(value.code, settings)}
    return {"valueInteger": value}


def _items(
    nodes: tuple[_Node, ...], answers: dict[str, Any] | Any, settings: Settings
) -> list[dict[str, Any]]:
    """The answered items, fresh dicts each time (a caller may change one response's items)."""
    result = []
    for node in nodes:
        if node.children:
            children = _items(node.children, answers, settings)
            if children:
                result.append({"linkId": node.link_id, "text": node.text, "item": children})
        elif node.link_id in answers:
            value = answers[node.link_id]
            kind = value.__class__
            if kind is int:  # the common cases inline, without a call
                answer: dict[str, Any] = {"valueInteger": value}
            elif kind is bool:
                answer = {"valueBoolean": value}
            else:
                answer = _answer(value, node, settings)
            result.append({"linkId": node.link_id, "text": node.text, "answer": [answer]})
    return result


def build_response(
    response: Response, settings: Settings, rid: str | None = None
) -> dict[str, Any]:
    """`rid`: the id when the caller has it already (`response_id` of the same response)."""
    form = _form(response.instrument, settings)
    rid = rid or response_id(response)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "identifier": identifier(rid, settings),
        "questionnaire": form.canonical,
        "status": response.status,
        "subject": response.subject.fhir(),
        "authored": response.authored,
        "item": _items(form.nodes, response.answers, settings),
    }
