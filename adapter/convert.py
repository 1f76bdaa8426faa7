"""The main use case: answers documents -> QuestionnaireResponses + score Observations -> Bundle."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapter.answers import Response, response_from_document
from adapter.bundle import transaction
from adapter.config import strict_mode
from adapter.ids import reference
from adapter.observations import build_observations
from adapter.outcome import InvalidInput, Issue
from adapter.response import build_response, response_id
from adapter.scoring import ScoreResult, score_answers


@dataclass(frozen=True)
class Converted:
    response: Response
    scores: list[ScoreResult]
    resources: list[dict[str, Any]]


def score_response(
    response: Response, derived_from: dict[str, Any] | None
) -> tuple[list[ScoreResult], list[dict[str, Any]]]:
    """The one scoring path shared by convert, extract and the sheets."""
    results = score_answers(response.instrument, response.answers)
    observations = build_observations(
        results,
        response.instrument,
        response.subject,
        response.authored,
        response.status,
        derived_from,
    )
    return results, observations


def _checked(bundle: dict[str, Any]) -> dict[str, Any]:
    if strict_mode():
        from adapter.fhir import validate_or_raise

        validate_or_raise(bundle)
    return bundle


def convert_response(response: Response) -> Converted:
    questionnaire_response = build_response(response)
    results, observations = score_response(response, reference(questionnaire_response["id"]))
    return Converted(response, results, [questionnaire_response, *observations])


def parse_documents(payload: Any) -> list[Response]:
    """One answers document or a JSON array of them; every issue of every document is collected."""
    documents = payload if isinstance(payload, list) else [payload]
    if not documents:
        raise InvalidInput(
            [Issue("error", "required", "the array holds no answers document", None, "empty")]
        )
    responses: list[Response] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, document in enumerate(documents):
        prefix = f"[{index}]." if isinstance(payload, list) else ""
        try:
            response = response_from_document(document, prefix)
        except InvalidInput as error:
            issues.extend(error.issues)
            continue
        rid = response_id(response)
        if rid in seen:
            message = (
                f"same subject, instrument and authored date as document [{seen[rid]}]; "
                "a visit holds one response per instrument"
            )
            issues.append(
                Issue(
                    "error", "duplicate", message, prefix.rstrip(".") or None, "duplicate-response"
                )
            )
            continue
        seen[rid] = index
        responses.append(response)
    if issues:
        raise InvalidInput(issues)
    return responses


def convert_documents(
    payload: Any, extra: Iterable[dict[str, Any]] = ()
) -> tuple[dict[str, Any], list[Converted]]:
    """Answers documents -> one transaction Bundle; `extra` resources (a regimen) join it."""
    converted = [convert_response(response) for response in parse_documents(payload)]
    return _checked(transaction([*iter_resources(converted), *extra])), converted


def iter_resources(converted: Iterable[Converted]) -> Iterable[dict[str, Any]]:
    for item in converted:
        yield from item.resources


def extract_observations(resource: dict[str, Any], response: Response) -> dict[str, Any]:
    """Score Observations of an already validated QuestionnaireResponse, as a transaction Bundle.

    The same code path as `convert`: same scores, same deterministic ids.
    """
    derived_from = None
    if resource.get("id"):
        derived_from = {"reference": f"QuestionnaireResponse/{resource['id']}"}
    elif isinstance(resource.get("identifier"), dict):
        derived_from = {"identifier": resource["identifier"]}
    return _checked(transaction(score_response(response, derived_from)[1]))
