"""`$report` of a long history (issue 22): NDJSON read a line at a time from the request, each
line orjson wrote parsed in C, and the answers (values and errors) those of `jsonio.loads`."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter import jsonio
from adapter.outcome import InvalidInput
from adapter.report import drawing, follow_up, resources_from_ndjson, usecases
from adapter.report.core import exact, number_text, one_patient, percent_text, rounded
from adapter.web import create_app
from benchmarks.report_baseline import core as before
from tests.support import SETTINGS
from tests.support.reports import new_instrument_resources, obs

FAST = settings(max_examples=150, deadline=None)

# JSON values with the numbers a report reads (decimals of any length included) and the keys
# and strings of any text, escapes and non-ASCII included.
NUMBERS = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4).map(float)
)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=12)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _answer(call: Any) -> Any:
    """What a loader gives: the value, or the error's (status, rule, message, place)."""
    try:
        return ("value", call())
    except InvalidInput as error:
        issue = error.issues[0]
        return ("error", error.status, issue.rule, issue.message, issue.expression)


def _same_numbers(ours: Any, theirs: Any) -> bool:
    """Equal values, a float read where `loads` reads a Decimal standing for the same digits."""
    if isinstance(ours, float) and isinstance(theirs, Decimal):
        return Decimal(repr(ours)) == theirs
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return list(ours) == list(theirs) and all(
            _same_numbers(ours[key], theirs[key]) for key in ours
        )
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(_same_numbers, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


@FAST
@given(VALUES)
def test_a_text_orjson_wrote_reads_as_loads_reads_it(value):
    text = orjson.dumps(value)
    ours, theirs = jsonio.loads_written(text), jsonio.loads(text)
    assert _same_numbers(ours, theirs)
    if isinstance(ours, float):
        assert exact(ours) == exact(theirs), "the report reads the same number"


@FAST
@given(VALUES, st.sampled_from([b" ", b"\n", b"\t"]), st.integers(0, 200))
def test_any_other_text_is_read_by_loads(value, space, at):
    """A space between tokens is not what orjson writes, so `loads` reads it (one in a string
    is: then read in C, the same value)."""
    written = orjson.dumps(value)
    text = written[:at] + space + written[at:] if at < len(written) else written + space
    ours, theirs = _answer(lambda: jsonio.loads_written(text)), _answer(lambda: jsonio.loads(text))
    assert ours[0] == theirs[0]
    assert _same_numbers(ours[1], theirs[1]) if ours[0] == "value" else ours == theirs


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":2}',
        b'{"a":"\\ud800"}',
        b'[{"b":"\\udfff"}]',
        b"[NaN]",
        b"[1e400]",
        b"[123456789012345678901234567890]",
        b"{oops",
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"[" * 65 + b"]" * 65,
        b'{"a":' * 64 + b"1" + b"}" * 64,
        b'{"a":' * 65 + b"1" + b"}" * 65,
        b'["[[[[","]]]"]',
        b'{"dose":4.50}',
        b'{"dose":4.5}',
    ],
)
def test_the_hard_texts_get_the_answers_of_loads(text):
    assert _answer(lambda: jsonio.loads_written(text)) == _answer(lambda: jsonio.loads(text))


@given(VALUES)
@FAST
def test_the_depth_read_from_brackets_is_the_values(value):
    def depth(node: Any) -> int:
        if isinstance(node, dict):
            return 1 + max(map(depth, node.values()), default=0)
        if isinstance(node, list):
            return 1 + max(map(depth, node), default=0)
        return 0

    assert jsonio.text_depth(orjson.dumps(value)) == depth(value)


BODIES = st.lists(
    st.sampled_from([b"", b"  ", b"{}", b'{"a":1}', b"[1,2]", b"1", b"oops"]), max_size=8
)
ENDS = st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=8, max_size=8)


@FAST
@given(BODIES, ENDS)
def test_lines_read_from_a_stream_are_the_lines_of_the_bytes(lines, ends):
    """Line numbers (which an error names) and lines are the same, however lines end."""
    body = b"".join(line + end for line, end in zip(lines, ends, strict=False))

    def read(data: Any) -> Any:
        try:
            return list(resources_from_ndjson(data, SETTINGS))
        except InvalidInput as error:
            return error.issues[0].message

    assert read(io.BufferedReader(io.BytesIO(body))) == read(body)


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=60).map(lambda b: b.translate(bytes(b"ab\r\n"[i % 4] for i in range(256)))),
    st.integers(1, 9),
)
def test_lines_cut_a_block_at_a_time_are_the_lines_of_the_bytes(body, block):
    """Blocks ending inside a line, between a \\r and its \\n, or on a line end: the same lines."""
    from adapter.report.load import _lines

    assert list(_lines(io.BytesIO(body), block)) == body.splitlines()


@FAST
@given(
    st.fractions(min_value=-1000, max_value=1000, max_denominator=400),
    st.integers(0, 3),
    st.booleans(),
)
def test_a_number_is_formatted_as_before_it_was_remembered(value, places, signed):
    """The texts are remembered by numerator and denominator: the same as computed anew."""
    for _ in range(2):  # the first call computes, the second finds it
        assert rounded(value, places) == before.rounded(value, places)
        assert number_text(value, places, signed) == before.number_text(value, places, signed)
        assert percent_text(value, signed) == before.percent_text(value, signed)


QUERY = "?patient=P1"


@pytest.fixture
def client(tmp_path):
    app = create_app(
        {"SETTINGS": SETTINGS, "TESTING": True, "FMS_FHIR_PAGE_DIR": str(tmp_path / "page")}
    )
    return app.test_client()


def _visits(count: int) -> list[dict[str, Any]]:
    return [obs("pain-mean", f"2024-01-{day:02d}", 50 + day / 2) for day in range(1, count + 1)]


def test_a_streamed_ndjson_body_answers_as_the_same_resources_in_a_bundle(client):
    resources = _visits(20)
    ndjson = b"\r\n".join(orjson.dumps(r) for r in resources)
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    accept = {"Accept": "application/fhir+json"}
    streamed = client.post(
        "/$report" + QUERY,
        input_stream=io.BytesIO(ndjson),
        content_type="application/fhir+ndjson",
        headers=accept,
    )
    whole = client.post("/$report" + QUERY, json=bundle, headers=accept)
    assert streamed.status_code == whole.status_code == 200
    assert streamed.data == whole.data
    expected = follow_up(resources, SETTINGS, "P1")[0]
    assert len(streamed.get_json(force=True)["entry"]) == len(
        [c for c in expected.changes if c.change is not None]
    )


def test_a_bad_line_is_named_by_its_number_and_the_count_limit_comes_first(tmp_path):
    client = create_app(
        {
            "SETTINGS": SETTINGS,
            "TESTING": True,
            "FMS_FHIR_PAGE_DIR": str(tmp_path / "page"),
            "FMS_FHIR_REPORT_MAX_RESOURCES": "3",
        }
    ).test_client()
    lines = [json.dumps(r).encode() for r in _visits(5)]
    bad = b"\n".join([*lines[:2], b"", b'{"a":1,"a":2}'])
    answer = client.post("/$report" + QUERY, data=bad, content_type="application/fhir+ndjson")
    assert answer.status_code == 400
    assert "the body line 4 is not valid JSON" in answer.get_data(as_text=True)
    over = b"\n".join([*lines[:4], b"{oops"])
    answer = client.post("/$report" + QUERY, data=over, content_type="application/fhir+ndjson")
    assert answer.status_code == 413 and b"too-many-resources" in answer.data


def test_a_chart_built_without_the_changes_is_the_same_chart():
    """A chart shows no change from baseline: `chart` computes none, and draws the same bytes."""
    resources = new_instrument_resources()
    full = one_patient(follow_up(resources, SETTINGS))
    assert full.changes, "the patient has changes to leave out"
    assert usecases.chart(resources, SETTINGS, "svg") == drawing.chart(full, "svg")


# --- resources vouched for by their reader ---------------------------------------------------

SURROGATE_TEXT = st.lists(  # lone halves, pairs and plain text
    st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00"])
    | st.characters(codec="utf-8"),
    max_size=6,
).map("".join)
WITH_SURROGATES = st.recursive(
    st.none() | st.integers(-5, 5) | SURROGATE_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(SURROGATE_TEXT, children, max_size=3)
    ),
    max_leaves=12,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@FAST
@given(WITH_SURROGATES, st.booleans())
def test_a_resource_marked_surrogate_free_holds_no_lone_surrogate(extra, pretty):
    """The mark that spares the report its walk of every string is never wrong: a line holding
    a lone surrogate anywhere (escaped as JSON allows) is refused, and what is read carries
    none, whether orjson wrote the line or not."""
    resource = {"resourceType": "Observation", "extra": extra}
    text = json.dumps(resource, indent=1 if pretty else None).replace("\n", " ").encode()
    try:
        (read,) = resources_from_ndjson(text + b"\n", SETTINGS)
    except InvalidInput as error:
        assert error.issues[0].rule == "lone-surrogate"
        assert any(jsonio.SURROGATE.search(s) for s in _strings(resource))
        return
    assert type(read) is jsonio.SurrogateFree
    assert not any(jsonio.SURROGATE.search(s) for s in _strings(read))
    assert read == json.loads(text)


def test_every_reader_hands_on_marked_resources_and_scrub_lets_them_through(tmp_path):
    from adapter.report import core, load_resources

    observation = obs("pain-mean", "2024-01-01", 50)
    (tmp_path / "one.json").write_text(
        json.dumps({"resourceType": "Bundle", "entry": [{"resource": observation}]})
    )
    (tmp_path / "two.ndjson").write_text(json.dumps(observation) + "\n")
    read = [
        *load_resources(tmp_path, SETTINGS),
        *resources_from_ndjson(io.BytesIO(orjson.dumps(observation) + b"\n"), SETTINGS),
    ]
    assert len(read) == 3 and all(type(r) is jsonio.SurrogateFree for r in read)
    assert all(core.scrub(r) is r for r in read)
    # a plain dict is still looked at, and a lone surrogate in it replaced
    plain = {**observation, "note": [{"text": "a\ud800b"}]}
    assert core.scrub(plain)["note"] == [{"text": "a\ufffdb"}]
