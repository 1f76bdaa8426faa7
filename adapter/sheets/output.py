"""Where converted visits go: a transaction Bundle per visit, one per patient, or Bulk Data NDJSON.

Everything is written into a staging folder beside the target and moved into place only when the
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
from adapter.bundle import transaction
from adapter.outcome import InvalidInput, Issue

Format = Literal["transaction", "patient", "ndjson"]
MARKER = ".fms-fhir-output"


def safe_name(text: str) -> str:
    """A file name part for a patient id; a hash keeps ids that clean up alike apart."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:60]
    if cleaned != text:
        cleaned += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return cleaned


class Sink:
    """Base: a staging folder, moved to `target` by finish(), removed by abort()."""

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        if self.target.exists() and (
            not self.target.is_dir()
            or (any(self.target.iterdir()) and not (self.target / MARKER).exists())
        ):
            message = f"{self.target} exists and is not an fms-fhir output folder; name a new or empty folder"
            raise InvalidInput([Issue("fatal", "conflict", message, None, "output-exists")], 409)
        self.staging = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        (self.staging / MARKER).write_text("written by fms-fhir convert-sheet\n")

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        raise NotImplementedError

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


class TransactionSink(Sink):
    """One transaction Bundle per visit; a patient's MedicationStatements in a Bundle of their own."""

    def add_visit(self, patient: str, visit: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"visit-{safe_name(patient)}-{visit}.json"
            path.write_bytes(jsonio.dumps(transaction(resources)))

    def add_patient(self, patient: str, resources: list[dict[str, Any]]) -> None:
        if resources:
            path = self.staging / f"medication-{safe_name(patient)}.json"
            path.write_bytes(jsonio.dumps(transaction(resources)))


class PatientSink(Sink):
    """One transaction Bundle per patient, gathered through a file per patient (bounded memory)."""

    def __init__(self, target: str | Path) -> None:
        super().__init__(target)
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
            path.write_bytes(jsonio.dumps(transaction(resources)))
        shutil.rmtree(self.parts)
        super().finish()


class NdjsonSink(Sink):
    """FHIR Bulk Data layout: one `<ResourceType>.ndjson` per type, for `$import`."""

    def __init__(self, target: str | Path) -> None:
        super().__init__(target)
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


SINKS: dict[str, type[Sink]] = {
    "transaction": TransactionSink,
    "patient": PatientSink,
    "ndjson": NdjsonSink,
}
