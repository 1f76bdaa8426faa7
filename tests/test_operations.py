"""The operations as the standard ones they follow: `$validate` (R4 Resource-validate) and
`$extract` (SDC QuestionnaireResponse-extract) with their full parameters, a `profile` refused
rather than ignored, the Questionnaire named the way apps name it, and `$convert-answers` with
`$convert` as its deprecated alias."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapter.web import create_app
from adapter.web.examples import ANSWERS
from tests.support import SETTINGS, valid_response

QR_PROFILE = "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse"
SDC_QR_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse"


@pytest.fixture
def client() -> FlaskClient:
    return create_app({"SETTINGS": SETTINGS, "TESTING": True}).test_client()


def post(client: FlaskClient, path: str, body: Any, **kw: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/fhir+json", **kw)


def codes(response: Any) -> list[str]:
    return [
        coding["code"]
        for issue in response.get_json(force=True)["issue"]
        for coding in issue.get("details", {}).get("coding", [])
    ]


def parameters(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(entries)}


# --- $validate: resource, mode, profile ---------------------------------------------------------


def test_an_unsupported_profile_is_refused_not_ignored(client: FlaskClient) -> None:
    resource = valid_response("phq4")
    for call in (
        lambda: post(
            client, f"/QuestionnaireResponse/$validate?profile={SDC_QR_PROFILE}", resource
        ),
        lambda: post(
            client,
            "/QuestionnaireResponse/$validate",
            parameters(
                {"name": "resource", "resource": resource},
                {"name": "profile", "valueUri": SDC_QR_PROFILE},
            ),
        ),
    ):
        response = call()
        assert response.status_code == 400
        assert codes(response) == ["unsupported-profile"]
        assert SDC_QR_PROFILE in response.get_json(force=True)["issue"][0]["diagnostics"]


@pytest.mark.parametrize("profile", [QR_PROFILE, f"{QR_PROFILE}|4.0.1"])
def test_the_profile_that_is_checked_is_honoured(client: FlaskClient, profile: str) -> None:
    body = parameters(
        {"name": "resource", "resource": valid_response("phq4")},
        {"name": "mode", "valueCode": "update"},
        {"name": "profile", "valueUri": profile},
    )
    response = post(client, "/QuestionnaireResponse/$validate", body)
    assert response.status_code == 200
    assert all(i["severity"] == "information" for i in response.get_json(force=True)["issue"])
    broken = valid_response("phq4")
    broken["item"][0]["answer"] = [{"valueBoolean": True}]
    answer = post(client, f"/QuestionnaireResponse/$validate?profile={profile}", broken)
    assert answer.status_code == 200 and "not-an-option" in codes(answer)


def test_mode_in_the_query_or_the_body_and_conflicts(client: FlaskClient) -> None:
    resource = valid_response("phq4")
    ok = post(client, "/QuestionnaireResponse/$validate?mode=create", resource)
    assert ok.status_code == 200
    assert (
        post(client, "/QuestionnaireResponse/$validate?mode=profile", resource).status_code == 400
    )
    both = parameters(
        {"name": "resource", "resource": resource}, {"name": "mode", "valueCode": "delete"}
    )
    assert post(client, "/QuestionnaireResponse/$validate?mode=create", both).status_code == 400
    not_text = parameters(
        {"name": "resource", "resource": resource}, {"name": "profile", "resource": resource}
    )
    assert post(client, "/QuestionnaireResponse/$validate", not_text).status_code == 400


# --- naming the Questionnaire as apps do --------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/QuestionnaireResponse/$validate", "/QuestionnaireResponse/$extract"]
)
@pytest.mark.parametrize(
    "named",
    [
        "Questionnaire/phq9",
        "Questionnaire/phq9|1.0.0",
        "http://localhost/Questionnaire/phq9",  # the service's own url of it (the test client's)
        "http://localhost/Questionnaire/phq9|1.0.0",
    ],
)
def test_a_questionnaire_named_relatively_or_by_the_services_url(
    client: FlaskClient, path: str, named: str
) -> None:
    resource = {**valid_response("phq9"), "questionnaire": named}
    response = post(client, path, resource)
    assert response.status_code == 200, response.get_json(force=True)
    if path.endswith("$validate"):
        assert codes(response) == []
    else:
        assert response.get_json(force=True)["resourceType"] == "Bundle"
    # The same names as the caller's `questionnaire`, for a response that leaves it empty.
    resource.pop("questionnaire")
    assert (
        post(client, f"{path}?questionnaire={named.replace('|', '%7C')}", resource).status_code
        == 200
    )


@pytest.mark.parametrize(
    "named",
    ["Questionnaire/nope", "http://elsewhere.example/Questionnaire/phq9", "Questionnaire/phq9|9"],
)
def test_what_is_not_ours_stays_unknown(client: FlaskClient, named: str) -> None:
    resource = {**valid_response("phq9"), "questionnaire": named}
    found = codes(post(client, "/QuestionnaireResponse/$validate", resource))
    assert found in (["unknown-questionnaire"], ["unknown-version"])
    assert post(client, "/QuestionnaireResponse/$extract", resource).status_code == 422


# --- $extract: SDC's questionnaire parameter ---------------------------------------------------


def test_extract_takes_the_questionnaire_as_sdc_passes_it(client: FlaskClient) -> None:
    resource = valid_response("gad7")
    resource.pop("questionnaire")
    questionnaire = client.get("/Questionnaire/gad7").get_json(force=True)
    for entry in (
        {"name": "questionnaire", "resource": questionnaire},
        {"name": "questionnaire", "valueCanonical": questionnaire["url"]},
    ):
        body = parameters({"name": "questionnaire-response", "resource": resource}, entry)
        response = post(client, "/QuestionnaireResponse/$extract", body)
        assert response.status_code == 200, response.get_json(force=True)
        assert response.get_json(force=True)["resourceType"] == "Bundle"
    patient = {"resourceType": "Patient", "id": "p"}
    for wrong in (
        {"name": "questionnaire", "resource": patient},
        {"name": "questionnaire", "resource": {"resourceType": "Questionnaire"}},
        {"name": "questionnaire", "valueBoolean": True},
    ):
        body = parameters({"name": "questionnaire-response", "resource": resource}, wrong)
        response = post(client, "/QuestionnaireResponse/$extract", body)
        assert response.status_code == 400 and codes(response) == ["invalid-parameters"]


# --- $convert-answers and the deprecated $convert -----------------------------------------------


def test_convert_answers_and_the_deprecated_alias_answer_the_same(client: FlaskClient) -> None:
    new = post(client, "/$convert-answers", ANSWERS)
    old = post(client, "/$convert", ANSWERS)
    assert new.status_code == old.status_code == 200
    assert new.get_json(force=True) == old.get_json(force=True)
    assert "Deprecation" not in new.headers
    assert old.headers["Deprecation"].startswith("@")
    assert int(old.headers["Deprecation"][1:]) > 0
    assert old.headers["Link"] == '</$convert-answers>; rel="successor-version"'
    refused = post(client, "/$convert", {**ANSWERS, "instrument": "nope"})
    assert refused.status_code == 422 and refused.headers["Deprecation"]


def test_the_alias_is_marked_deprecated_everywhere_it_is_described(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json(force=True)
    assert document["paths"]["/$convert"]["post"]["deprecated"] is True
    assert "deprecated" not in document["paths"]["/$convert-answers"]["post"]
    headers = document["paths"]["/$convert"]["post"]["responses"]["200"]["headers"]
    assert {"Deprecation", "Link"} <= set(headers)
    rest = client.get("/metadata").get_json(force=True)["rest"][0]
    system = {op["name"]: op for op in rest["operation"]}
    assert system["convert"]["documentation"].startswith("DEPRECATED: use $convert-answers")
    alias = client.get("/OperationDefinition/convert").get_json(force=True)
    assert alias["status"] == "retired" and alias["code"] == "convert"
    assert "$convert-answers" in alias["description"]
    current = client.get("/OperationDefinition/convert-answers").get_json(force=True)
    assert current["status"] == "active" and current["code"] == "convert-answers"
    assert current["system"] is True and current["type"] is False


def test_two_spellings_of_one_questionnaire_do_not_conflict(client):
    """`?questionnaire=Questionnaire/phq9` and a Parameters canonical of the PHQ-9 name one
    Questionnaire: no questionnaire-conflict."""
    from adapter.settings import DEFAULT

    body = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "resource",
                "resource": {"resourceType": "QuestionnaireResponse", "status": "in-progress"},
            },
            {"name": "questionnaire", "valueCanonical": DEFAULT.questionnaire_url("phq9")},
        ],
    }
    answer = client.post(
        "/QuestionnaireResponse/$validate?questionnaire=Questionnaire/phq9",
        json=body,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200
    rules = [
        c["code"]
        for i in answer.get_json()["issue"]
        for c in i.get("details", {}).get("coding", [])
    ]
    assert "questionnaire-conflict" not in rules
