"""`/metadata`: the CapabilityStatement, generated from the registry of operations, so it lists
exactly the FHIR interactions and operations the routes serve."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from typing import Any

from adapter.settings import FHIR_VERSION, Settings
from adapter.web.operations import Operation

RELEASED = "2025-06-01"
"""CapabilityStatement.date: when this statement last changed (a constant keeps the ETag stable)."""


def software_version() -> str:
    try:
        return metadata.version("fms-fhir")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def definition_url(operation: Operation, settings: Settings) -> str:
    return f"{settings.canonical_base}/OperationDefinition/{operation.name}"


def _operation(operation: Operation, settings: Settings) -> dict[str, Any]:
    documentation = operation.summary
    if operation.definition:
        documentation += f"; follows {operation.definition}"
    if operation.successor:
        documentation = (
            f"DEPRECATED: use ${operation.successor}. {documentation}; kept as an alias for "
            "existing clients (its answers carry a Deprecation header)"
        )
    return {
        "name": operation.name,
        "definition": definition_url(operation, settings),
        "documentation": documentation,
    }


def capability_statement(operations: Iterable[Operation], settings: Settings) -> dict[str, Any]:
    by_type: dict[str, dict[str, Any]] = {}
    system_operations: list[dict[str, Any]] = []
    for operation in operations:
        if operation.interaction in ("system", "capabilities"):
            continue
        if operation.resource is None:
            system_operations.append(_operation(operation, settings))
            continue
        entry = by_type.setdefault(operation.resource, {"type": operation.resource})
        if operation.interaction == "operation":
            entry.setdefault("operation", []).append(_operation(operation, settings))
        else:
            interaction = {"code": operation.interaction, "documentation": operation.summary}
            entry.setdefault("interaction", []).append(interaction)
            search = [p for p in operation.params if p.where == "query"]
            if operation.interaction == "search-type" and search:
                entry["searchParam"] = [
                    {
                        "name": p.name,
                        "type": "token" if p.name == "_id" else "uri",
                        "documentation": p.description,
                    }
                    for p in search
                ]
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "FHIR R4 adapter for fibromyalgia care; JSON only",
        "resource": [by_type[kind] for kind in sorted(by_type)],
    }
    if settings.api_tokens:
        rest["security"] = {
            "cors": False,
            "description": "Every route except /metadata and /healthz needs "
            "'Authorization: Bearer <token>'",
        }
    if system_operations:
        rest["operation"] = system_operations
    version = software_version()
    return {
        "resourceType": "CapabilityStatement",
        "id": "fms-fhir",
        "url": f"{settings.canonical_base}/CapabilityStatement/fms-fhir",
        "version": version,
        "name": "FmsFhirAdapter",
        "title": "fms-fhir: FHIR R4 adapter for fibromyalgia care",
        "status": "active",
        "date": RELEASED,
        "publisher": "fms-fhir",
        "kind": "instance",
        "software": {"name": "fms-fhir", "version": version},
        "implementation": {"description": "fms-fhir HTTP service"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
