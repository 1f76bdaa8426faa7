"""The page's mapping step through Flask's test client: a clinic's workbook that does not fit the
template is kept and shown column by column with the suggestion; the person's choices are read
back, previewed, converted with the contract they make, and that contract is downloadable and
converts the same sheet the same way anywhere. Every wrong request is a 4xx (a page for a
browser, an OperationOutcome for others), never a 500. The template and the contract help are
downloadable, and each patient's report links back to its result."""

from __future__ import annotations

import io
import json
import re
import zipfile
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from adapter import api
from adapter.settings import FHIR_JSON, MIB, Settings
from adapter.sheets.contract import contract_from_bytes
from adapter.sheets.request import ContractFile, SheetRequest, ToMemory
from adapter.sheets.template import write_template
from adapter.web import create_app
from adapter.web.page_mapping import IGNORE, choice_values
from adapter.web.page_store import now as store_now
from tests.support.page_sheets import HEADERS, SUGGESTED, german_workbook

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SETTINGS = Settings(max_input_bytes=2 * MIB, max_upload_bytes=1 * MIB, max_sheet_rows=500)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LETTERS = "ABCDEFGHIJ"


@pytest.fixture
def app(tmp_path) -> Flask:
    return create_app({"SETTINGS": SETTINGS, "TESTING": True, "PAGE_DIR": str(tmp_path / "page")})


@pytest.fixture
def client(app):
    return app.test_client()


class Form(HTMLParser):
    """The selects of the mapping page (id -> the selected value, and every option value), the
    other inputs, and every URL."""

    def __init__(self) -> None:
        super().__init__()
        self.selected: dict[str, str] = {}
        self.options: dict[str, list[str]] = {}
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.labels: set[str] = set()
        self.urls: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("href", "action", "src", "formaction"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if tag in ("select", "input") and found.get("id"):
            self.attrs[str(found["id"])] = found
        if tag == "select":
            self._select = str(found["id"])
            self.options[self._select] = []
        elif tag == "option" and self._select is not None:
            self.options[self._select].append(str(found["value"]))
            if "selected" in found:
                self.selected[self._select] = str(found["value"])
        elif tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def parsed(html: str) -> Form:
    form = Form()
    form.feed(html)
    return form


def table(html: str, table_id: str) -> list[list[str]]:
    found = re.search(rf'<table[^>]* id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return [
        [
            unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell))).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def upload(client, data: bytes, name: str, headers=BROWSER, **fields: Any):
    form: dict[str, Any] = {"file": (io.BytesIO(data), name), "format": "transaction", **fields}
    return client.post("/", data=form, content_type="multipart/form-data", headers=headers)


def to_mapping(client, data: bytes | None = None, name: str = "verlauf.xlsx", **fields) -> str:
    response = upload(client, german_workbook() if data is None else data, name, **fields)
    assert response.status_code == 303, response.data[:600]
    location = response.headers["Location"]
    assert re.fullmatch(r"/mappings/[A-Za-z0-9_-]{32}", location)
    return location


def choices_of(html: str) -> dict[str, str]:
    """The form as the page fills it: what a browser would post."""
    form = parsed(html)
    fields = {name: value for name, value in form.selected.items() if name.startswith("column-")}
    fields["date-format"] = unescape(
        re.search(r'id="date-format"[^>]*value="([^"]*)"', html, re.S).group(1)  # type: ignore[union-attr]  # the page has it
    )
    if "checked" in (form.attrs["decimal-comma"] or {}):
        fields["decimal-comma"] = "yes"
    worksheet = re.search(r'<input type="hidden" name="worksheet" value="([^"]*)"', html)
    if worksheet:
        fields["worksheet"] = unescape(worksheet.group(1))
    return fields


def outcome(response, status: int, rule: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data[:600]
    assert response.headers["Content-Type"] == FHIR_JSON
    body = response.get_json(force=True)
    if rule:
        codes = {c["code"] for i in body["issue"] for c in i.get("details", {}).get("coding", [])}
        assert rule in codes, body
    return body


def assert_nothing_from_outside(html: str) -> None:
    for url in parsed(html).urls:
        assert url.startswith(("/", "#")) and not url.startswith("//"), url
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)


# --- from the upload to the mapping page ---------------------------------------------------------


def test_a_workbook_that_does_not_fit_goes_to_the_mapping_step(client):
    location = to_mapping(client)
    response = client.get(location, headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    assert_nothing_from_outside(html)
    assert html.count("<h1>") == 1 and "Match the columns of verlauf.xlsx" in html
    assert "Why this step: the template does not\nfit this sheet." in html
    assert "no patient column &#39;patient_id&#39;" in html, "the template's own problem"
    form = parsed(html)
    # one row per column: the header (the group joined), samples, the choice, how sure
    rows = table(html, "mapping")
    assert [row[0] for row in rows] == list(LETTERS)
    assert [row[1] for row in rows] == [
        *HEADERS[:3],
        *(f"PHQ-4 {h}" for h in HEADERS[3:7]),
        *HEADERS[7:],
    ]
    assert rows[2][2] == "4,5 mg, 3 mg, 4.5mg", "up to 3 sample values, as written"
    assert rows[0][2] == "MA-001, MA-002"
    columns = {k: v for k, v in form.selected.items() if k.startswith("column-")}
    assert {LETTERS[int(k.split("-")[1])]: v for k, v in columns.items()} == SUGGESTED
    assert "100%" in rows[3][4] and "runner-up" in rows[3][4]
    assert rows[8][4].startswith("not matched:"), "an unmapped column says so"
    # every select is labelled, offers the same choices grouped by instrument, and ignore
    for name, options in form.options.items():
        if name.startswith("column-"):
            assert name in form.labels
            assert options[0] == IGNORE and set(options) == choice_values()
    assert '<optgroup label="PHQ-4 (last 2 weeks) (phq4)">' in html
    assert '<optgroup label="The visit">' in html
    # the worksheet and the header rows it found
    assert form.selected["worksheet"] == "Visiten" and form.options["worksheet"] == [
        "Hinweise",
        "Visiten",
    ]
    assert "The header is rows 3 and\n4" in html
    assert form.attrs["date-format"]["value"] == "%d.%m.%Y"
    assert "checked" in form.attrs["decimal-comma"]


def test_an_api_client_still_gets_the_outcome(client):
    """Only a browser is sent to the mapping step; an integration gets the 422 as before."""
    response = upload(client, german_workbook(), "verlauf.xlsx", headers={})
    outcome(response, 422, "missing-column")


def test_a_sheet_that_fits_converts_at_once(client):
    case = (EXAMPLES / "case-report-followup.xlsx").read_bytes()
    response = upload(client, case, "case.xlsx")
    assert response.headers["Location"].startswith("/results/")


def test_a_contract_that_does_not_fit_goes_to_the_mapping_step(client):
    contract = (
        io.BytesIO(
            b"patient: {column: Patient}\nvisit_date: {column: Datum}\n"
            b"columns: {Schmerz Maximum: pain-max}\n"
        ),
        "old.yaml",
    )
    location = to_mapping(client, contract=contract)
    html = client.get(location, headers=BROWSER).get_data(as_text=True)
    assert "Why this step: the contract given does not" in html
    assert "Schmerz Maximum" in html


def test_an_unreadable_file_stays_on_the_form(client):
    response = upload(client, b"PK\x03\x04 not a workbook", "broken.xlsx")
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "The sheet could not be converted" in response.get_data(as_text=True)


# --- preview, contract, convert ------------------------------------------------------------------


def test_preview_convert_and_the_contract_for_next_time(client):
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    choices["column-8"] = "pgic"  # the person knows "Eindruck" is the PGIC

    preview = client.post(location, data={**choices, "action": "preview"}, headers=BROWSER)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert_nothing_from_outside(html)
    assert parsed(html).selected["column-8"] == "pgic", "the choice is kept"
    assert "changed (suggested:\nignore)" in html
    assert table(html, "preview-rows") == [
        ["5", "MA-001", "2025-01-10", "phq4, pain-nrs", "converted", "none"],
        ["6", "MA-001", "2025-04-11", "phq4, pain-nrs, pgic", "converted", "none"],
        ["7", "MA-002", "2025-01-15", "phq4, pain-nrs", "converted", "none"],
        ["8", "MA-002", "2025-04-20", "phq4, pain-nrs, pgic", "converted", "none"],
    ]

    download = client.post(location, data={**choices, "action": "contract"}, headers=BROWSER)
    assert download.status_code == 200 and download.mimetype == "application/yaml"
    assert "filename=verlauf-contract.yaml" in download.headers["Content-Disposition"]
    text = download.get_data(as_text=True)
    contract = contract_from_bytes(text.encode(), "verlauf-contract.yaml", SETTINGS)
    assert contract.sheet == "Visiten" and (contract.header_row, contract.header_rows) == (3, 2)
    assert contract.patient_column == "Pat.-Nr." and contract.dose_column == "LDN Dosis"
    assert contract.date_formats == ("%d.%m.%Y",) and contract.decimal_comma
    assert {r.header: r.target for r in contract.columns} == {
        "PHQ-4 nervös": "phq4-nervous",
        "PHQ-4 Sorgen": "phq4-worry",
        "PHQ-4 Interesse": "phq4-interest",
        "PHQ-4 niedergeschlagen": "phq4-down",
        "Schmerz max": "pain-max",
        "Eindruck": "pgic",
    }

    converted = client.post(location, data={**choices, "action": "convert"}, headers=BROWSER)
    assert converted.status_code == 303
    result = converted.headers["Location"]
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{32}", result)
    page = client.get(result, headers=BROWSER).get_data(as_text=True)
    assert re.findall(r'<dd id="rows-(\w+)">(\d+)</dd>', page)[:3] == [
        ("read", "4"),
        ("converted", "4"),
        ("rejected", "0"),
    ]
    assert f'href="{result}/contract.yaml"' in page and f'href="{location}"' in page
    kept = client.get(f"{result}/contract.yaml")
    assert kept.status_code == 200 and kept.get_data(as_text=True) == text
    assert "attachment" in kept.headers["Content-Disposition"]

    # the page's FHIR: the values the items compute
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"{result}/fhir.zip").data))
    scores = page_scores(archive)
    assert scores[("MA-001", "2025-01-10", "70272-0")] == 7
    assert scores[("MA-002", "2025-01-15", "70272-0")] == 10
    assert scores[("MA-001", "2025-04-11", "pgic-score")] == 2
    assert scores[("MA-002", "2025-04-20", "pain-max")] == 60
    doses = [
        json.loads(archive.read(n))
        for n in archive.namelist()
        if "/medication-" in n and n.endswith(".json")
    ]
    assert doses, "the doses are converted"
    given = {
        d["doseAndRate"][0]["doseQuantity"]["value"]
        for bundle in doses
        for e in bundle["entry"]
        for d in e["resource"].get("dosage", [])
    }
    assert given == {4.5, 3}, "'4,5 mg' and '4.5mg' read as 4.5 mg, '3 mg' as 3"

    # next time, anywhere: the contract converts the same sheet the same way
    again = api.convert_sheet(
        SheetRequest(
            io.BytesIO(german_workbook()), "verlauf.xlsx", ContractFile(text.encode(), "c.yaml")
        ),
        ToMemory(),
        SETTINGS,
    )
    assert (again.report.rows_converted, again.report.rows_rejected) == (4, 0)
    with_contract = upload(
        client, german_workbook(), "verlauf.xlsx", contract=(io.BytesIO(text.encode()), "c.yaml")
    )
    assert with_contract.headers["Location"].startswith("/results/"), "no mapping step again"


def page_scores(archive: zipfile.ZipFile) -> dict[tuple[str, str, str], Any]:
    """(patient, date, code) -> value of every score Observation in the visit Bundles."""
    found = {}
    for name in archive.namelist():
        if "/visit-" not in name:
            continue
        for entry in json.loads(archive.read(name))["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "Observation" or "valueQuantity" not in resource:
                continue
            patient = resource["subject"]["identifier"]["value"]
            day = resource["effectiveDateTime"][:10]
            for coding in resource["code"]["coding"]:
                found[(patient, day, coding["code"])] = resource["valueQuantity"]["value"]
    return found


def test_the_patient_report_links_back_to_its_result(client):
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    result = client.post(location, data={**choices, "action": "convert"}, headers=BROWSER)
    address = result.headers["Location"]
    report = client.get(f"{address}/patients/1", headers=BROWSER).get_data(as_text=True)
    assert f'<a href="{address}">' in report
    case = upload(client, (EXAMPLES / "case-report-followup.xlsx").read_bytes(), "case.xlsx")
    address = case.headers["Location"]
    report = client.get(f"{address}/patients/1", headers=BROWSER).get_data(as_text=True)
    assert f'<a href="{address}">' in report, "every report, not only a mapped one's"


def test_another_worksheet_is_read_on_request(client):
    location = to_mapping(client)
    response = client.get(location + "?worksheet=Hinweise", headers=BROWSER)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert parsed(html).selected["worksheet"] == "Hinweise"
    choices = choices_of(html)
    assert choices["worksheet"] == "Hinweise"
    wrong = client.post(location, data={**choices, "action": "preview"}, headers=BROWSER)
    assert wrong.status_code == 422
    assert "choose the column that holds the patient identifier" in wrong.get_data(as_text=True)
    back = client.get(location + "?worksheet=Visiten", headers=BROWSER).get_data(as_text=True)
    assert parsed(back).selected["column-0"] == "$patient"
    missing = client.get(location + "?worksheet=Nope", headers=BROWSER)
    assert missing.status_code == 422 and "Nope" in missing.get_data(as_text=True)


# --- what the person may get wrong: a page again, 4xx -------------------------------------------


def test_choices_that_make_no_contract_are_shown_again(client):
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    twice = {**choices, "column-4": "phq4-nervous", "action": "convert"}
    response = client.post(location, data=twice, headers=BROWSER)
    assert response.status_code == 422 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and "<title>Error: " in html
    assert "phq4-nervous" in html and "more than one column" in html
    assert re.search(r'id="column-4"[^>]*aria-invalid="true"', html)
    assert parsed(html).selected["column-4"] == "phq4-nervous", "the form as the person left it"
    no_date = {**choices, "column-1": IGNORE}
    html = client.post(location, data=no_date, headers=BROWSER).get_data(as_text=True)
    assert "choose the column that holds the visit date" in html


def test_a_date_format_that_is_none_is_a_problem_on_the_page(client):
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    for bad in ("%d.%d.%Y", "%Y", "%Q"):
        response = client.post(
            location, data={**choices, "date-format": bad, "action": "preview"}, headers=BROWSER
        )
        assert response.status_code == 422, bad
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html and "visit_date" in html
    wrong = {**choices, "date-format": "%Y-%m-%d", "action": "preview"}
    html = client.post(location, data=wrong, headers=BROWSER).get_data(as_text=True)
    rows = table(html, "preview-rows")
    assert {row[4] for row in rows} == {"rejected"} and "10.01.2025" in rows[0][5]
    wrong["action"] = "convert"
    result = client.post(location, data=wrong, headers=BROWSER)
    assert result.status_code == 303, "rows rejected are a result, with their reasons"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"action": "delete"}, 400),
        ({"column-99": "pgic"}, 400),
        ({"column-0": "not-an-item"}, 400),
        ({"column-0": "<script>"}, 400),
        ({"date-format": "%d" * 60}, 400),
    ],
)
def test_a_form_the_page_never_sends_is_400(client, fields, status):
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    response = client.post(location, data={**choices, **fields}, headers=BROWSER)
    assert response.status_code == status
    assert response.mimetype == "text/html" and "<script>" not in response.get_data(as_text=True)
    outcome(client.post(location, data={**choices, **fields}), status)


def test_unknown_expired_and_misused_ids_are_404(app, client, monkeypatch):
    location = to_mapping(client)
    case = upload(client, (EXAMPLES / "case-report-followup.xlsx").read_bytes(), "case.xlsx")
    result = case.headers["Location"]
    mapping_id, result_id = location.rsplit("/", 1)[1], result.rsplit("/", 1)[1]
    for path in (
        "/mappings/" + "A" * 32,
        "/mappings/short",
        f"/mappings/{result_id}",
        f"/results/{mapping_id}",
        f"/results/{mapping_id}/fhir.zip",
        f"{result}/contract.yaml",  # converted without the mapping step
    ):
        outcome(client.get(path), 404)
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 404 and page.mimetype == "text/html", path
    outcome(client.post("/mappings/" + "A" * 32, data={"action": "preview"}), 404)
    later = store_now() + 2 * 3600
    monkeypatch.setattr("adapter.web.page_store.now", lambda: later)
    outcome(client.get(location), 404, "unknown-result")


def test_a_body_that_is_no_form_is_415(client):
    location = to_mapping(client)
    response = client.post(location, data=b"{}", content_type="application/json")
    outcome(response, 415)


def test_headers_and_values_are_escaped(client):
    headers = ["<b>Pat</b>", *HEADERS[1:]]
    location = to_mapping(client, german_workbook(headers), "<i>x.xlsx")
    html = client.get(location, headers=BROWSER).get_data(as_text=True)
    assert "<b>Pat</b>" not in html and "&lt;b&gt;Pat&lt;/b&gt;" in html
    assert "<i>x" not in html


# --- the template and the help -------------------------------------------------------------------


def test_the_template_and_the_contract_help(client):
    form = client.get("/", headers=BROWSER).get_data(as_text=True)
    assert 'href="/template.xlsx"' in form and 'href="/help/contract"' in form
    template = client.get("/template.xlsx", headers=BROWSER)
    assert template.status_code == 200 and template.mimetype == XLSX
    assert template.data == write_template(".xlsx")
    assert "fms-fhir-template.xlsx" in template.headers["Content-Disposition"]
    help_page = client.get("/help/contract", headers=BROWSER)
    assert help_page.status_code == 200
    html = help_page.get_data(as_text=True)
    assert_nothing_from_outside(html)
    example = unescape(re.search(r"<pre><code>(.*?)</code></pre>", html, re.S).group(1))  # type: ignore[union-attr]  # the page has one
    contract = contract_from_bytes(example.encode(), "example.yaml", SETTINGS)
    assert contract.sheet == "Visiten" and contract.header_rows == 2
    assert {r.header for r in contract.columns} >= {"Schmerz max", "Kopfschmerz"}


def test_the_new_routes_are_in_openapi_not_in_metadata(client):
    document = client.get("/openapi.json").get_json()
    for path in (
        "/mappings/{id}",
        "/results/{id}/contract.yaml",
        "/template.xlsx",
        "/help/contract",
    ):
        assert path in document["paths"], path
        for item in document["paths"][path].values():
            assert item["tags"] == ["system"]
    statement = json.dumps(client.get("/metadata").get_json(force=True))
    assert "/mappings" not in statement and "template.xlsx" not in statement


def test_a_bad_cell_is_shown_in_the_preview_and_converts_the_row_in_part(client, monkeypatch):
    import tests.support.page_sheets as sheets

    rows = [list(row) for row in sheets.ROWS]
    rows[1][3] = 9  # row 6: PHQ-4 "nervös" out of range; the pain item is fine
    monkeypatch.setattr(sheets, "ROWS", rows)
    location = to_mapping(client)
    choices = choices_of(client.get(location, headers=BROWSER).get_data(as_text=True))
    html = client.post(location, data={**choices, "action": "preview"}, headers=BROWSER).get_data(
        as_text=True
    )
    row = table(html, "preview-rows")[1]
    assert row[:5] == ["6", "MA-001", "2025-04-11", "pain-nrs", "in part"]
    assert "9" in row[5] and "PHQ-4 nervös" in row[5]
    result = client.post(location, data={**choices, "action": "convert"}, headers=BROWSER)
    page = client.get(result.headers["Location"], headers=BROWSER).get_data(as_text=True)
    assert re.search(r'<dd id="rows-partial">1</dd>', page)
    listed = table(page, "partial-rows")
    assert listed[0][0] == "6" and "PHQ-4 nervös" in listed[0][1]
