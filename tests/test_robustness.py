"""Whatever a client sends, the answer is an OperationOutcome or a result, never a traceback."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.medication import regimen_from_document
from adapter.outcome import InvalidInput
from tests.support import convert_documents, valid_response, validate_response

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["instrument", "subject", "authored", "status", "answers", "phq4-down", "fiqr-f1", "wpi-neck"]
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(JSON)
def test_any_json_as_a_questionnaire_response(value):
    result = validate_response(value)
    assert result.issues and not result.valid


@pytest.mark.slow
@FAST
@given(
    st.sampled_from(["phq4", "fm2016", "fiqr"]),
    st.lists(st.tuples(st.integers(0, 40), JSON), max_size=3),
)
def test_mutated_responses(instrument_id, changes):
    resource = copy.deepcopy(valid_response(instrument_id))
    items = resource["item"]
    for position, value in changes:
        target = items[position % len(items)]
        key = ["answer", "linkId", "text", "item"][position % 4]
        target[key] = value
    validate_response(resource)  # must not raise


@pytest.mark.slow
@FAST
@given(st.dictionaries(KEYS, JSON, max_size=5) | JSON)
def test_any_json_as_an_answers_document(value):
    try:
        convert_documents(value)
    except InvalidInput as error:
        assert error.issues


@pytest.mark.slow
@FAST
@given(
    st.dictionaries(
        st.sampled_from(["phq4-down", "phq4-worry", "phq4-nervous", "phq4-interest", "x"]),
        JSON,
        max_size=4,
    )
)
def test_any_answers_for_an_instrument(answers):
    document = {
        "instrument": "phq4",
        "subject": {"reference": "Patient/1"},
        "authored": "2025-01-01",
        "answers": answers,
    }
    try:
        convert_documents(document)
    except InvalidInput as error:
        assert error.issues


@pytest.mark.slow
@FAST
@given(
    st.dictionaries(
        st.sampled_from(["subject", "phases", "titration", "form", "timing", "status"]),
        JSON,
        max_size=5,
    )
)
def test_any_json_as_a_regimen(value):
    try:
        regimen_from_document(value)
    except InvalidInput as error:
        assert error.issues


CELL = (
    st.none()
    | st.booleans()
    | st.integers(-(10**7), 10**7)
    | st.floats(allow_nan=True)
    | st.text(max_size=10)
)


@FAST
@given(st.lists(CELL, min_size=0, max_size=60))
def test_any_sheet_row(cells):
    from adapter.links import links_for
    from adapter.sheets.contract import default_contract, template_columns
    from adapter.sheets.rows import RowPlan, convert_row, plan_rows
    from tests.support import SETTINGS

    plan = plan_rows(template_columns(), default_contract(), links_for("transaction", SETTINGS))
    assert isinstance(plan, RowPlan)
    result = convert_row(plan, 2, cells)
    assert result.blank or result.rejected or result.patient
