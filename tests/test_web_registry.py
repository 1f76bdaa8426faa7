"""One registry: the routes Flask serves, the CapabilityStatement and the OpenAPI description list
exactly the same operations, and every OpenAPI example fits its own schema."""

from __future__ import annotations

import re
from typing import Any

import pytest

from adapter.settings import Settings
from adapter.web import CONCERNS, create_app
from adapter.web.operations import Operation

SETTINGS = Settings()
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every GET / every route


def registered() -> list[Operation]:
    return [op for _, operations in CONCERNS for op in operations]


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - IGNORED_METHODS:
            found.add((method, path))
    return found


@pytest.fixture(params=[frozenset(), frozenset({"t"})], ids=["open", "tokens"])
def app(request):
    return create_app(SETTINGS.with_(api_tokens=request.param))


def test_routes_are_exactly_the_registry(app):
    expected = {(op.method, op.path) for op in registered()}
    assert routes(app) == expected
    names = [op.name for op in registered()]
    assert len(names) == len(set(names)), "operation names are unique"


def test_openapi_lists_exactly_the_routes(app):
    headers = {"Authorization": "Bearer t"}
    document = app.test_client().get("/openapi.json", headers=headers).get_json()
    listed = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    assert listed == routes(app)
    ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert ids == {op.name for op in registered()}


def test_capability_statement_lists_exactly_the_fhir_routes(app):
    statement = app.test_client().get("/metadata").get_json(force=True)
    rest = statement["rest"][0]
    listed: set[tuple[str, str]] = set()
    for resource in rest["resource"]:
        for interaction in resource.get("interaction", []):
            listed.add((resource["type"], interaction["code"]))
        for operation in resource.get("operation", []):
            listed.add((resource["type"], "$" + operation["name"]))
    for operation in rest.get("operation", []):
        listed.add(("system", "$" + operation["name"]))
    expected = set()
    for op in registered():
        if op.interaction in ("system", "capabilities"):
            continue
        code = "$" + op.name if op.interaction == "operation" else op.interaction
        expected.add((op.resource or "system", code))
    assert listed == expected
    # and every FHIR operation's route ends in its name: /Type/$name or /$name
    for op in registered():
        if op.interaction == "operation":
            assert op.path.endswith("/$" + op.name)
            assert op.path == (f"/{op.resource}/${op.name}" if op.resource else f"/${op.name}")


def _schemas(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]


def _resolved(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The schema with its components alongside, so `#/components/schemas/...` resolves."""
    return {**schema, "components": {"schemas": _schemas(document)}}


def test_every_example_fits_its_schema():
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    document = create_app(SETTINGS).test_client().get("/openapi.json").get_json()
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            for media_type, media in body.items():
                if "json" not in media_type:
                    continue
                validator = jsonschema_rs.validator_for(_resolved(media["schema"], document))
                for name, example in media.get("examples", {}).items():
                    errors = [e.message for e in validator.iter_errors(example["value"])]
                    assert not errors, (method, path, name, errors[:3])
                    checked += 1
            ok = operation["responses"]["200"].get("content", {})
            for media in ok.values():
                if "example" in media:
                    validator = jsonschema_rs.validator_for(_resolved(media["schema"], document))
                    errors = [e.message for e in validator.iter_errors(media["example"])]
                    assert not errors, (method, path, errors[:3])
                    checked += 1
    assert checked >= 12
