"""The service closed by default, through Flask's test client and the development server: no
cross-site post, CORS only for listed origins, bodies read whole or refused however they are
framed, lone surrogates refused where they enter, a patient number in ASCII digits only, the
page's disk cap in disk blocks, `$report` bounded, and no request value in any log.

Every test here plants `PLANTED-ID-7731` in the query and in bodies; an autouse fixture then
greps every log record of the test (all loggers, DEBUG and up) for it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from adapter import api
from adapter.config import PageOptions
from adapter.jsonio import loads
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import FHIR_JSON, MIB, Settings
from adapter.web import create_app, dev_server, errors, logs
from adapter.web.page_store import Store, disk_use
from adapter.web.protocol import serialize
from adapter.web.state import state
from tests.support.reports import obs

PLANTED = "PLANTED-ID-7731"
QUERY = f"?patient={PLANTED}"
SETTINGS = Settings(
    max_input_bytes=4096,
    max_response_bytes=4096,
    max_upload_bytes=8192,
    max_sheet_rows=100,
)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSV = (
    "patient_id,visit_date,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    f"{PLANTED},2025-04-10,1,2,0,1\n"
    f"{PLANTED},2025-07-10,0,1,0,0\n"
)
ANSWERS: dict[str, Any] = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": PLANTED}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1},
}
BOUNDARY = "guard-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture(autouse=True)
def no_planted_value_in_any_log(caplog) -> Iterator[None]:
    """Every record of every logger during the test, cleaned or not, is grepped."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + str(record.exc_info or "") + str(record.exc_text or "")
        assert PLANTED not in text, (record.name, text)
        assert PLANTED.replace("-", "") not in text, (record.name, text)
    assert PLANTED not in caplog.text


def make_app(tmp_path: Path, **options: Any) -> Flask:
    return create_app(
        {
            "SETTINGS": SETTINGS,
            "TESTING": True,
            "FMS_FHIR_PAGE_DIR": str(tmp_path / "page"),
            **options,
        }
    )


@pytest.fixture
def app(tmp_path) -> Flask:
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


def outcome(response, status: int, rule: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data[:600]
    assert response.headers["Content-Type"] == FHIR_JSON
    body = json.loads(response.data)
    assert body["resourceType"] == "OperationOutcome"
    if rule:
        codes = {c["code"] for i in body["issue"] for c in i.get("details", {}).get("coding", [])}
        assert rule in codes, body
    return body


def multipart(sheet: bytes, name: str = "visits.csv") -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + sheet
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def stored(app: Flask) -> list[str]:
    root = state(app).page_store.root()
    return [entry for entry in os.listdir(root) if not entry.startswith(".")]


# --- cross-site posts ----------------------------------------------------------------------------

CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://["},
    {"Origin": "http://[::1"},
    {"Origin": "\u00ff\u00fe"},
    {"Origin": "http://localhost:99999"},
    {"Sec-Fetch-Site": "\u00ff"},
]
SAME_SITE = [
    {},
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "http://localhost"},
    {"Origin": "http://localhost:80"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_the_page_refuses_a_form_posted_from_another_site(app, client, headers):
    for accept in ({}, BROWSER):
        form = {"file": (io.BytesIO(CSV.encode()), "visits.csv"), "format": "transaction"}
        response = client.post("/" + QUERY, data=form, headers={**headers, **accept})
        outcome(response, 403, "cross-site")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert stored(app) == [], "nothing converted, nothing stored"


@pytest.mark.parametrize("headers", SAME_SITE)
def test_the_page_takes_its_own_posts_and_clients_without_browser_headers(app, client, headers):
    form = {"file": (io.BytesIO(CSV.encode()), "visits.csv"), "format": "transaction"}
    response = client.post("/", data=form, headers={**headers, **BROWSER})
    assert response.status_code == 303
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(stored(app)) == 1


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_the_fhir_routes_refuse_cross_site_posts_too(client, headers):
    for path in ("/$convert", "/$convert-sheet", "/$report", "/QuestionnaireResponse/$validate"):
        response = client.post(
            path + QUERY, data=json.dumps(ANSWERS), content_type="text/plain", headers=headers
        )
        outcome(response, 403, "cross-site")
    assert client.get("/metadata", headers=headers).status_code == 200, "reading is no change"


def test_an_engine_without_browser_headers_is_unaffected(client):
    response = client.post("/$convert", json=ANSWERS)
    assert response.status_code == 200


# --- CORS ----------------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example"


def test_cors_is_off_by_default(client):
    response = client.get("/metadata", headers={"Origin": APP_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/$convert", headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    outcome(preflight, 403, "cors-origin")
    cross = client.post(
        "/$convert", json=ANSWERS, headers={"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"}
    )
    outcome(cross, 403, "cross-site")


def test_cors_for_a_listed_origin(tmp_path):
    tokens = frozenset({"cors-token"})
    client = create_app(
        {
            "SETTINGS": SETTINGS.with_(api_tokens=tokens),
            "TESTING": True,
            "FMS_FHIR_PAGE_DIR": str(tmp_path / "page"),
            "FMS_FHIR_CORS_ORIGINS": f"{APP_ORIGIN}, http://localhost:3000",
        }
    ).test_client()
    preflight = client.options(
        "/$convert",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204, "a preflight carries no token"
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    browser = {"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"}
    answer = client.post(
        "/$convert", json=ANSWERS, headers={**browser, "Authorization": "Bearer cors-token"}
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Origin" in answer.headers["Vary"]
    assert "X-Request-ID" in answer.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in answer.headers
    refused = client.post("/$convert", json=ANSWERS, headers=browser)
    outcome(refused, 401)
    assert refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN, "the script reads why"
    other = client.get("/metadata", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    # never the page's routes
    page = client.options(
        "/", headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    outcome(page, 403, "cors-origin")
    form = {"file": (io.BytesIO(CSV.encode()), "visits.csv")}
    posted = client.post("/", data=form, headers={**browser, "Authorization": "Bearer cors-token"})
    outcome(posted, 403, "cross-site")
    assert "Access-Control-Allow-Origin" not in posted.headers


def test_cors_for_any_origin_never_with_credentials(tmp_path):
    client = make_app(tmp_path, FMS_FHIR_CORS_ORIGINS="*").test_client()
    answer = client.post(
        "/$convert", json=ANSWERS, headers={"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer.headers


# --- bodies: over the limit however framed, short, malformed ----------------------------------

JSON_ROUTES = [
    ("/$convert", "application/fhir+json", 4096),
    ("/MedicationStatement/$from-regimen", "application/json", 4096),
    ("/QuestionnaireResponse/$validate", "application/fhir+json", 4096),
    ("/QuestionnaireResponse/$extract", "application/fhir+json", 4096),
    ("/$report", "application/fhir+json", 4096),
    ("/$report", "application/fhir+ndjson", 4096),
    ("/$convert-sheet", "text/csv", 8192),
]
MULTIPART_ROUTES = [("/$convert-sheet", {}), ("/", {}), ("/", BROWSER)]
"""A multipart form may be the sheet's limit plus 1 MiB for the contract and the framing."""
MULTIPART_LIMIT = 8192 + 1 * MIB


def chunked(client, path: str, body: bytes | io.RawIOBase, content_type: str, **headers: str):
    """A body without Content-Length that the server says ends (as gunicorn and werkzeug pass on
    a chunked one)."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    return client.post(
        path + QUERY,
        content_type=content_type,
        headers=headers,
        environ_overrides={
            "wsgi.input": stream,
            "wsgi.input_terminated": True,
            "HTTP_TRANSFER_ENCODING": "chunked",
        },
    )


def padded_json(size: int) -> bytes:
    """A JSON value of exactly `size` bytes holding the planted identifier."""
    head = json.dumps({"note": PLANTED, "pad": ""}).encode()
    return head[:-2] + b"x" * (size - len(head)) + head[-2:]


@pytest.mark.parametrize(("path", "content_type", "limit"), JSON_ROUTES)
def test_a_chunked_body_over_the_limit_is_413_not_cut(client, path, content_type, limit):
    over = chunked(client, path, padded_json(limit + 1), content_type)
    outcome(over, 413, "too-large")
    at = chunked(client, path, padded_json(limit), content_type)
    assert at.status_code != 413, "a body exactly at the limit is read"
    assert at.status_code < 500


@pytest.mark.parametrize(("path", "accept"), MULTIPART_ROUTES)
def test_a_chunked_form_over_the_limit_is_413(app, client, path, accept):
    body = multipart(CSV.encode() + b"\n" * (MULTIPART_LIMIT + 1 - len(multipart(CSV.encode()))))
    response = chunked(client, path, body, MULTIPART, **accept)
    assert response.status_code == 413
    if accept:
        assert "larger than" in response.get_data(as_text=True)
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    else:
        outcome(response, 413, "too-large")
    assert stored(app) == []


@pytest.mark.parametrize(("path", "content_type", "limit"), JSON_ROUTES)
def test_a_body_shorter_than_its_content_length_is_400(client, path, content_type, limit):
    body = json.dumps(ANSWERS).encode()
    response = client.post(
        path + QUERY,
        data=body,
        content_type=content_type,
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )
    outcome(response, 400, "incomplete-body")


@pytest.mark.parametrize(("path", "accept"), MULTIPART_ROUTES)
def test_a_short_form_is_400(app, client, path, accept):
    body = multipart(CSV.encode())
    response = client.post(
        path + QUERY,
        data=body,
        content_type=MULTIPART,
        headers=accept,
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 100)},
    )
    assert response.status_code == 400
    if not accept:
        outcome(response, 400, "incomplete-body")
    assert stored(app) == []


class BrokenFraming(io.RawIOBase):
    """What a server raises from a read when the chunked framing is malformed."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [OSError("Invalid chunk header " + PLANTED), ValueError(PLANTED), EOFError()],
    ids=["werkzeug", "value", "eof"],
)
@pytest.mark.parametrize(("path", "content_type", "limit"), [*JSON_ROUTES, ("/", MULTIPART, 0)])
def test_malformed_framing_is_400(client, path, content_type, limit, error):
    response = chunked(client, path, BrokenFraming(error), content_type)
    outcome(response, 400, "malformed-body")


def test_a_read_that_times_out_is_408(client):
    response = chunked(client, "/$convert", BrokenFraming(TimeoutError()), "application/json")
    outcome(response, 408)


# --- lone surrogates -----------------------------------------------------------------------------

SURROGATE_BODIES = [
    ("/$convert", '{"instrument": "phq4", "subject": "\\ud800' + PLANTED + '"}', "subject"),
    (
        "/$convert",
        json.dumps(ANSWERS).replace('"phq4-worry"', '"\\udc00phq4-worry"'),
        "answers['\\udc00phq4-worry']",
    ),
    (
        "/QuestionnaireResponse/$validate",
        '{"resourceType": "QuestionnaireResponse", "id": "x\\udfff"}',
        "id",
    ),
    (
        "/$report",
        '[{"resourceType": "Observation", "note": [{"text": "\\ud83d"}]}]',
        "[0].note[0].text",
    ),
    ("/MedicationStatement/$from-regimen", '{"note": "\\uDBFF"}', "note"),
]


@pytest.mark.parametrize(("path", "body", "where"), SURROGATE_BODIES)
def test_a_lone_surrogate_is_400_naming_the_place(client, path, body, where):
    response = client.post(path + QUERY, data=body, content_type="application/json")
    found = outcome(response, 400, "lone-surrogate")
    assert found["issue"][0]["expression"] == [where]


def test_a_surrogate_pair_is_text_and_an_escaped_backslash_no_surrogate():
    assert loads('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    assert loads(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}


def test_ndjson_line_with_a_lone_surrogate(client):
    body = json.dumps(obs("pain-mean", "2024-01-01", 50)) + '\n{"resourceType": "\\ud800"}\n'
    response = client.post("/$report" + QUERY, data=body, content_type="application/fhir+ndjson")
    outcome(response, 400, "lone-surrogate")


def test_an_error_holding_a_lone_surrogate_is_answered(client, monkeypatch):
    """The error handler once failed on it, and Flask logged the message, identifier and all."""

    def failing(*args: Any, **kwargs: Any) -> Any:
        message = f"no patient \ud800{PLANTED} here"
        raise InvalidInput([Issue("error", "value", message, "subject\udc00", "planted")])

    monkeypatch.setattr(api, "convert", failing)
    response = client.post("/$convert" + QUERY, json=ANSWERS)
    body = outcome(response, 422, "planted")
    assert "\ufffd" in body["issue"][0]["details"]["text"]


def test_a_failing_error_handler_answers_a_fixed_500_and_logs_no_message(client, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"while writing {PLANTED}")

    monkeypatch.setattr(errors, "operation_outcome", broken)
    response = client.get("/nowhere" + QUERY)
    assert response.status_code == 500
    assert json.loads(response.data)["resourceType"] == "OperationOutcome"


def test_serialize_carries_what_orjson_refuses():
    assert json.loads(serialize({"a\ud800": ["x\udfff"]})) == {"a\ufffd": ["x\ufffd"]}
    assert json.loads(serialize({"n": 10**30})) == {"n": 10**30}


# --- the page's patient numbers ------------------------------------------------------------------


@pytest.fixture
def page_client(tmp_path):
    """The page with the default limits (it reads its own output within them)."""
    return create_app(
        {"SETTINGS": Settings(), "TESTING": True, "FMS_FHIR_PAGE_DIR": str(tmp_path / "p")}
    ).test_client()


@pytest.fixture
def result(page_client) -> str:
    form = {"file": (io.BytesIO(CSV.encode()), "visits.csv"), "format": "transaction"}
    response = page_client.post("/", data=form)
    assert response.status_code == 200, response.data[:500]
    assert "/patients/1" in response.get_data(as_text=True)
    return response.headers["Content-Location"]


NOT_NUMBERS = [
    "\u0661",
    "\u00b2",
    "\u0967",
    "\uff11",
    "1" * 5000,
    "01",
    "0",
    "-1",
    "1.0",
    " 1",
    "2",
]
"""Unicode digits (Arabic-Indic one, superscript two, Devanagari one, fullwidth one), a number
past int()'s 4,300 digits, and ASCII that is no patient of the result (it has one)."""


def test_a_patient_number_is_ascii_digits_else_404(page_client, result):
    for number in NOT_NUMBERS:
        response = page_client.get(f"{result}/patients/{number}" + QUERY, headers=BROWSER)
        assert response.status_code == 404, number
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        outcome(page_client.get(f"{result}/patients/{number}"), 404)
    # patient 1 opens (tests/test_web_report.py); rendering it here would cost a second


# --- the page's disk cap -------------------------------------------------------------------------


def test_the_page_counts_disk_blocks_not_file_bytes(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"x" * 600)
    block = disk_use(os.lstat(probe))
    if block <= 600:
        pytest.skip("this file system does not count blocks")
    store = Store(PageOptions(folder=tmp_path / "page", max_bytes=10 * MIB))
    identifier, staging = store.begin()
    (staging / "out").mkdir()
    for number in range(5):
        (staging / "out" / f"f{number}.json").write_bytes(b"{}" * 300)
    kept = store.commit(identifier, staging, {})
    assert kept.meta["bytes"] >= 7 * block, "5 files, 2 folders and meta.json: a block each"
    # a cap that three results' file bytes fit in, but not their blocks
    small = Store(PageOptions(folder=tmp_path / "small", max_bytes=2 * kept.meta["bytes"] + 1))
    for _ in range(3):
        identifier, staging = small.begin()
        (staging / "out").mkdir()
        for number in range(5):
            (staging / "out" / f"f{number}.json").write_bytes(b"{}" * 300)
        small.commit(identifier, staging, {})
    assert len([e for e in os.listdir(small.root()) if not e.startswith(".")]) == 2


# --- $report bounded -----------------------------------------------------------------------------


def visits(count: int) -> list[dict[str, Any]]:
    return [
        obs("pain-mean", f"2024-01-{day:02d}", 50, patient=PLANTED) for day in range(1, count + 1)
    ]


def test_report_refuses_more_resources_than_its_limit(tmp_path):
    client = make_app(tmp_path, FMS_FHIR_REPORT_MAX_RESOURCES="5").test_client()
    accept = {"Accept": "application/fhir+json"}
    assert client.post("/$report" + QUERY, json=visits(5), headers=accept).status_code == 200
    outcome(
        client.post("/$report" + QUERY, json=visits(6), headers=accept), 413, "too-many-resources"
    )
    ndjson = "\n".join(json.dumps(r) for r in visits(6))
    response = client.post(
        "/$report" + QUERY, data=ndjson, content_type="application/fhir+ndjson", headers=accept
    )
    outcome(response, 413, "too-many-resources")


def test_report_refuses_a_body_over_its_own_limit(tmp_path):
    client = create_app(
        {
            "SETTINGS": Settings(),
            "TESTING": True,
            "FMS_FHIR_PAGE_DIR": str(tmp_path / "page"),
            "FMS_FHIR_REPORT_MAX_MB": "0.01",
        }
    ).test_client()
    body = json.dumps(visits(20)).encode()
    assert len(body) > 0.01 * MIB
    outcome(client.post("/$report" + QUERY, data=body, content_type="application/json"), 413)
    outcome(chunked(client, "/$report", body, "application/json"), 413)
    assert client.post("/$convert", json=ANSWERS).status_code == 200, "the other routes keep theirs"


# --- logs ----------------------------------------------------------------------------------------

GUNICORN_LINES = [
    f"Invalid request from ip=127.0.0.1: Invalid HTTP request line: 'GET /?patient={PLANTED}'",
    f"Invalid request from ip=127.0.0.1: Invalid HTTP Version: '{PLANTED} HTTP/1.1'",
    f"Invalid request from ip=::1: Invalid HTTP Header: 'X-{PLANTED}'",
    f"Error handling request GET /$report?patient={PLANTED}",
    f"Ignored premature client disconnection. No more data after: b'{PLANTED}'",
    f"code 400, message Bad request syntax ('GET /?patient={PLANTED}')",
    f"GET /results/{PLANTED}/patients/1",
    f"/$report?patient={PLANTED}&baseline=2024-01-01",
]


@pytest.mark.parametrize("line", GUNICORN_LINES)
def test_withheld_keeps_no_request_value(line):
    assert PLANTED not in logs.withheld(line)
    assert "\\ud800" in logs.withheld("x\ud800"), "a lone surrogate becomes its escape"


def test_gunicorn_logger_class_writes_no_request_value(capsys):
    from gunicorn.config import Config

    from adapter.web.gunicorn_worker import Logger

    logger = Logger(Config())
    for line in GUNICORN_LINES:
        logger.warning(line)
        logger.debug("%s %s", "GET", f"/results/{PLANTED}")
    try:
        raise ValueError(f"bad value {PLANTED}")
    except ValueError:
        logger.exception("Error handling request %s", f"/x?patient={PLANTED}")
    written = capsys.readouterr().err
    assert "ValueError" in written and "Error handling request" in written
    assert PLANTED not in written


def test_a_method_of_the_clients_own_is_not_logged_by_name(client):
    assert client.open("/$convert", method=PLANTED.replace("-", "")).status_code == 405
    assert client.open("/", method=PLANTED.replace("-", "")).status_code == 405


def test_an_exception_escaping_is_logged_without_its_message(app, caplog):
    try:
        raise KeyError(PLANTED)
    except KeyError:
        app.logger.exception("Exception on /$convert [POST] ?patient=%s", PLANTED)
    assert "KeyError" in caplog.text


# --- the development server ----------------------------------------------------------------------


@pytest.fixture
def dev(app) -> Iterator[int]:
    server = make_server(
        "127.0.0.1", 0, app, request_handler=dev_server.handler_for(state(app).settings)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_line",
    [
        f"GET /?patient={PLANTED}\r\n",
        f"GET /?patient={PLANTED} HTTP/9.9\r\n",
        f"GET /?patient={PLANTED} ID HTTP/1.1\r\n",
        f"GET /?patient={PLANTED} HTTP/1.1\r\nX-Long: {'a' * 70_000}\r\n",
    ],
)
def test_dev_server_refusals_are_outcomes_and_unlogged(dev, request_line, caplog):
    logging.getLogger("werkzeug").setLevel(logging.DEBUG)
    status, headers, body = raw(dev, request_line.encode("latin-1") + b"Host: x\r\n\r\n")
    assert 400 <= status < 600
    assert headers["content-type"] == FHIR_JSON
    assert "default-src 'none'" in headers["content-security-policy"]
    assert json.loads(body)["resourceType"] == "OperationOutcome"
    assert PLANTED.encode() not in body


def test_dev_server_request_lines_are_logged_without_query(dev, caplog):
    logging.getLogger("werkzeug").setLevel(logging.DEBUG)
    status, _, _ = raw(dev, f"GET /?patient={PLANTED}\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 200, "the development server takes a NUL in a query; it logs none"
    body = json.dumps(ANSWERS).encode()
    request = (
        f"POST /$convert{QUERY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    status, _, _ = raw(dev, request)
    assert status == 200
    assert "/$convert" in caplog.text
    chunk = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    request = (
        f"POST /$convert{QUERY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunk
    status, headers, answer = raw(dev, request)
    assert status == 400 and json.loads(answer)["resourceType"] == "OperationOutcome"
