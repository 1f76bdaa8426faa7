"""The values every path passes on: an issue, the subject, a checked response.

At the bottom of the layers: parsers (answers documents, QuestionnaireResponses, sheet rows)
produce them and builders consume them, so nothing imports a parser to get a type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import orjson

from adapter.instrument import AnswerOption, Instrument

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One finding. `code` is the FHIR issue type; `rule` is our stable code engines route on."""

    severity: Severity
    code: str
    message: str
    expression: str | None = None
    rule: str | None = None
    row: int | None = None
    """The sheet row it is about, numbered as the spreadsheet numbers it."""
    column: str | None = None
    """The sheet column it is about, by letter and header: `column C "fiqr-f1"`."""

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def under(self, prefix: str) -> Issue:
        """The same issue placed below `prefix` (e.g. the index of a document in an array)."""
        if self.expression is None:
            return replace(self, expression=prefix)
        joiner = "" if self.expression.startswith("[") else "."
        return replace(self, expression=f"{prefix}{joiner}{self.expression}")

    def at(self, row: int | None, column: str | None = None) -> Issue:
        """The same issue placed in a sheet: the fields, and `expression` as people read it."""
        where = ", ".join(part for part in (row and f"row {row}", column) if part)
        return replace(self, row=row, column=column, expression=where or None)


@dataclass(frozen=True)
class Subject:
    """Who answered: a business identifier or a literal reference."""

    system: str | None = None
    value: str | None = None
    reference: str | None = None
    display: str | None = None

    @cached_property
    def key(self) -> str:
        """Unambiguous: no character inside a system, value or reference can make two keys alike."""
        if self.reference:
            return orjson.dumps(["reference", self.reference]).decode()
        return orjson.dumps(["identifier", self.system, self.value]).decode()

    def fhir(self) -> dict[str, Any]:
        result: dict[str, Any]
        if self.reference:
            result = {"reference": self.reference}
        else:
            identifier = {}
            if self.system is not None:
                identifier["system"] = self.system
            if self.value is not None:
                identifier["value"] = self.value
            result = {"identifier": identifier}
        if self.display:
            result["display"] = self.display
        return result

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subject:
        identifier = data.get("identifier") or {}
        return cls(
            system=identifier.get("system"),
            value=identifier.get("value"),
            reference=data.get("reference"),
            display=data.get("display"),
        )


@dataclass(frozen=True)
class Response:
    """One administration of one instrument, with answers already checked."""

    instrument: Instrument
    subject: Subject
    authored: str
    status: str
    answers: Mapping[str, bool | int | AnswerOption]
    test_data: str | None = None
    """Set for example or synthetic input: what in it is invented (see adapter.provenance)."""
