"""Every error, ours or werkzeug's, becomes an OperationOutcome with the status an engine acts on.

The taxonomy of `adapter.outcome` is mapped here once: InvalidInput carries its status (400, 404,
413, 415, 422), OutputConflict is 409, InternalFault 500. An unexpected exception is logged with
the request id (its type and stack, never its message, which may hold a value from the input) and
answered with a 500 that reveals nothing. A handler never fails itself (it would leave Flask to log
the exception, message and all): a failure in one is answered with a fixed 500.

Where gunicorn or the development server refuses a request before the app sees it (a malformed
request line, headers too large, an unknown transfer coding), `server_outcome` gives them the
same kind of body.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from typing import TypeVar

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from adapter.model import Issue
from adapter.outcome import FmsError, InternalFault, operation_outcome
from adapter.settings import FHIR_JSON, Settings
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


BASELINE_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every answer that sets none itself (JSON, a redirect, an error
of a server layer): the browser is to run and load nothing from it."""
BASELINE_HEADERS = {
    "Content-Security-Policy": BASELINE_POLICY,
    "X-Content-Type-Options": "nosniff",
}
LAYER_MESSAGES = {
    400: "the request is not well-formed HTTP (its request line, a header, or the framing of its "
    "body); {layer} refused it before the service read it",
    403: "{layer} refused the request before the service read it",
    408: "the request did not arrive in time; {layer} stopped waiting for it",
    413: "the request is larger than {layer} accepts",
    414: "the request line (method, path and query) is longer than {layer} accepts",
    417: "an Expect header other than 100-continue is not supported",
    431: "the request's headers are larger than {layer} accepts",
    501: "the request uses a transfer coding other than chunked, which is not read here",
    505: "the request's HTTP version is not supported; send HTTP/1.1",
}
FIXED_500 = (
    b'{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception",'
    b'"diagnostics":"internal error; nothing about it depends on what was sent"}]}\n'
)


def outcome_bytes(issues: list[Issue], settings: Settings) -> bytes:
    return serialize(operation_outcome(issues, settings))


def outcome_response(
    issues: list[Issue], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    body = outcome_bytes(issues, state().settings)
    return Response(body, status=status, headers=dict(headers or {}), content_type=FHIR_JSON)


def server_outcome(status: int, layer: str, settings: Settings) -> bytes:
    """The OperationOutcome of an answer a server layer (gunicorn, the development server) gives
    before the app: it names the layer and the reason, never the request."""
    template = LAYER_MESSAGES.get(status, "{layer} answered before the service read the request")
    issue_type = ISSUE_TYPES.get(status, "exception" if status >= 500 else "invalid")
    issue = Issue(
        "fatal" if status >= 500 else "error",
        issue_type,
        template.format(layer=layer),
        None,
        RULES.get(status, "refused-by-server"),
    )
    try:
        return outcome_bytes([issue], settings)
    except Exception:  # never fail while refusing a request
        return FIXED_500


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
        # the rule codes (constants), never an expression or a message: they may name a value
        rules = ", ".join(sorted({i.rule or "-" for i in error.issues}))[:500]
        log.error(
            "internal fault request_id=%s route=%s issues=%d rules=%s",
            g.get("request_id", "-"),
            _route(),
            len(error.issues),
            rules,
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


Failing = TypeVar("Failing", bound=Exception)


def _never_failing(handler: Callable[[Failing], Response]) -> Callable[[Failing], Response]:
    def handle(error: Failing) -> Response:
        try:
            return handler(error)
        except Exception as failure:
            log.error(
                "error handler failed with %s request_id=%s route=%s",
                type(failure).__name__,
                g.get("request_id", "-"),
                _route(),
            )
            return Response(FIXED_500, status=500, content_type=FHIR_JSON)

    return handle


def install(app: Flask) -> None:
    app.register_error_handler(HTTPException, _never_failing(handle_http))
    app.register_error_handler(FmsError, _never_failing(handle_fms))
    app.register_error_handler(Exception, _never_failing(handle_unexpected))
