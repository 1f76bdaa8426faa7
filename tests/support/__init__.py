"""Helpers the tests share: plain values and functions, never tests and never fixtures.

Fixtures live once in `tests/conftest.py`; a test module imports what it needs from here (or from
a module of this package), never from another test module.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter import api, registry
from adapter.answers import check_answers
from adapter.fhir import validation_issues
from adapter.model import Response, Subject
from adapter.response import build_response
from adapter.settings import DEFAULT as SETTINGS

__all__ = [
    "CASES",
    "EXAMPLES",
    "MODULES",
    "ROOT",
    "SCORE_CASES",
    "SETTINGS",
    "ScoreCase",
    "assert_valid_fhir",
    "convert_documents",
    "expand_answers",
    "load_cases",
    "node_environment",
    "skip_or_fail",
    "valid_response",
    "validate_response",
]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CASES = ROOT / "tests" / "cases"
MODULES = ROOT / ".venv" / "js" / "node_modules"
"""The npm packages `make test` installs (fhirpath.js, Medplum's router, fhir-package-loader)."""


def skip_or_fail(reason: str) -> None:
    """Skipped where the part cannot be installed; a failure where CI requires every real part."""
    if os.environ.get("FMS_FHIR_REQUIRE_REAL_PARTS"):
        pytest.fail(f"{reason} (FMS_FHIR_REQUIRE_REAL_PARTS is set)")
    pytest.skip(reason)


def node_environment(package: str) -> dict[str, str]:
    """The environment that runs node with the npm `package`; skipped (or failed) without them."""
    if shutil.which("node") is None or not (MODULES / package).is_dir():
        skip_or_fail(f"node or {package} not installed (make test installs it when npm is there)")
    return {**os.environ, "NODE_PATH": str(MODULES)}


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


def expand_answers(instrument_id: str, case: dict[str, Any]) -> dict[str, Any]:
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
    """The YAML score cases, one file per instrument (tests/cases/)."""
    cases = []
    for path in sorted(CASES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for case in data["cases"]:
            cases.append(
                ScoreCase(
                    instrument_id=data["instrument"],
                    name=case["name"],
                    answers=expand_answers(data["instrument"], case),
                    expect={str(k): v for k, v in case["expect"].items()},
                    bands={str(k): v for k, v in (case.get("bands") or {}).items()},
                )
            )
    return cases


SCORE_CASES = load_cases()


def assert_valid_fhir(resource: dict[str, Any]) -> None:
    issues = validation_issues(resource)
    assert not issues, [f"{i.expression}: {i.message}" for i in issues]


def convert_documents(payload: Any, regimen: Any = None) -> tuple[dict[str, Any], list[Any]]:
    """The convert use case with default settings: (bundle, converted)."""
    result = api.convert(payload, SETTINGS, regimen=regimen)
    return result.bundle, result.converted


def validate_response(resource: Any, questionnaire_id: str | None = None) -> Any:
    return api.validate(resource, SETTINGS, questionnaire_id)


def valid_response(instrument_id: str) -> dict[str, Any]:
    """The QuestionnaireResponse of the instrument's first score case."""
    case = next(c for c in SCORE_CASES if c.instrument_id == instrument_id)
    return build_response(case.response(), SETTINGS)
