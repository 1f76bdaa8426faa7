"""LDN regimen -> MedicationStatement: titration, checks, R4 shape, determinism."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.medication import (
    Phase,
    build_medication_statement,
    expand_titration,
    regimen_from_document,
)
from adapter.outcome import InvalidInput
from tests.support import SETTINGS, assert_valid_fhir, convert_documents

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SUBJECT = {"identifier": {"system": "urn:example:mrn", "value": "P001"}}


def _phases(*rows):
    return [
        {"dose_mg": dose, "start": start, **({"end": end} if end else {})}
        for dose, start, end in rows
    ]


def _regimen(**changes):
    document = {
        "subject": SUBJECT,
        "phases": _phases(
            (1.5, "2024-01-01", "2024-01-14"),
            (3, "2024-01-15", "2024-01-28"),
            (4.5, "2024-01-29", None),
        ),
    }
    document.update(changes)
    return document


def _errors(document):
    with pytest.raises(InvalidInput) as raised:
        regimen_from_document(document)
    return {(i.expression, i.rule) for i in raised.value.issues if i.is_error}


def test_titration_expands_into_consecutive_phases():
    phases = expand_titration(Decimal("1.5"), Decimal("1.5"), 14, Decimal("4.5"), date(2023, 9, 1))
    assert phases == [
        Phase(Decimal("1.5"), date(2023, 9, 1), date(2023, 9, 14)),
        Phase(Decimal("3.0"), date(2023, 9, 15), date(2023, 9, 28)),
        Phase(Decimal("4.5"), date(2023, 9, 29), None),
    ]


def test_titration_to_a_target_off_the_step_ends_with_a_smaller_step():
    phases = expand_titration(
        Decimal("1"), Decimal("1.5"), 7, Decimal("4.5"), date(2024, 1, 1), date(2024, 6, 30)
    )
    assert [p.dose_mg for p in phases] == [
        Decimal("1"),
        Decimal("2.5"),
        Decimal("4"),
        Decimal("4.5"),
    ]
    assert phases[-1] == Phase(Decimal("4.5"), date(2024, 1, 22), date(2024, 6, 30))


def test_titration_that_starts_at_the_target_is_one_phase():
    assert expand_titration(
        Decimal("4.5"), Decimal("1.5"), 14, Decimal("4.5"), date(2024, 1, 1)
    ) == [Phase(Decimal("4.5"), date(2024, 1, 1), None)]


def test_example_regimen_is_a_valid_r4_medication_statement():
    regimen, warnings = regimen_from_document(
        json.loads((EXAMPLES / "ldn-regimen.json").read_text())
    )
    assert warnings == []
    statement = build_medication_statement(regimen, SETTINGS)
    assert_valid_fhir(statement)
    assert "medication" not in statement  # R5 shape; R4 is medicationCodeableConcept
    medication = statement["medicationCodeableConcept"]
    assert medication["coding"] == [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "7243",
            "display": "naltrexone",
        }
    ]
    assert "Low-dose" in medication["text"] and "compounded" in medication["text"]
    assert statement["effectivePeriod"] == {"start": "2023-09-01"}
    assert statement["dateAsserted"] == "2025-04-10" and statement["status"] == "active"
    codes = {(c["system"], c["code"]) for c in statement["reasonCode"][0]["coding"]}
    assert codes == {
        ("http://snomed.info/sct", "203082005"),
        ("http://hl7.org/fhir/sid/icd-10", "M79.7"),
    }
    dosages = statement["dosage"]
    assert [d["sequence"] for d in dosages] == [1, 2, 3]
    assert [d["doseAndRate"][0]["doseQuantity"]["value"] for d in dosages] == [1.5, 3.0, 4.5]
    first = dosages[0]
    assert first["doseAndRate"][0]["doseQuantity"] == {
        "value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"
    }  # fmt: skip
    assert first["timing"]["repeat"] == {
        "boundsPeriod": {"start": "2023-09-01", "end": "2023-09-14"},
        "frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"],
    }  # fmt: skip
    assert first["route"]["coding"][0]["code"] == "26643006"
    assert first["text"] == (
        "1.5 mg by mouth once daily at bedtime (compounded capsules), from 2023-09-01 to 2023-09-14"
    )
    assert dosages[2]["text"].endswith("from 2023-09-29, ongoing")


def test_explicit_phases_liquid_morning_and_own_reason():
    document = _regimen(
        form="liquid", timing="morning", status="completed",
        reason=[{"system": "http://snomed.info/sct", "code": "95417003", "display": "Primary fibromyalgia syndrome"}],
        phases=_phases((0.5, "2024-01-01", "2024-01-07"), (1, "2024-01-08", "2024-03-31")),
    )  # fmt: skip
    statement = build_medication_statement(regimen_from_document(document)[0], SETTINGS)
    assert_valid_fhir(statement)
    assert statement["effectivePeriod"] == {"start": "2024-01-01", "end": "2024-03-31"}
    assert statement["dosage"][0]["timing"]["repeat"]["when"] == ["MORN"]
    assert "oral liquid" in statement["medicationCodeableConcept"]["text"]
    assert statement["reasonCode"][0]["coding"][0]["code"] == "95417003"
    assert statement["dateAsserted"] == "2024-01-08"


def test_once_daily_has_no_time_of_day():
    statement = build_medication_statement(
        regimen_from_document(_regimen(timing="once-daily"))[0], SETTINGS
    )
    assert "when" not in statement["dosage"][0]["timing"]["repeat"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_regimen(phases=_phases((1.5, "2024-01-01", "2024-01-20"), (3, "2024-01-15", None))), ("phases[1].start", "phase-overlap")),
        (_regimen(phases=_phases((1.5, "2024-01-01", "2024-01-10"), (3, "2024-01-15", None))), ("phases[1].start", "phase-gap")),
        (_regimen(phases=_phases((1.5, "2024-01-01", None), (3, "2024-01-15", None))), ("phases[1].start", "phase-overlap")),
        (_regimen(phases=_phases((1.5, "2024-01-10", "2024-01-01"))), ("phases[0].end", "end-before-start")),
        (_regimen(phases=_phases((0, "2024-01-01", None))), ("phases[0].dose_mg", "dose-not-positive")),
        (_regimen(phases=_phases((-1.5, "2024-01-01", None))), ("phases[0].dose_mg", "dose-not-positive")),
        (_regimen(form="tablet"), ("form", "unknown-form")),
        (_regimen(timing="twice-daily"), ("timing", "unknown-timing")),
        (_regimen(status="taking"), ("status", "invalid-value")),
        (_regimen(phases=[]), ("phases", "invalid-value")),
        (_regimen(phases=_phases((1.5, "2024-02-30", None))), ("phases[0].start", "invalid-value")),
        (_regimen(titration={"start_mg": 1.5, "step_mg": 1.5, "every_days": 14, "target_mg": 4.5, "start": "2024-01-01"}), (None, "invalid-value")),
        ({"subject": SUBJECT, "titration": {"start_mg": 1.5, "step_mg": 0, "every_days": 14, "target_mg": 4.5, "start": "2024-01-01"}}, ("titration.step_mg", "dose-not-positive")),
        ({"subject": SUBJECT, "titration": {"start_mg": 3, "step_mg": 1, "every_days": 0, "target_mg": 1, "start": "2024-01-01"}}, ("titration.target_mg", "invalid-value")),
        ({"subject": SUBJECT, "titration": {"start_mg": 1.5, "step_mg": 1.5, "every_days": 14, "target_mg": 4.5, "start": "2024-01-01", "end": "2024-01-10"}}, ("titration.end", "end-before-start")),
        ({"phases": _phases((1.5, "2024-01-01", None))}, ("subject", "missing-field")),
    ],
    ids=[
        "overlap", "gap", "open phase before another", "end before start", "zero dose", "negative dose",
        "unknown form", "unknown timing", "bad status", "no phase", "impossible date",
        "phases and titration", "zero step", "target below start", "ends before target", "no subject",
    ],
)  # fmt: skip
def test_errors_name_the_field(document, expected):
    assert expected in _errors(document)


def test_above_6_mg_is_a_warning_not_an_error():
    """6 mg/day is the FINAL trial's LDN dose: no warning; above it, a warning naming the source."""
    document = _regimen(
        phases=_phases(
            (4.5, "2024-01-01", "2024-01-31"),
            (6, "2024-02-01", "2024-02-29"),
            (6.5, "2024-03-01", None),
        )
    )
    regimen, warnings = regimen_from_document(document)
    assert [(w.severity, w.expression, w.rule) for w in warnings] == [
        ("warning", "phases[2].dose_mg", "not-low-dose")
    ]
    assert "FINAL trial" in warnings[0].message
    assert_valid_fhir(build_medication_statement(regimen, SETTINGS))


def test_output_is_deterministic_and_the_id_follows_subject_and_start():
    first = build_medication_statement(regimen_from_document(_regimen())[0], SETTINGS)
    again = build_medication_statement(regimen_from_document(_regimen())[0], SETTINGS)
    assert first == again
    longer = _regimen(phases=_phases((1.5, "2024-01-01", "2024-01-14"), (3, "2024-01-15", None)))
    assert (
        build_medication_statement(regimen_from_document(longer)[0], SETTINGS)["id"] == first["id"]
    )


def test_regimen_command_and_bundle_with_visit(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["regimen", str(EXAMPLES / "ldn-regimen.json")])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["resourceType"] == "MedicationStatement"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_regimen(form="tablet")))
    out = tmp_path / "out.json"
    result = runner.invoke(main, ["regimen", str(bad), "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert json.loads(result.stdout)["issue"][0]["expression"] == ["form"]

    result = runner.invoke(
        main,
        ["convert", str(EXAMPLES / "baseline-visit.json"), "--regimen", str(EXAMPLES / "ldn-regimen.json"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0
    bundle = json.loads(out.read_text())
    assert_valid_fhir(bundle)
    statement = bundle["entry"][-1]
    assert statement["resource"]["resourceType"] == "MedicationStatement"
    assert statement["request"]["method"] == "PUT"
    assert statement["request"]["url"].startswith(
        "MedicationStatement?identifier=https://fms-fhir.org/fhir/sid/resource-id|"
    )


def test_regimen_joins_a_bundle_in_the_core():
    statement = build_medication_statement(regimen_from_document(_regimen())[0], SETTINGS)
    bundle, _ = convert_documents(
        json.loads((EXAMPLES / "baseline-visit.json").read_text()), _regimen()
    )
    added = bundle["entry"][-1]["resource"]
    assert added == {key: value for key, value in statement.items() if key != "id"}


@pytest.mark.parametrize(
    ("dose", "rule"),
    [
        (1500000, "dose-implausible"),
        (50.5, "dose-implausible"),
        (1.2345, "dose-too-precise"),
        (0, "dose-not-positive"),
        (-1.5, "dose-not-positive"),
    ],
)
def test_a_dose_that_cannot_be_a_daily_ldn_dose_is_rejected(dose, rule):
    document = _regimen(phases=_phases((dose, "2024-01-01", None)))
    assert _errors(document) == {("phases[0].dose_mg", rule)}


def test_titrations_that_would_expand_without_end_are_refused():
    document = {
        "subject": SUBJECT,
        "titration": {"start_mg": 0.001, "step_mg": 0.001, "every_days": 1, "target_mg": 4.5,
                      "start": "2024-01-01"},
    }  # fmt: skip
    assert _errors(document) == {("titration.step_mg", "too-many-phases")}


def test_doses_are_written_exactly():
    document = _regimen(
        phases=_phases((0.125, "2024-01-01", "2024-01-31"), (4.375, "2024-02-01", None))
    )
    statement = build_medication_statement(regimen_from_document(document)[0], SETTINGS)
    values = [d["doseAndRate"][0]["doseQuantity"]["value"] for d in statement["dosage"]]
    assert values == [0.125, 4.375]
    assert "4.375 mg" in statement["dosage"][1]["text"]


@pytest.mark.parametrize(
    ("written", "on_the_wire"),
    [("3", "3"), ("3.0", "3.0"), ("4.5", "4.5"), ("0.75", "0.75"), ("4.125", "4.125")],
)
def test_a_dose_goes_on_the_wire_as_it_was_written(written, on_the_wire):
    """FHIR reads a decimal's precision as significant: 3 mg is not 3.0 mg."""
    from adapter.medication import _mg_quantity

    quantity = _mg_quantity(Decimal(written))
    assert json.dumps(quantity["value"]) == on_the_wire
