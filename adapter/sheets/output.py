"""Where converted visits go: a transaction Bundle per visit, one per patient, or Bulk Data NDJSON,
into a folder, into memory, or onto a stream.

Folder sinks write into a staging folder beside the target and move it into place only when the
whole file converted, so a file that fails midway leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from adapter import jsonio
from adapter.bundle import BundleType, Format, bundle, write_bundle
from adapter.links import Links, links_for
from adapter.model import Issue
from adapter.outcome import OutputConflict
from adapter.settings import Settings

MARKER = ".fms-fhir-output"


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

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self.add_visit(patient, "", resources)


class FolderSink(Sink):
    """Base of the folder outputs: written into a staging folder beside the target, moved into
    place by finish(), removed by abort() (also on SIGTERM, which the CLI turns into an exit).

    fms-fhir never deletes what it did not write: a folder it replaces holds a marker listing the
    files it wrote there; anything else in it (a user's file, the input sheet) makes the run
    refuse the folder before converting, and again before replacing it.
    """

    def __init__(
        self,
        target: str | Path,
        settings: Settings,
        bundle_type: BundleType = "transaction",
        inputs: tuple[str | Path, ...] = (),
    ) -> None:
        super().__init__(settings, bundle_type)
        self.target = Path(os.path.abspath(target or "."))
        self._check_target(inputs)
        _clean_stale(self.target)
        self.staging = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        self.trash = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        try:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging.mkdir(parents=True)
            (self.staging / MARKER).write_text(MARKER_TEXT)
        except OSError as error:
            raise _cannot(self.target, error) from None
        self._start()

    def _start(self) -> None:
        """What a format needs in its staging folder before the first row."""

    def _check_target(self, inputs: tuple[str | Path, ...]) -> None:
        target = self.target
        if target.is_symlink():
            raise _conflict(f"{target} is a symbolic link; name a real folder")
        for source in inputs:
            source_path = Path(os.path.abspath(source))
            if source_path == target or target in source_path.parents:
                raise _conflict(
                    f"{target} is (or holds) the input {source_path.name}; name another folder"
                )
        if not target.exists():
            return
        if not target.is_dir():
            raise _conflict(f"{target} exists and is not a folder; name a new or empty folder")
        foreign = _foreign(target)
        if foreign:
            shown = ", ".join(sorted(foreign)[:5])
            raise _conflict(
                f"{target} holds files fms-fhir did not write ({shown}); name a new or empty "
                "folder: nothing in it is deleted"
            )

    def finish(self) -> None:
        self._close()
        try:
            written = sorted(p.name for p in self.staging.iterdir() if p.name != MARKER)
            (self.staging / MARKER).write_text(MARKER_TEXT + json.dumps(written) + "\n")
            if self.target.exists():
                foreign = _foreign(self.target)
                if foreign:
                    raise _conflict(
                        f"files appeared in {self.target} while converting "
                        f"({', '.join(sorted(foreign)[:5])}); the new output is not moved there"
                    )
                # Two renames: the old output is never half-deleted; if interrupted between
                # them, the old output waits in the trash folder and the next run removes it.
                self.target.rename(self.trash)
            self.staging.rename(self.target)
        except OSError as error:
            raise _cannot(self.target, error) from None
        shutil.rmtree(self.trash, ignore_errors=True)

    def abort(self) -> None:
        self._close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _close(self) -> None:
        pass


MARKER_TEXT = "written by fms-fhir convert-sheet; the files it wrote here:\n"
OUR_NAMES = re.compile(r"(visit-.*|medication-.*|patient-.*)\.json|[A-Za-z]+\.ndjson")


def _written(folder: Path) -> set[str] | None:
    """The files our marker lists; None when the folder carries no marker of ours."""
    try:
        lines = (folder / MARKER).read_text().splitlines()
    except OSError:
        return None
    listed = lines[1] if len(lines) > 1 else None
    if listed is None:  # a marker of an earlier version: our files by their names
        return {p.name for p in folder.iterdir() if OUR_NAMES.fullmatch(p.name)}
    try:
        return set(json.loads(listed))
    except ValueError:
        return set()


def _foreign(folder: Path) -> set[str]:
    """Names in `folder` that fms-fhir did not write there (everything, if it has no marker)."""
    names = {p.name for p in folder.iterdir()} - {MARKER}
    written = _written(folder)
    return names if written is None else names - written


def _clean_stale(target: Path) -> None:
    """Staging and trash folders of runs that were killed: removed when their process is gone
    and they carry our marker (nothing else is touched)."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(partial|old)-(\d+)")
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        found = pattern.fullmatch(sibling.name)
        if not found or int(found.group(2)) == os.getpid() or _alive(int(found.group(2))):
            continue
        if (sibling / MARKER).is_file() and not _foreign(sibling) - {".parts"}:
            shutil.rmtree(sibling, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _conflict(message: str) -> OutputConflict:
    return OutputConflict([Issue("fatal", "conflict", message, None, "output-exists")])


def _cannot(target: Path, error: OSError) -> OutputConflict:
    message = f"cannot write {target}: {error.strerror or error}"
    return OutputConflict([Issue("fatal", "exception", message, None, "output-unwritable")])


class TransactionSink(FolderSink):
    """One transaction Bundle per visit; a patient's MedicationStatements in a Bundle of their own."""

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"visit-{safe_name(patient)}-{visit}.json"
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))

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
        handles = self.handles
        for resource in resources:
            kind = resource["resourceType"]
            handle = handles.get(kind)
            if handle is None:
                handle = handles[kind] = open(  # noqa: SIM115
                    self.staging / f"{kind}.ndjson", "wb", buffering=WRITE_BUFFER
                )
            handle.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        self._write(resources)

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        self._write(resources)

    def _close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


SINKS: dict[str, type[FolderSink]] = {
    "transaction": TransactionSink,
    "patient": PatientSink,
    "ndjson": NdjsonSink,
}
