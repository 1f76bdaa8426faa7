"""The sheet contract: which column holds what, how values and dates are written.

The default contract is the canonical template of docs/sheets.md (columns named by linkId and
score code). Other layouts are described by a YAML or JSON file, checked here with marshmallow:
real workbooks (a worksheet by name or position, title rows above the header, a two-row header
under merged group cells, REDCap exports) are described in docs/contracts.md.
"""

from __future__ import annotations

import codecs
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
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

TRUE_WORDS = ("x", "ja", "j", "yes", "y", "true", "wahr", "1", "oui", "si", "sí", "sim", "✓")
FALSE_WORDS = ("nein", "n", "no", "false", "falsch", "0", "non", "-", "não", "nao")
REDCAP_FILLED = ("1", "2")
"""REDCap's form statuses that mean the form was filled in: 1 Unverified, 2 Complete (0 is
Incomplete, and also what REDCap exports for a form nobody opened)."""
REDCAP_SYSTEM_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)


def did_you_mean(word: str, known: Any, cutoff: float = 0.6) -> str:
    """'; did you mean 'x'?' for the nearest known word (difflib), or nothing."""
    texts = [str(k) for k in known]
    found = difflib.get_close_matches(str(word), texts, n=1, cutoff=cutoff)
    if not found:
        lowered = {t.lower(): t for t in texts}
        found = [
            lowered[m]
            for m in difflib.get_close_matches(str(word).lower(), list(lowered), 1, cutoff)
        ]
    return f"; did you mean {found[0]!r}?" if found else ""


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
    optional: bool = False
    """The column may be absent from the sheet (else its absence is an error)."""


@dataclass(frozen=True)
class Redcap:
    """A REDCap export: one row per record and event; each column belongs to the form whose
    `<form>_complete` column is the first at or after it (REDCap's export order)."""

    event: str | None = "redcap_event_name"
    filled: frozenset[str] = frozenset(REDCAP_FILLED)
    """Form statuses whose answers are read; another status (0, blank) gives no answers."""


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
    """Numbers are written 4,5 (in any cell: a CSV's, an XLSX text cell, a dose)."""
    true_values: frozenset[str] = frozenset(TRUE_WORDS)
    false_values: frozenset[str] = frozenset(FALSE_WORDS)
    sheet: str | int | None = None
    """A worksheet by name, or by position (1 is the first); None: the first."""
    header_row: int | None = None
    """The row number of the (first) header row; rows above it are skipped. None: the first
    row that holds anything."""
    header_rows: int = 1
    """2: a row of group cells (merged over their columns) above the header row; each column's
    header is the group and the column's own header joined by `header_join`."""
    header_join: str = " "
    dose_optional: bool = True
    """The dose column may be absent (the template's); a contract's must be there unless
    marked `optional`."""
    dose_values: Mapping[str, Any] | None = None
    """The dose column's own words (e.g. keine: 0), each a number of mg."""
    redcap: Redcap | None = None
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
    """The canonical template: a column per linkId and per score code, any of them absent."""
    return SheetContract(
        patient_system=patient_system,
        columns=tuple(ColumnRule(target, target, optional=True) for target in targets()),
    )


def template_columns() -> list[str]:
    return ["patient_id", "visit_date", "ldn_dose_mg", *targets()]


class _Column(fields.Field):
    """A column is a target name, or {to, blank, values, optional}."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return {"to": value}
        if isinstance(value, Mapping):
            unknown = set(value) - {"to", "blank", "values", "optional"}
            if unknown:
                first = str(sorted(map(str, unknown))[0])
                hint = did_you_mean(first, ("to", "blank", "values", "optional"))
                raise ValidationError(
                    f"unknown key {first[:40]!r}{hint} (keys: to, blank, values, optional)"
                )
            if not isinstance(value.get("to"), str):
                raise ValidationError("'to' names a linkId or score code")
            if value.get("blank", "absent") not in ("absent", False, "false"):
                raise ValidationError("'blank' is 'absent' (default) or false")
            if value.get("optional", False) not in (True, False):
                raise ValidationError("'optional' is true or false")
            if "values" in value:
                _value_map(value["values"])
            return dict(value)
        raise ValidationError("a column maps to a linkId, or to {to, blank, values, optional}")


def _value_map(values: Any) -> None:
    if not isinstance(values, Mapping):
        raise ValidationError("'values' maps cell texts to values")
    scalar = (str, int, float, bool)
    wrong = [k for k, v in values.items() if not isinstance(v, scalar) or not isinstance(k, scalar)]
    if wrong:
        raise ValidationError(
            f"'values' maps a cell text to a number, a word or true/false; "
            f"{str(wrong[0])[:40]!r} maps to something else"
        )


def _map_key(key: Any) -> str:
    """A value map's key as cells are looked up: the text, trimmed, lower case (YAML's true and
    1.0 as a sheet shows them)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key).strip().lower()


def _map_value(value: Any) -> Any:
    """A mapped number exactly as the contract wrote it (a YAML 4.1 is the decimal 4.1)."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else value
    return value


class _Strict(Schema):
    class Meta:
        unknown = RAISE


check_system = check_uri


class _PatientSchema(_Strict):
    column = fields.String(required=True)
    system = fields.String(load_default=None, validate=check_system)


DIRECTIVE = re.compile(r"%(.)", re.DOTALL)


def check_date_format(fmt: str) -> None:
    """A format names a whole date (day, month, year), each once, and strptime understands it."""
    if not isinstance(fmt, str) or len(fmt) > 100:
        raise ValidationError("a date format is a text of at most 100 characters")
    directives = [d for d in DIRECTIVE.findall(fmt) if d != "%"]
    repeated = sorted({d for d in directives if directives.count(d) > 1})
    if repeated:
        raise ValidationError(f"{fmt[:40]!r} names %{repeated[0]} more than once")
    if not (
        "d" in directives
        and any(m in directives for m in ("m", "b", "B"))
        and any(y in directives for y in ("Y", "y"))
    ):
        raise ValidationError(
            f"{fmt[:40]!r} does not name a day (%d), a month (%m) and a year (%Y)"
        )
    try:
        datetime.strptime(date(2024, 1, 31).strftime(fmt), fmt)
    except (ValueError, re.error, TypeError, KeyError, IndexError, OverflowError) as error:
        reason = str(error).split(" at position")[0][:80]
        raise ValidationError(f"{fmt[:40]!r} is not a date format: {reason}") from None


def check_encoding(name: str) -> None:
    """A text encoding Python knows (rot13 and base64 are codecs, not text encodings)."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValidationError(
            f"unknown encoding {name[:40]!r} (e.g. utf-8, utf-16, cp1252, latin-1)"
        ) from None
    if not is_text_encoding(name):
        raise ValidationError(
            f"{name[:40]!r} is not a text encoding (e.g. utf-8, utf-16, cp1252, latin-1)"
        )


def is_text_encoding(name: str) -> bool:
    """Whether str.encode and bytes.decode take it (they refuse rot13, base64, zlib)."""
    try:
        "a".encode(name)
    except LookupError:
        return False
    except (UnicodeError, ValueError, TypeError):
        pass  # a text encoding that cannot write "a" (e.g. a code page without it)
    try:
        b"a".decode(name)
    except LookupError:
        return False
    except (UnicodeError, ValueError, TypeError):
        pass
    return True


class _DateSchema(_Strict):
    column = fields.String(required=True)
    formats = fields.List(fields.String(validate=check_date_format), load_default=list)


class _DoseField(fields.Field):
    """The dose column's words: each maps to a number of mg (e.g. keine: 0)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        _value_map(value)
        wrong = [
            k
            for k, v in value.items()
            if isinstance(v, bool)
            or not isinstance(v, int | float)
            or (isinstance(v, float) and not math.isfinite(v))
        ]
        if wrong:
            raise ValidationError(f"{str(wrong[0])[:40]!r} maps to something else than mg")
        return value


class _DoseSchema(_Strict):
    column = fields.String(required=True)
    optional = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    values = _DoseField(
        load_default=None,
        metadata={"type": "object", "additionalProperties": {"type": "number"}},
    )


class _CsvSchema(_Strict):
    delimiter = fields.String(load_default=None, validate=validate.Length(equal=1))
    encoding = fields.String(load_default=None, validate=check_encoding)
    decimal_comma = fields.Boolean(load_default=False, truthy={True}, falsy={False})


class _LdnSchema(_Strict):
    form = fields.String(load_default=None, validate=validate.OneOf(list(ldn.FORMS)))
    timing = fields.String(load_default=None, validate=validate.OneOf(list(ldn.TIMINGS)))


class _HeaderSchema(_Strict):
    row = fields.Integer(load_default=None, strict=True, validate=validate.Range(1, 1_000_000))
    rows = fields.Integer(load_default=1, strict=True, validate=validate.OneOf([1, 2]))
    join = fields.String(load_default=" ", validate=validate.Length(max=10))


class _Sheet(fields.Field):
    """A worksheet by name, or by its position (1 is the first)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000:
            return value
        raise ValidationError("a worksheet's name, or its position (1 is the first)")


class _Checkboxes(fields.Field):
    """REDCap checkbox fields: name -> the targets of name___1, name___2, ... in order, or
    name -> {code: target} for other codes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("maps a checkbox field's name to its targets")
        found: dict[str, dict[str, str]] = {}
        for name, targets_ in value.items():
            if not isinstance(name, str) or not name:
                raise ValidationError("a checkbox field's name is a text")
            if isinstance(targets_, list) and all(isinstance(t, str) for t in targets_):
                found[name] = {str(n): t for n, t in enumerate(targets_, 1)}
            elif isinstance(targets_, Mapping) and all(
                isinstance(t, str) and isinstance(c, str | int) and not isinstance(c, bool)
                for c, t in targets_.items()
            ):
                found[name] = {str(c): t for c, t in targets_.items()}
            else:
                raise ValidationError(
                    {name: "a list of targets (codes 1, 2, ...) or {code: target}"}
                )
        return found


class _RedcapSchema(_Strict):
    event = fields.String(load_default="redcap_event_name", allow_none=True)
    complete = fields.List(
        fields.Raw(validate=lambda v: isinstance(v, int | str) and not isinstance(v, bool)),
        load_default=lambda: [1, 2],
    )
    checkboxes = _Checkboxes(load_default=dict, metadata={"type": "object"})


class ContractSchema(_Strict):
    patient = fields.Nested(_PatientSchema, required=True)
    visit_date = fields.Nested(_DateSchema, required=True)
    ldn_dose = fields.Nested(_DoseSchema, load_default=None)
    csv = fields.Nested(_CsvSchema, load_default=dict)
    decimal_comma = fields.Boolean(load_default=None, truthy={True}, falsy={False})
    true_values = fields.List(fields.Raw(), load_default=None)
    false_values = fields.List(fields.Raw(), load_default=None)
    sheet = _Sheet(load_default=None, metadata={"type": ["string", "integer"]})
    header = fields.Nested(_HeaderSchema, load_default=dict)
    redcap = fields.Nested(_RedcapSchema, load_default=None)
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
            hint = did_you_mean(unknown[0], registry.instruments())
            raise ValidationError(
                {"prefer": f"unknown instrument {unknown[0]!r}{hint} (known: {known})"}
            )

    @validates_schema
    def known_targets(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Every target known and used once, and every mapped value one its target takes."""
        known = targets()
        errors: dict[str, Any] = {}
        seen: dict[str, str] = {}
        columns = dict(data.get("columns", {}))
        checkbox_errors: dict[str, str] = {}
        for name, codes in (data.get("redcap") or {}).get("checkboxes", {}).items():
            for code, target in codes.items():
                header = f"{name}___{code}"
                if header in columns:
                    checkbox_errors[name] = f"{header!r} is also named under columns"
                    break
                columns[header] = {"to": target, "values": {"1": True, "0": False}}
        for header, column in columns.items():
            target = column["to"]
            if target not in known:
                hint = did_you_mean(target, known)
                errors[header] = f"{target!r} is not a linkId or score code{hint}"
            elif target in seen:
                errors[header] = f"{target!r} is already the target of column {seen[target]!r}"
            else:
                seen[target] = header
                wrong = _wrong_values(known[target], column.get("values") or {})
                if wrong:
                    errors[header] = {"values": wrong}
        if checkbox_errors:
            raise ValidationError({"redcap": {"checkboxes": checkbox_errors}})
        if errors:
            raise ValidationError({"columns": errors})


def _wrong_values(target: Item | Score, values: Mapping[Any, Any]) -> dict[str, str]:
    """The value map's entries its target does not take, by the checker every path shares."""
    from adapter.rules import check_answer, check_reported

    wrong: dict[str, str] = {}
    for key, value in values.items():
        plain = _map_value(value)
        _, issues = (
            check_answer(target, plain)
            if isinstance(target, Item)
            else check_reported(target, plain)
        )
        errors = [i for i in issues if i.is_error]
        if errors:
            wrong[str(key)[:40]] = errors[0].message
    return wrong


def _words(values: list[Any] | None, default: tuple[str, ...]) -> frozenset[str]:
    return (
        frozenset(str(v).strip().lower() for v in values)
        if values is not None
        else frozenset(default)
    )


def _unknown_field_hints(issues: list[Issue]) -> list[Issue]:
    """An unknown key gets the nearest known key of its place ('visit-date': visit_date)."""
    from dataclasses import replace

    schemas: dict[str, Schema] = {
        "": ContractSchema(),
        "patient": _PatientSchema(),
        "visit_date": _DateSchema(),
        "ldn_dose": _DoseSchema(),
        "csv": _CsvSchema(),
        "ldn": _LdnSchema(),
        "header": _HeaderSchema(),
        "redcap": _RedcapSchema(),
    }
    found = []
    for issue in issues:
        if issue.rule == "unknown-field" and issue.expression:
            path = issue.expression.removeprefix("contract").lstrip(".")
            parent, _, key = path.rpartition(".")
            schema = schemas.get(parent)
            if schema is not None:
                hint = did_you_mean(key, schema.fields)
                issue = replace(issue, message=issue.message + hint)
        found.append(issue)
    return found


def contract_from_data(data: Any) -> SheetContract:
    try:
        loaded = ContractSchema().load(data if isinstance(data, Mapping) else {})
    except ValidationError as error:
        issues = [i.under("contract") for i in issues_from(error)]
        raise InvalidInput(_unknown_field_hints(issues)) from None
    csv = loaded["csv"]
    given = dict(loaded["columns"])
    redcap = loaded["redcap"]
    if redcap is not None:
        for name, codes in redcap["checkboxes"].items():
            for code, target in codes.items():
                given[f"{name}___{code}"] = {"to": target, "values": {"1": True, "0": False}}
    columns = tuple(
        ColumnRule(
            header=header,
            target=column["to"],
            blank_is_false=column.get("blank") in (False, "false"),
            values={_map_key(k): _map_value(v) for k, v in column["values"].items()}
            if "values" in column
            else None,
            optional=column.get("optional", False) is True,
        )
        for header, column in given.items()
    )
    dose = loaded["ldn_dose"]
    decimal_comma = loaded["decimal_comma"]
    return SheetContract(
        patient_column=loaded["patient"]["column"],
        patient_system=loaded["patient"]["system"],
        date_column=loaded["visit_date"]["column"],
        date_formats=tuple(loaded["visit_date"]["formats"]),
        dose_column=dose["column"] if dose else None,
        dose_optional=bool(dose and dose["optional"]),
        dose_values={
            _map_key(k): Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
            for k, v in dose["values"].items()
        }
        if dose and dose["values"] is not None
        else None,
        columns=columns,
        delimiter=csv.get("delimiter"),
        encoding=csv.get("encoding"),
        decimal_comma=csv.get("decimal_comma", False) if decimal_comma is None else decimal_comma,
        true_values=_words(loaded["true_values"], TRUE_WORDS),
        false_values=_words(loaded["false_values"], FALSE_WORDS),
        sheet=loaded["sheet"],
        header_row=loaded["header"].get("row"),
        header_rows=loaded["header"].get("rows", 1),
        header_join=loaded["header"].get("join", " "),
        redcap=Redcap(
            event=redcap["event"],
            filled=frozenset(str(status).strip() for status in redcap["complete"]),
        )
        if redcap is not None
        else None,
        on_mismatch=loaded["on_mismatch"],
        ldn_form=loaded["ldn"].get("form"),
        ldn_timing=loaded["ldn"].get("timing"),
        test_data=loaded["test_data"],
        prefer=tuple(loaded["prefer"]),
    )


def contract_from_bytes(data: bytes, name: str, settings: Settings) -> SheetContract:
    """A YAML or JSON contract (UTF-8, with or without BOM), checked before any row is read."""

    def bad(message: str, where: str | None = None) -> InvalidInput:
        return InvalidInput([Issue("fatal", "structure", message, where, "invalid-contract")], 400)

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
        raise _yaml_error(error, name) from None
    if depth_exceeds(loaded, settings.max_json_depth):
        raise bad(f"the contract {name} is nested deeper than {settings.max_json_depth} levels")
    return contract_from_data(loaded)


def _yaml_error(error: yaml.YAMLError, name: str) -> InvalidInput:
    """PyYAML's error in a person's terms: where (line and column, from its mark) and what."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or "cannot be read"
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
    reason = f"{context}, {problem}" if context else str(problem)
    hint = ""
    if "\t" in reason or "\\t" in reason or "tab" in reason:
        hint = " (indent with spaces, not tabs)"
    elif "mapping values are not allowed" in reason:
        hint = " (a text holding ': ' is written in quotes)"
    elif "found character '%'" in reason or "'%'" in reason:
        hint = " (a date format is written in quotes: '%d.%m.%Y')"
    message = f"the contract {name} is not valid YAML" + (f" at {where}" if where else "")
    message += f": {reason[:200]}{hint}"
    issue = Issue("fatal", "structure", message, where, "invalid-contract")
    return InvalidInput([issue], 400)


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
