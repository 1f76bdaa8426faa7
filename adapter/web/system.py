"""System routes: liveness, the CapabilityStatement and the OpenAPI description (both generated
from the registry and cached per app)."""

from __future__ import annotations

from flask import Response

from adapter.web.capability import capability_statement
from adapter.web.openapi import openapi
from adapter.web.operations import JSON_TYPE, Operation
from adapter.web.protocol import fhir_response, serialize
from adapter.web.schemas import ref
from adapter.web.state import state


def healthz() -> Response:
    """Alive; a process that is shutting down answers 503 before it gets here."""
    return Response(serialize({"status": "ok"}), content_type=JSON_TYPE)


def metadata() -> Response:
    current = state()
    statement = current.cached(
        "capability",
        lambda: capability_statement(current.operations.values(), current.settings),
    )
    return fhir_response(statement, etag=True)


def openapi_json() -> Response:
    current = state()
    document = current.cached(
        "openapi", lambda: openapi(current.operations.values(), current.settings)
    )
    return fhir_response(document, etag=True)


OPERATIONS = (
    Operation(
        name="healthz",
        method="GET",
        path="/healthz",
        view=healthz,
        summary="Liveness: 200 while the process serves, 503 once it is shutting down",
        interaction="system",
        produces=(JSON_TYPE,),
        result=ref("Health"),
        auth=False,
        fhir=False,
    ),
    Operation(
        name="metadata",
        method="GET",
        path="/metadata",
        view=metadata,
        summary="The CapabilityStatement (FHIR 4.0.1), generated from the registered operations",
        interaction="capabilities",
        result=ref("CapabilityStatement"),
        auth=False,
        etag=True,
    ),
    Operation(
        name="openapi",
        method="GET",
        path="/openapi.json",
        view=openapi_json,
        summary="This OpenAPI 3.1 description, generated from the registered operations",
        interaction="system",
        produces=(JSON_TYPE,),
        result=ref("OpenAPI"),
        etag=True,
        fhir=False,
    ),
)
