"""The sheet contract: which column holds what, how values and dates are written.

The default contract is the canonical template of docs/sheets.md (columns named by linkId and
score code). Other layouts are described by a YAML or JSON file, checked here with marshmallow.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from adapter import registry
from adapter.instrument import Item, Score
from adapter.jsonio import depth_exceeds
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.schemas import check_uri, issues_from
from adapter.settings import Settings
from mappings import ldn

TRUE_WORDS = ("x", "ja", "j", "yes", "y", "true", "wahr", "1", "oui", "si", "sí", "✓")
FALSE_WORDS = ("nein", "n", "no", "false", "falsch", "0", "non", "-")


def targets() -> dict[str, Item | Score]:
    """Every linkId and score code a column may map to."""
    found: dict[str, Item | Score] = {}
    for instrument in registry.instruments().values():
        for item in instrument.answerable_items():
            found.setdefault(item.link_id, item)
        for score in instrument.scores:
            if score.emit == "always":  # a flag exists only when computed: no sheet reports it
                found.setdefault(score.code.code, score)
    return found


@dataclass(frozen=True)
class ColumnRule:
    header: str
    target: str
    blank_is_false: bool = False
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SheetContract:
    patient_column: str = "patient_id"
    patient_system: str | None = None
    """None: the settings' default system under the canonical base."""
    date_column: str = "visit_date"
    date_formats: tuple[str, ...] = ()
    dose_column: str | None = "ldn_dose_mg"
    columns: tuple[ColumnRule, ...] = ()
    delimiter: str | None = None
    encoding: str | None = None
    decimal_comma: bool = False
    true_values: frozenset[str] = frozenset(TRUE_WORDS)
    false_values: frozenset[str] = frozenset(FALSE_WORDS)
    sheet: str | None = None
    on_mismatch: Literal["reject", "warn"] = "reject"
    ldn_form: str | None = None
    """None: the sheet does not say; the MedicationStatement claims no form (nor route)."""
    ldn_timing: str | None = None
    """None: the sheet gives a daily amount only; no time of day or frequency is claimed."""
    test_data: str | None = None
    """Example or synthetic sheet: what is invented; every resource is tagged HTEST."""
    prefer: tuple[str, ...] = ()
    """Instruments chosen among those with the same items (e.g. fm2011 over fm2016)."""

    @property
    def by_header(self) -> dict[str, ColumnRule]:
        return {rule.header: rule for rule in self.columns}


def default_contract(patient_system: str | None = None) -> SheetContract:
    """The canonical template: a column per linkId and per score code."""
    return SheetContract(
        patient_system=patient_system,
        columns=tuple(ColumnRule(target, target) for target in targets()),
    )


def template_columns() -> list[str]:
    return ["patient_id", "visit_date", "ldn_dose_mg", *targets()]


class _Column(fields.Field):
    """A column is a target name, or {to, blank, values}."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return {"to": value}
        if isinstance(value, Mapping):
            unknown = set(value) - {"to", "blank", "values"}
            if unknown:
                raise ValidationError(f"unknown keys {sorted(unknown)}; use to, blank, values")
            if not isinstance(value.get("to"), str):
                raise ValidationError("'to' names a linkId or score code")
            if value.get("blank", "absent") not in ("absent", False, "false"):
                raise ValidationError("'blank' is 'absent' (default) or false")
            if "values" in value:
                values = value["values"]
                if not isinstance(values, Mapping):
                    raise ValidationError("'values' maps cell texts to values")
                scalar = (str, int, float, bool)
                wrong = [
                    k
                    for k, v in values.items()
                    if not isinstance(v, scalar) or not isinstance(k, scalar)
                ]
                if wrong:
                    raise ValidationError(
                        f"'values' maps a cell text to a number, a word or true/false; "
                        f"{str(wrong[0])[:40]!r} maps to something else"
                    )
            return dict(value)
        raise ValidationError("a column maps to a linkId, or to {to, blank, values}")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


check_system = check_uri


class _PatientSchema(_Strict):
    column = fields.String(required=True)
    system = fields.String(load_default=None, validate=check_system)


def check_date_format(fmt: str) -> None:
    """A format names a whole date (day, month, year) and is one strptime understands."""
    if not (
        "%d" in fmt
        and any(m in fmt for m in ("%m", "%b", "%B"))
        and any(y in fmt for y in ("%Y", "%y"))
    ):
        raise ValidationError(
            f"{fmt[:40]!r} does not name a day (%d), a month (%m) and a year (%Y)"
        )
    try:
        datetime.strptime(date(2024, 1, 31).strftime(fmt), fmt)
    except ValueError as error:
        raise ValidationError(f"{fmt[:40]!r} is not a date format: {error}") from None


def check_encoding(name: str) -> None:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValidationError(
            f"unknown encoding {name[:40]!r} (e.g. utf-8, cp1252, latin-1)"
        ) from None


class _DateSchema(_Strict):
    column = fields.String(required=True)
    formats = fields.List(fields.String(validate=check_date_format), load_default=list)


class _DoseSchema(_Strict):
    column = fields.String(required=True)


class _CsvSchema(_Strict):
    delimiter = fields.String(load_default=None, validate=validate.Length(equal=1))
    encoding = fields.String(load_default=None, validate=check_encoding)
    decimal_comma = fields.Boolean(load_default=False, truthy={True}, falsy={False})


class _LdnSchema(_Strict):
    form = fields.String(load_default=None, validate=validate.OneOf(list(ldn.FORMS)))
    timing = fields.String(load_default=None, validate=validate.OneOf(list(ldn.TIMINGS)))


class ContractSchema(_Strict):
    patient = fields.Nested(_PatientSchema, required=True)
    visit_date = fields.Nested(_DateSchema, required=True)
    ldn_dose = fields.Nested(_DoseSchema, load_default=None)
    csv = fields.Nested(_CsvSchema, load_default=dict)
    true_values = fields.List(fields.Raw(), load_default=None)
    false_values = fields.List(fields.Raw(), load_default=None)
    sheet = fields.String(load_default=None)
    on_mismatch = fields.String(load_default="reject", validate=validate.OneOf(["reject", "warn"]))
    ldn = fields.Nested(_LdnSchema, load_default=dict)
    test_data = fields.String(load_default=None, validate=validate.Length(min=1, max=2000))
    prefer = fields.List(fields.String(), load_default=list)
    columns = fields.Dict(keys=fields.String(), values=_Column(), required=True)

    @validates_schema
    def known_instruments(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        unknown = [i for i in data.get("prefer", []) if registry.get(i) is None]
        if unknown:
            known = ", ".join(registry.instruments())
            raise ValidationError({"prefer": f"unknown instrument {unknown[0]!r}; known: {known}"})

    @validates_schema
    def known_targets(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        known = targets()
        errors: dict[str, str] = {}
        seen: dict[str, str] = {}
        for header, column in data.get("columns", {}).items():
            target = column["to"]
            if target not in known:
                errors[header] = f"{target!r} is not a linkId or score code"
            elif target in seen:
                errors[header] = f"{target!r} is already the target of column {seen[target]!r}"
            else:
                seen[target] = header
        if errors:
            raise ValidationError({"columns": errors})


def _words(values: list[Any] | None, default: tuple[str, ...]) -> frozenset[str]:
    return (
        frozenset(str(v).strip().lower() for v in values)
        if values is not None
        else frozenset(default)
    )


def contract_from_data(data: Any) -> SheetContract:
    try:
        loaded = ContractSchema().load(data if isinstance(data, Mapping) else {})
    except ValidationError as error:
        raise InvalidInput([i.under("contract") for i in issues_from(error)]) from None
    csv = loaded["csv"]
    columns = tuple(
        ColumnRule(
            header=header,
            target=column["to"],
            blank_is_false=column.get("blank") in (False, "false"),
            values={str(k).strip().lower(): v for k, v in column["values"].items()}
            if "values" in column
            else None,
        )
        for header, column in loaded["columns"].items()
    )
    return SheetContract(
        patient_column=loaded["patient"]["column"],
        patient_system=loaded["patient"]["system"],
        date_column=loaded["visit_date"]["column"],
        date_formats=tuple(loaded["visit_date"]["formats"]),
        dose_column=loaded["ldn_dose"]["column"] if loaded["ldn_dose"] else None,
        columns=columns,
        delimiter=csv.get("delimiter"),
        encoding=csv.get("encoding"),
        decimal_comma=csv.get("decimal_comma", False),
        true_values=_words(loaded["true_values"], TRUE_WORDS),
        false_values=_words(loaded["false_values"], FALSE_WORDS),
        sheet=loaded["sheet"],
        on_mismatch=loaded["on_mismatch"],
        ldn_form=loaded["ldn"].get("form"),
        ldn_timing=loaded["ldn"].get("timing"),
        test_data=loaded["test_data"],
        prefer=tuple(loaded["prefer"]),
    )


def contract_from_bytes(data: bytes, name: str, settings: Settings) -> SheetContract:
    """A YAML or JSON contract (UTF-8, with or without BOM), checked before any row is read."""

    def bad(message: str) -> InvalidInput:
        return InvalidInput([Issue("fatal", "structure", message, None, "invalid-contract")], 400)

    if len(data) > settings.max_input_bytes:
        raise bad(f"the contract {name} is larger than the limit")
    encoding = next((enc for bom, enc in BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise bad(
            f"the contract {name} is not {encoding} (byte {error.start}); save it as UTF-8"
        ) from None
    try:
        loaded = yaml.load(text, Loader=_ContractLoader)  # noqa: S506 (a SafeLoader)
    except _AliasRefused:
        raise bad(
            f"the contract {name} uses YAML anchors or aliases (&, *); write each value out"
        ) from None
    except RecursionError:
        raise bad(f"the contract {name} is nested too deeply to read") from None
    except yaml.YAMLError as error:
        raise bad(f"the contract {name} is not YAML or JSON: {str(error)[:300]}") from None
    if depth_exceeds(loaded, settings.max_json_depth):
        raise bad(f"the contract {name} is nested deeper than {settings.max_json_depth} levels")
    return contract_from_data(loaded)


# Byte order marks: YAML may be UTF-8, UTF-16 or UTF-32 (YAML 1.2, 5.2); without one, UTF-8.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class _AliasRefused(Exception):
    pass


class _ContractLoader(yaml.SafeLoader):
    """SafeLoader without aliases: an alias can make a small file expand without bound, or
    refer to itself."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasRefused
        return super().compose_node(parent, index)


def with_patient_system(
    contract: SheetContract, system: str, where: str | None = "--patient-system"
) -> SheetContract:
    """The contract with another patient identifier system (checked as a URI); `where` names
    the place the caller gave it (an option, a form field)."""
    from dataclasses import replace

    try:
        check_system(system)
    except ValidationError as error:
        message = str(error.messages[0]) if error.messages else "not an absolute URI"
        raise InvalidInput(
            [Issue("error", "value", message, where, "invalid-value")], 400
        ) from None
    return replace(contract, patient_system=system)
