"""The fast paths of issue 11 give exactly what the plain ways give: ids, rounding, sums,
column names, and the per-column memo of sheet cells (a TRUE cell is never taken for a 1)."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import orjson
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter

from adapter.formulas import exact_sum
from adapter.ids import NAMESPACE, ids_under, resource_id
from adapter.scoring import _two_places
from adapter.sheets.values import column_letter
from tests.support.sheets import HEADER, resources, run, write_xlsx

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.fractions(max_denominator=10**6).filter(lambda f: abs(f) < 10**12),
)


@given(st.lists(texts, min_size=1, max_size=5))
def test_ids_from_a_shared_prefix_are_the_uuid5_of_the_whole_json_array(parts):
    expected = str(uuid.uuid5(NAMESPACE, orjson.dumps(parts).decode()))
    assert resource_id(*parts) == expected
    assert ids_under(*parts[:-1])(parts[-1]) == expected


@given(numbers)
def test_two_places_in_integers_is_decimal_half_up(value):
    exact = Fraction(value)
    reference = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    assert _two_places(value) == float(reference)


def test_two_places_at_the_half_hundredths():
    assert _two_places(Fraction(1, 200)) == 0.01
    assert _two_places(Fraction(-1, 200)) == -0.01
    assert _two_places(Fraction(349, 200)) == 1.75  # 1.745 up
    assert _two_places(Fraction(113, 3)) == 37.67


@given(st.lists(st.one_of(st.booleans(), numbers), max_size=6))
def test_exact_sum_is_sum_value_and_type(values):
    total = exact_sum(values)
    assert total == sum(values)
    assert type(total) is type(sum(values))


def test_column_letters_are_the_spreadsheet_names():
    for index in [*range(0, 800), 16_383]:
        assert column_letter(index) == get_column_letter(index + 1)


def test_a_true_cell_and_a_1_cell_are_read_each_by_its_own_rule(tmp_path):
    """The cell memo keys on type and value: TRUE is not a count, 1 is (Python has TRUE == 1)."""
    header = HEADER
    rows = [
        ["P1", "2024-01-10", None, True, 1, 1, 1, None, None, None],
        ["P1", "2024-01-11", None, 1, 1, 1, 1, None, None, None],
        ["P2", "2024-01-10", None, 1, 1, 1, 1, None, None, None],
        ["P2", "2024-01-11", None, True, 1, 1, 1, None, None, None],
    ]
    report, out = run(write_xlsx(tmp_path / "s.xlsx", [header, *rows]), tmp_path, None, "ndjson")
    assert [entry.row for entry in report.rejected] == [2, 5]
    for entry in report.to_json()["rejected"]:
        issue = entry["outcome"]["issue"][0]
        assert issue["expression"][0].endswith('column D "phq4-nervous"')
    assert report.rows_converted == 2
    assert sum(r["resourceType"] == "QuestionnaireResponse" for r in resources(out)) == 2


def test_the_cell_memo_is_bounded_and_keeps_no_huge_cell():
    from adapter.links import links_for
    from adapter.sheets.contract import default_contract
    from adapter.sheets.rows import MAX_REMEMBERED, convert_row, plan_rows
    from tests.support import SETTINGS

    plan = plan_rows(HEADER, default_contract(), links_for("ndjson", SETTINGS))
    assert not isinstance(plan, list)
    for number in range(2, 2 * MAX_REMEMBERED + 2):
        huge = f"{number}" + "x" * 10_000  # distinct, long, not a number
        cells = ["P1", "2024-01-10", huge, 1, 1, 1, 1, None, f"{number % 101}", huge]
        result = convert_row(plan, number, cells)
        assert result.rejected or result.partial  # the huge cells are no values
        assert any("pain-max" in issue.message for issue in result.issues)
    for _, _, read in plan.readers:
        assert len(read.text) + len(read.known) <= MAX_REMEMBERED
        assert all(len(text) <= 64 for text in read.text)
    assert all(len(str(key[1])) <= 64 for key in plan.doses)


def test_a_subject_loaded_once_is_the_same_answer_and_a_copy():
    from marshmallow import ValidationError

    from adapter.schemas import AnswersDocumentSchema, RememberedNested

    schema = AnswersDocumentSchema()
    field = schema.fields["subject"]
    assert isinstance(field, RememberedNested)
    document = {
        "instrument": "pain-nrs",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "P1"}},
        "authored": "2024-01-10",
        "answers": {"pain-max": 40},
    }
    first = schema.load(document)
    first["subject"]["identifier"]["value"] = "changed by a caller"
    again = schema.load(document)
    assert again["subject"] == {"identifier": {"system": "urn:example:mrn", "value": "P1"}}
    bad = {**document, "subject": {"identifier": {"system": "not a uri", "value": "P1"}}}
    for _ in range(2):  # a refusal is never remembered as an answer
        try:
            schema.load(bad)
        except ValidationError as error:
            assert "subject" in error.messages
        else:
            raise AssertionError("a subject without an absolute URI system was accepted")
    for number in range(3 * RememberedNested.LIMIT):
        patient = {"identifier": {"system": "urn:example:mrn", "value": f"P{number}"}}
        assert schema.load({**document, "subject": patient})["subject"] == patient
    assert len(field._loaded) <= RememberedNested.LIMIT
