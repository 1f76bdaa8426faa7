"""Report inputs: score Observations and LDN MedicationStatements as the project writes them, and
a patient with the instruments added after the case report (PHQ-9, GAD-7, PGIC, 2010/2011)."""

from __future__ import annotations

import re
from typing import Any

from adapter import api, registry
from tests.support import ROOT, SETTINGS

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN = "urn:example:mrn"
PATIENT = "NEW-INSTRUMENTS-1"


def obs(
    code: str,
    day: str,
    value: Any = None,
    *,
    patient: str = "P1",
    absent: str | None = None,
    status: str = "final",
    oid: str | None = None,
) -> dict[str, Any]:
    """A score Observation as the project writes it (only what the report reads)."""
    rid = oid or f"{patient}-{code}-{day}"
    system = LOINC if code[0].isdigit() else SETTINGS.codesystem_url
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "identifier": [{"system": SETTINGS.identifier_system, "value": rid}],
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"identifier": {"system": MRN, "value": patient}},
        "effectiveDateTime": day,
    }
    if absent:
        resource["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                }
            ],
            "text": absent,
        }
    elif isinstance(value, bool):
        resource["valueBoolean"] = value
    elif value is not None:
        resource["valueQuantity"] = {
            "value": value,
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        }
    return resource


def ldn(phases: list[tuple[str, str, str | None]], patient: str = "P1") -> dict[str, Any]:
    """The LDN MedicationStatement of the regimen builder, from (dose, start, end) phases."""
    document = {
        "subject": {"identifier": {"system": MRN, "value": patient}},
        "phases": [
            {"dose_mg": dose, "start": start, **({"end": end} if end else {})}
            for dose, start, end in phases
        ],
    }
    return api.regimen(document, SETTINGS).resource


def changes_of(report: Any, code: str) -> list[Any]:
    """The report's changes of one score code."""
    return [change for change in report.changes if change.series.code == code]


def document(instrument: str, patient: str, day: str, answers: dict[str, Any]) -> dict[str, Any]:
    return {
        "instrument": instrument,
        "subject": {"identifier": {"system": MRN, "value": patient}},
        "authored": day,
        "status": "completed",
        "answers": answers,
    }


def phq9(*items: int) -> dict[str, int]:
    """Items 1-9 in order; the ones not given are 0."""
    values = list(items) + [0] * (9 - len(items))
    return {f"phq9-q{number}": value for number, value in enumerate(values, 1)}


def gad7(*items: int) -> dict[str, int]:
    values = list(items) + [0] * (7 - len(items))
    return {f"gad7-q{number}": value for number, value in enumerate(values, 1)}


def fm2011() -> dict[str, Any]:
    """WPI 3 and SSS 9 with symptoms for 3 months: the 2010/2011 criteria met."""
    painful = {"wpi-shoulder-l", "wpi-hip-l", "wpi-neck"}
    answers: dict[str, Any] = {i.link_id: i.link_id in painful for i in registry.get("wpi").items}
    answers |= {"sss-fatigue": 3, "sss-unrefreshed": 3, "sss-cognitive": 2, "sss-headache": True}
    return answers | {"sss-abdominal": False, "sss-depression": False, "fm-duration-3m": True}


def new_instrument_resources(patient: str = PATIENT) -> list[dict[str, Any]]:
    """Baseline 2024-01-10 (PHQ-9 12 moderate, GAD-7 11 moderate, the 2011 criteria), LDN from
    2024-01-15, follow-up 2024-06-10: PHQ-9 1 (minimal, all of it item 9: the flag), GAD-7 4
    minimal, PGIC 2 (much improved)."""
    documents = [
        document("phq9", patient, "2024-01-10", phq9(2, 2, 2, 2, 2, 1, 1)),
        document("gad7", patient, "2024-01-10", gad7(2, 2, 2, 2, 1, 1, 1)),
        document("fm2011", patient, "2024-01-10", fm2011()),
        document("phq9", patient, "2024-06-10", phq9(0, 0, 0, 0, 0, 0, 0, 0, 1)),
        document("gad7", patient, "2024-06-10", gad7(1, 1, 1, 1)),
        document("pgic", patient, "2024-06-10", {"pgic": 2}),
    ]
    resources = [ldn([("4.5", "2024-01-15", None)], patient=patient)]
    for answers in documents:
        bundle = api.convert(answers, SETTINGS).bundle
        resources += [entry["resource"] for entry in bundle["entry"]]
    return resources


def demo_note() -> str:
    """The note `make demo` gives the example: what in it is invented."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r"^EXAMPLE_NOTE := (.+)$", makefile, re.M)
    assert found is not None, "the Makefile names no EXAMPLE_NOTE"
    return found.group(1)
