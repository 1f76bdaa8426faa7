"""The only module that imports fhir.resources. R4B models: R4B equals R4 for what we emit."""

from __future__ import annotations

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
    return []
