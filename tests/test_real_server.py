"""Every output kind posted twice to a real FHIR server (Medplum's router, in memory).

The second post is an integration engine's retry: every entry must answer 2xx, the retry must
change nothing (no new resource, no new version), and every reference between stored resources
must resolve. Bundles stay small: the router's time grows with the square of a Bundle's size.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapter import api
from adapter.cli import main
from adapter.ids import identifier
from adapter.medication import daily_dose_mg
from tests.support import SETTINGS, assert_valid_fhir
from tests.support.fhir_server import (
    assert_all_references_resolve,
    counts,
    state,
    statuses,
)

pytestmark = pytest.mark.slow  # a real FHIR server (Medplum in node)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BASELINE = json.loads((EXAMPLES / "baseline-visit.json").read_text())
REGIMEN = json.loads((EXAMPLES / "ldn-regimen.json").read_text())


def post_twice(server, bundles: list[dict[str, Any]], **options: Any) -> None:
    for bundle in bundles:
        assert_valid_fhir(bundle)
        assert all(s.startswith("2") for s in statuses(server.post_bundle(bundle, **options)))
    before = state(server)
    for bundle in bundles:
        assert all(s.startswith("2") for s in statuses(server.post_bundle(bundle, **options)))
    assert state(server) == before, "the retry created or changed resources"
    assert_all_references_resolve(server)


def test_convert_in_an_atomic_transaction(fhir_server):
    bundle = api.convert(BASELINE[2], SETTINGS).bundle  # PHQ-4: 4 entries
    post_twice(fhir_server, [bundle])
    assert counts(fhir_server) == {"QuestionnaireResponse": 1, "Observation": 3}


def test_convert_with_regimen_as_transaction_and_as_batch(fhir_server):
    bundle = api.convert(BASELINE, SETTINGS, regimen=REGIMEN).bundle
    # Medplum refuses conditional atomic transactions over 8 entries; without that project
    # feature it processes them entry by entry, as here.
    post_twice(fhir_server, [bundle], transactions=False)
    expected = {"QuestionnaireResponse": 4, "Observation": 14, "MedicationStatement": 1}
    assert counts(fhir_server) == expected
    fhir_server.reset()
    batch = api.convert(BASELINE, SETTINGS, "batch", regimen=REGIMEN).bundle
    post_twice(fhir_server, [batch])
    assert counts(fhir_server) == expected


def test_atomic_transactions_above_eight_conditional_entries_are_refused_so_batch_exists(
    fhir_server,
):
    bundle = api.convert(BASELINE, SETTINGS).bundle
    status, body = fhir_server.request("POST", "", bundle, transactions=True)
    assert status == 400 and "too many entries" in json.dumps(body)
    post_twice(fhir_server, [api.convert(BASELINE, SETTINGS, "batch").bundle], transactions=True)


def test_identifiers_survive_placeholder_rewriting(fhir_server):
    bundle = api.convert(BASELINE[2], SETTINGS).bundle
    fhir_server.post_bundle(bundle)
    for entry in bundle["entry"]:
        kind, search = entry["request"]["url"].split("?")  # the conditional update's search
        assert kind == entry["resource"]["resourceType"]
        stored = fhir_server.search(kind, search)
        assert len(stored) == 1
        ours = identifier(entry["fullUrl"].removeprefix("urn:uuid:"), SETTINGS)
        assert stored[0]["identifier"] == [ours] or stored[0]["identifier"] == ours


def test_extract_after_the_response_is_stored(fhir_server):
    converted = api.convert(BASELINE[1], SETTINGS)  # FIQR
    response = converted.bundle["entry"][0]["resource"]
    fhir_server.post_bundle(converted.bundle, transactions=False)
    extracted = api.extract(response, SETTINGS).bundle
    before = counts(fhir_server)
    post_twice(fhir_server, [extracted])
    assert counts(fhir_server) == before  # the same Observations as convert: nothing new


def test_regimen_alone_is_a_conditional_update_that_grows(fhir_server):
    resource = api.regimen(REGIMEN, SETTINGS).resource
    search = f"identifier={SETTINGS.identifier_system}|{resource['id']}"
    body = {key: value for key, value in resource.items() if key != "id"}
    for _ in range(2):
        status, _stored = fhir_server.request("PUT", f"MedicationStatement?{search}", body)
        assert status in (200, 201)
    longer = {**REGIMEN, "titration": {**REGIMEN["titration"], "end": "2025-06-30"}}
    grown = api.regimen(longer, SETTINGS).resource
    assert grown["id"] == resource["id"]
    grown.pop("id")
    status, _stored = fhir_server.request("PUT", f"MedicationStatement?{search}", grown)
    assert status == 200
    (stored,) = fhir_server.all("MedicationStatement")
    assert stored["effectivePeriod"]["end"] == "2025-06-30"


def _sheet(tmp_path: Path) -> Path:
    """Two patients, two visits each, with doses (one with 3 decimals, kept exactly)."""
    header = ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max"]
    header += ["phq4-nervous", "phq4-worry", "phq4-interest", "phq4-down"]
    rows = [
        ["P1", "2024-01-10", "", 60, 80, 1, 2, 1, 1],
        ["P1", "2024-03-10", "1.125", 50, 70, 1, 1, 1, 1],
        ["P2", "2024-01-11", "4.5", 40, 60, 0, 1, 0, 1],
        ["P2", "2024-02-11", "4.5", 30, 50, 0, 0, 0, 1],
    ]
    path = tmp_path / "visits.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


@pytest.mark.parametrize("output_format", ["transaction", "patient"])
def test_convert_sheet_bundles(fhir_server, tmp_path, output_format):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["convert-sheet", str(_sheet(tmp_path)), "--format", output_format, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    bundles = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    post_twice(fhir_server, bundles, transactions=False)
    assert counts(fhir_server) == {
        "QuestionnaireResponse": 8,
        "Observation": 20,
        "MedicationStatement": 2,
    }
    doses = {
        float(daily_dose_mg(dosage))
        for statement in fhir_server.all("MedicationStatement")
        for dosage in statement["dosage"]
    }
    assert doses == {1.125, 4.5}


def test_convert_sheet_ndjson_through_bulk_import(fhir_server, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["convert-sheet", str(_sheet(tmp_path)), "--format", "ndjson", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [
        json.loads(line)
        for path in sorted(out.glob("*.ndjson"))
        for line in path.read_text().splitlines()
    ]
    assert all(
        not ref["reference"].startswith("urn:")
        for resource in lines
        for ref in [*resource.get("derivedFrom", []), *resource.get("hasMember", [])]
    )
    assert fhir_server.bulk_import(lines)["created"] == len(lines)
    before = state(fhir_server)
    assert fhir_server.bulk_import(lines) == {"created": 0, "updated": 0, "unchanged": len(lines)}
    assert state(fhir_server) == before
    assert_all_references_resolve(fhir_server)


def test_the_case_report_follow_up_twice_gives_16_responses_and_44_scores(fhir_server, tmp_path):
    out = tmp_path / "out"
    sheet = EXAMPLES / "case-report-followup.xlsx"
    result = CliRunner().invoke(main, ["convert-sheet", str(sheet), "--out", str(out)])
    assert result.exit_code == 0, result.output
    bundles = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    post_twice(fhir_server, bundles, transactions=False)
    assert counts(fhir_server) == {
        "QuestionnaireResponse": 16,
        "Observation": 44,
        "MedicationStatement": 1,
    }
