"""The routes of the service: one blueprint per concern, built from the operations each declares.

`CONCERNS` is the one list the routes, /metadata and /openapi.json read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, g

from adapter.web import conversions, definitions, page, report, responses, system
from adapter.web.operations import Operation
from adapter.web.protocol import negotiate

CONCERNS: tuple[tuple[str, tuple[Operation, ...]], ...] = (
    ("system", system.OPERATIONS),
    ("definitions", definitions.OPERATIONS),
    ("responses", responses.OPERATIONS),
    ("conversions", conversions.OPERATIONS),
    ("report", report.OPERATIONS),
    ("page", page.OPERATIONS),
)
"""Blueprint name -> its operations."""


def blueprint(concern: str, operations: Iterable[Operation]) -> Blueprint:
    """A blueprint whose routes are exactly these operations (built per app, never at import)."""
    bp = Blueprint(concern, __name__)
    for operation in operations:

        def view(_operation: Operation = operation, **kwargs: Any) -> Response:
            g.operation = _operation
            negotiate(_operation)
            return _operation.view(**kwargs)

        bp.add_url_rule(
            operation.rule, endpoint=operation.name, view_func=view, methods=[operation.method]
        )
    return bp


def registered_operations() -> tuple[Operation, ...]:
    """Every operation of every concern, in `CONCERNS` order, without creating an app: plain data
    for what describes the service from outside it (the FHIR package's OperationDefinitions)."""
    return tuple(operation for _, operations in CONCERNS for operation in operations)
