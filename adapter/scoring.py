"""Run an instrument's scores over checked answers: values, missing-data reasons and bands."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import NamedTuple

from adapter.formulas import ScoredAnswers, evaluate
from adapter.instrument import Answers, Band, Instrument, Missing, Number, Score, ScoreValue


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

    @property
    def scheme_name(self) -> str | None:
        """The name of the band scheme `band` comes from."""
        return next((s.name for s in self.score.schemes if self.band in s.bands), None)

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
    scheme = score.scheme(schemes.get(score.code.code) if schemes else None)
    if scheme is None or value is None or isinstance(value, bool):
        return None
    return scheme.band_for(value)


def score_answers(
    instrument: Instrument, answers: Answers, schemes: Mapping[str, str] | None = None
) -> list[ScoreResult]:
    results = []
    scored = ScoredAnswers(answers)
    items = instrument.item_index
    for score in instrument.scores:
        value = evaluate(score.formula, scored, items)
        if isinstance(value, Missing):
            results.append(ScoreResult(score, None, value.reason))
        else:
            results.append(ScoreResult(score, value, None, band_for(score, value, schemes)))
    return results


def scores_by_code(results: list[ScoreResult]) -> Mapping[str, ScoreResult]:
    return {result.code: result for result in results}
