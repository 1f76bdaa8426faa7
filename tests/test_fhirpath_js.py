"""Every calculatedExpression, evaluated by fhirpath.js (the engine of LHC-Forms), on every case.

`make test` installs fhirpath.js into .venv/js when npm is there; without node the test is skipped
(the fhirpathpy agreement test in test_scoring_cases.py still runs).
"""

import json
import subprocess
from fractions import Fraction

import pytest

from adapter.response import build_response
from adapter.scoring import score_answers
from tests.support import ROOT, SCORE_CASES, SETTINGS, node_environment

pytestmark = pytest.mark.slow  # fhirpath.js in node


@pytest.fixture(scope="module")
def node():
    return node_environment("fhirpath")


def test_fhirpath_js_agrees_with_python_on_every_case(node):
    jobs, expected = [], []
    for case in SCORE_CASES:
        response = case.response()
        resource = build_response(response, SETTINGS)
        for result in score_answers(response.instrument, response.answers):
            expression = result.score.formula.fhirpath(response.instrument.item_index)
            jobs.append(json.dumps({"resource": resource, "expression": expression}))
            expected.append((case.name, result.code, result.value))
    run = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "evaluate.js")],
        input="\n".join(jobs),
        capture_output=True,
        text=True,
        env=node,
        timeout=120,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert len(lines) == len(expected)
    for (name, code, value), line in zip(expected, lines, strict=True):
        got = json.loads(line)
        assert "error" not in got, (name, code, got)
        result = got["result"]
        if value is None:
            assert result == [], (name, code, result)
        elif isinstance(value, bool):
            assert result == [value], (name, code, result)
        else:
            assert len(result) == 1, (name, code, result)
            assert abs(Fraction(str(result[0])) - Fraction(value)) < Fraction(1, 10**9), (
                name,
                code,
            )
