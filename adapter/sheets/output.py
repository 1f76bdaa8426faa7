"""Where converted visits go: a transaction Bundle per visit, one per patient, or Bulk Data NDJSON,
into a folder, into memory, or onto a stream.

Folder sinks write into a staging folder beside the target and move it into place only when the
whole file converted, so a file that fails midway leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from adapter import jsonio
from adapter.bundle import BundleType, bundle
from adapter.links import Links, links_for
from adapter.outcome import Issue, OutputConflict
from adapter.settings import Settings

Format = Literal["transaction", "patient", "ndjson"]
FORMATS: tuple[Format, ...] = ("transaction", "patient", "ndjson")
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
    """Base of the folder outputs: a staging folder, moved to `target` by finish(), removed by
    abort()."""

    def __init__(
        self, target: str | Path, settings: Settings, bundle_type: BundleType = "transaction"
    ) -> None:
        super().__init__(settings, bundle_type)
        self.target = Path(target)
        if self.target.exists() and (
            not self.target.is_dir()
            or (any(self.target.iterdir()) and not (self.target / MARKER).exists())
        ):
            message = f"{self.target} exists and is not an fms-fhir output folder; name a new or empty folder"
            raise OutputConflict([Issue("fatal", "conflict", message, None, "output-exists")])
        self.staging = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        (self.staging / MARKER).write_text("written by fms-fhir convert-sheet\n")

    def finish(self) -> None:
        self._close()
        if self.target.exists():
            shutil.rmtree(self.target)
        self.staging.rename(self.target)

    def abort(self) -> None:
        self._close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _close(self) -> None:
        pass


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

    def __init__(
        self, target: str | Path, settings: Settings, bundle_type: BundleType = "transaction"
    ) -> None:
        super().__init__(target, settings, bundle_type)
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
        for patient, part in sorted(self.patients.items()):
            with open(part, "rb") as handle:
                resources = [orjson.loads(line) for line in handle]
            path = self.staging / f"patient-{safe_name(patient)}.json"
            path.write_bytes(jsonio.dumps(bundle(resources, self.settings, self.bundle_type)))
        shutil.rmtree(self.parts)
        super().finish()


class NdjsonSink(FolderSink):
    """FHIR Bulk Data layout: one `<ResourceType>.ndjson` per type, for `$import`."""

    format: Format = "ndjson"

    def __init__(
        self, target: str | Path, settings: Settings, bundle_type: BundleType = "transaction"
    ) -> None:
        super().__init__(target, settings, bundle_type)
        self.handles: dict[str, IO[bytes]] = {}

    def _write(self, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            kind = resource["resourceType"]
            if kind not in self.handles:
                self.handles[kind] = open(self.staging / f"{kind}.ndjson", "wb")  # noqa: SIM115
            self.handles[kind].write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))

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
