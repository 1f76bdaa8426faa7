"""Answers documents -> checked, plain `Response` values (the core's input).

Marshmallow checks the document's shape; this module checks each answer against the
instrument's declaration (linkId, type, options, range), so every input path shares the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from adapter import registry
from adapter.instrument import AnswerOption, Instrument, Item
from adapter.outcome import InvalidInput, Issue
from adapter.schemas import AnswersDocumentSchema, issues_from

_SCHEMA = AnswersDocumentSchema()


@dataclass(frozen=True)
class Subject:
    """Who answered: a business identifier or a literal reference."""

    system: str | None = None
    value: str | None = None
    reference: str | None = None
    display: str | None = None

    @property
    def key(self) -> str:
        return self.reference or f"{self.system}|{self.value}"

    def fhir(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.reference:
            result["reference"] = self.reference
        else:
            result["identifier"] = {"system": self.system, "value": self.value}
        if self.display:
            result["display"] = self.display
        return result

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subject:
        identifier = data.get("identifier") or {}
        return cls(
            system=identifier.get("system"),
            value=identifier.get("value"),
            reference=data.get("reference"),
            display=data.get("display"),
        )


@dataclass(frozen=True)
class Response:
    """One administration of one instrument, with answers already checked."""

    instrument: Instrument
    subject: Subject
    authored: str
    status: str
    answers: Mapping[str, bool | int | AnswerOption]


def _describe_options(item: Item) -> str:
    return ", ".join(f"{o.score} ({o.code.code})" for o in item.options)


def check_value(item: Item, raw: object, where: str) -> tuple[object | None, Issue | None]:
    """One answer against its item; returns the plain value or the issue that rejects it."""

    def bad(message: str, rule: str = "wrong-type", code: str = "value") -> tuple[None, Issue]:
        return None, Issue("error", code, f"{item.link_id}: {message}", where, rule)

    if item.type == "boolean":
        if not isinstance(raw, bool):
            return bad(f"takes true or false, got {raw!r}")
        return raw, None
    if item.type == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            return bad(f"takes a whole number, got {raw!r}")
        if item.min_value is not None and raw < item.min_value:
            return bad(f"{raw} is below the minimum {item.min_value}", "out-of-range")
        if item.max_value is not None and raw > item.max_value:
            return bad(f"{raw} is above the maximum {item.max_value}", "out-of-range")
        return raw, None
    if item.type == "choice":
        option = item.option_for(raw)
        if option is None:
            rule = (
                "out-of-range"
                if isinstance(raw, int) and not isinstance(raw, bool)
                else "not-an-option"
            )
            return bad(f"{raw!r} is not one of the options: {_describe_options(item)}", rule)
        return option, None
    return bad(f"is a {item.type} and takes no answer", "not-answerable", "structure")


def check_answers(
    instrument: Instrument, raw: Mapping[str, Any], prefix: str = "answers"
) -> tuple[dict[str, Any], list[Issue]]:
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    scores = {score.code.code for score in instrument.scores}
    for link_id, raw_value in raw.items():
        where = f"{prefix}.{link_id}"
        item = instrument.item_index.get(link_id)
        if item is None:
            if link_id in scores:
                message = (
                    f"{link_id} is a calculated score of {instrument.id}; send the item answers"
                )
                issues.append(Issue("error", "invalid", message, where, "calculated-item"))
            else:
                message = f"{link_id!r} is not an item of {instrument.id}"
                issues.append(Issue("error", "invalid", message, where, "unknown-item"))
            continue
        if raw_value is None:
            continue
        value, issue = check_value(item, raw_value, where)
        if issue:
            issues.append(issue)
        else:
            values[link_id] = value
    return values, issues


def response_from_document(document: Any, prefix: str = "") -> Response:
    """Answers document -> Response, or InvalidInput with every issue found."""
    place = prefix.rstrip(".")
    if not isinstance(document, Mapping):
        message = "an answers document is a JSON object"
        raise InvalidInput([Issue("error", "structure", message, place or None, "not-an-object")])
    try:
        data = _SCHEMA.load(document)
    except ValidationError as error:
        raise InvalidInput(issues_from(error, place)) from None
    instrument = registry.get(data["instrument"])
    if instrument is None:
        known = ", ".join(sorted(registry.instruments()))
        message = f"unknown instrument {data['instrument']!r}; known: {known}"
        where = f"{prefix}instrument"
        raise InvalidInput([Issue("error", "not-found", message, where, "unknown-instrument")])
    values, issues = check_answers(instrument, data["answers"], f"{prefix}answers")
    if issues:
        raise InvalidInput(issues)
    return Response(
        instrument=instrument,
        subject=Subject.from_json(data["subject"]),
        authored=data["authored"],
        status=data["status"],
        answers=values,
    )
