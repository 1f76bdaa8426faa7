"""Every YAML case: the Python score, the band, and the Questionnaire's FHIRPath must agree.

Each FHIRPath expression is parsed once (`fhirpathpy.compile`) and evaluated on every case that
uses it: the cases of one instrument share their expressions, and parsing took half the time."""

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from functools import cache

import pytest
from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

from adapter.links import links_for
from adapter.questionnaire import build_questionnaire
from adapter.resources import response_resources
from adapter.response import build_response
from adapter.scoring import score_answers, scores_by_code
from adapter.settings import DEFAULT as SETTINGS
from tests.support import assert_valid_fhir


def test_python_scores_and_bands(score_case):
    response = score_case.response()
    results = scores_by_code(score_answers(response.instrument, response.answers))
    for code, expected in score_case.expect.items():
        result = results[code]
        if expected is None:
            assert result.value is None and result.missing_reason, code
        else:
            assert result.wire_value() == expected, code
            assert type(result.wire_value()) is type(expected) or isinstance(expected, int | float)
    for code, band in score_case.bands.items():
        assert (results[code].band.code if results[code].band else None) == band, code


@cache
def _compiled(expression: str) -> Callable[..., list]:
    return compile_fhirpath(expression, model=models["r4"])


@cache
def _calculated_expressions(instrument):
    questionnaire = build_questionnaire(instrument, SETTINGS)
    expressions = {}
    for item in questionnaire["item"]:
        for extension in item.get("extension", []):
            if extension["url"].endswith("sdc-questionnaire-calculatedExpression"):
                expressions[item["linkId"]] = extension["valueExpression"]["expression"]
    return expressions


@pytest.mark.slow
def test_fhirpath_agrees_with_python(score_case):
    response = score_case.response()
    instrument = response.instrument
    questionnaire_response = build_response(response, SETTINGS)
    expressions = _calculated_expressions(instrument)
    for result in score_answers(instrument, response.answers):
        expression = expressions.get(result.code) or result.score.formula.fhirpath(
            instrument.item_index
        )
        got = _compiled(expression)(questionnaire_response, {"resource": questionnaire_response})
        if result.value is None:
            assert got == [], (result.code, got)
            continue
        assert len(got) == 1, (result.code, got)
        if isinstance(result.value, bool):
            assert got[0] is result.value, result.code
        else:
            assert abs(Fraction(Decimal(str(got[0]))) - Fraction(result.value)) < Fraction(
                1, 10**9
            ), (
                result.code,
                got,
                result.value,
            )


def test_every_case_converts_to_valid_fhir(score_case):
    converted = response_resources(score_case.response(), links_for("transaction", SETTINGS))
    for resource in converted.resources:
        assert_valid_fhir(resource)
