"""The follow-up report shows what the declarations say: new instruments need no change in it.

A patient with PHQ-9, GAD-7, PGIC and ACR 2010/2011 Observations, converted here from answers
documents, gets those scores (PHQ-9 and GAD-7 with a band transition, the PGIC per visit with its
responder result and no change, the criteria as a yes/no result), and the PHQ-9 item 9 flag
opens the page even though the PHQ-9 total is minimal. A throwaway instrument declared in this
test, not in `mappings/`, is picked up by the report from its `report_label` alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from adapter import api, registry, report_codes
from adapter.formulas import ItemValue
from adapter.instrument import Code, Instrument, Item, Score
from adapter.report import (
    change_observations,
    chart_data,
    follow_up,
    render_report,
    write_reports,
)
from adapter.report.charts import PANELS, panel_scores
from adapter.report.core import shown_scores
from adapter.report.html import index_html
from adapter.report.rules import CATALOGUE, RULES, rule_of
from adapter.terminology import BANDS, bands, codesystem, local_codes
from tests.support import SETTINGS, assert_valid_fhir
from tests.support.reports import (
    PATIENT,
    changes_of,
    document,
    ldn,
    new_instrument_resources,
    obs,
    phq9,
)

PHQ9, GAD7, PGIC, FLAG, ACR2011 = (
    "44261-6",
    "70274-6",
    "pgic-score",
    "phq9-q9-flag",
    "acr2011-criteria",
)


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return new_instrument_resources()


@pytest.fixture(scope="module")
def report(resources):
    (found,) = follow_up(resources, SETTINGS)
    return found


# --- the new instruments ---------------------------------------------------------------------


def test_the_new_instruments_scores_are_in_the_report(report):
    codes = [series.code for series in report.series]
    for code in (PHQ9, GAD7, PGIC, FLAG, ACR2011, "wpi-score", "sss-score"):
        assert code in codes, code
    labels = {series.code: series.label for series in report.series}
    assert labels[PHQ9] == "PHQ-9 total" and labels[GAD7] == "GAD-7 total"
    assert labels[PGIC] == "PGIC"
    assert labels[ACR2011] == "ACR 2010/2011 survey criteria (self-report)"
    assert report.series_for(ACR2011).points[0].value is True
    assert report.baseline_day == date(2024, 1, 15)


def test_phq9_and_gad7_totals_get_their_individual_change_with_response_remission_and_band(
    report,
):
    """Issue: band transitions only. PHQ-9: 5 points (Lowe 2004), GAD-7: 4 (Toussaint 2020),
    response (a fall of 50% or more) and remission (below 5) beside the band transition."""
    (phq,) = changes_of(report, PHQ9)
    assert (phq.baseline.number, phq.follow_up.number) == (12, 1)
    assert (phq.band_from.code, phq.band_to.code) == ("moderate", "minimal")
    assert phq.category == report_codes.POINTS_IMPROVED and phq.rule.code == "phq9-change"
    assert phq.extras == (report_codes.RESPONSE, report_codes.REMISSION, report_codes.BAND_IMPROVED)
    assert "Kroenke 2001" in phq.explanation and "5 points" in phq.explanation
    (gad,) = changes_of(report, GAD7)
    assert (gad.baseline.number, gad.follow_up.number) == (11, 4)
    assert (gad.band_from.code, gad.band_to.code) == ("moderate", "minimal")
    assert gad.category == report_codes.POINTS_IMPROVED and "Spitzer 2006" in gad.explanation
    assert gad.extras == (report_codes.RESPONSE, report_codes.REMISSION, report_codes.BAND_IMPROVED)
    resources = change_observations(report, SETTINGS)
    compared = [r["component"][0]["valueCodeableConcept"]["coding"][0]["code"] for r in resources]
    assert sorted(compared) == sorted([PHQ9, GAD7])  # nothing for the PGIC, the flag, the criteria
    for resource in resources:
        assert_valid_fhir(resource)
        assert resource["method"]["coding"][0]["code"] in ("phq9-change", "gad7-change")
        found = [c["coding"][0]["code"] for c in resource["interpretation"]]
        assert found == ["individual-improvement", "B", "response", "remission-below-5"] + [
            "band-improved"
        ]


def test_the_pgic_is_shown_per_visit_with_its_responder_result_and_no_change(report):
    assert changes_of(report, PGIC) == [] and PGIC not in report.baselines
    series = report.series_for(PGIC)
    (point,) = series.points
    assert point.number == 2 and point.band.code == "positive"
    assert series.result(point) == report_codes.RESPONDER
    assert series.info.rule.code == "pgic-responder" and not series.info.rule.compares
    html = render_report(new_instrument_resources(), SETTINGS)
    assert '<span class="flag good">Responder</span>' in html
    assert 'id="rule-pgic-responder"' in html and "Hurst H, Bolton J" in html


def test_the_item_9_flag_opens_the_report_whatever_the_total(report, resources):
    (raised,) = report.flags
    series, point = raised
    assert series.code == FLAG and point.day == date(2024, 6, 10) and point.number == 1
    assert report.series_for(PHQ9).at(date(2024, 6, 10)).band.code == "minimal"
    assert changes_of(report, FLAG) == []
    html = render_report(resources, SETTINGS)
    alert = html.index('<section class="alert" aria-labelledby="flags">')
    assert alert < html.index('<h2 id="summary">')  # above everything else in the page
    assert "Flag for clinician review" in html and "thoughts of death or of self-harm" in html
    # the visits table: the flag's column comes first, highlighted where it is raised
    values = html[html.index('<h2 id="values">') :]
    head = values[: values.index("</thead>")]
    assert head.index("PHQ-9 item 9") < head.index("PHQ-9 total")
    assert '<td class="text flagged"><span class="flag bad">Flag raised</span> 1</td>' in values
    index = index_html([report], ["page.html"])
    assert "Flags for clinician review" in index and "Flag raised" in index
    assert "PHQ-9 item 9 (self-harm thoughts), last on" in index


def test_no_flag_no_alert():
    answers = document("phq9", "CALM-1", "2024-01-10", phq9(3, 3, 3, 3, 3, 3, 3, 3, 0))
    bundle = api.convert(answers, SETTINGS).bundle
    resources = [entry["resource"] for entry in bundle["entry"]]
    (report,) = follow_up(resources, SETTINGS)
    assert report.flags == () and report.series_for(PHQ9).points[0].band.code == "severe"
    html = render_report(resources, SETTINGS)
    assert 'class="alert"' not in html and "Flag raised" not in html
    assert "Flag raised" not in index_html([report], ["calm.html"])


def test_phq9_and_gad7_have_their_own_panel_c_with_the_item_9_flag_marked(report):
    """Issue: seven guide lines crowded panel (b); one panel per scale family."""
    _, panel_b, panel_c = chart_data(report)
    assert [line.code for line in panel_b.lines] == ["sss-score"]
    assert [line.code for line in panel_c.lines] == [PHQ9, GAD7]
    assert [line.label for line in panel_c.lines] == ["PHQ-9 total (0-27)", "GAD-7 total (0-21)"]
    assert panel_c.title == "(c) PHQ-9 and GAD-7"
    assert panel_c.ylim == (0.0, 27.0) and panel_c.ylabel == "Score (0-27)"
    assert len({(line.style.colour, line.style.marker) for line in panel_c.lines}) == 2
    guides = {guide.value: guide.label for guide in panel_c.guides}
    assert sorted(guides) == [5.0, 10.0, 15.0, 20.0]  # shared thresholds share one guide
    assert guides[15.0] == "PHQ-9: moderately severe, GAD-7: severe \u2265 15"
    (phq,) = [line for line in panel_c.lines if line.code == PHQ9]
    assert phq.points == ((date(2024, 1, 10), 12.0), (date(2024, 6, 10), 1.0))
    assert [(m.day, m.label) for m in panel_c.marks] == [
        (date(2024, 6, 10), "PHQ-9 item 9 raised (1)")
    ]
    assert "PHQ-9 item 9 raised (1) on 2024-06-10" in panel_c.alt


def _phq9_visits(*item9: int | None) -> list[dict[str, Any]]:
    """One PHQ-9 a month from 2024-01-10, items 1-8 at 1, item 9 as given (None: unanswered)."""
    resources = []
    for month, value in enumerate(item9, start=1):
        answers = phq9(1, 1, 1, 1, 1, 1, 1, 1)
        if value is not None:
            answers["phq9-q9"] = value
        else:
            answers.pop("phq9-q9", None)
        day = f"2024-{month:02d}-10"
        sent = document("phq9", "ITEM9-1", day, answers)
        sent["status"] = "completed" if value is not None else "stopped"  # item 9 skipped
        bundle = api.convert(sent, SETTINGS).bundle
        resources += [entry["resource"] for entry in bundle["entry"]]
    return resources


def test_item_9_answered_0_above_0_and_unanswered_in_the_report_table_chart_and_index():
    """Issue: an unanswered item 9 read as "no flag", a negative; now it is said everywhere."""
    resources = _phq9_visits(0, 2, None)
    (report,) = follow_up(resources, SETTINGS)
    series = report.series_for(FLAG)
    assert [p.number for p in series.points] == [0, 2, None]
    assert [(s.code, p.day) for s, p in report.flags] == [(FLAG, date(2024, 2, 10))]
    (unknown,) = report.unknown_flags
    assert unknown[1] == date(2024, 3, 10) and "not answered" in unknown[2]
    html = render_report(resources, SETTINGS)
    alert = html[html.index('<section class="alert"') : html.index("</section>")]
    assert "raised on" in alert and "<strong>not answered</strong> on" in alert
    values = html[html.index('<h2 id="values">') :]
    assert "not raised (answered 0)" in values
    assert '<span class="flag bad">Flag raised</span> 2' in values
    assert '<span class="flag bad">Not answered</span>' in values
    index = index_html([report], ["p.html"])
    assert "Flag raised" in index and "Not answered" in index
    marks = [m.label for data in chart_data(report) for m in data.marks]
    assert marks == ["PHQ-9 item 9 raised (2)", "PHQ-9 item 9 not answered"]


def test_an_older_output_without_the_item_9_observation_is_not_read_as_negative():
    """Outputs before this version sent the item 9 Observation only when raised: a visit with a
    PHQ-9 total and no item 9 Observation is unknown, never 'not raised'."""
    resources = [r for r in _phq9_visits(0) if "phq9-q9-flag" not in json.dumps(r.get("code", {}))]
    (report,) = follow_up(resources, SETTINGS)
    assert report.series_for(FLAG) is None
    html = render_report(resources, SETTINGS)
    assert "not raised" not in html


@pytest.mark.slow
def test_write_reports_of_the_new_instruments(resources, tmp_path):
    written = write_reports(resources, tmp_path / "out", SETTINGS)
    names = {path.name for path in written}
    assert f"{PATIENT}.html" in names and "index.html" in names
    assert "Flag raised" in (tmp_path / "out" / "index.html").read_text()


# --- the declarations drive the report -------------------------------------------------------


def test_every_shown_score_names_a_rule_and_a_known_panel():
    shown = shown_scores()
    assert shown and all(score.report_label for score in shown)
    declared = {s.code.code for s in registry.scores().values() if s.report_label}
    assert {score.code.code for score in shown} == declared
    for score in shown:
        assert rule_of(score) is CATALOGUE[rule_of(score).code]
    for key in PANELS:
        assert panel_scores(key)  # raises on a panel no layout declares
    # the rules that give results are in the CodeSystem, with the report's displays, and no
    # report code is also an instrument's or a band's code (the CodeSystem would merge them)
    concepts = {c["code"]: c["display"] for c in codesystem(SETTINGS)["concept"]}
    assert all(concepts[code] == display for code, display in report_codes.REPORT_CODES)
    assert {rule.code for rule in RULES} <= set(concepts)
    declared = {c.code for i in registry.instruments().values() for c in local_codes(i)}
    declared |= set(bands()) | set(BANDS)
    assert declared.isdisjoint(code for code, _ in report_codes.REPORT_CODES)


FATIGUE = Score(
    code=Code("fatigue-vas", "Fatigue, past week (0-10)"),
    value_type="integer",
    formula=ItemValue("fatigue-vas"),
    method="Fatigue: the patient's own rating, 0-10",
    low=0,
    high=10,
    report_label="Fatigue",
    report_rank=45,
    chart_panel="b",
)
THROWAWAY = Instrument(
    id="fatigue-throwaway",
    title="Fatigue, past week",
    version="0.0.1",
    description="Rate your fatigue over the past week.",
    items=(
        Item(
            link_id="fatigue-vas",
            text="Fatigue (0 = none, 10 = worst)",
            type="integer",
            code=Code("fatigue-vas", "Fatigue, past week (0-10)"),
            min_value=0,
            max_value=10,
        ),
    ),
    scores=(FATIGUE,),
)


@pytest.fixture
def throwaway(monkeypatch):
    """The registry with one more instrument, declared here and nowhere in `mappings/`."""
    known = dict(registry.instruments())
    monkeypatch.setattr(registry, "instruments", lambda: {**known, THROWAWAY.id: THROWAWAY})
    return THROWAWAY


def test_a_new_instrument_is_reported_from_its_declaration_alone(throwaway):
    resources = [
        ldn([("4.5", "2024-02-01", None)]),
        obs("fatigue-vas", "2024-01-20", 8),
        obs("sss-score", "2024-01-20", 9),
        obs("fatigue-vas", "2024-07-01", 5),
        obs("sss-score", "2024-07-01", 6),
    ]
    (report,) = follow_up(resources, SETTINGS)
    series = report.series_for("fatigue-vas")
    assert series is not None and series.label == "Fatigue"
    assert [s.code for s in report.series] == ["sss-score", "fatigue-vas"]  # by report_rank
    (change,) = changes_of(report, "fatigue-vas")  # no bands: change only
    assert change.change == -3 and change.rule.code == "change-only" and change.category is None
    (resource,) = [
        o
        for o in change_observations(report, SETTINGS)
        if o["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "fatigue-vas"
    ]
    assert_valid_fhir(resource)
    _, panel_b = chart_data(report)
    assert [line.code for line in panel_b.lines] == ["sss-score", "fatigue-vas"]
    assert panel_b.lines[1].label == "Fatigue (0-10)"
    assert panel_b.title == "(b) Symptom severity (SSS) and Fatigue"
    html = render_report(resources, SETTINGS)
    assert '<th scope="col">Fatigue</th>' in html and "Fatigue: the patient" in html


def test_a_rule_or_a_panel_the_report_does_not_know_is_a_clear_error(monkeypatch):
    known = dict(registry.instruments())

    def declare(**fields: Any) -> None:
        instrument = replace(THROWAWAY, scores=(replace(FATIGUE, **fields),))
        monkeypatch.setattr(registry, "instruments", lambda: {**known, instrument.id: instrument})

    declare(report_change="no-such-rule")
    with pytest.raises(ValueError, match="report_change 'no-such-rule'.*known: immpact-pain"):
        follow_up([obs("fatigue-vas", "2024-01-20", 8)], SETTINGS)
    declare(chart_panel="z")
    (report,) = follow_up([obs("fatigue-vas", "2024-01-20", 8)], SETTINGS)
    with pytest.raises(ValueError, match="chart_panel 'z' is not a panel; known: a, b"):
        chart_data(report)
