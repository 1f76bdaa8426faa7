"""CSV and XLSX readers over binary streams, yielding one row at a time: any size converts in
bounded memory, from a file, an upload or a pipe (the stream must be seekable)."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from adapter.outcome import InvalidInput, Issue
from adapter.sheets.contract import SheetContract

SAMPLE_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")


@dataclass
class SheetRows:
    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
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
    handle = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        first_line = handle.readline()
        handle.seek(0)
        delimiter = contract.delimiter or detect_delimiter(first_line)
        reader = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        for cells in reader:
            if any(cell.strip() for cell in cells):
                header = _header(cells)
                break
        if header is None:
            raise file_error(f"{name} has no header row", "empty-file")

        def rows() -> Iterator[tuple[int, list[Any]]]:
            try:
                for cells in reader:
                    yield reader.line_num, list(cells)
            except UnicodeDecodeError as error:
                raise file_error(
                    f"{name} is not valid {encoding} after line {reader.line_num}: {error.reason}; "
                    "set csv.encoding in the contract"
                ) from None
            except csv.Error as error:
                raise file_error(f"{name}, line {reader.line_num}: {error}") from None

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


@contextmanager
def read_xlsx(stream: IO[bytes], name: str, contract: SheetContract) -> Iterator[SheetRows]:
    from openpyxl import load_workbook

    if _size(stream) == 0:
        raise file_error(f"{name} is empty", "empty-file")
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
            if contract.sheet not in workbook.sheetnames:
                names = ", ".join(workbook.sheetnames)
                raise file_error(f"{name} has no sheet {contract.sheet!r} (sheets: {names})")
            sheet = workbook[contract.sheet]
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

        def rows() -> Iterator[tuple[int, list[Any]]]:
            for row_number, cells in enumerate(iterator, position["row"] + 1):
                position["row"] = row_number
                yield row_number, list(cells)

        def progress() -> float | None:
            return position["row"] / total if total else None

        yield SheetRows(header, rows(), progress)
    finally:
        workbook.close()


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
