"""The page for people in a real headless browser, against the real service.

The service runs under gunicorn (two sync workers sharing one page folder, as in production), and
Debian's chromium is driven by Playwright for Python: a person who uses only the keyboard opens
`/`, tabs to the file control, chooses the case report's sheet, picks the output, submits, reads
the row counts, downloads the zip and opens the patient's follow-up report, which shows the case's
values. A CSV with bad rows shows each row, column and reason in the table. No request may leave
the service. Skipped with a clear message where no browser (or gunicorn) is installed; a failure
when FMS_FHIR_REQUIRE_REAL_PARTS is set, as CI does.

The result page is photographed to /tmp/page.png (override with FMS_FHIR_PAGE_SCREENSHOT).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import skip_or_fail
from tests.support.web_server import Server, gunicorn_server

pytestmark = pytest.mark.slow  # a real browser against the service under gunicorn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCREENSHOT = Path(os.environ.get("FMS_FHIR_PAGE_SCREENSHOT", "/tmp/page.png"))
BAD_CSV = (
    "patient_id,visit_date,ldn_dose_mg,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    "BROWSER-1,2025-01-10,,2,2,1,2\n"
    "BROWSER-1,2025-04-10,4.5,1,1,1,1\n"
    "BROWSER-2,2025-04-11,,1,2,9,1\n"
    "BROWSER-3,31.02.2025,,1,1,1,1\n"
)
"""Row 4: a PHQ-4 answer out of range; row 5: a date that does not exist."""


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
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page.requests = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.requests.append(request.url))  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        outside = [
            url
            for url in page.requests  # type: ignore[attr-defined]
            if not url.startswith((server.url + "/", "data:", "blob:", "about:"))
        ]
        page.close()
        assert outside == [], f"requests left the service: {outside}"


def tab_to(page, element_id: str, limit: int = 15) -> None:
    """Press Tab until the element with this id has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


def focus_ring(page) -> str:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")


def choose_file_by_keyboard(page, path: Path, choosers: list) -> None:
    """Space on the focused file control opens the chooser; the test answers it."""
    page.keyboard.press("Space")
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(100)
    assert choosers, "Space on the file control opened no file chooser"
    choosers.pop().set_files(str(path))


def test_upload_the_case_sheet_by_keyboard_and_open_the_report(page, server):
    # Intercepting the file chooser is switched on by the first listener, without waiting for
    # the browser to confirm it: a listener registered just before the key press can miss the
    # dialog on a busy machine, so this one is registered before the page is even opened.
    choosers: list = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.goto(server.url + "/")
    assert page.get_attribute("html", "lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Convert a spreadsheet to FHIR"

    tab_to(page, "file")
    assert focus_ring(page) == "solid", "the focus is visible"
    choose_file_by_keyboard(page, EXAMPLES / "case-report-followup.xlsx", choosers)
    assert page.evaluate("document.getElementById('file').files[0].name") == (
        "case-report-followup.xlsx"
    )

    tab_to(page, "format-transaction")  # past the contract: the template's headers are used
    page.keyboard.press("ArrowDown")  # a radio group: arrows choose
    assert page.is_checked("#format-patient")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Convert"
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert page.get_by_role("heading", level=1).inner_text() == (
        "Converted: case-report-followup.xlsx"
    )
    counts = {name: page.inner_text(f"#rows-{name}") for name in ("read", "converted", "rejected")}
    assert counts == {"read": "7", "converted": "7", "rejected": "0"}
    assert "No row was rejected." in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    download_link = page.get_by_role("link", name="Download case-report-followup-patient.zip")
    download_link.focus()
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    data = Path(download.value.path()).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == [
        "case-report-followup-patient/patient-MOSER-CASE-1.json",
        "case-report-followup-patient/row-report.json",
    ]

    link = page.get_by_role("link", name="Follow-up report of MOSER-CASE-1")
    link.focus()
    assert focus_ring(page) == "solid"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/patients/1")
    assert page.get_by_role("heading", level=1).inner_text() == "Follow-up report: MOSER-CASE-1"
    changes = page.get_by_role("table").filter(has_text="Percent change")
    rows = {
        row.locator("th").inner_text(): row.locator("td").all_inner_texts()
        for row in changes.locator("tbody tr").all()
    }
    fiqr = rows["FIQR total"]
    assert fiqr[1].startswith("72.5") and fiqr[2].startswith("37.5") and fiqr[3] == "\u221235"
    peak = rows["Pain, maximum"]
    assert peak[1].startswith("90") and peak[2] == "55"
    mean = rows["Pain, mean"]
    assert mean[1].startswith("70") and mean[2] == "30"
    for image in page.get_by_role("img").all():
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")

    # the result is kept: any worker answers for it, and Back shows it again
    page.go_back()
    assert page.inner_text("#rows-converted") == "7"


def test_rejected_rows_are_listed_with_row_column_and_reason(page, server, tmp_path):
    sheet = tmp_path / "visits-with-errors.csv"
    sheet.write_text(BAD_CSV)
    page.goto(server.url + "/")
    page.set_input_files("#file", str(sheet))
    page.get_by_label("NDJSON (FHIR Bulk Data)").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Convert").click()

    counts = {name: page.inner_text(f"#rows-{name}") for name in ("read", "converted", "rejected")}
    assert counts == {"read": "4", "converted": "2", "rejected": "2"}
    assert "2 rows were not converted" in page.inner_text("main")
    table = page.get_by_role("table", name="Rows not converted")
    header = table.locator("thead th").all_inner_texts()
    assert header == ["Row", "Column", "Reason"]
    rows = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
    assert [row[:2] for row in rows] == [["4", 'F "phq4-interest"'], ["5", 'B "visit_date"']]
    assert "phq4-interest: 9 is not one of the options" in rows[0][2]
    assert "31.02.2025" in rows[1][2]

    # BROWSER-1 converted, with a report; the download is the NDJSON files
    patients = page.get_by_role("table", name="Follow-up reports")
    assert patients.locator("tbody th").all_inner_texts() == ["BROWSER-1"]
    with page.expect_download() as download:
        page.get_by_role("link", name="Download visits-with-errors-ndjson.zip").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert "visits-with-errors-ndjson/Observation.ndjson" in archive.namelist()
    report = json.loads(archive.read("visits-with-errors-ndjson/row-report.json"))
    assert "rejected 2" in report["issue"][0]["diagnostics"]
    with page.expect_navigation():
        page.get_by_role("link", name="Follow-up report of BROWSER-1").click()
    assert "Follow-up report: BROWSER-1" in page.inner_text("h1")
