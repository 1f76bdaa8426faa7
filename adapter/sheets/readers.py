"""CSV and XLSX readers over binary streams, yielding one row at a time: any size converts in
bounded memory, from a file, an upload or a pipe (the stream must be seekable)."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.sheets.contract import SheetContract, did_you_mean, is_text_encoding
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
    worksheet: str | None = None
    """The worksheet read (XLSX); None for a CSV."""
    worksheets: tuple[str, ...] = ()
    """Every worksheet of the workbook, in its order (the one read among them)."""


def file_error(message: str, rule: str = "unreadable-file") -> InvalidInput:
    return InvalidInput([Issue("fatal", "structure", message, None, rule)], status=422)


# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
CSV_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(sample: bytes, name: str = "the file") -> str:
    """By the byte order mark (UTF-8, UTF-16, UTF-32: Excel's "Unicode text" is UTF-16), else
    UTF-8, else cp1252 (what Excel on Windows writes). A file of NUL bytes between letters
    without a mark (UTF-16 or UTF-32 whose mark was lost) is refused, not read as cp1252."""
    for bom, encoding in CSV_BOMS:
        if sample.startswith(bom):
            return encoding
    if sample.count(0) * 4 > len(sample):
        raise file_error(
            f"{name} looks like UTF-16 or UTF-32 text without a byte order mark; save it as "
            "UTF-8 CSV, or name its encoding in the contract (csv: {encoding: utf-16-le})",
            "unreadable-file",
        )
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


Span = tuple[int, int]
"""A merged range of the group row: its first and last column (0-based)."""


def join_header(
    groups: list[str], names: list[str], spans: list[Span] | None, joiner: str = " "
) -> list[str]:
    """A two-row header as one: each column's group (a merged cell over its columns) and its
    own name joined ("FIQR" over "F1": "FIQR F1"); a cell merged down over both rows, or a
    group cell above a blank, is the column's whole header.

    `spans` are the workbook's merged ranges in the group row; None (a CSV, or a workbook
    saved without merges) spreads a group cell right over the blank cells after it, as a
    merged cell saved as CSV leaves them."""
    width = max(len(groups), len(names))
    groups = groups + [""] * (width - len(groups))
    names = names + [""] * (width - len(names))
    group_of = list(groups)
    if spans:
        for first, last in spans:
            for column in range(first, min(last, width - 1) + 1):
                group_of[column] = groups[first]
    else:
        current = ""
        for column in range(width):
            if groups[column]:
                current = groups[column] if names[column] else ""
            group_of[column] = groups[column] or current
    joined = []
    for group, name in zip(group_of, names, strict=True):
        if not group or group == name:
            joined.append(name)
        elif not name:
            joined.append(group)
        else:
            joined.append(f"{group}{joiner}{name}")
    return joined


def find_header(
    records: Iterator[tuple[int, Any]],
    contract: SheetContract,
    name: str,
    spans: Callable[[int], list[Span] | None] | None = None,
) -> tuple[list[str], int]:
    """The header (one row, or two joined) and the number of its last row; the rows above
    `contract.header_row` (a title, notes) are skipped. `spans(row)`: the merged ranges of
    that row."""
    wanted, count = contract.header_row, contract.header_rows
    found: list[tuple[int, list[str]]] = []
    for number, cells in records:
        if wanted is not None and number < wanted:
            continue
        if (
            not found
            and wanted is None
            and not any(cell is not None and str(cell).strip() for cell in cells)
        ):
            continue
        found.append((number, _header(list(cells))))
        if len(found) == count:
            break
    if not found or not any(found[0][1]):
        where = f" at row {wanted}" if wanted is not None else ""
        raise file_error(f"{name} has no header row{where}", "empty-file")
    if len(found) < count:
        raise file_error(f"{name} ends before the second header row", "empty-file")
    if count == 1:
        return found[0][1], found[0][0]
    (group_row, groups), (last, names) = found
    return join_header(
        groups, names, spans(group_row) if spans else None, contract.header_join
    ), last


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
    if not sample.strip(b" \t\r\n\x00"):
        raise file_error(f"{name} is empty", "empty-file")
    encoding = contract.encoding or detect_encoding(sample, name)
    if not is_text_encoding(encoding):
        raise file_error(
            f"{encoding[:40]!r} is not a text encoding (e.g. utf-8, utf-16, cp1252)",
            "unreadable-file",
        )
    # Undecodable bytes become lone surrogates, so one bad byte rejects its row, not the file.
    handle = io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")
    try:
        first_line = handle.readline(SAMPLE_BYTES)
        handle.seek(0)
        delimiter = contract.delimiter or detect_delimiter(first_line)
        reader = csv.reader(handle, delimiter=delimiter)

        def header_records() -> Iterator[tuple[int, list[Any]]]:
            for number, cells in enumerate(_records(reader, name), 1):
                if isinstance(cells, str):
                    raise file_error(f"{name}, row {number} (the header): {cells}")
                if any(SURROGATE.search(cell) for cell in cells) and (
                    contract.header_row is None or number >= contract.header_row
                ):
                    raise file_error(
                        f"{name}: the header row is not valid {encoding}; set csv.encoding "
                        "in the contract"
                    )
                yield number, cells

        header, header_number = find_header(header_records(), contract, name)

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
    except UnicodeError as error:
        raise file_error(f"{name} is not valid {encoding}: {error}") from None
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


def choose_worksheet(
    names: list[str], rows_of: list[str], wanted: str | int | None, name: str
) -> str:
    """The worksheet the contract names (by name or position), else the first that holds
    rows. `names`: every sheet (chart sheets too); `rows_of`: the worksheets."""
    if wanted is None:
        if not rows_of:
            raise file_error(f"{name} has no worksheet", "empty-file")
        return rows_of[0]
    if isinstance(wanted, int):
        if wanted > len(rows_of):
            listed = ", ".join(f"{n}: {title}" for n, title in enumerate(rows_of, 1))
            raise file_error(f"{name} has no worksheet {wanted} (worksheets: {listed})")
        return rows_of[wanted - 1]
    if wanted not in rows_of:
        hint = did_you_mean(wanted, rows_of)
        raise file_error(f"{name} has no sheet {wanted!r} (sheets: {', '.join(rows_of)}){hint}")
    return wanted


def _merged_spans(stream: IO[bytes], part: str | None) -> dict[int, list[Span]]:
    """The merged ranges of a worksheet, by the row they start in: read from its
    <mergeCells> (which follows the rows), in chunks, memory flat."""
    if part is None:
        return {}
    from openpyxl.utils.cell import range_boundaries

    found: dict[int, list[Span]] = {}
    pattern = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
    try:
        with zipfile.ZipFile(stream) as archive, archive.open(part.lstrip("/")) as handle:
            tail = b""
            while chunk := handle.read(1024 * 1024):
                text = tail + chunk
                for match in pattern.finditer(text):
                    first_col, first_row, last_col, last_row = range_boundaries(
                        match.group(1).decode()
                    )
                    if None in (first_col, first_row, last_col, last_row):
                        continue
                    for row in range(int(first_row), int(last_row) + 1):  # type: ignore[arg-type]  # None excluded above
                        found.setdefault(row, []).append((int(first_col) - 1, int(last_col) - 1))  # type: ignore[arg-type]  # None excluded above
                tail = text[-64:]
    finally:
        stream.seek(0)
    return {row: sorted(set(spans)) for row, spans in found.items()}


def _unreadable_part(name: str, error: Exception) -> InvalidInput:
    reason = str(error).split("\n")[0][:200]
    return file_error(
        f"{name}: a part of the workbook is damaged and cannot be read "
        f"({error.__class__.__name__}: {reason}); open and save it again in a spreadsheet "
        "program",
        "not-a-workbook",
    )


@contextmanager
def read_xlsx(stream: IO[bytes], name: str, contract: SheetContract) -> Iterator[SheetRows]:
    from openpyxl import load_workbook

    _release_read_rows()
    if _size(stream) == 0:
        raise file_error(f"{name} is empty", "empty-file")
    members = _zip_members(stream, name)
    _check_inflation(members, name)
    try:
        formulas = _has_formulas(stream, members)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise _unreadable_part(name, error) from None
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
        worksheets = [ws.title for ws in workbook.worksheets]  # chart sheets hold no rows
        title = choose_worksheet(workbook.sheetnames, worksheets, contract.sheet, name)
        sheet = workbook[title]
        iterator = sheet.iter_rows(values_only=True)
        spans: dict[int, list[Span]] = {}
        if contract.header_rows > 1:
            try:
                spans = _merged_spans(stream, getattr(sheet, "_worksheet_path", None))
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as error:
                raise _unreadable_part(name, error) from None
        try:
            header, number = find_header(
                enumerate(iterator, 1), contract, name, lambda row: spans.get(row)
            )
        except InvalidInput:
            raise
        except Exception as error:  # a damaged part: openpyxl, zlib and XML parsers raise
            raise _unreadable_part(name, error) from None
        try:
            total = sheet.max_row
        except Exception:  # a damaged dimension record: progress is unknown, rows still read
            total = None
        position = {"row": number}
        formula_rows: Iterator[Any] | None = None
        if formulas:
            # A formula saved without its computed value (written by a program that does not
            # compute) reads as blank: find them, so the row says so instead of losing a value.
            try:
                formula_book = load_workbook(stream, read_only=True, data_only=False)
                formula_rows = formula_book[title].iter_rows(min_row=number + 1, values_only=True)
            except Exception as error:  # the same workbook, read again: damaged the same way
                raise _unreadable_part(name, error) from None

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

        yield SheetRows(header, rows(), progress, worksheet=title, worksheets=tuple(worksheets))
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


# --- a sample of a sheet, for `contract suggest` ---------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The first rows of one worksheet (or of a CSV) as they are, before any contract."""

    worksheet: str | None
    rows: tuple[tuple[Any, ...], ...]
    """Row 1 first: the cells as the reader gives them (text, numbers, dates, None)."""
    spans: dict[int, list[Span]]
    """The merged ranges of each row (an XLSX's), by row number."""
    delimiter: str | None = None
    encoding: str | None = None


def sample_sheets(
    stream: IO[bytes], name: str, sheet: str | None = None, limit: int = 200
) -> tuple[list[Sample], tuple[str, ...]]:
    """The first `limit` rows of each worksheet (of `sheet` only, when named) and the names
    of every worksheet (none for a CSV); a file that cannot be read raises InvalidInput."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    magic = stream.read(4)
    stream.seek(0)
    workbook = suffix in (".xlsx", ".xlsm") or (
        suffix not in (".csv", ".tsv", ".txt") and magic.startswith(b"PK")
    )
    if suffix == ".xls":
        raise file_error(f"{name}: the old .xls format is not read; save it as .xlsx or .csv")
    if not workbook:
        return [_csv_sample(stream, name, limit)], ()
    samples = []
    names: tuple[str, ...] = ()
    from openpyxl import load_workbook

    members = _zip_members(stream, name)
    _check_inflation(members, name)
    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a zip that is no workbook
        message = f"{name} is not a readable XLSX workbook: {error.__class__.__name__}: {error}"
        raise file_error(message, "not-a-workbook") from None
    try:
        names = tuple(ws.title for ws in book.worksheets)
        chosen = [choose_worksheet(book.sheetnames, list(names), sheet, name)] if sheet else names
        for title in chosen[:20]:
            worksheet = book[title]
            try:
                rows = [
                    tuple(cells) for cells in islice(worksheet.iter_rows(values_only=True), limit)
                ]
                spans = _merged_spans(stream, getattr(worksheet, "_worksheet_path", None))
            except Exception as error:  # a damaged part
                raise _unreadable_part(name, error) from None
            samples.append(Sample(title, tuple(rows), spans))
    finally:
        book.close()
    return samples, names


def _csv_sample(stream: IO[bytes], name: str, limit: int) -> Sample:
    sample = stream.read(SAMPLE_BYTES)
    stream.seek(0)
    if not sample.strip(b" \t\r\n\x00"):
        raise file_error(f"{name} is empty", "empty-file")
    encoding = detect_encoding(sample, name)
    handle = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    try:
        first = ""
        while line := handle.readline(SAMPLE_BYTES):
            if line.strip():
                first = line
                break
        handle.seek(0)
        delimiter = detect_delimiter(first)
        rows = []
        for cells in _records(csv.reader(handle, delimiter=delimiter), name):
            rows.append(tuple(cells) if isinstance(cells, list) else ())
            if len(rows) >= limit:
                break
    finally:
        handle.detach()
        stream.seek(0)
    return Sample(None, tuple(rows), {}, delimiter, encoding)
