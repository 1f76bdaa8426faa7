"""The report's charts drawn from their `ChartData`: SVG written directly, PNG rasterised from it.

matplotlib laid out and drew four figures a patient (about 1.3 s of CPU), a hundred times what
the rest of a report costs; a chart here is a line chart of known parts, so it is laid out with
the font's own widths and written as SVG text (about a millisecond a panel). Each panel is drawn once and reused:
alone for the HTML page, stacked for the SVG file, and the stacked SVG rasterised for the PNG
(resvg, with the fonts bundled in `fonts/`, so a PNG is the same on every machine). The same data
gives the same bytes; nothing carries a date.

Coordinates are pixels of a 900 x 460 panel (9 x 4.6 inches at 100 per inch); sizes are given
in points, as the case report's figures were, and turned into pixels here.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Literal

from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.report.charts import (
    FLAG_COLOUR,
    GUIDE_COLOUR,
    PHASE_COLOUR,
    ChartData,
    Line,
    Style,
    chart_data,
    month_ticks,
)
from adapter.report.core import FollowUp

WIDTH, HEIGHT = 900.0, 460.0
"""One panel, in pixels; panels are stacked one under the other."""
PNG_ZOOM = 1.1
"""The PNG's pixels per SVG pixel: 990 pixels wide a panel, as the figures were at 110 dpi."""
PT = 100 / 72
MARGIN = 8.0
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 12 * PT, 10 * PT, 9 * PT
LEGEND_SIZE, GUIDE_SIZE, PHASE_SIZE, MARK_SIZE, EMPTY_SIZE = (
    8.5 * PT,
    8 * PT,
    9 * PT,
    8 * PT,
    11 * PT,
)
TICK_LENGTH, TICK_PAD, LABEL_PAD, TITLE_PAD = 3.5 * PT, 3.5 * PT, 4 * PT, 18 * PT
LINE_WIDTH, MARKER_SIZE, SPINE_WIDTH = 2 * PT, 7 * PT, 0.8 * PT
LEGEND_GAP, LEGEND_ROW = 14.0, LEGEND_SIZE * 1.45
HANDLE, HANDLE_PAD, COLUMN_GAP = 2 * LEGEND_SIZE, 0.8 * LEGEND_SIZE, 2 * LEGEND_SIZE
MAX_COLUMNS = 3
MOST_RIGHT_ROOM = 0.4 * WIDTH
"""The guides' labels take at most this much of the panel; a longer one runs off its edge."""
LINE_SPACING = 1.2
UNDER_PLOT = TICK_LENGTH + TICK_PAD + 2 * LINE_SPACING * TICK_SIZE + LABEL_PAD
UNDER_PLOT += LINE_SPACING * LABEL_SIZE
"""From the plot's bottom edge to below its axis label: the ticks, two lines of month and year,
"Date of visit"."""
FONT_FAMILY = "DejaVu Sans, Verdana, Geneva, sans-serif"
TEXT_COLOUR, PHASE_TEXT, GUIDE_TEXT, GRID = "#000000", "#222222", "#555555", "#e6e6e6"
DASHES: dict[str, tuple[float, ...]] = {
    "-": (),
    "--": (3.7, 1.6),
    ":": (1.0, 1.65),
    "-.": (6.4, 1.6, 1.0, 1.6),
}
"""Line styles as dash patterns in line widths (matplotlib's, scaled by the width as it does)."""
GUIDE_DASH: tuple[float, ...] = (2.0, 3.0)

FONTS = Path(__file__).resolve().parent / "fonts"
FONT_FILES = (FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf")
_METRICS = json.loads((FONTS / "metrics.json").read_text(encoding="utf-8"))
_ADVANCES = {
    weight: {int(point): width for point, width in _METRICS[weight]["advance"].items()}
    for weight in ("sans", "bold")
}
_MISSING = {weight: float(_METRICS[weight]["missing"]) for weight in ("sans", "bold")}
ASCENT, DESCENT = float(_METRICS["ascent"]), float(_METRICS["descent"])
MIDDLE = 0.36
"""A text's baseline this many sizes below the middle of its capitals: centred on a line."""


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The advance of `text` in DejaVu Sans (kerning aside): what the layout leaves room for."""
    weight = "bold" if bold else "sans"
    advances, missing = _ADVANCES[weight], _MISSING[weight]
    return size * sum(advances.get(ord(character), missing) for character in text)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` escaped for XML; a character XML cannot hold (a control character, a lone
    surrogate) shown as U+FFFD: a patient's label is described, never makes the file unreadable."""
    return escape(_NOT_XML.sub("\ufffd", text), quote=False)


def _n(value: float) -> str:
    """A coordinate: two decimals at most, the same text for the same value."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _dash(pattern: tuple[float, ...], width: float) -> str:
    if not pattern:
        return ""
    return f' stroke-dasharray="{" ".join(_n(part * width) for part in pattern)}"'


def _text(
    x: float,
    y: float,
    text: str,
    size: float,
    anchor: str = "start",
    colour: str = TEXT_COLOUR,
    bold: bool = False,
    rotate: bool = False,
) -> str:
    """`y` is the baseline; `rotate` turns the text to read upwards about (x, y)."""
    weight = ' font-weight="bold"' if bold else ""
    fill = "" if colour == TEXT_COLOUR else f' fill="{colour}"'
    middle = "" if anchor == "start" else f' text-anchor="{anchor}"'
    place = (
        f'transform="translate({_n(x)} {_n(y)}) rotate(-90)"'
        if rotate
        else f'x="{_n(x)}" y="{_n(y)}"'
    )
    return f'<text {place} font-size="{_n(size)}"{weight}{fill}{middle}>{xml_text(text)}</text>'


# --- scales --------------------------------------------------------------------------------------


def value_ticks(low: float, top: float, most: int = 8) -> list[float]:
    """Round values from `low` up to `top`, at most `most` of them: steps of 1, 2, 2.5 or 5 by a
    power of ten, the smallest that fits (0-110 in twenties, 0-13.2 in twos)."""
    span = top - low
    if not span > 0 or not math.isfinite(span):
        return [low]
    power = 10.0 ** math.floor(math.log10(span / most))
    for multiple in (1, 2, 2.5, 5, 10, 20):
        step = multiple * power
        first = math.ceil(low / step - 1e-9)
        last = math.floor(top / step + 1e-9)
        if last - first + 1 <= most:
            return [round(n * step, 10) for n in range(first, last + 1)]
    return [low, top]


def _tick_text(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Frame:
    """Where a panel's plot sits, and how days and values map onto it."""

    left: float
    top: float
    right: float
    bottom: float
    first_day: int
    last_day: int
    low: float
    high: float

    def x(self, day: date) -> float:
        span = (self.last_day - self.first_day) or 1
        return self.left + (day.toordinal() - self.first_day) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return self.bottom - (value - self.low) / span * (self.bottom - self.top)


@dataclass(frozen=True)
class Entry:
    label: str
    style: Style | None = None
    alpha: float = 0.0
    """A shaded phase's entry (no style): its grey's opacity."""


def legend_entries(data: ChartData) -> list[Entry]:
    entries = [Entry(line.label, line.style) for line in data.lines]
    seen: set[str] = set()
    for shade in data.phases:
        if shade.legend not in seen:
            seen.add(shade.legend)
            entries.append(Entry(shade.legend, alpha=shade.alpha))
    return entries


def legend_columns(entries: Sequence[Entry], room: float) -> list[list[Entry]]:
    """Entries in up to three columns filled top to bottom; fewer when three are wider than
    the panel (a long label is never cut at the panel's edge)."""
    for count in range(min(MAX_COLUMNS, len(entries)), 0, -1):
        rows = math.ceil(len(entries) / count)
        columns = [list(entries[n * rows : (n + 1) * rows]) for n in range(count)]
        columns = [column for column in columns if column]
        if count == 1 or _legend_width(columns) <= room:
            return columns
    return []


def _column_width(column: Sequence[Entry]) -> float:
    return HANDLE + HANDLE_PAD + max(text_width(e.label, LEGEND_SIZE) for e in column)


def _legend_width(columns: Sequence[Sequence[Entry]]) -> float:
    return sum(_column_width(c) for c in columns) + COLUMN_GAP * (len(columns) - 1)


def frame(data: ChartData, legend_rows: int) -> Frame:
    """The plot's place: what is left of the panel once its labels, ticks and legend have room."""
    low, high = data.ylim
    top_value = high + (high - low) * 0.1
    ticks = value_ticks(low, top_value)
    widest = max(text_width(_tick_text(tick), TICK_SIZE) for tick in ticks)
    left = MARGIN + (ASCENT + DESCENT) * LABEL_SIZE + LABEL_PAD + widest + TICK_PAD + TICK_LENGTH
    if data.guides:
        right_room = TICK_PAD + max(text_width(g.label, GUIDE_SIZE) for g in data.guides)
    else:
        days = month_ticks(data.xlim)
        right_room = max([text_width(f"{day.year:04d}", TICK_SIZE) / 2 for day in days] + [20.0])
    top = MARGIN + ASCENT * TITLE_SIZE + TITLE_PAD
    below = UNDER_PLOT + MARGIN
    if legend_rows:
        below += LEGEND_GAP + legend_rows * LEGEND_ROW
    return Frame(
        left=left,
        top=top,
        right=WIDTH - MARGIN - min(right_room, MOST_RIGHT_ROOM),
        bottom=HEIGHT - below,
        first_day=data.xlim[0].toordinal(),
        last_day=data.xlim[1].toordinal(),
        low=low,
        high=top_value,
    )


# --- markers -------------------------------------------------------------------------------------


def _marker_path(marker: str, size: float) -> str:
    """The marker's outline about (0, 0), `size` across (matplotlib's marker size)."""
    r = size / 2
    if marker == "o":
        return (
            f"M{_n(-r)} 0a{_n(r)} {_n(r)} 0 1 0 {_n(size)} 0a{_n(r)} {_n(r)} 0 1 0 {_n(-size)} 0Z"
        )
    if marker == "s":
        s = r * 0.9
        return f"M{_n(-s)} {_n(-s)}H{_n(s)}V{_n(s)}H{_n(-s)}Z"
    if marker == "^":
        return f"M0 {_n(-r)}L{_n(r)} {_n(r)}H{_n(-r)}Z"
    if marker == "v":
        return f"M0 {_n(r)}L{_n(r)} {_n(-r)}H{_n(-r)}Z"
    if marker == "D":
        d = r * 1.1
        return f"M0 {_n(-d)}L{_n(d)} 0L0 {_n(d)}L{_n(-d)} 0Z"
    if marker == "P":
        a, b = r, r / 3
        points = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b)]
        points += [(-a, b), (-a, -b), (-b, -b)]
        return "M" + "L".join(f"{_n(x)} {_n(y)}" for x, y in points) + "Z"
    raise ValueError(f"no drawing for marker {marker!r}")


MARKER_NAMES = {"o": "circle", "s": "square", "^": "up", "v": "down", "D": "diamond", "P": "plus"}


def marker_id(style: Style) -> str:
    """The id of a marker's shape in its colour, defined once a document and used at each point."""
    return f"m-{MARKER_NAMES[style.marker]}-{style.colour[1:]}"


def _marker_defs(styles: Iterable[Style]) -> str:
    done: dict[str, str] = {}
    for style in styles:
        key = marker_id(style)
        if key not in done:
            done[key] = (
                f'<path id="{key}" d="{_marker_path(style.marker, MARKER_SIZE)}" '
                f'fill="{style.colour}" stroke="{style.colour}" stroke-width="{_n(PT)}"/>'
            )
    return "".join(done[key] for key in sorted(done))


# --- one panel -----------------------------------------------------------------------------------


def _runs(line: Line, at: Frame) -> list[list[tuple[float, float]]]:
    """The line's points in pixels, broken where a value is missing (a gap)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for day, value in line.points:
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((at.x(day), at.y(value)))
    return [run for run in runs if run]


def _line(line: Line, at: Frame) -> str:
    stroke = (
        f'fill="none" stroke="{line.style.colour}" stroke-width="{_n(LINE_WIDTH)}" '
        f'stroke-linejoin="round"{_dash(DASHES[line.style.linestyle], LINE_WIDTH)}'
    )
    # Each coordinate written once for the line and its markers; a score's few values give
    # few heights, written once each (10,000 visits are 40,000 coordinates a line).
    texts: dict[float, str] = {}

    def text(value: float) -> str:
        found = texts.get(value)
        if found is None:
            found = texts[value] = _n(value)
        return found

    runs = [[(text(x), text(y)) for x, y in run] for run in _runs(line, at)]
    parts = [
        f'<polyline points="{" ".join(f"{x},{y}" for x, y in run)}" {stroke}/>'
        for run in runs
        if len(run) > 1
    ]
    href = marker_id(line.style)
    parts.extend(f'<use href="#{href}" x="{x}" y="{y}"/>' for run in runs for x, y in run)
    return "".join(parts)


def _legend(columns: Sequence[Sequence[Entry]], left: float, top: float) -> list[str]:
    parts = []
    x = left
    for column in columns:
        for row, entry in enumerate(column):
            middle = top + (row + 0.5) * LEGEND_ROW
            if entry.style is None:
                height = 0.7 * LEGEND_SIZE
                parts.append(
                    f'<rect x="{_n(x)}" y="{_n(middle - height / 2)}" width="{_n(HANDLE)}" '
                    f'height="{_n(height)}" fill="{PHASE_COLOUR}" fill-opacity="{entry.alpha:g}"/>'
                )
            else:
                style = entry.style
                parts.append(
                    f'<path d="M{_n(x)} {_n(middle)}h{_n(HANDLE)}" stroke="{style.colour}" '
                    f'stroke-width="{_n(LINE_WIDTH)}"{_dash(DASHES[style.linestyle], LINE_WIDTH)}/>'
                )
                parts.append(
                    f'<use href="#{marker_id(style)}" x="{_n(x + HANDLE / 2)}" y="{_n(middle)}"/>'
                )
            parts.append(
                _text(
                    x + HANDLE + HANDLE_PAD, middle + MIDDLE * LEGEND_SIZE, entry.label, LEGEND_SIZE
                )
            )
        x += _column_width(column) + COLUMN_GAP
    return parts


def _inside(data: ChartData, at: Frame) -> bool:
    """Every point within the plot (always, for scores in their range): nothing to cut, and a
    clip costs the rasteriser a mask of the whole panel."""
    first, last = data.xlim
    for line in data.lines:
        for day, value in line.points:
            if not first <= day <= last or (value is not None and not at.low <= value <= at.high):
                return False
    return True


@lru_cache(maxsize=6)
def panel_body(data: ChartData) -> str:
    """One panel's elements, at the panel's own origin: drawn once, reused alone and stacked.
    Kept for the last two patients' panels (the page draws them alone, then the files stacked):
    a 10,000-visit panel is about 2 MB of text."""
    entries = legend_entries(data)
    room = WIDTH - 2 * MARGIN
    columns = legend_columns(entries, room) if entries else []
    rows = max((len(column) for column in columns), default=0)
    at = frame(data, rows)
    low, high = data.ylim
    headroom = (high - low) * 0.1
    parts = []
    clip = f"clip-{data.panel}" if not _inside(data, at) else None
    if clip:  # a value beyond the axis is cut at the plot's edge, as a plot does
        parts.append(
            f'<clipPath id="{clip}"><rect x="{_n(at.left)}" y="{_n(at.top)}" '
            f'width="{_n(at.right - at.left)}" height="{_n(at.bottom - at.top)}"/></clipPath>'
        )
    ticks = value_ticks(at.low, at.high)
    grid = "".join(f"M{_n(at.left)} {_n(at.y(t))}H{_n(at.right)}" for t in ticks)
    parts.append(f'<path d="{grid}" stroke="{GRID}" stroke-width="{_n(0.6 * PT)}"/>')
    for shade in data.phases:
        x0, x1 = at.x(shade.start), at.x(shade.end)
        parts.append(
            f'<rect x="{_n(x0)}" y="{_n(at.top)}" width="{_n(x1 - x0)}" '
            f'height="{_n(at.bottom - at.top)}" fill="{PHASE_COLOUR}" fill-opacity="{shade.alpha:g}"/>'
        )
    for guide in data.guides:
        parts.append(
            f'<path d="M{_n(at.left)} {_n(at.y(guide.value))}H{_n(at.right)}" '
            f'stroke="{GUIDE_COLOUR}" stroke-width="{_n(SPINE_WIDTH)}"'
            f"{_dash(GUIDE_DASH, SPINE_WIDTH)}/>"
        )
    for mark in data.marks:
        x = at.x(mark.day)
        parts.append(
            f'<path d="M{_n(x)} {_n(at.top)}V{_n(at.bottom)}" stroke="{FLAG_COLOUR}" '
            f'stroke-width="{_n(1.2 * PT)}"/>'
        )
    for shade in data.phases:
        if shade.labelled:
            middle = (at.x(shade.start) + at.x(shade.end)) / 2
            baseline = at.y(high + headroom * 0.5) + MIDDLE * PHASE_SIZE
            parts.append(_text(middle, baseline, shade.label, PHASE_SIZE, "middle", PHASE_TEXT))
    for mark in data.marks:
        x = at.x(mark.day) - DESCENT * MARK_SIZE - 1
        y = at.y(high + headroom * 0.9)
        parts.append(_text(x, y, mark.label, MARK_SIZE, "end", FLAG_COLOUR, rotate=True))
    lines = "".join(_line(line, at) for line in data.lines)
    parts.append(f'<g clip-path="url(#{clip})">{lines}</g>' if clip else lines)
    if not data.lines:
        middle_x, middle_y = (at.left + at.right) / 2, (at.top + at.bottom) / 2
        parts.append(_text(middle_x, middle_y, "no values recorded", EMPTY_SIZE, "middle"))
    parts.extend(_axes(data, at, ticks))
    if columns:
        parts.extend(_legend(columns, at.left, at.bottom + UNDER_PLOT + LEGEND_GAP))
    return "".join(parts)


def _axes(data: ChartData, at: Frame, ticks: Sequence[float]) -> list[str]:
    """Spines, ticks and their labels, the guides' labels on the right, title and axis labels."""
    spine = f'stroke="{TEXT_COLOUR}" stroke-width="{_n(SPINE_WIDTH)}"'
    outline = f"M{_n(at.left)} {_n(at.top)}V{_n(at.bottom)}H{_n(at.right)}"
    if data.guides:
        outline += f"V{_n(at.top)}"
    parts = [f'<path d="{outline}" fill="none" {spine} stroke-linecap="square"/>']
    marks = "".join(f"M{_n(at.left)} {_n(at.y(t))}h{_n(-TICK_LENGTH)}" for t in ticks)
    days = month_ticks(data.xlim)
    marks += "".join(f"M{_n(at.x(day))} {_n(at.bottom)}v{_n(TICK_LENGTH)}" for day in days)
    parts.append(f'<path d="{marks}" {spine}/>')
    for tick in ticks:
        baseline = at.y(tick) + MIDDLE * TICK_SIZE
        parts.append(
            _text(at.left - TICK_LENGTH - TICK_PAD, baseline, _tick_text(tick), TICK_SIZE, "end")
        )
    first = at.bottom + TICK_LENGTH + TICK_PAD + ASCENT * TICK_SIZE
    for day in days:
        x = at.x(day)
        parts.append(_text(x, first, f"{day:%b}", TICK_SIZE, "middle"))
        parts.append(
            _text(x, first + LINE_SPACING * TICK_SIZE, f"{day.year:04d}", TICK_SIZE, "middle")
        )
    for guide in data.guides:
        baseline = at.y(guide.value) + MIDDLE * GUIDE_SIZE
        parts.append(
            _text(at.right + TICK_PAD, baseline, guide.label, GUIDE_SIZE, "start", GUIDE_TEXT)
        )
    parts.append(_text(at.left, MARGIN + ASCENT * TITLE_SIZE, data.title, TITLE_SIZE, bold=True))
    label_x = MARGIN + ASCENT * LABEL_SIZE
    middle_y = (at.top + at.bottom) / 2
    parts.append(_text(label_x, middle_y, data.ylabel, LABEL_SIZE, "middle", rotate=True))
    xlabel = first + LINE_SPACING * TICK_SIZE + DESCENT * TICK_SIZE + LABEL_PAD
    xlabel += ASCENT * LABEL_SIZE
    parts.append(_text((at.left + at.right) / 2, xlabel, "Date of visit", LABEL_SIZE, "middle"))
    return parts


# --- documents -----------------------------------------------------------------------------------


def svg(panels: Sequence[ChartData]) -> str:
    """The panels stacked, as one SVG document (one panel: the page's figure)."""
    height = HEIGHT * len(panels)
    styles = [line.style for data in panels for line in data.lines]
    title = "; ".join(data.title for data in panels)
    description = " ".join(data.alt for data in panels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(WIDTH)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(WIDTH)} {_n(height)}" font-family="{FONT_FAMILY}" role="img">',
        f"<title>{xml_text(title)}</title>",
        f"<desc>{xml_text(description)}</desc>",
        f"<defs>{_marker_defs(styles)}</defs>" if styles else "",
        f'<rect width="{_n(WIDTH)}" height="{_n(height)}" fill="#ffffff"/>',
    ]
    for row, data in enumerate(panels):
        body = panel_body(data)
        parts.append(f'<g transform="translate(0 {_n(row * HEIGHT)})">{body}</g>' if row else body)
    parts.append("</svg>\n")
    return "".join(parts)


def png(document: str) -> bytes:
    """An SVG of ours as PNG, with the bundled fonts only: the same pixels on every machine."""
    import resvg_py

    return bytes(
        resvg_py.svg_to_bytes(
            svg_string=document,
            zoom=PNG_ZOOM,
            skip_system_fonts=True,
            font_files=[str(path) for path in FONT_FILES],
            font_family="DejaVu Sans",
            sans_serif_family="DejaVu Sans",
        )
    )


# --- a patient's charts, as the report and the service ask for them -----------------------------

Format = Literal["png", "svg"]
FORMATS: tuple[Format, ...] = ("png", "svg")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def warm() -> None:
    """Load the rasteriser and read its fonts now (a service does so before gc.freeze())."""
    png(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" font-family="{FONT_FAMILY}">'
        '<text x="2" y="15" font-size="12">0</text></svg>'
    )


class DrawnCharts:
    """The charts drawn lately in this process, by their data: the same data is the same bytes,
    so a patient's page shown again, or posted again by an engine's retry, is not drawn again.
    Bounded by the bytes it holds (the oldest go first); one lock, for threaded servers."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._charts: OrderedDict[tuple[tuple[ChartData, ...], Format], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[tuple[ChartData, ...], Format]) -> bytes | None:
        with self._lock:
            found = self._charts.get(key)
            if found is not None:
                self._charts.move_to_end(key)
            return found

    def put(self, key: tuple[tuple[ChartData, ...], Format], drawn: bytes) -> None:
        if len(drawn) > self.budget // 4:  # a very long history: drawn each time, not held
            return
        with self._lock:
            if key not in self._charts:
                self._charts[key] = drawn
                self.held += len(drawn)
            while self.held > self.budget:
                _, dropped = self._charts.popitem(last=False)
                self.held -= len(dropped)


DRAWN = DrawnCharts(16 * 2**20)
"""About two hundred patients' charts (a PNG 60-80 kB, an SVG about 12 kB) per process."""


def draw(panels: Sequence[ChartData], fmt: Format = "png") -> bytes:
    """PNG or SVG of the panels, stacked; deterministic bytes for the same data."""
    if fmt not in FORMATS:
        message = f"unknown chart format {fmt!r}; known: {', '.join(FORMATS)}"
        raise InvalidInput([Issue("error", "value", message, "format", "invalid-value")])
    key = (tuple(panels), fmt)
    drawn = DRAWN.get(key)
    if drawn is None:
        drawn = _drawn(panels, fmt)
        DRAWN.put(key, drawn)
    return drawn


def _drawn(panels: Sequence[ChartData], fmt: Format) -> bytes:
    document = svg(panels)
    return document.encode("utf-8") if fmt == "svg" else png(document)


def chart(report: FollowUp, fmt: Format = "png", panel: str | None = None) -> bytes:
    """One patient's chart: every panel, or one alone ("a", "b", or "c" when the patient has
    its scores)."""
    panels = chart_data(report)
    if panel is not None:
        drawn = ", ".join(p.panel for p in panels)
        panels = tuple(p for p in panels if p.panel == panel)
        if not panels:
            message = f"no panel {panel!r} for this patient; panels: {drawn}"
            raise InvalidInput([Issue("error", "value", message, "panel", "invalid-value")])
    return draw(panels, fmt)
