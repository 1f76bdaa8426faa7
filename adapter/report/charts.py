"""The two panels of the case report's figures, per patient: data first, drawing apart.

Panel (a), as the case report's figure 2: FIQR total with maximum and mean pain (all 0-100).
Panel (b), as its figure 3: SSS with the PHQ-4 total (both 0-12). Panel (c), only for the
patients who have them: the PHQ-9 and GAD-7 totals, with the PHQ-9 item 9 marked where it is
raised or not answered. One panel per scale family, so band guides do not crowd each other.

Which score goes in which panel is declared on the score (`Score.chart_panel`, with its legend
`chart_label` and its name in the title `chart_topic`); this module declares only the panels'
layout: their styles, in the order of the scores they plot, and the scale of an empty panel.

`chart_data` turns a report into plain `ChartData` (series of (day, value), LDN phases, band
guides, a text alternative): what the tests check. `draw` hands that to `drawing`, which writes
the SVG and rasterises the PNG from it: the same bytes for the same data, and no date in either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from adapter.instrument import Score
from adapter.report.core import FollowUp, Series, number_text, shown_scores

# Okabe & Ito's colour-blind-safe palette (Color Universal Design), with a marker and a line style
# each, so no series is told apart by colour alone.
BLACK, BLUE, VERMILLION, GREEN = "#000000", "#0072B2", "#D55E00", "#009E73"
ORANGE, PURPLE = "#E69F00", "#CC79A7"
GUIDE_COLOUR = "#8c8c8c"
PHASE_COLOUR = "#7f7f7f"
FLAG_COLOUR = "#7a1600"


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    linestyle: str


@dataclass(frozen=True)
class Panel:
    styles: tuple[Style, ...]
    """The style of each score the panel plots, in report order (`report_rank`); repeated
    beyond the last. A score keeps its style whichever of the others a patient has."""
    empty_high: int
    """The y-axis of the panel when none of its scores was recorded (it says so)."""
    optional: bool = False
    """Drawn only for a patient who has one of its scores (the case report has two panels)."""


# The case report's layout: (a) FIQR black squares, maximum pain blue circles, mean pain
# vermillion triangles; (b) SSS blue circles, PHQ-4 vermillion squares; then the next scores.
PANELS: dict[str, Panel] = {
    "a": Panel(
        (
            Style(BLACK, "s", "-"),
            Style(BLUE, "o", "--"),
            Style(VERMILLION, "^", ":"),
            Style(GREEN, "D", "-."),
            Style(PURPLE, "v", "--"),
            Style(ORANGE, "P", ":"),
        ),
        100,
    ),
    "b": Panel(
        (
            Style(BLUE, "o", "-"),
            Style(VERMILLION, "s", "--"),
            Style(GREEN, "^", ":"),
            Style(BLACK, "D", "-."),
            Style(PURPLE, "v", "--"),
            Style(ORANGE, "P", ":"),
        ),
        12,
    ),
    # One panel per scale family: the PHQ-9 and GAD-7 (0-27, 0-21) share their thresholds 5, 10
    # and 15, and would crowd panel (b) with seven guide lines.
    "c": Panel(
        (
            Style(PURPLE, "D", "-"),
            Style(GREEN, "^", "--"),
            Style(BLACK, "v", ":"),
            Style(ORANGE, "P", "-."),
        ),
        27,
        optional=True,
    ),
}
PANEL_KEYS = tuple(PANELS)
LEGEND_PHASES = 6
"""Up to this many phases each have a legend entry; beyond, one entry per dose, or one in all."""
LABELLED_PHASE = 0.12
"""A phase is labelled inside the plot when it spans at least this share of the time axis."""


@dataclass(frozen=True)
class Line:
    code: str
    label: str
    style: Style
    points: tuple[tuple[date, float | None], ...]
    """(day, value); None is a gap (a score with a dataAbsentReason): the line breaks there."""


@dataclass(frozen=True)
class Shade:
    start: date
    end: date
    """The day after the last day of the phase (or the end of the axis while ongoing)."""
    label: str
    """Inside the plot, when it is wide enough: "LDN 4.5 mg/day"."""
    legend: str
    """In the legend: "LDN 1.5 mg/day from 2023-09-01"."""
    alpha: float
    labelled: bool
    """Labelled inside the plot; narrow phases (a titration) are named in the caption only."""


@dataclass(frozen=True)
class Guide:
    value: float
    label: str


@dataclass(frozen=True)
class Mark:
    """A flag at a visit, written above the plot: raised, or not answered (never left out)."""

    day: date
    label: str


@dataclass(frozen=True)
class ChartData:
    panel: str
    title: str
    ylabel: str
    ylim: tuple[float, float]
    xlim: tuple[date, date]
    lines: tuple[Line, ...]
    phases: tuple[Shade, ...]
    guides: tuple[Guide, ...]
    caption: str
    """The LDN phases in words (the figure caption of the HTML report)."""
    alt: str
    """A text alternative: what the panel shows, with first and last values."""
    marks: tuple[Mark, ...] = ()
    """Flags of the panel's instrument: raised, or not answered."""


def panel_scores(key: str) -> tuple[Score, ...]:
    """The shown scores a panel plots, in report order, from their `chart_panel`."""
    for score in shown_scores():
        if score.chart_panel is not None and score.chart_panel not in PANELS:
            message = f"score {score.code.code}: chart_panel {score.chart_panel!r} is not a panel"
            raise ValueError(f"{message}; known: {', '.join(PANEL_KEYS)}")
        if score.chart_panel is not None and score.value_type == "boolean":
            raise ValueError(f"score {score.code.code}: a yes/no result has no line to plot")
    return tuple(score for score in shown_scores() if score.chart_panel == key)


def line_label(score: Score) -> str:
    """The legend of a score: its `chart_label`, else its report label with its range."""
    if score.chart_label:
        return score.chart_label
    label = score.report_label or score.code.code
    return f"{label} ({score.low}-{score.high})" if score.high is not None else label


def _title(key: str, scores: Sequence[Score]) -> str:
    """The panel's title: the topics of the scores plotted, in order, joined as words, as in
    "(b) Symptom severity (SSS) and PHQ-4"."""
    topics: list[str] = []
    for score in scores:
        topic = score.chart_topic or score.report_label or score.code.code
        if topic not in topics:
            topics.append(topic)
    words = " and ".join(filter(None, (", ".join(topics[:-1]), topics[-1]))) if topics else ""
    return f"({key}) {words[:1].upper()}{words[1:]}".rstrip()


def _line(series: Series, label: str, style: Style) -> Line:
    # A score's few values are shared objects (`core.exact`): each turned into a float once.
    floats: dict[int, float] = {}
    points: list[tuple[date, float | None]] = []
    for point in series.points:
        value = point.value
        if isinstance(value, Fraction):
            number = floats.get(id(value))
            if number is None:
                number = floats[id(value)] = float(value)
            points.append((point.day, number))
        else:
            points.append((point.day, None))
    return Line(series.code, label, style, tuple(points))


def _guides(report: FollowUp, codes: Sequence[str], low: float) -> tuple[Guide, ...]:
    """Band thresholds of the scores plotted; scores sharing a threshold share its guide."""
    named: dict[Fraction, list[str]] = {}
    for code in codes:
        series = report.series_for(code)
        bands = series.info.bands if series else None
        if series is None or bands is None:
            continue
        for band in bands.bands:
            if band.low is not None and band.low > low:
                shown = named.setdefault(Fraction(band.low), [])
                shown.append(f"{series.label.removesuffix(' total')}: {band.display.lower()}")
    return tuple(
        Guide(float(value), f"{', '.join(labels)} \u2265 {number_text(value)}")
        for value, labels in named.items()
    )


def shifted(day: date, days: int) -> date:
    """`day` moved by `days`, held within the calendar (year 1 to 9999)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _xlim(report: FollowUp) -> tuple[date, date]:
    days = [visit.day for visit in report.visits]
    days += [phase.start for phase in report.phases]
    days += [phase.end for phase in report.phases if phase.end is not None]
    first, last = min(days), max(days)
    pad = max(14, (last - first).days // 30)
    return shifted(first, -pad), shifted(last, pad)


def _alt(title: str, lines: Sequence[Line], report: FollowUp) -> str:
    parts = []
    for line in lines:
        # the first and the last value, read from each end (years of visits lie between)
        first = next((i for i, (_, value) in enumerate(line.points) if value is not None), None)
        if first is None:
            parts.append(f"{line.label}: no values")
            continue
        last = (
            len(line.points)
            - next(i for i, (_, value) in enumerate(reversed(line.points)) if value is not None)
            - 1
        )
        (d0, v0), (d1, v1) = line.points[first], line.points[last]
        assert v0 is not None and v1 is not None  # found as values above
        if first == last:
            parts.append(f"{line.label}: {_shown(v0)} on {d0}")
        else:
            parts.append(f"{line.label}: {_shown(v0)} on {d0} to {_shown(v1)} on {d1}")
    parts = parts or ["no values recorded"]
    parts.append(f"LDN from {report.ldn_start}" if report.ldn_start else "no LDN recorded")
    return f"{title} for {report.patient.label}: " + "; ".join(parts) + "."


def _shown(value: float) -> str:
    return f"{value:g}"


def chart_data(report: FollowUp) -> tuple[ChartData, ...]:
    """Both panels of a patient, as plain data (what is drawn)."""
    xlim = _xlim(report)
    span = (xlim[1] - xlim[0]).days or 1
    doses = sorted({phase.dose_mg for phase in report.phases if phase.dose_mg is not None})
    shades = []
    for phase in report.phases:
        end = min(shifted(phase.end, 1), xlim[1]) if phase.end else xlim[1]
        rank = doses.index(phase.dose_mg) + 1 if phase.dose_mg in doses else 1
        alpha = round(0.08 + 0.22 * rank / max(len(doses), 1), 3)
        wide = (end - phase.start).days / span >= LABELLED_PHASE
        if len(report.phases) <= LEGEND_PHASES:
            legend = f"LDN {phase.dose_text} from {phase.start}"
        elif len(doses) <= LEGEND_PHASES:
            legend = f"LDN {phase.dose_text}"
        else:
            legend = "LDN (darker: higher dose)"
        shades.append(Shade(phase.start, end, f"LDN {phase.dose_text}", legend, alpha, wide))
    if report.phases:
        listed = "; ".join(
            f"{phase.dose_text} from {phase.start}"
            + (f" to {phase.end}" if phase.end else ", ongoing")
            for phase in report.phases
        )
        caption = f"Shaded: LDN, {listed}."
    else:
        caption = "No LDN MedicationStatement in the data."
    panels = []
    for key, panel in PANELS.items():
        wanted = panel_scores(key)
        lines = []
        drawn = []
        high = 0
        for position, score in enumerate(wanted):
            series = report.series_for(score.code.code)
            if series is not None:
                style = panel.styles[position % len(panel.styles)]
                lines.append(_line(series, line_label(score), style))
                drawn.append(score)
                high = max(high, score.high or 0)
        if panel.optional and not lines:
            continue
        high = high or panel.empty_high
        codes = [score.code.code for score in drawn]
        title = _title(key, drawn or wanted)
        ylabel = f"Score (0-{high})"
        marks = _marks(report, codes)
        alt = _alt(title, lines, report)
        if marks:
            alt = alt[:-1] + "; " + "; ".join(f"{m.label} on {m.day}" for m in marks) + "."
        panels.append(
            ChartData(
                panel=key,
                title=title,
                ylabel=ylabel,
                ylim=(0.0, float(high)),
                xlim=xlim,
                lines=tuple(lines),
                phases=tuple(shades),
                guides=_guides(report, codes, 0),
                caption=caption,
                alt=alt,
                marks=marks,
            )
        )
    return tuple(panels)


def _marks(report: FollowUp, codes: Sequence[str]) -> tuple[Mark, ...]:
    """The flags whose instrument the panel plots: raised, or not answered, at each visit."""
    marks = []
    for series in report.series:
        if not series.info.flag or not set(series.info.companions) & set(codes):
            continue
        short = series.label.split(" (")[0]
        for point in series.points:
            if series.info.raised(point):
                marks.append(Mark(point.day, f"{short} raised ({number_text(point.number)})"))  # type: ignore[arg-type]  # raised: a number
        for flagged, day, _ in report.unknown_flags:
            if flagged is series:
                marks.append(Mark(day, f"{short} not answered"))
    return tuple(sorted(marks, key=lambda mark: mark.day))


def month_ticks(xlim: tuple[date, date]) -> list[date]:
    """First days of months, about six to eight of them across the axis."""
    first, last = xlim
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    steps = (1, 2, 3, 4, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000, 12000, 24000)
    step = next(n for n in steps if months / n <= 8)
    ticks = []
    # the first month on the step (January-aligned from yearly steps), then every step months
    index = first.year * 12 + first.month - 1
    index += -index % step
    while index <= last.year * 12 + last.month - 1:
        tick = date(index // 12, index % 12 + 1, 1) if index >= 12 else None
        if tick is not None and first <= tick <= last:
            ticks.append(tick)
        index += step
    return ticks
