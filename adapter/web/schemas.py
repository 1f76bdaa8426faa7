"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the routes read and write.

FHIR bodies are described by their shape at the level an engine needs (resourceType, the fields
this service reads or always writes), open to every other element: the R4 StructureDefinitions
remain the authority, and the service checks FHIR input with the R4B models.
"""

from __future__ import annotations

from typing import Any

from adapter import registry
from adapter.bundle import BUNDLE_TYPES


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _resource(kind: str, properties: dict[str, Any] | None = None, required: tuple = ()) -> dict:
    return {
        "type": "object",
        "description": f"A FHIR R4 {kind}",
        "required": ["resourceType", *required],
        "properties": {"resourceType": {"const": kind}, **(properties or {})},
    }


def components() -> dict[str, Any]:
    """Every named schema; built on demand (the instrument list comes from the registry)."""
    reference = {
        "type": "object",
        "properties": {
            "reference": {"type": "string"},
            "identifier": {
                "type": "object",
                "properties": {"system": {"type": "string"}, "value": {"type": "string"}},
            },
        },
    }
    issue = {
        "type": "object",
        "required": ["severity", "code"],
        "properties": {
            "severity": {"enum": ["fatal", "error", "warning", "information"]},
            "code": {"type": "string"},
            "details": {"type": "object"},
            "diagnostics": {"type": "string"},
            "expression": {"type": "array", "items": {"type": "string"}},
        },
    }
    parameter = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "resource": {"type": "object"},
            "part": {"type": "array", "items": {"type": "object"}},
        },
        "description": "name, and a value[x], a resource or parts",
    }
    entry = {
        "type": "object",
        "properties": {
            "fullUrl": {"type": "string"},
            "resource": {"type": "object", "required": ["resourceType"]},
            "request": {
                "type": "object",
                "required": ["method", "url"],
                "properties": {
                    "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]},
                    "url": {"type": "string"},
                    "ifNoneExist": {"type": "string"},
                },
            },
            "search": {"type": "object", "properties": {"mode": {"type": "string"}}},
        },
    }
    answer_value = {"type": ["boolean", "integer", "number", "string"]}
    instruments = list(registry.instruments())
    answers = {
        "type": "object",
        "description": "The answers document of CONTRACT.md: the simple, non-FHIR input",
        "required": ["instrument", "subject", "authored", "answers"],
        "properties": {
            "instrument": {"enum": instruments},
            "subject": reference,
            "authored": {"type": "string", "description": "FHIR date or dateTime"},
            "status": {"enum": ["completed", "amended", "in-progress"]},
            "answers": {"type": "object", "additionalProperties": answer_value},
        },
    }
    return {
        "OperationOutcome": _resource(
            "OperationOutcome",
            {"issue": {"type": "array", "minItems": 1, "items": issue}},
            ("issue",),
        ),
        "Parameters": _resource("Parameters", {"parameter": {"type": "array", "items": parameter}}),
        "Bundle": _resource(
            "Bundle",
            {
                "type": {"enum": [*BUNDLE_TYPES, "searchset", "collection"]},
                "total": {"type": "integer", "minimum": 0},
                "entry": {"type": "array", "items": entry},
            },
            ("type",),
        ),
        "TransactionBundle": _resource(
            "Bundle",
            {
                "type": {"enum": list(BUNDLE_TYPES)},
                "entry": {"type": "array", "items": entry},
            },
            ("type", "entry"),
        ),
        "Questionnaire": _resource(
            "Questionnaire",
            {
                "id": {"type": "string"},
                "url": {"type": "string"},
                "version": {"type": "string"},
                "status": {"type": "string"},
                "item": {"type": "array", "items": {"type": "object"}},
            },
            ("id", "url", "status"),
        ),
        "CodeSystem": _resource(
            "CodeSystem",
            {
                "id": {"type": "string"},
                "url": {"type": "string"},
                "concept": {"type": "array", "items": {"type": "object"}},
            },
            ("id", "url"),
        ),
        "CapabilityStatement": _resource(
            "CapabilityStatement",
            {
                "fhirVersion": {"const": "4.0.1"},
                "format": {"type": "array", "items": {"type": "string"}},
                "rest": {"type": "array", "items": {"type": "object"}},
            },
            ("fhirVersion", "format", "rest"),
        ),
        "QuestionnaireResponse": _resource(
            "QuestionnaireResponse",
            {
                "questionnaire": {"type": "string"},
                "status": {"type": "string"},
                "subject": reference,
                "authored": {"type": "string"},
                "item": {"type": "array", "items": {"type": "object"}},
            },
        ),
        "MedicationStatement": _resource(
            "MedicationStatement",
            {
                "id": {"type": "string"},
                "status": {"type": "string"},
                "subject": reference,
                "dosage": {"type": "array", "items": {"type": "object"}},
            },
            ("status", "subject"),
        ),
        "AnswersDocument": answers,
        "Answers": {
            "oneOf": [answers, {"type": "array", "minItems": 1, "items": answers}],
            "description": "One answers document, or a JSON array of them",
        },
        "Regimen": {
            "type": "object",
            "description": "The LDN regimen document (see the README): titration or phases",
            "required": ["subject", "status"],
            "properties": {
                "subject": reference,
                "status": {"type": "string"},
                "form": {"type": "string"},
                "timing": {"type": "string"},
                "asserted": {"type": "string"},
                "note": {"type": "string"},
                "titration": {"type": "object"},
                "phases": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
        "SheetUpload": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": "The CSV or XLSX file (its name's ending picks the reader)",
                },
                "contract": {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": "A sheet contract, YAML or JSON; default: the canonical template",
                },
                "format": {"enum": ["transaction", "patient", "ndjson"]},
                "bundle-type": {"enum": list(BUNDLE_TYPES)},
                "patient-system": {"type": "string"},
            },
        },
    }
