"""The one path from a checked response to its resources: convert, extract and sheets take it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from adapter.ids import ids_under
from adapter.links import Links
from adapter.model import Issue, Response, Severity
from adapter.observations import build_observations
from adapter.provenance import mark_test_data
from adapter.response import build_response, response_id
from adapter.rules import reported_agrees
from adapter.scoring import ScoreResult, band_for, score_answers, wire_value


@dataclass(frozen=True)
class Reported:
    """A score someone else computed (a legacy total, a renderer's calculated item)."""

    value: Any
    where: str | None
    """Where it was reported: a FHIRPath, or for a sheet cell `row N, column X` (see row, column)."""
    row: int | None = None
    column: str | None = None

    def place(self, issue: Issue) -> Issue:
        return issue.at(self.row, self.column) if self.row is not None else issue


@dataclass(frozen=True)
class Converted:
    response: Response
    scores: list[ScoreResult]
    resources: list[dict[str, Any]]
    issues: list[Issue] = field(default_factory=list)


def reconcile(
    results: list[ScoreResult],
    reported: Mapping[str, Reported],
    on_mismatch: Literal["reject", "warn"] = "reject",
    schemes: Mapping[str, str] | None = None,
) -> tuple[list[ScoreResult], list[Issue]]:
    """Reported scores next to items must agree (`reported_agrees`); where the items fall short
    of a score, the reported value is kept and marked as reported."""
    by_code = {result.code: result for result in results}
    issues: list[Issue] = []
    for code, report in reported.items():
        computed = by_code[code]
        shown = wire_value(computed.score, report.value)
        if computed.value is None:
            message = (
                f"{code}: not computable from the items ({computed.missing_reason}); "
                f"the reported {shown} is kept"
            )
            issues.append(
                report.place(
                    Issue("warning", "informational", message, report.where, "reported-kept")
                )
            )
            by_code[code] = ScoreResult(
                computed.score,
                report.value,
                band=band_for(computed.score, report.value, schemes),
                reported=True,
            )
        elif not reported_agrees(computed.score, computed.value, report.value):
            message = (
                f"{code}: the reported {shown} disagrees with "
                f"{computed.wire_value()} computed from the items"
            )
            severity: Severity = "error" if on_mismatch == "reject" else "warning"
            issues.append(
                report.place(
                    Issue(severity, "business-rule", message, report.where, "reported-mismatch")
                )
            )
    return list(by_code.values()), issues


def response_resources(
    response: Response,
    links: Links,
    reported: Mapping[str, Reported] | None = None,
    on_mismatch: Literal["reject", "warn"] = "reject",
) -> Converted:
    """QuestionnaireResponse + score Observations (derivedFrom the response)."""
    instrument = response.instrument
    made = ids_under(response.subject.key, instrument.id, response.authored)  # every id below
    questionnaire_response = build_response(response, links.settings, made("QuestionnaireResponse"))
    results = score_answers(instrument, response.answers, links.settings.schemes)
    issues: list[Issue] = []
    if reported:
        results, issues = reconcile(results, reported, on_mismatch, links.settings.schemes)
    observations = build_observations(
        results,
        instrument,
        response.subject,
        response.authored,
        response.status,
        links.to("QuestionnaireResponse", questionnaire_response["id"]),
        links,
        made,
    )
    resources = [questionnaire_response, *observations]
    if response.test_data is not None:
        resources = [mark_test_data(r, response.test_data) for r in resources]
    return Converted(response, results, resources, issues)


def score_resources(
    response: Response, links: Links, derived_from: dict[str, Any] | None
) -> Converted:
    """Score Observations alone, of a response that lives elsewhere (`extract`)."""
    results = score_answers(response.instrument, response.answers, links.settings.schemes)
    observations = build_observations(
        results,
        response.instrument,
        response.subject,
        response.authored,
        response.status,
        derived_from,
        links,
    )
    if response.test_data is not None:
        observations = [mark_test_data(r, response.test_data) for r in observations]
    return Converted(response, results, observations)


def reported_resources(
    response: Response, links: Links, reported: Mapping[str, Reported]
) -> list[dict[str, Any]]:
    """Score Observations from reported values alone (legacy rows that hold only totals)."""
    results = [
        ScoreResult(
            score,
            reported[score.code.code].value,
            band=band_for(score, reported[score.code.code].value, links.settings.schemes),
            reported=True,
        )
        for score in response.instrument.scores
        if score.code.code in reported
    ]
    observations = build_observations(
        results,
        response.instrument,
        response.subject,
        response.authored,
        response.status,
        None,
        links,
    )
    return [mark_test_data(r, response.test_data) for r in observations]


def iter_resources(converted: Iterable[Converted]) -> Iterable[dict[str, Any]]:
    for item in converted:
        yield from item.resources


__all__ = [
    "Converted",
    "Reported",
    "iter_resources",
    "reconcile",
    "reported_resources",
    "response_id",
    "response_resources",
    "score_resources",
]
