"""The follow-up report as one self-contained HTML page per patient, and an index page.

Self-contained: the charts are inline SVG data: URIs, the style is in the page, there is no
script and no outside request (hospitals run offline). Accessible: a `lang`, one h1 and ordered
headings, tables with captions and header cells, a text alternative for every chart, flags that
say what they mean in words (colour only repeats it), and text contrast above 7:1.

What it shows comes from the declarations (see `core.py`): the scores with a `report_label`,
each with its rule; flags (scores declared with an alert, the PHQ-9 item 9) open the page when
raised or not answered, and have their own column in the visits table and in the index,
whatever the totals: raised, not raised (answered 0), or not answered (never read as a no).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from fractions import Fraction
from html import escape

from adapter import __version__
from adapter import report_codes as codes
from adapter.report.charts import ChartData, chart_data
from adapter.report.core import (
    DAYS_PER_MONTH,
    Change,
    FollowUp,
    Point,
    Series,
    number_text,
    percent_text,
)
from adapter.report.drawing import draw
from adapter.report.rules import CHANGE_ONLY, RULES, ResponderRule

DISPLAYS = dict(codes.REPORT_CODES)
TONE = {code: "good" for code in codes.IMPROVED} | {code: "bad" for code in codes.WORSENED}
TONE |= {codes.REMISSION: "good", codes.RESPONDER: "good"}
"""Importantly better reads green, importantly worse red, everything else neutral grey."""


STYLE = """
:root { color: #1a1a1a; background: #ffffff; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  line-height: 1.5; margin: 0 auto; max-width: 70rem; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 1px solid #cccccc; }
h3 { font-size: 1.1rem; }
a { color: #0b4f8a; }
a:focus, a:hover { outline: 2px solid #0b4f8a; outline-offset: 2px; }
.lead { color: #333333; margin-top: 0; }
.note { border-left: 0.35rem solid #8a5300; background: #fff6e5; padding: 0.6rem 1rem; }
.note h2 { border: 0; margin-top: 0.2rem; font-size: 1.1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1.2rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #b3b3b3; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.band, .why { color: #444444; font-size: 0.9em; }
.absent { font-style: italic; }
.tag { font-size: 0.8em; border: 1px solid #555555; border-radius: 0.3rem; padding: 0 0.25rem; }
.flag { display: inline-block; border-radius: 0.3rem; padding: 0.05rem 0.4rem; font-weight: 600; }
.flag.good { background: #e3f2e6; color: #0d4a1c; border: 1px solid #0d4a1c; }
.flag.bad { background: #fbe7e3; color: #7a1600; border: 1px solid #7a1600; }
.flag.neutral { background: #eeeeee; color: #262626; border: 1px solid #595959; }
.alert { border: 2px solid #7a1600; border-left-width: 0.5rem; background: #fbe7e3;
  color: #1a1a1a; padding: 0.4rem 1rem; margin-top: 1rem; }
.alert h2 { border: 0; margin-top: 0.2rem; font-size: 1.2rem; color: #7a1600; }
td.flagged { background: #fbe7e3; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #dddddd; }
figcaption { color: #333333; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
footer { margin-top: 2.5rem; font-size: 0.95em; }
footer h2 { font-size: 1.15rem; }
time { white-space: nowrap; }
"""


def _page_start(title: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="fms-fhir {escape(__version__)}">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        "<body>\n"
    )


PAGE_END = "\n</body>\n</html>\n"


def _page(title: str, body: str) -> str:
    return f"{_page_start(title)}{body}{PAGE_END}"


def _day(day: date | None) -> str:
    """A date that never wraps inside a table cell."""
    if not day:
        return ""
    text = day.isoformat()
    return f'<time datetime="{text}">{text}</time>'


def _number(value: Fraction) -> str:
    """A number for people: a true minus sign for negative values."""
    return number_text(value).replace("-", "\u2212")


def _signed(value: Fraction) -> str:
    return number_text(value, signed=True).replace("-", "\u2212")


def _percent(value: Fraction) -> str:
    return f"{percent_text(value)}\u00a0%".replace("-", "\u2212")


def _value(point: Point | None, series: Series) -> str:
    """A value with its band; a gap says why; a missing visit says so (never a number)."""
    if point is None:
        return '<span aria-hidden="true">&mdash;</span><span class="visually-hidden">not recorded</span>'
    if point.value is None:
        return f'<span class="absent">no value</span> <span class="why">({escape(point.absent or "")})</span>'
    if isinstance(point.value, bool):
        # the self-report criteria: a survey result, never a diagnosis (docs/instruments.md)
        text = "survey criteria met" if point.value else "survey criteria not met"
    else:
        text = _number(point.value)
        if point.band is not None:
            text += f' <span class="band">{escape(point.band.display.lower())}</span>'
    if point.preliminary:
        text += ' <span class="why">(preliminary)</span>'
    if point.reported:
        text += (
            ' <span class="tag" title="a total typed from a sheet, not computed">reported</span>'
        )
    return text


def _on_ldn(days: int | None) -> str:
    if days is None:
        return "no LDN record"
    if days < 0:
        return f"{-days} days before LDN"
    return f"day {days} ({_months(days)} months)"


def _months(days: int) -> str:
    """`days` (0 or more) in months to one decimal, half up, a trailing .0 dropped: what
    `number_text(days / DAYS_PER_MONTH, 1)` gives, in integers (one visit a day is a new number
    of days at every row of a long history)."""
    per_month = DAYS_PER_MONTH.numerator
    tenths = (20 * days * DAYS_PER_MONTH.denominator + per_month) // (2 * per_month)
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth}" if tenth else f"{whole}"


def _badge(code: str) -> str:
    return f'<span class="flag {TONE.get(code, "neutral")}">{escape(DISPLAYS[code])}</span>'


def _flag(change: Change) -> str:
    """The rule's result, then the results beside it (response, remission, band transition)."""
    found = [code for code in (change.category, *change.extras) if code is not None]
    return " ".join(_badge(code) for code in found)


def _result(series: Series, point: Point | None) -> str:
    """The result of a visit's value under a per-visit rule (the PGIC responder), as a flag."""
    category = series.result(point) if point is not None else None
    if category is None:
        return ""
    return f'<span class="flag {TONE.get(category, "neutral")}">{escape(DISPLAYS[category])}</span>'


RAISED = '<span class="flag bad">Flag raised</span>'
UNKNOWN = '<span class="flag bad">Not answered</span>'


def _flag_cell(report: FollowUp, visit: date, series: Series) -> str:
    """A flag's cell in the visits table: raised with its value, not raised (answered 0), not
    answered (said, never read as not raised), or not recorded (the instrument not given)."""
    point = series.at(visit)
    unknown = report.flag_unknown(series, visit)
    if unknown is not None:
        return (
            f'<td class="text flagged">{UNKNOWN} <span class="why">({escape(unknown)})</span></td>'
        )
    if point is None:
        hidden = '<span class="visually-hidden">not recorded</span>'
        return f'<td class="text"><span aria-hidden="true">&mdash;</span>{hidden}</td>'
    if not isinstance(point.value, Fraction):
        return f'<td class="text">{_value(point, series)}</td>'
    late = ' <span class="why">(preliminary)</span>' if point.preliminary else ""
    if series.info.raised(point):
        return f'<td class="text flagged">{RAISED} {_number(point.value)}{late}</td>'
    return f'<td class="text">not raised (answered {_number(point.value)}){late}</td>'


def _flags(report: FollowUp) -> str:
    """Raised flags, and flags whose item was not answered, at the top of the page whatever the
    totals: each visit that raised one or left it unknown."""
    flags, unknown = report.flags, report.unknown_flags
    if not flags and not unknown:
        return ""
    items = []
    for series, point in flags:
        shown = number_text(point.value) if isinstance(point.value, Fraction) else "raised"
        status = ", preliminary" if point.preliminary else ""
        items.append(
            f"<li><strong>{escape(series.label)}</strong>: raised on {_day(point.day)} "
            f"(value {shown}{status}). {escape(series.info.score.alert or series.info.score.code.display)}.</li>"
        )
    for series, day, why in unknown:
        items.append(
            f"<li><strong>{escape(series.label)}</strong>: <strong>not answered</strong> on "
            f"{_day(day)} ({escape(why)}). Not a negative: ask the question again.</li>"
        )
    return (
        '<section class="alert" aria-labelledby="flags">\n'
        '<h2 id="flags">Flag for clinician review</h2>\n'
        "<p>Raised by an answer on its own, whatever the totals, or unknown because the "
        "question was not answered:</p>\n"
        "<ul>\n" + "\n".join(items) + "\n</ul>\n</section>"
    )


def _rule_link(rule: ResponderRule) -> str:
    return f'<a href="#rule-{escape(rule.code)}">{escape(rule.name)}</a>'


def _figure(data: ChartData) -> str:
    svg = base64.b64encode(draw([data], "svg")).decode("ascii")
    return (
        f'<figure id="chart-{data.panel}">\n'
        f'<img src="data:image/svg+xml;base64,{svg}" alt="{escape(data.alt)}" width="900">\n'
        f"<figcaption>{escape(data.title)}. {escape(data.caption)} Dotted lines: band "
        "thresholds of the score named at the right.</figcaption>\n</figure>"
    )


def _summary(report: FollowUp) -> str:
    visits = report.visits
    facts = [
        ("Patient", escape(report.patient.label)),
        (
            "Visits",
            f"{len(visits)}, from {visits[0].day} to {visits[-1].day}" if visits else "none",
        ),
    ]
    if report.ldn_start:
        last = visits[-1] if visits else None
        facts.append(("LDN started", _day(report.ldn_start)))
        if last and last.days_on_ldn is not None and last.days_on_ldn >= 0:
            dose = f"{last.dose_mg.normalize():f} mg/day" if last.dose_mg else "no dose that day"
            facts.append(
                (
                    "At the last visit",
                    f"{_on_ldn(last.days_on_ldn)} on LDN; dose {dose}",
                )
            )
    else:
        facts.append(("LDN", "no LDN MedicationStatement in the data"))
    facts.append(("Baseline", escape(report.baseline_rule)))
    for caution in report.cautions:
        facts.append(("Old baseline", escape(caution.split(": ", 1)[1])))
    rows = "\n".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    latest: dict[str, Change] = {}
    for change in report.changes:
        if change.change is not None:
            latest[change.series.code] = change
    items = []
    for change in latest.values():
        assert change.baseline is not None and change.change is not None
        words = (
            f"{escape(change.series.label)}: {_number(change.baseline.number)} on "  # type: ignore[arg-type]  # a change has both numbers
            f"{_day(change.baseline.day)} &rarr; {_number(change.follow_up.number)} on "  # type: ignore[arg-type]  # a change has both numbers
            f"{_day(change.day)} (change {_signed(change.change)}"
            + (f", {_percent(change.percent)}" if change.percent is not None else "")
            + ")"
        )
        flag = _flag(change)
        items.append(f"<li>{words}{' ' + flag if flag else ''}</li>")
    for series in report.series:
        if series.info.rule.kind != "per-visit":
            continue
        valued = [point for point in series.points if point.value is not None]
        if valued:
            newest = valued[-1]
            result = _result(series, newest)
            items.append(
                f"<li>{escape(series.label)}: {_value(newest, series)} on {_day(newest.day)}"
                f"{' ' + result if result else ''} <span class='why'>"
                f"({escape(series.info.rule.name)}: the patient's own rating of change since "
                "treatment began, read as it is, not compared with a baseline)</span></li>"
            )
    listed = (
        '<h3 id="latest">Latest change of each score</h3>\n<ul aria-labelledby="latest">\n'
        + "\n".join(items)
        + "\n</ul>"
        if items
        else "<p>No score has a value both at baseline and after it: no change to show.</p>"
    )
    return (
        '<section aria-labelledby="summary">\n<h2 id="summary">Summary</h2>\n'
        f'<dl class="facts">\n{rows}\n</dl>\n{listed}\n</section>'
    )


def _phases(report: FollowUp) -> str:
    if not report.phases:
        return ""
    rows = "\n".join(
        f'<tr><th scope="row">{escape(p.dose_text)}</th><td>{_day(p.start)}</td>'
        f"<td>{_day(p.end) or 'ongoing'}</td><td>{escape(p.text or '')}</td></tr>"
        for p in report.phases
    )
    return (
        '<section aria-labelledby="ldn">\n<h2 id="ldn">Low-dose naltrexone (LDN)</h2>\n'
        "<table>\n<caption>LDN phases, from the MedicationStatement dosages</caption>\n"
        '<thead><tr><th scope="col">Daily dose</th><th scope="col">From</th>'
        '<th scope="col">To (last day)</th><th scope="col">Dosage</th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>\n</section>"
    )


def _values(report: FollowUp) -> str:
    # flags first, so a raised one is seen before the totals
    shown = sorted(report.series, key=lambda series: not series.info.flag)
    flagged = (
        "; a flag is raised, not raised (its item answered 0) or not answered, never read as "
        "not raised"
        if any(series.info.flag for series in shown)
        else ""
    )
    head = "".join(f'<th scope="col">{escape(s.label)}</th>' for s in shown)
    texts = _Texts()
    rows = []
    for visit in report.visits:
        cells = []
        for series in shown:
            if series.info.flag:
                cells.append(_flag_cell(report, visit.day, series))
                continue
            cells.append(texts.value_cell(series, series.at(visit.day), report))
        rows.append(
            f'<tr><th scope="row">{texts.day(visit.day)}</th>'
            f"<td>{texts.on_ldn(visit.days_on_ldn)}</td><td>{texts.dose(visit.dose_mg)}</td>"
            + "".join(cells)
            + "</tr>"
        )
    return (
        '<section aria-labelledby="values">\n<h2 id="values">Scores at each visit</h2>\n'
        "<table>\n<caption>Score values by visit (band in small type; &mdash;: not recorded "
        f"at that visit{flagged})</caption>\n"
        '<thead><tr><th scope="col">Visit</th><th scope="col">Time on LDN</th>'
        f'<th scope="col">LDN dose</th>{head}</tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</section>"
    )


class _Texts:
    """The texts of one page's two long tables, each made once: years of daily visits repeat
    the same few values, days, doses and changes tens of thousands of times (a 10,000-visit
    page formatted each of them again: a third of its time).

    Keys name what a text shows; objects are named by identity only while the report holding
    them is alive (one page), so a key never outlives what it names."""

    def __init__(self) -> None:
        self._days: dict[date, str] = {}
        self._on_ldn: dict[int | None, str] = {}
        self._doses: dict[Decimal | None, str] = {}
        self._values: dict[tuple[object, ...] | None, str] = {}
        self._cells: dict[tuple[object, ...], str] = {}
        self._rows: dict[tuple[object, ...], str] = {}
        self._labels: dict[int, str] = {}

    def day(self, day: date) -> str:
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = _day(day)
        return text

    def on_ldn(self, days: int | None) -> str:
        text = self._on_ldn.get(days)
        if text is None:
            text = self._on_ldn[days] = _on_ldn(days)
        return text

    def dose(self, dose: Decimal | None) -> str:
        text = self._doses.get(dose)
        if text is None:
            text = f"{dose.normalize():f} mg/day" if dose else "&mdash;"
            self._doses[dose] = text
        return text

    def value(self, point: Point | None, series: Series) -> str:
        key = _shown(point)
        text = self._values.get(key)
        if text is None:
            text = self._values[key] = _value(point, series)
        return text

    def value_cell(self, series: Series, point: Point | None, report: FollowUp) -> str:
        """A score's cell in the visits table: its value, its per-visit result, the baseline."""
        base = report.baselines.get(series.code)
        is_base = base is not None and point is not None and point.key == base.key
        key = (id(series), _shown(point), is_base)
        cell = self._cells.get(key)
        if cell is None:
            text = self.value(point, series)
            result = _result(series, point)
            if result:
                text += f" {result}"
            if is_base:
                text += ' <span class="tag">baseline</span>'
            numeric = point is not None and isinstance(point.value, Fraction)
            cell = self._cells[key] = f'<td class="{"num" if numeric else "text"}">{text}</td>'
        return cell

    def change_row(self, change: Change) -> str:
        """A row of the change table after its score and day; the parts of a change are shared
        by every follow-up with the same value (`core.build` classifies each pair once)."""
        series, day, base, follow_up, delta, percent, _, category, explanation, extras = change
        key = (
            id(series),
            id(base),
            _shown(follow_up),
            id(delta),
            id(percent),
            category,
            id(extras),
            id(explanation),
        )
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = self._change_cells(change)
        return f"{self._label(series)}<td>{self.day(day)}</td>{row}"

    def _label(self, series: Series) -> str:
        text = self._labels.get(id(series))
        if text is None:
            text = self._labels[id(series)] = f'<tr><th scope="row">{escape(series.label)}</th>'
        return text

    def _change_cells(self, change: Change) -> str:
        base = change.baseline
        if base is None:
            base_text = '<span class="absent">none</span>'
        else:  # a change row is made once per value, not per visit: its baseline's text too
            base_text = f"{self.value(base, change.series)} <span class='why'>on {self.day(base.day)}</span>"
        follow_text = self.value(change.follow_up, change.series)
        delta = _signed(change.change) if change.change is not None else "&mdash;"
        if change.percent is not None:
            percent = _percent(change.percent)
        elif change.change is not None:
            percent = '<span class="why">undefined (baseline 0)</span>'
        else:
            percent = "&mdash;"
        flag = _flag(change)
        result = f"{flag} <span class='why'>{escape(change.explanation)}</span>".strip()
        return (
            f'<td class="num">{base_text}</td><td class="num">{follow_text}</td>'
            f'<td class="num">{delta}</td><td class="num">{percent}</td>'
            f"<td>{result}</td><td>{_rule_link(change.rule)}</td></tr>"
        )


def _shown(point: Point | None) -> tuple[object, ...] | None:
    """What `_value` shows of a point, by identity: the same value object (a score's few
    values are shared objects, `core.exact`), gap reason, band, status and origin, the same
    text. Distinct equal objects only make two keys of one text."""
    if point is None:
        return None
    _, value, absent, _, _, status, band, reported, _ = point
    return (id(value), absent, id(band), status, reported)


def _changes_parts(report: FollowUp) -> Iterator[str]:
    """The change table a row at a time: with years of visits it is most of the page (26 MB
    for 10,000 visits), so a page sent as it is made never holds it whole."""
    if not report.changes:
        yield (
            '<section aria-labelledby="changes">\n<h2 id="changes">Change from baseline</h2>\n'
            "<p>No visit after the baseline day: no change to show.</p>\n</section>"
        )
        return
    yield (
        '<section aria-labelledby="changes">\n<h2 id="changes">Change from baseline</h2>\n'
        "<table>\n<caption>Each score at each follow-up visit against its baseline "
        "(change = follow-up &minus; baseline; a fall is an improvement on every score "
        "here)</caption>\n"
        '<thead><tr><th scope="col">Score</th><th scope="col">Follow-up visit</th>'
        '<th scope="col">Baseline</th><th scope="col">Follow-up</th><th scope="col">Change</th>'
        '<th scope="col">Percent change</th><th scope="col">Result</th>'
        '<th scope="col">Rule</th></tr></thead>\n'
        "<tbody>\n"
    )
    texts = _Texts()
    separator = ""
    for change in report.changes:
        yield f"{separator}{texts.change_row(change)}"
        separator = "\n"
    yield "\n</tbody>\n</table>\n</section>"


def _provenance(report: FollowUp) -> str:
    """Test data says that it is; what it says of its origin is in its own notes (provenance)."""
    if report.test_data:
        return (
            '<aside class="note" aria-labelledby="example">\n'
            '<h2 id="example">Test data</h2>\n'
            "<p>Resources of this patient are tagged as test health data (HTEST): not for care "
            "or statistics. What they say about their origin is listed under "
            '<a href="#provenance">Data provenance</a>.</p>\n</aside>'
        )
    return ""


def _data_notes(report: FollowUp) -> str:
    if not report.notes and not report.warnings:
        return ""
    items = [f"<li>{escape(note)}</li>" for note in report.notes]
    items += [f"<li>Left out by the report: {escape(w)}</li>" for w in report.warnings]
    return (
        '<section aria-labelledby="provenance">\n<h2 id="provenance">Data provenance</h2>\n'
        "<p>Notes carried by the resources themselves, and what the report could not use:</p>\n"
        "<ul>\n" + "\n".join(items) + "\n</ul>\n</section>"
    )


def _footer(report: FollowUp) -> str:
    rules = [*RULES, CHANGE_ONLY]
    items = []
    for rule in rules:
        scores = ", ".join(s.label for s in report.series if s.info.rule.code == rule.code)
        if not scores:
            continue
        text = f"<strong>{escape(rule.name)}</strong> ({escape(scores)}): {escape(rule.summary)}."
        if rule.caveat:
            text += f" <strong>Note:</strong> {escape(rule.caveat)}."
        if rule.source:
            text += f" Source: {escape(rule.source)}."
        if rule.kind == "band-transition":  # the bands, and their sources, are the score's own
            schemes = [(s.label, s.info.bands) for s in report.series if s.info.rule is rule]
            text += " Bands, with their sources: " + "; ".join(
                f"{escape(label)}: {escape(bands.name)}" for label, bands in schemes if bands
            )
            text += "."
        items.append(f'<li id="rule-{escape(rule.code)}">{text}</li>')
    methods = "\n".join(_method(series) for series in report.series)
    return (
        '<footer aria-labelledby="rules">\n<h2 id="rules">Scoring rules and sources</h2>\n'
        f"<p><strong>Baseline</strong>: {escape(report.baseline_rule)}; each score's baseline "
        "is its last value on or before that day (a visit where it has no value is skipped, "
        "never read as 0), and the visits after that day are its follow-ups. "
        "<strong>Change</strong> = follow-up &minus; baseline; <strong>percent change</strong> = "
        "change / baseline &times; 100, undefined when the baseline is 0 (then no percent and no "
        "percent-based category). Categories are decided on the exact values; the tables round "
        "values to 2 decimals and percentages to 1. <strong>Time on LDN</strong>: days since the "
        "first LDN dose (months: days / 30.4375); the dose at a visit is that of the dosage "
        "period containing its day.</p>\n"
        f"<h3>Responder rules</h3>\n<ol>\n{chr(10).join(items)}\n</ol>\n"
        f"<h3>How each score is computed</h3>\n<ul>\n{methods}\n</ul>\n"
        "<p>Moser U. Low-dose naltrexone for severe fibromyalgia syndrome: a report of a case "
        "with two-year follow-up. Cureus 2025;17(5):e83824 (the panels follow its figures 2 and "
        "3). Generated by fms-fhir from FHIR score Observations and LDN MedicationStatements; "
        "the same results are available as change Observations.</p>\n</footer>"
    )


def _method(series: Series) -> str:
    """How a score's values came to be: the formula for computed values; for totals typed from
    a sheet (method `reported`) only that, since no formula ran on them."""
    valued = [point for point in series.points if point.value is not None]
    reported = [point for point in valued if point.reported]
    bands = f" Bands: {escape(series.info.bands.name)}." if series.info.bands else ""
    label = f"<li><strong>{escape(series.label)}</strong>: "
    typed = (
        "typed as a total from a sheet (Observation.method <code>reported</code>), not computed "
        "by fms-fhir: no item formula applies to it"
    )
    if valued and len(reported) == len(valued):
        return f"{label}every value is {typed}.{bands}</li>"
    text = f"{label}{escape(series.info.score.method)}."
    if reported:
        days = ", ".join(str(point.day) for point in reported)
        text += f" The values of {days} are {typed}."
    return f"{text}{bands}</li>"


def report_html(report: FollowUp, index_href: str | None = None) -> str:
    """The page of one patient."""
    return "".join(report_html_parts(report, index_href))


def report_html_parts(report: FollowUp, index_href: str | None = None) -> Iterator[str]:
    """The page of one patient in the order it reads, each part made when it is asked for:
    what `report_html` joins, for an edge that sends the page as it is made."""
    title = f"Follow-up report: {report.patient.label}"
    back = f'<p><a href="{escape(index_href)}">All patients</a></p>\n' if index_href else ""
    yield _page_start(title)
    yield (
        f"<header>\n{back}<h1>{escape(title)}</h1>\n"
        '<p class="lead">Change over time of the fibromyalgia scores against the start of '
        "low-dose naltrexone (LDN), computed from FHIR.</p>\n</header>\n<main>\n"
        f"{_flags(report)}\n{_provenance(report)}\n{_summary(report)}\n"
        '<section aria-labelledby="charts">\n<h2 id="charts">Charts</h2>\n'
    )
    separator = ""
    for data in chart_data(report):
        yield separator + _figure(data)
        separator = "\n"
    yield "\n</section>\n"
    yield from _changes_parts(report)
    yield (
        f"\n{_values(report)}\n{_phases(report)}\n{_data_notes(report)}\n</main>\n{_footer(report)}"
    )
    yield PAGE_END


def index_html(reports: Sequence[FollowUp], hrefs: Sequence[str]) -> str:
    """The index of several patients' pages."""
    rows = []
    for report, href in zip(reports, hrefs, strict=True):
        visits = report.visits
        span = f"{_day(visits[0].day)} to {_day(visits[-1].day)}" if visits else "&mdash;"
        flags = []
        latest: dict[str, Change] = {}
        for change in report.changes:
            if change.change is not None and change.category is not None:
                latest[change.series.code] = change
        for change in latest.values():
            flags.append(f"{escape(change.series.label)}: {_flag(change)}")
        for series in report.series:
            valued = [p for p in series.points if p.value is not None]
            result = _result(series, valued[-1]) if valued else ""
            if result:
                flags.append(f"{escape(series.label)}: {result}")
        raised: dict[str, date] = {}
        for series, point in report.flags:
            raised[series.label] = point.day
        unknown: dict[str, date] = {}
        for series, day, _ in report.unknown_flags:
            unknown[series.label] = day
        alerts = "<br>".join(
            [f"{RAISED} {escape(label)}, last on {_day(day)}" for label, day in raised.items()]
            + [f"{UNKNOWN} {escape(label)}, last on {_day(day)}" for label, day in unknown.items()]
        )
        alert_cell = '<td class="flagged">' if alerts else "<td>"
        rows.append(
            f'<tr><th scope="row"><a href="{escape(href)}">{escape(report.patient.label)}</a>'
            + (' <span class="tag">example</span>' if report.test_data else "")
            + f"</th><td>{len(visits)}</td><td>{span}</td>"
            f"<td>{_day(report.ldn_start) or 'no LDN record'}</td>"
            f"{alert_cell}{alerts or 'none'}</td>"
            f"<td>{'<br>'.join(flags) or '&mdash;'}</td></tr>"
        )
    body = (
        "<header>\n<h1>Follow-up reports</h1>\n"
        f'<p class="lead">{len(reports)} patient(s). Each page shows the scores over time, the '
        "change from baseline with responder categories, LDN phases and doses, and the rules "
        "with their sources.</p>\n</header>\n<main>\n<table>\n<caption>Patients</caption>\n"
        '<thead><tr><th scope="col">Patient</th><th scope="col">Visits</th>'
        '<th scope="col">First to last visit</th><th scope="col">LDN started</th>'
        '<th scope="col">Flags for clinician review</th>'
        '<th scope="col">Latest responder results</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</main>"
    )
    return _page("Follow-up reports", body)
