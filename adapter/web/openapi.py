"""`/openapi.json`: the OpenAPI 3.1 description, generated from the registry of operations with
request and response schemas and examples, so it lists exactly the routes the service serves."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from adapter.settings import Settings
from adapter.web.capability import software_version
from adapter.web.operations import FHIR_JSON_TYPE, JSON_TYPE, MULTIPART_TYPE, Operation, Param
from adapter.web.protocol import FORMAT_ALIASES
from adapter.web.schemas import components, multipart_encoding, ref

ERROR_STATUSES = (400, 401, 404, 406, 413, 415, 422, 500, 503)
ALWAYS = (400, 406, 500, 503)
"""Any route may answer these: a malformed request, an Accept it cannot serve, our fault, busy."""
REQUEST_ID = {
    "description": "The caller's X-Request-ID (letters, digits, . _ : -), or one generated",
    "required": True,
    "schema": {"type": "string"},
}
JSON_MEDIA = (FHIR_JSON_TYPE, JSON_TYPE)


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "required": param.required or param.where == "path",
        "description": param.description,
        "schema": dict(param.schema),
    }


def _format_param(operation: Operation) -> dict[str, Any]:
    values = [alias for alias, kind in FORMAT_ALIASES.items() if kind in operation.produces]
    return {
        "name": "_format",
        "in": "query",
        "required": False,
        "description": "The answer's media type; overrides Accept (xml is not served: 406)",
        "schema": {"enum": values},
    }


def _request_body(operation: Operation, settings: Settings) -> dict[str, Any]:
    found = operation.examples(settings) if operation.examples else None
    content: dict[str, Any] = {}
    for media_type, schema in operation.consumes.items():
        media: dict[str, Any] = {"schema": dict(schema)}
        if found and found.requests:
            fits = (
                media_type == found.request_type if found.request_type else media_type in JSON_MEDIA
            )
            if fits:
                media["examples"] = {name: {"value": v} for name, v in found.requests.items()}
        if media_type == MULTIPART_TYPE and (encoding := multipart_encoding(schema)):
            media["encoding"] = encoding
        content[media_type] = media
    return {"required": True, "content": content}


# What a non-JSON answer is, by media type.
NON_JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "application/fhir+ndjson": {"type": "string", "description": "one JSON resource a line"},
    "application/x-ndjson": {"type": "string", "description": "one JSON resource a line"},
    "text/html": {"type": "string", "description": "an HTML page"},
    "image/png": {"type": "string", "format": "binary", "description": "a PNG image"},
    "image/svg+xml": {"type": "string", "description": "an SVG image"},
    "application/zip": {"type": "string", "format": "binary", "description": "a zip archive"},
}


def _success(operation: Operation, settings: Settings) -> dict[str, Any]:
    found = operation.examples(settings) if operation.examples else None
    content: dict[str, Any] = {}
    for media_type in operation.produces:
        if media_type in JSON_MEDIA:
            media: dict[str, Any] = {"schema": dict(operation.result)}
            if found is not None and found.response is not None:
                media["example"] = found.response
        else:
            media = {"schema": NON_JSON_SCHEMAS.get(media_type, {"type": "string"})}
        content[media_type] = media
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID, **operation.response_headers}
    if operation.etag:
        headers["ETag"] = {
            "description": "Weak, stable across restarts",
            "schema": {"type": "string"},
        }
    return {"description": "OK", "headers": headers, "content": content}


def _operation(operation: Operation, settings: Settings) -> dict[str, Any]:
    params = [_parameter(p) for p in operation.params if p.where != "path"]
    path = [p for p in operation.params if p.where == "path"]
    parameters = [_parameter(p) for p in path] + params
    if operation.fhir:
        parameters.append(_format_param(operation))
        parameters.append({"$ref": "#/components/parameters/pretty"})
    responses: dict[str, Any] = {"200": _success(operation, settings)}
    if operation.etag:
        responses["304"] = {
            "description": "Not modified (If-None-Match matched the ETag)",
            "headers": {"X-Request-ID": REQUEST_ID, "ETag": {"schema": {"type": "string"}}},
        }
    statuses = set(ALWAYS) | set(operation.errors)
    if settings.api_tokens and operation.auth:
        statuses.add(401)
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    result: dict[str, Any] = {
        "operationId": operation.name,
        "summary": operation.summary,
        "tags": [operation.resource or ("system" if not operation.fhir else "operations")],
        "parameters": parameters,
        "responses": responses,
    }
    if operation.description:
        result["description"] = operation.description
    if operation.successor:
        result["deprecated"] = True
    if operation.consumes:
        result["requestBody"] = _request_body(operation, settings)
    if settings.api_tokens:
        result["security"] = [{"bearer": []}] if operation.auth else []
    return result


def _error_response(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": REQUEST_ID}
    if status == 503:
        headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
    if status == 401:
        headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
    return {
        "description": f"{HTTPStatus(status).phrase}: an OperationOutcome says why",
        "headers": headers,
        "content": {FHIR_JSON_TYPE: {"schema": ref("OperationOutcome")}},
    }


def openapi(operations: Iterable[Operation], settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, settings
        )
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "fms-fhir",
            "version": software_version(),
            "summary": "FHIR R4 adapter for fibromyalgia care",
            "description": (
                "FHIR R4 (4.0.1) JSON over HTTP: Questionnaires, validation and extraction of "
                "QuestionnaireResponses, conversions of answers documents, spreadsheets and LDN "
                "regimens. Every error body is an OperationOutcome. Generated from the same "
                "registry as the routes and /metadata."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": components(),
            "parameters": {
                "pretty": {
                    "name": "_pretty",
                    "in": "query",
                    "required": False,
                    "description": "true: indented JSON",
                    "schema": {"enum": ["true", "false"]},
                }
            },
            "responses": {f"E{status}": _error_response(status) for status in ERROR_STATUSES},
        },
    }
    if settings.api_tokens:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "FMS_FHIR_API_TOKENS"}
        }
    return document
