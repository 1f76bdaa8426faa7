"""What a request costs the service, kept without losing a guard: the guards run from one hook,
the service's own log line passes the logs filter unrewritten (it holds no request value by
construction), and the Accept / Content-Type parses kept per worker answer each header rightly."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapter.settings import FHIR_JSON, Settings
from adapter.web import create_app, logs

VISIT = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "12345"}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1},
}


@pytest.fixture
def app() -> Flask:
    return create_app({"SETTINGS": Settings(), "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_the_guards_run_from_one_hook(app: Flask) -> None:
    assert len(app.before_request_funcs[None]) == 1
    assert len(app.after_request_funcs[None]) == 1


def test_the_request_line_is_logged_as_written(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fms_fhir.http"):
        answer = client.post(
            "/$convert-answers?patient=12345",
            json=VISIT,
            headers={"X-Request-ID": "abc-1", "Accept": FHIR_JSON},
        )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "fms_fhir.http"]
    assert len(lines) == 1
    assert lines[0].startswith(
        "request_id=abc-1 method=POST route=/$convert-answers status=200 duration_ms="
    )
    assert "12345" not in lines[0]


PLANTED = "-".join(("PLANTED", "VALUE"))


def _record(message: str, exc_info: bool = False, **extra: object) -> logging.LogRecord:
    info = None
    if exc_info:
        try:
            raise ValueError(PLANTED)  # the frame's source line shows the name, not the value
        except ValueError:
            info = sys.exc_info()
    record = logging.LogRecord("fms_fhir.http", logging.INFO, __file__, 1, message, (), info)
    record.__dict__.update(extra)
    return record


def test_the_filter_cleans_every_record_but_a_marked_one_without_traceback() -> None:
    values_free = logs.WithoutValues()
    plain = _record("GET /results/PLANTED-VALUE?patient=PLANTED-VALUE")
    assert values_free.filter(plain)
    assert "PLANTED-VALUE" not in plain.getMessage()

    marked = _record("request_id=x method=GET route=/results/<id> status=200", **logs.VALUES_FREE)
    assert values_free.filter(marked)
    assert marked.getMessage() == "request_id=x method=GET route=/results/<id> status=200"

    # A marked record with a traceback is cleaned anyway: the exception's message may hold a value.
    failing = _record("request failed", exc_info=True, **logs.VALUES_FREE)
    assert values_free.filter(failing)
    assert failing.exc_info is None
    assert "PLANTED-VALUE" not in failing.getMessage()
    assert "ValueError" in failing.getMessage()


@pytest.mark.parametrize(
    ("accept", "status", "media_type"),
    [
        (FHIR_JSON, 200, "application/fhir+json"),
        ("application/json", 200, "application/json"),
        ("text/html", 406, None),
        (f"{FHIR_JSON}; fhirVersion=3.0", 406, None),
        (FHIR_JSON, 200, "application/fhir+json"),  # the same header again, from the kept parse
        ("text/html, application/json;q=0.5", 200, "application/json"),
    ],
)
def test_each_accept_header_is_answered_for_itself(
    client: FlaskClient, accept: str, status: int, media_type: str | None
) -> None:
    answer = client.get("/metadata", headers={"Accept": accept})
    assert answer.status_code == status
    if media_type is not None:
        assert answer.mimetype == media_type


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (FHIR_JSON, 200),
        (f"{FHIR_JSON}; fhirVersion=4.0", 200),
        (f"{FHIR_JSON}; fhirVersion=5.0", 415),
        ("text/plain", 415),
        (FHIR_JSON, 200),
    ],
)
def test_each_content_type_is_read_for_itself(
    client: FlaskClient, content_type: str, status: int
) -> None:
    answer = client.post(
        "/$convert-answers",
        data=json.dumps(VISIT),
        headers={"Content-Type": content_type, "Accept": FHIR_JSON},
    )
    assert answer.status_code == status, answer.get_data(as_text=True)
