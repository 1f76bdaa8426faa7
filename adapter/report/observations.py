"""The report's results as FHIR: one change Observation per score and follow-up visit.

- code `change-from-baseline` (project CodeSystem); the score compared in a component
  (`compared-score`, its own coding), so a search by the score's code never finds a change.
- valueQuantity: the absolute change, follow-up minus baseline, in `{score}` (negative = a fall,
  an improvement on every scale here). It is always defined when both values exist; the percent
  is not (baseline 0), so it is a component: `percent-change` in UCUM `%`, one decimal, or a
  dataAbsentReason when the baseline is 0.
- components `baseline-value`, `follow-up-value` and, for scores with bands, `baseline-band` and
  `follow-up-band`; effectivePeriod from the baseline day to the follow-up day.
- derivedFrom: the two score Observations, by their identifier (a logical reference that stays
  true whatever id a server gave them), else `Observation/<id>`.
- method: the responder rule, coded; interpretation: the category it gives, when it gives one,
  then the standard direction (v3 ObservationInterpretation `B` better, `W` worse) when the
  result says the change is important, then the results beside it (response, remission, the
  band transition).
- note: why there is no percent (baseline 0), and a baseline older than the window.
- id and identifier: a uuid5 of (patient, score, the two Observations compared), so a second run
  over the same data gives the same resources and a retried post creates nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from typing import Any

from adapter import report_codes as codes
from adapter.bundle import BundleType, bundle
from adapter.ids import identifier, resource_id
from adapter.instrument import Code
from adapter.observations import DATA_ABSENT_SYSTEM, SURVEY
from adapter.report.core import Change, FollowUp, number_text, percent_text, rounded
from adapter.settings import SCORE_UNIT, Settings
from adapter.terminology import BETTER, WORSE, band_code, coding

UCUM = "http://unitsofmeasure.org"
PERCENT_UNIT = {"unit": "%", "system": UCUM, "code": "%"}
DISPLAYS = dict(codes.REPORT_CODES)


def report_code(code: str) -> Code:
    return Code(code, DISPLAYS[code])


def concept(code: str, settings: Settings, text: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"coding": [coding(report_code(code), settings)]}
    if text:
        result["text"] = text
    return result


def _score_quantity(value: Any) -> dict[str, Any]:
    return {"value": float(rounded(value)), **SCORE_UNIT}


def change_id(report: FollowUp, change: Change) -> str:
    assert change.baseline is not None
    return resource_id(
        report.patient.key, codes.CHANGE, change.series.code, change.baseline.key,
        change.follow_up.key,
    )  # fmt: skip


def change_observation(report: FollowUp, change: Change, settings: Settings) -> dict[str, Any]:
    """The change Observation of one computed change (baseline and follow-up both valued)."""
    base, follow = change.baseline, change.follow_up
    assert base is not None and change.change is not None
    rid = change_id(report, change)
    label = change.series.label
    rule = change.rule
    bands = change.series.info.bands
    # A band rule's source is the score's band scheme, which names its own.
    source = bands.name if rule.kind == "band-transition" and bands else rule.source
    method_text = rule.summary if not source else f"{rule.name}: {rule.summary} ({source})"
    if rule.caveat:
        method_text = f"{method_text}; {rule.caveat}"
    components: list[dict[str, Any]] = [
        {
            "code": concept(codes.COMPARED_SCORE, settings),
            "valueCodeableConcept": {"coding": [dict(change.series.info.coding)], "text": label},
        },
        {
            "code": concept(codes.BASELINE_VALUE, settings),
            "valueQuantity": _score_quantity(base.number),
        },
        {
            "code": concept(codes.FOLLOW_UP_VALUE, settings),
            "valueQuantity": _score_quantity(follow.number),
        },
    ]
    if change.percent is not None:
        value = float(percent_text(change.percent, signed=False))
        components.append(
            {
                "code": concept(codes.PERCENT_CHANGE, settings),
                "valueQuantity": {"value": value, **PERCENT_UNIT},
            }
        )
    else:
        components.append(
            {
                "code": concept(codes.PERCENT_CHANGE, settings),
                "dataAbsentReason": {
                    "coding": [
                        {
                            "system": DATA_ABSENT_SYSTEM,
                            "code": "not-applicable",
                            "display": "Not Applicable",
                        }
                    ],
                    "text": "the baseline is 0: a percent change is undefined",
                },
            }
        )
    for code, band in ((codes.BASELINE_BAND, base.band), (codes.FOLLOW_UP_BAND, follow.band)):
        if band is not None and bands is not None:
            components.append(
                {
                    "code": concept(code, settings),
                    "valueCodeableConcept": {
                        "coding": [coding(band_code(band.code), settings)],
                        "text": f"{band.display} ({bands.name})",
                    },
                }
            )
    shown = f"{number_text(base.number)} to {number_text(follow.number)}"  # type: ignore[arg-type]  # a change has both numbers
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "identifier": [identifier(rid, settings)],
        "status": "preliminary" if base.preliminary or follow.preliminary else "final",
        "category": [SURVEY],
        "code": concept(codes.CHANGE, settings, f"{label}: change from baseline ({shown})"),
        "subject": deepcopy(report.patient.subject),
        "effectivePeriod": {"start": base.day.isoformat(), "end": follow.day.isoformat()},
        "valueQuantity": _score_quantity(change.change),
    }
    interpretations = []
    if change.category is not None:
        interpretations.append(concept(change.category, settings, change.explanation))
    if change.direction is not None:
        standard = BETTER if change.direction == "better" else WORSE
        interpretations.append({"coding": [coding(standard, settings)]})
    interpretations += [concept(extra, settings) for extra in change.extras]
    if interpretations:
        observation["interpretation"] = interpretations
    observation["method"] = concept(rule.code, settings, method_text)
    notes = [change.explanation] if change.percent is None else []
    stale = report.stale(change.series.code)
    if stale is not None:
        notes.append(stale.split(": ", 1)[1])
    if notes:
        observation["note"] = [{"text": text} for text in notes]
    references = [ref for ref in (base.reference, follow.reference) if ref is not None]
    if references:
        observation["derivedFrom"] = references
    observation["component"] = components
    return observation


def change_observations(report: FollowUp, settings: Settings) -> list[dict[str, Any]]:
    """Every computed change of a patient (changes without two values have no Observation)."""
    return [
        change_observation(report, change, settings)
        for change in report.changes
        if change.change is not None
    ]


def changes_bundle(
    reports: Iterable[FollowUp], settings: Settings, bundle_type: BundleType = "transaction"
) -> dict[str, Any]:
    """The change Observations as conditional updates, to store beside the scores."""
    resources = [o for report in reports for o in change_observations(report, settings)]
    return bundle(resources, settings, bundle_type)
