"""A malformed QuestionnaireResponse is an OperationOutcome naming the place, never a traceback,
in `validate` and `extract`, on the command line and in the service (issue 18's command-line
faults: a string where an integer belongs, a contained resource of an unknown type; and every
other way found by generating QR-shaped JSON)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import api, jsonio, registry
from adapter.cli import main
from adapter.outcome import InvalidInput
from adapter.scoring import score_answers
from adapter.web import create_app
from tests.support import SETTINGS, valid_response

ROOT = "QuestionnaireResponse"


def with_answer(instrument_id: str, link_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The instrument's valid response with one item's answer replaced (added at its place when
    the response has no such item, as a calculated score item)."""
    resource = copy.deepcopy(valid_response(instrument_id))
    resource["id"] = "r1"
    for item in resource["item"]:
        if item["linkId"] == link_id:
            item["answer"] = [answer]
            return resource
    resource["item"].append({"linkId": link_id, "answer": [answer]})
    return resource


def cli(tmp_path: Path, command: str, resource: Any) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "response.json"
    path.write_text(json.dumps(resource))
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def found(outcome: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (issue["details"]["coding"][0]["code"], (issue.get("expression") or [None])[0])
        for issue in outcome["issue"]
    ]


# (the response, the rule and the place each must be named by)
CASES = {
    "a string for an item's valueInteger": (
        with_answer("pain-nrs", "pain-mean", {"valueInteger": "5"}),
        ("wrong-type", f"{ROOT}.item[0].answer[0].valueInteger"),
    ),
    "a string for a score's valueInteger": (
        with_answer("phq9", "44261-6", {"valueInteger": "5"}),
        ("wrong-type", f"{ROOT}.item[10].answer[0].valueInteger"),
    ),
    '"0" for a score whose value is 0': (
        with_answer("phq9", "44261-6", {"valueInteger": "0"}),
        ("wrong-type", f"{ROOT}.item[10].answer[0].valueInteger"),
    ),
    "null for a score's valueInteger": (
        with_answer("phq9", "44261-6", {"valueInteger": None}),
        ("wrong-type", f"{ROOT}.item[10].answer[0].valueInteger"),
    ),
    "true for a score's valueInteger": (
        with_answer("phq4", "55758-7", {"valueInteger": True}),
        ("wrong-type", f"{ROOT}.item[4].answer[0].valueInteger"),
    ),
    "a string for a score's valueDecimal": (
        with_answer("fiqr", "fiqr-total", {"valueDecimal": "12.5"}),
        ("wrong-type", f"{ROOT}.item[21].answer[0].valueDecimal"),
    ),
    "a string for a criterion's valueBoolean": (
        with_answer("fm2016", "acr2016-criteria", {"valueBoolean": "true"}),
        (
            "wrong-type",
            f"{ROOT}.item[{len(valid_response('fm2016')['item'])}].answer[0].valueBoolean",
        ),
    ),
    "a contained resource of an unknown type": (
        {**valid_response("phq4"), "contained": [{"resourceType": "Foo", "id": "x"}]},
        ("fhir-structure", f"{ROOT}.contained[0].resourceType"),
    ),
    "a data type as a contained resource": (
        {**valid_response("phq4"), "contained": [{"resourceType": "Coding", "code": "x"}]},
        ("fhir-structure", f"{ROOT}.contained[0].resourceType"),
    ),
    "an object as a contained resource's type": (
        {**valid_response("phq4"), "contained": [{"resourceType": {"a": 1}}]},
        ("fhir-structure", f"{ROOT}.contained[0].resourceType"),
    ),
    "an unknown type inside a contained resource": (
        {
            **valid_response("phq4"),
            "contained": [
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "Foo"}}],
                }
            ],
        },
        ("fhir-structure", f"{ROOT}.contained[0].entry[0].resource.resourceType"),
    ),
    "a contained resource without a type": (
        {**valid_response("phq4"), "contained": [{"id": "x"}]},
        ("fhir-structure", f"{ROOT}.contained[0]"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("command", ["validate", "extract"])
def test_the_command_line_names_the_place(tmp_path: Path, command: str, name: str) -> None:
    resource, expected = CASES[name]
    status, outcome = cli(tmp_path, command, resource)
    assert status == 1 and outcome["resourceType"] == "OperationOutcome"
    assert expected in found(outcome)


@pytest.mark.parametrize("name", list(CASES))
def test_the_service_names_the_place(name: str) -> None:
    resource, expected = CASES[name]
    client = create_app({"SETTINGS": SETTINGS, "TESTING": True}).test_client()
    body = json.dumps(resource)
    validated = client.post(
        "/QuestionnaireResponse/$validate", data=body, content_type="application/fhir+json"
    )
    assert validated.status_code == 200 and expected in found(validated.get_json(force=True))
    extracted = client.post(
        "/QuestionnaireResponse/$extract", data=body, content_type="application/fhir+json"
    )
    assert extracted.status_code == 422 and expected in found(extracted.get_json(force=True))


def test_whole_numbers_written_with_a_decimal_point_are_still_scores() -> None:
    """`17.0` in a valueInteger is a whole JSON number (R4's parsers read it so): not refused."""
    response = api.validate(valid_response("phq9"), SETTINGS).response
    assert response is not None
    total = next(
        r.value for r in score_answers(response.instrument, response.answers) if r.code == "44261-6"
    )
    resource = with_answer("phq9", "44261-6", {"valueInteger": total})
    assert api.validate(resource, SETTINGS).issues == []
    text = json.dumps(resource).replace(f'"valueInteger": {total}', f'"valueInteger": {total}.0')
    assert api.validate(jsonio.loads(text), SETTINGS).issues == []


# --- generated QR-shaped JSON --------------------------------------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["5", "true", "", "2025-04-10", "Patient/1", "LA6568-5", "\ud800", "Foo", "Coding"]
    )
)
KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "linkId",
        "answer",
        "item",
        "valueInteger",
        "valueCoding",
        "valueBoolean",
        "valueDecimal",
        "valueString",
        "valueDate",
        "code",
        "system",
        "reference",
        "identifier",
        "value",
        "extension",
        "url",
        "contained",
        "entry",
        "resource",
        "text",
    ]
)
JSON = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
VALUE_KEYS = st.sampled_from(
    [
        "valueInteger",
        "valueDecimal",
        "valueBoolean",
        "valueString",
        "valueCoding",
        "valueDate",
        "valueDateTime",
        "valueQuantity",
        "valueReference",
        "valueUri",
        "valueTime",
    ]
)
BASES = {
    instrument_id: {**valid_response(instrument_id), "id": "r1"}
    for instrument_id in sorted(registry.instruments())
}
SCORE_ITEMS = {
    instrument_id: [s.code.code for s in registry.get(instrument_id).scores]  # type: ignore[union-attr]
    for instrument_id in BASES
}


def places(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from places(value, (*at, key))
    elif isinstance(node, list):
        for number, value in enumerate(node):
            yield from places(value, (*at, number))


def never_a_traceback(resource: Any) -> None:
    for text in (False, True):
        subject = resource
        if text:  # the way the edges read it: exact numbers, bounded depth
            try:
                subject = jsonio.loads(json.dumps(resource), max_depth=SETTINGS.max_json_depth)
            except InvalidInput:
                continue
        result = api.validate(subject, SETTINGS)
        assert result.issues or result.valid
        try:
            api.extract(subject, SETTINGS)
        except InvalidInput as error:
            assert error.issues


FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@FAST
@given(st.sampled_from(sorted(BASES)), st.integers(0, 10**6), VALUE_KEYS, JSON, st.booleans())
def test_any_value_in_any_answer_or_score(
    instrument_id: str, where: int, key: str, value: Any, score: bool
) -> None:
    resource = copy.deepcopy(BASES[instrument_id])
    if score:
        code = SCORE_ITEMS[instrument_id][where % len(SCORE_ITEMS[instrument_id])]
        resource["item"].append({"linkId": code, "answer": [{key: value}]})
    else:
        item = resource["item"][where % len(resource["item"])]
        item["answer"] = [{key: value}]
    never_a_traceback(resource)


@FAST
@given(st.sampled_from(sorted(BASES)), JSON, st.booleans())
def test_anything_contained(instrument_id: str, value: Any, wrapped: bool) -> None:
    resource = copy.deepcopy(BASES[instrument_id])
    resource["contained"] = [value] if wrapped else value
    never_a_traceback(resource)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    st.sampled_from(sorted(BASES)),
    st.lists(
        st.tuples(st.integers(0, 10**6), JSON, st.sampled_from(["set", "drop", "add"])),
        min_size=1,
        max_size=3,
    ),
)
def test_any_change_anywhere(instrument_id: str, changes: list[tuple[int, Any, str]]) -> None:
    """Any node of a valid response replaced, dropped, or given a sibling of any shape."""
    resource: Any = copy.deepcopy(BASES[instrument_id])
    for where, value, how in changes:
        found_places = list(places(resource))
        at = found_places[where % len(found_places)]
        if not at:
            resource = value
            continue
        parent = resource
        for step in at[:-1]:
            parent = parent[step]
        if how == "drop" and isinstance(parent, dict):
            parent.pop(at[-1])
        elif how == "add" and isinstance(parent, dict):
            parent[f"x{where % 7}"] = value
        else:
            parent[at[-1]] = value
    never_a_traceback(resource)
