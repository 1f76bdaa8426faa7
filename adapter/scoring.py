"""Run an instrument's scores over checked answers: values, missing-data reasons and bands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from adapter.formulas import ScoredAnswers, evaluate
from adapter.instrument import Answers, Band, Instrument, Missing, Score, ScoreValue

DECIMAL_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class ScoreResult:
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
    exact = Fraction(value)
    rounded = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        DECIMAL_PLACES, rounding=ROUND_HALF_UP
    )
    return float(rounded)


def band_for(
    score: Score, value: ScoreValue | None, schemes: Mapping[str, str] | None = None
) -> Band | None:
    """Bands apply to the exact value, so rounding for display never moves a patient across one.

    `schemes` (score code -> scheme id) picks one of a score's published schemes.
    """
    scheme = score.scheme((schemes or {}).get(score.code.code))
    if scheme is None or value is None or isinstance(value, bool):
        return None
    return scheme.band_for(value)


def score_answers(
    instrument: Instrument, answers: Answers, schemes: Mapping[str, str] | None = None
) -> list[ScoreResult]:
    results = []
    answers = ScoredAnswers(answers)
    for score in instrument.scores:
        value = evaluate(score.formula, answers, instrument.item_index)
        if isinstance(value, Missing):
            results.append(ScoreResult(score, None, value.reason))
        else:
            results.append(ScoreResult(score, value, band=band_for(score, value, schemes)))
    return results


def scores_by_code(results: list[ScoreResult]) -> Mapping[str, ScoreResult]:
    return {result.code: result for result in results}
