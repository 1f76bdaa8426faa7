"""The page's mapping step in a real headless browser, against the real service (gunicorn, two
workers sharing one page folder): a clinic's German workbook (a notes worksheet first, a title
row, a group header merged over its columns, "Schmerz max", "4,5 mg" doses) is uploaded, the
suggested mapping is shown, one select is changed with the keyboard, the first rows are
previewed, the contract is downloaded, the sheet is converted, and the converted values, the
contract kept with the result and the report's way back are checked. No request may leave the
service.

Each step is photographed into FMS_FHIR_PAGE_SCREENSHOTS (a folder; default a temporary one):
`make`-free, the docs' pictures (docs/images/page-*.png) are taken with
    FMS_FHIR_PAGE_SCREENSHOTS=docs/images pytest tests/test_page_mapping_browser.py
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adapter.settings import Settings
from adapter.sheets.contract import contract_from_bytes
from tests.support import skip_or_fail
from tests.support.page_sheets import SUGGESTED, german_workbook
from tests.support.web_server import Server, gunicorn_server

pytestmark = pytest.mark.slow  # a real browser against the service under gunicorn

VIEWPORT = {"width": 1100, "height": 760}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        skip_or_fail("gunicorn is not installed (pip install -e .)")
    folder = tmp_path_factory.mktemp("page") / "results"
    with gunicorn_server({"FMS_FHIR_PAGE_DIR": str(folder)}, workers=2) as running:
        yield running


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("FMS_FHIR_PAGE_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        yield page
    finally:
        outside = [
            url
            for url in requests
            if not url.startswith((server.url + "/", "data:", "blob:", "about:"))
        ]
        page.close()
        assert outside == [], f"requests left the service: {outside}"


def focused(page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def tab_to(page, element_id: str, limit: int = 40) -> None:
    """Press Tab until the element with this id has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


def selected(page) -> dict[str, str]:
    """Column letter -> the value its select holds."""
    values = page.eval_on_selector_all(
        "table#mapping select", "els => els.map(e => [e.id, e.value])"
    )
    return {"ABCDEFGHIJ"[int(name.split("-")[1])]: value for name, value in values}


def test_a_clinic_workbook_from_upload_to_fhir_without_yaml(page, server, tmp_path, shots):
    sheet = tmp_path / "verlauf-2025.xlsx"
    sheet.write_bytes(german_workbook())

    # 1. the form: the template and the help are offered; the workbook is chosen and sent
    page.goto(server.url + "/")
    assert page.get_by_role("link", name="Download the template (XLSX)").is_visible()
    page.set_input_files("#file", str(sheet))
    page.screenshot(path=str(shots / "page-upload.png"))
    with page.expect_navigation():
        page.get_by_role("button", name="Convert").click()

    # 2. the mapping step: one row per column, the suggestion selected, how sure
    assert "/mappings/" in page.url
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Match the columns of verlauf-2025.xlsx"
    )
    assert "the template does not fit this sheet" in page.inner_text("#reasons")
    assert selected(page) == SUGGESTED
    table = page.get_by_role("table", name="The columns of the worksheet Visiten")
    headers = table.locator("tbody th").all_inner_texts()
    assert headers[3] == "PHQ-4 nervös" and headers[7] == "Schmerz max"
    assert page.get_by_label("Worksheet").input_value() == "Visiten"
    assert page.get_by_label("Date format of the visit date").input_value() == "%d.%m.%Y"
    assert page.get_by_label("Numbers are written with a decimal comma (4,5)").is_checked()
    page.screenshot(path=str(shots / "page-mapping.png"), full_page=True)

    # 3. the keyboard: Tab to column I ("Eindruck", left unmapped) and type the item's id
    page.locator("#column-7").focus()
    tab_to(page, "column-8", 3)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.type("pgic", delay=50)
    assert page.locator("#column-8").input_value() == "pgic"

    # 4. the preview: the first rows as they will be converted
    tab_to(page, "date-format")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the form's first button: Preview
    assert page.locator("#column-8").input_value() == "pgic", "the choice is kept"
    preview = page.get_by_role("table", name="The first 4 rows")
    rows = [row.locator("td").all_inner_texts() for row in preview.locator("tbody tr").all()]
    assert [row[:5] for row in rows] == [
        ["5", "MA-001", "2025-01-10", "phq4, pain-nrs", "converted"],
        ["6", "MA-001", "2025-04-11", "phq4, pain-nrs, pgic", "converted"],
        ["7", "MA-002", "2025-01-15", "phq4, pain-nrs", "converted"],
        ["8", "MA-002", "2025-04-20", "phq4, pain-nrs, pgic", "converted"],
    ]
    page.locator("#preview").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "page-preview.png"))

    # 5. the contract for next time, before converting
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the contract").click()
    assert download.value.suggested_filename == "verlauf-2025-contract.yaml"
    text = Path(download.value.path()).read_text()
    assert yaml.safe_load(text)["columns"]["Eindruck"] == "pgic"
    contract_from_bytes(text.encode(), "verlauf-2025-contract.yaml", Settings())

    # 6. convert: the result, and the same contract kept with it
    button = page.get_by_role("button", name="Convert")
    button.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/results/" in page.url
    result_url = page.url
    counts = {name: page.inner_text(f"#rows-{name}") for name in ("read", "converted", "rejected")}
    assert counts == {"read": "4", "converted": "4", "rejected": "0"}
    page.screenshot(path=str(shots / "page-result.png"))
    with page.expect_download() as kept:
        page.get_by_role("link", name="Download this contract").click()
    assert Path(kept.value.path()).read_text() == text

    with page.expect_download() as output:
        page.get_by_role("link", name="Download verlauf-2025-transaction.zip").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(output.value.path()).read_bytes()))
    totals = {}
    for name in archive.namelist():
        if "/visit-" in name:
            for entry in json.loads(archive.read(name))["entry"]:
                resource = entry["resource"]
                codes = [c["code"] for c in resource.get("code", {}).get("coding", [])]
                if resource["resourceType"] == "Observation" and "70272-0" in codes:
                    day = resource["effectiveDateTime"][:10]
                    totals[day] = resource["valueQuantity"]["value"]
    assert totals == {"2025-01-10": 7, "2025-04-11": 3, "2025-01-15": 10, "2025-04-20": 5}

    # 7. a patient's report, and back to the result
    with page.expect_navigation():
        page.get_by_role("link", name="Follow-up report of MA-001").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Follow-up report: MA-001"
    page.screenshot(path=str(shots / "page-report.png"))
    with page.expect_navigation():
        page.get_by_role("link", name="All patients").click()
    assert page.url == result_url


def test_the_contract_help_and_the_template(page, server, shots):
    page.goto(server.url + "/")
    with page.expect_navigation():
        page.get_by_role("link", name="sheet contract").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Sheet contracts"
    example = page.locator("pre code").inner_text()
    contract = contract_from_bytes(example.encode(), "example.yaml", Settings())
    assert contract.decimal_comma and contract.header_rows == 2
    with page.expect_download() as download:
        page.get_by_role("link", name="the template (XLSX)").click()
    assert download.value.suggested_filename == "fms-fhir-template.xlsx"
    assert Path(download.value.path()).read_bytes()[:2] == b"PK"
