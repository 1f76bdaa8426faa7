"""Scoring formulas that exist twice: as Python (the reference) and as FHIRPath.

Each formula evaluates plain answers (linkId -> bool/int/AnswerOption) and writes the same rule
as an SDC `calculatedExpression`. The FHIRPath uses only functions that both fhirpathpy and
fhirpath.js evaluate (`repeat`, `where`, `select`, `iif`, `aggregate`, `count`, `exists`);
`sum()` is avoided on purpose (fhirpathpy cannot add FHIR nodes with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from adapter.instrument import (
    AnswerOption,
    Answers,
    Formula,
    Item,
    Missing,
    Number,
    ScoreValue,
)


def item_score(value: object) -> int:
    """The number an answer contributes to a score (true 1, false 0, an option its score)."""
    kind = type(value)
    if kind is AnswerOption:
        return value.score  # type: ignore[attr-defined]  # kind is AnswerOption: an exact class test, not narrowed
    if kind is int or kind is bool:
        return int(value)  # type: ignore[call-overload]  # kind is int or bool: an exact class test
    raise TypeError(f"cannot score {value!r}")


class ScoredAnswers(dict[str, Any]):
    """Answers with a memo of the formulas evaluated on them: a total and the criteria reuse
    their parts (WPI, SSS, regions) instead of computing them again. `points` holds each
    answered item's score, worked out once for all the formulas."""

    def __init__(self, answers: Answers) -> None:
        super().__init__(answers)
        self.memo: dict[int, ScoreValue | Missing] = {}
        self.points = _points(answers)


def _points(answers: Answers) -> dict[str, int]:
    """A bool is kept as it is: True and False add as 1 and 0, and a sum starts from 0."""
    points = {}
    for link_id, value in answers.items():
        kind = value.__class__
        if kind is bool or kind is int:
            points[link_id] = value
        elif kind is AnswerOption:
            points[link_id] = value.score
    return points


def points_of(answers: Answers) -> Mapping[str, int]:
    """linkId -> the score of its answer, for the answered items that score."""
    points = getattr(answers, "points", None)
    return _points(answers) if points is None else points


def evaluate(formula: Formula, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
    """`formula.evaluate`, once per formula for answers that carry a memo."""
    memo = getattr(answers, "memo", None)
    if memo is None:
        return formula.evaluate(answers, items)
    key = id(formula)
    if key not in memo:
        memo[key] = formula.evaluate(answers, items)
    return memo[key]


def exact_sum(values: Sequence[Number]) -> Number:
    """The sum of whole numbers and fractions, exactly: over one common denominator, so the
    result is normalized once rather than after every addition."""
    numerator, denominator, whole = 0, 1, True
    for value in values:
        if isinstance(value, int):
            numerator += value * denominator
        else:
            numerator = numerator * value.denominator + value.numerator * denominator
            denominator *= value.denominator
            whole = False
    return numerator if whole else Fraction(numerator, denominator)  # the type sum() gives


def _quoted(link_ids: Sequence[str]) -> str:
    if len(link_ids) == 1:
        return f"linkId = '{link_ids[0]}'"
    return "linkId in (" + " | ".join(f"'{link_id}'" for link_id in link_ids) + ")"


def answer_values(link_ids: Sequence[str]) -> str:
    """FHIRPath of the answer values of these items, at any depth of the response."""
    return f"%resource.repeat(item).where({_quoted(link_ids)}).answer.value"


def score_mapping(item: Item) -> str:
    """FHIRPath that turns one answer value of `item` into its score ('' = the value itself)."""
    if item.type == "boolean":
        return ".select(iif($this = true, 1, 0))"
    if item.type == "choice":
        expression = "{}"
        for option in reversed(item.options):
            expression = f"iif(code = '{option.code.code}', {option.score}, {expression})"
        return f".select({expression})"
    return ""


def _by_mapping(link_ids: Sequence[str], items: Mapping[str, Item]) -> list[tuple[list[str], str]]:
    groups: dict[str, list[str]] = {}
    for link_id in link_ids:
        groups.setdefault(score_mapping(items[link_id]), []).append(link_id)
    return [(ids, mapping) for mapping, ids in groups.items()]


def _sum(values: str) -> str:
    return f"{values}.aggregate($this + $total, 0)"


def _unanswered(link_ids: Sequence[str], answers: Answers) -> list[str]:
    get = answers.get
    return [link_id for link_id in link_ids if get(link_id) is None]


@dataclass(frozen=True)
class Sum:
    """Sum of item scores; every item must be answered."""

    link_ids: tuple[str, ...]
    label: str

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        points = points_of(answers)
        try:
            return sum(map(points.__getitem__, self.link_ids))
        except KeyError:
            unanswered = _unanswered(self.link_ids, answers)
            if not unanswered:  # an answer that does not score: item_score says which
                return sum(item_score(answers[link_id]) for link_id in self.link_ids)
            return Missing(
                f"{self.label} needs all {len(self.link_ids)} items; unanswered: "
                + ", ".join(unanswered)
            )

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        parts = []
        for ids, mapping in _by_mapping(self.link_ids, items):
            values = answer_values(ids)
            parts.append(f"iif({values}.count() = {len(ids)}, {_sum(values + mapping)}, {{}})")
        return " + ".join(f"({part})" for part in parts) if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class ProratedSum:
    """Sum of item scores scaled by items/answered, then divided; up to `max_missing` unanswered."""

    link_ids: tuple[str, ...]
    divisor: int
    max_missing: int
    label: str

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        points = points_of(answers)
        answered = [points[i] for i in self.link_ids if i in points]
        if len(answered) == len(self.link_ids):
            return Fraction(sum(answered), self.divisor)
        unanswered = _unanswered(self.link_ids, answers)
        if len(unanswered) != len(self.link_ids) - len(answered):  # an answer that does not score
            answered = [item_score(answers[i]) for i in self.link_ids if i not in unanswered]
        if len(unanswered) > self.max_missing:
            allowed = (
                f"at most {self.max_missing} may be missing"
                if self.max_missing
                else "every item is needed"
            )
            return Missing(
                f"{self.label}: {len(unanswered)} unanswered ({', '.join(unanswered)}); {allowed}"
            )
        return Fraction(sum(answered) * len(self.link_ids), len(answered) * self.divisor)

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        (ids, mapping), *rest = _by_mapping(self.link_ids, items)
        if rest:
            raise ValueError("ProratedSum needs items that score alike")
        values = answer_values(ids) + mapping
        needed = len(ids) - self.max_missing
        scaled = f"{_sum(values)} * {len(ids)} / {values}.count() / {self.divisor}"
        if self.max_missing == 0:
            scaled = f"{_sum(values)} / {self.divisor}"
        return f"iif({values}.count() >= {needed}, {scaled}, {{}})"


@dataclass(frozen=True)
class Total:
    """Sum of other formulas; missing when any part is missing."""

    parts: tuple[Formula, ...]
    label: str

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        values = [evaluate(part, answers, items) for part in self.parts]
        missing = [value.reason for value in values if isinstance(value, Missing)]
        if missing:
            return Missing(f"{self.label} not computed: " + "; ".join(missing))
        return exact_sum(values)  # type: ignore[arg-type]  # no Missing is left: returned above

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        return " + ".join(f"({part.fhirpath(items)})" for part in self.parts)


@dataclass(frozen=True)
class ItemValue:
    """The score of one item, e.g. a 0-100 rating."""

    link_id: str

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        value = answers.get(self.link_id)
        if value is None:
            return Missing(f"{self.link_id} is unanswered")
        return item_score(value)

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        return answer_values([self.link_id]) + score_mapping(items[self.link_id])


@dataclass(frozen=True)
class RegionCount:
    """How many regions have at least one painful area; every area must be answered."""

    regions: tuple[tuple[str, ...], ...]
    all_link_ids: tuple[str, ...]
    label: str

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        unanswered = _unanswered(self.all_link_ids, answers)
        if unanswered:
            return Missing(
                f"{self.label} needs all {len(self.all_link_ids)} areas; unanswered: "
                + ", ".join(unanswered)
            )
        count = 0
        for region in self.regions:  # plain loops: this runs for every WPI response
            for link_id in region:
                if answers[link_id] is True:
                    count += 1
                    break
        return count

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        regions = " + ".join(
            f"iif({answer_values(region)}.where($this = true).exists(), 1, 0)"
            for region in self.regions
        )
        every = f"{answer_values(self.all_link_ids)}.count() = {len(self.all_link_ids)}"
        return f"iif({every}, {regions}, {{}})"


@dataclass(frozen=True)
class SeverityRule:
    """One way to meet the severity condition of the ACR criteria: `wpi_low` <= WPI (<=
    `wpi_high` unless None) and SSS >= `sss_low`."""

    wpi_low: int
    wpi_high: int | None
    sss_low: int

    def holds(self, wpi: Number, sss: Number) -> bool:
        in_range = wpi >= self.wpi_low and (self.wpi_high is None or wpi <= self.wpi_high)
        return in_range and sss >= self.sss_low

    def fhirpath(self, wpi: str, sss: str) -> str:
        parts = [f"{wpi} >= {self.wpi_low}"]
        if self.wpi_high is not None:
            parts.append(f"{wpi} <= {self.wpi_high}")
        parts.append(f"{sss} >= {self.sss_low}")
        return "(" + " and ".join(parts) + ")"


@dataclass(frozen=True)
class AcrCriteria:
    """ACR fibromyalgia criteria met: any severity rule holds, the duration item is answered yes
    and, when `regions` is given (2016), generalized pain is present in at least `min_regions`
    regions. Every part must be computable and the duration answered, else no value; a part that
    does not hold gives false."""

    wpi: Formula
    sss: Formula
    duration: str
    severity: tuple[SeverityRule, ...]
    label: str
    regions: Formula | None = None
    min_regions: int = 4

    def _parts(self) -> tuple[Formula, ...]:
        return (self.wpi, self.sss) + ((self.regions,) if self.regions is not None else ())

    def evaluate(self, answers: Answers, items: Mapping[str, Item]) -> ScoreValue | Missing:
        values = [evaluate(part, answers, items) for part in self._parts()]
        reasons = [value.reason for value in values if isinstance(value, Missing)]
        if answers.get(self.duration) is None:
            reasons.append(f"{self.duration} is unanswered")
        if reasons:
            return Missing(f"{self.label} not assessed: " + "; ".join(reasons))
        wpi, sss, *regions = values
        severity = any(rule.holds(wpi, sss) for rule in self.severity)  # type: ignore[arg-type]  # no Missing left
        generalized = all(count >= self.min_regions for count in regions)  # type: ignore[operator]  # no Missing left
        return bool(severity and generalized and answers[self.duration] is True)

    def fhirpath(self, items: Mapping[str, Item]) -> str:
        w, s, *g = (f"({part.fhirpath(items)})" for part in self._parts())
        d = answer_values([self.duration])
        exists = " and ".join(f"{part}.exists()" for part in (w, s, *g, d))
        rule = " or ".join(rule.fhirpath(w, s) for rule in self.severity)
        generalized = "".join(f" and {part} >= {self.min_regions}" for part in g)
        return f"iif({exists}, ({rule}){generalized} and {d} = true, {{}})"
