"""The Medplum FHIR server harness itself, with tiny hand-made resources (no project converters)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.fhir_server import FhirServer, statuses

pytestmark = pytest.mark.slow  # a real FHIR server (Medplum in node)

SYSTEM = "urn:example:harness"


def placeholder() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def observation(value: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "harness check"},
        "identifier": [{"system": SYSTEM, "value": value}],
        **fields,
    }


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_create_and_read_back(fhir_server: FhirServer):
    patient = {"resourceType": "Patient", "id": "mine", "name": [{"family": "Harness"}]}
    status, created = fhir_server.request("POST", "Patient", patient)
    assert status == 201, created
    assert created["id"] != "mine"  # like the Medplum server, create assigns the id
    status, read = fhir_server.request("GET", f"Patient/{created['id']}")
    assert status == 200
    assert read["name"] == [{"family": "Harness"}]
    assert [p["id"] for p in fhir_server.all("Patient")] == [created["id"]]


def test_conditional_create_posted_twice_creates_one(fhir_server: FhirServer):
    bundle = transaction(
        {
            "fullUrl": placeholder(),
            "resource": observation("obs-1"),
            "request": {
                "method": "POST",
                "url": "Observation",
                "ifNoneExist": f"identifier={SYSTEM}|obs-1",
            },
        }
    )
    assert statuses(fhir_server.post_bundle(bundle)) == ["201"]
    assert statuses(fhir_server.post_bundle(bundle)) == ["200"]
    assert len(fhir_server.search("Observation", {"identifier": f"{SYSTEM}|obs-1"})) == 1


def test_invalid_resource_is_refused(fhir_server: FhirServer):
    invalid = {"resourceType": "Observation", "identifier": [{"system": SYSTEM, "value": "bad"}]}
    status, outcome = fhir_server.request("POST", "Observation", invalid)
    assert 400 <= status < 500
    assert outcome["resourceType"] == "OperationOutcome"
    assert {e for i in outcome["issue"] for e in i["expression"]} == {
        "Observation.status",
        "Observation.code",
    }
    batch = transaction(
        {"resource": invalid, "request": {"method": "POST", "url": "Observation"}}, kind="batch"
    )
    assert statuses(fhir_server.post_bundle(batch)) == ["400"]
    # an atomic transaction with one invalid entry fails as a whole and writes nothing
    status, outcome = fhir_server.request(
        "POST",
        "",
        transaction(
            {"resource": observation("ok"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": invalid, "request": {"method": "POST", "url": "Observation"}},
        ),
    )
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"
    assert fhir_server.all("Observation") == []


def test_placeholder_reference_resolves(fhir_server: FhirServer):
    member, panel = placeholder(), placeholder()
    response = fhir_server.post_bundle(
        transaction(
            {
                "fullUrl": panel,
                "resource": observation("panel-1", hasMember=[{"reference": member}]),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": member,
                "resource": observation("member-1"),
                "request": {"method": "POST", "url": "Observation"},
            },
        )
    )
    assert statuses(response) == ["201", "201"]
    stored = {o["identifier"][0]["value"]: o for o in fhir_server.all("Observation")}
    member_id = stored["member-1"]["id"]
    assert stored["panel-1"]["hasMember"] == [{"reference": f"Observation/{member_id}"}]
    assert fhir_server.unresolved_references() == []


def test_conditional_update_posted_twice_leaves_one(fhir_server: FhirServer):
    bundle = transaction(
        {
            "fullUrl": placeholder(),
            "resource": observation("obs-2"),
            "request": {"method": "PUT", "url": f"Observation?identifier={SYSTEM}|obs-2"},
        }
    )
    assert statuses(fhir_server.post_bundle(bundle)) == ["201"]
    assert statuses(fhir_server.post_bundle(bundle)) == ["200"]
    [stored] = fhir_server.all("Observation")
    status, history = fhir_server.request("GET", f"Observation/{stored['id']}/_history")
    assert status == 200 and len(history["entry"]) == 1  # the unchanged re-post made no version


def test_conditional_update_with_id_is_refused_when_it_would_create(fhir_server: FhirServer):
    entry = {
        "resource": observation("obs-3", id="obs-3"),
        "request": {"method": "PUT", "url": f"Observation?identifier={SYSTEM}|obs-3"},
    }
    assert statuses(fhir_server.post_bundle(transaction(entry, kind="batch"))) == ["400"]
    status, _ = fhir_server.request("PUT", entry["request"]["url"], entry["resource"])
    assert status == 400
    assert fhir_server.all("Observation") == []


def test_placeholder_in_identifier_value_is_rewritten(fhir_server: FhirServer):
    """Medplum rewrites the placeholder in every string, so it must never be an identifier."""
    full_url = placeholder()
    bundle = transaction(
        {
            "fullUrl": full_url,
            "resource": observation(full_url),
            "request": {
                "method": "POST",
                "url": "Observation",
                "ifNoneExist": f"identifier={SYSTEM}|{full_url}",
            },
        }
    )
    fhir_server.post_bundle(bundle)
    fhir_server.post_bundle(bundle)
    stored = fhir_server.all("Observation")
    assert len(stored) == 2  # not idempotent: the identifier became "Observation/<new id>"
    assert all(o["identifier"][0]["value"] == f"Observation/{o['id']}" for o in stored)


def test_atomic_transaction_caps_conditional_entries_at_eight(fhir_server: FhirServer):
    def entries(count: int) -> list[dict[str, Any]]:
        return [
            {
                "resource": observation(f"cap-{i}"),
                "request": {"method": "PUT", "url": f"Observation?identifier={SYSTEM}|cap-{i}"},
            }
            for i in range(count)
        ]

    assert statuses(fhir_server.post_bundle(transaction(*entries(8)))) == ["201"] * 8
    fhir_server.reset()
    status, outcome = fhir_server.request("POST", "", transaction(*entries(9)))
    assert status == 400
    assert "too many entries" in outcome["issue"][0]["details"]["text"]
    # the same Bundle as a batch, or with the transaction-bundles feature off, has no cap
    assert statuses(fhir_server.post_bundle(transaction(*entries(9), kind="batch"))) == ["201"] * 9
    again = fhir_server.post_bundle(transaction(*entries(9)), transactions=False)
    assert statuses(again) == ["200"] * 9
    assert len(fhir_server.all("Observation")) == 9
