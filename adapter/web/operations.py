"""The one registry of operations: routes, the CapabilityStatement and the OpenAPI description are
all generated from these records, so none of them can drift from the others.

Each concern module (`definitions`, `responses`, `conversions`, `system`) declares a tuple of
`Operation`s next to its views; `create_app` turns each tuple into a blueprint. A new concern (the
follow-up report, the page) is one more module and one more line in `CONCERNS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Response

from adapter.bundle import BUNDLE_TYPES
from adapter.settings import Settings

FHIR_JSON_TYPE = "application/fhir+json"
JSON_TYPE = "application/json"
NDJSON_TYPE = "application/fhir+ndjson"
CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MULTIPART_TYPE = "multipart/form-data"
OCTET_TYPE = "application/octet-stream"
FHIR_TYPES = (FHIR_JSON_TYPE, JSON_TYPE)
"""What every FHIR operation reads and writes; the first one is the default."""

Interaction = Literal["read", "search-type", "operation", "capabilities", "system"]
"""`system` routes (liveness, OpenAPI) are not FHIR and stay out of the CapabilityStatement."""

View = Callable[..., Response]


@dataclass(frozen=True)
class Param:
    """A query or path parameter (path parameters are written `{name}` in `Operation.path`)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: Literal["query", "path", "header"] = "query"
    required: bool = False


@dataclass(frozen=True)
class OperationParam:
    """One parameter of a FHIR operation as its OperationDefinition declares it (R4
    OperationDefinition.parameter): by name, direction, cardinality and FHIR type, whether it
    comes in the body's `Parameters`, the query or is the body itself."""

    name: str
    use: Literal["in", "out"]
    min: int
    max: str
    type: str
    documentation: str
    target_profile: tuple[str, ...] = ()


@dataclass(frozen=True)
class Examples:
    """Request bodies by name and the answer to the first one, produced by the use cases
    themselves (see `examples.py`), so an example cannot disagree with the code."""

    requests: Mapping[str, Any] = field(default_factory=dict)
    response: Any = None
    request_type: str | None = None
    """Media type the request examples are written in (default: every JSON type)."""


@dataclass(frozen=True)
class Operation:
    name: str
    """Unique: the OpenAPI operationId, the Flask endpoint and, for FHIR operations, the name in
    the CapabilityStatement (without `$`) and the OperationDefinition id."""
    method: Literal["GET", "POST"]
    path: str
    """OpenAPI style, e.g. `/Questionnaire/{id}`."""
    view: View
    summary: str
    description: str = ""
    interaction: Interaction = "operation"
    resource: str | None = None
    """The FHIR resource type the route belongs to; None for system-level routes."""
    consumes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Request media type -> JSON Schema of the body; empty for routes without a body."""
    produces: tuple[str, ...] = FHIR_TYPES
    result: Mapping[str, Any] = field(default_factory=dict)
    """JSON Schema of a 200 answer in a JSON media type."""
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    """Error statuses this route answers besides those every route may answer."""
    response_headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    examples: Callable[[Settings], Examples] | None = None
    auth: bool = True
    """False: open even when bearer tokens are configured (/healthz, /metadata)."""
    etag: bool = False
    fhir: bool = True
    """FHIR conventions apply: `_format`, `_pretty`, OperationOutcome bodies."""
    definition: str | None = None
    """For FHIR operations: the standard operation this one follows (the canonical url of its
    OperationDefinition), named in the documentation and as the OperationDefinition's `base`."""
    parameters: tuple[OperationParam, ...] = ()
    """The OperationDefinition's parameters, in and out, when they are more than the query
    parameters and one `return` (those are derived from `params` and `result` otherwise)."""
    successor: str | None = None
    """A deprecated alias: the name of the operation that replaces it (its answers carry the
    `Deprecation` and `Link` headers; /metadata, OpenAPI and its OperationDefinition say so)."""

    @property
    def rule(self) -> str:
        """The Flask rule: `{id}` becomes `<id>`."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


def endpoint(concern: str, operation: Operation) -> str:
    return f"{concern}.{operation.name}"


# Parameters several operations share.
QUESTIONNAIRE = Param(
    "questionnaire",
    "The Questionnaire (instrument id or canonical url) when the response leaves it empty",
)
BUNDLE_TYPE = Param(
    "bundle-type",
    "transaction (all or nothing, the default) or batch (for servers that cap transactions)",
    {"enum": list(BUNDLE_TYPES)},
)
PREFER = Param(
    "Prefer",
    "`return=OperationOutcome`: answer the warnings instead of the Bundle",
    {"enum": ["return=representation", "return=OperationOutcome"]},
    "header",
)
