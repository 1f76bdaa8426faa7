"""QuestionnaireResponses: `$validate` (always 200 with an OperationOutcome) and `$extract`
(score Observations as a transaction Bundle, or 422 with the reasons)."""

from __future__ import annotations

from typing import Any

from flask import Response

from adapter import api
from adapter.bundle import BUNDLE_TYPES
from adapter.outcome import operation_outcome
from adapter.web import examples
from adapter.web.operations import BUNDLE_TYPE, PREFER, QUESTIONNAIRE, Operation
from adapter.web.protocol import (
    bad_request,
    choice,
    fhir_response,
    is_parameters,
    json_body,
    named_questionnaire,
    parameter,
    parameter_resource,
    parameter_text,
    prefers_outcome,
    questionnaire_id,
)
from adapter.web.schemas import ref
from adapter.web.state import state

MODES = ("create", "update", "delete")


def _unwrap(body: Any, name: str) -> tuple[Any, str | None]:
    """The QuestionnaireResponse and the Questionnaire named in a Parameters body, or the body."""
    if is_parameters(body):
        return parameter_resource(body, name), named_questionnaire(body)
    return body, None


def validate() -> Response:
    settings = state().settings
    body = json_body(settings, settings.max_response_bytes, "the request body")
    resource, named = _unwrap(body, "resource")
    if is_parameters(body):
        mode = parameter_text(parameter(body, "mode"))
        if mode is not None and mode not in MODES:
            bad_request(f"mode is one of {', '.join(MODES)}, got {mode[:40]!r}", "mode")
    result = api.validate(resource, settings, questionnaire_id(settings, named))
    return fhir_response(operation_outcome(result.issues, settings))


def extract() -> Response:
    settings = state().settings
    body = json_body(settings, settings.max_response_bytes, "the request body")
    resource, named = _unwrap(body, "questionnaire-response")
    bundle_type = choice("bundle-type", BUNDLE_TYPES, "transaction")
    result = api.extract(resource, settings, questionnaire_id(settings, named), bundle_type)  # type: ignore[arg-type]  # choice() gives one of BUNDLE_TYPES
    if prefers_outcome():
        return fhir_response(operation_outcome(result.warnings, settings))
    return fhir_response(result.bundle)


QR_BODY = {"oneOf": [ref("QuestionnaireResponse"), ref("Parameters")]}

OPERATIONS = (
    Operation(
        name="validate",
        method="POST",
        path="/QuestionnaireResponse/$validate",
        view=validate,
        summary="Check a QuestionnaireResponse against its Questionnaire",
        description=(
            "Always 200 with an OperationOutcome, valid or not (errors, warnings, information; "
            "`details.coding` carries the stable rule code). Body: the bare resource or a "
            "`Parameters` with `resource` (and `mode`: create, update, delete) and optionally "
            "`questionnaire`. A missing subject is a warning here, an error in `$extract`. "
            "400 only for a body that is not JSON or a Parameters without `resource`."
        ),
        resource="QuestionnaireResponse",
        consumes={"application/fhir+json": QR_BODY, "application/json": QR_BODY},
        result=ref("OperationOutcome"),
        params=(QUESTIONNAIRE,),
        errors=(400, 413, 415),
        examples=examples.validate,
        definition="http://hl7.org/fhir/OperationDefinition/Resource-validate",
    ),
    Operation(
        name="extract",
        method="POST",
        path="/QuestionnaireResponse/$extract",
        view=extract,
        summary="Score Observations of a valid QuestionnaireResponse, as a transaction Bundle",
        description=(
            "The same scores and deterministic ids as `$convert`. Body: the bare resource or "
            "SDC's `Parameters` with `questionnaire-response` (and optionally `questionnaire`). "
            "An invalid response, or one without a subject, is 422 with the reasons."
        ),
        resource="QuestionnaireResponse",
        consumes={"application/fhir+json": QR_BODY, "application/json": QR_BODY},
        result={"oneOf": [ref("TransactionBundle"), ref("OperationOutcome")]},
        params=(QUESTIONNAIRE, BUNDLE_TYPE, PREFER),
        errors=(400, 413, 415, 422),
        examples=examples.extract,
        definition="http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract",
    ),
)
