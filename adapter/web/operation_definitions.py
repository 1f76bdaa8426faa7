"""One R4 OperationDefinition per FHIR operation of the service, from the registry of operations:
what `/metadata` points at, `GET /OperationDefinition/{id}` serves and the FHIR package holds.

An operation that follows a standard one names it as `base` and declares its parameters in full
(`Operation.parameters`: in and out, types and cardinalities); the others get theirs from their
query parameters and their answer. A deprecated alias is `retired` and names its successor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from adapter import __version__
from adapter.settings import Settings
from adapter.web.capability import capability_statement, definition_url
from adapter.web.operations import Operation, OperationParam, Param


def _fhir_type(schema: Mapping[str, Any]) -> str:
    """The FHIR type of a query parameter, from its JSON Schema."""
    if "enum" in schema:
        return "code"
    kind, form = schema.get("type"), schema.get("format")
    if kind == "integer":
        return "integer"
    if kind == "boolean":
        return "boolean"
    if kind == "number":
        return "decimal"
    if form == "date":
        return "date"
    if form == "uri":
        return "uri"
    return "string"


def _resource_types(schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[str]:
    """The FHIR resource types a JSON Schema admits (following `$ref`s and `oneOf`)."""
    found: list[str] = []
    reference = schema.get("$ref")
    if isinstance(reference, str):
        target = components.get(reference.rsplit("/", 1)[-1], {})
        found.extend(_resource_types(target, components))
    for option in schema.get("oneOf", ()):
        found.extend(_resource_types(option, components))
    kind = schema.get("properties", {}).get("resourceType", {}).get("const")
    if isinstance(kind, str):
        found.append(kind)
    return list(dict.fromkeys(found))


def _machine_name(name: str) -> str:
    """`convert-sheet` -> `ConvertSheet`: OperationDefinition.name is a computer-friendly name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _code(operation: Operation) -> str:
    """The operation's code: its route's `$name`, without the `$`."""
    last = operation.path.rstrip("/").rsplit("/", 1)[-1]
    return last[1:] if last.startswith("$") else operation.name


def _in_parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "use": "in",
        "min": 1 if param.required else 0,
        "max": "1",
        "documentation": param.description,
        "type": _fhir_type(param.schema),
    }


def _return_parameter(operation: Operation, components: Mapping[str, Any]) -> dict[str, Any]:
    kinds = _resource_types(operation.result, components)
    documentation = f"The answer in a JSON media type: {' or '.join(kinds) or 'a resource'}"
    return {
        "name": "return",
        "use": "out",
        "min": 1,
        "max": "1",
        "documentation": documentation,
        "type": kinds[0] if len(kinds) == 1 else "Resource",
    }


def _declared(param: OperationParam) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": param.name,
        "use": param.use,
        "min": param.min,
        "max": param.max,
        "documentation": param.documentation,
        "type": param.type,
    }
    if param.target_profile:
        parameter["targetProfile"] = list(param.target_profile)
    return parameter


def _body(schema: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    """What a request body holds: its schema's description, else its FHIR resource types, else
    the description of the schema it refers to."""
    if schema.get("description"):
        return str(schema["description"])
    kinds = _resource_types(schema, components)
    if kinds:
        return " or ".join(kinds)
    reference = schema.get("$ref")
    target = components.get(reference.rsplit("/", 1)[-1], {}) if isinstance(reference, str) else {}
    return str(target.get("description") or "")


def _comment(operation: Operation, components: Mapping[str, Any]) -> str:
    """The HTTP side, which OperationDefinition has no element for: body, media types, headers."""
    lines = []
    if operation.consumes:
        bodies: dict[str, list[str]] = {}
        for media_type, schema in operation.consumes.items():
            bodies.setdefault(_body(schema, components), []).append(media_type)
        described = "; ".join(
            f"{what} ({', '.join(types)})" if what else ", ".join(types)
            for what, types in bodies.items()
        )
        lines.append(f"{operation.method} with the input as the request body: {described}.")
    lines.append(f"Answers in {', '.join(operation.produces)}, by Accept.")
    for param in operation.params:
        if param.where == "header":
            lines.append(f"Header `{param.name}`: {param.description}.")
    if operation.successor:
        lines.append(
            f"Deprecated: an alias of ${operation.successor}, kept for existing clients; its "
            "answers carry the Deprecation and Link (successor-version) headers."
        )
    return " ".join(lines)


def operation_definition(
    operation: Operation, settings: Settings, components: Mapping[str, Any]
) -> dict[str, Any]:
    """One R4 OperationDefinition from a registry record: what `/metadata` points at."""
    description = operation.description or operation.summary
    if operation.definition:
        description += f"\n\nFollows {operation.definition}."
    if operation.successor:
        description += (
            f"\n\nDeprecated: use ${operation.successor} "
            f"({settings.canonical_base}/OperationDefinition/{operation.successor}); "
            f"`${_code(operation)}` at system level is R4's format conversion."
        )
    resource: dict[str, Any] = {
        "resourceType": "OperationDefinition",
        "id": operation.name,
        "url": definition_url(operation, settings),
        "version": __version__,
        "name": _machine_name(operation.name),
        "title": operation.summary,
        "status": "retired" if operation.successor else "active",
        "kind": "operation",
        "publisher": "fms-fhir",
        "description": description,
        "affectsState": False,
        "code": _code(operation),
        "comment": _comment(operation, components),
    }
    if operation.definition:
        resource["base"] = operation.definition
    if operation.resource is not None:
        resource["resource"] = [operation.resource]
    instance = "{" in operation.path
    resource["system"] = operation.resource is None
    resource["type"] = operation.resource is not None and not instance
    resource["instance"] = instance
    if operation.parameters:
        resource["parameter"] = [_declared(p) for p in operation.parameters]
    else:
        parameters = [_in_parameter(p) for p in operation.params if p.where == "query"]
        resource["parameter"] = [*parameters, _return_parameter(operation, components)]
    return resource


def defined_operations(operations: Iterable[Operation], settings: Settings) -> list[Operation]:
    """The operations that `/metadata` lists as operations, in registry order: those are the
    ones it names an OperationDefinition for."""
    operations = tuple(operations)
    statement = capability_statement(operations, settings)
    named = {
        entry["name"]
        for rest in statement["rest"]
        for holder in [rest, *rest.get("resource", [])]
        for entry in holder.get("operation", [])
    }
    return [operation for operation in operations if operation.name in named]


def operation_definitions(
    operations: Iterable[Operation], settings: Settings
) -> list[dict[str, Any]]:
    """The OperationDefinitions of these operations (an app's, or the whole registry's)."""
    from adapter.web.schemas import components

    schemas = components()
    return [
        operation_definition(op, settings, schemas)
        for op in defined_operations(operations, settings)
    ]


__all__ = ["defined_operations", "operation_definition", "operation_definitions"]
