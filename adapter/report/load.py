"""The edge of the report: FHIR resources from a file or a folder, as the project writes them.

A Bundle (transaction, batch, collection, searchset: each entry.resource), a JSON array of
resources, a single resource, NDJSON (one resource a line), or a folder of those files. Every
JSON text goes through `adapter.jsonio.loads` with the size and depth limits of the settings
(an NDJSON line through `loads_written`: the same answers, in C for the lines orjson wrote);
NDJSON is read a line at a time, from a file or a request's stream, so a large Bulk Data file
never sits in memory whole, and each resource can be read and dropped before the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from adapter.jsonio import SurrogateFree, loads, loads_written, too_large
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import Settings

JSON_SUFFIXES = (".json",)
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def unreadable(message: str, rule: str = "unreadable-file", status: int = 400) -> InvalidInput:
    return InvalidInput([Issue("fatal", "not-found", message, None, rule)], status=status)


def resources_from_json(
    value: Any, where: str = "input", read_by_jsonio: bool = False
) -> Iterator[dict[str, Any]]:
    """Resources of a parsed JSON value: a Bundle's entries, an array's items, or the resource.

    `read_by_jsonio`: the value is what `adapter.jsonio`'s `loads` or `loads_written` returned,
    so each resource is handed on as a `SurrogateFree` (a shallow copy, 0.3 us) and the report
    does not walk its strings again (about 4 us a resource)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from resources_from_json(item, f"{where}[{index}]", read_by_jsonio)
        return
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        message = f"{where} is not a FHIR resource or Bundle (no resourceType)"
        raise InvalidInput([Issue("error", "structure", message, None, "not-a-resource")])
    if value["resourceType"] != "Bundle":
        yield SurrogateFree(value) if read_by_jsonio else value
        return
    entries = value.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            yield from resources_from_json(
                resource, f"{where}.entry[{index}].resource", read_by_jsonio
            )


BLOCK = 1 << 16
"""Bytes asked of a stream at a time: its lines are cut in C a block at a time, not one call
each (40,000 lines of a long history)."""


def _lines(data: bytes | IO[bytes], block: int = BLOCK) -> Iterable[bytes]:
    """The lines of a body as `bytes.splitlines` cuts them (at \\n, \\r\\n and a lone \\r), from
    the bytes or read from a stream a block at a time. A block is cut after its last \\n, always
    the end of a line (a \\r before it is kept with it); the rest waits for the next block, in
    pieces, so a line longer than a block is joined once."""
    if isinstance(data, bytes):
        yield from data.splitlines()
        return
    pending: list[bytes] = []
    while chunk := data.read(block):
        end = chunk.rfind(b"\n") + 1
        if not end:
            pending.append(chunk)
            continue
        pending.append(chunk[:end])
        yield from b"".join(pending).splitlines()
        pending = [chunk[end:]] if end < len(chunk) else []
    if pending:
        yield from b"".join(pending).splitlines()


def resources_from_ndjson(
    data: bytes | IO[bytes], settings: Settings, what: str = "input"
) -> Iterator[dict[str, Any]]:
    """Resources of an NDJSON body (a request of the service), one JSON value a line: the bytes,
    or a binary stream read a block at a time (only the lines of the current block are held)."""
    for number, line in enumerate(_lines(data), 1):
        if line.strip():
            where = f"{what} line {number}"
            value = loads_written(line, where, settings.max_input_bytes, settings.max_json_depth)
            yield from resources_from_json(value, where, read_by_jsonio=True)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(
        file
        for file in path.rglob("*")
        if file.is_file()
        and file.suffix.lower() in JSON_SUFFIXES + NDJSON_SUFFIXES
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not found:
        raise unreadable(f"{path} holds no .json or .ndjson file", "no-input-files", 422)
    return found


def _read_json_file(file: Path, settings: Settings) -> Iterator[dict[str, Any]]:
    limit = settings.max_input_bytes
    with open(file, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large(str(file), limit)
    yield from resources_from_json(
        loads(data, str(file), limit, settings.max_json_depth), str(file), read_by_jsonio=True
    )


def _read_ndjson_file(file: Path, settings: Settings) -> Iterator[dict[str, Any]]:
    limit = settings.max_input_bytes
    with open(file, "rb") as handle:
        number = 0
        while line := handle.readline(limit + 1):
            number += 1
            where = f"{file} line {number}"
            if len(line) > limit and not line.endswith(b"\n"):
                raise too_large(where, limit)
            if line.strip():
                if len(line) > limit:  # as `loads` counts it, the line's end included
                    raise too_large(where, limit)
                text = line.rstrip(b"\r\n")
                value = loads_written(text, where, limit, settings.max_json_depth)
                yield from resources_from_json(value, where, read_by_jsonio=True)


def _read_files(files: list[Path], settings: Settings) -> Iterator[dict[str, Any]]:
    for file in files:
        try:
            if file.suffix.lower() in NDJSON_SUFFIXES:
                yield from _read_ndjson_file(file, settings)
            else:
                yield from _read_json_file(file, settings)
        except OSError as error:
            raise unreadable(f"cannot read {file}: {error.strerror or error}") from None


def load_resources(path: str | Path, settings: Settings) -> Iterator[dict[str, Any]]:
    """Every resource in a file or folder. A missing path or a folder without JSON fails at once;
    the files are then read lazily, and a file that is no JSON raises InvalidInput when reached."""
    root = Path(path)
    if not root.exists():
        raise unreadable(f"cannot read {root}: no such file or folder")
    return _read_files(_files(root), settings)
