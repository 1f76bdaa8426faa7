"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of what the routes read and write.

Our own inputs (the answers document, the LDN regimen, the sheet contract, the upload form) are
derived from their marshmallow schemas by apispec (`input_schemas`): the schema that checks an
input is the one source of its served description, field docs included. FHIR bodies are
described by hand at the level an engine needs (resourceType, the fields this service reads or
always writes), open to every other element: they are FHIR's, the R4 StructureDefinitions remain
the authority, and the service checks FHIR input with the R4B models.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from marshmallow import fields

from adapter import __version__, registry
from adapter.api import MAX_DOCUMENTS
from adapter.bundle import BUNDLE_TYPES
from adapter.schemas import (
    AnswerMap,
    AnswersDocumentSchema,
    InstrumentId,
    RegimenSchema,
    SheetUploadSchema,
    Strict,
    UploadedFile,
)
from adapter.sheets.contract import ContractSchema

OPENAPI_VERSION = "3.1.0"
INPUTS: dict[str, type[marshmallow.Schema]] = {
    "AnswersDocument": AnswersDocumentSchema,
    "Regimen": RegimenSchema,
    "SheetContract": ContractSchema,
    "SheetUpload": SheetUploadSchema,
}
"""Component name -> the marshmallow schema that checks that input. Nested schemas get their own
component (`Subject`, `Identifier`, ...), private ones (`_Name`) are written inline."""
EXTRA_KEYWORDS = ("contentMediaType",)
"""JSON Schema 2020-12 keywords apispec does not copy from a field's metadata."""


def _component_name(schema: type[marshmallow.Schema] | marshmallow.Schema) -> str | None:
    kind = schema if isinstance(schema, type) else type(schema)
    name = kind.__name__.removesuffix("Schema")
    return None if name.startswith("_") else name


class _Converter(OpenAPIConverter):
    """apispec's converter, and what it cannot say itself: the `exactly_one` rule of `Strict`
    schemas (a `@validates_schema` is opaque to it) and `additionalProperties: false` for a
    schema that refuses unknown fields even when it has a `Meta.description` (apispec 6 writes
    one or the other)."""

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)
        instance = schema() if isinstance(schema, type) else schema
        if instance.unknown == marshmallow.RAISE:
            jsonschema["additionalProperties"] = False
        if isinstance(instance, Strict) and instance.exactly_one:
            jsonschema["oneOf"] = [
                {"required": [instance.fields[name].data_key or name]}
                for name in instance.exactly_one
            ]
        return jsonschema


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


def _our_fields(self: OpenAPIConverter, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """Field classes of adapter.schemas whose JSON Schema is not their marshmallow base's."""
    found: dict[str, Any] = {
        key: field.metadata[key] for key in EXTRA_KEYWORDS if key in field.metadata
    }
    if isinstance(field, InstrumentId):
        found["enum"] = list(registry.instruments())
    return found


def input_schemas() -> dict[str, Any]:
    """The components derived from `INPUTS` (and the schemas they nest), by name."""
    plugin = _Plugin(schema_name_resolver=_component_name)  # type: ignore[arg-type]  # apispec documents None (inline) but types str
    spec = APISpec("fms-fhir", __version__, OPENAPI_VERSION, plugins=[plugin])
    plugin.map_to_openapi_type(AnswerMap, "object", None)
    plugin.map_to_openapi_type(UploadedFile, "string", None)
    assert plugin.converter is not None  # set by APISpec(plugins=...)
    plugin.converter.add_attribute_function(_our_fields)
    for name, schema in INPUTS.items():
        spec.components.schema(name, schema=schema)
    schemas: dict[str, Any] = spec.to_dict()["components"]["schemas"]
    return schemas


def multipart_encoding(schema: Any) -> dict[str, Any]:
    """The OpenAPI `encoding` of a multipart body whose schema refers to one of `INPUTS`: the
    content types of its file parts, from their fields' metadata."""
    reference = schema.get("$ref", "") if isinstance(schema, dict) else ""
    source = INPUTS.get(reference.rsplit("/", 1)[-1])
    if source is None:
        return {}
    return {
        field.data_key or name: {"contentType": field.metadata["part_types"]}
        for name, field in source().fields.items()
        if "part_types" in field.metadata
    }


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
        "Answers": {
            "oneOf": [
                ref("AnswersDocument"),
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_DOCUMENTS,
                    "items": ref("AnswersDocument"),
                },
            ],
            "description": "One answers document, or a JSON array of them (one Bundle)",
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
        **input_schemas(),
    }
