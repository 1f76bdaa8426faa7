"""`POST /$report` and the page for people (`GET /`), through Flask's test client.

$report: every answer by Accept (HTML, PNG, SVG, the change Bundle), the patient rule, the
baseline, NDJSON bodies, the limits and errors. The page: the form, uploads of XLSX and of CSV
with a contract, the rejected rows, the zip, the patients' reports, results kept on disk across
apps (as across gunicorn workers) and removed when expired or over the size bound, and nothing
loaded from outside.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import zipfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from adapter.report import render_report
from adapter.settings import FHIR_JSON, MIB, Settings
from adapter.sheets.contract import default_contract
from adapter.sheets.output import NdjsonStreamSink
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from adapter.web import create_app
from adapter.web.examples import CSV as EXAMPLE_CSV
from adapter.web.page import page_store as store_of
from adapter.web.page_store import PageOptions, Store
from adapter.web.state import state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASE_XLSX = EXAMPLES / "case-report-followup.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SETTINGS = Settings(
    max_input_bytes=2 * MIB,
    max_response_bytes=1 * MIB,
    max_upload_bytes=1 * MIB,
    max_sheet_rows=500,
)
TOKENS = frozenset({"page-token"})
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
BAD_CSV = EXAMPLE_CSV + "EXAMPLE-3,31.02.2025,,1,1,1,1\n"
"""Row 3 (EXAMPLE-2): PHQ-4 interest 9, out of range; row 4 (EXAMPLE-3): no such date."""


# --- fixtures --------------------------------------------------------------------------------


def sheet_ndjson(data: bytes, name: str) -> bytes:
    stream = io.BytesIO()
    run_pipeline(
        io.BytesIO(data), name, default_contract(), NdjsonStreamSink(stream, SETTINGS), SETTINGS
    )
    return stream.getvalue()


@pytest.fixture(scope="module")
def case_ndjson() -> bytes:
    """The case report's follow-up as NDJSON (scores, responses, the LDN statement)."""
    return sheet_ndjson(CASE_XLSX.read_bytes(), CASE_XLSX.name)


@pytest.fixture(scope="module")
def case_resources(case_ndjson) -> list[dict[str, Any]]:
    return [json.loads(line) for line in case_ndjson.splitlines()]


@pytest.fixture(scope="module")
def two_patients(case_resources) -> list[dict[str, Any]]:
    """The case's patient and EXAMPLE-1 (one PHQ-4 visit)."""
    other = sheet_ndjson(EXAMPLE_CSV.encode(), "visits.csv")
    return case_resources + [json.loads(line) for line in other.splitlines()]


@pytest.fixture
def app(tmp_path) -> Flask:
    return create_app({"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "page")})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def one_at_a_time(tmp_path) -> Flask:
    """An app that serves one request at a time: its admission slot shows when a request ends."""
    return create_app(
        {
            "SETTINGS": SETTINGS,
            "TESTING": True,
            "PAGE_DIR": str(tmp_path / "page"),
            "FMS_FHIR_MAX_CONCURRENT": "1",
        }
    )


def outcome(response, status: int, rule: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data[:500]
    assert response.headers["Content-Type"] == FHIR_JSON
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    if rule:
        codes = {c["code"] for i in body["issue"] for c in i.get("details", {}).get("coding", [])}
        assert rule in codes, body
    return body


def post_report(client, body: Any, query: str = "", accept: str | None = None, **kw):
    headers = {**kw.pop("headers", {}), **({"Accept": accept} if accept else {})}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    content_type = kw.pop("content_type", "application/fhir+json")
    return client.post(
        "/$report" + query, data=data, content_type=content_type, headers=headers, **kw
    )


def collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


class Links(HTMLParser):
    """Every URL the page refers to, and the text of its tags we look for."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)


def parsed(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def assert_nothing_from_outside(html: str) -> None:
    """No URL leaves the page: every link is a path on this server, a fragment or data:."""
    links = parsed(html)
    for url in links.urls:
        assert url.startswith(("/", "#", "data:")) and not url.startswith("//"), url
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.I), "CSS url() outside"
    assert not re.search(r"@import", html), "CSS @import"
    assert "<script" not in html.lower()


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells of each body row of the table with this id."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        rows.append(
            [unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c))).strip() for c in cells]
        )
    return rows


def resource_id(resource: dict[str, Any]) -> str:
    """The deterministic id: `id`, or the identifier under /sid/resource-id of a conditional
    update, which carries no id."""
    found = resource["identifier"]
    found = found if isinstance(found, list) else [found]  # a QuestionnaireResponse has one
    return resource.get("id") or next(
        i["value"] for i in found if i["system"].endswith("/sid/resource-id")
    )


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'<dd id="rows-(\w+)">(\d+)</dd>', html)}


def upload(client, data: bytes, name: str, fmt: str = "transaction", contract=None, **kw):
    form: dict[str, Any] = {"file": (io.BytesIO(data), name), "format": fmt}
    if contract is not None:
        form["contract"] = contract
    return client.post("/", data=form, content_type="multipart/form-data", **kw)


# --- POST /$report: answers by Accept --------------------------------------------------------


@pytest.mark.slow
def test_report_html_is_the_default(client, case_resources):
    pages = set()
    for accept in (None, "*/*", BROWSER["Accept"], "text/html"):
        response = post_report(client, collection(case_resources), accept=accept)
        assert response.status_code == 200, response.data[:300]
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "Accept" in response.headers["Vary"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        pages.add(response.get_data(as_text=True))  # read as a server sends it, before the next
    (html,) = pages
    assert '<html lang="en">' in html
    assert "Follow-up report: MOSER-CASE-1" in html
    for value in ("72.5", "37.5", "90", "55", "70", "30"):
        assert value in html
    assert_nothing_from_outside(html)


def test_report_page_is_sent_as_it_is_made(one_at_a_time, case_resources, caplog):
    """The page goes out in pieces as it is made (no Content-Length: chunked under a server),
    the same bytes as `render_report`; the request keeps its admission slot, and is logged,
    only once the last piece is sent."""
    caplog.set_level(logging.INFO, "fms_fhir.http")
    app = one_at_a_time
    client = app.test_client()

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "route=/$report" in r.getMessage()]

    response = post_report(client, collection(case_resources), accept="text/html", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert "Content-Length" not in response.headers
    assert state(app).inflight == 1, "the page is still being made: its slot is held"
    assert logged() == []
    page = b"".join(response.iter_encoded())
    response.close()
    assert page.decode("utf-8") == render_report(case_resources, SETTINGS)
    assert state(app).inflight == 0
    (line,) = logged()
    assert "status=200" in line
    # An input error is still an OperationOutcome, never half a page.
    outcome(post_report(client, b"{oops", accept="text/html"), 400)


def test_a_page_that_fails_while_sent_frees_its_slot_and_says_so(
    one_at_a_time, case_resources, caplog, monkeypatch
):
    """A page that stops before its end (a fault while it is made, or a client that leaves) still
    gives back its admission slot, and its log line says the body was incomplete: its status,
    200, went out with the first piece."""
    import adapter.web.report as route

    def failing(*arguments: Any) -> Any:
        yield "<!DOCTYPE html>\n" + "<p>a piece of the page</p>\n" * 20_000  # the first piece
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(route, "render_report_parts", failing)
    caplog.set_level(logging.INFO, "fms_fhir.http")
    app = one_at_a_time
    client = app.test_client()
    for read in (True, False):
        response = post_report(
            client, collection(case_resources), accept="text/html", buffered=False
        )
        assert response.status_code == 200 and state(app).inflight == 1
        if read:
            with pytest.raises(RuntimeError, match="drawing failed"):
                b"".join(response.iter_encoded())
        response.close()  # what a server does when it stops sending
        assert state(app).inflight == 0
    lines = [r.getMessage() for r in caplog.records if "route=/$report" in r.getMessage()]
    assert len(lines) == 2 and all(line.endswith(" body=incomplete") for line in lines), lines


@pytest.mark.slow
def test_report_charts_png_and_svg(client, case_resources):
    body = collection(case_resources)
    png = post_report(client, body, accept="image/png")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    svg = post_report(client, body, accept="image/svg+xml")
    assert svg.status_code == 200 and svg.headers["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.data[:2000]
    a = post_report(client, body, "?panel=a", accept="image/svg+xml").data
    b = post_report(client, body, "?panel=b", accept="image/svg+xml").data
    assert a != b and len(a) < len(svg.data) and len(b) < len(svg.data)
    assert b"FIQR" in a and b"PHQ-4" in b
    outcome(post_report(client, body, "?panel=c", accept="image/png"), 400, "invalid-value")


def test_report_change_bundle(client, case_resources):
    body = collection(case_resources)
    for accept, query, content_type in (
        ("application/fhir+json", "", FHIR_JSON),
        ("application/json", "", "application/json"),
        (None, "?_format=json", FHIR_JSON),
    ):
        response = post_report(client, body, query, accept=accept)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == content_type
        bundle = response.get_json(force=True)
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    changes = [e["resource"] for e in bundle["entry"]]
    assert changes and all(c["resourceType"] == "Observation" for c in changes)
    assert all(len(c["derivedFrom"]) == 2 for c in changes)
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])  # conditional update
    values = {
        next(
            comp["valueCodeableConcept"]["coding"][0]["code"]
            for comp in c["component"]
            if "valueCodeableConcept" in comp
        ): c["valueQuantity"]["value"]
        for c in changes
        if c["effectivePeriod"]["end"].startswith("2025-04-10")
    }
    assert values["fiqr-total"] == -35 and values["pain-max"] == -35
    assert values["pain-mean"] == -40
    batch = post_report(client, body, "?bundle-type=batch", accept="application/fhir+json")
    assert batch.get_json(force=True)["type"] == "batch"
    assert post_report(client, body, accept="text/csv").status_code == 406
    assert post_report(client, body, "?_format=xml").status_code == 406


def test_report_same_answer_from_bundle_array_and_ndjson(client, case_resources, case_ndjson):
    accept = "application/fhir+json"
    from_bundle = post_report(client, collection(case_resources), accept=accept).data
    from_array = post_report(client, case_resources, accept=accept).data
    from_ndjson = post_report(
        client, case_ndjson, accept=accept, content_type="application/fhir+ndjson"
    )
    assert from_ndjson.status_code == 200
    assert from_bundle == from_array == from_ndjson.data
    html = post_report(client, case_ndjson, content_type="application/fhir+ndjson")
    assert html.status_code == 200 and b"MOSER-CASE-1" in html.data


@pytest.mark.slow
def test_report_patient_required_when_several(client, two_patients):
    body = collection(two_patients)
    for accept in ("text/html", "image/png", "image/svg+xml"):
        error = outcome(post_report(client, body, accept=accept), 422, "patient-required")
        assert "MOSER-CASE-1" in error["issue"][0]["diagnostics"]
        assert "EXAMPLE-1" in error["issue"][0]["diagnostics"]
    system = next(
        r["subject"]["identifier"]["system"]
        for r in two_patients
        if r["resourceType"] == "Observation"
    )
    for name in ("MOSER-CASE-1", f"{system}|MOSER-CASE-1"):
        response = post_report(client, body, "", query_string={"patient": name})
        assert response.status_code == 200
        assert b"Follow-up report: MOSER-CASE-1" in response.data
    # the change Bundle holds every patient's changes unless one is named
    accept = "application/fhir+json"
    every = post_report(client, body, accept=accept).get_json(force=True)
    one = post_report(client, body, "?patient=MOSER-CASE-1", accept=accept).get_json(force=True)
    subjects = {e["resource"]["subject"]["identifier"]["value"] for e in one["entry"]}
    assert subjects == {"MOSER-CASE-1"} and len(every["entry"]) >= len(one["entry"])


def test_report_unknown_patient_is_404(client, case_resources):
    for accept in ("text/html", "image/png", "application/fhir+json"):
        response = post_report(client, case_resources, "?patient=NOBODY", accept=accept)
        error = outcome(response, 404, "unknown-patient")
        assert "MOSER-CASE-1" in error["issue"][0]["diagnostics"]


@pytest.mark.parametrize("baseline", ["2023-02-30", "22.08.2023", "2023-8-1", "yesterday", "0"])
def test_report_bad_baseline_is_400(client, case_resources, baseline):
    response = post_report(client, case_resources, f"?baseline={baseline}")
    error = outcome(response, 400, "invalid-value")
    assert error["issue"][0]["expression"] == ["baseline"]


def test_report_named_baseline(client, case_resources):
    accept = "application/fhir+json"
    default = post_report(client, case_resources, accept=accept).get_json(force=True)
    named = post_report(client, case_resources, "?baseline=2023-05-16", accept=accept)
    assert named.status_code == 200
    starts = {e["resource"]["effectivePeriod"]["start"][:10] for e in default["entry"]}
    named_starts = {
        e["resource"]["effectivePeriod"]["start"][:10] for e in named.get_json(force=True)["entry"]
    }
    assert "2023-08-22" in starts and "2023-08-22" not in named_starts
    assert named_starts <= {"2023-02-14", "2023-05-16"}
    html = post_report(client, case_resources, "?baseline=2023-05-16").get_data(as_text=True)
    assert "2023-05-16, the baseline date named" in html


def test_report_errors(client, case_resources):
    outcome(post_report(client, b"{oops"), 400, "not-json")
    outcome(post_report(client, b'{"a": 1}\n', content_type="application/fhir+ndjson"), 422)
    outcome(post_report(client, b"not json\n", content_type="application/fhir+ndjson"), 400)
    outcome(post_report(client, [{"resourceType": "Patient", "id": "p"}]), 422, "no-scores")
    outcome(post_report(client, {"resourceType": "Bundle", "type": "collection"}), 422)
    outcome(post_report(client, [1, 2]), 422, "not-a-resource")
    outcome(post_report(client, "<Bundle/>", content_type="application/fhir+xml"), 415)
    too_big = b"[" + b" " * (SETTINGS.max_input_bytes + 10) + b"]"
    outcome(post_report(client, too_big), 413)
    outcome(post_report(client, too_big, content_type="application/fhir+ndjson"), 413)
    assert client.get("/$report").status_code == 405


def test_report_is_in_metadata_and_openapi(client):
    statement = client.get("/metadata").get_json(force=True)
    names = {op["name"] for op in statement["rest"][0]["operation"]}
    assert "report" in names
    every = json.dumps(statement)
    assert "page" not in {op["name"] for op in statement["rest"][0]["operation"]}
    assert "/results" not in every
    document = client.get("/openapi.json").get_json()
    operation = document["paths"]["/$report"]["post"]
    produced = set(operation["responses"]["200"]["content"])
    assert produced == {
        "text/html",
        "image/png",
        "image/svg+xml",
        "application/fhir+json",
        "application/json",
    }
    assert set(operation["requestBody"]["content"]) == {
        "application/fhir+json",
        "application/json",
        "application/fhir+ndjson",
    }
    named = {p.get("name") for p in operation["parameters"]}
    assert named >= {"patient", "baseline", "panel", "bundle-type", "_format"}
    for path in ("/", "/results/{id}", "/results/{id}/fhir.zip", "/results/{id}/patients/{number}"):
        assert path in document["paths"]
        for item in document["paths"][path].values():
            assert item["tags"] == ["system"]


def test_report_and_page_need_the_token_when_tokens_are_set(tmp_path, case_resources):
    app = create_app(
        {
            "SETTINGS": SETTINGS.with_(api_tokens=TOKENS),
            "TESTING": True,
            "PAGE_DIR": str(tmp_path / "page"),
        }
    )
    client = app.test_client()
    for method, path in (("POST", "/$report"), ("GET", "/"), ("POST", "/")):
        response = client.open(path, method=method, headers=BROWSER)
        outcome(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    auth = {"Authorization": "Bearer page-token"}
    assert client.get("/", headers=auth).status_code == 200
    assert post_report(client, case_resources, headers=auth).status_code == 200
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, headers=auth)
    assert response.status_code == 200
    location = response.headers["Content-Location"]
    outcome(client.get(location), 401)
    assert client.get(location, headers=auth).status_code == 200


# --- the page: the form ----------------------------------------------------------------------


def test_the_form(client):
    response = client.get("/", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    html = response.get_data(as_text=True)
    assert_nothing_from_outside(html)
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    assert html.count("<h1>") == 1
    links = parsed(html)
    forms = [attrs for tag, attrs in links.tags if tag == "form"]
    assert forms == [{"method": "post", "action": "/", "enctype": "multipart/form-data"}], (
        "a plain form posting to the page itself"
    )
    inputs = {attrs["id"]: attrs for tag, attrs in links.tags if tag == "input"}
    labelled = {attrs["for"] for tag, attrs in links.tags if tag == "label"}
    assert {"file", "contract", "format-transaction", "format-patient", "format-ndjson"} <= set(
        inputs
    )
    assert set(inputs) <= labelled, "every control has its label"
    assert inputs["file"]["type"] == "file" and "required" in inputs["file"]
    assert inputs["contract"]["type"] == "file" and "required" not in inputs["contract"]
    assert "checked" in inputs["format-transaction"]
    assert "<fieldset>" in html and "<legend>Output</legend>" in html
    assert ":focus-visible" in html
    assert "kept on this server for\n1 hour" in html


def test_the_result_page_and_its_links_load_nothing_from_outside(client):
    """The result page and the report it links to load nothing from outside either."""
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name)
    html = response.get_data(as_text=True)
    assert_nothing_from_outside(html)
    for url in parsed(html).urls:
        if url.startswith("/results/"):
            linked = client.get(url)
            assert linked.status_code == 200, url
            if linked.mimetype == "text/html":
                assert_nothing_from_outside(linked.get_data(as_text=True))


# --- the page: uploads -----------------------------------------------------------------------


def test_upload_xlsx_shows_counts_patients_and_report(client):
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert counts(html) == {"read": 7, "converted": 7, "rejected": 0, "blank": 0}
    assert "No row was rejected." in html
    assert "Converted: case-report-followup.xlsx" in html
    location = response.headers["Content-Location"]
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{32}", location)
    assert client.get(location).get_data(as_text=True) == html
    links = [u for u in parsed(html).urls if "/patients/" in u]
    assert links == [f"{location}/patients/1"]
    report = client.get(links[0], headers=BROWSER)
    assert report.status_code == 200
    assert report.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in report.headers["Content-Security-Policy"]
    text = report.get_data(as_text=True)
    assert "Follow-up report: MOSER-CASE-1" in text
    for value in ("72.5", "37.5", "\u221248.3", "\u221238.9", "\u221257.1"):
        assert value in text, value


def test_upload_csv_with_contract(client):
    contract = (io.BytesIO((EXAMPLES / "legacy-contract.yaml").read_bytes()), "contract.yaml")
    response = upload(
        client,
        (EXAMPLES / "legacy-followup.csv").read_bytes(),
        "legacy-followup.csv",
        "patient",
        contract,
    )
    assert response.status_code == 200, response.data[:500]
    html = response.get_data(as_text=True)
    assert counts(html) == {"read": 7, "converted": 7, "rejected": 0, "blank": 0}
    assert "One Bundle per patient" in html
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(response.headers["Content-Location"] + "/fhir.zip").data)
    )
    names = archive.namelist()
    assert names == [
        "legacy-followup-patient/patient-MOSER-CASE-1.json",
        "legacy-followup-patient/row-report.json",
    ]
    bundle = json.loads(archive.read(names[0]))
    subjects = {
        e["resource"]["subject"]["identifier"]["system"]
        for e in bundle["entry"]
        if "subject" in e["resource"]
    }
    assert subjects == {"urn:example:mrn"}, "the contract's patient system"


def test_upload_without_contract_of_a_legacy_sheet_is_422(client):
    response = upload(client, (EXAMPLES / "legacy-followup.csv").read_bytes(), "legacy.csv")
    outcome(response, 422)
    # a browser is sent to the mapping step instead (tests/test_page_mapping.py)
    page = upload(
        client, (EXAMPLES / "legacy-followup.csv").read_bytes(), "legacy.csv", headers=BROWSER
    )
    assert page.status_code == 303
    assert re.fullmatch(r"/mappings/[A-Za-z0-9_-]{32}", page.headers["Location"])
    unreadable = upload(client, b"PK\x03\x04 no workbook", "legacy.xlsx", headers=BROWSER)
    assert unreadable.status_code == 422 and unreadable.mimetype == "text/html"
    html = unreadable.get_data(as_text=True)
    assert 'role="alert"' in html and "The sheet could not be converted" in html
    assert "<title>Error: " in html


def test_rejected_rows_are_shown_with_row_column_and_reason(client):
    response = upload(client, BAD_CSV.encode(), "visits.csv")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert counts(html) == {"read": 3, "converted": 1, "rejected": 2, "blank": 0}
    assert "2 rows were not converted" in html
    rows = table_rows(html, "rejected-rows")
    assert len(rows) == 2
    assert rows[0][0] == "3" and rows[0][1] == 'F "phq4-interest"'
    assert "phq4-interest: 9 is not one of the options" in rows[0][2]
    assert rows[1][0] == "4" and rows[1][1] == 'B "visit_date"'
    assert "31.02.2025" in rows[1][2]
    # the patient whose row converted has a report, the others none
    assert [u for u in parsed(html).urls if "/patients/" in u] == [
        response.headers["Content-Location"] + "/patients/1"
    ]
    assert "EXAMPLE-1" in html


def test_sheet_values_are_escaped(client):
    csv = "patient_id,visit_date,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    csv += "<b>x</b>,2025-04-10,1,2,1,1\n<b>x</b>,2025-04-11,1,2,9,1\n"
    response = upload(client, csv.encode(), "<i>sheet.csv")
    html = response.get_data(as_text=True)
    assert "<b>x</b>" not in html and "<i>sheet" not in html
    assert "&lt;i&gt;sheet.csv" in html and "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "transaction",
            {
                "case-report-followup-transaction/medication-MOSER-CASE-1.json",
                "case-report-followup-transaction/row-report.json",
            },
        ),
        (
            "patient",
            {
                "case-report-followup-patient/patient-MOSER-CASE-1.json",
                "case-report-followup-patient/row-report.json",
            },
        ),
        (
            "ndjson",
            {
                "case-report-followup-ndjson/MedicationStatement.ndjson",
                "case-report-followup-ndjson/Observation.ndjson",
                "case-report-followup-ndjson/QuestionnaireResponse.ndjson",
                "case-report-followup-ndjson/row-report.json",
            },
        ),
    ],
)
def test_zip_download(client, fmt, expected):
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, fmt)
    html = response.get_data(as_text=True)
    location = response.headers["Content-Location"]
    assert f'href="{location}/fhir.zip"' in html
    download = client.get(f"{location}/fhir.zip", headers=BROWSER)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/zip"
    disposition = download.headers["Content-Disposition"]
    assert disposition == f"attachment; filename=case-report-followup-{fmt}.zip"
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert expected <= names
    if fmt == "transaction":
        visits = {n for n in names if "/visit-MOSER-CASE-1-" in n}
        assert len(visits) == 4, names  # the 4 visits with answers; dose-only rows add none
    report = json.loads(archive.read(f"case-report-followup-{fmt}/row-report.json"))
    assert report["resourceType"] == "OperationOutcome"
    assert "rows read 7, converted 7" in report["issue"][0]["diagnostics"]
    # the same resources $convert-sheet answers, with the same ids
    resources: list[dict[str, Any]] = []
    for name in sorted(names - {f"case-report-followup-{fmt}/row-report.json"}):
        text = archive.read(name)
        if name.endswith(".ndjson"):
            resources += [json.loads(line) for line in text.splitlines()]
        else:
            resources += [e["resource"] for e in json.loads(text)["entry"]]
    api_answer = client.post(
        "/$convert-sheet?format=ndjson",
        data=CASE_XLSX.read_bytes(),
        content_type=XLSX,
        headers={"Accept": "application/fhir+ndjson"},
    )
    from_api = [json.loads(line) for line in api_answer.data.splitlines()[:-1]]
    assert sorted(map(resource_id, resources)) == sorted(map(resource_id, from_api))


# --- the page: what is kept, and for how long ------------------------------------------------


def test_results_survive_across_apps_sharing_the_folder(tmp_path):
    """Two apps on one folder, as two gunicorn workers: one converts, the other answers."""
    config = {"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "shared")}
    one, two = create_app(config).test_client(), create_app(config).test_client()
    response = upload(one, CASE_XLSX.read_bytes(), CASE_XLSX.name)
    location = response.headers["Content-Location"]
    assert two.get(location).get_data(as_text=True) == response.get_data(as_text=True)
    assert two.get(location + "/fhir.zip").status_code == 200
    assert b"MOSER-CASE-1" in two.get(location + "/patients/1").data
    assert oct(os.stat(tmp_path / "shared").st_mode & 0o777) == "0o700"


def test_unknown_and_malformed_ids_are_404(client):
    for path in (
        "/results/" + "A" * 32,
        "/results/" + "A" * 32 + "/fhir.zip",
        "/results/" + "A" * 32 + "/patients/1",
        "/results/short",
        "/results/..%2F..%2Fetc",
        "/results/" + "A" * 31 + ".",
    ):
        outcome(client.get(path), 404)
    page = client.get("/results/" + "A" * 32, headers=BROWSER)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "no such result" in page.get_data(as_text=True)


def test_unknown_patient_number_is_404(client):
    location = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name).headers["Content-Location"]
    for number in ("0", "2", "-1", "x", "99999999999"):
        outcome(client.get(f"{location}/patients/{number}"), 404)


def test_expired_results_are_404_and_removed(app, client, monkeypatch):
    from adapter.web import page_store as module

    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name)
    location = response.headers["Content-Location"]
    folder = Path(app.config["PAGE_DIR"]) / location.rsplit("/", 1)[1]
    assert folder.is_dir()
    real = time.time
    monkeypatch.setattr(module, "now", lambda: real() + 3600 + 1)
    for suffix in ("", "/fhir.zip", "/patients/1"):
        outcome(client.get(location + suffix), 404, "unknown-result")
    assert not folder.exists()


def test_sweep_removes_expired_and_dead_staging_but_nothing_else(app, client, monkeypatch):
    from adapter.web import page_store as module

    first = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name).headers["Content-Location"]
    root = Path(app.config["PAGE_DIR"])
    dead = root / f".{'d' * 32}.partial"
    dead.mkdir()
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    foreign = root / "notes.txt"
    foreign.write_text("not ours")
    real = time.time
    monkeypatch.setattr(module, "now", lambda: real() + 3601)
    second = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name).headers["Content-Location"]
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([second.rsplit("/", 1)[1], "notes.txt"])
    assert first != second


def test_total_size_is_bounded_oldest_first(tmp_path):
    config = {"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "p")}
    client = create_app(config).test_client()
    one = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name).headers["Content-Location"]
    size = sum(f.stat().st_size for f in (tmp_path / "p").rglob("*") if f.is_file())
    small = create_app({**config, "PAGE_MAX_MB": str(size * 1.5 / MIB)}).test_client()
    two = upload(small, CASE_XLSX.read_bytes(), CASE_XLSX.name).headers["Content-Location"]
    assert small.get(two).status_code == 200
    outcome(small.get(one), 404)
    tiny = create_app({**config, "PAGE_MAX_MB": str(size / 4 / MIB)}).test_client()
    error = outcome(upload(tiny, CASE_XLSX.read_bytes(), CASE_XLSX.name), 413, "too-large")
    assert "larger than the page keeps" in error["issue"][0]["diagnostics"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [two.rsplit("/", 1)[1]]


def test_page_row_limit(tmp_path):
    config = {"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "p")}
    client = create_app({**config, "PAGE_MAX_ROWS": "3"}).test_client()
    error = outcome(upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name), 413, "use-the-api")
    assert "at most 3 rows" in json.dumps(error)
    assert list((tmp_path / "p").iterdir()) == [], "nothing kept of a failed conversion"


def test_upload_errors(client):
    outcome(client.post("/", data={"format": "ndjson"}, content_type="multipart/form-data"), 400)
    empty = {"file": (io.BytesIO(b""), ""), "format": "transaction"}
    outcome(client.post("/", data=empty, content_type="multipart/form-data"), 400, "missing-file")
    outcome(upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, "xml"), 400, "invalid-value")
    outcome(client.post("/", data=b"a,b\n", content_type="text/csv"), 415)
    bad_contract = (io.BytesIO(b"patient: [unclosed"), "contract.yaml")
    outcome(upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, contract=bad_contract), 400)
    big = b"x" * (SETTINGS.max_upload_bytes + 2 * MIB)
    outcome(upload(client, big, "big.csv"), 413)
    page = client.post(
        "/", data={"format": "ndjson"}, content_type="multipart/form-data", headers=BROWSER
    )
    assert page.status_code == 400 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "choose a CSV or XLSX file" in html
    assert re.search(r'id="format-ndjson"[^>]*checked', html), "the form keeps the output chosen"


def test_an_empty_contract_field_means_the_template(client):
    """Browsers send an empty part for a file input left empty."""
    contract = (io.BytesIO(b""), "")
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, contract=contract)
    assert response.status_code == 200
    assert counts(response.get_data(as_text=True))["converted"] == 7


def test_store_refuses_a_linked_or_foreign_root(tmp_path):
    from adapter.outcome import InternalFault

    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(InternalFault):
        Store(PageOptions(folder=link)).root()
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(InternalFault):
        Store(PageOptions(folder=plain)).root()
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    Store(PageOptions(folder=loose)).root()
    assert oct(os.stat(loose).st_mode & 0o777) == "0o700"


def test_store_ids_are_never_paths(tmp_path):
    store = Store(PageOptions(folder=tmp_path / "s"))
    for identifier in ("../" * 10 + "etc", "." * 32, "/" + "a" * 31, "a" * 33, ""):
        assert store.get(identifier) is None
    identifier, staging = store.begin()
    assert len(identifier) == 32 and staging.name == f".{identifier}.partial"
    assert store.get(identifier) is None, "a conversion is invisible until committed"
    store.commit(identifier, staging, {"file": "x"})
    assert store.get(identifier) is not None


def test_page_options_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FMS_FHIR_PAGE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("FMS_FHIR_PAGE_TTL_MINUTES", "5")
    monkeypatch.setenv("FMS_FHIR_PAGE_MAX_MB", "10")
    monkeypatch.setenv("FMS_FHIR_PAGE_MAX_ROWS", "100")
    app = create_app(SETTINGS)
    with app.test_request_context("/"):
        options = store_of().options
    assert options.folder == tmp_path / "env"
    assert (options.ttl, options.max_bytes, options.max_rows) == (300, 10 * MIB, 100)
    assert "5 minutes" in app.test_client().get("/").get_data(as_text=True)


def test_a_browser_is_sent_to_the_result_address(client):
    """Post/Redirect/Get for browsers: Back and reload never post the sheet again."""
    response = upload(client, CASE_XLSX.read_bytes(), CASE_XLSX.name, headers=BROWSER)
    assert response.status_code == 303
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{32}", response.headers["Location"])
    assert response.headers["Cache-Control"] == "no-store"
    result = client.get(response.headers["Location"], headers=BROWSER)
    assert result.status_code == 200
    assert counts(result.get_data(as_text=True))["converted"] == 7
