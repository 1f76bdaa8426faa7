"""One checker of an answer against its item, one rule code per wrong answer, on every path.

The same answers, generated for every instrument of the registry (valid ones, and out-of-range
numbers, scores and codes that are no option, wrong types), go in as an answers document
(`api.convert`), as a QuestionnaireResponse (`api.validate`, `api.extract`) and as a one-row
sheet (`api.convert_sheet`): the three give the same verdict, the same rule codes (one per wrong
answer, the one the generator expects) and, when accepted, the same score Observations. What
only a QuestionnaireResponse can say (a Coding's system and display) is tested on its own.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import api, registry, rules, validation
from adapter.answers import response_from_document
from adapter.instrument import Instrument, Item
from adapter.outcome import InvalidInput
from adapter.response import build_response
from adapter.rules import RULES, FhirAnswer, check_answer, check_reported
from adapter.sheets import rows as sheet_rows
from adapter.sheets.request import ContractFile, SheetRequest, ToMemory
from adapter.terminology import coding
from tests.support import SETTINGS

INSTRUMENTS = list(registry.instruments().values())
CHOICE_INSTRUMENTS = [
    i for i in INSTRUMENTS if any(x.type == "choice" for x in i.answerable_items())
]
SUBJECT = {"identifier": {"system": SETTINGS.patient_system, "value": "P1"}}
AUTHORED = "2025-04-10"
COMPARED = (
    *("identifier", "code", "status", "valueQuantity", "valueBoolean", "dataAbsentReason"),
    *("interpretation", "method", "effectiveDateTime", "subject", "hasMember"),
)
CHECKER_CODES = {
    "not-answerable",
    "wrong-type",
    "not-an-option",
    "wrong-system",
    "display-mismatch",
    "integer-for-choice",
    "out-of-range",
    "too-long",
}

# Text that is no yes/no word of a sheet, no option code and no number, on any path.
WORD = st.text(alphabet="bcdfgkmqrtvwz", min_size=2, max_size=6)
FRACTION = st.sampled_from([0.5, 2.5, -1.5, 7.25])


# --- the answers ------------------------------------------------------------------------------


def valid_value(item: Item) -> st.SearchStrategy[Any]:
    if item.type == "boolean":
        return st.booleans()
    if item.type == "choice":
        return st.sampled_from(
            [o.score for o in item.options] + [o.code.code for o in item.options]
        )
    assert item.min_value is not None and item.max_value is not None
    return st.integers(item.min_value, item.max_value)


def invalid_value(item: Item) -> st.SearchStrategy[tuple[Any, str]]:
    """A wrong answer and the one rule code every path must give it."""
    if item.type == "boolean":  # 0 and 1 are yes and no in a sheet: not wrong everywhere
        wrong = st.one_of(st.integers(2, 60), st.integers(-60, -1), WORD, FRACTION)
        return wrong.map(lambda value: (value, "wrong-type"))
    if item.type == "choice":  # no option, whatever its type
        scores = {o.score for o in item.options}
        number = st.sampled_from([n for n in range(-20, 41) if n not in scores])
        wrong = st.one_of(number, WORD, st.booleans(), FRACTION)
        return wrong.map(lambda value: (value, "not-an-option"))
    assert item.min_value is not None and item.max_value is not None
    outside = st.one_of(
        st.integers(item.max_value + 1, item.max_value + 500),
        st.integers(item.min_value - 500, item.min_value - 1),
    )
    return st.one_of(
        outside.map(lambda value: (value, "out-of-range")),
        st.one_of(st.booleans(), WORD, FRACTION).map(lambda value: (value, "wrong-type")),
    )


@st.composite
def answer_sets(draw: st.DrawFn) -> tuple[Instrument, dict[str, Any], dict[str, str]]:
    """Every item of an instrument answered (so that a sheet row is that instrument and the
    response is complete); a few answers, often none, wrong: linkId -> expected rule code."""
    instrument: Instrument = draw(st.sampled_from(INSTRUMENTS))
    items = list(instrument.answerable_items())
    wrong = draw(
        st.one_of(
            st.just([]),
            st.lists(st.sampled_from(items), max_size=3, unique_by=lambda i: i.link_id),
        )
    )
    answers = {item.link_id: draw(valid_value(item)) for item in items}
    expected: dict[str, str] = {}
    for item in wrong:
        answers[item.link_id], expected[item.link_id] = draw(invalid_value(item))
    return instrument, answers, expected


# --- the three paths --------------------------------------------------------------------------


@dataclasses.dataclass
class Verdict:
    accepted: bool
    rules: list[str]
    """Rule codes of the errors, one per issue, sorted."""
    observations: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _errors(issues: Any) -> list[str]:
    return sorted(str(issue.rule) for issue in issues if issue.is_error)


def _observations(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The score Observations of Bundle entries, by their fullUrl (the same deterministic id on
    every path)."""
    return {
        e["fullUrl"]: {k: e["resource"].get(k) for k in COMPARED}
        for e in entries
        if e["resource"]["resourceType"] == "Observation"
    }


def _document(instrument: Instrument, answers: dict[str, Any]) -> dict[str, Any]:
    return {
        "instrument": instrument.id,
        "subject": SUBJECT,
        "authored": AUTHORED,
        "status": "completed",
        "answers": answers,
    }


def by_document(instrument: Instrument, answers: dict[str, Any]) -> Verdict:
    try:
        converted = api.convert(_document(instrument, answers), SETTINGS)
    except InvalidInput as error:
        return Verdict(False, _errors(error.issues))
    return Verdict(True, [], _observations(converted.bundle["entry"]))


def fhir_answer(item: Item, value: Any) -> dict[str, Any]:
    """An answer as a QuestionnaireResponse holds it: an option as its Coding (as
    adapter/response.py writes it), any other text for a choice as a Coding of that code in the
    options' system, a number or yes/no as its value[x]."""
    if item.type == "choice":
        option = item.option_for(value)
        if option is not None:
            return {"valueCoding": coding(option.code, SETTINGS)}
        if isinstance(value, str):
            system = item.options[0].code.system or SETTINGS.codesystem_url
            return {"valueCoding": {"system": system, "code": value}}
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": value}


def _items(items: tuple[Item, ...], answers: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        if item.children:
            children = _items(item.children, answers)
            if children:
                found.append({"linkId": item.link_id, "item": children})
        elif item.link_id in answers:
            found.append(
                {"linkId": item.link_id, "answer": [fhir_answer(item, answers[item.link_id])]}
            )
    return found


def by_hand(instrument: Instrument, answers: dict[str, Any]) -> dict[str, Any]:
    """The QuestionnaireResponse of these answers, valid or not, built here."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{SETTINGS.questionnaire_url(instrument.id)}|{instrument.version}",
        "status": "completed",
        "subject": SUBJECT,
        "authored": AUTHORED,
        "item": _items(instrument.items, answers),
    }


def by_response(resource: dict[str, Any]) -> Verdict:
    validated = api.validate(resource, SETTINGS)
    assert not [i for i in validated.issues if not i.is_error], validated.issues
    if not validated.valid:
        with pytest.raises(InvalidInput):
            api.extract(resource, SETTINGS)
        return Verdict(False, _errors(validated.issues))
    return Verdict(True, [], _observations(api.extract(resource, SETTINGS).bundle["entry"]))


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _contract(instrument: Instrument) -> ContractFile | None:
    """The canonical template; fm2011 and fm2016 have the same items, and a sheet of the
    2010/2011 criteria says so in its contract (`prefer`)."""
    if instrument.id != "fm2011":
        return None
    contract = {
        "patient": {"column": "patient_id"},
        "visit_date": {"column": "visit_date"},
        "prefer": [instrument.id],
        "columns": {  # a sheet holds the answered items only (issue 20: optional columns)
            item.link_id: {"to": item.link_id, "optional": True}
            for item in instrument.answerable_items()
        },
    }
    return ContractFile(json.dumps(contract).encode(), "fm2011.json")


def _convert_sheet(rows: list[list[Any]], contract: ContractFile | None) -> api.SheetResult:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    request = SheetRequest(io.BytesIO(text.getvalue().encode()), "visit.csv", contract)
    return api.convert_sheet(request, ToMemory(), SETTINGS)


def by_sheet(instrument: Instrument, answers: dict[str, Any]) -> Verdict:
    header = ["patient_id", "visit_date", *answers]
    row = ["P1", AUTHORED, *map(_cell, answers.values())]
    result = _convert_sheet([header, row], _contract(instrument))
    report = result.report
    assert report.rows_read == 1 and not report.warnings, report.to_json()
    if report.rows_rejected:
        return Verdict(False, _errors(i for entry in report.rejected for i in entry.issues))
    entries = [entry for bundle in result.bundles for entry in bundle["entry"]]
    return Verdict(True, [], _observations(entries))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer_sets())
def test_every_path_gives_the_same_verdict_codes_and_observations(answer_set):
    instrument, answers, expected = answer_set
    document_of = _document(instrument, answers)
    document = by_document(instrument, answers)
    wanted = sorted(expected.values())  # one code per wrong answer
    assert (document.accepted, document.rules) == (not expected, wanted)
    hand = by_response(by_hand(instrument, answers))
    sheet = by_sheet(instrument, answers)
    assert (hand.accepted, hand.rules) == (document.accepted, wanted)
    assert (sheet.accepted, sheet.rules) == (document.accepted, wanted)
    if document.accepted:
        assert document.observations
        built = by_response(build_response(response_from_document(document_of), SETTINGS))
        assert hand.observations == built.observations == document.observations
        assert sheet.observations == document.observations


# --- what only a QuestionnaireResponse can say: a Coding's system and display -----------------


@st.composite
def codings_changed(draw: st.DrawFn) -> tuple[Instrument, dict[str, Any], dict[str, str]]:
    """A valid response with some choice answers' Codings changed: linkId -> what changed."""
    instrument: Instrument = draw(st.sampled_from(CHOICE_INSTRUMENTS))
    items = list(instrument.answerable_items())
    answers = {item.link_id: draw(valid_value(item)) for item in items}
    choices = [item for item in items if item.type == "choice"]
    changed = draw(st.lists(st.sampled_from(choices), max_size=3, unique_by=lambda i: i.link_id))
    changes = {
        item.link_id: draw(st.sampled_from(["system", "display", "no-system", "no-display"]))
        for item in changed
    }
    return instrument, answers, changes


def _answers_in(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for item in items:
        found.update(_answers_in(item.get("item", [])))
        for answer in item.get("answer", []):
            found[item["linkId"]] = answer
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codings_changed())
def test_a_codings_system_and_display_are_checked(case):
    instrument, answers, changes = case
    converted = api.convert(_document(instrument, answers), SETTINGS).bundle
    resource = converted["entry"][0]["resource"]
    codings = _answers_in(resource["item"])
    for link_id, change in changes.items():
        value = codings[link_id]["valueCoding"]
        if change == "system":
            value["system"] = "http://example.org/not-the-options-system"
        elif change == "display":
            value["display"] = "Not what the option says"
        else:
            del value[change.removeprefix("no-")]
    validated = api.validate(resource, SETTINGS)
    wrong = sorted(k for k, c in changes.items() if c == "system")
    noted = sorted(k for k, c in changes.items() if c == "display")
    assert sorted((i.rule, i.message.split(":")[0]) for i in validated.issues) == sorted(
        [("wrong-system", link_id) for link_id in wrong]
        + [("display-mismatch", link_id) for link_id in noted]
    )
    for found_issue in validated.issues:
        if found_issue.rule == "wrong-system":
            assert "http://example.org/not-the-options-system" in found_issue.message
            assert "not one of the options" not in found_issue.message
        else:
            assert found_issue.severity == "warning"
    assert validated.valid == (not wrong)
    if not wrong:
        extracted = api.extract(resource, SETTINGS).bundle
        assert _observations(extracted["entry"]) == _observations(converted["entry"])


# --- the checker's codes are the table's ------------------------------------------------------


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**40), 10**40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        None,
        "valueBoolean",
        "valueInteger",
        "valueDecimal",
        "valueString",
        "valueCoding",
        "valueDate",
    ]
)
CODINGS = st.fixed_dictionaries(
    {},
    optional={
        "system": st.sampled_from(["http://loinc.org", SETTINGS.codesystem_url, "urn:x"]),
        "code": st.sampled_from(["LA6568-5", "LA6570-1", "sss-level-0", "pgic-1", "zz"]),
        "display": st.sampled_from(["Not at all", "No problem", "other"]),
    },
)
EVERY_ITEM = [item for instrument in INSTRUMENTS for item in instrument.item_index.values()]
EVERY_SCORE = [score for instrument in INSTRUMENTS for score in instrument.scores]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(EVERY_ITEM),
    st.one_of(ANY_JSON, st.builds(FhirAnswer, KEYS, ANY_JSON | CODINGS)),
)
def test_every_code_the_checker_gives_is_in_the_table(item, raw):
    value, issues = check_answer(item, raw, SETTINGS.codesystem_url)
    assert len([i for i in issues if i.is_error]) <= 1
    assert (value is None) == any(i.is_error for i in issues)
    for found in issues:
        assert found.rule in CHECKER_CODES
        rule = RULES[found.rule]
        assert (found.severity, found.code) == (rule.severity, rule.issue_type)
        assert found.message.startswith(f"{item.link_id}: ")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(EVERY_SCORE), ANY_JSON)
def test_a_reported_score_is_checked_in_the_same_codes(score, raw):
    value, issues = check_reported(score, raw)
    assert (value is None) == bool(issues) and len(issues) <= 1
    assert all(i.rule in ("wrong-type", "out-of-range") for i in issues)


def test_every_code_named_in_the_checkers_and_the_validation_is_in_the_table():
    """Read from the source, so a rule added without its row in the table fails here."""
    source = "".join(Path(str(module.__file__)).read_text() for module in (rules, validation))
    named = set(re.findall(r'\bissue\(\s*"([a-z-]+)"', source))
    named |= set(re.findall(r'_rejected\(\s*[^,]+,\s*"([a-z-]+)"', source))
    assert CHECKER_CODES <= named
    assert named <= set(RULES), named - set(RULES)


def test_a_choice_lists_its_options_in_the_questionnaires_order_with_one_wording():
    """`9` on a 0-3 item, in a document, a sheet cell (read as 9) and a valueInteger."""
    item = registry.get("phq4").item_index["phq4-interest"]  # type: ignore[union-attr]
    options = "0 (LA6568-5), 1 (LA6569-3), 2 (LA6570-1), 3 (LA6571-9)"
    (_, [plain]), (_, [fhir]) = (
        check_answer(item, 9),
        check_answer(item, FhirAnswer("valueInteger", 9)),
    )
    assert plain.message == f"phq4-interest: 9 is not one of the options: {options}"
    assert fhir.message == f"phq4-interest: valueInteger 9 is not one of the options: {options}"
    assert plain.rule == fhir.rule == "not-an-option"


def test_a_sheet_checks_each_distinct_cell_once(monkeypatch):
    """The per-column memo: a thousand rows of a few values are a few checks."""
    calls = []
    real = sheet_rows.check_answer

    def counted(item: Item, raw: object, codesystem: str | None = None) -> Any:
        calls.append((item.link_id, raw))
        return real(item, raw, codesystem)

    monkeypatch.setattr(sheet_rows, "check_answer", counted)
    header = ["patient_id", "visit_date", "phq4-nervous", "pain-max"]
    rows = [[f"P{n}", AUTHORED, n % 4, ["x", "40", "50"][n % 3]] for n in range(1000)]
    report = _convert_sheet([header, *rows], None).report
    # a bad pain-max rejects the pain ratings of its visit, not its PHQ-4 (issue 20)
    assert report.rows_read == 1000 and report.rows_partial == 334 and not report.rows_rejected
    expected = [("phq4-nervous", n) for n in range(4)]
    expected += [("pain-max", "x"), ("pain-max", 40), ("pain-max", 50)]
    assert sorted(calls, key=repr) == sorted(expected, key=repr)
