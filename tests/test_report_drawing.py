"""The charts as a reader sees them: each point read back off the drawn SVG through its own axis
ticks lands on its day and value; the PNG shows what the SVG shows; any panel data draws a
well-formed, bounded chart. (What the panels hold is tested on `ChartData`, in test_report.)"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.report import chart_data, drawing, follow_up, load_resources
from adapter.report.charts import PANELS, ChartData, Guide, Line, Mark, Shade
from adapter.report.drawing import draw
from tests.support import SETTINGS
from tests.support.reports import obs

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def case_report(case_dir):
    return _one(load_resources(case_dir, SETTINGS))


def _one(resources):
    (report,) = follow_up(resources, SETTINGS)
    return report


def _tree(document: str) -> ET.Element:
    return ET.fromstring(document)


def _texts(root: ET.Element) -> list[tuple[float, float, str]]:
    found = []
    for text in root.iter(f"{SVG}text"):
        if "x" in text.attrib:
            found.append((float(text.attrib["x"]), float(text.attrib["y"]), text.text or ""))
    return found


def _axes(root: ET.Element, data: ChartData) -> tuple:
    """The chart's own scales, as a reader takes them: the y grid lines with their tick labels,
    and the month ticks' labels on the x axis (their first days)."""
    grid = next(p for p in root.iter(f"{SVG}path") if p.attrib.get("stroke") == drawing.GRID)
    ys = [float(y) for y in re.findall(r"M[\d.]+ ([\d.]+)H", grid.attrib["d"])]
    texts = _texts(root)
    size = drawing.TICK_SIZE
    labels = {
        round(y - drawing.MIDDLE * size, 2): float(t)
        for x, y, t in texts
        if re.fullmatch(r"\d+(\.\d+)?", t)
    }
    values = [labels[min(labels, key=lambda at: abs(at - y))] for y in ys]
    (y0, v0), (y1, v1) = (ys[0], values[0]), (ys[-1], values[-1])
    months = [(x, t) for x, y, t in texts if re.fullmatch(r"[A-Z][a-z]{2}", t)]
    years = [(x, t) for x, y, t in texts if re.fullmatch(r"\d{4}", t)]
    assert len(months) >= 2 and [x for x, _ in months] == [x for x, _ in years]
    firsts = [
        (x, date(int(year), list(MONTHS).index(month) + 1, 1))
        for (x, month), (_, year) in zip(months, years, strict=True)
    ]
    (x0, d0), (x1, d1) = firsts[0], firsts[-1]

    def value_at(y: float) -> float:
        return v0 + (y - y0) * (v1 - v0) / (y1 - y0)

    def day_at(x: float) -> float:
        return d0.toordinal() + (x - x0) * (d1.toordinal() - d0.toordinal()) / (x1 - x0)

    return value_at, day_at


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _markers(root: ET.Element, style) -> list[tuple[float, float]]:
    href = f"#{drawing.marker_id(style)}"
    return [
        (float(use.attrib["x"]), float(use.attrib["y"]))
        for use in root.iter(f"{SVG}use")
        if use.attrib["href"] == href
    ]


def test_each_point_read_off_the_chart_is_its_day_and_value(case_report):
    for data in chart_data(case_report):
        root = _tree(drawing.svg([data]))
        value_at, day_at = _axes(root, data)
        for line in data.lines:
            valued = [(day, value) for day, value in line.points if value is not None]
            drawn = _markers(root, line.style)
            assert len(drawn) == len(valued) + 1  # and the legend's
            for (day, value), (x, y) in zip(valued, drawn, strict=False):
                assert abs(day_at(x) - day.toordinal()) < 0.1, (line.label, day)
                assert abs(value_at(y) - value) < 0.05, (line.label, value)
            lines = [
                p for p in root.iter(f"{SVG}polyline") if p.attrib["stroke"] == line.style.colour
            ]
            assert len(lines) == 1 and len(lines[0].attrib["points"].split()) == len(valued)


def test_a_missing_value_breaks_the_line():
    gap = [
        obs("fiqr-total", "2024-01-01", 60),
        obs("fiqr-total", "2024-01-15", 62),
        obs("fiqr-total", "2024-02-01", absent="x"),
        obs("fiqr-total", "2024-03-01", 50),
        obs("fiqr-total", "2024-03-15", 48),
    ]
    (panel_a, _) = chart_data(_one(gap))
    root = _tree(drawing.svg([panel_a]))
    (line,) = panel_a.lines
    runs = [p for p in root.iter(f"{SVG}polyline") if p.attrib["stroke"] == line.style.colour]
    assert [len(p.attrib["points"].split()) for p in runs] == [2, 2]
    assert len(_markers(root, line.style)) == 4 + 1  # four values, and the legend's


def test_the_panel_says_what_it_shows(case_report):
    """Title, axis labels, guides, the LDN phase, the legend: every text of the data is drawn,
    and the standalone file carries the text alternative for screen readers."""
    panel_a = chart_data(case_report)[0]
    document = drawing.svg([panel_a])
    texts = [text.text for text in _tree(document).iter(f"{SVG}text")]
    for expected in (panel_a.title, panel_a.ylabel, "Date of visit"):
        assert expected in texts
    assert all(guide.label in document for guide in panel_a.guides)
    assert all(line.label in texts for line in panel_a.lines)
    assert all(shade.legend in texts for shade in panel_a.phases)
    assert [s.label for s in panel_a.phases if s.labelled] == ["LDN 4.5 mg/day"]
    assert "LDN 4.5 mg/day" in texts
    root = _tree(document)
    assert root.attrib["role"] == "img"
    assert root.find(f"{SVG}title").text == panel_a.title
    assert root.find(f"{SVG}desc").text == panel_a.alt


def test_panels_stack_in_one_file_drawn_once(case_report):
    panels = chart_data(case_report)
    stacked = drawing.svg(panels)
    assert stacked.count("<svg") == 1 and f'height="{int(460 * len(panels))}"' in stacked
    for data in panels:
        assert drawing.panel_body(data) in stacked  # the page's panel, the same elements
    assert drawing.svg(panels) == stacked


def test_the_png_shows_what_the_svg_shows(case_report):
    """Each marker's pixel in the PNG has its line's colour; the image is the panels' size."""
    from PIL import Image

    panels = chart_data(case_report)
    document = drawing.svg(panels)
    image = Image.open(io.BytesIO(drawing.png(document))).convert("RGB")
    assert image.size == (990, round(460 * 1.1 * len(panels)))
    for row, data in enumerate(panels):
        alone = _tree(drawing.svg([data]))
        for line in data.lines:
            colour = tuple(int(line.style.colour[n : n + 2], 16) for n in (1, 3, 5))
            for x, y in _markers(alone, line.style)[:-1]:
                at = (round(x * 1.1), round((y + 460 * row) * 1.1))
                seen = image.getpixel(at)
                assert max(abs(a - b) for a, b in zip(seen, colour, strict=True)) < 40, (
                    line.label,
                    at,
                    seen,
                )


def test_a_value_beyond_the_axis_is_cut_at_the_plots_edge():
    """Scores stay in their range, so no chart needs a clip; one that would, gets it."""
    day = date(2024, 1, 1)
    style = PANELS["a"].styles[0]
    data = ChartData(
        "a",
        "(a) t",
        "Score (0-100)",
        (0.0, 100.0),
        (day - timedelta(days=30), day + timedelta(days=30)),
        (Line("x", "x", style, ((day, 150.0),)),),
        (),
        (),
        "",
        "",
    )
    assert "clip-path" in drawing.svg([data])
    inside = ChartData(**{**data.__dict__, "lines": (Line("x", "x", style, ((day, 100.0),)),)})
    assert "clip-path" not in drawing.svg([inside])


def test_a_legend_too_wide_for_three_columns_takes_fewer():
    entries = [drawing.Entry("x" * 60, PANELS["a"].styles[0]) for _ in range(4)]
    columns = drawing.legend_columns(entries, drawing.WIDTH - 2 * drawing.MARGIN)
    assert len(columns) < 3
    assert [len(column) for column in drawing.legend_columns(entries[:3], 10_000)] == [1, 1, 1]
    five = drawing.legend_columns(entries[:1] * 5, 10_000)
    assert [len(column) for column in five] == [2, 2, 1]  # filled top to bottom, as before


def test_a_long_guide_label_leaves_the_plot_its_room(case_report):
    panel_a = chart_data(case_report)[0]
    long = replace(panel_a, guides=(Guide(50.0, "x" * 400),))
    at = drawing.frame(long, 2)
    assert at.right - at.left > drawing.WIDTH / 2
    assert _tree(drawing.svg([long])) is not None


def test_the_value_axis_has_round_ticks():
    assert drawing.value_ticks(0, 110) == [0, 20, 40, 60, 80, 100]
    assert drawing.value_ticks(0, 13.2) == [0, 2, 4, 6, 8, 10, 12]
    assert drawing.value_ticks(0, 29.7) == [0, 5, 10, 15, 20, 25]
    assert drawing.value_ticks(5, 5) == [5]


@pytest.mark.slow
def test_charts_are_the_same_bytes_every_time(case_report, monkeypatch):
    monkeypatch.setattr(drawing, "DRAWN", drawing.DrawnCharts(0))  # every chart drawn anew
    drawing.panel_body.cache_clear()
    first = draw(chart_data(case_report), "png")
    drawing.panel_body.cache_clear()
    assert draw(chart_data(case_report), "png") == first and first.startswith(b"\x89PNG")
    assert b"tIME" not in first  # no date in the PNG


# --- any data -------------------------------------------------------------------------------------

START = date(2020, 1, 1)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@st.composite
def panels(draw_from: st.DrawFn) -> ChartData:
    key = draw_from(st.sampled_from(sorted(PANELS)))
    high = float(draw_from(st.sampled_from([12, 27, 100])))
    span = draw_from(st.integers(1, 4000))
    first, last = START - timedelta(days=14), START + timedelta(days=span + 14)
    days = st.integers(0, span).map(lambda n: START + timedelta(days=n))
    values = st.none() | st.floats(0, high, allow_nan=False)
    lines = []
    for position in range(draw_from(st.integers(0, 4))):
        points = draw_from(st.lists(st.tuples(days, values), max_size=30))
        style = PANELS[key].styles[position]
        lines.append(
            Line(
                f"c{position}",
                draw_from(TEXT),
                style,
                tuple(sorted(points, key=lambda point: point[0])),
            )
        )
    phases = []
    for _ in range(draw_from(st.integers(0, 3))):
        start, end = sorted((draw_from(days), draw_from(days)))
        phases.append(
            Shade(start, end, draw_from(TEXT), draw_from(TEXT), 0.2, draw_from(st.booleans()))
        )
    guides = [
        Guide(draw_from(st.floats(1, high)), draw_from(TEXT))
        for _ in range(draw_from(st.integers(0, 3)))
    ]
    marks = [Mark(draw_from(days), draw_from(TEXT)) for _ in range(draw_from(st.integers(0, 2)))]
    return ChartData(
        key,
        draw_from(TEXT),
        f"Score (0-{high:g})",
        (0.0, high),
        (first, last),
        tuple(lines),
        tuple(phases),
        tuple(guides),
        "",
        draw_from(TEXT),
        tuple(marks),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_any_panel_draws_a_well_formed_bounded_chart(data):
    document = drawing.svg([data])
    root = _tree(document)  # well-formed XML, whatever the labels hold
    at = drawing.frame(
        data, max(map(len, drawing.legend_columns(drawing.legend_entries(data), 884)), default=0)
    )
    assert 0 < at.left < at.right <= drawing.WIDTH and 0 < at.top < at.bottom < drawing.HEIGHT
    for line in data.lines:
        valued = [(day, value) for day, value in line.points if value is not None]
        drawn = _markers(root, line.style)
        assert len(drawn) >= len(valued)
        for x, y in drawn[: len(valued)]:
            assert at.left - 0.01 <= x <= at.right + 0.01
            assert at.top - 0.01 <= y <= at.bottom + 0.01
    assert drawing.svg([data]) == document


@settings(max_examples=15, deadline=None)
@given(panels())
def test_any_panel_rasterises(data):
    image = drawing.png(drawing.svg([data]))
    assert image.startswith(b"\x89PNG") and len(image) > 1000
