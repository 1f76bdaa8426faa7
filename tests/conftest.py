"""Shared fixtures: the YAML score cases (one file per instrument) and R4B validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter import api, registry
from adapter.answers import check_answers
from adapter.fhir import validation_issues
from adapter.model import Response, Subject
from adapter.settings import DEFAULT as SETTINGS
from tests.fhir_server import fhir_server, fhir_server_process  # noqa: F401

CASES = Path(__file__).parent / "cases"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@dataclass(frozen=True)
class ScoreCase:
    instrument_id: str
    name: str
    answers: dict[str, Any]
    expect: dict[str, Any]
    bands: dict[str, str | None]

    def response(self, authored: str = "2025-04-10") -> Response:
        instrument = registry.get(self.instrument_id)
        assert instrument is not None
        values, issues = check_answers(instrument, self.answers)
        assert not issues, issues
        subject = Subject(system="urn:example:mrn", value="TEST-1")
        return Response(instrument, subject, authored, "completed", values)


def _expand(instrument_id: str, case: dict[str, Any]) -> dict[str, Any]:
    """`defaults` fills every unlisted item of a type; `omit` then removes items."""
    instrument = registry.get(instrument_id)
    assert instrument is not None, instrument_id
    answers: dict[str, Any] = {}
    for item_type, value in (case.get("defaults") or {}).items():
        answers.update(
            {i.link_id: value for i in instrument.answerable_items() if i.type == item_type}
        )
    answers.update(case.get("answers") or {})
    for link_id in case.get("omit") or []:
        answers.pop(link_id)
    return answers


def load_cases() -> list[ScoreCase]:
    cases = []
    for path in sorted(CASES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for case in data["cases"]:
            cases.append(
                ScoreCase(
                    instrument_id=data["instrument"],
                    name=case["name"],
                    answers=_expand(data["instrument"], case),
                    expect={str(k): v for k, v in case["expect"].items()},
                    bands={str(k): v for k, v in (case.get("bands") or {}).items()},
                )
            )
    return cases


SCORE_CASES = load_cases()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "score_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "score_case", SCORE_CASES, ids=[f"{c.instrument_id}: {c.name}" for c in SCORE_CASES]
        )


def assert_valid_fhir(resource: dict[str, Any]) -> None:
    issues = validation_issues(resource)
    assert not issues, [f"{i.expression}: {i.message}" for i in issues]


def convert_documents(payload: Any, regimen: Any = None) -> tuple[dict[str, Any], list[Any]]:
    """The convert use case with default settings: (bundle, converted)."""
    result = api.convert(payload, SETTINGS, regimen=regimen)
    return result.bundle, result.converted


def validate_response(resource: Any, questionnaire_id: str | None = None) -> Any:
    return api.validate(resource, SETTINGS, questionnaire_id)
