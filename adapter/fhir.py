"""The only module that imports fhir.resources. R4B models: R4B equals R4 for what we emit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from adapter.model import Issue


def _fhirpath(resource_type: str, location: tuple[Any, ...]) -> str:
    path = resource_type
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    return path


def is_resource_type(name: object) -> bool:
    """A concrete FHIR R4 resource type (`Patient`), not a data type (`Coding`) or an abstract
    base (`Resource`, `DomainResource`)."""
    if not isinstance(name, str) or name in ("Resource", "DomainResource"):
        return False
    try:
        return bool(get_fhir_model_class(name).has_resource_base())
    except (KeyError, ValueError):
        return False


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _inner_resources(resource: Mapping[str, Any], path: str) -> Iterator[Issue]:
    """Every resource inside the resource (`contained`, and a contained Bundle's or Parameters'
    resources) whose `resourceType` is no FHIR R4 resource type: the models dispatch on that
    name and fail with a KeyError or TypeError instead of an error, so it is checked first."""
    stack: list[tuple[Any, str, bool]] = [
        (value, f"{path}.{key}", key == "contained") for key, value in resource.items()
    ]
    while stack:
        node, where, in_contained = stack.pop()
        if isinstance(node, Mapping):
            if "resourceType" in node:
                kind = node["resourceType"]
                if not is_resource_type(kind):
                    message = f"{_shown(kind)} is not a FHIR R4 resource type"
                    yield Issue(
                        "error", "structure", message, f"{where}.resourceType", "fhir-structure"
                    )
                    continue
            elif in_contained:
                message = "a contained resource needs its resourceType"
                yield Issue("error", "structure", message, where, "fhir-structure")
                continue
            stack.extend(
                (value, f"{where}.{key}", key == "contained") for key, value in node.items()
            )
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{n}]", in_contained) for n, value in enumerate(node))


def validation_issues(resource: dict[str, Any]) -> list[Issue]:
    """Parse with the R4B model; each pydantic error becomes an issue with a FHIRPath expression."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [Issue("error", "structure", "resourceType is missing", None, "not-a-resource")]
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        message = f"{resource_type!r} is not a FHIR R4 resource type"
        return [Issue("error", "structure", message, "resourceType", "unknown-resource-type")]
    inner = list(_inner_resources(resource, resource_type))
    if inner:
        return inner
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [
            Issue(
                "error",
                "structure",
                str(detail.get("msg", "invalid")),
                _fhirpath(resource_type, tuple(detail.get("loc", ()))),
                "fhir-structure",
            )
            for detail in error.errors()
        ]
    except (KeyError, TypeError, AttributeError) as error:
        # The models fail this way on shapes they do not expect (see `_inner_resources`); an
        # input is never a traceback, so what they could not read is named without the value.
        message = f"the R4 structure could not be read ({type(error).__name__})"
        return [Issue("error", "structure", message, resource_type, "fhir-structure")]
    return []
