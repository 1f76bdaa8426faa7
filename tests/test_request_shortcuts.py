"""The shortcuts of issue 22 give exactly what the plain ways give: a visit's documents load their
shared part once (same Response, same issues, whatever is wrong and wherever), and a JSON text is
walked for its depth only when its brackets could exceed the limit (the same verdict either way)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapter import api
from adapter.answers import response_from_document
from adapter.jsonio import depth_exceeds, loads
from adapter.outcome import InvalidInput
from adapter.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
VISIT: list[dict[str, Any]] = json.loads((ROOT / "examples" / "baseline-visit.json").read_text())

SUBJECTS = [
    {"reference": "Patient/1"},
    {"identifier": {"system": "urn:s", "value": "v"}},
    {"identifier": {"system": "urn:s", "value": "v"}, "display": "Ann"},
    {"identifier": {"system": "no uri", "value": "v"}},
    {"reference": "Patient/1", "identifier": {"system": "urn:s", "value": "v"}},
    {},
    "Patient/1",
]
FIELDS: dict[str, list[Any]] = {
    "subject": SUBJECTS,
    "authored": ["2023-02-14", "2025", "2025-02-30", "10.04.2025", 2025, None],
    "status": ["completed", "stopped", "done", None],
    "test_data": ["synthetic", "", 1],
    "instrument": ["phq4", "fiqr", "bdi", 3, None],
    "answers": [{}, [], {"phq4-down": 1}, {"1": 1}],
    "comment": ["x"],
}
changes = st.lists(
    st.tuples(
        st.integers(0, len(VISIT) - 1),
        st.sampled_from(sorted(FIELDS)),
        st.integers(0, 5),
        st.booleans(),
    ),
    max_size=4,
)


def _outcome(document: Any, prefix: str, shared: Any) -> Any:
    try:
        return response_from_document(document, prefix, shared)
    except InvalidInput as error:
        return error.issues


@settings(max_examples=150, deadline=None)
@given(changes, st.integers(1, 4))
@example([(1, "instrument", 3, False)], 1)  # the shared part as before, its own part wrong
@example([(2, "answers", 1, False)], 2)
@example([(0, "subject", 1, False), (3, "status", 1, False)], 2)
def test_a_visit_loads_as_each_document_alone(edits: list[Any], repeat: int) -> None:
    documents = [dict(d) for d in VISIT] * repeat
    for index, name, choice, drop in edits:
        values = FIELDS[name]
        if drop:
            documents[index].pop(name, None)
        else:
            documents[index][name] = values[choice % len(values)]
    shared: dict[bytes, dict[str, Any]] = {}
    for index, document in enumerate(documents):
        prefix = f"[{index}]."
        assert _outcome(document, prefix, shared) == _outcome(document, prefix, None)


def test_a_visit_converts_as_its_documents_one_by_one() -> None:
    together = api.convert(VISIT, Settings())
    alone = [api.convert(document, Settings()).converted[0].resources for document in VISIT]
    assert [c.resources for c in together.converted] == alone


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="{[]}ab", max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=40,
)


@given(json_values, st.integers(0, 8))
def test_the_depth_limit_is_the_walked_depth(value: Any, limit: int) -> None:
    text = json.dumps(value)
    try:
        loads(text.encode(), "x", None, limit)
        refused = False
    except InvalidInput as error:
        assert error.issues[0].rule == "too-deep"
        refused = True
    assert refused == depth_exceeds(value, limit)
