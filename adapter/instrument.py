"""The declarative model every mapping in `mappings/` uses.

An instrument is data (items, answer options, codes, bands) plus small formulas. Everything the
project emits about an instrument (Questionnaire, validation, scores, Observations) is derived
from one `Instrument` value, so the facts live in exactly one place.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal, Protocol

LOINC = "http://loinc.org"

ItemType = Literal["boolean", "integer", "decimal", "choice", "string", "text", "group", "display"]
ValueType = Literal["integer", "decimal", "boolean"]
Number = int | Fraction
ScoreValue = int | Fraction | bool


@dataclass(frozen=True)
class Code:
    """A code; `system=None` means the project's own CodeSystem (its base is configurable)."""

    code: str
    display: str
    system: str | None = None


@dataclass(frozen=True)
class AnswerOption:
    """One choice; `score` is the ordinal the scoring uses (ordinalValue / itemWeight)."""

    score: int
    code: Code


@dataclass(frozen=True)
class EnableWhen:
    """Questionnaire.item.enableWhen: `answer` is a bool, an int or an option code."""

    question: str
    operator: Literal["exists", "=", "!=", ">", "<", ">=", "<="]
    answer: bool | int | str


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    type: ItemType
    code: Code | None = None
    options: tuple[AnswerOption, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    required: bool = True
    repeats: bool = False
    control: str | None = None
    children: tuple[Item, ...] = ()
    prefix: str | None = None
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: Literal["all", "any"] = "all"
    score: Score | None = None
    """Set on the read-only item that calculates this score (see adapter.questionnaire)."""

    def option_for(self, raw: object) -> AnswerOption | None:
        """Find an option by its integer score or by its code (LOINC answer codes included)."""
        kind = type(raw)
        if kind is int or kind is str:
            return self._options.get((kind, raw))
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            return None
        return self._options.get((int if isinstance(raw, int) else str, raw))

    @cached_property
    def _options(self) -> dict[tuple[builtins.type, object], AnswerOption]:
        """Options by (int, score) and (str, code): built once, looked up per answer."""
        found: dict[tuple[builtins.type, object], AnswerOption] = {}
        for option in self.options:
            found.setdefault((int, option.score), option)
            found.setdefault((str, option.code.code), option)
        return found


@dataclass(frozen=True)
class Missing:
    """A score that cannot be computed; the reason becomes dataAbsentReason.text."""

    reason: str


Answers = Mapping[str, Any]
"""linkId -> bool (boolean), int (integer) or AnswerOption (choice); absent means unanswered."""


class Formula(Protocol):
    """A scoring rule that exists twice: in Python (the reference) and as FHIRPath."""

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing: ...

    def fhirpath(self, items: Mapping[str, Item]) -> str: ...


@dataclass(frozen=True)
class Band:
    """Half-open interval [low, high); None is unbounded."""

    code: str
    display: str
    low: Number | None = None
    high: Number | None = None

    def contains(self, value: Number) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


@dataclass(frozen=True)
class BandScheme:
    name: str
    bands: tuple[Band, ...]
    id: str = "default"
    """How a deployment names this scheme to choose it (Settings.band_schemes)."""

    def band_for(self, value: Number) -> Band | None:
        # Scores take few values (whole numbers, thirds, halves): each is placed once, and
        # remembered by its numerator and denominator (a Fraction's own hash is slow).
        kind = value.__class__
        if kind is int:
            key: int | tuple[int, int] = value  # type: ignore[assignment]  # kind is int: an exact class test
        elif kind is Fraction:
            key = (value.numerator, value.denominator)
        else:  # a reported Decimal or float: placed as it is
            return self._find(value)
        known = self._known
        found = known.get(key, known)
        if found is known:
            found = self._find(value)
            if len(known) < 1024:
                known[key] = found
        return found  # type: ignore[return-value]  # not the `known` sentinel: replaced above

    def _find(self, value: Number) -> Band | None:
        return next((band for band in self.bands if band.contains(value)), None)

    @cached_property
    def _known(self) -> dict[int | tuple[int, int], Band | None]:
        return {}


@dataclass(frozen=True, eq=False)
class Score:
    """Compared and hashed by identity: a score is declared once, and caches key on it."""

    code: Code
    value_type: ValueType
    formula: Formula
    method: str
    members: tuple[str, ...] = ()
    bands: BandScheme | None = None
    low: int | None = None
    high: int | None = None
    band_options: tuple[BandScheme, ...] = ()
    """Other published schemes a deployment may choose instead of `bands`."""
    emit: Literal["always", "when-computed"] = "always"
    """"always": one Observation per response, with a dataAbsentReason when the value cannot be
    computed. "when-computed": an Observation only when the formula gives a value, so a flag
    (a formula that gives no value unless its condition holds) exists exactly when it is raised."""
    label: str | None = None
    """The project's own name of the score, Observation.code.text (a LOINC coding keeps LOINC's
    display, whose "[Reported]" names the LOINC method, not how the value came to be); None:
    the code's display."""
    codings: tuple[Code, ...] = ()
    """Further codings of the same concept on Observation.code (the PHQ-9 item 9 Observation is
    also coded with its LOINC item code)."""
    answer_item: str | None = None
    """The value goes on the wire as this item's answer coding (valueCodeableConcept, a LOINC
    answer), not as a number; the score's number is the answer's score."""
    alert: str | None = None
    """When the score's band is `positive`, a FHIR Flag with this text is emitted beside the
    Observation, for a clinical system to route (see docs/instruments.md)."""
    # How the follow-up report (adapter/report) shows the score: it has no list of its own.
    report_label: str | None = None
    """The report's short label (tables, summary, flags); None: the report leaves it out. A shown
    score with emit="when-computed" is a flag: listed at the top of the report when raised."""
    report_rank: int = 100
    """Where the report shows it (lower first; equal ranks in registry order)."""
    report_change: str | None = None
    """The report's change rule, by its code in adapter/report/rules.py (CATALOGUE). None: band
    transition when the score has bands, else change only (flags and yes/no results: none);
    "none": shown per visit, no change from baseline."""
    chart_panel: str | None = None
    """The report chart's panel that plots it ("a" or "b", adapter/report/charts.py); None: none."""
    chart_label: str | None = None
    """Its legend in the chart; None: report_label with the range, "SSS (0-12)"."""
    chart_topic: str | None = None
    """Its name in the panel's title ("(b) Symptom severity (SSS) and PHQ-4"); None: report_label."""

    def scheme(self, scheme_id: str | None = None) -> BandScheme | None:
        if scheme_id is None or self.bands is None or scheme_id == self.bands.id:
            return self.bands
        return next((s for s in self.band_options if s.id == scheme_id), None)

    @property
    def schemes(self) -> tuple[BandScheme, ...]:
        return ((self.bands,) if self.bands else ()) + self.band_options


@dataclass(frozen=True, eq=False)
class Instrument:
    """Compared and hashed by identity: an instrument is declared once, and caches key on it."""

    id: str
    title: str
    version: str
    description: str
    items: tuple[Item, ...]
    scores: tuple[Score, ...]
    code: Code | None = None
    copyright: str | None = None
    citation: str | None = None
    rank: int = 100
    """Where it stands in listings and the sheet template (lower first)."""
    _index: dict[str, Item] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {item.link_id: item for item in walk(self.items)}
        object.__setattr__(self, "_index", index)

    @property
    def item_index(self) -> Mapping[str, Item]:
        """Every item by linkId, groups included, at any depth."""
        return self._index

    def answerable_items(self) -> Iterator[Item]:
        return (item for item in self._index.values() if item.type not in ("group", "display"))

    def score(self, code: str) -> Score:
        return next(score for score in self.scores if score.code.code == code)


def walk(items: tuple[Item, ...]) -> Iterator[Item]:
    for item in items:
        yield item
        yield from walk(item.children)
