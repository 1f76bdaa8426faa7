"""Run an instrument's scores over checked answers: values, missing-data reasons and bands."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from adapter.formulas import ScoredAnswers
from adapter.instrument import (
    Answers,
    Band,
    BandScheme,
    Formula,
    Instrument,
    Missing,
    Number,
    Score,
    ScoreValue,
)


class ScoreResult(NamedTuple):
    """One score of one response (a named tuple: made for every score emitted, so cheap to make)."""

    score: Score
    value: ScoreValue | None
    missing_reason: str | None = None
    band: Band | None = None
    reported: bool = False

    @property
    def code(self) -> str:
        return self.score.code.code

    def wire_value(self) -> int | float | bool | None:
        """The value as it goes on the wire: decimals rounded to 2 places (half up), only here."""
        return wire_value(self.score, self.value)


def wire_value(score: Score, value: ScoreValue | None) -> int | float | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if score.value_type == "integer":
        return int(value)
    return _two_places(value)


def _two_places(value: Number) -> float:
    """Rounded half up (away from zero) to 2 decimal places, in integer arithmetic: the exact
    value n/d times 100, rounded, as q/100, which Python divides correctly rounded, so the float
    is the one nearest the 2-place decimal, as float(Decimal) would give."""
    exact = value if type(value) in (int, Fraction) else Fraction(value)
    numerator, denominator = exact.numerator, exact.denominator
    hundredths = (200 * abs(numerator) + denominator) // (2 * denominator)
    return (hundredths if numerator >= 0 else -hundredths) / 100


def band_for(
    score: Score, value: ScoreValue | None, schemes: Mapping[str, str] | None = None
) -> Band | None:
    """Bands apply to the exact value, so rounding for display never moves a patient across one.

    `schemes` (score code -> scheme id) picks one of a score's published schemes.
    """
    scheme = chosen_scheme(score, schemes)
    if scheme is None or value is None or isinstance(value, bool):
        return None
    return scheme.band_for(value)


def score_answers(
    instrument: Instrument, answers: Answers, schemes: Mapping[str, str] | None = None
) -> list[ScoreResult]:
    results = []
    scored = ScoredAnswers(answers)
    memo = scored.memo  # what `evaluate` keeps: parts (WPI, SSS) are computed once
    items = instrument.item_index
    for score, formula, scheme in _plan(instrument, tuple(schemes.items()) if schemes else ()):
        value = memo.get(id(formula))
        if value is None:
            value = memo[id(formula)] = formula.evaluate(scored, items)
        if isinstance(value, Missing):
            results.append(ScoreResult(score, None, value.reason))
        elif scheme is None or isinstance(value, bool):
            results.append(ScoreResult(score, value))
        else:
            results.append(ScoreResult(score, value, None, scheme.band_for(value)))
    return results


@lru_cache(maxsize=256)
def _plan(
    instrument: Instrument, schemes: tuple[tuple[str, str], ...]
) -> tuple[tuple[Score, Formula, BandScheme | None], ...]:
    """Each score with its formula and the band scheme chosen for it (`band_for`), once."""
    chosen = dict(schemes)
    return tuple(
        (score, score.formula, chosen_scheme(score, chosen)) for score in instrument.scores
    )


def chosen_scheme(score: Score, schemes: Mapping[str, str] | None) -> BandScheme | None:
    """The score's band scheme a deployment chose (score code -> scheme id), else its default."""
    return score.scheme(schemes.get(score.code.code) if schemes else None)


def scores_by_code(results: list[ScoreResult]) -> Mapping[str, ScoreResult]:
    return {result.code: result for result in results}
