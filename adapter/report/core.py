"""Change over time, per patient: score series, baseline, change, responder category, LDN phases.

Pure: resources in, plain values out, no I/O and no FHIR building (that is `observations.py`).
What is shown comes from the declarations: every score of `mappings/` with a `report_label`,
recognized by Observation.code, in `report_rank` order, with the bands of its band scheme and
the change rule it names (`report_change`, defined in `rules.py`). A shown score declared with
an `alert` is a flag (the PHQ-9 item 9): raised, not raised, or not answered at each visit,
never read as not raised when unknown.

Numbers are exact fractions inside, so a threshold is met or not on the exact value (100 -> 70
is a 30% reduction, not 29.999...); rounding happens only for display and output.

Nothing is invented: a score with a dataAbsentReason is a gap (never a zero), a visit without a
score has no point, a score without a value on or before the baseline day has no change, and a
baseline of 0 has no percent.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cached_property, lru_cache
from html import unescape
from typing import Any, Literal, NamedTuple, TypeVar

import orjson

from adapter import registry
from adapter import report_codes as codes
from adapter.ids import resource_id
from adapter.instrument import Band, BandScheme, Instrument, Score
from adapter.jsonio import SurrogateFree
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.report.rules import ResponderRule, rule_of
from adapter.settings import Settings
from adapter.terminology import coding
from mappings import ldn

MAP = (dict, Mapping)
"""What `isinstance` takes for a JSON object: a dict is recognised at once, before the ABC."""


def shown_scores() -> tuple[Score, ...]:
    """The scores the report shows: every declared score with a `report_label`, in report order
    (`report_rank`, then registry order). A new mapping is shown with no change here."""
    shown = [score for score in registry.scores().values() if score.report_label]
    return tuple(sorted(shown, key=lambda score: score.report_rank))


HTEST = ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")
"""meta.security tag of test data: a resource carrying it marks its patient's data as an example."""

DAYS_PER_MONTH = Fraction(36525, 1200)
"""30.4375 days: a month of an average year (365.25 / 12), for time on treatment in months."""

SKIPPED_OBSERVATIONS = frozenset({"entered-in-error", "cancelled"})
SKIPPED_STATEMENTS = frozenset({"entered-in-error", "not-taken", "intended"})

BaselineSource = Literal["named", "ldn-start", "first-value"]


# --- values --------------------------------------------------------------------------------


LARGEST = 10**15
"""No score, dose or timing the report reads is this large: a number at or beyond it is out of
range (read as no value, with a warning), so arithmetic on it never runs away."""
PLACES = 12
"""Numbers are read to this many decimal places (a score has two at most)."""


def exact(value: Any) -> Fraction | None:
    """A JSON number as an exact fraction of its written digits (72.5 is 145/2), or None.

    Parsers give an int, a float or a Decimal (`adapter.jsonio.loads` keeps decimals exact).
    None also for a number outside +-LARGEST (1e308, 1e4300, 9e9999999999: turning those into
    fractions would take a worker's memory and time); digits beyond PLACES are rounded.

    A float or an int is remembered (a score has few values, read again at every visit: the
    conversion was a tenth of reading an Observation); a float and an int are kept apart, so
    that each is converted by its own rule."""
    kind = type(value)
    if kind is float or kind is int:
        known = _EXACT_FLOATS if kind is float else _EXACT_INTS
        found = known.get(value)
        if found is None:
            found = _exact(value)
            if found is not None:
                _keep(known, value, found, EXACT_CACHED)
        return found
    return _exact(value)


def _exact(value: Any) -> Fraction | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = Decimal(repr(value))
    if isinstance(value, int):
        return Fraction(value) if -LARGEST < value < LARGEST else None
    if not isinstance(value, Decimal) or not value.is_finite() or value.adjusted() >= 15:
        return None
    if value.as_tuple().exponent < -PLACES:  # type: ignore[operator]  # an int: value is finite
        value = value.quantize(Decimal(1).scaleb(-PLACES), rounding=ROUND_HALF_UP)
    return Fraction(value)


def is_number(value: Any) -> bool:
    """A JSON number of any size (what `exact` may still refuse as out of range)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


CACHED = 65536
"""Formatted numbers kept (a report of many visits formats the same few values again and again:
a score has few values, a change and a percent fewer than the pairs of them)."""
K = TypeVar("K")
V = TypeVar("V")
EXACT_CACHED = 16384
"""Numbers remembered by `exact`, of each type: every value a FIQR total can take (0-100 to two
decimals) fits; a few MB at most in a service worker, whatever its clients send."""
_EXACT_FLOATS: dict[float, Fraction] = {}
_EXACT_INTS: dict[int, Fraction] = {}
_ROUNDED: dict[tuple[int, int, int], Decimal] = {}
_NUMBER_TEXTS: dict[tuple[int, int, int, bool], str] = {}
_PERCENT_TEXTS: dict[tuple[int, int, bool], str] = {}


def _keep(cache: dict[K, V], key: K, value: V, most: int = CACHED) -> V:
    if len(cache) < most:  # bounded: a long-running service formats ever new values
        cache[key] = value
    return value


def rounded(value: Fraction, places: int = 2) -> Decimal:
    """Half up to `places` decimals, trailing zeros dropped (72.50 -> 72.5, 35.00 -> 35).

    Remembered by numerator and denominator (a Fraction's own hash is slow), as are the texts."""
    key = (value.numerator, value.denominator, places)
    found = _ROUNDED.get(key)
    if found is not None:
        return found
    quantum = Decimal(1).scaleb(-places)
    number = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        quantum, rounding=ROUND_HALF_UP
    )
    result = number.normalize() if number != number.to_integral() else number.quantize(Decimal(1))
    return _keep(_ROUNDED, key, result)


def number_text(value: Fraction, places: int = 2, signed: bool = False) -> str:
    """Readable number: 72.5, 35; `signed` adds + to rises (a fall keeps its minus)."""
    key = (value.numerator, value.denominator, places, signed)
    found = _NUMBER_TEXTS.get(key)
    if found is not None:
        return found
    text = format(rounded(value, places), "f")
    if text == "-0":
        text = "0"
    text = f"+{text}" if signed and value > 0 and not text.startswith("-") else text
    return _keep(_NUMBER_TEXTS, key, text)


def percent_text(value: Fraction, signed: bool = True) -> str:
    """One decimal, as percent changes are published: -57.1, +14.3."""
    key = (value.numerator, value.denominator, signed)
    found = _PERCENT_TEXTS.get(key)
    if found is not None:
        return found
    text = format(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        ),
        "f",
    )
    if text == "-0.0":
        text = "0.0"
    text = f"+{text}" if signed and value > 0 else text
    return _keep(_PERCENT_TEXTS, key, text)


# --- what the input holds ------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    key: str
    """`system|value` of the subject identifier, or the subject reference."""
    label: str
    """What people read: the identifier value, or the reference."""
    subject: dict[str, Any]
    """The subject element, as the change Observations carry it."""

    def matches(self, name: str) -> bool:
        return name in (self.key, self.label)


def patient_of(subject: Any, known: dict[tuple[str, str], Patient] | None = None) -> Patient | None:
    """The patient a subject names; `known` keeps the patients already named by an identifier
    (a history names the same one at every Observation: made once)."""
    if not isinstance(subject, MAP):
        return None
    ident = subject.get("identifier")
    if isinstance(ident, MAP) and isinstance(ident.get("value"), str) and ident["value"]:
        value: str = ident["value"]
        written = ident.get("system")
        system = written if isinstance(written, str) else ""
        found = known.get((system, value)) if known is not None else None
        if found is None:
            element = {"system": system, "value": value} if system else {"value": value}
            found = Patient(f"{system}|{value}", value, {"identifier": element})
            if known is not None:
                known[(system, value)] = found
        return found
    reference = subject.get("reference")
    if isinstance(reference, str) and reference:
        return Patient(reference, reference, {"reference": reference})
    return None


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 half with no partner (JSON may escape one, "\\ud800"): no UTF-8 page, file name or
JSON output can hold it."""


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD, the replacement
    character (the same object when it holds none).

    Nearly every resource holds none: orjson, which refuses a lone surrogate anywhere in a
    value, finds that out in C, and only a value it refuses (for that or for a number beyond
    64 bits) is walked and copied in Python; a resource its reader vouches for
    (`SurrogateFree`: read by `adapter.jsonio`, which refuses lone surrogates) is not looked at."""
    if type(value) is SurrogateFree:
        return value
    if isinstance(value, Mapping | list):
        try:
            orjson.dumps(value, default=str)
        except (TypeError, orjson.JSONEncodeError):
            return _scrubbed(value)
        return value
    return _scrubbed(value)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value) if LONE_SURROGATE.search(value) else value
    if isinstance(value, MAP):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    return value


def _list(value: Any) -> list[Any]:
    """A JSON array, or nothing: input of any shape is read without an exception."""
    return value if isinstance(value, list) else []


def day_of(text: Any) -> date | None:
    """The day of a FHIR date or dateTime; None for partial dates (2025-04) and other values."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


class Point(NamedTuple):
    """One score Observation: a value, or a gap with its reason (never a zero).

    Immutable as a tuple (a frozen dataclass costs some 1.1 us more to make, 0.05 s over the
    40,000 points of ten years of daily visits)."""

    day: date
    value: Fraction | bool | None
    absent: str | None
    key: str
    """Stable key of the Observation: its identifier value, `Observation/<id>`, or derived."""
    named: dict[str, Any] | None
    """How a change Observation names it in derivedFrom when not by the project's identifier
    (`by_system`): another identifier, or `Observation/<id>`; None with neither: no name."""
    status: str = "final"
    band: Band | None = None
    reported: bool = False
    """A total typed from a sheet (Observation.method `reported`), not computed from items."""
    by_system: str | None = None
    """Named by the project's identifier (this system, the key its value): that reference is made
    when asked for, not held by each point of a long history (16 MiB at 10,000 visits)."""

    @property
    def reference(self) -> dict[str, Any] | None:
        """How a change Observation names it in derivedFrom (by identifier where it has one)."""
        if self.by_system is not None:
            return {
                "type": "Observation",
                "identifier": {"system": self.by_system, "value": self.key},
            }
        return self.named

    def __repr__(self) -> str:  # the reference as it is read, whether held or made
        return (
            f"Point(day={self.day!r}, value={self.value!r}, absent={self.absent!r}, "
            f"key={self.key!r}, reference={self.reference!r}, status={self.status!r}, "
            f"band={self.band!r}, reported={self.reported!r})"
        )

    @property
    def number(self) -> Fraction | None:
        return self.value if isinstance(self.value, Fraction) else None

    @property
    def preliminary(self) -> bool:
        return self.status == "preliminary"


@dataclass(frozen=True)
class ScoreInfo:
    code: str
    label: str
    score: Score
    coding: dict[str, Any]
    bands: BandScheme | None
    """The score's band scheme: the mapping's default, or the one the settings choose."""
    rule: ResponderRule
    """The change rule the score declares (or its default)."""

    answers: Mapping[tuple[Any, Any], int] = field(default_factory=dict)
    """(system, code) -> score of the coded answers its Observation may carry as its value."""
    companions: tuple[str, ...] = ()
    """The other shown scores of its instrument: a visit with one of them and without this
    flag's Observation had the instrument, yet nothing says what the flag's item was."""

    @property
    def numeric(self) -> bool:
        return self.score.value_type != "boolean"

    @property
    def range_text(self) -> str:
        low, high = self.score.low, self.score.high
        return f"the score's range {low}-{high}" if high is not None else "the score's range"

    def outside(self, value: Fraction) -> bool:
        """Outside the score's declared range: not a value of this score."""
        low, high = self.score.low, self.score.high
        if isinstance(low, int) and isinstance(high, int):  # Fraction's own compare is slow
            scaled_low, scaled_high = low * value.denominator, high * value.denominator
            return not scaled_low <= value.numerator <= scaled_high
        return (low is not None and value < low) or (high is not None and value > high)

    @property
    def flag(self) -> bool:
        """A flag: a score declared with an alert (its Observation holds the item's answer for
        every response), or one whose Observation exists only when raised (emit="when-computed",
        as the PHQ-9 item 9 flag was first sent)."""
        return self.score.alert is not None or self.score.emit == "when-computed"

    def raised(self, point: Point) -> bool:
        """A flag's point that raises it: a value in the `positive` band (any value, for a flag
        whose Observation exists only when raised)."""
        if point.value is None:
            return False
        if self.score.emit == "when-computed":
            return True
        return point.band is not None and point.band.code == "positive"


def _instrument_of(score: Score) -> Instrument | None:
    return next(
        (i for i in registry.instruments().values() if any(s is score for s in i.scores)), None
    )


def score_index(settings: Settings) -> dict[tuple[str, str], ScoreInfo]:
    """(system, code) -> the shown score, from the registry's declarations; a score with
    further codings (`Score.codings`) is found by each of them."""
    index: dict[tuple[str, str], ScoreInfo] = {}
    for score in shown_scores():
        system = score.code.system or settings.codesystem_url
        bands = score.scheme(settings.schemes.get(score.code.code))
        instrument = _instrument_of(score)
        answers: dict[tuple[Any, Any], int] = {}
        companions: tuple[str, ...] = ()
        if instrument is not None:
            if score.answer_item is not None:
                item = instrument.item_index[score.answer_item]
                answers = {(o.code.system, o.code.code): o.score for o in item.options}
            companions = tuple(
                other.code.code
                for other in instrument.scores
                if other is not score and other.report_label
            )
        info = ScoreInfo(
            score.code.code,
            score.report_label or score.code.code,
            score,
            coding(score.code, settings),
            bands,
            rule_of(score),
            answers,
            companions,
        )
        index.setdefault((system, score.code.code), info)
        for other in score.codings:
            index.setdefault((other.system or settings.codesystem_url, other.code), info)
    return index


def _observation_reference(
    resource: Mapping[str, Any], settings: Settings
) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """(key, reference held, system of the project's identifier): by the project's identifier
    (its value is the key: the reference is made from the two when asked for), another
    identifier, or `Observation/<id>`."""
    identifiers = resource.get("identifier")
    if type(identifiers) is list and identifiers and type(identifiers[0]) is dict:
        first = identifiers[0]  # the project's own identifier comes first in what it writes
        value = first.get("value")
        if first.get("system") == settings.identifier_system and isinstance(value, str) and value:
            return value, None, settings.identifier_system
    identifiers = [identifiers] if isinstance(identifiers, MAP) else _list(identifiers)
    usable = [
        i
        for i in identifiers
        if isinstance(i, MAP) and isinstance(i.get("value"), str) and i["value"]
    ]
    ours = next((i for i in usable if i.get("system") == settings.identifier_system), None)
    if ours is not None:
        return ours["value"], None, settings.identifier_system
    other = next((i for i in usable if isinstance(i.get("system"), str)), None)
    if other is not None:
        found = {"system": other["system"], "value": other["value"]}
        key = f"{other['system']}|{other['value']}"
        return key, {"type": "Observation", "identifier": found}, None
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return f"Observation/{rid}", {"reference": f"Observation/{rid}"}, None
    return None, None, None


OUT_OF_RANGE = "a number out of range"


def _value(
    resource: Mapping[str, Any], info: ScoreInfo
) -> tuple[Fraction | bool | None, str | None]:
    """(value, reason it is absent): a number, a yes/no, a coded answer's score, or a gap."""
    if "valueBoolean" in resource and isinstance(resource["valueBoolean"], bool):
        return resource["valueBoolean"], None
    quantity = resource.get("valueQuantity")
    raw = quantity.get("value") if isinstance(quantity, MAP) else None
    raw = raw if is_number(raw) else resource.get("valueInteger")
    if is_number(raw):
        number = exact(raw)
        if number is None:
            return None, OUT_OF_RANGE
        return number, None
    answer = _answer_score(resource.get("valueCodeableConcept"), info)
    if answer is not None:
        return answer, None
    reason = resource.get("dataAbsentReason")
    if isinstance(reason, MAP):
        text = reason.get("text")
        if not isinstance(text, str) or not text:
            codings = reason.get("coding")
            first = codings[0] if isinstance(codings, list) and codings else None
            first = first if isinstance(first, MAP) else {}
            text = first.get("display") or first.get("code") or "data absent"
        return None, str(text)
    return None, "no value"


def _answer_score(concept: Any, info: ScoreInfo) -> Fraction | None:
    """The score of a coded answer (the PHQ-9 item 9 Observation carries the LOINC answer)."""
    codings = concept.get("coding") if isinstance(concept, MAP) else None
    for item in codings if isinstance(codings, list) else []:
        if isinstance(item, MAP):
            found = info.answers.get((item.get("system"), item.get("code")))
            if found is not None:
                return Fraction(found)
    return None


@dataclass(frozen=True)
class DosePhase:
    """One LDN dose over a period; `end` is the last day (inclusive), None while ongoing."""

    start: date
    end: date | None
    dose_mg: Decimal | None
    text: str | None = None

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    @property
    def dose_text(self) -> str:
        return f"{format(self.dose_mg.normalize(), 'f')} mg/day" if self.dose_mg else "dose unknown"


def is_ldn(resource: Mapping[str, Any]) -> bool:
    concept = resource.get("medicationCodeableConcept")
    if not isinstance(concept, MAP):
        return False
    for item in _list(concept.get("coding")):
        if isinstance(item, MAP) and (item.get("system"), item.get("code")) == (
            ldn.NALTREXONE.system,
            ldn.NALTREXONE.code,
        ):
            return True
    text = concept.get("text")
    return isinstance(text, str) and "naltrexone" in text.lower()


DAYS = {"h": Fraction(1, 24), "d": Fraction(1), "wk": Fraction(7)}
"""Timing and rate units (UCUM) as days; longer units are no daily LDN dosing."""


def _mg(quantity: Any) -> Fraction | None:
    if not isinstance(quantity, MAP):
        return None
    unit = quantity.get("code") or quantity.get("unit") or "mg"
    return exact(quantity.get("value")) if unit == "mg" else None


def _days(value: Any, unit: Any) -> Fraction | None:
    number = exact(value)
    return number * DAYS[unit] if number and isinstance(unit, str) and unit in DAYS else None


def daily_dose(dosage: Mapping[str, Any]) -> Decimal | None:
    """mg per day of a dosage, whichever way it is written: a doseQuantity taken `frequency`
    times per `period`, a rateRatio (mg per d), or a rateQuantity in mg/d; None when unknown."""
    timing = dosage["timing"] if isinstance(dosage.get("timing"), MAP) else {}
    repeat = timing["repeat"] if isinstance(timing.get("repeat"), MAP) else {}
    for rate in _list(dosage.get("doseAndRate")):
        if not isinstance(rate, MAP):
            continue
        per_day: Fraction | None = None
        dose = _mg(rate.get("doseQuantity"))
        ratio = rate.get("rateRatio")
        quantity = rate.get("rateQuantity")
        if dose is not None:
            times = exact(repeat.get("frequency", 1))
            days = _days(repeat.get("period", 1), repeat.get("periodUnit", "d"))
            per_day = dose * times / days if times and days else None
        elif isinstance(ratio, MAP) and _mg(ratio.get("numerator")) is not None:
            below = ratio.get("denominator")
            days = _days(below.get("value"), below.get("code")) if isinstance(below, MAP) else None
            per_day = _mg(ratio["numerator"]) / days if days else None  # type: ignore[operator]  # not None: tested above
        elif isinstance(quantity, MAP) and quantity.get("code") == "mg/d":
            per_day = exact(quantity.get("value"))
        if per_day is not None:
            value = Decimal(per_day.numerator) / Decimal(per_day.denominator)
            return value if Fraction(value) == per_day else value.quantize(Decimal("0.001"))
    return None


def dose_phases(resource: Mapping[str, Any]) -> list[DosePhase]:
    """The phases of an LDN MedicationStatement: each dosage's boundsPeriod and dose."""
    phases = []
    effective = resource.get("effectivePeriod")
    effective = effective if isinstance(effective, MAP) else {}
    dosages = [d for d in _list(resource.get("dosage")) if isinstance(d, MAP)]
    for dosage in dosages:
        timing = dosage["timing"] if isinstance(dosage.get("timing"), MAP) else {}
        repeat = timing["repeat"] if isinstance(timing.get("repeat"), MAP) else {}
        bounds = repeat.get("boundsPeriod")
        if not isinstance(bounds, MAP):
            bounds = effective if len(dosages) == 1 else {}
        start = day_of(bounds.get("start"))
        if start is None:
            continue
        text = dosage.get("text") if isinstance(dosage.get("text"), str) else None
        phases.append(DosePhase(start, day_of(bounds.get("end")), daily_dose(dosage), text))
    if not dosages and day_of(effective.get("start")):
        phases.append(
            DosePhase(day_of(effective.get("start")), day_of(effective.get("end")), None)  # type: ignore[arg-type]  # start tested above
        )
    return phases


def _notes(resource: Mapping[str, Any]) -> list[str]:
    return [
        note["text"]
        for note in _list(resource.get("note"))
        if isinstance(note, MAP) and isinstance(note.get("text"), str) and note["text"]
    ]


MAX_NOTE = 2000
"""Longest note the report quotes from one resource."""


def _narrative(resource: Mapping[str, Any]) -> list[str]:
    """The words of a resource's narrative (`text.div`), tags dropped."""
    text = resource.get("text")
    div = text.get("div") if isinstance(text, MAP) else None
    if not isinstance(div, str):
        return []
    words = _words(div[: MAX_NOTE * 4])
    return [words[:MAX_NOTE]] if words else []


@lru_cache(maxsize=256)
def _words(div: str) -> str:
    """The words of a narrative (most resources of one export share theirs: read once)."""
    return " ".join(unescape(re.sub(r"<[^>]*>", " ", div)).split())


def _provenance(resource: Mapping[str, Any]) -> tuple[list[str], bool]:
    """(what the resource says of its origin, whether it is tagged as test data): its notes, and
    for test data (HTEST) its narrative, which says what in it is invented."""
    test_data = _is_test_data(resource)
    notes = [note[:MAX_NOTE] for note in _notes(resource)] if "note" in resource else []
    return (_narrative(resource) + notes if test_data else notes), test_data


def _is_test_data(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    security = meta.get("security") if isinstance(meta, MAP) else None
    if isinstance(security, list):
        for tag in security:
            if isinstance(tag, MAP) and (tag.get("system"), tag.get("code")) == HTEST:
                return True
    return False


@dataclass
class _Collected:
    patient: Patient
    points: dict[str, dict[date, list[Point]]] = field(default_factory=dict)
    phases: list[DosePhase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    test_data: bool = False
    seen: set[str] = field(default_factory=set)
    noted: set[str] = field(default_factory=set)
    """The notes' texts, to keep each once whatever the number of resources repeating it."""

    def note(self, texts: Iterable[str]) -> None:
        for text in texts:
            if text not in self.noted:
                self.noted.add(text)
                self.notes.append(text)


def _is_reported(method: Any, settings: Settings) -> bool:
    """Observation.method says `reported` (the project's code): a total typed from a sheet."""
    codings = method.get("coding") if isinstance(method, MAP) else None
    if isinstance(codings, list):
        reported = (settings.codesystem_url, "reported")
        for item in codings:
            if isinstance(item, MAP) and (item.get("system"), item.get("code")) == reported:
                return True
    return False


def _score_of(code: Any, index: Mapping[tuple[str, str], ScoreInfo]) -> ScoreInfo | None:
    codings = code.get("coding") if isinstance(code, MAP) else None
    for item in codings if isinstance(codings, list) else []:
        if isinstance(item, MAP):
            system, value = item.get("system"), item.get("code")
            if isinstance(system, str) and isinstance(value, str) and (system, value) in index:
                return index[(system, value)]
    return None


def collect(resources: Iterable[Mapping[str, Any]], settings: Settings) -> dict[str, _Collected]:
    """Score Observations and LDN MedicationStatements grouped by patient (one pass, bounded)."""
    index = score_index(settings)
    found: dict[str, _Collected] = {}
    known: dict[tuple[str, str], Patient] = {}
    # (patient, phases, notes, test data) of each LDN statement: small, whatever the input size
    statements: list[tuple[Patient, list[DosePhase], list[str], bool]] = []
    for resource in resources:
        kind = resource.get("resourceType")
        status = resource.get("status") if isinstance(resource.get("status"), str) else None
        if kind == "MedicationStatement":
            resource = scrub(resource)
            patient = patient_of(resource.get("subject"))
            if patient and status not in SKIPPED_STATEMENTS and is_ldn(resource):
                statements.append((patient, dose_phases(resource), *_provenance(resource)))
            continue
        if kind != "Observation" or status in SKIPPED_OBSERVATIONS:
            continue
        info = _score_of(resource.get("code"), index)
        if info is None:
            continue
        resource = scrub(resource)
        patient = patient_of(resource.get("subject"), known)
        if patient is None:
            continue
        collected = found.get(patient.key) or found.setdefault(patient.key, _Collected(patient))
        day = day_of(resource.get("effectiveDateTime")) or day_of(
            (resource.get("effectivePeriod") or {}).get("start")
            if isinstance(resource.get("effectivePeriod"), MAP)
            else None
        )
        if day is None:
            collected.warnings.append(
                f"{info.label}: an Observation without a full effective date was left out"
            )
            continue
        key, named, by_system = _observation_reference(resource, settings)
        key = key or resource_id(patient.key, info.code, day.isoformat(), "observation")
        if key in collected.seen:  # the same Observation read twice (a folder holding copies)
            continue
        collected.seen.add(key)
        value, absent = _value(resource, info)
        wrong_type = isinstance(value, bool) if info.numeric else isinstance(value, Fraction)
        if wrong_type:
            value, absent = None, "value of the wrong type"
        elif isinstance(value, Fraction) and info.outside(value):
            absent = f"{number_text(value)} is outside {info.range_text}"
            value = None
            collected.warnings.append(f"{info.label} on {day}: {absent}; read as no value")
        elif value is None and absent == OUT_OF_RANGE:
            collected.warnings.append(f"{info.label} on {day}: {absent}; read as no value")
        band = None
        if isinstance(value, Fraction) and info.bands is not None:
            band = info.bands.band_for(value)
        reported = _is_reported(resource.get("method"), settings)
        # A status is one of a few codes: one string for all of them, not one per Observation.
        status = sys.intern(status) if status else "final"
        point = Point(day, value, absent, key, named, status, band, reported, by_system)
        collected.points.setdefault(info.code, {}).setdefault(day, []).append(point)
        notes, test_data = _provenance(resource)
        collected.note(notes)
        collected.test_data = collected.test_data or test_data
    for patient, phases, notes, test_data in statements:
        if patient.key not in found:
            continue
        collected = found[patient.key]
        collected.phases.extend(phases)
        collected.note(notes)
        collected.test_data = collected.test_data or test_data
    return {key: collected for key, collected in found.items() if collected.points}


# --- the report of one patient -------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    info: ScoreInfo
    points: tuple[Point, ...]
    """By day, one per day; gaps (dataAbsentReason) included."""

    @property
    def code(self) -> str:
        return self.info.code

    @property
    def label(self) -> str:
        return self.info.label

    def at(self, day: date) -> Point | None:
        return self._by_day.get(day)

    @cached_property
    def _by_day(self) -> dict[date, Point]:
        """The points by day (one a day), so that a table of many visits is not quadratic."""
        return {point.day: point for point in self.points}

    def result(self, point: Point) -> str | None:
        """The category of one visit's value under a per-visit rule (the PGIC responder)."""
        return self.info.rule.category_of(point.band.code if point.band else None)


class Visit(NamedTuple):
    day: date
    days_on_ldn: int | None
    """Days since LDN started (negative before it); None when the patient has no LDN record."""
    dose_mg: Decimal | None
    """The daily LDN dose that day, from the dosage periods; None when none applies."""

    @property
    def months_on_ldn(self) -> Fraction | None:
        return None if self.days_on_ldn is None else Fraction(self.days_on_ldn) / DAYS_PER_MONTH


class Change(NamedTuple):
    """One score at one follow-up visit against its baseline (immutable as a tuple, like
    `Point`)."""

    series: Series
    day: date
    baseline: Point | None
    follow_up: Point
    change: Fraction | None
    """Follow-up minus baseline: negative is a fall, an improvement on every scale here."""
    percent: Fraction | None
    """change / baseline x 100; None when the baseline is 0 (undefined) or a value is missing."""
    rule: ResponderRule
    category: str | None
    explanation: str
    extras: tuple[str, ...] = ()
    """Further results beside the category: response, remission, the band transition."""

    @property
    def direction(self) -> Literal["better", "worse"] | None:
        """Better or worse when the rule's result says the change is important (v3 B / W);
        None for no important change. The results beside it (a band moved while the points
        did not) never decide it; without a result of the rule, the band transition does."""
        decisive = self.category if self.category is not None else next(iter(self.extras), None)
        if decisive in codes.IMPROVED:
            return "better"
        if decisive in codes.WORSENED:
            return "worse"
        return None

    @property
    def improvement(self) -> Fraction | None:
        """Baseline minus follow-up: worsening is a negative improvement."""
        return None if self.change is None else -self.change

    @property
    def band_from(self) -> Band | None:
        return self.baseline.band if self.baseline else None

    @property
    def band_to(self) -> Band | None:
        return self.follow_up.band


@dataclass(frozen=True)
class FollowUp:
    """Everything the report shows for one patient."""

    patient: Patient
    series: tuple[Series, ...]
    visits: tuple[Visit, ...]
    phases: tuple[DosePhase, ...]
    ldn_start: date | None
    baseline_day: date | None
    baseline_source: BaselineSource
    baselines: Mapping[str, Point | None]
    changes: tuple[Change, ...]
    notes: tuple[str, ...]
    """Notes the data carries (Observation.note, MedicationStatement.note): its provenance."""
    warnings: tuple[str, ...]
    """What the report left out of the input, and why."""
    test_data: bool = False
    """Some of the patient's resources are tagged as test data (meta.security HTEST)."""
    cautions: tuple[str, ...] = ()
    """What the reader must weigh: a baseline older than the window before the baseline day."""

    def stale(self, code: str) -> str | None:
        """The caution about a score's baseline, if it is older than the window."""
        return next((text for text in self.cautions if text.startswith(f"{code}:")), None)

    def series_for(self, code: str) -> Series | None:
        return next((series for series in self.series if series.code == code), None)

    @cached_property
    def flags(self) -> tuple[tuple[Series, Point], ...]:
        """Every raised flag, by day, whatever the other scores of that visit."""
        raised = [
            (series, point)
            for series in self.series
            if series.info.flag
            for point in series.points
            if series.info.raised(point)
        ]
        return tuple(sorted(raised, key=lambda pair: pair[1].day))

    def flag_unknown(self, series: Series, day: date) -> str | None:
        """Why a flag is unknown at a visit (never a negative): its item was not answered (a
        gap), or the visit has the flag's instrument but no flag Observation. None: known, or
        the instrument was not given that visit."""
        point = series.at(day)
        if point is not None:
            return None if point.value is not None else f"not answered ({point.absent})"
        others = (self.series_for(code) for code in series.info.companions)
        if any(other is not None and other.at(day) is not None for other in others):
            return (
                "no Observation of the item: not answered, or sent by a version that wrote "
                "one only when raised; read the response"
            )
        return None

    @cached_property
    def unknown_flags(self) -> tuple[tuple[Series, date, str], ...]:
        """Every visit where a flag's item is unknown (not answered), by day."""
        found = [
            (series, visit.day, why)
            for series in self.series
            if series.info.flag
            for visit in self.visits
            if (why := self.flag_unknown(series, visit.day)) is not None
        ]
        return tuple(sorted(found, key=lambda triple: triple[1]))

    @property
    def baseline_rule(self) -> str:
        if self.baseline_source == "named":
            return f"the last value on or before {self.baseline_day}, the baseline date named"
        if self.baseline_source == "ldn-start":
            return f"the last value on or before {self.baseline_day}, the day LDN started"
        return "the first value of each score (no LDN record, no baseline date named)"


def _pick(points: list[Point], label: str, warnings: list[str]) -> Point:
    """One Observation of a score per day: a value before a gap, then the first by key."""
    if len(points) == 1:  # nearly every day: nothing to choose
        return points[0]
    ordered = sorted(points, key=lambda p: (p.value is None, p.key))
    chosen = ordered[0]
    if len({(p.value, p.absent) for p in points}) > 1:
        shown = ", ".join(
            number_text(p.value) if isinstance(p.value, Fraction) else str(p.value) for p in points
        )
        warnings.append(
            f"{label} on {chosen.day}: {len(points)} different Observations ({shown}); the report "
            f"uses {chosen.key}"
        )
    return chosen


Classified = tuple[Fraction, Fraction | None, str | None, str, tuple[str, ...]]


def band_step(series: Series, baseline: Point, follow_up: Point) -> tuple[str, str] | None:
    """(category, words) of the move between the two values' severity bands, or None."""
    bands = series.info.bands
    start, end = baseline.band, follow_up.band
    if bands is None or start is None or end is None:
        return None
    order = [band.code for band in bands.bands]
    step = order.index(end.code) - order.index(start.code)
    category = (
        codes.BAND_IMPROVED
        if step < 0
        else codes.BAND_WORSENED
        if step > 0
        else codes.BAND_UNCHANGED
    )
    moved = "improved" if step < 0 else "worsened" if step > 0 else "unchanged"
    return category, f"{start.display.lower()} to {end.display.lower()} ({moved}; {bands.name})"


def _percent_category(
    rule: ResponderRule, change: Fraction, percent: Fraction, words: str
) -> tuple[str, str]:
    """A percent rule's category, both ways: a fall against `thresholds`, a rise against
    `worse_thresholds` (the same benchmarks upward)."""
    size = abs(percent)
    moved = "reduced" if change < 0 else "increased"
    shown = f"{moved} by {percent_text(size, False)}% ({words})"
    for threshold, category in rule.thresholds if change < 0 else rule.worse_thresholds:
        if size >= threshold:
            return category, f"{shown}: at least {threshold}% ({rule.name})"
    least = rule.thresholds[-1][0]
    if change == 0:
        shown = f"no change ({words})"
    return codes.NOT_IMPORTANT, f"{shown}: below the {least}% of {rule.name}, either way"


def classify(rule: ResponderRule, series: Series, baseline: Point, follow_up: Point) -> Classified:
    """(change, percent, category, explanation, extras) for two values of a score; a score with
    bands compared by another rule shows its band transition beside that rule's result."""
    before, after = baseline.number, follow_up.number
    assert before is not None and after is not None
    change = after - before
    percent = change / before * 100 if before > 0 else None
    words = f"{number_text(before)} to {number_text(after)}"
    banded = band_step(series, baseline, follow_up)
    if rule.kind == "band-transition":
        if banded is None:
            return change, percent, None, f"{words}: no band for one of the values", ()
        return change, percent, banded[0], banded[1], ()
    extras = (banded[0],) if banded else ()
    beside = f"; band: {banded[1]}" if banded else ""
    if rule.kind == "change-only":
        return change, percent, None, f"{words}; {rule.summary}{beside}", extras
    if rule.kind == "points-change":
        assert rule.points is not None
        if change <= -rule.points:
            category, said = codes.POINTS_IMPROVED, f"fell by {number_text(-change)} points"
        elif change >= rule.points:
            category, said = codes.POINTS_WORSENED, f"rose by {number_text(change)} points"
        else:
            category, said = codes.POINTS_UNCHANGED, f"changed by {number_text(change)} points"
        parts = [f"{said} ({words}): the individual change is {number_text(rule.points)} points"]
        found: list[str] = []
        if rule.response is not None and percent is not None and -percent >= rule.response:
            found.append(codes.RESPONSE)
            parts.append(f"response (a fall of {percent_text(-percent, False)}%)")
        if rule.remission_below is not None and after < rule.remission_below:
            found.append(codes.REMISSION)
            parts.append(f"remission (below {number_text(rule.remission_below)})")
        text = "; ".join(parts) + beside
        return change, percent, category, text, (*found, *extras)
    if percent is None:
        text = (
            f"{words}: the baseline is 0, so the percent change is undefined and the "
            f"{rule.name} rule (a percent threshold) cannot be applied{beside}"
        )
        return change, percent, None, text, extras
    category, text = _percent_category(rule, change, percent, words)
    return change, percent, category, text + beside, extras


def _baseline_day(
    collected: _Collected, baseline: date | None
) -> tuple[date | None, BaselineSource]:
    if baseline is not None:
        return baseline, "named"
    if collected.phases:
        return min(phase.start for phase in collected.phases), "ldn-start"
    return None, "first-value"


def _doses(phases: tuple[DosePhase, ...], days: list[date]) -> list[Decimal | None]:
    """The dose of the first phase (in `phases`' order, by start) containing each of the sorted
    `days`, in one pass: a phase that has ended before a day has ended before every later one,
    so the first phase still running only moves forward (10,000 visits x 700 phases stays fast).
    """
    doses: list[Decimal | None] = []
    started = 0  # phases[:started] start on or before the day
    running = 0  # phases[:running] all ended before the day
    for day in days:
        while started < len(phases) and phases[started].start <= day:
            started += 1
        while running < started and (end := phases[running].end) is not None and end < day:
            running += 1
        doses.append(phases[running].dose_mg if running < started else None)
    return doses


def build(
    collected: _Collected, baseline: date | None, settings: Settings, with_changes: bool = True
) -> FollowUp:
    """One patient's report from what `collect` gathered; without its changes (`with_changes`
    False) for what does not show them (a chart)."""
    warnings = list(collected.warnings)
    index = {info.code: info for info in score_index(settings).values()}
    series = []
    for code, info in index.items():
        days = collected.points.get(code)
        if days:
            points = tuple(_pick(days[day], info.label, warnings) for day in sorted(days))
            series.append(Series(info, points))
    phases = tuple(sorted(collected.phases, key=lambda p: (p.start, p.end or date.max)))
    ldn_start = phases[0].start if phases else None
    day, source = _baseline_day(collected, baseline)
    all_days = sorted({point.day for s in series for point in s.points})
    visits = tuple(
        Visit(visit, (visit - ldn_start).days if ldn_start else None, dose)
        for visit, dose in zip(all_days, _doses(phases, all_days), strict=True)
    )
    baselines: dict[str, Point | None] = {}
    changes = []
    for item in series:
        rule = item.info.rule
        if not item.info.numeric or not rule.compares:
            continue  # yes/no results, flags and per-visit scores: shown, never compared
        valued = [point for point in item.points if point.number is not None]
        if day is None:
            base = valued[0] if valued else None
            later = [p for p in item.points if base is not None and p.day > base.day]
        else:
            earlier = [point for point in valued if point.day <= day]
            base = earlier[-1] if earlier else None
            later = [p for p in item.points if p.day > day]
        baselines[item.code] = base
        if not with_changes:
            continue
        # A follow-up is classified by its value and band alone (the baseline is the series'):
        # each pair once, however many visits repeat it.
        classified: dict[tuple[int, int], Classified] = {}
        for point in later:
            if base is None:
                text = (
                    f"no value on or before the baseline day {day}: no change computed"
                    if day
                    else "no baseline value"
                )
                changes.append(Change(item, point.day, None, point, None, None, rule, None, text))
            elif point.number is None:
                text = f"no value at this visit ({point.absent}): no change computed"
                changes.append(Change(item, point.day, base, point, None, None, rule, None, text))
            else:
                # by identity: a score's values are shared objects (`exact`), its bands the
                # scheme's own; an equal value held twice is only classified twice
                key = (id(point.value), id(point.band))
                found = classified.get(key)
                if found is None:
                    found = classified[key] = classify(rule, item, base, point)
                change, percent, category, text, extras = found
                changes.append(
                    Change(
                        item, point.day, base, point, change, percent, rule, category, text,
                        extras,
                    )
                )  # fmt: skip
    cautions = []
    window = settings.baseline_max_days
    for item in series:
        base = baselines.get(item.code)
        if window and day is not None and base is not None and (day - base.day).days > window:
            cautions.append(
                f"{item.code}: the baseline of {item.label} is from {base.day}, "
                f"{(day - base.day).days} days before {day} (more than the {window} days "
                "allowed, FMS_FHIR_BASELINE_MAX_DAYS): it may not describe the patient when "
                "treatment began"
            )
    return FollowUp(
        patient=collected.patient,
        series=tuple(series),
        visits=visits,
        phases=phases,
        ldn_start=ldn_start,
        baseline_day=day,
        baseline_source=source,
        baselines=baselines,
        changes=tuple(changes),
        notes=tuple(collected.notes),
        warnings=tuple(warnings),
        test_data=collected.test_data,
        cautions=tuple(cautions),
    )


def parse_baseline(baseline: date | str | None) -> date | None:
    if baseline is None or isinstance(baseline, date):
        return baseline
    parsed = day_of(baseline) if len(baseline) == 10 else None
    if parsed is None:
        message = f"baseline {baseline!r} is not a date (YYYY-MM-DD)"
        raise InvalidInput([Issue("error", "value", message, "baseline", "invalid-value")])
    return parsed


def _no_scores() -> InvalidInput:
    known = ", ".join(score.code.code for score in shown_scores())
    message = f"the input holds no score Observation with a patient and a date (codes: {known})"
    return InvalidInput([Issue("error", "not-found", message, None, "no-scores")])


def follow_up(
    resources: Iterable[Mapping[str, Any]],
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
    with_changes: bool = True,
) -> list[FollowUp]:
    """The report of every patient in `resources` (or of the one named), ordered by patient.

    `patient` is an identifier value, `system|value`, or a reference; `baseline` a date that
    replaces the LDN start as the baseline day; `with_changes` False leaves the changes out (a
    chart does not show them). Raises InvalidInput when the input holds no score Observations
    (422) or none of the named patient (404).
    """
    day = parse_baseline(baseline)
    found = collect(resources, settings)
    if not found:
        raise _no_scores()
    chosen = sorted(found.values(), key=lambda c: (c.patient.label, c.patient.key))
    if patient is not None:
        patient = scrub(patient)
        chosen = [c for c in chosen if c.patient.matches(patient)]
        if not chosen:
            names = ", ".join(sorted(c.patient.label for c in found.values()))
            message = (
                f"no score Observations for patient {patient!r}; patients in the input: {names}"
            )
            raise InvalidInput(
                [Issue("error", "not-found", message, "patient", "unknown-patient")], 404
            )
    return [build(collected, day, settings, with_changes) for collected in chosen]


def patients(
    resources: Iterable[Mapping[str, Any]], settings: Settings
) -> list[tuple[Patient, int]]:
    """Every patient with score Observations and the number of their visits, ordered as
    `follow_up` orders them, without building their reports (the page lists them this way)."""
    found = collect(resources, settings)
    if not found:
        raise _no_scores()
    chosen = sorted(found.values(), key=lambda c: (c.patient.label, c.patient.key))
    return [(c.patient, len({day for days in c.points.values() for day in days})) for c in chosen]


def one_patient(reports: list[FollowUp]) -> FollowUp:
    """The report of a single-patient use case (one chart, one page)."""
    if len(reports) == 1:
        return reports[0]
    names = ", ".join(report.patient.label for report in reports)
    message = f"the input holds {len(reports)} patients ({names}); name one"
    raise InvalidInput([Issue("error", "required", message, "patient", "patient-required")])
