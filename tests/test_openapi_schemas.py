"""One source per input schema: every non-FHIR input schema `/openapi.json` serves is the one its
marshmallow schema derives (field by field: names, required, enums, lengths, descriptions), and a
document fits the served schema exactly when the marshmallow schema loads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from adapter.schemas import (
    ABSOLUTE_URI,
    FHIR_DATETIME,
    REFERENCE,
    RESPONSE_STATUSES,
    AnswersDocumentSchema,
    RegimenSchema,
    Strict,
)
from adapter.settings import Settings
from adapter.web import create_app
from adapter.web.schemas import INPUTS, input_schemas

jsonschema_rs = pytest.importorskip("jsonschema_rs")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOT_DERIVED = {"Answers", "Health", "OpenAPI"}
"""Served schemas that are neither FHIR's nor derived: the array-or-one wrapper of answers
documents (refers to the derived AnswersDocument) and two outputs."""
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    app = create_app(Settings())
    document = app.test_client().get("/openapi.json").get_json()
    return document["components"]["schemas"]


def _validator(served: dict[str, Any], name: str) -> Any:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": served}}
    return jsonschema_rs.validator_for(schema)


def _resolve(node: dict[str, Any], served: dict[str, Any]) -> dict[str, Any]:
    """A property's own schema: `$ref` followed, the `null` branch of a nullable one dropped."""
    if "$ref" in node:
        return _resolve(served[node["$ref"].rsplit("/", 1)[-1]], served)
    options = [o for o in node.get("anyOf", ()) if o != {"type": "null"}]
    if len(options) == 1:
        return _resolve(options[0], served)
    return node


# --- served == derived ---------------------------------------------------------------------------


def test_every_input_schema_is_the_derived_one(served):
    derived = input_schemas()
    assert set(INPUTS) <= set(derived)
    for name, schema in derived.items():
        assert served[name] == schema, name
    # Nothing else is ours and hand-written: every other schema is a FHIR resource's.
    for name, schema in served.items():
        if name in derived or name in NOT_DERIVED:
            continue
        assert schema["properties"]["resourceType"]["const"], name
    answers = served["Answers"]["oneOf"]
    assert answers[0] == {"$ref": "#/components/schemas/AnswersDocument"}
    assert answers[1]["items"] == answers[0]


def _check_fields(schema: Schema, node: dict[str, Any], served: dict[str, Any], where: str) -> None:
    """The served node says what the marshmallow schema says, independently of apispec."""
    node = _resolve(node, served)
    properties = node["properties"]
    keys = {field.data_key or name: field for name, field in schema.fields.items()}
    assert set(properties) == set(keys), where
    required = {key for key, field in keys.items() if field.required}
    assert set(node.get("required", ())) == required, where
    if schema.unknown == RAISE:
        assert node["additionalProperties"] is False, where
    if isinstance(schema, Strict) and schema.exactly_one:
        assert node["oneOf"] == [{"required": [name]} for name in schema.exactly_one], where
    if schema.Meta.__dict__.get("description"):
        assert node["description"] == schema.Meta.description, where
    for key, field in keys.items():
        place = f"{where}.{key}"
        prop = properties[key]
        if "description" in field.metadata:
            assert prop["description"] == field.metadata["description"], place
        for rule in field.validators:
            if isinstance(rule, validate.OneOf):
                assert [v for v in prop["enum"] if v is not None] == list(rule.choices), place
            if isinstance(rule, validate.Length):
                low, high = (
                    ("minItems", "maxItems")
                    if prop.get("type")
                    in (
                        "array",
                        ["array", "null"],
                    )
                    else ("minLength", "maxLength")
                )
                assert prop.get(low) == (rule.equal or rule.min), place
                assert prop.get(high) == (rule.equal or rule.max), place
        if field.allow_none and "$ref" not in prop and "anyOf" not in prop:
            assert "null" in prop["type"], place
        if isinstance(field, fields.Nested):
            _check_fields(field.schema, prop, served, place)
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            _check_fields(field.inner.schema, prop["items"], served, place)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_each_field_is_served_as_its_schema_says(served, name):
    _check_fields(INPUTS[name](), served[name], served, name)


# --- the drift of issue 17: every status convert accepts ----------------------------------------


def _document(**changes: Any) -> dict[str, Any]:
    document = {
        "instrument": "phq4",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "P001"}},
        "authored": "2025-04-10",
        "answers": {"phq4-nervous": 1},
    }
    return {**document, **changes}


def test_stopped_is_a_served_status_and_convert_takes_it(served):
    statuses = served["AnswersDocument"]["properties"]["status"]["enum"]
    assert statuses == list(RESPONSE_STATUSES)
    assert "stopped" in statuses
    document = _document(status="stopped")  # three required items left unanswered
    assert _validator(served, "Answers").is_valid(document)
    client = create_app(Settings()).test_client()
    response = client.post("/$convert", json=document)
    assert response.status_code == 200, response.get_json()
    resource = response.get_json()["entry"][0]["resource"]
    assert resource["resourceType"] == "QuestionnaireResponse"
    assert resource["status"] == "stopped"


def test_the_error_hint_names_a_served_status(served):
    """convert's hint for a response left incomplete recommends statuses the schema admits."""
    client = create_app(Settings()).test_client()
    outcome = client.post("/$convert", json=_document(status="completed")).get_json()
    hints = [i["diagnostics"] for i in outcome["issue"] if i["severity"] == "information"]
    assert hints and "'stopped'" in hints[0] and "'in-progress'" in hints[0]
    statuses = served["AnswersDocument"]["properties"]["status"]["enum"]
    assert {"stopped", "in-progress"} <= set(statuses)


# --- the served schema admits what the check admits ----------------------------------------------


def _loads(schema: Schema, document: Any) -> bool:
    try:
        schema.load(document)
    except ValidationError:
        return False
    return True


SPACE_LIKE = [chr(c) for c in range(0x3001) if chr(c).isspace()] + ["\ufeff", "\u200b"]
"""Characters regex engines disagree about (is it `\\s`?): the served pattern and the check
must still agree on them."""


def _text_or(pattern: Any) -> st.SearchStrategy[str]:
    return st.one_of(st.from_regex(pattern, fullmatch=True), st.text(max_size=30))


def _uri_like() -> st.SearchStrategy[str]:
    """A scheme and a colon, then anything, spaces of every engine's kind often among it."""
    rest = st.text(st.one_of(st.characters(), st.sampled_from(SPACE_LIKE)), min_size=1, max_size=6)
    scheme = st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,4}", fullmatch=True)
    return st.one_of(_text_or(ABSOLUTE_URI), st.builds(lambda a, b: f"{a}:{b}", scheme, rest))


@HYPOTHESIS
@given(status=st.one_of(st.sampled_from(RESPONSE_STATUSES), st.text(max_size=20)))
def test_status_fits_the_schema_exactly_when_it_loads(served, status):
    document = _document(status=status)
    assert _validator(served, "AnswersDocument").is_valid(document) == _loads(
        AnswersDocumentSchema(), document
    )


@HYPOTHESIS
@given(system=_uri_like())
def test_identifier_system_fits_the_schema_exactly_when_it_loads(served, system):
    document = _document(subject={"identifier": {"system": system, "value": "P001"}})
    assert _validator(served, "AnswersDocument").is_valid(document) == _loads(
        AnswersDocumentSchema(), document
    )


@pytest.mark.slow
@HYPOTHESIS
@given(
    system=_uri_like(),
    reference=_text_or(REFERENCE),
    shape=st.sampled_from(["identifier", "reference", "both", "neither"]),
)
def test_subject_fits_the_schema_exactly_when_it_loads(served, system, reference, shape):
    subject: dict[str, Any] = {}
    if shape in ("identifier", "both"):
        subject["identifier"] = {"system": system, "value": "P001"}
    if shape in ("reference", "both"):
        subject["reference"] = reference
    for name, schema in (("AnswersDocument", AnswersDocumentSchema()), ("Regimen", None)):
        if schema is None:
            schema = RegimenSchema()
            document: dict[str, Any] = {
                "subject": subject,
                "phases": [{"dose_mg": 1.5, "start": "2024-01-01"}],
            }
        else:
            document = _document(subject=subject)
        assert _validator(served, name).is_valid(document) == _loads(schema, document), name


@pytest.mark.slow
@HYPOTHESIS
@given(authored=_text_or(FHIR_DATETIME))
def test_authored_loads_only_when_it_fits_the_schema(served, authored):
    """The pattern is the check's; the calendar (no 30 February) is checked beyond it."""
    document = _document(authored=authored)
    fits = _validator(served, "AnswersDocument").is_valid(document)
    assert _loads(AnswersDocumentSchema(), document) <= fits
    if fits and len(authored) <= 7:  # a year or a month: nothing more to check
        assert _loads(AnswersDocumentSchema(), document)


@HYPOTHESIS
@given(phases=st.booleans(), titration=st.booleans(), empty=st.booleans())
def test_regimen_takes_phases_or_titration_as_served(served, phases, titration, empty):
    document: dict[str, Any] = {"subject": {"reference": "Patient/1"}}
    if phases:
        document["phases"] = [] if empty else [{"dose_mg": 1.5, "start": "2024-01-01"}]
    if titration:
        document["titration"] = {
            "start_mg": 1.5,
            "step_mg": 1.5,
            "every_days": 14,
            "target_mg": 4.5,
            "start": "2024-01-01",
        }
    fits = _validator(served, "Regimen").is_valid(document)
    assert fits == _loads(RegimenSchema(), document)


def test_the_repository_examples_fit_the_served_schemas(served):
    answers = json.loads((EXAMPLES / "baseline-visit.json").read_text(encoding="utf-8"))
    regimen = json.loads((EXAMPLES / "ldn-regimen.json").read_text(encoding="utf-8"))
    contract = yaml.safe_load((EXAMPLES / "legacy-contract.yaml").read_text(encoding="utf-8"))
    for name, document in (("Answers", answers), ("Regimen", regimen), ("SheetContract", contract)):
        errors = [e.message for e in _validator(served, name).iter_errors(document)]
        assert not errors, (name, errors[:3])


def test_unknown_fields_are_refused_by_both(served):
    document = _document(note="not a field of an answers document")
    assert not _validator(served, "AnswersDocument").is_valid(document)
    assert not _loads(AnswersDocumentSchema(), document)


def test_the_upload_encoding_comes_from_the_form_fields():
    app = create_app(Settings())
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    expected = {
        field.data_key or name: {"contentType": field.metadata["part_types"]}
        for name, field in INPUTS["SheetUpload"]().fields.items()
        if "part_types" in field.metadata
    }
    assert set(expected) == {"file", "contract"}
    for path in ("/$convert-sheet", "/"):
        media = paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert media["schema"] == {"$ref": "#/components/schemas/SheetUpload"}
        assert media["encoding"] == expected, path
