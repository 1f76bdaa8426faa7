"""One behaviour across paths: whatever `convert` accepts, `validate` accepts its response with no
error, and `extract` of that response gives the same Observations (same ids and values).

The answers documents are generated from the registry, so a new instrument is covered with no
change here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import api, registry
from adapter.instrument import Instrument, Item
from adapter.outcome import InvalidInput
from tests.support import SETTINGS

INSTRUMENTS = list(registry.instruments().values())
COMPARED = ("id", "code", "status", "valueQuantity", "valueBoolean", "dataAbsentReason")
COMPARED += ("interpretation", "method", "effectiveDateTime", "subject")


def valid_value(item: Item) -> st.SearchStrategy[Any]:
    if item.type == "boolean":
        return st.booleans()
    if item.type == "choice":
        return st.sampled_from(
            [option.score for option in item.options] + [o.code.code for o in item.options]
        )
    return st.integers(item.min_value or 0, item.max_value if item.max_value is not None else 100)


def any_value(item: Item) -> st.SearchStrategy[Any]:
    """Mostly valid, sometimes wrong in the ways clients get it wrong."""
    wrong = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.text(max_size=5))
    return st.one_of(valid_value(item), valid_value(item), valid_value(item), wrong)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    instrument: Instrument = draw(st.sampled_from(INSTRUMENTS))
    items = list(instrument.answerable_items())
    answered = draw(st.lists(st.sampled_from(items), unique_by=lambda i: i.link_id))
    if draw(st.booleans()):  # often complete, so that every score is exercised
        answered = items
    answers = {item.link_id: draw(any_value(item)) for item in answered}
    subject = draw(
        st.sampled_from(
            [
                {"identifier": {"system": "urn:example:mrn", "value": "P|1"}},
                {"identifier": {"system": "urn:example:mrn|P", "value": "1"}},
                {"reference": "Patient/123"},
            ]
        )
    )
    document: dict[str, Any] = {
        "instrument": instrument.id,
        "subject": subject,
        "authored": draw(st.sampled_from(["2025-04-10", "2024-02-29T08:30:00+01:00", "2023"])),
        "answers": answers,
    }
    status = draw(st.sampled_from([None, "completed", "in-progress", "stopped", "amended"]))
    if status:
        document["status"] = status
    return document


def _observations(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["fullUrl"]: {k: e["resource"].get(k) for k in COMPARED}
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_what_convert_accepts_validate_accepts_and_extract_reproduces(document):
    try:
        converted = api.convert(document, SETTINGS)
    except InvalidInput as error:
        assert error.issues and any(issue.is_error for issue in error.issues)
        return
    response = converted.bundle["entry"][0]["resource"]
    validated = api.validate(response, SETTINGS)
    assert validated.valid, [(i.rule, i.message) for i in validated.issues if i.is_error]
    unfinished = response["status"] in ("in-progress", "stopped")
    for issue in validated.issues:  # only what R4 allows an unfinished response: unanswered items
        assert unfinished and (issue.rule, issue.severity) == ("required-missing", "warning")
    extracted = api.extract(response, SETTINGS).bundle
    assert _observations(extracted) == _observations(converted.bundle)


def test_two_subjects_that_join_alike_get_different_ids():
    """'P|1' in system urn:example:mrn and '1' in system urn:example:mrn|P are two patients."""
    base = {"instrument": "pain-nrs", "authored": "2025-04-10", "answers": {"pain-max": 50}}
    one = api.convert(
        {**base, "subject": {"identifier": {"system": "urn:example:mrn", "value": "P|1"}}},
        SETTINGS,
    )
    two = api.convert(
        {**base, "subject": {"identifier": {"system": "urn:example:mrn|P", "value": "1"}}},
        SETTINGS,
    )
    ids = lambda result: {e["fullUrl"] for e in result.bundle["entry"]}  # noqa: E731
    assert ids(one).isdisjoint(ids(two))


def test_a_fiqr_with_one_function_item_missing_is_prorated_and_valid():
    answers = {f"fiqr-f{n}": 3 for n in range(2, 10)}
    answers |= {"fiqr-o1": 5, "fiqr-o2": 5} | {f"fiqr-s{n}": 4 for n in range(1, 11)}
    document = {
        "instrument": "fiqr",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "P1"}},
        "authored": "2025-04-10",
        "answers": answers,
    }
    converted = api.convert(document, SETTINGS)
    response = converted.bundle["entry"][0]["resource"]
    assert response["status"] == "completed"
    assert api.validate(response, SETTINGS).issues == []
    function = next(
        e["resource"]
        for e in converted.bundle["entry"][1:]
        if e["resource"]["code"]["coding"][0]["code"] == "fiqr-function"
    )
    assert function["valueQuantity"]["value"] == 9.0  # 24 x 9/8 / 3
    two_missing = {**document, "answers": {k: v for k, v in answers.items() if k != "fiqr-f2"}}
    two_missing["answers"].pop("fiqr-f3")
    converted = api.convert(two_missing, SETTINGS)
    response = converted.bundle["entry"][0]["resource"]
    assert api.validate(response, SETTINGS).issues == []
    total = next(
        e["resource"]
        for e in converted.bundle["entry"][1:]
        if e["resource"]["code"]["coding"][0]["code"] == "fiqr-total"
    )
    assert "valueQuantity" not in total and "dataAbsentReason" in total
