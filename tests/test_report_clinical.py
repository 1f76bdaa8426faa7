"""The report's clinical wording and its robustness (issues "said as a clinician would say it"
and "the report must answer for any input").

Robustness: numbers of any size (1e308, 1e4300, 9e9999999999 once held a worker), dates at the
ends of the calendar, lone surrogates in a patient id or a note: the report answers, in bounded
time, with the value read as a gap and a warning. Clinical wording: a baseline older than the
window is named, typed totals are marked `reported`, the survey criteria say what they are,
the PGIC summary never reads "no change" for a responder, computed totals show the project's
label, the PHQ-2 and GAD-2 screens carry v3 POS / NEG.
"""

from __future__ import annotations

import string
import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import api, jsonio
from adapter.report import change_observations, chart_data, follow_up, render_report
from adapter.report.core import exact
from adapter.report.drawing import draw
from adapter.report.html import index_html
from adapter.web import create_app
from tests.support import SETTINGS, assert_valid_fhir
from tests.support.reports import document, ldn, new_instrument_resources, obs

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
HUGE = [1e308, Decimal("1e4300"), Decimal("9e9999999999"), Decimal("-9e9999999999")]
TINY = [Decimal("1e-9999999999"), 5e-324]


# --- numbers, dates and text of any kind -----------------------------------------------------


@pytest.mark.parametrize("value", HUGE)
def test_a_huge_number_is_a_gap_with_a_warning_in_bounded_time(value):
    started = time.monotonic()
    resources = [obs("pain-mean", "2024-01-01", 70), obs("pain-mean", "2024-03-01", value)]
    (report,) = follow_up(resources, SETTINGS)
    (change,) = report.changes
    assert change.follow_up.value is None and change.change is None
    assert any("out of range" in warning for warning in report.warnings)
    assert change_observations(report, SETTINGS) == []
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("value", TINY)
def test_a_tiny_number_is_read_to_12_places(value):
    assert exact(value) == 0
    (report,) = follow_up([obs("pain-mean", "2024-01-01", value)], SETTINGS)
    assert report.series[0].points[0].number == 0


def test_a_value_outside_the_scores_range_is_no_value():
    resources = [obs("pain-mean", "2024-01-01", 70), obs("pain-mean", "2024-03-01", 101)]
    (report,) = follow_up(resources, SETTINGS)
    assert report.series[0].points[1].absent == "101 is outside the score's range 0-100"
    assert any("101 is outside" in warning for warning in report.warnings)


@pytest.mark.slow
def test_dates_at_the_ends_of_the_calendar_are_charted_and_tabled():
    resources = [
        obs("pain-mean", "0001-01-01", 70),
        obs("pain-mean", "1900-01-01", 50),
        obs("pain-mean", "2100-12-31", 40),
        obs("pain-mean", "9999-12-31", 30),
        ldn([("4.5", "0001-01-02", "9999-12-31")]),
    ]
    html = render_report(resources, SETTINGS)
    assert '<time datetime="0001-01-01">' in html and '<time datetime="9999-12-31">' in html
    (report,) = follow_up(resources, SETTINGS)
    panels = chart_data(report)
    assert panels[0].xlim == (date.min, date.max)
    assert draw(panels, "png").startswith(b"\x89PNG")


def test_a_lone_surrogate_in_the_patient_id_and_a_note_gives_a_utf8_page():
    patient = "P\ud800-\udfff"
    resources = [
        obs("pain-mean", "2024-01-01", 70, patient=patient),
        obs("pain-mean", "2024-03-01", 30, patient=patient),
    ]
    resources[0]["note"] = [{"text": "typed \udc80 by hand"}]
    html = render_report(resources, SETTINGS)
    html.encode("utf-8")
    assert "P\ufffd-\ufffd" in html and "typed \ufffd by hand" in html
    (report,) = follow_up(resources, SETTINGS, patient=patient)
    jsonio.dumps(change_observations(report, SETTINGS))
    index_html([report], ["p.html"]).encode("utf-8")


def statement(patient: str, phases: list[tuple[str, date]]) -> dict[str, Any]:
    """An LDN MedicationStatement written by hand: any dates, even overlapping ones."""
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "low-dose naltrexone"},
        "subject": {"identifier": {"system": "urn:example:mrn", "value": patient}},
        "dosage": [
            {
                "timing": {"repeat": {"boundsPeriod": {"start": day.isoformat()}}},
                "doseAndRate": [{"doseQuantity": {"value": Decimal(dose), "code": "mg"}}],
            }
            for dose, day in phases
        ],
    }


NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([*HUGE, *TINY]),
)
DAYS = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
TEXT = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=12)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(
        st.tuples(st.sampled_from(["pain-mean", "fiqr-total", "44261-6"]), DAYS, NUMBERS),
        min_size=1,
        max_size=6,
    ),
    patient=TEXT.filter(bool),
    phases=st.lists(st.tuples(st.sampled_from(["1.5", "4.5"]), DAYS), max_size=2),
)
def test_any_numbers_dates_and_ids_give_a_report(points, patient, phases):
    """Property: whatever the values, dates and ids, the report's data, its change Observations,
    its index and its chart data are made, and serialize as UTF-8 JSON and HTML."""
    resources: list[dict[str, Any]] = [
        obs(code, day.isoformat(), value, patient=patient, oid=f"o{n}")
        for n, (code, day, value) in enumerate(points)
    ]
    if phases:
        resources.append(statement(patient, phases))
    for report in follow_up(resources, SETTINGS):
        jsonio.dumps(change_observations(report, SETTINGS))
        index_html([report], ["p.html"]).encode("utf-8")
        for data in chart_data(report):
            assert data.xlim[0] <= data.xlim[1]
            assert all(
                v is None or data.ylim[0] <= v <= data.ylim[1]
                for line in data.lines
                for _, v in line.points
            )


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(NUMBERS, min_size=2, max_size=3),
    days=st.lists(DAYS, min_size=2, max_size=3, unique=True),
    patient=st.text(alphabet=string.printable + "\ud800\udfff\u00e9", min_size=1, max_size=8),
)
def test_any_input_renders_a_page_and_both_charts(values, days, patient):
    resources = [
        obs("pain-max", day.isoformat(), value, patient=patient)
        for day, value in zip(days, values, strict=False)
    ]
    render_report(resources, SETTINGS).encode("utf-8")
    for report in follow_up(resources, SETTINGS):
        assert draw(chart_data(report), "png").startswith(b"\x89PNG")


@pytest.mark.parametrize("value", ["9e9999999999", "1e4300", "1e308"])
def test_the_service_answers_huge_numbers_without_hanging(value):
    client = create_app({"FMS_FHIR_CANONICAL_BASE": SETTINGS.canonical_base}).test_client()
    body = (
        '{"resourceType":"Bundle","type":"collection","entry":['
        + ",".join(
            '{"resource":'
            + jsonio.dumps(obs("pain-mean", day, 50))
            .decode()
            .replace('"value": 50', f'"value": {v}')
            + "}"
            for day, v in (("2024-01-01", "70"), ("2024-03-01", value))
        )
        + "]}"
    )
    started = time.monotonic()
    response = client.post(
        "/$report",
        data=body,
        content_type="application/fhir+json",
        headers={"Accept": "application/fhir+json"},
    )
    assert response.status_code == 200, response.data[:300]
    assert time.monotonic() - started < 10
    assert response.get_json(force=True)["resourceType"] == "Bundle"


# --- clinical wording --------------------------------------------------------------------------


def test_a_baseline_older_than_the_window_is_named_in_the_page_and_the_observation():
    resources = [
        ldn([("4.5", "2023-09-01", None)]),
        obs("pain-mean", "2019-05-01", 80),
        obs("pain-mean", "2024-01-01", 40),
        obs("pain-max", "2023-08-20", 90),
        obs("pain-max", "2024-01-01", 50),
    ]
    (report,) = follow_up(resources, SETTINGS)
    assert len(report.cautions) == 1 and report.stale("pain-mean") is not None
    assert "2019-05-01" in report.cautions[0] and "more than the 30 days" in report.cautions[0]
    assert report.stale("pain-max") is None  # 12 days: within the window
    html = render_report(resources, SETTINGS)
    assert "Old baseline" in html and "1584 days before 2023-09-01" in html
    changes = {
        o["component"][0]["valueCodeableConcept"]["coding"][0]["code"]: o
        for o in change_observations(report, SETTINGS)
    }
    assert "2019-05-01" in changes["pain-mean"]["note"][0]["text"]
    assert "note" not in changes["pain-max"]
    wider = SETTINGS.with_(baseline_max_days=3650)
    assert follow_up(resources, wider)[0].cautions == ()
    assert follow_up(resources, SETTINGS.with_(baseline_max_days=0))[0].cautions == ()


def test_typed_totals_are_marked_reported_and_get_no_item_formula():
    typed = obs("fiqr-total", "2024-01-01", 72.5)
    typed["method"] = {"coding": [{"system": SETTINGS.codesystem_url, "code": "reported"}]}
    computed = obs("fiqr-total", "2024-06-01", 37.5)
    html = render_report([typed, computed], SETTINGS)
    assert 'title="a total typed from a sheet, not computed">reported</span>' in html
    footer = html[html.index("<h3>How each score is computed</h3>") :]
    assert "The values of 2024-01-01 are typed as a total from a sheet" in footer
    only_typed = render_report([typed], SETTINGS)
    footer = only_typed[only_typed.index("<h3>How each score is computed</h3>") :]
    assert "every value is typed as a total from a sheet" in footer
    assert "sum(F1..F9)" not in footer and "function + overall impact" not in footer


def test_computed_totals_show_the_projects_label_and_reported_ones_say_so():
    bundle = api.convert(
        document("phq9", "L1", "2024-01-10", {f"phq9-q{n}": 1 for n in range(1, 10)}), SETTINGS
    ).bundle
    total = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "44261-6"
    )
    assert total["code"]["text"] == "PHQ-9 total score"
    assert total["code"]["coding"][0]["display"].endswith("[Reported]")  # LOINC's own name


def test_the_phq2_and_gad2_screens_carry_the_standard_interpretation():
    answers = {"phq4-nervous": 2, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1}
    bundle = api.convert(document("phq4", "S1", "2024-01-10", answers), SETTINGS).bundle
    assert_valid_fhir(bundle)
    found = {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    anxiety = found["phq4-anxiety"]["interpretation"][0]["coding"]
    depression = found["55758-7"]["interpretation"][0]["coding"]
    assert [c["code"] for c in anxiety] == ["positive", "POS"] and anxiety[1]["system"] == V3
    assert [c["code"] for c in depression] == ["negative", "NEG"]
    bands = found["70272-0"]["interpretation"][0]["coding"]
    assert [c["code"] for c in bands] == ["mild"]  # total 5: no standard code of that meaning


def test_the_survey_criteria_say_what_they_are():
    resources = new_instrument_resources()
    criteria = next(
        r
        for r in resources
        if r["resourceType"] == "Observation"
        and r["code"]["coding"][0]["code"] == "acr2011-criteria"
    )
    assert criteria["code"]["text"].startswith("ACR 2010/2011 fibromyalgia survey criteria met")
    assert "no other disorder explains the pain is not assessed" in criteria["code"]["text"]
    html = render_report(resources, SETTINGS)
    assert "survey criteria met" in html and ">met<" not in html


def test_the_pgic_summary_never_reads_no_change_for_a_responder():
    html = render_report(new_instrument_resources(), SETTINGS)
    summary = html[
        html.index('<h2 id="summary">') : html.index("</section>", html.index('<h2 id="summary">'))
    ]
    line = next(part for part in summary.split("<li>") if part.startswith("PGIC"))
    assert "Responder" in line and "no change" not in line.lower()
    assert "rating of change since treatment began" in line


def test_the_gad7_difficulty_item_is_coded_69722_7():
    from adapter import registry

    item = registry.get("gad7").item_index["gad7-difficulty"]
    assert (item.code.system, item.code.code) == ("http://loinc.org", "69722-7")
    assert item.code == registry.get("phq9").item_index["phq9-difficulty"].code
