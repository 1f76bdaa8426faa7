"""Marshmallow schemas of the non-FHIR inputs: the answers document, the LDN regimen and the
sheet upload form. They check shape (instrument rules come after), and they are the one source
of the JSON Schemas `/openapi.json` serves (`adapter.web.schemas` derives them with apispec):
each field's `metadata` carries its description, and every rule written as a marshmallow
validator (`OneOf`, `Length`, `FullMatch`, `Strict.exactly_one`) becomes a JSON Schema keyword."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import Any, ClassVar

import orjson
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from adapter.bundle import BUNDLE_TYPES, FORMATS
from adapter.model import Issue
from mappings import ldn

# FHIR R4 dateTime (http://hl7.org/fhir/R4/datatypes.html#dateTime); the calendar is checked apart.
FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
RESPONSE_STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
"""QuestionnaireResponse.status (R4): every one is accepted; `stopped` and `in-progress` let
required items be missing (a response left incomplete)."""
# A literal reference to a Patient (scores are about a patient): "Patient/<FHIR id>", nothing more.
REFERENCE = re.compile(r"Patient/[A-Za-z0-9\-.]{1,64}")
# RFC 3986 absolute URI: a scheme, a colon, no spaces (FHIR Identifier.system is a uri). The
# characters besides `\s` are spaces to one regex engine and not to another (Python, ECMA-262,
# Rust): named, they are refused by all, so the served `pattern` admits what this admits.
ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x1c-\x1f\x85\ufeff]+")


class FullMatch(validate.Validator):
    """The whole value matches `pattern`. `regex` is the pattern anchored as JSON Schema wants
    (`^...$`, no Python-only syntax): apispec writes it as the field's `pattern`, so the served
    schema and the check are one expression. `{value}` in `error` is the value, shortened."""

    def __init__(self, pattern: re.Pattern[str], error: str) -> None:
        self.regex = re.compile(f"^(?:{pattern.pattern})$")
        self.message = error

    def _repr_args(self) -> str:
        return f"regex={self.regex.pattern!r}"

    def __call__(self, value: str) -> str:
        if not self.regex.fullmatch(value):
            raise ValidationError(self.message.format(value=repr(value[:60])))
        return value


class FhirDateTimeCheck(FullMatch):
    """A FHIR date or dateTime that is also a real calendar day."""

    def __call__(self, value: str) -> str:
        super().__call__(value)
        try:
            if len(value) == 10:
                date.fromisoformat(value)
            elif len(value) > 10:
                # FHIR allows a leap second (ss = 60), as `validate` does; Python's clock does not.
                text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
                datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{value!r} is not a real calendar date") from None
        return value


check_uri = FullMatch(
    ABSOLUTE_URI, "{value} is not an absolute URI (e.g. 'urn:oid:1.2.3' or 'https://...')"
)
check_reference = FullMatch(REFERENCE, "must be a Patient reference such as 'Patient/123'")
check_fhir_datetime = FhirDateTimeCheck(
    FHIR_DATETIME,
    "{value} is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
    "YYYY-MM-DDThh:mm:ss+zz:zz)",
)


class Strict(Schema):
    """Unknown fields are refused. `exactly_one` names fields of which exactly one must be given:
    checked on load, and written as the JSON Schema `oneOf` of their `required`s."""

    exactly_one: ClassVar[tuple[str, ...]] = ()

    class Meta:
        unknown = RAISE

    @validates_schema
    def _exactly_one(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if self.exactly_one and sum(name in data for name in self.exactly_one) != 1:
            names = " or ".join(repr(name) for name in self.exactly_one)
            raise ValidationError(f"give exactly one of {names}")


class IdentifierSchema(Strict):
    class Meta(Strict.Meta):
        description = "A FHIR Identifier: the patient's id in a system of ids"

    system = fields.String(
        required=True,
        validate=check_uri,
        metadata={
            "description": "The system of ids, an absolute URI",
            "examples": ["urn:example:mrn"],
        },
    )
    value = fields.String(
        required=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "The id in that system", "examples": ["P001"]},
    )


class SubjectSchema(Strict):
    class Meta(Strict.Meta):
        description = "Who the document is about: an identifier, or a literal Patient reference"

    exactly_one = ("identifier", "reference")

    identifier = fields.Nested(IdentifierSchema)
    reference = fields.String(
        validate=check_reference,
        metadata={"description": "`Patient/<id>`, nothing more", "examples": ["Patient/123"]},
    )
    display = fields.String(metadata={"description": "A name to show; copied as it is"})


class RememberedNested(fields.Nested):
    """A nested object loaded once per distinct content: every document of a visit names the
    same subject. Loading is a pure check, so a remembered result is the result; failures are
    not remembered (they raise). Only the last few subjects are kept (a patient identifier is
    not held longer than the requests that name it need)."""

    LIMIT = 32

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[bytes, Any] = {}

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | AbstractSet[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        try:
            key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a number read as a Decimal, for one: loaded as it is
            return super()._deserialize(value, attr, data, partial, **kwargs)
        found = self._loaded.get(key)
        if found is None:
            found = super()._deserialize(value, attr, data, partial, **kwargs)
            if len(self._loaded) >= self.LIMIT:
                self._loaded.clear()
            self._loaded[key] = found
        # A copy, one level down (a subject is {identifier: {system, value}} at most).
        return {k: dict(v) if isinstance(v, dict) else v for k, v in found.items()}


class AnswerMap(fields.Field):
    """linkId -> raw answer. Each answer is checked against its item later (adapter.rules), so
    only the shape is checked here: a generic Dict field would deserialize every key and value."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("an object of linkId -> answer")
        if not all(isinstance(key, str) for key in value):
            raise ValidationError("every key is a linkId (a string)")
        return value


class InstrumentId(fields.String):
    """An instrument id. Checked against the registry after the shape (`adapter.answers`, which
    names the known ones); `adapter.web.schemas` lists the registry's ids as its enum."""


ANSWER_VALUE = {
    "type": ["boolean", "integer", "string", "null"],
    "description": (
        "true or false for a yes/no item, a whole number for a number item, the integer score "
        "or the answer code for a choice item; null (or leaving the linkId out) for no answer"
    ),
}


class AnswersDocumentSchema(Strict):
    """The answers document; item values are checked against the instrument later."""

    class Meta(Strict.Meta):
        description = (
            "An answers document: one administration of one instrument, the simple non-FHIR "
            "input of `$convert` and `fms-fhir convert`"
        )

    instrument = InstrumentId(
        required=True, metadata={"description": "The instrument's id", "examples": ["phq4"]}
    )
    subject = RememberedNested(SubjectSchema, required=True)
    authored = fields.String(
        required=True,
        validate=check_fhir_datetime,
        metadata={
            "description": "When it was answered: a FHIR date or dateTime",
            "examples": ["2024-03-01"],
        },
    )
    status = fields.String(
        load_default="completed",
        validate=validate.OneOf(RESPONSE_STATUSES),
        metadata={
            "description": (
                "The QuestionnaireResponse status. `stopped` (left incomplete) and "
                "`in-progress` may lack required items; scores that lack items are not computed"
            )
        },
    )
    answers = AnswerMap(
        required=True,
        metadata={
            "description": "linkId -> answer; each answer is checked against its item",
            "additionalProperties": ANSWER_VALUE,
            "examples": [{"phq4-nervous": 1, "phq4-worry": 2}],
        },
    )
    test_data = fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": (
                "Example or synthetic data: what is invented; every resource made from it is "
                "tagged HTEST"
            )
        },
    )


def _flatten(messages: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(messages, Mapping):
        found: list[tuple[str, str]] = []
        for key, value in messages.items():
            if key == "_schema":
                found.extend(_flatten(value, path))
            elif isinstance(key, int):
                found.extend(_flatten(value, f"{path}[{key}]"))
            else:
                found.extend(_flatten(value, f"{path}.{key}" if path else str(key)))
        return found
    if isinstance(messages, list):
        return [(path, str(message)) for message in messages]
    return [(path, str(messages))]


def issues_from(error: ValidationError, prefix: str = "") -> list[Issue]:
    """Marshmallow messages -> issues whose expression names the field."""
    issues = []
    for path, message in _flatten(error.messages, prefix):
        if message == "Unknown field.":
            code, rule, message = (
                "structure",
                "unknown-field",
                f"unknown field {path.split('.')[-1]!r}",
            )
        elif message == "Missing data for required field.":
            code, rule, message = "required", "missing-field", "required field is missing"
        else:
            code, rule = "value", "invalid-value"
        issues.append(Issue("error", code, message, expression=path or None, rule=rule))
    return issues


DATE = "An ISO date (YYYY-MM-DD)"


class PhaseSchema(Strict):
    class Meta(Strict.Meta):
        description = "One daily dose over a period"

    dose_mg = fields.Decimal(
        required=True,
        metadata={"description": "The daily dose in mg, written exactly", "examples": [4.5]},
    )
    start = fields.Date(required=True, metadata={"description": f"{DATE}: the first day"})
    end = fields.Date(
        load_default=None,
        metadata={"description": f"{DATE}: the last day taken; none while ongoing (last phase)"},
    )


class TitrationSchema(Strict):
    """A start-low rule: start_mg, raised by step_mg every every_days days up to target_mg."""

    class Meta(Strict.Meta):
        description = (
            "A start-low rule: `start_mg`, raised by `step_mg` every `every_days` days up to "
            "`target_mg` (a target off the step is reached in a last, smaller step)"
        )

    start_mg = fields.Decimal(required=True, metadata={"description": "The first daily dose, mg"})
    step_mg = fields.Decimal(required=True, metadata={"description": "Each raise, mg"})
    every_days = fields.Integer(
        required=True, strict=True, metadata={"description": "Days between raises"}
    )
    target_mg = fields.Decimal(required=True, metadata={"description": "The last daily dose, mg"})
    start = fields.Date(required=True, metadata={"description": f"{DATE}: the first day"})
    end = fields.Date(
        load_default=None,
        metadata={"description": f"{DATE}: the last day at the target; none while ongoing"},
    )


class CodingSchema(Strict):
    class Meta(Strict.Meta):
        description = "A FHIR Coding"

    system = fields.String(required=True, metadata={"description": "The code system's URI"})
    code = fields.String(required=True, metadata={"description": "The code in that system"})
    display = fields.String(metadata={"description": "The code's text"})


MEDICATION_STATEMENT_STATUSES = (
    "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
    "not-taken",
)  # fmt: skip


class RegimenSchema(Strict):
    """An LDN regimen: explicit phases, or a titration rule expanded into phases."""

    class Meta(Strict.Meta):
        description = (
            "An LDN regimen document, the input of `$from-regimen` and `fms-fhir regimen`: "
            "explicit `phases`, or a `titration` rule expanded into phases"
        )

    exactly_one = ("phases", "titration")

    subject = fields.Nested(SubjectSchema, required=True)
    status = fields.String(
        load_default="active",
        validate=validate.OneOf(MEDICATION_STATEMENT_STATUSES),
        metadata={"description": "The MedicationStatement status"},
    )
    reason = fields.List(
        fields.Nested(CodingSchema),
        load_default=None,
        metadata={"description": "Why it is taken; default fibromyalgia (SNOMED CT, ICD-10)"},
    )
    # Checked by the regimen builder against the same tables (rules unknown-form, unknown-timing).
    form = fields.String(
        load_default="capsule",
        metadata={"description": "The compounded form", "enum": list(ldn.FORMS)},
    )
    timing = fields.String(
        load_default="bedtime",
        metadata={"description": "When the daily dose is taken", "enum": list(ldn.TIMINGS)},
    )
    phases = fields.List(
        fields.Nested(PhaseSchema),
        validate=validate.Length(min=1, error="'phases' holds no phase"),
        metadata={"description": "The phases in order, with inclusive dates; only the last open"},
    )
    titration = fields.Nested(TitrationSchema)
    asserted = fields.Date(
        load_default=None,
        metadata={"description": f"{DATE}: dateAsserted; default the start of the last phase"},
    )
    note = fields.String(load_default=None, metadata={"description": "A note, copied as it is"})
    test_data = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "Example or synthetic data: what is invented; the resource is tagged HTEST"
        },
    )


class UploadedFile(fields.Raw):
    """A file part of a multipart form (bytes on the wire). `metadata["part_types"]` is what the
    part may be sent as (the OpenAPI encoding's contentType)."""


OCTET_STREAM = "application/octet-stream"


class SheetUploadSchema(Schema):
    """The multipart form of `POST /$convert-sheet` and of the page. The views read its parts
    with the same tables (`FORMATS`, `BUNDLE_TYPES`) that give the enums here; other parts are
    ignored, as the views ignore them."""

    class Meta:
        unknown = EXCLUDE
        description = "A spreadsheet upload: the sheet, and optionally a contract and options"

    file = UploadedFile(
        required=True,
        metadata={
            "description": "The CSV or XLSX file (its name's ending picks the reader)",
            "contentMediaType": OCTET_STREAM,
            "part_types": "text/csv, application/octet-stream",
        },
    )
    contract = UploadedFile(
        metadata={
            "description": (
                "A sheet contract, YAML or JSON, shaped as the SheetContract schema; "
                "default: the canonical template (a column per linkId and score code)"
            ),
            "contentMediaType": OCTET_STREAM,
            "part_types": "application/yaml, application/json, text/plain",
        },
    )
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "transaction (a Bundle per visit), patient (a Bundle per patient) or "
            "ndjson; default transaction, or ndjson when that is what Accept asks for"
        },
    )
    bundle_type = fields.String(
        data_key="bundle-type",
        validate=validate.OneOf(BUNDLE_TYPES),
        metadata={"description": "The Bundles' type; default transaction"},
    )
    patient_system = fields.String(
        data_key="patient-system",
        validate=check_uri,
        metadata={
            "description": "Identifier system of the patient column (overrides the contract)"
        },
    )
