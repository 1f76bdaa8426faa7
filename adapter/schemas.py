"""Marshmallow schemas for the non-FHIR inputs. They check shape; instrument rules come after."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from adapter.model import Issue

# FHIR R4 dateTime (http://hl7.org/fhir/R4/datatypes.html#dateTime); the calendar is checked apart.
FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
RESPONSE_STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
# A literal reference to a Patient (scores are about a patient): "Patient/<FHIR id>", nothing more.
REFERENCE = re.compile(r"Patient/[A-Za-z0-9\-.]{1,64}")
# RFC 3986 absolute URI: a scheme, a colon, no spaces (FHIR Identifier.system is a uri).
ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")


def check_uri(value: str) -> None:
    if not ABSOLUTE_URI.fullmatch(value):
        raise ValidationError(
            f"{value[:60]!r} is not an absolute URI (e.g. 'urn:oid:1.2.3' or 'https://...')"
        )


def check_reference(value: str) -> None:
    if not REFERENCE.fullmatch(value):
        raise ValidationError("must be a Patient reference such as 'Patient/123'")


def check_fhir_datetime(value: str) -> None:
    if not FHIR_DATETIME.fullmatch(value):
        raise ValidationError(
            f"{value!r} is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm:ss+zz:zz)"
        )
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        elif len(value) > 10:
            # FHIR allows a leap second (ss = 60), as `validate` does; Python's clock does not.
            text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
            datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{value!r} is not a real calendar date") from None


class FhirDateTime(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        check_fhir_datetime(text)
        return text


class IdentifierSchema(Schema):
    class Meta:
        unknown = RAISE

    system = fields.String(required=True, validate=check_uri)
    value = fields.String(required=True, validate=validate.Length(min=1, max=256))


class SubjectSchema(Schema):
    class Meta:
        unknown = RAISE

    identifier = fields.Nested(IdentifierSchema)
    reference = fields.String(validate=check_reference)
    display = fields.String()

    @validates_schema
    def one_of(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if ("identifier" in data) == ("reference" in data):
            raise ValidationError("give exactly one of 'identifier' or 'reference'")


class RememberedNested(fields.Nested):
    """A nested object loaded once per distinct content: every document of a visit names the
    same subject. Loading is a pure check, so a remembered result is the result; failures are
    not remembered (they raise). Only the last few subjects are kept (a patient identifier is
    not held longer than the requests that name it need)."""

    LIMIT = 32

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[bytes, Any] = {}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a number read as a Decimal, for one: loaded as it is
            return super()._deserialize(value, attr, data, **kwargs)
        found = self._loaded.get(key)
        if found is None:
            found = super()._deserialize(value, attr, data, **kwargs)
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


class AnswersDocumentSchema(Schema):
    """The answers document of CONTRACT.md; item values are checked against the instrument later."""

    class Meta:
        unknown = RAISE

    instrument = fields.String(required=True)
    subject = RememberedNested(SubjectSchema, required=True)
    authored = FhirDateTime(required=True)
    status = fields.String(load_default="completed", validate=validate.OneOf(RESPONSE_STATUSES))
    answers = AnswerMap(required=True)
    test_data = fields.String(validate=validate.Length(min=1, max=2000))
    """Example or synthetic data: what is invented; the resources are tagged HTEST."""


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


class PhaseSchema(Schema):
    class Meta:
        unknown = RAISE

    dose_mg = fields.Decimal(required=True)
    start = fields.Date(required=True)
    end = fields.Date(load_default=None)


class TitrationSchema(Schema):
    """A start-low rule: start_mg, raised by step_mg every every_days days up to target_mg."""

    class Meta:
        unknown = RAISE

    start_mg = fields.Decimal(required=True)
    step_mg = fields.Decimal(required=True)
    every_days = fields.Integer(required=True, strict=True)
    target_mg = fields.Decimal(required=True)
    start = fields.Date(required=True)
    end = fields.Date(load_default=None)


class CodingSchema(Schema):
    class Meta:
        unknown = RAISE

    system = fields.String(required=True)
    code = fields.String(required=True)
    display = fields.String()


MEDICATION_STATEMENT_STATUSES = (
    "active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown",
    "not-taken",
)  # fmt: skip


class RegimenSchema(Schema):
    """An LDN regimen: explicit phases, or a titration rule expanded into phases."""

    class Meta:
        unknown = RAISE

    subject = fields.Nested(SubjectSchema, required=True)
    status = fields.String(
        load_default="active", validate=validate.OneOf(MEDICATION_STATEMENT_STATUSES)
    )
    reason = fields.List(fields.Nested(CodingSchema), load_default=None)
    form = fields.String(load_default="capsule")
    timing = fields.String(load_default="bedtime")
    phases = fields.List(fields.Nested(PhaseSchema))
    titration = fields.Nested(TitrationSchema)
    asserted = fields.Date(load_default=None)
    note = fields.String(load_default=None)
    test_data = fields.String(load_default=None, validate=validate.Length(min=1, max=2000))

    @validates_schema
    def phases_or_titration(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if ("phases" in data) == ("titration" in data):
            raise ValidationError("give either 'phases' or 'titration'")
        if "phases" in data and not data["phases"]:
            raise ValidationError("'phases' holds no phase", "phases")
