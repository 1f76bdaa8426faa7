"""The change Observations stored by a real FHIR server beside the scores they compare.

The case report's follow-up is posted as `make demo` writes it (a transaction Bundle per visit
and one for the LDN MedicationStatement), then the change Observations twice: every entry 2xx,
the retry changes nothing, and each `derivedFrom` (a logical reference by identifier) finds
exactly one stored score Observation.
"""

from __future__ import annotations

import json

import pytest

from adapter.report import change_bundle, load_resources
from tests.support import SETTINGS, assert_valid_fhir
from tests.support.fhir_server import assert_all_references_resolve, counts, state, statuses

pytestmark = pytest.mark.slow  # a real FHIR server (Medplum in node)

MAX_ATOMIC = 8
"""Medplum refuses conditional atomic transactions above 8 entries (see test_real_server)."""


def post(server, bundle):
    options = {"transactions": False} if len(bundle["entry"]) > MAX_ATOMIC else {}
    answered = statuses(server.post_bundle(bundle, **options))
    assert all(status.startswith("2") for status in answered), answered


def test_change_observations_are_stored_beside_the_scores_once(fhir_server, case_dir):
    for path in sorted(case_dir.glob("*.json")):
        post(fhir_server, json.loads(path.read_text()))
    scores = counts(fhir_server)
    assert scores == {"QuestionnaireResponse": 16, "Observation": 44, "MedicationStatement": 1}
    for bundle_type in ("transaction", "batch"):
        bundle = change_bundle(
            load_resources(case_dir, SETTINGS), SETTINGS, bundle_type=bundle_type
        )
        assert_valid_fhir(bundle)
        assert len(bundle["entry"]) == 5
        post(fhir_server, bundle)
        before = state(fhir_server)
        post(fhir_server, bundle)  # an engine's retry
        assert state(fhir_server) == before, "the retry created or changed resources"
        assert counts(fhir_server) == {**scores, "Observation": 44 + 5}  # nothing duplicated
    assert_all_references_resolve(fhir_server)
    changes = fhir_server.search(
        "Observation", {"code": f"{SETTINGS.codesystem_url}|change-from-baseline"}
    )
    assert len(changes) == 5
    for change in changes:
        assert len(change["derivedFrom"]) == 2
        found = []
        for reference in change["derivedFrom"]:
            identifier = reference["identifier"]
            hits = fhir_server.search(
                "Observation", {"identifier": f"{identifier['system']}|{identifier['value']}"}
            )
            assert len(hits) == 1, reference
            found.append(hits[0])
        base, follow = found
        assert (base["effectiveDateTime"], follow["effectiveDateTime"]) == (
            "2023-08-22",
            "2025-04-10",
        )
        assert change["valueQuantity"]["value"] == (
            follow["valueQuantity"]["value"] - base["valueQuantity"]["value"]
        )
