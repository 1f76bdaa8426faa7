"""Answers documents -> checked, plain `Response` values (the core's input).

Marshmallow checks the document's shape; each answer is checked against its item by the checker
every path shares (`rules.check_answer`): the same rule codes and words as a sheet row or a
QuestionnaireResponse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from marshmallow import ValidationError

from adapter import registry
from adapter.instrument import Instrument
from adapter.model import Issue, Response, Subject
from adapter.outcome import InvalidInput
from adapter.rules import check_answer, required_issues
from adapter.schemas import AnswersDocumentSchema, issues_from

_SCHEMA = AnswersDocumentSchema()
_OWN = ("instrument", "answers")
"""What each document of a visit has of its own; the rest (subject, authored, status, test_data)
the visit's documents usually share."""
_OWN_FIELDS = tuple((name, _SCHEMA.fields[name]) for name in _OWN)

Shared = dict[bytes, dict[str, Any]]
"""The shared part of documents already loaded in one request, by its JSON (see `_load`)."""


def _load(document: Mapping[str, Any], shared: Shared | None) -> dict[str, Any]:
    """`_SCHEMA.load(document)`, loading a shared part once per request: a document whose part
    besides instrument and answers is (as JSON) that of one loaded before has the same result
    for it, so only its own two fields are loaded (by the schema's fields); whatever fails is
    loaded whole again, so its errors are exactly those of a document alone."""
    if shared is None or any(name not in document for name in _OWN):
        return _SCHEMA.load(document)
    try:
        key = orjson.dumps(
            {k: v for k, v in document.items() if k not in _OWN}, option=orjson.OPT_SORT_KEYS
        )
    except TypeError:  # what orjson does not write (a Decimal, a key that is no string)
        return _SCHEMA.load(document)
    common = shared.get(key)
    if common is None:
        data = _SCHEMA.load(document)
        shared[key] = {k: v for k, v in data.items() if k not in _OWN}
        return data
    try:
        own = {
            name: field.deserialize(document[name], name, document) for name, field in _OWN_FIELDS
        }
    except ValidationError:
        return _SCHEMA.load(document)
    return {**common, **own}


def check_answers(
    instrument: Instrument, raw: Mapping[str, Any], prefix: str = "answers"
) -> tuple[dict[str, Any], list[Issue]]:
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    items = instrument.item_index
    for link_id, raw_value in raw.items():
        item = items.get(link_id)
        if item is None:
            where = f"{prefix}.{link_id}"
            if any(score.code.code == link_id for score in instrument.scores):
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
        value, found = check_answer(item, raw_value)
        if found:
            issues.extend(replace(issue, expression=f"{prefix}.{link_id}") for issue in found)
        else:
            values[link_id] = value
    return values, issues


def response_from_document(
    document: Any, prefix: str = "", shared: Shared | None = None
) -> Response:
    """Answers document -> Response, or InvalidInput with every issue found. `shared`: the
    request's memo of shared parts, when it converts several documents (see `_load`)."""
    place = prefix.rstrip(".")
    if not isinstance(document, Mapping):
        message = "an answers document is a JSON object"
        raise InvalidInput([Issue("error", "structure", message, place or None, "not-an-object")])
    try:
        data = _load(document, shared)
    except ValidationError as error:
        raise InvalidInput(issues_from(error, place)) from None
    instrument = registry.get(data["instrument"])
    if instrument is None:
        known = ", ".join(sorted(registry.instruments()))
        message = f"unknown instrument {data['instrument']!r}; known: {known}"
        where = f"{prefix}instrument"
        raise InvalidInput([Issue("error", "not-found", message, where, "unknown-instrument")])
    values, issues = check_answers(instrument, data["answers"], f"{prefix}answers")
    if not issues:
        # The same required rule as `validate`: what convert accepts, validate accepts.
        issues = [
            issue
            for issue in required_issues(
                instrument.items,
                values,
                values.keys(),
                data["status"],
                instrument.item_index,
                default_where=f"{prefix}answers",
            )
            if issue.is_error
        ]
        if issues:
            hint = (
                "a response left incomplete is sent with status 'stopped' (or 'in-progress' "
                "while it is being filled in); it is then accepted, scores that lack items are "
                "not computed"
            )
            issues.append(Issue("information", "informational", hint, f"{prefix}status"))
    if issues:
        raise InvalidInput(issues)
    return Response(
        instrument=instrument,
        subject=Subject.from_json(data["subject"]),
        authored=data["authored"],
        status=data["status"],
        answers=values,
        test_data=data.get("test_data"),
    )
