"""Issues, the error taxonomy and OperationOutcomes: the one error shape every edge shares.

Each error type is mapped once to an HTTP status (`adapter/web/errors.py`) and once to an exit
status (`adapter/cli.py`):

| error            | meaning                                              | HTTP            | exit |
|------------------|------------------------------------------------------|-----------------|------|
| InvalidInput     | the input breaks a rule (its `status` says which)    | 400/404/413/415/422 | 1 |
| OutputConflict   | the output place cannot be used (exists, is an input)| 409             | 4    |
| InternalFault    | our own fault (strict mode found an invalid resource)| 500             | 5    |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.model import Issue
from adapter.settings import Settings


class FmsError(Exception):
    """Base of the taxonomy: carries every issue found, not just the first."""

    status = 500
    exit_code = 5

    def __init__(self, issues: Iterable[Issue], status: int | None = None) -> None:
        self.issues = list(issues)
        if status is not None:
            self.status = status
        super().__init__("; ".join(issue.message for issue in self.issues))

    def __reduce__(self) -> tuple[Any, ...]:
        # raised in a worker process (`--jobs`), it crosses back as a pickle, whole
        return (type(self), (self.issues, self.status))


class InvalidInput(FmsError):
    """The input breaks a rule: 400 unparseable, 404 unknown, 413 too large, 415 media type,
    422 (default) a well-formed input that breaks a rule."""

    status = 422
    exit_code = 1


class OutputConflict(FmsError):
    """The output cannot go where it was asked to (not ours, an input, not writable)."""

    status = 409
    exit_code = 4


class InternalFault(FmsError):
    """Our own fault: what we built is not valid FHIR (found in strict mode)."""

    status = 500
    exit_code = 5


def operation_outcome(issues: Iterable[Issue], settings: Settings) -> dict[str, Any]:
    rule_system = settings.issue_system
    entries = []
    for issue in issues:
        entry: dict[str, Any] = {"severity": issue.severity, "code": issue.code}
        details: dict[str, Any] = {"text": issue.message}
        if issue.rule:
            details["coding"] = [{"system": rule_system, "code": issue.rule}]
        entry["details"] = details
        entry["diagnostics"] = issue.message
        if issue.expression:
            entry["expression"] = [issue.expression]
        entries.append(entry)
    if not entries:
        entries.append(
            {
                "severity": "information",
                "code": "informational",
                "details": {"text": "No issues found"},
                "diagnostics": "No issues found",
            }
        )
    return {"resourceType": "OperationOutcome", "issue": entries}
