"""QuestionnaireResponses: `$validate` (always 200 with an OperationOutcome) and `$extract`
(score Observations as a transaction Bundle, or 422 with the reasons).

Both follow a standard operation, named as their OperationDefinition's `base`: R4's
`Resource-validate` (in: `resource`, `mode`, `profile`; out: `return`) and SDC's
`QuestionnaireResponse-extract` (in: `questionnaire-response`, `questionnaire`; out: `return`,
`issues`). What the standard allows and this service cannot do is refused, never ignored: a
`profile` other than R4's QuestionnaireResponse (the structure checked here) is 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, request

from adapter import api
from adapter.bundle import BUNDLE_TYPES
from adapter.outcome import operation_outcome
from adapter.web import examples
from adapter.web.operations import (
    BUNDLE_TYPE,
    PREFER,
    QUESTIONNAIRE,
    Operation,
    OperationParam,
    Param,
)
from adapter.web.protocol import (
    bad_request,
    choice,
    fhir_response,
    is_parameters,
    json_body,
    parameter,
    parameter_resource,
    parameter_text,
    prefers_outcome,
    questionnaire_id,
)
from adapter.web.schemas import ref
from adapter.web.state import state

VALIDATE_BASE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
EXTRACT_BASE = "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract"
MODES = ("create", "update", "delete")
"""R4 ResourceValidationMode without `profile` (which asks for a profile's rules alone): the
checks are the same for the three, a response is checked whole either way."""
QR_PROFILE = "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse"
SUPPORTED_PROFILES = (QR_PROFILE,)
"""What `$validate` checks a response against (R4's structure, then its Questionnaire's items):
the one profile it can honestly say it validated."""
QUESTIONNAIRE_PROFILE = "http://hl7.org/fhir/StructureDefinition/Questionnaire"
TEXT_KEYS = ("valueCanonical", "valueUri", "valueUrl", "valueString", "valueCode")


def _given(body: Any, name: str) -> str | None:
    """A parameter given in the query or in the body's Parameters (400 when both differ)."""
    query = request.args.get(name)
    query = query.strip() if query and query.strip() else None
    entry = parameter(body, name) if is_parameters(body) else None
    inside = parameter_text(entry)
    if entry is not None and inside is None:
        bad_request(
            f"the parameter {name!r} holds no text value",
            "Parameters.parameter",
            "invalid-parameters",
        )
    if query is not None and inside is not None and query != inside:
        bad_request(f"?{name}= and the Parameters' {name!r} differ", name, f"{name}-conflict")
    return inside or query


def _profile(body: Any) -> None:
    profile = _given(body, "profile")
    if profile is not None and profile.partition("|")[0] not in SUPPORTED_PROFILES:
        shown = profile if len(profile) <= 120 else profile[:117] + "..."
        message = (
            f"profile {shown!r} is not supported: this service validates a response against R4's "
            f"QuestionnaireResponse ({QR_PROFILE}) and its Questionnaire, nothing else; leave "
            "profile out, or validate against that profile with a profile validator"
        )
        bad_request(message, "profile", "unsupported-profile")


def _named_questionnaire(body: Any) -> str | None:
    """SDC passes the Questionnaire as a resource (found by its url, else its id); a canonical,
    an id or a relative `Questionnaire/<id>` may come as a text value."""
    entry = parameter(body, "questionnaire") if is_parameters(body) else None
    if entry is None:
        return None
    resource = entry.get("resource")
    if resource is not None:
        if not isinstance(resource, Mapping) or resource.get("resourceType") != "Questionnaire":
            bad_request(
                "the parameter 'questionnaire' holds a Questionnaire (or a canonical url)",
                "Parameters.parameter",
                "invalid-parameters",
            )
        text = resource.get("url") or resource.get("id")
        if not isinstance(text, str):
            bad_request(
                "the Questionnaire given as 'questionnaire' has neither url nor id",
                "Parameters.parameter",
                "invalid-parameters",
            )
        return text
    values = [entry[key] for key in TEXT_KEYS if isinstance(entry.get(key), str)]
    if not values:
        bad_request(
            "the parameter 'questionnaire' holds a Questionnaire, or its canonical url as "
            "valueCanonical",
            "Parameters.parameter",
            "invalid-parameters",
        )
    return values[0]


def _base_url() -> str:
    """The service's address as this request reached it: an app may name a Questionnaire by the
    url it read it from."""
    return request.url_root.rstrip("/")


def validate() -> Response:
    settings = state().settings
    body = json_body(settings, settings.max_response_bytes, "the request body")
    resource = parameter_resource(body, "resource") if is_parameters(body) else body
    mode = _given(body, "mode")
    if mode is not None and mode not in MODES:
        bad_request(f"mode is one of {', '.join(MODES)}, got {mode[:40]!r}", "mode")
    _profile(body)
    named = questionnaire_id(settings, _named_questionnaire(body))
    result = api.validate(resource, settings, named, _base_url())
    return fhir_response(operation_outcome(result.issues, settings))


def extract() -> Response:
    settings = state().settings
    body = json_body(settings, settings.max_response_bytes, "the request body")
    if is_parameters(body):
        resource = parameter_resource(body, "questionnaire-response")
    else:
        resource = body
    bundle_type = choice("bundle-type", BUNDLE_TYPES, "transaction")
    named = questionnaire_id(settings, _named_questionnaire(body))
    result = api.extract(resource, settings, named, bundle_type, _base_url())  # type: ignore[arg-type]  # choice() gives one of BUNDLE_TYPES
    if prefers_outcome():
        return fhir_response(operation_outcome(result.warnings, settings))
    return fhir_response(result.bundle)


QR_BODY = {"oneOf": [ref("QuestionnaireResponse"), ref("Parameters")]}
QR_TARGET = ("http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse",)
NAMED = (
    "The Questionnaire when the response leaves `questionnaire` empty: an instrument id, its "
    "canonical url (with or without `|version`), `Questionnaire/<id>` or the service's own url "
    "of it; also as the query parameter `?questionnaire=`"
)

VALIDATE_PARAMETERS = (
    OperationParam(
        "resource",
        "in",
        0,
        "1",
        "Resource",
        "The QuestionnaireResponse to check: the request body itself, or this parameter of a "
        "Parameters body",
        QR_TARGET,
    ),
    OperationParam(
        "mode",
        "in",
        0,
        "1",
        "code",
        "create, update or delete (R4 ResourceValidationMode; the checks are the same for the "
        "three); `profile` is refused (400). In the Parameters body or the query",
    ),
    OperationParam(
        "profile",
        "in",
        0,
        "1",
        "uri",
        f"Only {QR_PROFILE} (what is checked anyway); any other profile is refused with 400 "
        "(rule `unsupported-profile`), never silently ignored. In the Parameters body or the query",
    ),
    OperationParam("questionnaire", "in", 0, "1", "canonical", NAMED, (QUESTIONNAIRE_PROFILE,)),
    OperationParam(
        "return",
        "out",
        1,
        "1",
        "OperationOutcome",
        "Every finding (error, warning, information), `details.coding` its stable rule code; "
        "an information issue 'all OK' when there is none. Always 200, valid or not",
    ),
)

EXTRACT_PARAMETERS = (
    OperationParam(
        "questionnaire-response",
        "in",
        0,
        "1",
        "Resource",
        "The QuestionnaireResponse to extract from: the request body itself, or this parameter "
        "of a Parameters body",
        QR_TARGET,
    ),
    OperationParam(
        "questionnaire",
        "in",
        0,
        "1",
        "Resource",
        "The Questionnaire the response answers, as SDC passes it (a resource, found among this "
        "service's by its url, else its id; its content is not read) or its canonical url as "
        f"valueCanonical. {NAMED}",
        (QUESTIONNAIRE_PROFILE,),
    ),
    OperationParam(
        "bundle-type",
        "in",
        0,
        "1",
        "code",
        "transaction (all or nothing, the default) or batch; a query parameter",
    ),
    OperationParam(
        "return",
        "out",
        0,
        "1",
        "Bundle",
        "The score Observations as a transaction (or batch) Bundle of conditional updates, "
        "answered as the body itself",
        ("http://hl7.org/fhir/StructureDefinition/Bundle",),
    ),
    OperationParam(
        "issues",
        "out",
        0,
        "1",
        "OperationOutcome",
        "The warnings, answered instead of the Bundle with `Prefer: return=OperationOutcome`; "
        "an invalid response is 422 with this OperationOutcome holding the errors",
    ),
)

PROFILE = Param("profile", f"Only {QR_PROFILE}; any other is refused (400)", {"format": "uri"})
MODE = Param("mode", "create, update or delete: the same checks", {"enum": list(MODES)})

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
            "`Parameters` with `resource` (and `mode`: create, update, delete; `profile`; "
            "`questionnaire`). The response's Questionnaire may be named by its canonical url, "
            "as `Questionnaire/<id>` or by this service's url of it. A missing subject is a "
            "warning here, an error in `$extract`. 400 for a body that is not JSON, a Parameters "
            "without `resource`, or a `profile` other than R4's QuestionnaireResponse (which "
            "this service cannot check, and does not pretend to)."
        ),
        resource="QuestionnaireResponse",
        consumes={"application/fhir+json": QR_BODY, "application/json": QR_BODY},
        result=ref("OperationOutcome"),
        params=(QUESTIONNAIRE, MODE, PROFILE),
        errors=(400, 413, 415),
        examples=examples.validate,
        definition=VALIDATE_BASE,
        parameters=VALIDATE_PARAMETERS,
    ),
    Operation(
        name="extract",
        method="POST",
        path="/QuestionnaireResponse/$extract",
        view=extract,
        summary="Score Observations of a valid QuestionnaireResponse, as a transaction Bundle",
        description=(
            "The same scores and deterministic ids as `$convert-answers`. Body: the bare "
            "resource or SDC's `Parameters` with `questionnaire-response` (and optionally "
            "`questionnaire`: the Questionnaire resource, or its canonical url). An invalid "
            "response, or one without a subject, is 422 with the reasons."
        ),
        resource="QuestionnaireResponse",
        consumes={"application/fhir+json": QR_BODY, "application/json": QR_BODY},
        result={"oneOf": [ref("TransactionBundle"), ref("OperationOutcome")]},
        params=(QUESTIONNAIRE, BUNDLE_TYPE, PREFER),
        errors=(400, 413, 415, 422),
        examples=examples.extract,
        definition=EXTRACT_BASE,
        parameters=EXTRACT_PARAMETERS,
    ),
)
