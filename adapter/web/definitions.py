"""The definitions: Questionnaires (read, search), the project's CodeSystem and the
OperationDefinitions of the service's operations (the same the FHIR package holds), with ETags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Response, request

from adapter import api
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import Settings
from adapter.web import examples
from adapter.web.operation_definitions import operation_definitions
from adapter.web.operations import Examples, Operation, Param
from adapter.web.protocol import fhir_response
from adapter.web.schemas import ref
from adapter.web.state import state

ID_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z0-9\-.]{1,64}$"}


def build(
    settings: Settings, operations: Iterable[Operation] = ()
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every definition by type and id, built once per app (they depend only on the settings
    and the app's operations)."""
    return {
        "Questionnaire": {q["id"]: q for q in api.questionnaires(settings)},
        "CodeSystem": {c["id"]: c for c in api.codesystems(settings)},
        "OperationDefinition": {o["id"]: o for o in operation_definitions(operations, settings)},
    }


def definitions() -> dict[str, dict[str, dict[str, Any]]]:
    current = state()
    return current.cached(
        "definitions", lambda: build(current.settings, current.operations.values())
    )


def _values(name: str) -> list[str]:
    return [v.strip() for item in request.args.getlist(name) for v in item.split(",") if v.strip()]


def search_questionnaires() -> Response:
    found = list(definitions()["Questionnaire"].values())
    ids = _values("_id")
    if ids:
        found = [q for q in found if q["id"] in ids]
    urls = _values("url")
    if urls:
        found = [q for q in found if q["url"] in urls]
    base = request.url_root.rstrip("/")
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [{"relation": "self", "url": request.url}],
        "entry": [
            {
                "fullUrl": f"{base}/Questionnaire/{q['id']}",
                "resource": q,
                "search": {"mode": "match"},
            }
            for q in found
        ],
    }
    return fhir_response(bundle, etag=True)


def read_questionnaire(id: str) -> Response:  # noqa: A002 - the FHIR name of the path part
    resource = definitions()["Questionnaire"].get(id)
    if resource is None:
        raise api.unknown_instrument(id)
    return fhir_response(resource, etag=True)


def read_codesystem(id: str) -> Response:  # noqa: A002
    systems = definitions()["CodeSystem"]
    resource = systems.get(id)
    if resource is None:
        message = f"unknown CodeSystem {id!r}; known: {', '.join(systems)}"
        raise InvalidInput([Issue("error", "not-found", message, None, "unknown-codesystem")], 404)
    return fhir_response(resource, etag=True)


def read_operationdefinition(id: str) -> Response:  # noqa: A002
    known = definitions()["OperationDefinition"]
    resource = known.get(id)
    if resource is None:
        message = f"unknown OperationDefinition {id!r}; known: {', '.join(known)}"
        issue = Issue("error", "not-found", message, None, "unknown-operationdefinition")
        raise InvalidInput([issue], 404)
    return fhir_response(resource, etag=True)


OPERATION_DEFINITION = {
    "type": "object",
    "description": "A FHIR R4 OperationDefinition",
    "required": ["resourceType", "id", "url", "code", "parameter"],
    "properties": {
        "resourceType": {"const": "OperationDefinition"},
        "id": {"type": "string"},
        "url": {"type": "string"},
        "status": {"enum": ["active", "retired"]},
        "code": {"type": "string"},
        "base": {"type": "string"},
        "parameter": {"type": "array", "items": {"type": "object"}},
    },
}


def _operation_definition_example(settings: Settings) -> Examples:
    """The definition of `$validate` (the registry is read here, when the description is built,
    never at import)."""
    from adapter.web import responses

    return Examples(response=operation_definitions(responses.OPERATIONS[:1], settings)[0])


ID = Param(
    "id", "The resource id (for a Questionnaire: the instrument id)", ID_SCHEMA, "path", True
)

OPERATIONS = (
    Operation(
        name="search-questionnaire",
        method="GET",
        path="/Questionnaire",
        view=search_questionnaires,
        summary="Every Questionnaire, as a searchset Bundle",
        description="Search by `_id` or `url` (canonical); other search parameters are ignored.",
        interaction="search-type",
        resource="Questionnaire",
        result=ref("Bundle"),
        params=(
            Param("_id", "Questionnaire ids, comma-separated"),
            Param("url", "Canonical urls, comma-separated"),
        ),
        etag=True,
    ),
    Operation(
        name="read-questionnaire",
        method="GET",
        path="/Questionnaire/{id}",
        view=read_questionnaire,
        summary="One Questionnaire (SDC: calculatedExpression for every score)",
        interaction="read",
        resource="Questionnaire",
        result=ref("Questionnaire"),
        params=(ID,),
        errors=(404,),
        examples=examples.questionnaire,
        etag=True,
    ),
    Operation(
        name="read-codesystem",
        method="GET",
        path="/CodeSystem/{id}",
        view=read_codesystem,
        summary="The project's CodeSystem (score codes, bands)",
        interaction="read",
        resource="CodeSystem",
        result=ref("CodeSystem"),
        params=(ID,),
        errors=(404,),
        examples=examples.codesystem,
        etag=True,
    ),
    Operation(
        name="read-operationdefinition",
        method="GET",
        path="/OperationDefinition/{id}",
        view=read_operationdefinition,
        summary="The OperationDefinition of one of the service's operations (as /metadata names it)",
        description=(
            "The same resource as in the FHIR package (`fms-fhir package`): in and out "
            "parameters, and `base` where the operation follows a standard one."
        ),
        interaction="read",
        resource="OperationDefinition",
        result=OPERATION_DEFINITION,
        params=(
            Param("id", "The operation's name, as /metadata lists it", ID_SCHEMA, "path", True),
        ),
        errors=(404,),
        examples=_operation_definition_example,
        etag=True,
    ),
)
