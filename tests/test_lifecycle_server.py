"""Corrections reach a real FHIR server (Medplum's router, in memory): a sheet's output, then
the delta of a corrected sheet, then the same delta again; an amended QuestionnaireResponse
through `$convert` and through `$extract`.

What must hold on the server: one resource per identifier, a new version (meta.versionId) only
where the content changed, the withdrawn visit `entered-in-error`, every reference resolving,
and a retry that changes nothing at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.web import create_app
from tests.support import SETTINGS
from tests.support.fhir_server import FhirServer, assert_all_references_resolve, state, statuses
from tests.support.sheets import PHQ, write_csv

pytestmark = pytest.mark.slow  # a real FHIR server (Medplum in node)

HEADER = ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max", *PHQ]
BEFORE = [
    ["P1", "2024-01-10", "", 60, 80, 1, 2, 1, 1],
    ["P1", "2024-03-10", "1.5", 50, 70, 1, 1, 1, 1],
    ["P2", "2024-01-11", "4.5", 40, 60, 0, 1, 0, 1],
    ["P2", "2024-02-11", "4.5", 30, 50, 0, 0, 0, 1],
]
AFTER = [
    ["P1", "2024-01-10", "", 60, 80, 1, 2, 1, 1],
    ["P1", "2024-03-10", "1.5", 55, 70, 1, 1, 1, 1],  # pain-mean corrected 50 -> 55
    ["P2", "2024-01-11", "4.5", 40, 65, 0, 1, 0, 1],  # pain-max corrected 60 -> 65
    ["P2", "2024-04-11", "4.5", 20, 40, 0, 0, 0, 0],  # new; 2024-02-11 is withdrawn
]
OURS = SETTINGS.identifier_system


def _convert(tmp_path: Path, name: str, rows: list[list[Any]], *options: str) -> Path:
    out = tmp_path / name
    sheet = write_csv(tmp_path / f"{name}.csv", [HEADER, *rows])
    result = CliRunner().invoke(main, ["convert-sheet", str(sheet), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return out


def _ours(resource: dict[str, Any]) -> str:
    found = resource["identifier"]
    found = found if isinstance(found, list) else [found]
    (value,) = [i["value"] for i in found if i["system"] == OURS]
    return value  # type: ignore[no-any-return]


def _post(server: FhirServer, out: Path, fmt: str, transactions: bool) -> None:
    if fmt == "ndjson":
        lines = [
            json.loads(line)
            for path in sorted(out.glob("[!.]*.ndjson"))
            for line in path.read_text().splitlines()
        ]
        server.bulk_import(lines)
        return
    for path in sorted(out.glob("*.json")):
        answer = server.post_bundle(json.loads(path.read_text()), transactions=transactions)
        assert all(s.startswith("2") for s in statuses(answer)), answer


def _by_identifier(server: FhirServer) -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = {}
    for resource in server.everything():
        key = _ours(resource)
        assert key not in stored, f"two resources carry the identifier {key}"
        stored[key] = resource
    return stored


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """What the sheet decides: values, answers, periods (not ids, meta or statuses)."""
    keep = ("valueQuantity", "valueBoolean", "item", "dosage", "effectivePeriod", "dateAsserted")
    return {key: resource.get(key) for key in keep}


@pytest.mark.parametrize(
    ("fmt", "options", "transactions"),
    [
        ("transaction", [], True),  # a Bundle per visit, atomic (7 entries: within Medplum's 8)
        ("patient", ["--bundle-type", "batch"], True),  # a Bundle a patient, as a batch
        ("ndjson", [], True),  # Bulk Data $import keeps the ids
    ],
)
def test_a_corrected_sheet_reaches_the_server_once_and_a_retry_changes_nothing(
    fhir_server, tmp_path, fmt, options, transactions
):
    first = _convert(tmp_path, "first", BEFORE, "--format", fmt, *options)
    _post(fhir_server, first, fmt, transactions)
    before = {key: r["meta"]["versionId"] for key, r in _by_identifier(fhir_server).items()}
    server_ids = {key: r["id"] for key, r in _by_identifier(fhir_server).items()}
    assert len(before) == 30

    delta = _convert(tmp_path, "delta", AFTER, "--format", fmt, "--since", str(first), *options)
    _post(fhir_server, delta, fmt, transactions)
    stored = _by_identifier(fhir_server)  # one resource per identifier, or this fails
    full = _convert(tmp_path, "full", AFTER, "--format", fmt, *options)
    expected = {}
    for path in sorted(full.glob("[!.]*.*json")):
        text = path.read_text()
        if path.suffix == ".ndjson":
            expected |= {_ours(r): r for r in map(json.loads, text.splitlines())}
        else:
            expected |= {_ours(e["resource"]): e["resource"] for e in json.loads(text)["entry"]}

    withdrawn = set(before) - set(expected)
    assert len(withdrawn) == 7 and set(stored) == set(before) | set(expected)
    for key in withdrawn:
        assert stored[key]["status"] == "entered-in-error"
        assert stored[key]["meta"]["versionId"] != before[key]
    changed = {
        k for k in set(before) & set(expected) if stored[k]["meta"]["versionId"] != before[k]
    }
    assert len(changed) == 5  # two QuestionnaireResponses, two scores, one MedicationStatement
    for key, resource in expected.items():
        assert _content(stored[key]) == _content(resource), key  # the server holds the new values
        if key in before:
            assert stored[key]["id"] == server_ids[key]  # the id never changes
    corrected = {stored[k]["resourceType"]: stored[k]["status"] for k in changed}
    assert corrected == {
        "QuestionnaireResponse": "amended",
        "Observation": "corrected",
        "MedicationStatement": "active",
    }
    for key in set(before) & set(expected) - changed:  # unchanged: the same version
        assert stored[key]["meta"]["versionId"] == before[key]
        assert _content(stored[key]) == _content(expected[key])
    assert_all_references_resolve(fhir_server)

    after = state(fhir_server)
    _post(fhir_server, delta, fmt, transactions)  # the engine retries the delta
    assert state(fhir_server) == after, "the retry made a new version"


ANSWERS: dict[str, Any] = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "AMEND-1"}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 2, "phq4-down": 2},
}
AMENDED = {**ANSWERS, "status": "amended", "answers": {**ANSWERS["answers"], "phq4-down": 0}}


def _client(tmp_path: Path) -> Any:
    app = create_app({"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "page")})
    return app.test_client()


def _call(client: Any, path: str, body: Any) -> dict[str, Any]:
    answer = client.post(path, data=json.dumps(body), content_type="application/fhir+json")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json(force=True)  # type: ignore[no-any-return]


def _values(server: FhirServer) -> dict[str, Any]:
    return {
        r["code"]["coding"][0]["code"]: (r["status"], r["valueQuantity"]["value"])
        for r in server.all("Observation")
    }


def test_an_amended_response_through_convert_updates_it_and_its_scores(fhir_server, tmp_path):
    client = _client(tmp_path)
    fhir_server.post_bundle(_call(client, "/$convert", ANSWERS))
    before = state(fhir_server)
    assert _values(fhir_server)["70272-0"] == ("final", 7)
    bundle = _call(client, "/$convert", AMENDED)
    assert all(s.startswith("2") for s in statuses(fhir_server.post_bundle(bundle)))
    after = state(fhir_server)
    assert set(after) == set(before)  # the same server ids: nothing created
    assert all(after[key] != before[key] for key in before)  # each changed once (status too)
    (response,) = fhir_server.all("QuestionnaireResponse")
    assert response["status"] == "amended"
    assert _values(fhir_server) == {
        "70272-0": ("corrected", 5),
        "55758-7": ("corrected", 2),
        "phq4-anxiety": ("corrected", 3),
    }
    assert_all_references_resolve(fhir_server)
    fhir_server.post_bundle(bundle)
    assert state(fhir_server) == after, "the retry made a new version"


def test_an_amended_response_through_extract_corrects_the_scores(fhir_server, tmp_path):
    client = _client(tmp_path)
    stored: dict[str, dict[str, Any]] = {}
    for document in (ANSWERS, AMENDED):
        entry = _call(client, "/$convert", document)["entry"][0]  # the response alone
        fhir_server.post_bundle({"resourceType": "Bundle", "type": "batch", "entry": [entry]})
        (response,) = fhir_server.all("QuestionnaireResponse")  # as the server holds it
        extracted = _call(client, "/QuestionnaireResponse/$extract", response)
        assert all(s.startswith("2") for s in statuses(fhir_server.post_bundle(extracted)))
        stored[document.get("status", "completed")] = state(fhir_server)
        fhir_server.post_bundle(extracted)  # the retry
        assert state(fhir_server) == stored[document.get("status", "completed")]
    first, second = stored["completed"], stored["amended"]
    assert set(first) == set(second)  # one response and three scores, whatever was posted
    assert all(first[key] != second[key] for key in first)
    assert _values(fhir_server) == {
        "70272-0": ("corrected", 5),
        "55758-7": ("corrected", 2),
        "phq4-anxiety": ("corrected", 3),
    }
    assert_all_references_resolve(fhir_server)


def test_a_flag_a_clinician_reviewed_stays_reviewed_when_the_visit_is_posted_again(
    fhir_server, tmp_path
):
    phq9 = {
        "instrument": "phq9",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "FLAG-1"}},
        "authored": "2025-04-10",
        "answers": {f"phq9-q{n}": 1 for n in range(1, 10)},
    }
    bundle = _call(_client(tmp_path), "/$convert", phq9)
    answer = fhir_server.post_bundle(bundle, transactions=False)
    assert all(s.startswith("2") for s in statuses(answer))
    (flag,) = fhir_server.all("Flag")
    status, _ = fhir_server.request("PUT", f"Flag/{flag['id']}", {**flag, "status": "inactive"})
    assert status == 200
    reviewed = state(fhir_server)
    fhir_server.post_bundle(bundle, transactions=False)  # a retry, or a re-run
    assert state(fhir_server) == reviewed
    (flag,) = fhir_server.all("Flag")
    assert flag["status"] == "inactive"
