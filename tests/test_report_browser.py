"""The HTML report in a real headless browser: Debian's chromium driven by Playwright for Python.

The case report's follow-up is written with `write_reports`, opened through file://, and read
as a person would: the index links to the patient's page, which shows the case's values, the
responder flags and the test-data note, with both charts loaded and no request leaving the page.
A second patient, with the instruments added after the case (PHQ-9, GAD-7, PGIC, the 2010/2011
criteria), shows the PHQ-9 item 9 flag at the top of the page and in the index although the
PHQ-9 total is minimal.
Skipped with a clear message where no browser is installed (`apt-get install chromium`,
`pip install playwright`; never `playwright install`); a failure when FMS_FHIR_REQUIRE_REAL_PARTS
is set, as CI does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.report import load_resources, write_reports
from tests.support import SETTINGS
from tests.support.reports import PATIENT, new_instrument_resources

pytestmark = pytest.mark.slow  # a real browser


@pytest.fixture(scope="module")
def reports(case_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "reports"
    resources = [*load_resources(case_dir, SETTINGS), *new_instrument_resources()]
    write_reports(resources, out, SETTINGS)
    return out


def test_the_case_report_in_a_browser(browser, reports):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto((reports / "index.html").as_uri())
        assert page.title() == "Follow-up reports"
        link = page.get_by_role("link", name="MOSER-CASE-1")
        link.focus()
        page.keyboard.press("Enter")  # by keyboard, as a person without a mouse would
        page.wait_for_url("**/MOSER-CASE-1.html")
        assert page.get_attribute("html", "lang") == "en"
        assert page.get_by_role("heading", level=1).inner_text() == "Follow-up report: MOSER-CASE-1"

        changes = page.get_by_role("table").filter(has_text="Percent change")
        rows = {
            row.locator("th").inner_text(): row.locator("td").all_inner_texts()
            for row in changes.locator("tbody tr").all()
        }
        fiqr = rows["FIQR total"]
        assert fiqr[1].startswith("72.5") and fiqr[2].startswith("37.5")
        assert fiqr[3] == "\u221235" and fiqr[4] == "\u221248.3\u00a0%"
        assert "A fall of 14% or more" in fiqr[5] and "original FIQ" in fiqr[5]
        assert "Improved to a lower severity band" in fiqr[5]  # the band beside the 14%
        peak = rows["Pain, maximum"]
        assert peak[1].startswith("90") and peak[2] == "55" and peak[4] == "\u221238.9\u00a0%"
        assert "Moderate improvement" in peak[5]
        mean = rows["Pain, mean"]
        assert mean[1].startswith("70") and mean[2] == "30" and "Substantial improvement" in mean[5]
        assert rows["SSS"][1].startswith("9") and rows["SSS"][2] == "6"
        phq = rows["PHQ-4 total"]
        assert phq[1].startswith("7 moderate") and phq[2] == "5 mild"
        assert "Improved to a lower severity band" in phq[5]

        text = page.inner_text("main")
        assert "day 587 (19.3 months) on LDN; dose 4.5 mg/day" in text
        note = page.get_by_role("complementary").inner_text()
        assert "Test data" in note and "Data provenance" in note
        assert "the visit days and the 1.5 -> 3 -> 4.5 mg titration are invented" in text

        images = page.get_by_role("img").all()
        assert len(images) == 2
        for image in images:
            assert "MOSER-CASE-1" in image.get_attribute("alt")
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert "Dworkin" in page.inner_text("footer") and "Bennett" in page.inner_text("footer")
        outside = [url for url in requests if not url.startswith(("file:", "data:"))]
        assert outside == [], outside
    finally:
        page.close()


def test_the_item_9_flag_is_seen_first_in_a_browser(browser, reports):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto((reports / "index.html").as_uri())
        patients = page.get_by_role("table", name="Patients")
        row = patients.get_by_role("row").filter(has=page.get_by_role("link", name=PATIENT))
        flags = row.get_by_role("cell").nth(3)  # Flags for clinician review
        assert "Flag raised" in flags.inner_text() and "PHQ-9 item 9" in flags.inner_text()
        case = patients.get_by_role("row").filter(has=page.get_by_role("link", name="MOSER-CASE-1"))
        assert case.get_by_role("cell").nth(3).inner_text() == "none"

        link = page.get_by_role("link", name=PATIENT)
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/{PATIENT}.html")
        alert = page.get_by_role("region", name="Flag for clinician review")
        assert alert.is_visible()
        assert "PHQ-9 item 9 (self-harm thoughts)" in alert.inner_text()
        assert "raised on 2024-06-10" in alert.inner_text()
        first = page.locator("main > *").first
        assert first.get_attribute("aria-labelledby") == "flags"  # before everything else
        box = alert.bounding_box()
        assert box is not None and box["y"] < 900  # on the first screen, without scrolling

        values = page.get_by_role("table").filter(has_text="Score values by visit")
        headers = values.locator("thead th").all_inner_texts()
        assert headers.index("PHQ-9 item 9 (self-harm thoughts)") < headers.index("PHQ-9 total")
        follow = values.locator("tbody tr").filter(has_text="2024-06-10")
        cells = dict(zip(headers[1:], follow.locator("td").all_inner_texts(), strict=True))
        assert cells["PHQ-9 item 9 (self-harm thoughts)"] == "Flag raised 1"
        assert cells["PHQ-9 total"] == "1 minimal" and "Responder" in cells["PGIC"]

        changes = page.get_by_role("table").filter(has_text="Percent change")
        rows = {
            row.locator("th").inner_text(): row.locator("td").all_inner_texts()
            for row in changes.locator("tbody tr").all()
        }
        assert "Improved to a lower severity band" in rows["PHQ-9 total"][5]
        assert "Improved to a lower severity band" in rows["GAD-7 total"][5]
        assert "PGIC" not in rows and "PHQ-9 item 9 (self-harm thoughts)" not in rows
        outside = [url for url in requests if not url.startswith(("file:", "data:"))]
        assert outside == [], outside
    finally:
        page.close()
