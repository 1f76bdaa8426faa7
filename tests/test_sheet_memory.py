"""A sheet converts in about the same memory at any length: what is kept per visit is a few
bytes, and the XLSX reader keeps nothing per row it has read."""

from __future__ import annotations

import csv
import gc
import io
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import iterparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from adapter.sheets.contract import default_contract
from adapter.sheets.output import SINKS
from adapter.sheets.pipeline import Visits
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from adapter.sheets.readers import _rows_released, read_xlsx
from tests.support import SETTINGS
from tests.support.memory import KeptPerRow

LAST_DAY = date.max.toordinal()
HEADER = ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max"]


def retained(build: Callable[[], object]) -> int:
    """Bytes still allocated by what `build` returns."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept is not None
    return after - before


# --- one patient's visits ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, LAST_DAY), max_size=300))
def test_a_day_is_refused_the_second_time_and_only_then(days):
    visits, seen = Visits(), set()
    for day in days:
        assert visits.add(day) == (day not in seen)
        seen.add(day)
    assert sorted(visits.days) == sorted(seen)


def test_dates_that_share_their_low_bits_or_come_backwards_are_all_found():
    """Days 4096 apart share their low 12 bits; year 1 and year 9999 sit side by side."""
    days = [*range(LAST_DAY, 1, -4096), 1, LAST_DAY - 1, *range(2, 5000, 7)]
    visits = Visits()
    assert all(visits.add(day) for day in days)
    assert not any(visits.add(day) for day in days)
    assert list(visits.days) == days


def test_doses_are_kept_exactly_with_their_visits():
    visits, shared = Visits(), {}
    for day, dose in [(738000, Decimal("4.50")), (737990, None), (738010, Decimal("4.5"))]:
        assert visits.add(day)
        visits.add_dose(dose, shared)
    assert visits.with_doses() == [
        (date.fromordinal(738000).isoformat(), Decimal("4.50")),
        (date.fromordinal(737990).isoformat(), None),
        (date.fromordinal(738010).isoformat(), Decimal("4.5")),
    ]
    assert str(visits.with_doses()[0][1]) == "4.50"


@pytest.mark.slow
@pytest.mark.usefixtures("frozen_heap")
def test_a_visit_costs_a_few_bytes_whatever_its_date():
    """A set of day numbers and the doses cost 85 to 145 bytes a visit; now about 20 to 25."""

    def history(days: range) -> Visits:
        visits, shared = Visits(), {}
        for day in days:
            visits.add(day)
            visits.add_dose(Decimal("4.5") if day % 13 else None, shared)
        return visits

    weekly = range(730_000, 730_000 + 7 * 50_000, 7)
    from_year_1_to_9999 = range(1, LAST_DAY, LAST_DAY // 50_000)
    for days in (weekly, from_year_1_to_9999):
        assert retained(lambda days=days: history(days)) / len(days) < 30


# --- a whole sheet -------------------------------------------------------------------------------


def visits_csv(path: Path, count: int, patients: int = 50) -> Path:
    first = date(2000, 1, 3)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(count):
            day = first + timedelta(days=n // patients)
            writer.writerow([f"P{n % patients}", day.isoformat(), "4.5", 40, 60])
    return path


def growth_per_row(path: Path, out: Path, rows: int) -> float:
    """Memory kept per row while the rows are read, from row 1,000 to the last (`rows`)."""
    kept = KeptPerRow(rows)
    tracemalloc.start()
    try:
        with open(path, "rb") as stream:
            sink = SINKS["ndjson"](out, SETTINGS)
            contract = default_contract()
            report = run_pipeline(stream, path.name, contract, sink, SETTINGS, kept.sample)
    finally:
        tracemalloc.stop()
    assert report.rows_converted == report.rows_read == rows
    return kept.per_row


@pytest.mark.slow
@pytest.mark.usefixtures("frozen_heap")
def test_a_longer_sheet_keeps_a_few_bytes_a_visit(tmp_path):
    """A set of day numbers per patient kept some 80 bytes a visit here."""
    growth = growth_per_row(visits_csv(tmp_path / "visits.csv", 10_000), tmp_path / "out", 10_000)
    assert growth < 40, growth


# --- the XLSX reader -----------------------------------------------------------------------------

ROW = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}row"
DATA = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheetData"
SHEET_XML = (
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    + b"".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>P{n}</t></is></c>'
        f'<c r="C{n}"><v>{n}</v></c></row>'.encode()
        for n in range(1, 6)
    )
    + b"</sheetData></worksheet>"
)


def test_the_reader_sees_the_same_events_and_the_rows_it_read_are_let_go():
    """The same elements, each as complete when it ends; only <sheetData>, which openpyxl
    does not look into, ends without the rows."""

    def seen(events):  # each element as it ends: its tag, text and children but rows
        return [(e.tag, e.text, [c.get("r") for c in e if c.tag != ROW]) for _, e in events]

    plain = seen(iterparse(io.BytesIO(SHEET_XML)))
    released = _rows_released(iterparse(io.BytesIO(SHEET_XML), events=("start", "end")), ROW)
    assert seen(released) == plain
    events = _rows_released(iterparse(io.BytesIO(SHEET_XML), events=("start", "end")), ROW)
    ended = {element.tag: element for _, element in events}
    assert len(ended[DATA]) == 0


def write_rows(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Visits")
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_rows_read_as_before_gaps_included(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet["A3"], sheet["B3"], sheet["E3"] = "P1", date(2024, 1, 10), 60
    sheet["A5"], sheet["C5"] = "P2", 4.5
    workbook.save(tmp_path / "gaps.xlsx")
    with (
        open(tmp_path / "gaps.xlsx", "rb") as stream,
        read_xlsx(stream, "gaps.xlsx", default_contract()) as read,
    ):
        assert read.header == HEADER
        rows = [(number, cells, problem) for number, cells, problem in read.rows]
    when = rows[1][1][1]
    assert [number for number, _, _ in rows] == [2, 3, 4, 5]
    assert rows[0][1] == [None] * 5 and rows[2][1] == [None] * 5
    assert rows[1][1] == ["P1", when, None, None, 60] and when.date() == date(2024, 1, 10)
    assert rows[3][1] == ["P2", None, 4.5, None, None]


@pytest.mark.slow
@pytest.mark.usefixtures("frozen_heap")
def test_an_xlsx_sheet_is_read_in_bounded_memory(tmp_path):
    """openpyxl left each row it had read in the parsed tree: some 80 bytes a row."""
    count = 20_000
    path = write_rows(
        tmp_path / "long.xlsx",
        [HEADER, *([f"P{n % 50}", date(2000, 1, 1), 4.5, 40, 60] for n in range(count))],
    )
    traced: list[int] = []
    tracemalloc.start()
    try:
        with open(path, "rb") as stream, read_xlsx(stream, path.name, default_contract()) as read:
            for number, _, _ in read.rows:
                if number in (2_000, count + 1):  # the last row: the sheet not yet let go
                    gc.collect()
                    traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    early, late = traced
    assert (late - early) / (count - 2_000) < 10, traced


@pytest.mark.slow
@pytest.mark.usefixtures("frozen_heap")
def test_the_ldn_courses_are_written_a_patient_at_a_time(tmp_path):
    """The MedicationStatements are made once every row is read; each patient's are written
    as they are made, never all held (a 100,000-row sheet held some 35 MiB of them)."""
    from benchmarks import generate

    def peak(rows: int) -> int:
        path = generate.write_csv(tmp_path / f"visits-{rows}.csv", rows)
        tracemalloc.start()
        try:
            with open(path, "rb") as stream:
                sink = SINKS["ndjson"](tmp_path / f"out-{rows}", SETTINGS)
                report = run_pipeline(stream, path.name, default_contract(), sink, SETTINGS)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert report.resources["MedicationStatement"] > rows // 20

    small, large = peak(1_500), peak(9_000)
    assert large < 1.25 * small, (small, large)
