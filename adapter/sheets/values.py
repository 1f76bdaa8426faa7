"""Cell values as legacy sheets write them -> plain Python values, or a reason they are not."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.sheets.contract import ColumnRule, SheetContract

EXCEL_EPOCH = date(1899, 12, 30)
EXCEL_SERIAL_RANGE = (1, 2958465)  # 1900-01-01 .. 9999-12-31


class CellError(ValueError):
    """A cell that cannot be read; the message says why, in the user's terms."""


def is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _text(raw: Any) -> str:
    return str(raw).strip()


def parse_decimal(raw: Any, contract: SheetContract) -> Decimal:
    if isinstance(raw, bool):
        raise CellError(f"{raw!r} is not a number")
    if isinstance(raw, int | float | Decimal):
        value = Decimal(str(raw))
        if not value.is_finite():
            raise CellError(f"{raw!r} is not a number")
        return value
    text = _text(raw).replace("\u00a0", "").replace(" ", "")
    if contract.decimal_comma:
        text = text.replace(".", "").replace(",", ".") if "," in text else text
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CellError(f"{_text(raw)!r} is not a number") from None
    if not value.is_finite():
        raise CellError(f"{_text(raw)!r} is not a number")
    return value


def parse_integer(raw: Any, contract: SheetContract) -> int:
    value = parse_decimal(raw, contract)
    if value != value.to_integral_value():
        raise CellError(f"{_text(raw)!r} is not a whole number")
    return int(value)


def parse_boolean(raw: Any, rule: ColumnRule | None, contract: SheetContract) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    text = _text(raw).lower()
    if text in contract.true_values:
        return True
    if text in contract.false_values:
        return False
    raise CellError(
        f"{_text(raw)!r} is not yes or no (yes: {', '.join(sorted(contract.true_values))})"
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
    """ISO dates, the contract's formats, Excel date cells and Excel serial numbers -> YYYY-MM-DD."""
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if EXCEL_SERIAL_RANGE[0] <= raw <= EXCEL_SERIAL_RANGE[1]:
            return (EXCEL_EPOCH + timedelta(days=int(raw))).isoformat()
        raise CellError(f"{raw!r} is not a date (nor an Excel date number)")
    text = _text(raw)
    if text.isascii() and text.isdigit() and len(text) <= 7:
        return parse_date(int(text), contract)
    if len(text) == 10 or (len(text) > 10 and text[10] in "T "):
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            pass
    for fmt in contract.date_formats:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    formats = ", ".join(["YYYY-MM-DD", *contract.date_formats])
    raise CellError(f"{text!r} is not a date in any accepted format ({formats})")
