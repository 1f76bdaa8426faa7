"""Around every request: the request id, a CORS preflight, admission (shutting down,
overloaded), cross-site refusal, bearer tokens; then the CORS and baseline security headers, and
one log line (request id, route rule, status, duration; never a body or a value from it).

The guards run from one `before_request` function, in the order above, so that Flask wraps and
calls one hook per request instead of five; each reads the app's state once.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import cast

from flask import Flask, Response, g, request

from adapter.web import origins
from adapter.web.errors import BASELINE_HEADERS
from adapter.web.logs import VALUES_FREE
from adapter.web.operations import Operation
from adapter.web.problems import HttpProblem
from adapter.web.state import WebState, state

log = logging.getLogger("fms_fhir.http")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
"""An incoming X-Request-ID is echoed only when it is this plain (it goes into the logs)."""
CHALLENGE = 'Bearer realm="fms-fhir"'
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
"""Methods logged by name; any other is logged as `other` (the client chose its text)."""


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "").strip()
    g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _operation(current: WebState) -> Operation | None:
    return current.operations.get(request.endpoint or "")


def _admit(current: WebState, operation: Operation | None) -> None:
    if current.shutting_down.is_set():
        raise HttpProblem(
            503,
            "the service is shutting down; retry",
            "transient",
            "shutting-down",
            {"Retry-After": str(current.options.retry_after)},
        )
    if operation is not None and operation.name == "healthz":
        return
    if not current.admit():
        raise HttpProblem(
            503,
            "the service is busy; retry shortly",
            "transient",
            "overloaded",
            {"Retry-After": str(current.options.retry_after)},
        )
    g.admitted = True


def _authenticate(current: WebState, operation: Operation | None) -> None:
    tokens = current.settings.api_tokens
    if not tokens:
        return
    if operation is not None and not operation.auth:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise HttpProblem(
            401,
            "this route needs 'Authorization: Bearer <token>'",
            "login",
            "unauthenticated",
            {"WWW-Authenticate": CHALLENGE},
        )
    presented = given.encode()
    valid = False
    for token in sorted(tokens):  # every token compared, in constant time each
        valid |= hmac.compare_digest(presented, token.encode())
    if not valid:
        raise HttpProblem(
            401,
            "the bearer token is not valid",
            "login",
            "invalid-token",
            {"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )


def _before() -> Response | None:
    """The request id, then a CORS preflight's answer, admission, cross-site refusal, bearer
    tokens: the first to answer or raise ends the request."""
    _start()
    current = state()
    answer = origins.preflight(current)
    if answer is not None:
        return answer
    operation = _operation(current)
    _admit(current, operation)
    origins.refuse_cross_site(current)
    _authenticate(current, operation)
    return None


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    for name, value in BASELINE_HEADERS.items():
        response.headers.setdefault(name, value)  # a page sets its own policy
    origins.add_cors_headers(response, state())
    line = _Line(
        request_id,
        request.method if request.method in METHODS else "other",
        request.url_rule.rule if request.url_rule is not None else "-",
        response.status_code,
        g.get("started"),
    )
    if g.get("streamed") and response.is_streamed:
        # A body made while it is sent (the report page): the request keeps its admission slot,
        # and is logged, until its last piece is sent, or the server stops sending it.
        ended = partial(_streamed_ended, state(), bool(g.pop("admitted", False)), line)
        response.response = _sent_then(cast(Iterable[bytes], response.response), ended)
    else:
        line.log()
    return response


@dataclass(frozen=True)
class _Line:
    """The request's one log line. Values-free by construction (a plain request id, a method of
    METHODS, the route's rule as the app declares it, numbers): the logs filter passes it
    without rewriting it."""

    request_id: str
    method: str
    route: str
    status: int
    started: float | None

    def log(self, complete: bool = True) -> None:
        """`complete` False: a body sent as it was made stopped before its end (it failed, or
        the client left), which its status, sent first, cannot say."""
        duration = (time.perf_counter() - self.started) * 1000 if self.started else 0.0
        log.info(
            "request_id=%s method=%s route=%s status=%d duration_ms=%.1f%s",
            self.request_id,
            self.method,
            self.route,
            self.status,
            duration,
            "" if complete else " body=incomplete",
            extra=VALUES_FREE,
        )


def _sent_then(pieces: Iterable[bytes], ended: Callable[[bool], None]) -> Iterator[bytes]:
    """The pieces, then `ended`: after the last one, when the server stops sending (it closes
    the body), or when the body is dropped unsent. Needs no request context, so nothing is left
    pushed by a body that is never read."""
    complete = False
    try:
        yield from pieces
        complete = True
    finally:
        ended(complete)


def _streamed_ended(current: WebState, admitted: bool, line: _Line, complete: bool) -> None:
    if admitted:
        current.release()
    line.log(complete)


def _release(error: BaseException | None) -> None:
    if g.pop("admitted", False):
        state().release()


def install(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_finish)
    app.teardown_request(_release)
