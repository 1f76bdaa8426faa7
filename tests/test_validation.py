"""QuestionnaireResponse validation: one test per rule, responses as other tools write them, garbage."""

import copy
import json

import pytest
from click.testing import CliRunner

from adapter import api, registry
from adapter.cli import main
from adapter.instrument import Code, EnableWhen, Instrument, Item
from adapter.links import links_for
from adapter.questionnaire import build_questionnaire, form_items
from adapter.resources import response_resources
from adapter.scoring import score_answers
from adapter.validation import RULES
from tests.support import (
    SCORE_CASES,
    SETTINGS,
    assert_valid_fhir,
    valid_response,
    validate_response,
)

ROOT = "QuestionnaireResponse"


def findings(resource, questionnaire_id=None):
    return [(i.rule, i.expression) for i in validate_response(resource, questionnaire_id).issues]


@pytest.mark.parametrize("instrument_id", sorted(registry.instruments()))
def test_valid_response_of_every_instrument_has_no_issue(instrument_id):
    result = validate_response(valid_response(instrument_id))
    assert result.issues == [] and result.valid and result.response is not None


def _phq4(change):
    resource = valid_response("phq4")
    change(resource)
    return resource


CASES = {
    "unknown-link-id": (
        lambda r: r["item"].append({"linkId": "phq4-sleep", "answer": [{"valueInteger": 1}]}),
        f"{ROOT}.item[4].linkId",
    ),
    "item-order": (lambda r: r["item"].insert(0, r["item"].pop(1)), f"{ROOT}.item[1]"),
    "duplicate-item": (lambda r: r["item"].append(copy.deepcopy(r["item"][3])), f"{ROOT}.item[4]"),
    "answer-and-items": (
        lambda r: r["item"][0].update(item=[copy.deepcopy(r["item"][1])]),
        f"{ROOT}.item[0]",
    ),
    "multiple-answers": (
        lambda r: r["item"][0]["answer"].append(copy.deepcopy(r["item"][0]["answer"][0])),
        f"{ROOT}.item[0].answer[1]",
    ),
    # A boolean for a choice item is no option, as in an answers document (it was
    # `wrong-answer-type` here and `not-an-option` there: one code per fact now).
    "not-an-option": (
        lambda r: r["item"][0].update(answer=[{"valueBoolean": True}]),
        f"{ROOT}.item[0].answer[0].valueBoolean",
    ),
    "wrong-system": (
        lambda r: r["item"][0]["answer"][0]["valueCoding"].update(system="http://snomed.info/sct"),
        f"{ROOT}.item[0].answer[0].valueCoding",
    ),
    "text-mismatch": (lambda r: r["item"][2].update(text="Sleep"), f"{ROOT}.item[2].text"),
    "required-missing": (lambda r: r["item"].pop(3), ROOT),
    "authored-missing": (lambda r: r.pop("authored"), f"{ROOT}.authored"),
    "subject-missing": (lambda r: r.pop("subject"), f"{ROOT}.subject"),
    "invalid-status": (lambda r: r.update(status="done"), f"{ROOT}.status"),
    "no-questionnaire": (lambda r: r.pop("questionnaire"), f"{ROOT}.questionnaire"),
    "unknown-questionnaire": (
        lambda r: r.update(questionnaire="http://example.org/Questionnaire/phq9"),
        f"{ROOT}.questionnaire",
    ),
    "unknown-version": (
        lambda r: r.update(questionnaire=r["questionnaire"].replace("|1.0.0", "|9.9.9")),
        f"{ROOT}.questionnaire",
    ),
    "fhir-structure": (
        lambda r: r["item"][0].update(answer=[{"valueInteger": "two"}]),
        f"{ROOT}.item[0].answer[0].valueInteger",
    ),
    "calculated-mismatch": (
        lambda r: r["item"].append({"linkId": "70272-0", "answer": [{"valueInteger": 11}]}),
        f"{ROOT}.item[4].answer[0]",
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_on_phq4(rule):
    change, expression = CASES[rule]
    assert findings(_phq4(change)) == [(rule, expression)]


def test_out_of_range():
    resource = valid_response("fiqr")
    resource["item"][0]["answer"][0]["valueInteger"] = 11
    assert findings(resource) == [("out-of-range", f"{ROOT}.item[0].answer[0].valueInteger")]


def test_wrong_place_in_the_hierarchy():
    resource = valid_response("fm2016")
    neck = next(i for i in resource["item"][0]["item"] if i["linkId"] == "wpi-neck")
    resource["item"].append(copy.deepcopy(neck))
    assert findings(resource) == [("wrong-place", f"{ROOT}.item[3].linkId")]


def test_group_answered():
    """The answers document's code for the same fact (it was `group-answered` here)."""
    resource = valid_response("fm2016")
    resource["item"][1]["answer"] = [{"valueBoolean": True}]
    assert findings(resource) == [("not-answerable", f"{ROOT}.item[1].answer[0]")]


def test_a_code_that_is_no_option_and_one_in_another_system():
    resource = valid_response("phq4")
    resource["item"][0]["answer"][0]["valueCoding"].update(code="LA9999-9")
    assert findings(resource) == [("not-an-option", f"{ROOT}.item[0].answer[0].valueCoding")]
    resource = valid_response("phq4")
    resource["item"][0]["answer"][0]["valueCoding"].update(system="http://example.org/codes")
    [found] = validate_response(resource).issues
    assert found.rule == "wrong-system" and found.severity == "error"
    assert "http://loinc.org" in found.message and "http://example.org/codes" in found.message
    assert "not one of the options" not in found.message


def test_a_display_that_is_not_the_options_is_a_warning():
    resource = valid_response("phq4")
    resource["item"][0]["answer"][0]["valueCoding"]["display"] = "Sometimes"
    result = validate_response(resource)
    assert result.valid and [(i.rule, i.severity) for i in result.issues] == [
        ("display-mismatch", "warning")
    ]
    assert "'Sometimes'" in result.issues[0].message


@pytest.mark.parametrize(
    ("instrument_id", "answer", "rule"),
    [
        ("fiqr", {"valueBoolean": True}, "wrong-type"),  # a boolean is not a number
        ("fiqr", {"valueDecimal": 2.5}, "wrong-type"),
        ("fiqr", {"valueString": "5"}, "wrong-type"),
        ("fiqr", {"valueCoding": {"code": "5"}}, "wrong-type"),
        ("fiqr", {"valueInteger": -1}, "out-of-range"),
        ("wpi", {"valueInteger": 1}, "wrong-type"),  # a number is not a boolean
        ("phq4", {"valueInteger": 9}, "not-an-option"),  # was `out-of-range` in documents
        ("phq4", {"valueString": "LA6568-5"}, "not-an-option"),
        ("phq4", {"valueDecimal": 1.0}, "not-an-option"),
    ],
)
def test_an_answer_gets_the_code_an_answers_document_gets(instrument_id, answer, rule):
    resource = valid_response(instrument_id)
    first = resource["item"][0]
    while "item" in first:
        first = first["item"][0]
    first["answer"] = [answer]
    key = next(iter(answer))
    assert [(i.rule, i.expression) for i in validate_response(resource).issues] == [
        (rule, f"{ROOT}.item[0].answer[0].{key}")
    ]


def test_required_missing_inside_a_group_names_the_group():
    resource = valid_response("fm2016")
    resource["item"][1]["item"].pop(0)
    assert findings(resource) == [("required-missing", f"{ROOT}.item[1]")]


def test_required_missing_is_a_warning_while_in_progress():
    resource = _phq4(lambda r: (r["item"].pop(3), r.update(status="in-progress")))
    result = validate_response(resource)
    assert [(i.rule, i.severity) for i in result.issues] == [("required-missing", "warning")]
    assert result.valid


def test_questionnaire_mismatch_with_the_caller():
    assert findings(valid_response("phq4"), "fiqr") == [
        ("questionnaire-mismatch", f"{ROOT}.questionnaire")
    ]


# --- rules our six instruments do not exercise: a small instrument made for the test -----------

EXTRA = Instrument(
    id="test-extra",
    title="enableWhen and maxLength",
    version="1.0.0",
    description="test",
    items=(
        Item("pain-now", "Pain now?", "boolean", code=Code("pain-now", "Pain now")),
        Item(
            "pain-where",
            "Where?",
            "string",
            max_length=10,
            required=True,
            enable_when=(EnableWhen("pain-now", "=", True),),
        ),
    ),  # fmt: skip
    scores=(),
)


@pytest.fixture
def extra(monkeypatch):
    monkeypatch.setitem(registry.instruments(), EXTRA.id, EXTRA)
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{SETTINGS.questionnaire_url(EXTRA.id)}|1.0.0",
        "status": "completed",
        "subject": {"reference": "Patient/1"},
        "authored": "2025-04-10",
        "item": [
            {"linkId": "pain-now", "answer": [{"valueBoolean": True}]},
            {"linkId": "pain-where", "answer": [{"valueString": "neck"}]},
        ],
    }


def test_enable_when_questionnaire_is_valid(extra):
    questionnaire = build_questionnaire(EXTRA, SETTINGS)
    assert_valid_fhir(questionnaire)
    assert questionnaire["item"][1]["enableWhen"] == [
        {"question": "pain-now", "operator": "=", "answerBoolean": True}
    ]
    assert findings(extra) == []


def test_disabled_answered(extra):
    extra["item"][0]["answer"] = [{"valueBoolean": False}]
    assert findings(extra) == [("disabled-answered", f"{ROOT}.item[1].answer[0]")]


def test_disabled_item_is_not_required(extra):
    extra["item"][0]["answer"] = [{"valueBoolean": False}]
    extra["item"].pop(1)
    assert findings(extra) == []


def test_enabled_item_is_required(extra):
    extra["item"].pop(1)
    assert findings(extra) == [("required-missing", ROOT)]


def test_too_long(extra):
    extra["item"][1]["answer"] = [{"valueString": "lower back and neck"}]
    assert findings(extra) == [("too-long", f"{ROOT}.item[1].answer[0].valueString")]


# --- responses as other tools write them -------------------------------------------------------


def _strip_text(items):
    for item in items:
        item.pop("text", None)
        _strip_text(item.get("item", []))


def test_without_item_text():
    resource = valid_response("fm2016")
    _strip_text(resource["item"])
    assert findings(resource) == []


def test_without_questionnaire_when_the_caller_names_it():
    resource = valid_response("fiqr")
    del resource["questionnaire"]
    assert findings(resource, "fiqr") == []


def test_canonical_without_version():
    resource = valid_response("sss")
    resource["questionnaire"] = SETTINGS.questionnaire_url("sss")
    assert findings(resource) == []


def test_integer_answers_for_choice_items_are_accepted_and_noted():
    resource = valid_response("phq4")
    resource["item"][0]["answer"] = [{"valueInteger": 2}]
    result = validate_response(resource)
    assert [(i.rule, i.severity) for i in result.issues] == [("integer-for-choice", "information")]
    assert result.response.answers["phq4-nervous"].code.code == "LA6570-1"


def test_coding_without_system_is_accepted():
    resource = valid_response("sss")
    del resource["item"][0]["answer"][0]["valueCoding"]["system"]
    assert findings(resource) == []


def lhc_forms_style(instrument_id):
    """As LHC-Forms sends it: no item.text, no questionnaire, the calculated scores included."""
    resource = valid_response(instrument_id)
    response = validate_response(resource).response
    del resource["questionnaire"]
    _strip_text(resource["item"])
    for result in score_answers(response.instrument, response.answers):
        item = next(i for i in form_items(response.instrument) if i.link_id == result.code)
        if item.score is None or result.value is None:
            continue
        key = {"boolean": "valueBoolean", "integer": "valueInteger"}.get(item.type, "valueDecimal")
        value = result.value if item.type == "boolean" else round(float(result.value), 4)
        resource["item"].append({"linkId": result.code, "answer": [{key: value}]})
    return resource


@pytest.mark.parametrize("instrument_id", sorted(registry.instruments()))
def test_rendered_response_validates_and_extracts_after_naming_the_questionnaire(instrument_id):
    resource = lhc_forms_style(instrument_id)
    assert findings(resource) == [("no-questionnaire", f"{ROOT}.questionnaire")]
    result = validate_response(resource, instrument_id)
    assert result.issues == []
    bundle = api.extract(resource, SETTINGS, instrument_id).bundle
    assert_valid_fhir(bundle)
    # a raised flag (PHQ-9 item 9) also gives a FHIR Flag beside its Observation
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != "Flag"
    ]
    assert {o["code"]["coding"][0]["code"] for o in observations} == {
        s.code.code for s in registry.get(instrument_id).scores
    }
    # By its identifier: the server's id for the response is not ours to know.
    source = {"type": "QuestionnaireResponse", "identifier": resource["identifier"]}
    assert all(o["derivedFrom"] == [source] for o in observations)
    resource.pop("identifier")
    observations = [
        e["resource"]
        for e in api.extract(resource, SETTINGS, instrument_id).bundle["entry"]
        if e["resource"]["resourceType"] != "Flag"
    ]
    assert all(
        o["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{resource['id']}"}]
        for o in observations
    )


def test_extraction_gives_the_same_observations_as_convert():
    case = next(c for c in SCORE_CASES if c.instrument_id == "fiqr")
    links = links_for("transaction", SETTINGS)
    resource, *converted = response_resources(case.response(), links).resources
    extracted = api.extract(resource, SETTINGS).bundle
    for ours, theirs in zip(converted, [e["resource"] for e in extracted["entry"]], strict=True):
        assert ours["identifier"] == theirs["identifier"]  # the id is in it (no id in a PUT)
        assert ours.get("valueQuantity") == theirs.get("valueQuantity")


# --- the command line, and garbage -------------------------------------------------------------


def _cli(tmp_path, content, *args):
    path = tmp_path / "qr.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    result = CliRunner().invoke(main, [args[0], str(path), *args[1:]], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_validate_command_exit_codes(tmp_path):
    code, outcome = _cli(tmp_path, valid_response("phq4"), "validate")
    assert code == 0 and outcome["issue"][0]["severity"] == "information"
    code, outcome = _cli(tmp_path, _phq4(lambda r: r["item"][2].update(text="x")), "validate")
    assert code == 0 and outcome["issue"][0]["severity"] == "warning"
    code, outcome = _cli(tmp_path, _phq4(lambda r: r["item"].pop(0)), "validate")
    assert code == 1 and outcome["issue"][0]["details"]["coding"][0]["code"] == "required-missing"
    resource = valid_response("fiqr")
    del resource["questionnaire"]
    assert _cli(tmp_path, resource, "validate")[0] == 1
    assert _cli(tmp_path, resource, "validate", "--questionnaire", "fiqr")[0] == 0


def test_extract_command(tmp_path):
    code, bundle = _cli(tmp_path, valid_response("phq4"), "extract")
    assert code == 0 and bundle["type"] == "transaction" and len(bundle["entry"]) == 3
    code, outcome = _cli(tmp_path, _phq4(lambda r: r["item"].pop(0)), "extract")
    assert code == 1 and outcome["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"{not json", "not-json"),
        (b"", "not-json"),
        (b"[1, 2]", "not-a-resource"),
        (b'{"hello": "world"}', "not-a-resource"),
        (json.dumps({"resourceType": "Patient", "id": "1"}).encode(), "wrong-resource-type"),
        (json.dumps({"resourceType": "QuestionnaireResponse"}).encode(), "fhir-structure"),
        (b'"just a string"', "not-a-resource"),
    ],
    ids=["broken", "empty", "array", "object", "another resource", "no status", "string"],
)
def test_garbage_gets_a_clear_outcome(tmp_path, content, rule):
    code, outcome = _cli(tmp_path, content, "validate")
    assert code == 1
    assert_valid_fhir(outcome)
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == rule


def test_huge_response_is_refused_without_reading_it_all(tmp_path):
    resource = valid_response("phq4")
    resource["item"][0]["text"] = "x" * (9 * 1024 * 1024)
    code, outcome = _cli(tmp_path, resource, "validate")
    assert code == 1 and outcome["issue"][0]["details"]["coding"][0]["code"] == "too-large"


def test_many_bad_items_are_listed_up_to_a_limit():
    resource = valid_response("phq4")
    resource["item"] += [{"linkId": f"x{n}", "answer": [{"valueInteger": 1}]} for n in range(2000)]
    issues = validate_response(resource).issues
    assert len(issues) == 501 and issues[-1].rule == "truncated"


def test_every_rule_is_documented():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "answers.md").read_text()
    for rule in RULES:
        assert f"`{rule}`" in page, rule


def test_the_questionnaire_may_be_named_by_its_canonical_and_version():
    resource = valid_response("phq4")
    resource.pop("questionnaire")
    url = SETTINGS.questionnaire_url("phq4")
    assert validate_response(resource, url).issues == []
    assert validate_response(resource, f"{url}|1.0.0").issues == []
    assert [i.rule for i in validate_response(resource, f"{url}|9.9.9").issues] == [
        "unknown-version"
    ]
