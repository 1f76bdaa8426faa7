"""The HTTP service through Flask's test client: every route, status and error of docs/service.md."""

from __future__ import annotations

import copy
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from adapter import api, registry
from adapter.settings import FHIR_JSON, MIB, Settings
from adapter.web import begin_shutdown, create_app
from adapter.web.state import state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SETTINGS = Settings(
    max_input_bytes=256 * 1024,
    max_response_bytes=128 * 1024,
    max_upload_bytes=1 * MIB,
    max_sheet_rows=500,
)
TOKENS = frozenset({"s3cret-one", "s3cret-two"})
ANSWERS: dict[str, Any] = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "WEB-1"}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1},
}


@pytest.fixture
def app() -> Flask:
    return create_app({"SETTINGS": SETTINGS, "TESTING": True})


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def secured():
    app = create_app({"SETTINGS": SETTINGS.with_(api_tokens=TOKENS), "TESTING": True})
    return app.test_client()


def make_qr(**changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(api.convert(ANSWERS, SETTINGS).bundle["entry"][0]["resource"])
    resource.update(changes)
    return resource


def outcome(response) -> dict[str, Any]:
    """The body is an OperationOutcome in FHIR JSON (every error answers one)."""
    assert response.headers["Content-Type"] == FHIR_JSON
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"]
    return body


def rules(body: dict[str, Any]) -> set[str]:
    return {
        coding["code"]
        for issue in body["issue"]
        for coding in issue.get("details", {}).get("coding", [])
    }


def post_json(client, path: str, body: Any, content_type: str = "application/fhir+json", **kw):
    return client.post(path, data=json.dumps(body), content_type=content_type, **kw)


# --- system routes ---------------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_request_id_generated_echoed_and_sanitised(client):
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/healthz").headers["X-Request-ID"] != generated
    echoed = client.get("/metadata", headers={"X-Request-ID": "mirth-42.a:b"})
    assert echoed.headers["X-Request-ID"] == "mirth-42.a:b"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\tc<script>"})
    assert unsafe.headers["X-Request-ID"] != "a b\tc<script>"
    assert client.get("/nowhere", headers={"X-Request-ID": "r-1"}).headers["X-Request-ID"] == "r-1"


def test_metadata_capability_statement(client):
    response = client.get("/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == FHIR_JSON
    statement = response.get_json(force=True)
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["application/fhir+json", "json"]
    rest = statement["rest"][0]
    types = {r["type"]: r for r in rest["resource"]}
    assert {"Questionnaire", "CodeSystem", "QuestionnaireResponse", "MedicationStatement"} <= set(
        types
    )
    names = {op["name"] for op in types["QuestionnaireResponse"]["operation"]}
    assert names == {"validate", "extract"}
    base = SETTINGS.canonical_base
    for op in [*rest["operation"], *types["QuestionnaireResponse"]["operation"]]:
        assert op["definition"] == f"{base}/OperationDefinition/{op['name']}"
    # `$convert` at system level is R4 core's format conversion: the operation is
    # `$convert-answers`, and `convert` stays listed as its deprecated alias.
    system = {op["name"]: op for op in rest["operation"]}
    assert set(system) == {"convert-answers", "convert", "convert-sheet", "report"}
    assert system["convert"]["documentation"].startswith("DEPRECATED: use $convert-answers")


def test_openapi_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert "/QuestionnaireResponse/$validate" in document["paths"]


def test_nothing_is_built_at_import_time():
    import adapter.web as web

    assert not any(isinstance(value, Flask) for value in vars(web).values())


def test_create_app_from_environment(monkeypatch):
    monkeypatch.setenv("FMS_FHIR_API_TOKENS", "env-token")
    monkeypatch.setenv("FMS_FHIR_CANONICAL_BASE", "https://example.org/fhir/")
    monkeypatch.setenv("FMS_FHIR_MAX_BUNDLE_ROWS", "7")
    app = create_app()
    assert state(app).settings.api_tokens == frozenset({"env-token"})
    assert state(app).settings.canonical_base == "https://example.org/fhir"
    assert state(app).options.max_bundle_rows == 7
    client = app.test_client()
    assert client.get("/Questionnaire").status_code == 401
    headers = {"Authorization": "Bearer env-token"}
    assert client.get("/Questionnaire/phq4", headers=headers).get_json(force=True)["url"] == (
        "https://example.org/fhir/Questionnaire/phq4"
    )


def test_create_app_from_mapping_and_settings():
    app = create_app({"FMS_FHIR_MAX_INPUT_MB": "1", "FMS_FHIR_RETRY_AFTER": "9"})
    assert state(app).settings.max_input_bytes == MIB
    assert state(app).options.retry_after == 9
    assert state(create_app(SETTINGS)).settings is SETTINGS


# --- definitions -----------------------------------------------------------------------------


def test_questionnaire_search_bundle(client):
    bundle = client.get("/Questionnaire").get_json(force=True)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == len(registry.instruments()) == len(bundle["entry"])
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    assert bundle["entry"][0]["fullUrl"].startswith("http://localhost/Questionnaire/")
    by_id = client.get("/Questionnaire?_id=phq4,wpi").get_json(force=True)
    assert sorted(e["resource"]["id"] for e in by_id["entry"]) == ["phq4", "wpi"]
    url = SETTINGS.questionnaire_url("fiqr")
    by_url = client.get("/Questionnaire", query_string={"url": url}).get_json(force=True)
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["fiqr"]
    assert client.get("/Questionnaire?_id=nope").get_json(force=True)["total"] == 0


def test_questionnaire_read(client):
    response = client.get("/Questionnaire/phq4")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == FHIR_JSON
    assert response.get_json(force=True) == api.questionnaire("phq4", SETTINGS)


def test_unknown_questionnaire_is_404(client):
    response = client.get("/Questionnaire/phq99")
    assert response.status_code == 404
    body = outcome(response)
    assert body["issue"][0]["code"] == "not-found"
    assert "unknown-instrument" in rules(body)


def test_codesystem_read_and_unknown(client):
    response = client.get("/CodeSystem/fms-instruments")
    assert response.status_code == 200
    assert response.get_json(force=True)["url"] == SETTINGS.codesystem_url
    missing = client.get("/CodeSystem/loinc")
    assert missing.status_code == 404
    assert outcome(missing)["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize(
    "path", ["/Questionnaire/phq4", "/CodeSystem/fms-instruments", "/metadata"]
)
def test_etag_and_if_none_match(client, path):
    first = client.get(path)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert client.get(path, query_string={"_pretty": "true"}).headers["ETag"] == etag
    unchanged = client.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    assert unchanged.headers["ETag"] == etag
    strong = etag.removeprefix("W/")
    assert client.get(path, headers={"If-None-Match": f'"x", {strong}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200


def test_etag_stable_across_restarts():
    one = create_app(SETTINGS).test_client().get("/Questionnaire/fiqr").headers["ETag"]
    two = create_app(SETTINGS).test_client().get("/Questionnaire/fiqr").headers["ETag"]
    assert one == two
    other = Settings(canonical_base="https://example.org/fhir")
    assert create_app(other).test_client().get("/Questionnaire/fiqr").headers["ETag"] != one


def test_head_answers_headers_only(client):
    response = client.head("/Questionnaire/phq4")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["ETag"]


# --- FHIR conventions ------------------------------------------------------------------------


def test_pretty(client):
    compact = client.get("/Questionnaire/phq4")
    pretty = client.get("/Questionnaire/phq4?_pretty=true")
    assert b"\n  " in pretty.data and b"\n  " not in compact.data
    assert json.loads(pretty.data) == json.loads(compact.data)


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", None, FHIR_JSON),
        ("", "application/fhir+json", FHIR_JSON),
        ("", "application/fhir+json; fhirVersion=4.0", FHIR_JSON),
        ("", "application/json", "application/json"),
        ("", "*/*", FHIR_JSON),
        ("", "text/html, application/*;q=0.8", FHIR_JSON),
        ("", "application/json;q=0.5, application/fhir+json", FHIR_JSON),
        ("_format=json", "application/xml", FHIR_JSON),
        ("_format=application/json", None, "application/json"),
        ("_format=application/fhir+json", None, FHIR_JSON),
        ("_format=application%2Ffhir%2Bjson", None, FHIR_JSON),
    ],
)
def test_media_type_negotiation(client, query, accept, expected):
    headers = {"Accept": accept} if accept else {}
    response = client.get(f"/Questionnaire/phq4?{query}", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected
    assert response.get_json(force=True)["resourceType"] == "Questionnaire"


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("_format=xml", None),
        ("_format=application/fhir%2Bxml", None),
        ("_format=turtle", None),
        ("", "application/fhir+xml"),
        ("", "application/fhir+json; fhirVersion=3.0"),
        ("", "application/fhir+json; fhirVersion=5.0, application/json; fhirVersion=1.0"),
        ("", "text/html"),
        ("", "application/fhir+json;q=0"),
    ],
)
def test_406_not_acceptable(client, query, accept):
    headers = {"Accept": accept} if accept else {}
    response = client.get(f"/Questionnaire/phq4?{query}", headers=headers)
    assert response.status_code == 406
    body = outcome(response)
    assert body["issue"][0]["code"] == "not-supported"
    if accept and "fhirVersion" in accept:
        assert "fhirVersion" in body["issue"][0]["diagnostics"]


def test_406_on_post_too(client):
    response = post_json(client, "/$convert", ANSWERS, headers={"Accept": "application/xml"})
    assert response.status_code == 406


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/fhir+xml",
        "application/xml",
        "application/x-www-form-urlencoded",
        "application/fhir+json; fhirVersion=3.0",
    ],
)
def test_415_unsupported_media_type(client, content_type):
    response = client.post("/$convert", data=json.dumps(ANSWERS), content_type=content_type)
    assert response.status_code == 415
    assert outcome(response)["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/fhir+json", "application/fhir+json; fhirVersion=4.0", None],
)
def test_json_media_types_accepted(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/$convert", data=json.dumps(ANSWERS), headers=headers)
    assert response.status_code == 200, response.data


def test_404_unknown_route(client):
    for path in ("/nowhere", "/Patient/1", "/Questionnaire/phq4/_history/1"):
        response = client.get(path)
        assert response.status_code == 404
        body = outcome(response)
        assert body["issue"][0]["code"] == "not-found"
        assert "unknown-route" in rules(body)
    assert client.post("/$nope", data="{}").status_code == 404


def test_405_with_allow(client):
    response = client.post("/metadata", data="{}")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert outcome(response)["issue"][0]["code"] == "not-supported"
    response = client.get("/$convert")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    outcome(response)
    assert client.delete("/Questionnaire/phq4").status_code == 405


# --- 400 and 413: bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "rule"),
    [(b"{not json", "not-json"), (b"", "not-json"), (b"[" * 200 + b"]" * 200, "too-deep")],
)
def test_400_unparseable(client, body, rule):
    for path in (
        "/$convert",
        "/QuestionnaireResponse/$validate",
        "/QuestionnaireResponse/$extract",
    ):
        response = client.post(path, data=body, content_type="application/fhir+json")
        assert response.status_code == 400, path
        assert rule in rules(outcome(response))


def test_413_json_bodies(client):
    big = json.dumps({**ANSWERS, "padding": "x" * SETTINGS.max_input_bytes})
    response = client.post("/$convert", data=big, content_type="application/json")
    assert response.status_code == 413
    assert outcome(response)["issue"][0]["code"] == "too-long"
    qr = make_qr(text={"status": "generated", "div": "x" * SETTINGS.max_response_bytes})
    for path in ("/QuestionnaireResponse/$validate", "/QuestionnaireResponse/$extract"):
        assert post_json(client, path, qr).status_code == 413
    regimen = {"note": "x" * SETTINGS.max_input_bytes}
    assert post_json(client, "/MedicationStatement/$from-regimen", regimen).status_code == 413


def test_413_limit_is_configurable():
    small = create_app(SETTINGS.with_(max_input_bytes=100)).test_client()
    assert post_json(small, "/$convert", ANSWERS).status_code == 413


def test_bad_parameters_are_400(client):
    assert post_json(client, "/$convert?bundle-type=collection", ANSWERS).status_code == 400
    no_resource = {
        "resourceType": "Parameters",
        "parameter": [{"name": "mode", "valueCode": "create"}],
    }
    for path in ("/QuestionnaireResponse/$validate", "/QuestionnaireResponse/$extract"):
        response = post_json(client, path, no_resource)
        assert response.status_code == 400
        assert "missing-parameter" in rules(outcome(response))
    broken = {"resourceType": "Parameters", "parameter": {"name": "resource"}}
    assert post_json(client, "/QuestionnaireResponse/$validate", broken).status_code == 400
    bad_mode = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": make_qr()},
            {"name": "mode", "valueCode": "x"},
        ],
    }
    assert post_json(client, "/QuestionnaireResponse/$validate", bad_mode).status_code == 400


# --- $validate -------------------------------------------------------------------------------


def test_validate_valid_bare_resource(client):
    response = post_json(client, "/QuestionnaireResponse/$validate", make_qr())
    assert response.status_code == 200
    body = outcome(response)
    assert [i["severity"] for i in body["issue"]] == ["information"]


def test_validate_answers_200_with_errors(client):
    qr = make_qr()
    qr["item"][0]["answer"] = [{"valueInteger": 7}]
    qr["status"] = "finished"
    response = post_json(client, "/QuestionnaireResponse/$validate", qr)
    assert response.status_code == 200
    body = outcome(response)
    assert any(i["severity"] == "error" for i in body["issue"])
    assert "invalid-status" in rules(body)


@pytest.mark.parametrize(
    "body",
    [[1, 2], {"resourceType": "Patient"}, {"no": "resourceType"}, "text", 3],
    ids=["array", "patient", "no-type", "string", "number"],
)
def test_validate_other_json_is_200_with_errors(client, body):
    response = post_json(client, "/QuestionnaireResponse/$validate", body)
    assert response.status_code == 200
    assert any(i["severity"] == "error" for i in outcome(response)["issue"])


def test_validate_parameters_body(client):
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": make_qr()},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    response = post_json(client, "/QuestionnaireResponse/$validate", parameters)
    assert response.status_code == 200
    assert not any(i["severity"] == "error" for i in outcome(response)["issue"])


def test_validate_missing_subject_is_a_warning(client):
    qr = make_qr()
    del qr["subject"]
    body = outcome(post_json(client, "/QuestionnaireResponse/$validate", qr))
    assert "subject-missing" in rules(body)
    assert not any(i["severity"] == "error" for i in body["issue"])


def test_validate_questionnaire_named_by_query_or_parameter(client):
    qr = make_qr()
    del qr["questionnaire"]
    bare = outcome(post_json(client, "/QuestionnaireResponse/$validate", qr))
    assert "no-questionnaire" in rules(bare)
    named = post_json(client, "/QuestionnaireResponse/$validate?questionnaire=phq4", qr)
    assert not any(i["severity"] == "error" for i in outcome(named)["issue"])
    canonical = SETTINGS.questionnaire_url("phq4")
    for value in ({"valueString": "phq4"}, {"valueCanonical": canonical}):
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": qr},
                {"name": "questionnaire", **value},
            ],
        }
        response = post_json(client, "/QuestionnaireResponse/$validate", parameters)
        assert not any(i["severity"] == "error" for i in outcome(response)["issue"]), value
    wrong = post_json(client, "/QuestionnaireResponse/$validate?questionnaire=fiqr", make_qr())
    assert "questionnaire-mismatch" in rules(outcome(wrong))
    conflict = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": qr},
            {"name": "questionnaire", "valueString": "wpi"},
        ],
    }
    response = post_json(client, "/QuestionnaireResponse/$validate?questionnaire=phq4", conflict)
    assert response.status_code == 400


# --- $extract --------------------------------------------------------------------------------


def _observations(bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        e["fullUrl"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }


def test_extract_bare_and_parameters_give_the_scores_of_convert(client):
    converted = post_json(client, "/$convert", ANSWERS).get_json(force=True)
    bare = post_json(client, "/QuestionnaireResponse/$extract", make_qr())
    assert bare.status_code == 200
    assert bare.get_json(force=True)["type"] == "transaction"
    sdc = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": make_qr()}],
    }
    wrapped = post_json(client, "/QuestionnaireResponse/$extract", sdc)
    assert wrapped.status_code == 200
    assert set(_observations(bare.get_json(force=True))) == set(_observations(converted))
    assert wrapped.get_json(force=True) == bare.get_json(force=True)


def test_extract_questionnaire_by_query(client):
    qr = make_qr()
    del qr["questionnaire"]
    assert post_json(client, "/QuestionnaireResponse/$extract", qr).status_code == 422
    response = post_json(client, "/QuestionnaireResponse/$extract?questionnaire=phq4", qr)
    assert response.status_code == 200
    batch = post_json(client, "/QuestionnaireResponse/$extract?bundle-type=batch", make_qr())
    assert batch.get_json(force=True)["type"] == "batch"


def test_extract_missing_subject_is_422(client):
    qr = make_qr()
    del qr["subject"]
    response = post_json(client, "/QuestionnaireResponse/$extract", qr)
    assert response.status_code == 422
    body = outcome(response)
    assert "subject-missing" in rules(body)
    assert body["issue"][0]["severity"] == "error"


def test_extract_invalid_response_is_422(client):
    qr = make_qr()
    qr["item"][0]["answer"] = [{"valueInteger": 9}]
    response = post_json(client, "/QuestionnaireResponse/$extract", qr)
    assert response.status_code == 422
    outcome(response)
    assert post_json(client, "/QuestionnaireResponse/$extract", [1]).status_code == 422


# --- $convert and $from-regimen --------------------------------------------------------------


def test_convert_array_example(client):
    data = (EXAMPLES / "baseline-visit.json").read_bytes()
    response = client.post("/$convert", data=data, content_type="application/fhir+json")
    assert response.status_code == 200
    bundle = response.get_json(force=True)
    assert bundle["type"] == "transaction"
    assert bundle == api.convert(json.loads(data), SETTINGS).bundle
    again = client.post("/$convert", data=data, content_type="application/fhir+json")
    assert again.data == response.data, "a retry gets the same bytes"
    assert all(
        "ifNoneExist" in e["request"] or e["request"]["method"] == "PUT" for e in bundle["entry"]
    )


def test_convert_batch_and_prefer_outcome(client):
    batch = post_json(client, "/$convert?bundle-type=batch", ANSWERS).get_json(force=True)
    assert batch["type"] == "batch"
    response = post_json(
        client, "/$convert", ANSWERS, headers={"Prefer": "return=OperationOutcome"}
    )
    assert response.status_code == 200
    assert outcome(response)["issue"][0]["severity"] == "information"


def test_convert_422(client):
    response = post_json(client, "/$convert", {**ANSWERS, "instrument": "nope"})
    assert response.status_code == 422
    outcome(response)
    assert post_json(client, "/$convert", []).status_code == 422
    assert (
        post_json(client, "/$convert", {**ANSWERS, "answers": {"phq4-worry": 9}}).status_code == 422
    )


def test_from_regimen(client):
    data = (EXAMPLES / "ldn-regimen.json").read_bytes()
    response = client.post(
        "/MedicationStatement/$from-regimen", data=data, content_type="application/json"
    )
    assert response.status_code == 200
    resource = response.get_json(force=True)
    assert resource["resourceType"] == "MedicationStatement"
    assert resource == api.regimen(json.loads(data), SETTINGS).resource


def test_from_regimen_422(client):
    response = post_json(client, "/MedicationStatement/$from-regimen", {"status": "active"})
    assert response.status_code == 422
    assert outcome(response)["issue"][0]["severity"] == "error"
    assert post_json(client, "/MedicationStatement/$from-regimen", [1]).status_code == 422


# --- $convert-sheet --------------------------------------------------------------------------


def _parameters(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    assert body["resourceType"] == "Parameters"
    found: dict[str, list[dict[str, Any]]] = {}
    for parameter in body["parameter"]:
        found.setdefault(parameter["name"], []).append(parameter)
    return found


def _legacy_upload(**fields: Any) -> dict[str, Any]:
    return {
        "file": (
            io.BytesIO((EXAMPLES / "legacy-followup.csv").read_bytes()),
            "legacy-followup.csv",
        ),
        "contract": (io.BytesIO((EXAMPLES / "legacy-contract.yaml").read_bytes()), "legacy.yaml"),
        **fields,
    }


def test_convert_sheet_multipart_csv_with_contract(client):
    response = client.post(
        "/$convert-sheet", data=_legacy_upload(), content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == FHIR_JSON
    found = _parameters(response.get_json(force=True))
    read = found["rows-read"][0]["valueInteger"]
    assert read > 0 and found["rows-converted"][0]["valueInteger"] == read
    assert found["rows-rejected"][0]["valueInteger"] == 0
    assert response.headers["X-Rows-Read"] == str(read)
    report = found["report"][0]["resource"]
    assert report["resourceType"] == "OperationOutcome"
    assert "legacy-followup.csv: rows read" in report["issue"][0]["diagnostics"]
    bundles = [p["resource"] for p in found["bundle"]]
    assert bundles and all(b["type"] == "transaction" for b in bundles)
    counts = {p["name"]: p["valueInteger"] for p in found["resources"][0]["part"]}
    assert sum(len(b["entry"]) for b in bundles) == sum(counts.values())
    assert counts["MedicationStatement"] >= 1, "the dose column gives the regimen"


def test_convert_sheet_patient_layout_and_batch(client):
    data = _legacy_upload(format="patient", **{"bundle-type": "batch"})
    response = client.post("/$convert-sheet", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    bundles = [p["resource"] for p in _parameters(response.get_json(force=True))["bundle"]]
    assert len(bundles) == 1 and bundles[0]["type"] == "batch"


def test_convert_sheet_raw_xlsx(client):
    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    response = client.post("/$convert-sheet", data=data, content_type=XLSX)
    assert response.status_code == 200, response.data
    found = _parameters(response.get_json(force=True))
    assert found["rows-converted"][0]["valueInteger"] == 7
    assert len(found["bundle"]) >= 2


def test_convert_sheet_ndjson(client):
    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    response = client.post("/$convert-sheet?format=ndjson", data=data, content_type=XLSX)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/fhir+ndjson"
    assert int(response.headers["Content-Length"]) == len(response.data)
    lines = [json.loads(line) for line in response.data.splitlines()]
    report = lines[-1]
    assert report["resourceType"] == "OperationOutcome"
    assert "rows read 7" in report["issue"][0]["diagnostics"]
    resources = lines[:-1]
    assert {r["resourceType"] for r in resources} >= {"QuestionnaireResponse", "Observation"}
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources}
    for resource in resources:
        for member in resource.get("derivedFrom", []) + resource.get("hasMember", []):
            assert member["reference"] in ids, "NDJSON references are relative and resolve"
    assert response.headers["X-Rows-Converted"] == "7"
    by_accept = client.post(
        "/$convert-sheet",
        data=data,
        content_type=XLSX,
        headers={"Accept": "application/fhir+ndjson"},
    )
    assert by_accept.headers["Content-Type"] == "application/fhir+ndjson"
    assert by_accept.data == response.data
    by_format = client.post("/$convert-sheet?_format=ndjson", data=data, content_type=XLSX)
    assert by_format.data == response.data


def test_convert_sheet_ndjson_multipart_csv(client):
    data = _legacy_upload(format="ndjson")
    response = client.post("/$convert-sheet", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert json.loads(response.data.splitlines()[-1])["resourceType"] == "OperationOutcome"


def test_convert_sheet_406_when_layout_and_accept_disagree(client):
    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    response = client.post(
        "/$convert-sheet?format=ndjson",
        data=data,
        content_type=XLSX,
        headers={"Accept": "application/fhir+json"},
    )
    assert response.status_code == 406
    outcome(response)


CSV = (
    "patient_id,visit_date,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    "P1,2025-04-10,1,2,0,1\n"
    "P2,2025-04-11,1,2,9,1\n"
    "P3,2025-04-12,0,0,0,0\n"
)


def test_convert_sheet_rejected_rows_are_reported(client):
    response = client.post("/$convert-sheet", data=CSV, content_type="text/csv")
    assert response.status_code == 200
    found = _parameters(response.get_json(force=True))
    assert found["rows-rejected"][0]["valueInteger"] == 1
    assert found["rows-converted"][0]["valueInteger"] == 2
    report = found["report"][0]["resource"]
    rejected = [i for i in report["issue"] if i["severity"] == "error"]
    assert rejected and all(i["expression"][0].startswith("row 3") for i in rejected)
    assert response.headers["X-Rows-Rejected"] == "1"


def test_convert_sheet_csv_charset(client):
    text = CSV.replace("P1", "Pä").encode("cp1252")
    response = client.post(
        "/$convert-sheet", data=text, content_type="text/csv; charset=windows-1252"
    )
    assert response.status_code == 200
    bad = client.post("/$convert-sheet", data=text, content_type="text/csv; charset=nope")
    assert bad.status_code == 415


def test_convert_sheet_errors(client):
    assert (
        client.post("/$convert-sheet", data=CSV, content_type="application/json").status_code == 415
    )
    missing = client.post(
        "/$convert-sheet",
        data={"other": (io.BytesIO(b"x"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400
    outcome(missing)
    garbage = client.post("/$convert-sheet", data=b"PK\x03\x04garbage", content_type=XLSX)
    assert garbage.status_code == 422
    outcome(garbage)
    empty = client.post("/$convert-sheet", data=b"", content_type="text/csv")
    assert empty.status_code == 422
    header = client.post("/$convert-sheet", data="a,b\n1,2\n", content_type="text/csv")
    assert header.status_code == 422
    bad_format = client.post("/$convert-sheet?format=xml", data=CSV, content_type="text/csv")
    assert bad_format.status_code == 400
    contract = {
        "file": (io.BytesIO(CSV.encode()), "v.csv"),
        "contract": (io.BytesIO(b"a: [b"), "c.yaml"),
    }
    response = client.post("/$convert-sheet", data=contract, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "invalid-contract" in rules(outcome(response))
    system = client.post(
        "/$convert-sheet?patient-system=no%20uri", data=CSV, content_type="text/csv"
    )
    assert system.status_code == 400
    assert outcome(system)["issue"][0]["expression"] == ["patient-system"]


def test_convert_sheet_413(client):
    big = CSV + "P9,2025-01-01,0,0,0,0\n" * (SETTINGS.max_upload_bytes // 20)
    assert client.post("/$convert-sheet", data=big, content_type="text/csv").status_code == 413
    upload = {"file": (io.BytesIO(big.encode()), "big.csv")}
    response = client.post("/$convert-sheet", data=upload, content_type="multipart/form-data")
    assert response.status_code == 413
    assert outcome(response)["issue"][0]["code"] == "too-long"


def test_convert_sheet_row_limits():
    app = create_app({"SETTINGS": SETTINGS, "FMS_FHIR_MAX_BUNDLE_ROWS": "2"})
    client = app.test_client()
    response = client.post("/$convert-sheet", data=CSV, content_type="text/csv")
    assert response.status_code == 413
    assert {"too-many-rows", "use-ndjson"} <= rules(outcome(response))
    ndjson = client.post("/$convert-sheet?format=ndjson", data=CSV, content_type="text/csv")
    assert ndjson.status_code == 200
    few = create_app(SETTINGS.with_(max_sheet_rows=2)).test_client()
    response = few.post("/$convert-sheet?format=ndjson", data=CSV, content_type="text/csv")
    assert response.status_code == 413
    assert "too-many-rows" in rules(outcome(response))


# --- security --------------------------------------------------------------------------------


def test_bearer_tokens_open_routes(secured):
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/metadata").status_code == 200
    statement = secured.get("/metadata").get_json(force=True)
    assert "Bearer" in statement["rest"][0]["security"]["description"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/Questionnaire"),
        ("GET", "/Questionnaire/phq4"),
        ("GET", "/CodeSystem/fms-instruments"),
        ("GET", "/openapi.json"),
        ("POST", "/QuestionnaireResponse/$validate"),
        ("POST", "/QuestionnaireResponse/$extract"),
        ("POST", "/$convert"),
        ("POST", "/$convert-sheet"),
        ("POST", "/MedicationStatement/$from-regimen"),
        ("GET", "/nowhere"),
    ],
)
def test_bearer_tokens_required(secured, method, path):
    response = secured.open(path, method=method, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="fms-fhir"'
    body = outcome(response)
    assert body["issue"][0]["code"] == "login"
    for header in ("Bearer wrong", "Bearer s3cret-one-and-more", "Basic czNjcmV0LW9uZQ=="):
        wrong = secured.open(path, method=method, headers={"Authorization": header})
        assert wrong.status_code == 401
        assert wrong.headers["WWW-Authenticate"].startswith('Bearer realm="fms-fhir"')
        outcome(wrong)


def test_bearer_tokens_accepted(secured):
    for token in TOKENS:
        headers = {"Authorization": f"Bearer {token}"}
        assert secured.get("/Questionnaire/phq4", headers=headers).status_code == 200
    lower = {"Authorization": "bearer s3cret-two"}
    assert post_json(secured, "/$convert", ANSWERS, headers=lower).status_code == 200


# --- 503, 500 and logs -----------------------------------------------------------------------


def test_503_while_shutting_down(app, client):
    assert client.get("/healthz").status_code == 200
    begin_shutdown(app)
    for path in ("/healthz", "/metadata", "/Questionnaire/phq4"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert outcome(response)["issue"][0]["code"] == "transient"
    assert post_json(client, "/$convert", ANSWERS).status_code == 503


def test_503_when_overloaded():
    app = create_app({"SETTINGS": SETTINGS, "FMS_FHIR_MAX_CONCURRENT": "1"})
    client = app.test_client()
    assert client.get("/metadata").status_code == 200
    assert state(app).inflight == 0, "a finished request frees its slot"
    state(app).inflight = 1  # another request is running
    response = client.get("/metadata")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "overloaded" in rules(outcome(response))
    assert client.get("/healthz").status_code == 200


def test_unexpected_error_is_a_500_that_reveals_nothing(app, client, monkeypatch, caplog):
    def broken(payload: Any, *args: Any, **kwargs: Any) -> None:
        detail = "secret detail about " + payload["subject"]["identifier"]["value"]
        raise RuntimeError(detail)

    monkeypatch.setattr(api, "convert", broken)
    with caplog.at_level(logging.INFO, logger="fms_fhir.http"):
        response = post_json(client, "/$convert", ANSWERS, headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    body = outcome(response)
    assert "secret" not in response.get_data(as_text=True)
    assert "WEB-1" not in response.get_data(as_text=True)
    assert "req-500" in body["issue"][0]["diagnostics"]
    assert response.headers["X-Request-ID"] == "req-500"
    logged = caplog.text
    assert "req-500" in logged and "RuntimeError" in logged
    assert "WEB-1" not in logged and "secret" not in logged


def test_internal_fault_is_a_500(client, monkeypatch):
    from adapter.model import Issue
    from adapter.outcome import InternalFault

    def fault(*args: Any, **kwargs: Any) -> None:
        raise InternalFault([Issue("error", "structure", "bad output WEB-1", "Bundle.entry[0]")])

    monkeypatch.setattr(api, "regimen", fault)
    response = post_json(client, "/MedicationStatement/$from-regimen", {})
    assert response.status_code == 500
    assert "WEB-1" not in response.get_data(as_text=True)
    outcome(response)


def test_one_log_line_per_request_without_values(client, caplog):
    with caplog.at_level(logging.INFO, logger="fms_fhir.http"):
        post_json(client, "/$convert", ANSWERS, headers={"X-Request-ID": "log-1"})
        client.get("/Questionnaire/phq4?_pretty=true", headers={"X-Request-ID": "log-2"})
        client.get("/Patient/WEB-1", headers={"X-Request-ID": "log-3"})
    lines = [r.getMessage() for r in caplog.records if r.name == "fms_fhir.http"]
    assert len(lines) == 3
    assert "request_id=log-1" in lines[0] and "route=/$convert" in lines[0]
    assert "status=200" in lines[0] and "duration_ms=" in lines[0]
    assert "route=/Questionnaire/<id>" in lines[1]
    assert "route=-" in lines[2] and "status=404" in lines[2]
    text = "\n".join(lines)
    assert "WEB-1" not in text and "phq4" not in text and "_pretty" not in text


# --- every answer is valid FHIR R4 ---------------------------------------------------------


def test_answers_are_valid_r4(client):
    from tests.support import assert_valid_fhir

    answers = [
        client.get("/metadata"),
        client.get("/Questionnaire?_id=phq4"),
        client.get("/Questionnaire/fiqr"),
        client.get("/CodeSystem/fms-instruments"),
        post_json(client, "/$convert", ANSWERS),
        post_json(client, "/QuestionnaireResponse/$validate", make_qr(status="x")),
        post_json(client, "/QuestionnaireResponse/$extract", make_qr()),
        client.post("/$convert-sheet", data=CSV, content_type="text/csv"),
        client.get("/nowhere"),
        client.post("/$convert", data="{", content_type="application/json"),
    ]
    for response in answers:
        assert_valid_fhir(response.get_json(force=True))
    ndjson = client.post("/$convert-sheet?format=ndjson", data=CSV, content_type="text/csv")
    for line in ndjson.data.splitlines():
        assert_valid_fhir(json.loads(line))
