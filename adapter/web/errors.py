"""Every error, ours or werkzeug's, becomes an OperationOutcome with the status an engine acts on.

The taxonomy of `adapter.outcome` is mapped here once: InvalidInput carries its status (400, 404,
413, 415, 422), OutputConflict is 409, InternalFault 500. An unexpected exception is logged with
the request id (its type and stack, never its message, which may hold a value from the input) and
answered with a 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from adapter.model import Issue
from adapter.outcome import FmsError, InternalFault, operation_outcome
from adapter.settings import FHIR_JSON
from adapter.web.problems import HttpProblem
from adapter.web.protocol import serialize
from adapter.web.state import state

log = logging.getLogger("fms_fhir.http")

ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    408: "timeout",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "business-rule",
    429: "throttled",
    503: "transient",
}
RULES = {
    400: "bad-request",
    404: "unknown-route",
    405: "method-not-allowed",
    413: "too-large",
    503: "unavailable",
}


def outcome_response(
    issues: list[Issue], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    body = serialize(operation_outcome(issues, state().settings))
    return Response(body, status=status, headers=dict(headers or {}), content_type=FHIR_JSON)


def _http_message(error: HTTPException) -> str:
    if error.code == 404:
        return f"nothing here: {request.method} {request.path} is no route of this service"
    if error.code == 405:
        allowed = ", ".join(getattr(error, "valid_methods", None) or [])
        return f"{request.method} is not allowed here; allowed: {allowed}"
    if error.code == 413:
        return "the request body is larger than this service accepts"
    return error.description or (error.name if error.code else "error")


def handle_http(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {
        key: value for key, value in error.get_headers() if key.lower() not in ("content-type",)
    }
    if isinstance(error, HttpProblem):
        issue = Issue("error", error.issue_type, error.description or "", None, error.rule)
    else:
        issue_type = ISSUE_TYPES.get(status, "exception" if status >= 500 else "invalid")
        issue = Issue("error", issue_type, _http_message(error), None, RULES.get(status))
    return outcome_response([issue], status, headers)


def handle_fms(error: FmsError) -> Response:
    if isinstance(error, InternalFault) or error.status >= 500:
        where = ", ".join(sorted({i.expression or "-" for i in error.issues}))[:500]
        log.error(
            "internal fault request_id=%s route=%s issues=%d at %s",
            g.get("request_id", "-"),
            _route(),
            len(error.issues),
            where,
        )
        return internal_error()
    return outcome_response(error.issues, error.status)


def handle_unexpected(error: Exception) -> Response:
    stack = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    log.error(
        "unexpected %s request_id=%s route=%s\n%s",
        type(error).__name__,
        g.get("request_id", "-"),
        _route(),
        stack.rstrip(),
    )
    return internal_error()


def internal_error() -> Response:
    message = (
        "internal error; nothing about it depends on what was sent. Report request id "
        f"{g.get('request_id', '-')} to the operators"
    )
    return outcome_response([Issue("fatal", "exception", message, None, "internal-error")], 500)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "-"


def install(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(FmsError, handle_fms)
    app.register_error_handler(Exception, handle_unexpected)
