"""Issues and OperationOutcomes: the one error shape the CLI, the service and the sheets share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]

ISSUE_RULE_SYSTEM_PATH = "/CodeSystem/fms-issue"


@dataclass(frozen=True)
class Issue:
    """One finding. `code` is the FHIR issue type; `rule` is our stable code engines route on."""

    severity: Severity
    code: str
    message: str
    expression: str | None = None
    rule: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def under(self, prefix: str) -> Issue:
        """The same issue placed below `prefix` (e.g. the index of a document in an array)."""
        if self.expression is None:
            return replace(self, expression=prefix)
        joiner = "" if self.expression.startswith("[") else "."
        return replace(self, expression=f"{prefix}{joiner}{self.expression}")


class InvalidInput(Exception):
    """Raised at an edge when input breaks a rule; carries every issue found, not just the first."""

    def __init__(self, issues: Iterable[Issue], status: int = 422) -> None:
        self.issues = list(issues)
        self.status = status
        super().__init__("; ".join(issue.message for issue in self.issues))


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(issue.is_error for issue in issues)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    from adapter.config import canonical_base

    rule_system = canonical_base() + ISSUE_RULE_SYSTEM_PATH
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
