"""The report made faster (issue 22) says exactly what it said before: the report's code before
the change is kept in benchmarks/report_baseline/, and every file of today's report (HTML, PNG,
SVG, the changes Bundle, the index) must say what the baseline's says, on generated patients, on
the bundled case report and on the PHQ-9/GAD-7 patient (panel c, the flag): the same bytes but
for the charts, which are now drawn without matplotlib from the same data."""

from __future__ import annotations

import filecmp
import io
import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from adapter.outputs import MARKER
from adapter.report import charts, load_resources, usecases
from adapter.report import core as fast
from adapter.sheets.contract import default_contract
from adapter.sheets.output import NdjsonStreamSink
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from benchmarks import report_bench
from benchmarks.report_baseline import core as before
from benchmarks.report_baseline import usecases as baseline
from tests.support import SETTINGS
from tests.support.reports import ldn, new_instrument_resources, obs


def _ndjson(sheet: Path) -> list[dict[str, Any]]:
    stream = io.BytesIO()
    with open(sheet, "rb") as handle:
        run_pipeline(
            handle, sheet.name, default_contract(), NdjsonStreamSink(stream, SETTINGS), SETTINGS
        )
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> list[dict[str, Any]]:
    """Two synthetic patients (the benchmark's generator), four weekly visits each, with
    the LDN courses a missing dose starts and ends."""
    folder = tmp_path_factory.mktemp("cohort")
    return _ndjson(report_bench.cohort_sheet(folder / "cohort.csv", 2, 4))


@pytest.fixture(scope="module")
def long_history(tmp_path_factory) -> list[dict[str, Any]]:
    """One synthetic patient with 60 daily visits."""
    folder = tmp_path_factory.mktemp("long")
    return _ndjson(report_bench.long_sheet(folder / "long.csv", 60))


def _inputs(name: str, request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    if name == "case":
        return list(load_resources(request.getfixturevalue("case_dir"), SETTINGS))
    if name == "phq9-gad7":
        return new_instrument_resources()
    return request.getfixturevalue(name)


INPUTS = ("cohort", "long_history", "case", "phq9-gad7")


@pytest.mark.parametrize("name", INPUTS)
def test_the_report_of_every_patient_is_the_baselines(name, request):
    """The core's result, field by field (the charts and the page are drawn from it)."""
    resources = _inputs(name, request)
    ours = fast.follow_up(resources, SETTINGS)
    theirs = before.follow_up(resources, SETTINGS)
    assert [r.patient.label for r in ours] == [r.patient.label for r in theirs]
    for mine, old in zip(ours, theirs, strict=True):
        assert repr(mine) == repr(old)
        assert repr((mine.flags, mine.unknown_flags)) == repr((old.flags, old.unknown_flags))
    listed = fast.patients(resources, SETTINGS)
    assert [(p.key, visits) for p, visits in listed] == [
        (r.patient.key, len(r.visits)) for r in theirs
    ]


@pytest.mark.slow  # every chart drawn by both (matplotlib: 10 to 20 s)
@pytest.mark.parametrize("name", INPUTS)
def test_every_report_file_says_what_the_baselines_says(name, request, tmp_path):
    """The same files, the same bytes but for the charts; the charts drawn from the same data."""
    resources = _inputs(name, request)
    ours = usecases.write_reports(resources, tmp_path / "ours", SETTINGS, png=True)
    theirs = baseline.write_reports(resources, tmp_path / "theirs", SETTINGS)
    assert [p.name for p in ours] == [p.name for p in theirs]
    assert {p.suffix for p in ours} >= {".html", ".png", ".svg", ".json"}
    compared, differ = report_bench.same_content(tmp_path / "ours", tmp_path / "theirs")
    assert compared == len(ours) + 1 and not differ  # + the folder's marker
    assert report_bench.chart_data_differences(resources) == []
    for path in ours:
        if path.suffix == ".json" or path.name == "index.html":
            assert filecmp.cmp(path, tmp_path / "theirs" / path.name, shallow=False)


def test_the_content_check_sees_a_changed_page_and_a_changed_chart(case_dir, tmp_path, monkeypatch):
    """The check the benchmark relies on is not blind: a word changed in a page, a chart image
    more, or a point moved in the data each make it fail."""
    resources = list(load_resources(case_dir, SETTINGS))
    usecases.write_reports(resources, tmp_path / "a", SETTINGS)
    usecases.write_reports(resources, tmp_path / "b", SETTINGS)
    assert report_bench.same_content(tmp_path / "a", tmp_path / "b")[1] == []
    page = tmp_path / "b" / "MOSER-CASE-1.html"
    text = page.read_bytes()
    page.write_bytes(text.replace(b"<h1>", b"<h1>x", 1))
    assert report_bench.same_content(tmp_path / "a", tmp_path / "b")[1] == ["MOSER-CASE-1.html"]
    chart = text.index(b'<img src="data:image/svg+xml;base64,')
    page.write_bytes(text[:chart] + text[chart : text.index(b">", chart) + 1] + text[chart:])
    assert report_bench.same_content(tmp_path / "a", tmp_path / "b")[1] == ["MOSER-CASE-1.html"]
    assert report_bench.chart_data_differences(resources) == []
    original = charts.chart_data

    def one_point_moved(report):
        first, *rest = original(report)
        line = first.lines[0]
        (day, value), *points = line.points
        moved = replace(line, points=((day, (value or 0) + 1), *points))
        return (replace(first, lines=(moved, *first.lines[1:])), *rest)

    monkeypatch.setattr(charts, "chart_data", one_point_moved)
    assert report_bench.chart_data_differences(resources) == ["MOSER-CASE-1"]


# --- texts made once a page, against the baseline that made each again ----------------------

SCORE_VALUES = {
    "fiqr-total": st.sampled_from([0, 38.9, 39, 58.99, 59, 72.5, 100, 101]),
    "pain-mean": st.sampled_from([0, 30, 70, 90]),
    "44261-6": st.sampled_from([0, 4, 5, 9, 10, 27]),  # PHQ-9: points, response, remission
    "phq9-q9-flag": st.sampled_from([0, 1, 3]),  # a flag, its own column
    "pgic-score": st.sampled_from([1, 5, 6, 7]),  # a per-visit result
    "70272-0": st.sampled_from([0, 2, 3, 6, 9, 12]),  # PHQ-4 bands
    "acr2016-criteria": st.booleans(),  # a yes or no, never the number 1
}


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A patient's visits where the same values come back with other statuses, origins and
    gaps: what the page's remembered texts must tell apart."""
    days = draw(st.lists(st.dates(date(2020, 1, 1), date(2020, 12, 31)), min_size=1, max_size=12))
    resources = []
    for n, day in enumerate(sorted(set(days))):
        for code in draw(st.lists(st.sampled_from(sorted(SCORE_VALUES)), min_size=1, unique=True)):
            gap = draw(st.sampled_from([None, None, None, "asked, not answered"]))
            value = None if gap else draw(SCORE_VALUES[code])
            status = draw(st.sampled_from(["final", "final", "amended", "preliminary"]))
            resource = obs(
                code, day.isoformat(), value, absent=gap, status=status, oid=f"o{n}{code}"
            )
            if draw(st.booleans()):
                resource["method"] = {
                    "coding": [{"system": SETTINGS.codesystem_url, "code": "reported"}]
                }
            resources.append(resource)
    if draw(st.booleans()):
        start = draw(st.dates(date(2019, 12, 1), date(2020, 12, 31))).isoformat()
        resources.append(ldn([("4.5", start, None)]))
    return resources


def _page_without_charts(module: Any, report: Any, patched: pytest.MonkeyPatch) -> str:
    """The page with each chart a placeholder (charts are compared by their data elsewhere)."""
    patched.setattr(module, "_figure", lambda data: f"(chart {data.panel})")
    return module.report_html(report)


@hypothesis_settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from([None, "2020-06-01"]))
def test_the_page_says_what_the_baseline_says_for_any_repeated_values(resources, day):
    """Texts are made once a page and found again by what they show: the same value with
    another status, origin, band or a gap, and a yes beside the number 1, keep their own."""
    from adapter.report import html as ours
    from benchmarks.report_baseline import html as theirs

    mine = fast.follow_up(resources, SETTINGS, baseline=day)
    old = before.follow_up(resources, SETTINGS, baseline=day)
    with pytest.MonkeyPatch.context() as patched:
        for report, report_before in zip(mine, old, strict=True):
            assert _page_without_charts(ours, report, patched) == _page_without_charts(
                theirs, report_before, patched
            )


# --- the pieces made linear, against what they replaced ----------------------------------------

DAYS = st.dates(date(2020, 1, 1), date(2020, 3, 1))


@st.composite
def phases(draw: st.DrawFn) -> tuple[fast.DosePhase, ...]:
    found = []
    for start in draw(st.lists(DAYS, max_size=8)):
        length = draw(st.none() | st.integers(0, 40))
        end = None if length is None else start + timedelta(days=length)
        found.append(fast.DosePhase(start, end, Decimal(draw(st.integers(1, 9))) / 2))
    return tuple(sorted(found, key=lambda p: (p.start, p.end or date.max)))


@hypothesis_settings(max_examples=80, deadline=None)
@given(phases(), st.lists(DAYS, max_size=30, unique=True).map(sorted))
def test_the_dose_of_each_visit_is_that_of_the_first_phase_containing_it(found, days):
    expected = [next((p.dose_mg for p in found if p.contains(day)), None) for day in days]
    assert fast._doses(found, days) == expected


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(
        st.characters(codec=None, exclude_categories=["Cs"]) | st.sampled_from("\ud800\udfff")
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@hypothesis_settings(max_examples=80, deadline=None)
@given(JSON_VALUES)
def test_lone_surrogates_are_replaced_as_before(value):
    assert fast.scrub(value) == before.scrub(value)
    assert repr(fast.scrub(value)) == repr(before.scrub(value))


NUMBERS = (
    st.floats()
    | st.integers(-(2**70), 2**70)
    | st.booleans()
    | st.decimals(allow_nan=True, places=14)
    | st.sampled_from([0.0, -0.0, 1, 1.0, True, 10**15, 1e15, 0.1 + 0.2])
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(NUMBERS, min_size=1, max_size=6))
def test_numbers_remembered_are_read_as_before(values):
    """A float or an int is converted once and remembered: read again, alone or after an equal
    value of another type (1 after 1.0 and True), it is what the baseline reads."""
    for value in values + values[::-1]:
        assert repr(fast.exact(value)) == repr(before.exact(value))


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_000_000))
def test_months_on_ldn_in_integers_are_the_fractions_rounding(days):
    from adapter.report import html

    assert html._months(days) == fast.number_text(Fraction(days) / fast.DAYS_PER_MONTH, 1)


@pytest.mark.slow  # three patients' charts drawn twice
def test_report_jobs_writes_the_same_files_as_one_process(cohort, tmp_path):
    """`fms-fhir report --png --jobs 2`: patients drawn in two processes, the same files, the
    same order of names, the same bytes; `--jobs 0` takes every usable core; without `--png` (the
    default) the same files but the PNGs."""
    from click.testing import CliRunner

    from adapter.cli import main

    source = tmp_path / "cohort.ndjson"
    source.write_text("".join(json.dumps(resource) + "\n" for resource in cohort))
    outputs = {}
    for jobs in ("1", "2", "0"):
        arguments = ["report", str(source), "--out", str(tmp_path / jobs), "--jobs", jobs, "--png"]
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, result.output
        outputs[jobs] = sorted(p.name for p in (tmp_path / jobs).iterdir())
    assert outputs["1"] == outputs["2"] == outputs["0"]
    assert "index.html" in outputs["1"] and len(outputs["1"]) == 2 * 4 + 2  # + index, marker
    for jobs in ("2", "0"):
        compared, differ = report_bench.same_folders(tmp_path / "1", tmp_path / jobs)
        assert compared == len(outputs["1"]) and not differ
    for lean, extra in ((tmp_path / "default", []), (tmp_path / "no-png", ["--no-png"])):
        arguments = ["report", str(source), "--out", str(lean), "--jobs", "2", *extra]
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, result.output
        kept = sorted(p.name for p in lean.iterdir())
        assert kept == [name for name in outputs["1"] if not name.endswith(".png")]
        same = [n for n in kept if n != MARKER]  # the marker lists what each run wrote
        assert all(filecmp.cmp(lean / n, tmp_path / "1" / n, shallow=False) for n in same)


def test_an_error_in_a_worker_comes_back_whole(cohort, tmp_path, monkeypatch):
    """An error raised while drawing a patient in a worker reaches the caller as the same
    error (its issues and status), and nothing is written."""
    from adapter.model import Issue
    from adapter.outcome import InternalFault

    def broken(report, stem, settings, files):
        raise InternalFault([Issue("error", "invariant", f"cannot draw {stem}", None)], 500)

    monkeypatch.setattr(usecases, "_patient_files", broken)
    with pytest.raises(InternalFault) as raised:
        usecases.write_reports(cohort, tmp_path / "out", SETTINGS, jobs=2)
    assert raised.value.status == 500
    assert raised.value.issues[0].message.startswith("cannot draw SYNTH-")
    assert not (tmp_path / "out").exists()


def test_a_worker_killed_ends_the_run_with_an_outcome_and_nothing_written(
    cohort, tmp_path, monkeypatch
):
    """A worker the system kills (out of memory, say) ends the run with `worker-ended`
    (exit 5), never a wait without end; nothing is written."""
    import os
    import signal

    from adapter.outcome import InternalFault

    def killed(report, stem, settings, files):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(usecases, "_patient_files", killed)
    with pytest.raises(InternalFault) as raised:
        usecases.write_reports(cohort, tmp_path / "out", SETTINGS, jobs=2)
    assert [issue.rule for issue in raised.value.issues] == ["worker-ended"]
    assert raised.value.exit_code == 5
    assert not (tmp_path / "out").exists()
