"""Cell values as legacy sheets write them -> plain Python values, or a reason they are not.

What a cell's value means for its item is not decided here: the plain value goes to the checker
every path shares (`rules.check_answer`), and a cell that is not of its target's type too (as its
text), so a sheet, an answers document and a QuestionnaireResponse get the same rule code."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.sheets.contract import ColumnRule, SheetContract, did_you_mean

# A number in a cell is read only within this magnitude: no clinical value is larger, and an
# exponent such as 9e999999999 would otherwise cost minutes of arithmetic.
MAX_MAGNITUDE = 30
MAX_CELL_CHARACTERS = 100
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:\.\d+)?")
"""A number with spaces between its thousands (1 234.5): the spaces go, nothing else."""
COMMA_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:[.\u00a0\u202f ]\d{3})+|\d+)(?:,\d+)?")
"""With decimal commas: 4,5 / 1.234,5 / 1 234,5 (dots or spaces only between thousands)."""
AMBIGUOUS_DOT = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")
"""With decimal commas, 1.500 may be 1500 (German) or 1.5: refused, never guessed."""
DOSE = re.compile(r"(?P<number>[^a-zA-Zµμ%]*?)\s*(?P<unit>[a-zA-Zµμ%][^\d]*)?")
UNIT = re.compile(r"[^\W\d_]+(?:\s*/\s*\w+)?")
"""One unit (µg, ml, Tabl, mg/kg): told apart from a cell that is no dose at all."""
MG_UNITS = frozenset(("mg", "mg/d", "mg/day", "mg/tag", "mg/dia", "mg/día", "mg/die", "mg/24h"))
"""How a daily dose in mg is written after the number (any case, spaces inside ignored)."""


class CellError(ValueError):
    """A cell that cannot be read; the message says why, in the user's terms, and `rule` is
    the rule code of that fact."""

    def __init__(self, message: str, rule: str = "invalid-value") -> None:
        super().__init__(message)
        self.rule = rule


def column_letter(index: int) -> str:
    """The spreadsheet's name of a column: 0 -> A, 25 -> Z, 26 -> AA (bijective base 26).

    Written out rather than taken from openpyxl, whose import (numpy included) would cost a CSV
    conversion a quarter of a second; every message that names a column uses it."""
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _text(raw: Any) -> str:
    return str(raw).strip()


def shown(raw: Any) -> str:
    """A cell's text for a message, bounded: a huge cell is not echoed whole."""
    text = _text(raw)
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _bounded(value: Decimal, raw: Any) -> Decimal:
    if not value.is_finite():
        raise CellError(f"{shown(raw)} is not a number")
    if value and not -MAX_MAGNITUDE <= value.adjusted() <= MAX_MAGNITUDE:
        raise CellError(f"{shown(raw)} is outside the range of any value here")
    return value


def parse_decimal(raw: Any, contract: SheetContract) -> Decimal:
    """The number exactly as the cell holds it (a float cell by its shortest repr)."""
    if isinstance(raw, bool):
        raise CellError(f"{raw!r} is not a number")
    if isinstance(raw, int | float | Decimal):
        if isinstance(raw, int) and abs(raw) >= 10**MAX_MAGNITUDE:
            raise CellError("the number is outside the range of any value here")
        return _bounded(Decimal(repr(raw) if isinstance(raw, float) else raw), raw)
    text = _text(raw)
    if len(text) > MAX_CELL_CHARACTERS:
        raise CellError(f"{shown(raw)} is not a number (too long)")
    return _bounded(_decimal_text(text, raw, contract.decimal_comma), raw)


def _decimal_text(text: str, raw: Any, decimal_comma: bool) -> Decimal:
    """A number's text -> exactly that number, or CellError: separators are taken away only
    where they cannot be anything but separators; nothing ambiguous is guessed."""
    if "_" in text:
        raise CellError(f"{shown(raw)} is not a number")
    if decimal_comma:
        if "," in text or not AMBIGUOUS_DOT.fullmatch(text):
            if COMMA_NUMBER.fullmatch(text):
                text = re.sub(r"[.\u00a0\u202f ]", "", text).replace(",", ".")
        else:
            raise CellError(
                f"{shown(raw)} is ambiguous with decimal commas: write it without the dot "
                "(1500) or with a comma (1,5)"
            )
    elif "," in text and COMMA_NUMBER.fullmatch(text) and not AMBIGUOUS_DOT.fullmatch(text):
        raise CellError(
            f"{shown(raw)} is not a number here: with a decimal comma, say so in the contract "
            "(decimal_comma: true)"
        )
    if GROUPED.fullmatch(text):
        text = re.sub(r"[ \u00a0\u202f]", "", text)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CellError(f"{shown(raw)} is not a number") from None


def parse_dose(raw: Any, contract: SheetContract) -> Decimal:
    """A dose cell -> the daily dose in mg exactly as written: a number, or a number followed
    by mg (4,5 mg; 3 mg; 4.5mg; 4,5 mg/Tag). Another unit (µg, g, ml) or anything else in the
    cell rejects it, with the reason; the number is never converted or rounded."""
    if contract.dose_values is not None:
        found = contract.dose_values.get(_text(raw).lower())
        if found is not None:
            return found
    if not isinstance(raw, str):
        return parse_decimal(raw, contract)
    text = _text(raw)
    if len(text) > MAX_CELL_CHARACTERS:
        raise CellError(f"{shown(raw)} is not a dose (too long)")
    match = DOSE.fullmatch(text)
    unit = (match.group("unit") or "") if match else ""
    if match is None or not match.group("number").strip():
        raise CellError(f"{shown(raw)} is not a dose in mg (a number, or a number and mg)")
    written = re.sub(r"\s+", "", unit).lower()
    if written and written not in MG_UNITS:
        if UNIT.fullmatch(unit.strip()):
            raise CellError(
                f"{shown(raw)}: the unit {unit.strip()!r} is not mg; write the daily dose in mg",
                "dose-unit",
            )
        raise CellError(f"{shown(raw)} is not a dose in mg (a number, or a number and mg)")
    try:
        return _bounded(
            _decimal_text(match.group("number").strip(), raw, contract.decimal_comma), raw
        )
    except CellError as error:
        if "ambiguous" in str(error) or "decimal_comma" in str(error):
            raise
        raise CellError(
            f"{shown(raw)} is not a dose in mg (a number, or a number and mg)"
        ) from None


def parse_integer(raw: Any, contract: SheetContract) -> int:
    """A whole number. Written out in digits it is read whatever its size (up to
    MAX_CELL_CHARACTERS), so that the checker calls 10^40 out of range, as it does in an answers
    document; in any other notation (1e40) it is read within MAX_MAGNITUDE."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit() and len(text) < 10 and text.isascii():
            return int(text)  # the common case, read without a Decimal
        digits = text[1:] if text[:1] in ("-", "+") else text
        if digits.isdigit() and digits.isascii() and len(text) <= MAX_CELL_CHARACTERS:
            return int(text)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    value = parse_decimal(raw, contract)
    if value != value.to_integral_value():
        raise CellError(f"{shown(raw)} is not a whole number")
    return int(value)


def parse_boolean(raw: Any, rule: ColumnRule | None, contract: SheetContract) -> bool:
    """A yes/no cell: an Excel TRUE/FALSE, or one of the contract's words (1 and 0 among the
    defaults). Any other number is not a yes or a no."""
    if isinstance(raw, bool):
        return raw
    text = _text(raw).lower()
    if isinstance(raw, int | float) and raw in (0, 1):
        text = str(int(raw))
    if text in contract.true_values:
        return True
    if text in contract.false_values:
        return False
    hint = did_you_mean(text, sorted(contract.true_values | contract.false_values), 0.75)
    raise CellError(
        f"{shown(raw)} is not yes or no (yes: {', '.join(sorted(contract.true_values))}){hint}"
    )


def mapped(raw: Any, rule: ColumnRule | None) -> tuple[bool, Any]:
    """The column's own value map, applied before any type-specific reading."""
    if rule is None or rule.values is None:
        return False, None
    key = _text(raw).lower()
    if key in rule.values:
        return True, rule.values[key]
    return False, None


def parse_date(raw: Any, contract: SheetContract) -> str:
    """A visit date -> YYYY-MM-DD: an Excel date cell (the workbook's own epoch, 1900 or 1904,
    applied by the reader), a whole ISO date or date-time, or one of the contract's formats
    matching the whole cell.

    Nothing else is taken for a date: not a bare number (a year, or an Excel serial typed into
    a text cell or a CSV, which cannot be told from a count), not a date followed by anything.
    """
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    formats = ", ".join(["YYYY-MM-DD", *contract.date_formats])
    if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
        raise CellError(
            f"{shown(raw)} is a number, not a date: format the column as dates in the "
            f"workbook, or write dates as {formats}"
        )
    text = _text(raw)
    if len(text) <= 40:
        if ISO_DATE.fullmatch(text):
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise CellError(f"{shown(raw)} is not a real calendar date") from None
        if ISO_DATE_TIME.fullmatch(text):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
            except ValueError:
                raise CellError(f"{shown(raw)} is not a real calendar date and time") from None
        for fmt in contract.date_formats:
            try:
                return datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
    raise CellError(f"{shown(raw)} is not a date in any accepted format ({formats})")
