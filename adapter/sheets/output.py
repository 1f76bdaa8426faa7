"""Where converted visits go: a transaction Bundle per visit, one per patient, or Bulk Data NDJSON,
into a folder, into memory, or onto a stream.

Folder sinks write through `adapter.outputs` into a staging folder beside the target and move it
into place only when the whole file converted, so a file that fails midway leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from adapter import jsonio
from adapter.bundle import (
    BUNDLE_TAIL,
    ENTRY_SEPARATOR,
    BundleIds,
    BundleType,
    Format,
    bundle,
    bundle_head,
    entries_with_urls,
)
from adapter.links import Links, links_for
from adapter.outputs import MARKER as MARKER  # re-exported: the page and tests use it here
from adapter.outputs import OutputFolder, commit, copy_range, marked, matching, write_pieces
from adapter.settings import Settings

HASHED_NAME = re.compile(r".*-[0-9a-f]{8}")
"""How a cleaned name ends: an id that already ends so gets a hash of its own too, or `a b/c`
(cleaned to `a_b_c-<hash>`) and a patient whose id is that very text would share files."""


def safe_name(text: str) -> str:
    """A file name part for a patient id; a hash keeps ids that clean up alike apart."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:60]
    if cleaned != text or HASHED_NAME.fullmatch(text):
        cleaned += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return cleaned


class FileNames:
    """Each patient's part of the output's file names, apart from every other patient's even
    where the file system does not tell case apart (macOS, Windows): `abc` and `ABC` would
    share one file there, one patient's visits overwriting the other's.

    A patient's name is chosen when its first file is written, in the order the rows are read
    (so `--jobs N` names as one process does): `safe_name(id)`, unless an earlier patient's name
    is the same but for case; then it is followed by `-` and hex digits of the id's SHA-1. The
    same sheet always gets the same names, and a sheet without such ids keeps its plain names."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._folded: set[str] = set()

    def __call__(self, patient: str) -> str:
        name = self._names.get(patient)
        if name is None:
            name = safe_name(patient)
            if name.casefold() in self._folded:
                digest = hashlib.sha1(patient.encode()).hexdigest()
                tried = itertools.chain(
                    (f"{name}-{digest[:8]}", f"{name}-{digest}"),
                    (f"{name}-{digest}-{n}" for n in itertools.count(2)),
                )
                name = next(c for c in tried if c.casefold() not in self._folded)
            self._folded.add(name.casefold())
            self._names[patient] = name
        return name


class Sink:
    """What the sheet pipeline writes to; `links` says how resources refer to each other there."""

    format: Format = "transaction"

    def __init__(self, settings: Settings, bundle_type: BundleType = "transaction") -> None:
        self.settings = settings
        self.bundle_type: BundleType = bundle_type
        self.links: Links = links_for(
            "ndjson" if self.format == "ndjson" else bundle_type, settings
        )

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        """What `add_visit` makes of a visit's resources before writing them (pure: another
        process may run it), for `add_encoded`; None: this sink takes the resources only."""
        return None

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        """`add_visit` with the resources already encoded by `encoder()`."""
        raise NotImplementedError

    def spool(self) -> Spool | None:
        """Where worker processes write the rows they encode themselves, so that only where
        each row went travels back to this process (`add_spooled`); None: the encoded bytes
        travel back (`add_encoded`)."""
        return None

    def add_spooled(self, patient: str, visit: str, placed: Any) -> None:
        """`add_encoded` for a row a worker wrote itself (`Spool.write_chunk` said where)."""
        raise NotImplementedError

    def drop_spooled(self, patient: str, visit: str, placed: Any) -> None:
        """A row a worker wrote that is rejected after all (a visit given twice): undone."""
        raise NotImplementedError

    def finish(self) -> None:
        """The whole sheet converted: make the output visible."""

    def abort(self) -> None:
        """The sheet could not be converted: leave nothing behind."""


class Spool(Protocol):
    """A folder sink's part in the worker processes of `convert-sheet --jobs N`
    (`adapter.sheets.parallel`): the workers write into the sink's staging folder, and this
    process, which still takes every row in the order read, only says what is kept where."""

    def write_chunk(self, slot: int, rows: list[tuple[str, str, Any]]) -> list[Any]:
        """In a worker: a chunk's rows with resources, each (patient, visit, its resources as
        `encoder()` made them), written to `slot` (a number: what the chunk before in that slot
        left there is taken); each row's placement, for `add_spooled` or `drop_spooled`."""
        ...

    def release(self, slot: int) -> None:
        """Every row of the chunk in `slot` has been added or dropped: the slot may be reused."""
        ...


SPOOL = ".spool"
"""The folder in the staging folder where the workers write (removed before the commit)."""


class MemorySink(Sink):
    """Bundles kept in memory (the service, for uploads within its limits)."""

    def __init__(
        self, settings: Settings, output_format: Format, bundle_type: BundleType = "transaction"
    ) -> None:
        self.format = output_format
        super().__init__(settings, bundle_type)
        self.visits: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.patients: dict[str, list[dict[str, Any]]] = {}

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            self.visits.append((patient, visit, resources))
            self.patients.setdefault(patient, []).extend(resources)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            self.visits.append((patient, "", resources))
            self.patients.setdefault(patient, []).extend(resources)

    def bundles(self) -> list[dict[str, Any]]:
        """A Bundle per visit (and per patient's regimens), or one per patient."""
        if self.format == "patient":
            return [
                bundle(resources, self.settings, self.bundle_type)
                for _, resources in sorted(self.patients.items())
            ]
        return [bundle(r, self.settings, self.bundle_type) for _, _, r in self.visits]

    def resources(self) -> list[dict[str, Any]]:
        return [resource for _, _, resources in self.visits for resource in resources]


class NdjsonStreamSink(Sink):
    """Every resource as one NDJSON line on a binary stream, references relative (`Type/id`)."""

    format: Format = "ndjson"

    def __init__(self, stream: IO[bytes], settings: Settings) -> None:
        super().__init__(settings)
        self.stream = stream

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        self.stream.writelines(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in resources)

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return _lines

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        self.stream.write(encoded)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self.add_visit(patient, "", resources)


class FolderSink(Sink):
    """Base of the folder outputs, written through `adapter.outputs.OutputFolder`: into a staging
    folder beside the target, moved into place by finish(), removed by abort() (also on SIGTERM,
    which the CLI turns into an exit).

    fms-fhir never deletes what it did not write: a folder it replaces holds a marker listing the
    files it wrote there; anything else in it (a user's file, the input sheet) makes the run
    refuse the folder before converting, and again before replacing it.

    `hold=True`: finish() leaves the output staged, and the caller commits it together with
    what belongs with it (`outputs.commit(sink.output, report)`), or aborts it.
    """

    def __init__(
        self,
        target: str | Path,
        settings: Settings,
        bundle_type: BundleType = "transaction",
        inputs: tuple[str | Path, ...] = (),
        hold: bool = False,
    ) -> None:
        super().__init__(settings, bundle_type)
        self.output = OutputFolder(target, KIND, inputs, recognise)
        self.target = self.output.target
        self.staging = self.output.staging
        self.hold = hold
        self.names = FileNames()
        try:
            self._start()
        except BaseException:
            self.output.abort()
            raise

    def _start(self) -> None:
        """What a format needs in its staging folder before the first row."""

    def finish(self) -> None:
        self._close()
        self._close_spool()
        if not self.hold:
            commit(self.output)

    def abort(self) -> None:
        self._close()
        self._close_spool()
        self.output.abort()

    def _close(self) -> None:
        pass

    # The workers' side of `spool()`, for the formats that take it: each chunk of rows in its
    # slot's file in SPOOL (inside the staging folder, so whatever ends the run removes it),
    # written over from its start, never cut short: only the ranges placed are read.

    spooled: Path | None = None
    _sources: dict[int, int]

    def _open_spool(self) -> None:
        self.spooled = self.staging / SPOOL
        self.spooled.mkdir(exist_ok=True)
        self._sources = {}

    def _slot_path(self, slot: int) -> Path:
        assert self.spooled is not None, "spool() made the folder"
        return self.spooled / f"{slot}.ndjson"

    def _write_slot(self, slot: int, pieces: list[bytes]) -> None:
        """In a worker: `pieces` written from the start of its slot's file (not truncated)."""
        handle = os.open(self._slot_path(slot), os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            write_pieces(handle, pieces)
        finally:
            os.close(handle)

    def _source(self, slot: int) -> int:
        """The file descriptor of a slot's file, opened once."""
        source = self._sources.get(slot)
        if source is None:
            source = self._sources[slot] = os.open(self._slot_path(slot), os.O_RDONLY)
        return source

    def _close_spool(self) -> None:
        if self.spooled is None:
            return
        for source in self._sources.values():
            os.close(source)
        self._sources.clear()
        shutil.rmtree(self.spooled, ignore_errors=True)
        self.spooled = None


KIND = "convert-sheet"
OUR_NAMES = re.compile(
    r"(visit-.*|medication-.*|patient-.*)\.json|[A-Za-z]+\.ndjson|\.parts|\.spool"
    r"|\.fms-fhir-state\.ndjson"
)
"""The names convert-sheet writes (for a marker of an earlier version, which listed none, and
for the staging folder of a killed run)."""


def recognise(folder: Path) -> set[str] | None:
    return matching(folder, OUR_NAMES) if marked(folder, KIND) else None


class TransactionSink(FolderSink):
    """One transaction Bundle per visit; a patient's MedicationStatements in a Bundle of their own."""

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self._visit_path(patient, visit)
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return self._file

    def _file(self, resources: list[dict[str, Any]]) -> bytes:
        return (
            jsonio.dumps(bundle(resources, self.settings, self.bundle_type)) if resources else b""
        )

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        if encoded:
            self._visit_path(patient, visit).write_bytes(encoded)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"medication-{self.names(patient)}.json"
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))

    def _visit_path(self, patient: str, visit: str) -> Path:
        return self.staging / f"visit-{self.names(patient)}-{visit}.json"

    # With workers, each writes a visit's file under its plain name (`safe_name`) when no file
    # has that name yet (O_EXCL), else in SPOOL (a visit given twice: which row keeps the name
    # is known only here, in the order read; or, where case is not told apart, a patient whose
    # name differs only in case). A kept row's spooled file then takes its final name
    # (`FileNames`), and a file there is moved aside, known by its inode, for its own row to
    # claim or drop; a file written under a plain name that is not its patient's is renamed.
    # The names end up as `add_visit` would leave them, with no call at all for most rows.

    def spool(self) -> Spool | None:
        self._open_spool()
        self._aside: dict[int, Path] = {}
        return self

    def _written_path(self, patient: str, visit: str) -> Path:
        """Where a worker writes a visit (workers do not know the patients named before)."""
        return self.staging / f"visit-{safe_name(patient)}-{visit}.json"

    def write_chunk(self, slot: int, rows: list[tuple[str, str, Any]]) -> list[Any]:
        assert self.spooled is not None, "spool() made the folder"
        placed: list[tuple[str | None, int]] = []
        for index, (patient, visit, encoded) in enumerate(rows):
            spare: str | None = None
            try:
                handle = os.open(self._written_path(patient, visit), _CREATE, 0o666)
            except FileExistsError:
                spare = f"{slot}-{index}.json"  # gone before the slot is reused
                handle = os.open(self.spooled / spare, _CREATE, 0o666)
            with open(handle, "wb") as out:
                out.write(encoded)
                placed.append((spare, os.fstat(handle).st_ino))
        return placed

    def add_spooled(self, patient: str, visit: str, placed: Any) -> None:
        spare, inode = placed
        final = self._visit_path(patient, visit)
        if spare is None:  # written under its plain name; moved aside if a spooled row took it
            aside = self._aside.pop(inode, None)
            written = aside if aside is not None else self._written_path(patient, visit)
            if written != final:
                os.replace(written, final)
            return
        assert self.spooled is not None, "spool() made the folder"
        try:
            held = os.lstat(final).st_ino
        except FileNotFoundError:
            pass
        else:
            aside = self.spooled / f"aside-{held}.json"
            os.rename(final, aside)
            self._aside[held] = aside
        os.replace(self.spooled / spare, final)

    def drop_spooled(self, patient: str, visit: str, placed: Any) -> None:
        spare, inode = placed
        if spare is not None:
            assert self.spooled is not None, "spool() made the folder"
            os.unlink(self.spooled / spare)
        else:
            aside = self._aside.pop(inode, None)  # else it is still where it was written
            os.unlink(aside if aside is not None else self._written_path(patient, visit))

    def release(self, slot: int) -> None:
        """Nothing to do: a chunk's rows are files of their own, placed or dropped one by one."""


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class PatientSink(FolderSink):
    """One transaction Bundle per patient, streamed into a file per patient (bounded memory).

    A patient's file is its Bundle from the start: room for the Bundle's head (its id depends on
    every entry), then each entry as it comes, encoded once (by a worker, with `--jobs`).
    finish() writes each head in its room, the tail after the last entry, and gives the file its
    name: no entry is read or written again, however long the history."""

    format: Format = "patient"

    def _start(self) -> None:
        self.parts = self.staging / ".parts"
        self.parts.mkdir()
        self.patients: dict[str, Path] = {}
        self._ids: dict[str, BundleIds] = {}
        self._room = len(bundle_head(self.bundle_type, str(uuid.UUID(int=0)))) - len(
            ENTRY_SEPARATOR
        )
        """The head's room: its last bytes take the place of the first entry's separator."""

    def _part(self, patient: str) -> Path:
        part = self.patients.get(patient)
        if part is None:
            part = self.patients[patient] = self.parts / f"patient-{self.names(patient)}.json"
            part.write_bytes(b" " * self._room)
        return part

    def _entries(self, resources: list[dict[str, Any]]) -> tuple[bytes, bytes]:
        return entries_with_urls(resources, self.settings)

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return self._entries

    def _add(self, patient: str, urls: bytes) -> None:
        """The fullUrls of the patient's next entries, for its Bundle's id (in the order read)."""
        ids = self._ids.get(patient)
        if ids is None:
            self.names(patient)
            ids = self._ids[patient] = BundleIds()
        ids.update(urls)

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        urls, entries = encoded
        if entries:
            self._add(patient, urls)
            with open(self._part(patient), "ab") as handle:
                handle.write(entries)

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            self.add_encoded(patient, visit, self._entries(resources))

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self.add_visit(patient, "", resources)

    # With workers, each writes a chunk's rows' entries one after the other in its slot's file,
    # and sends back where each row's are and their fullUrls; here each kept row's bytes are
    # copied to its patient's file (the kernel copies), the rows that follow each other in a
    # chunk and belong to one patient in one copy.

    def spool(self) -> Spool | None:
        self._open_spool()
        self._run: list[Any] | None = None
        """Bytes to copy still: [patient, slot, start, end]."""
        return self

    def write_chunk(self, slot: int, rows: list[tuple[str, str, Any]]) -> list[Any]:
        placed: list[tuple[int, int, int, bytes]] = []
        offset = 0
        for _, _, (urls, entries) in rows:
            placed.append((slot, offset, len(entries), urls))
            offset += len(entries)
        self._write_slot(slot, [entries for _, _, (_, entries) in rows])
        return placed

    def add_spooled(self, patient: str, visit: str, placed: Any) -> None:
        slot, start, length, urls = placed
        self._add(patient, urls)
        run = self._run
        if run is not None and run[0] == patient and run[1] == slot and run[3] == start:
            run[3] = start + length
            return
        self._copy()
        self._run = [patient, slot, start, start + length]

    def drop_spooled(self, patient: str, visit: str, placed: Any) -> None:
        """Nothing to undo: its bytes are not copied."""

    def release(self, slot: int) -> None:
        if self._run is not None and self._run[1] == slot:
            self._copy()

    def _copy(self) -> None:
        if self._run is None:
            return
        patient, slot, start, end = self._run
        self._run = None
        # Not O_APPEND: copy_file_range refuses such a target; the copy starts at the end.
        part = os.open(self._part(patient), os.O_WRONLY, 0o666)
        try:
            os.lseek(part, 0, os.SEEK_END)
            copy_range(self._source(slot), part, start, end - start)
        finally:
            os.close(part)

    def finish(self) -> None:
        for patient, part in self.patients.items():
            head = bundle_head(self.bundle_type, self._ids[patient].bundle_id(self.bundle_type))
            assert len(head) == self._room + len(ENTRY_SEPARATOR), "a bundle id is a UUID"
            with open(part, "r+b") as handle:
                handle.write(head)  # over the room and the first entry's separator
                handle.seek(0, os.SEEK_END)
                handle.write(BUNDLE_TAIL)
            os.replace(part, self.staging / part.name)
        self.parts.rmdir()
        super().finish()


WRITE_BUFFER = 1 << 20
"""Bytes gathered before a write to an NDJSON file: a few hundred resources a system call."""


class NdjsonSink(FolderSink):
    """FHIR Bulk Data layout: one `<ResourceType>.ndjson` per type, for `$import`."""

    format: Format = "ndjson"

    def _start(self) -> None:
        self.handles: dict[str, IO[bytes]] = {}
        self._runs: dict[str, list[int]] = {}
        """With workers: per resource type, bytes to copy still: [slot, start, end]."""

    def _write(self, resources: list[dict[str, Any]]) -> None:
        self.add_encoded("", "", _typed_lines(resources))

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return _typed_lines

    def _handle(self, kind: str) -> IO[bytes]:
        handle = self.handles.get(kind)
        if handle is None:
            handle = self.handles[kind] = open(  # noqa: SIM115
                self.staging / f"{kind}.ndjson", "wb", buffering=WRITE_BUFFER
            )
        return handle

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        if self._runs:
            for kind in list(self._runs):
                self._copy(kind)
        handles = self.handles
        for kind, line in encoded:
            handle = handles.get(kind)
            if handle is None:
                handle = self._handle(kind)
            handle.write(line)

    # With workers, each writes a chunk's rows in its slot's file, the lines of each
    # resource type together, in row order; here the kept rows' lines are copied to the type's
    # file (the kernel copies), each type's lines of a chunk in one copy unless a row between
    # them is dropped.

    def spool(self) -> Spool | None:
        self._open_spool()
        return self

    def write_chunk(self, slot: int, rows: list[tuple[str, str, Any]]) -> list[Any]:
        grouped: dict[str, list[bytes]] = {}
        for _, _, encoded in rows:
            for kind, lines in encoded:
                grouped.setdefault(kind, []).append(lines)
        starts: dict[str, int] = {}
        offset = 0
        for kind, pieces in grouped.items():
            starts[kind] = offset
            offset += sum(len(piece) for piece in pieces)
        self._write_slot(slot, [piece for pieces in grouped.values() for piece in pieces])
        placed: list[tuple[int, tuple[tuple[str, int, int], ...]]] = []
        for _, _, encoded in rows:
            where = []
            for kind, lines in encoded:
                where.append((kind, starts[kind], len(lines)))
                starts[kind] += len(lines)
            placed.append((slot, tuple(where)))
        return placed

    def add_spooled(self, patient: str, visit: str, placed: Any) -> None:
        slot, pieces = placed
        runs = self._runs
        for kind, start, length in pieces:
            run = runs.get(kind)
            if run is not None and run[0] == slot and run[2] == start:
                run[2] = start + length
                continue
            if run is not None:
                self._copy(kind)
            runs[kind] = [slot, start, start + length]

    def drop_spooled(self, patient: str, visit: str, placed: Any) -> None:
        """Nothing to undo: its lines are not copied."""

    def release(self, slot: int) -> None:
        for kind in [kind for kind, run in self._runs.items() if run[0] == slot]:
            self._copy(kind)

    def _copy(self, kind: str) -> None:
        slot, start, end = self._runs.pop(kind)
        handle = self._handle(kind)
        handle.flush()  # what this process wrote itself goes first
        copy_range(self._source(slot), handle.fileno(), start, end - start)
        handle.seek(0, os.SEEK_END)  # the file object learns where the copy left the file

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        self._write(resources)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self._write(resources)

    def _close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


def _lines(resources: list[dict[str, Any]]) -> bytes:
    """The resources as NDJSON lines."""
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in resources)


def _typed_lines(resources: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    """The NDJSON lines of each resource type, in order (the types in order of first use)."""
    lines: dict[str, list[bytes]] = {}
    for r in resources:
        lines.setdefault(r["resourceType"], []).append(
            orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE)
        )
    return [(kind, b"".join(found)) for kind, found in lines.items()]


SINKS: dict[str, type[FolderSink]] = {
    "transaction": TransactionSink,
    "patient": PatientSink,
    "ndjson": NdjsonSink,
}
