"""Examples for the OpenAPI description, answered by the same use cases the routes call: an
example answer is what the service really returns for the example request."""

from __future__ import annotations

import io
from typing import Any

from adapter import api
from adapter.outcome import operation_outcome
from adapter.settings import Settings
from adapter.web.operations import Examples

ANSWERS: dict[str, Any] = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "EXAMPLE-1"}},
    "authored": "2025-04-10",
    "status": "completed",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1},
}
REGIMEN: dict[str, Any] = {
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "EXAMPLE-1"}},
    "status": "active",
    "form": "capsule",
    "timing": "bedtime",
    "titration": {
        "start": "2025-01-06",
        "start_mg": 1.5,
        "step_mg": 1.5,
        "every_days": 14,
        "target_mg": 4.5,
    },
    "asserted": "2025-04-10",
}
CSV = (
    "patient_id,visit_date,ldn_dose_mg,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    "EXAMPLE-1,2025-04-10,4.5,1,2,0,1\n"
    "EXAMPLE-2,2025-04-11,,1,2,9,1\n"
)


def response_example(settings: Settings) -> dict[str, Any]:
    """A QuestionnaireResponse that validates: what $convert makes of `ANSWERS`."""
    bundle = api.convert(ANSWERS, settings).bundle
    return bundle["entry"][0]["resource"]


def convert(settings: Settings) -> Examples:
    return Examples(
        {"one document": ANSWERS, "an array": [ANSWERS]}, api.convert(ANSWERS, settings).bundle
    )


def validate(settings: Settings) -> Examples:
    resource = response_example(settings)
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": resource},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    issues = api.validate(resource, settings).issues
    return Examples(
        {"bare resource": resource, "Parameters": parameters},
        operation_outcome(issues, settings),
    )


def extract(settings: Settings) -> Examples:
    resource = response_example(settings)
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": resource}],
    }
    return Examples(
        {"bare resource": resource, "SDC Parameters": parameters},
        api.extract(resource, settings).bundle,
    )


def regimen(settings: Settings) -> Examples:
    return Examples({"titration": REGIMEN}, api.regimen(REGIMEN, settings).resource)


def convert_sheet(settings: Settings) -> Examples:
    from adapter.sheets.request import SheetRequest, ToMemory

    request = SheetRequest(io.BytesIO(CSV.encode()), "visits.csv")
    result = api.convert_sheet(request, ToMemory(), settings)
    return Examples({"csv": CSV}, result.report.to_parameters(result.bundles), "text/csv")


def questionnaire(settings: Settings) -> Examples:
    return Examples(response=api.questionnaire("phq4", settings))


def codesystem(settings: Settings) -> Examples:
    return Examples(response=api.codesystems(settings)[0])
