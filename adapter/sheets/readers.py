"""CSV and XLSX readers over binary streams, yielding one row at a time: any size converts in
bounded memory, from a file, an upload or a pipe (the stream must be seekable)."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.sheets.contract import SheetContract
from adapter.sheets.values import column_letter

SAMPLE_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")
# XLSX: sharedStrings.xml is held in memory by every reader; the sheets stream. A workbook whose
# parts inflate past these is refused before it is opened (a zip bomb, or not a visit list).
MAX_SHARED_STRINGS_BYTES = 256 * 1024 * 1024
MAX_INFLATED_BYTES = 4 * 1024 * 1024 * 1024
SURROGATE = re.compile("[\udc80-\udcff]")

Row = tuple[int, list[Any], str | None]
"""(row number as the spreadsheet numbers it, cells, why the row cannot be read or None)."""


@dataclass
class SheetRows:
    header: list[str]
    rows: Iterator[Row]
    progress: Callable[[], float | None]
    encoding: str | None = None
    delimiter: str | None = None


def file_error(message: str, rule: str = "unreadable-file") -> InvalidInput:
    return InvalidInput([Issue("fatal", "structure", message, None, rule)], status=422)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 with or without BOM, else cp1252 (what Excel on Windows writes)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def detect_delimiter(first_line: str) -> str:
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _header(cells: list[Any]) -> list[str]:
    return [str(cell).strip() if cell is not None else "" for cell in cells]


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


@contextmanager
def read_csv(stream: IO[bytes], name: str, contract: SheetContract) -> Iterator[SheetRows]:
    size = _size(stream)
    sample = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not sample.strip():
        raise file_error(f"{name} is empty", "empty-file")
    encoding = contract.encoding or detect_encoding(sample)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise file_error(f"unknown encoding {encoding!r} in the contract") from None
    # Undecodable bytes become lone surrogates, so one bad byte rejects its row, not the file.
    handle = io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")
    try:
        first_line = handle.readline(SAMPLE_BYTES)
        handle.seek(0)
        delimiter = contract.delimiter or detect_delimiter(first_line)
        reader = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        number = 0
        for number, cells in enumerate(_records(reader, name), 1):  # noqa: B007
            if isinstance(cells, str):
                raise file_error(f"{name}, row {number} (the header): {cells}")
            if any(cell.strip() for cell in cells):
                if any(SURROGATE.search(cell) for cell in cells):
                    raise file_error(
                        f"{name}: the header row is not valid {encoding}; set csv.encoding "
                        "in the contract"
                    )
                header = _header(cells)
                break
        if header is None:
            raise file_error(f"{name} has no header row", "empty-file")
        header_number = number

        def rows() -> Iterator[Row]:
            for row_number, cells in enumerate(_records(reader, name), header_number + 1):
                if isinstance(cells, str):
                    yield row_number, [], cells
                elif SURROGATE.search("".join(cells)):
                    problem = f"holds bytes that are not valid {encoding}; set csv.encoding in the contract"
                    yield row_number, [], problem
                else:
                    yield row_number, cells, None

        def progress() -> float | None:
            try:
                return stream.tell() / size if size else None
            except (OSError, ValueError):
                return None

        yield SheetRows(header, rows(), progress, encoding, delimiter)
    except UnicodeDecodeError as error:
        raise file_error(f"{name} is not valid {encoding}: {error.reason}") from None
    finally:
        handle.detach()


def _records(reader: Any, name: str) -> Iterator[list[str] | str]:
    """csv records, each a list of cells or, where the csv module refuses one, the reason."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield f"cannot be read as CSV ({error})"


def _zip_members(stream: IO[bytes], name: str) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(stream) as archive:
            return archive.infolist()
    except zipfile.BadZipFile:
        raise file_error(
            f"{name} is not an XLSX workbook (not a zip file)", "not-a-workbook"
        ) from None
    finally:
        stream.seek(0)


def _check_inflation(members: list[zipfile.ZipInfo], name: str) -> None:
    total = sum(member.file_size for member in members)
    shared = sum(m.file_size for m in members if m.filename.endswith("sharedStrings.xml"))
    if shared > MAX_SHARED_STRINGS_BYTES or total > MAX_INFLATED_BYTES:
        raise InvalidInput(
            [
                Issue(
                    "fatal",
                    "too-long",
                    f"{name} inflates to {total // (1024 * 1024)} MiB of XML "
                    f"({shared // (1024 * 1024)} MiB of text cells); the limit is "
                    f"{MAX_INFLATED_BYTES // (1024 * 1024)} MiB "
                    f"({MAX_SHARED_STRINGS_BYTES // (1024 * 1024)} MiB of text cells)",
                    None,
                    "too-large",
                )
            ],
            413,
        )


def _has_formulas(stream: IO[bytes], members: list[zipfile.ZipInfo]) -> bool:
    """Whether any worksheet holds a formula (<f> element): read in chunks, memory stays flat."""
    try:
        with zipfile.ZipFile(stream) as archive:
            for member in members:
                if not member.filename.startswith("xl/worksheets/"):
                    continue
                tail = b""
                with archive.open(member) as part:
                    while chunk := part.read(1024 * 1024):
                        if b"<f>" in tail + chunk or b"<f " in tail + chunk:
                            return True
                        tail = chunk[-8:]
        return False
    finally:
        stream.seek(0)


def _release_read_rows() -> None:
    """Make openpyxl's worksheet reader let go of each row once read: any size reads in
    bounded memory.

    openpyxl parses a worksheet with ElementTree's iterparse and clears each <row> element it
    has read, but the emptied element stays in <sheetData> until the whole sheet is read: some
    90 bytes a row (8 MiB at 100,000 rows, read-only mode too). So the iterparse of openpyxl's
    worksheet reader module is wrapped, once per process: the wrapper also takes each row out of
    its parent when openpyxl asks for the next event. openpyxl sees the same events and reads
    the same values; only <sheetData>, which it never looks into, ends without its rows.
    """
    from openpyxl.worksheet import _reader

    parse = getattr(_reader, "iterparse", None)
    row_tag = getattr(_reader, "ROW_TAG", None)
    if parse is None or row_tag is None or getattr(parse, "releases_rows", False):
        return  # another openpyxl (tests/test_sheet_memory.py says if memory grows), or done

    def iterparse(source: Any, events: Any = None, parser: Any = None) -> Iterator[Any]:
        if events is not None or parser is not None:  # not how openpyxl calls it: left alone
            return parse(source, events, parser)
        return _rows_released(parse(source, events=("start", "end")), row_tag)

    iterparse.releases_rows = True  # type: ignore[attr-defined]  # a mark: wrapped once per process
    _reader.iterparse = iterparse  # type: ignore[attr-defined]  # imported there; its stubs omit it


def _rows_released(events: Iterator[tuple[str, Any]], row_tag: str) -> Iterator[tuple[str, Any]]:
    """The end events of `events` (start and end events); each row element leaves its parent
    when the reader comes back for the next event, having read it."""
    parents: list[Any] = []
    for event, element in events:
        if event == "start":
            parents.append(element)
            continue
        parents.pop()
        yield event, element
        if element.tag == row_tag and parents:
            parents[-1].remove(element)


@contextmanager
def read_xlsx(stream: IO[bytes], name: str, contract: SheetContract) -> Iterator[SheetRows]:
    from openpyxl import load_workbook

    _release_read_rows()
    if _size(stream) == 0:
        raise file_error(f"{name} is empty", "empty-file")
    members = _zip_members(stream, name)
    _check_inflation(members, name)
    formulas = _has_formulas(stream, members)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except zipfile.BadZipFile:
        raise file_error(
            f"{name} is not an XLSX workbook (not a zip file)", "not-a-workbook"
        ) from None
    except Exception as error:  # openpyxl raises many kinds for a zip that is no workbook
        message = f"{name} is not a readable XLSX workbook: {error.__class__.__name__}: {error}"
        raise file_error(message, "not-a-workbook") from None
    try:
        if contract.sheet:
            sheets = {ws.title: ws for ws in workbook.worksheets}  # chart sheets hold no rows
            if contract.sheet not in sheets:
                names = ", ".join(sheets)
                raise file_error(f"{name} has no sheet {contract.sheet!r} (sheets: {names})")
            sheet = sheets[contract.sheet]
        else:
            sheet = workbook.worksheets[0]
        iterator = sheet.iter_rows(values_only=True)
        header: list[str] | None = None
        number = 0
        for number, cells in enumerate(iterator, 1):  # noqa: B007
            if any(cell is not None and str(cell).strip() for cell in cells):
                header = _header(list(cells))
                break
        if header is None:
            raise file_error(f"{name} has no header row", "empty-file")
        total = sheet.max_row
        position = {"row": number}
        formula_rows: Iterator[Any] | None = None
        if formulas:
            # A formula saved without its computed value (written by a program that does not
            # compute) reads as blank: find them, so the row says so instead of losing a value.
            formula_book = load_workbook(stream, read_only=True, data_only=False)
            formula_sheet = (
                formula_book[contract.sheet] if contract.sheet else formula_book.worksheets[0]
            )
            formula_rows = formula_sheet.iter_rows(min_row=number + 1, values_only=True)

        def rows() -> Iterator[Row]:
            try:
                for row_number, cells in enumerate(iterator, position["row"] + 1):
                    position["row"] = row_number
                    values = list(cells)
                    problem = None
                    if formula_rows is not None:
                        problem = _uncomputed(values, next(formula_rows, ()), header)
                    yield row_number, values, problem
            except Exception as error:  # a part of the workbook that openpyxl cannot parse
                raise file_error(
                    f"{name}: row {position['row'] + 1} cannot be read: "
                    f"{error.__class__.__name__}: {error}"
                ) from None

        def progress() -> float | None:
            return position["row"] / total if total else None

        yield SheetRows(header, rows(), progress)
    finally:
        workbook.close()


def _uncomputed(values: list[Any], formulas: Any, header: list[str]) -> str | None:

    for index, (value, formula) in enumerate(zip(values, formulas, strict=False)):
        text = getattr(formula, "text", formula)
        if value is None and isinstance(text, str) and text.startswith("="):
            column = header[index] if index < len(header) else ""
            return (
                f'column {column_letter(index)} "{column}" holds the formula {text[:40]} '
                "without a computed value; open and save the workbook in a spreadsheet program"
            )
    return None


def open_sheet(stream: IO[bytes], name: str, contract: SheetContract) -> Any:
    """The reader for this stream: by the name's ending, or by its first bytes."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix == ".xls":
        raise file_error(
            f"{name}: the old .xls format is not read; save it as .xlsx or .csv",
            "not-a-workbook",
        )
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(stream, name, contract)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv(stream, name, contract)
    magic = stream.read(4)
    stream.seek(0)
    if magic.startswith(b"PK"):
        return read_xlsx(stream, name, contract)
    return read_csv(stream, name, contract)
