"""Answers documents -> transaction Bundle, through the CLI as users run it."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter import registry
from adapter.cli import main
from tests.support import assert_valid_fhir, convert_documents

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "baseline-visit.json"


def _run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _document(**changes):
    document = {
        "instrument": "phq4",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "P001"}},
        "authored": "2025-04-10",
        "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 1, "phq4-down": 1},
    }
    document.update(changes)
    return document


def test_example_converts_to_a_valid_transaction_bundle(tmp_path):
    out = tmp_path / "bundle.json"
    result = _run("convert", str(EXAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text())
    assert_valid_fhir(bundle)
    assert bundle["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("QuestionnaireResponse") == 4 and kinds.count("Observation") == 14
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        rid = entry["fullUrl"].removeprefix("urn:uuid:")
        # A conditional update on the identifier, without a client id: a correction reaches
        # the server, a retry of the same content changes nothing (docs/lifecycle.md).
        assert "id" not in resource
        ours = {"system": "https://fms-fhir.org/fhir/sid/resource-id", "value": rid}
        assert resource["identifier"] in (ours, [ours])  # QuestionnaireResponse: 0..1
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}?identifier="
            f"https://fms-fhir.org/fhir/sid/resource-id|{rid}",
        }
        for ref in resource.get("derivedFrom", []) + resource.get("hasMember", []):
            assert ref["reference"] in full_urls


def test_observation_shape():
    bundle, _ = convert_documents(json.loads(EXAMPLE.read_text()))
    by_code = {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    total = by_code["fiqr-total"]
    assert total["category"][0]["coding"][0]["code"] == "survey"
    assert total["valueQuantity"] == {
        "value": 72.5, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"
    }  # fmt: skip
    assert total["effectiveDateTime"] == "2023-02-14"
    assert total["interpretation"][0]["coding"][0]["code"] == "severe"
    assert "Bennett" in total["interpretation"][0]["text"]
    assert len(total["hasMember"]) == 3
    assert "fiqr 1.0.0" in total["method"]["text"]
    assert by_code["70272-0"]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert by_code["acr2016-criteria"]["valueBoolean"] is True
    assert by_code["wpi-score"]["valueQuantity"]["value"] == 17
    assert isinstance(by_code["wpi-score"]["valueQuantity"]["value"], int)


def test_questionnaire_response_shape():
    bundle, _ = convert_documents(_document())
    response = bundle["entry"][0]["resource"]
    assert response["questionnaire"].endswith("/Questionnaire/phq4|1.0.0")
    assert response["subject"] == {"identifier": {"system": "urn:example:mrn", "value": "P001"}}
    assert response["authored"] == "2025-04-10" and response["status"] == "completed"
    first = response["item"][0]
    assert first["text"] == "Feeling nervous, anxious or on edge"
    assert first["answer"] == [
        {
            "valueCoding": {
                "system": "http://loinc.org",
                "code": "LA6569-3",
                "display": "Several days",
            }
        }
    ]


def test_fm2016_response_nests_answers_in_groups():
    document = _document(
        instrument="fm2016",
        status="stopped",
        answers={"wpi-neck": True, "sss-fatigue": 2, "fm-duration-3m": False},
    )
    response = convert_documents(document)[0]["entry"][0]["resource"]
    assert [i["linkId"] for i in response["item"]] == ["wpi", "sss", "fm-duration-3m"]
    assert response["item"][0]["item"] == [
        {"linkId": "wpi-neck", "text": "Neck", "answer": [{"valueBoolean": True}]}
    ]


def test_missing_scores_carry_a_data_absent_reason():
    bundle, _ = convert_documents(_document(answers={"phq4-nervous": 1}, status="stopped"))
    observations = [e["resource"] for e in bundle["entry"][1:]]
    for observation in observations:
        assert_valid_fhir(observation)
        assert "valueQuantity" not in observation and "interpretation" not in observation
        assert observation["dataAbsentReason"]["coding"][0]["code"] == "unknown"
        assert "unanswered" in observation["dataAbsentReason"]["text"]


def test_subject_by_reference_and_statuses():
    bundle, _ = convert_documents(
        _document(subject={"reference": "Patient/123"}, status="in-progress")
    )
    response, observation = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    assert (
        response["subject"] == {"reference": "Patient/123"} and response["status"] == "in-progress"
    )
    assert observation["status"] == "preliminary"


def test_output_is_deterministic(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    _run("convert", str(EXAMPLE), "--out", str(first))
    _run("convert", str(EXAMPLE), "--out", str(second))
    assert first.read_bytes() == second.read_bytes()


def test_ids_depend_on_subject_instrument_and_date():
    ids = lambda bundle: [e["fullUrl"] for e in bundle["entry"]]  # noqa: E731
    base = ids(convert_documents(_document())[0])
    assert ids(convert_documents(_document())[0]) == base
    assert set(ids(convert_documents(_document(authored="2025-04-11"))[0])).isdisjoint(base)
    other = _document(subject={"identifier": {"system": "urn:example:mrn", "value": "P002"}})
    assert set(ids(convert_documents(other)[0])).isdisjoint(base)


def test_standard_output_and_stdin():
    result = _run("convert", "-", input=json.dumps(_document()))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["resourceType"] == "Bundle"


def test_table_lists_scores_and_bands():
    result = _run("convert", str(EXAMPLE), "--table")
    assert "fiqr-total" in result.stderr and "Severe" in result.stderr and "72.5" in result.stderr


BAD = [
    ("unknown instrument", _document(instrument="bdi-ii"), "instrument", "unknown-instrument"),
    ("unknown linkId", _document(answers={"phq4-sleep": 1}), "answers.phq4-sleep", "unknown-item"),
    (
        "score sent as an item",
        _document(answers={"70272-0": 7}),
        "answers.70272-0",
        "calculated-item",
    ),
    # A score that is no option of a choice item is `not-an-option`, as `$validate` says
    # (it was `out-of-range` here: one code per fact on every path).
    ("no such score", _document(answers={"phq4-down": 4}), "answers.phq4-down", "not-an-option"),
    (
        "not an option",
        _document(answers={"phq4-down": "LA9999-9"}),
        "answers.phq4-down",
        "not-an-option",
    ),
    (
        "integer out of range",
        _document(instrument="fiqr", answers={"fiqr-f1": 11}),
        "answers.fiqr-f1",
        "out-of-range",
    ),
    (
        "wrong type",
        _document(instrument="wpi", answers={"wpi-neck": "yes"}),
        "answers.wpi-neck",
        "wrong-type",
    ),
    (
        "number for a boolean",
        _document(instrument="wpi", answers={"wpi-neck": 1}),
        "answers.wpi-neck",
        "wrong-type",
    ),
    (
        "decimal for an integer",
        _document(instrument="pain-nrs", answers={"pain-max": 55.5}),
        "answers.pain-max",
        "wrong-type",
    ),
    ("bad date", _document(authored="10.04.2025"), "authored", "invalid-value"),
    ("impossible date", _document(authored="2025-02-30"), "authored", "invalid-value"),
    (
        "date-time without zone",
        _document(authored="2025-04-10T10:00:00"),
        "authored",
        "invalid-value",
    ),
    ("bad status", _document(status="done"), "status", "invalid-value"),
    (
        "no subject",
        {k: v for k, v in _document().items() if k != "subject"},
        "subject",
        "missing-field",
    ),
    (
        "two subjects",
        _document(
            subject={"reference": "Patient/1", "identifier": {"system": "urn:s", "value": "v"}}
        ),
        "subject",
        "invalid-value",
    ),
    ("unknown field", _document(comment="x"), "comment", "unknown-field"),
    ("not an object", [1], "[0]", "not-an-object"),
    (
        "second document bad",
        [_document(), _document(authored="x")],
        "[1].authored",
        "invalid-value",
    ),
    ("duplicate visit", [_document(), _document()], "[1]", "duplicate-response"),
]


@pytest.mark.parametrize(("label", "document", "expression", "rule"), BAD, ids=[b[0] for b in BAD])
def test_bad_documents_give_exit_1_an_outcome_and_no_output(
    tmp_path, label, document, expression, rule
):
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(document))
    result = _run("convert", str(source), "--out", str(out))
    assert result.exit_code == 1
    assert not out.exists()
    outcome = json.loads(result.stdout)
    assert_valid_fhir(outcome)
    issues = outcome["issue"]
    assert any(
        i["expression"] == [expression] and i["details"]["coding"][0]["code"] == rule
        for i in issues
    ), issues


def test_not_json_and_missing_file(tmp_path):
    source = tmp_path / "in.json"
    source.write_text("{not json")
    result = _run("convert", str(source))
    assert result.exit_code == 1 and json.loads(result.stdout)["issue"][0]["code"] == "structure"
    result = _run("convert", str(tmp_path / "nope.json"))
    assert result.exit_code == 1 and json.loads(result.stdout)["resourceType"] == "OperationOutcome"


def test_questionnaire_commands(tmp_path):
    result = _run("questionnaire", "--all", "--out", str(tmp_path))
    assert result.exit_code == 0
    written = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert written == sorted([*registry.instruments(), "fms-instruments"])
    for path in tmp_path.glob("*.json"):
        assert_valid_fhir(json.loads(path.read_text()))
    single = _run("questionnaire", "phq4")
    assert json.loads(single.stdout)["id"] == "phq4"
    unknown = _run("questionnaire", "bdi-ii")
    assert unknown.exit_code == 1 and "bdi-ii" in unknown.stdout


def test_strict_mode_validates_at_run_time(monkeypatch):
    monkeypatch.setenv("FMS_FHIR_STRICT", "1")
    bundle, _ = convert_documents(json.loads(EXAMPLE.read_text()))
    assert bundle["type"] == "transaction"


def test_resource_ids_are_rfc_4122_uuid5_of_the_parts_as_json():
    import uuid

    import orjson

    from adapter.ids import NAMESPACE, resource_id

    for parts in [("a",), ("P|1", "urn:x", "2025-04-10"), ("ü", "", "\u2028")]:
        expected = uuid.uuid5(NAMESPACE, orjson.dumps(parts).decode())
        assert resource_id(*parts) == str(expected)
