"""Where converted visits go: a transaction Bundle per visit, one per patient, or Bulk Data NDJSON,
into a folder, into memory, or onto a stream.

Folder sinks write through `adapter.outputs` into a staging folder beside the target and move it
into place only when the whole file converted, so a file that fails midway leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from adapter import jsonio
from adapter.bundle import BundleType, Format, bundle, write_bundle
from adapter.links import Links, links_for
from adapter.outputs import MARKER as MARKER  # re-exported: the page and tests use it here
from adapter.outputs import OutputFolder, commit, marked, matching
from adapter.settings import Settings


def safe_name(text: str) -> str:
    """A file name part for a patient id; a hash keeps ids that clean up alike apart."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:60]
    if cleaned != text:
        cleaned += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return cleaned


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

    def finish(self) -> None:
        """The whole sheet converted: make the output visible."""

    def abort(self) -> None:
        """The sheet could not be converted: leave nothing behind."""


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
        try:
            self._start()
        except BaseException:
            self.output.abort()
            raise

    def _start(self) -> None:
        """What a format needs in its staging folder before the first row."""

    def finish(self) -> None:
        self._close()
        if not self.hold:
            commit(self.output)

    def abort(self) -> None:
        self._close()
        self.output.abort()

    def _close(self) -> None:
        pass


KIND = "convert-sheet"
OUR_NAMES = re.compile(
    r"(visit-.*|medication-.*|patient-.*)\.json|[A-Za-z]+\.ndjson|\.parts|\.fms-fhir-state\.ndjson"
)
"""The names convert-sheet writes (for a marker of an earlier version, which listed none, and
for the staging folder of a killed run)."""


def recognise(folder: Path) -> set[str] | None:
    return matching(folder, OUR_NAMES) if marked(folder, KIND) else None


class TransactionSink(FolderSink):
    """One transaction Bundle per visit; a patient's MedicationStatements in a Bundle of their own."""

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"visit-{safe_name(patient)}-{visit}.json"
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return self._file

    def _file(self, resources: list[dict[str, Any]]) -> bytes:
        return (
            jsonio.dumps(bundle(resources, self.settings, self.bundle_type)) if resources else b""
        )

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        if encoded:
            (self.staging / f"visit-{safe_name(patient)}-{visit}.json").write_bytes(encoded)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"medication-{safe_name(patient)}.json"
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))


class PatientSink(FolderSink):
    """One transaction Bundle per patient, gathered through a file per patient (bounded memory)."""

    format: Format = "patient"

    def _start(self) -> None:
        self.parts = self.staging / ".parts"
        self.parts.mkdir()
        self.patients: dict[str, Path] = {}

    def _part(self, patient: str) -> Path:
        if patient not in self.patients:
            self.patients[patient] = self.parts / f"{safe_name(patient)}.ndjson"
        return self.patients[patient]

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            with open(self._part(patient), "ab") as handle:
                handle.writelines(
                    orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in resources
                )

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self.add_visit(patient, "", resources)

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return _lines

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        if encoded:
            with open(self._part(patient), "ab") as handle:
                handle.write(encoded)

    def finish(self) -> None:
        """Each patient's Bundle is streamed from the part file: a patient with tens of
        thousands of visits costs one resource of memory, not the whole history."""
        for patient, part in sorted(self.patients.items()):

            def resources(part: Path = part) -> Iterator[dict[str, Any]]:
                with open(part, "rb") as handle:
                    for line in handle:
                        yield orjson.loads(line)

            path = self.staging / f"patient-{safe_name(patient)}.json"
            with open(path, "wb") as out:
                write_bundle(resources, self.settings, self.bundle_type, out.write)
        shutil.rmtree(self.parts)
        super().finish()


WRITE_BUFFER = 1 << 20
"""Bytes gathered before a write to an NDJSON file: a few hundred resources a system call."""


class NdjsonSink(FolderSink):
    """FHIR Bulk Data layout: one `<ResourceType>.ndjson` per type, for `$import`."""

    format: Format = "ndjson"

    def _start(self) -> None:
        self.handles: dict[str, IO[bytes]] = {}

    def _write(self, resources: list[dict[str, Any]]) -> None:
        self.add_encoded("", "", _typed_lines(resources))

    def encoder(self) -> Callable[[list[dict[str, Any]]], Any] | None:
        return _typed_lines

    def add_encoded(self, patient: str, visit: str, encoded: Any) -> None:
        handles = self.handles
        for kind, line in encoded:
            handle = handles.get(kind)
            if handle is None:
                handle = handles[kind] = open(  # noqa: SIM115
                    self.staging / f"{kind}.ndjson", "wb", buffering=WRITE_BUFFER
                )
            handle.write(line)

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
