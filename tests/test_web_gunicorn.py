"""The real service under gunicorn, over HTTP: a conversion, a validation and an extraction, the
bearer tokens, and a graceful shutdown that lets a running request finish."""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.web_server import gunicorn_server

pytestmark = pytest.mark.slow  # the service under gunicorn

pytest.importorskip("gunicorn")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def server():
    with gunicorn_server(workers=2) as running:
        yield running


def test_convert_validate_extract_over_http(server):
    answers = json.loads((EXAMPLES / "baseline-visit.json").read_text())
    status, headers, bundle = server.post_json("/$convert", answers)
    assert status == 200
    assert headers["Content-Type"] == FHIR_JSON
    assert headers["X-Request-ID"]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    responses = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert responses

    status, _, outcome = server.post_json("/QuestionnaireResponse/$validate", responses[0])
    assert status == 200
    assert outcome["resourceType"] == "OperationOutcome"
    assert not any(i["severity"] in ("error", "fatal") for i in outcome["issue"])

    status, _, extracted = server.post_json("/QuestionnaireResponse/$extract", responses[0])
    assert status == 200
    converted_ids = {e["fullUrl"] for e in bundle["entry"]}  # the id (a PUT body has none)
    extracted_ids = {e["fullUrl"] for e in extracted["entry"]}
    assert extracted_ids and extracted_ids <= converted_ids, "same scores, same ids as $convert"


def test_errors_and_definitions_over_http(server):
    status, headers, body = server.request("GET", "/Questionnaire/phq4")
    assert status == 200 and headers["ETag"]
    status, _, body = server.request(
        "GET", "/Questionnaire/phq4", headers={"If-None-Match": headers["ETag"]}
    )
    assert status == 304 and body == b""
    status, headers, body = server.request("GET", "/nowhere", headers={"X-Request-ID": "gu-1"})
    assert status == 404 and headers["X-Request-ID"] == "gu-1"
    assert json.loads(body)["resourceType"] == "OperationOutcome"
    status, _, body = server.request(
        "POST", "/$convert", b"{oops", {"Content-Type": "application/json"}
    )
    assert status == 400
    status, _, body = server.request("POST", "/$convert-sheet", b"x", {"Content-Type": "text/csv"})
    assert status == 422


def test_sheet_upload_over_http(server):
    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    headers = {
        "Content-Type": XLSX,
        "Accept": "application/fhir+ndjson",
    }
    status, answer_headers, body = server.request("POST", "/$convert-sheet", data, headers)
    assert status == 200
    assert answer_headers["Content-Type"] == "application/fhir+ndjson"
    assert json.loads(body.splitlines()[-1])["resourceType"] == "OperationOutcome"


def test_bearer_tokens_over_http():
    with gunicorn_server({"FMS_FHIR_API_TOKENS": "tok-a, tok-b"}) as server:
        assert server.request("GET", "/healthz")[0] == 200
        assert server.request("GET", "/metadata")[0] == 200
        status, headers, _ = server.request("GET", "/Questionnaire/phq4")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        auth = {"Authorization": "Bearer tok-b"}
        assert server.request("GET", "/Questionnaire/phq4", headers=auth)[0] == 200


def test_graceful_shutdown_finishes_the_running_request():
    """SIGTERM while a worker is reading an upload: that request still gets its full answer,
    then the service exits cleanly. The client holds back half the body, so the request is
    certainly running when the signal arrives."""
    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    half = len(data) // 2
    with gunicorn_server(workers=1) as server:
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.putrequest("POST", "/$convert-sheet?format=ndjson")
            connection.putheader("Content-Type", XLSX)
            connection.putheader("Content-Length", str(len(data)))
            connection.endheaders()
            connection.send(data[:half])
            time.sleep(0.5)  # the worker has accepted the connection and waits for the rest
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.process.poll() is None, "the master waits for the running request"
            connection.send(data[half:])
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, body[:300]
        assert "rows read 7" in json.loads(body.splitlines()[-1])["issue"][0]["diagnostics"]
        assert server.process.wait(timeout=30) == 0, server.log()


def test_report_page_is_streamed_over_http(server):
    """Under gunicorn the report page is sent chunked as it is made: the whole page arrives,
    byte for byte what `render_report` makes of the same resources."""
    from adapter.report import render_report, resources_from_ndjson
    from adapter.settings import Settings

    data = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    headers = {"Content-Type": XLSX, "Accept": "application/fhir+ndjson"}
    status, _, ndjson = server.request("POST", "/$convert-sheet", data, headers)
    assert status == 200
    resources = b"\n".join(
        line for line in ndjson.splitlines() if b'"OperationOutcome"' not in line
    )
    headers = {"Content-Type": "application/fhir+ndjson", "Accept": "text/html"}
    status, answer_headers, page = server.request("POST", "/$report", resources, headers)
    assert status == 200, page[:300]
    assert answer_headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in answer_headers
    settings = Settings()
    assert page.decode("utf-8") == render_report(
        resources_from_ndjson(resources, settings), settings
    )
