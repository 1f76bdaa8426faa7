"""A bounded fuzz of the HTTP surface with raw sockets, against the real service under gunicorn
on 127.0.0.1 (gunicorn.conf.py: its worker and logger classes, the app's hooks).

Malformed request lines and headers, malformed chunked framing, bodies over the limits however
framed, bodies shorter than their Content-Length, lone surrogates, numbers of any size, dates at
the ends of the calendar, Unicode digits in page URLs, cross-site posts; then a seeded random mix
of all of them. For every request: an answer within the socket timeout (no hang), never a 5xx,
and every error body an OperationOutcome (or, for a browser on the page, a page with a
Content-Security-Policy), whichever layer answered (gunicorn or the app). Afterwards the worker
still serves, and gunicorn's whole log (at debug level) holds no planted identifier.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.reports import obs
from tests.support.web_server import Server, gunicorn_server

pytestmark = pytest.mark.slow  # the service under gunicorn

pytest.importorskip("gunicorn")

PLANTED = "PLANTED-ID-7731"
QUERY = f"?patient={PLANTED}"
SEED = 20_251_207
RANDOM_REQUESTS = 400
TIMEOUT = 20.0
LIMIT = int(0.01 * 1024 * 1024)
"""FMS_FHIR_MAX_INPUT_MB and FMS_FHIR_MAX_RESPONSE_MB below: 10,485 bytes."""
UPLOAD_LIMIT = int(0.02 * 1024 * 1024)
"""FMS_FHIR_MAX_UPLOAD_MB below; a form may be 1 MiB more (the contract, the framing)."""
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
ANSWERS: dict[str, Any] = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": PLANTED}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 2, "phq4-interest": 0, "phq4-down": 1},
}
CSV = (
    "patient_id,visit_date,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
    f"{PLANTED},2025-04-10,1,2,0,1\n{PLANTED},2025-07-10,0,1,0,0\n"
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    env = {
        "FMS_FHIR_MAX_INPUT_MB": "0.01",
        "FMS_FHIR_MAX_RESPONSE_MB": "0.01",
        "FMS_FHIR_MAX_UPLOAD_MB": "0.02",
        "FMS_FHIR_PAGE_DIR": str(tmp_path_factory.mktemp("page")),
        "FMS_FHIR_LOG_LEVEL": "debug",
        "FMS_FHIR_TIMEOUT": "30",
    }
    with gunicorn_server(env, workers=2) as running:
        yield running
        log = running.log()
        assert PLANTED not in log, [line for line in log.splitlines() if PLANTED in line]


def port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def send(server: Server, data: bytes, close_write: bool = True) -> Answer:
    """One request on its own connection; the answer read to its end, within TIMEOUT."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port(server)), timeout=TIMEOUT) as connection:
        try:
            connection.sendall(data)
            if close_write:
                connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed before all was sent (413): the answer is still there
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail(f"no answer within {TIMEOUT}s to {data[:200]!r}")
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1."), (status_line, data[:200])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


def request(
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    framing: str = "length",
) -> bytes:
    """A request's bytes: `framing` length (Content-Length), chunked, or none."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    payload = body or b""
    if body is not None and framing == "length":
        lines.append(f"Content-Length: {len(payload)}")
    elif body is not None and framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        step = max(1, len(payload) // 3)
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def check(answer: Answer, case: Any, head: bool = False) -> None:
    """No 5xx; every error an OperationOutcome, or a page with a Content-Security-Policy (HEAD:
    the headers only)."""
    assert answer.status < 500, (answer.status, answer.body[:300], case)
    kind = answer.headers.get("content-type", "")
    if answer.status >= 400 and head:
        assert kind == FHIR_JSON or kind.startswith("text/html"), case
    elif answer.status >= 400:
        if kind.startswith("text/html"):
            assert "default-src 'none'" in answer.headers["content-security-policy"], case
        else:
            assert kind == FHIR_JSON, (kind, answer.body[:200], case)
            assert json.loads(answer.body)["resourceType"] == "OperationOutcome", case
    if answer.body and not kind.startswith(("image/", "application/zip")):
        assert "content-security-policy" in answer.headers, case
    assert answer.headers.get("x-content-type-options") == "nosniff", case


def still_serving(server: Server) -> None:
    assert send(server, request("GET", "/healthz")).status == 200
    converted = send(
        server,
        request("POST", "/$convert", json.dumps(ANSWERS).encode(), {"Content-Type": FHIR_JSON}),
    )
    assert converted.status == 200, converted.body[:300]


# --- what gunicorn answers before the app ------------------------------------------------------

GUNICORN = {
    "no version": (f"GET /{QUERY}\r\n\r\n".encode(), 400),
    "a NUL": (f"GET /{QUERY}\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "a raw space": (f"GET /?patient={PLANTED} X HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "HTTP/2.0 text": (f"GET /{QUERY} HTTP/2.0\r\nHost: x\r\n\r\n".encode(), 400),
    "a bad method": (f"G(T /{QUERY} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "request line too long": (f"GET /{QUERY}{'x' * 9000} HTTP/1.1\r\n\r\n".encode(), 414),
    "header too long": (
        f"GET /{QUERY} HTTP/1.1\r\nHost: x\r\nX-{PLANTED}: {'a' * 9000}\r\n\r\n".encode(),
        431,
    ),
    "too many headers": (
        (f"GET /{QUERY} HTTP/1.1\r\n" + "X-A: b\r\n" * 120 + "\r\n").encode(),
        431,
    ),
    "a header without colon": (f"GET /{QUERY} HTTP/1.1\r\nX-{PLANTED}\r\n\r\n".encode(), 400),
    "a NUL in a header": (f"GET / HTTP/1.1\r\nX-A: {PLANTED}\x00\r\n\r\n".encode(), 400),
    "obsolete folding": (f"GET / HTTP/1.1\r\nX-A: a\r\n {PLANTED}\r\n\r\n".encode(), 400),
    "gzip transfer coding": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        None,
    ),
    "chunked, gzip": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        None,
    ),
    "two Content-Lengths": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
    ),
    "Content-Length and chunked": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
    ),
    "a negative Content-Length": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
        400,
    ),
    "a Content-Length that is no number": (
        b"POST /$convert HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n{}",
        400,
    ),
    "an unknown Expect": (
        f"POST /$convert{QUERY} HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2"
        "\r\n\r\n{}".encode(),
        None,
    ),
}


@pytest.mark.parametrize("case", list(GUNICORN))
def test_what_gunicorn_refuses_is_an_outcome_and_unlogged(server, case):
    data, status = GUNICORN[case]
    answer = send(server, data)
    check(answer, case)
    if status is not None:
        assert answer.status == status, (case, answer.status, answer.body[:200])
    assert PLANTED.encode() not in answer.body


# --- framing and bounds, read by the app --------------------------------------------------------

BODY_ROUTES = [
    ("/$convert", FHIR_JSON),
    ("/MedicationStatement/$from-regimen", "application/json"),
    ("/QuestionnaireResponse/$validate", FHIR_JSON),
    ("/QuestionnaireResponse/$extract", FHIR_JSON),
    ("/$report", FHIR_JSON),
    ("/$report", "application/fhir+ndjson"),
    ("/$convert-sheet", "text/csv"),
]


def padded(size: int) -> bytes:
    head = json.dumps({"note": PLANTED, "pad": ""}).encode()
    return head[:-2] + b"x" * (size - len(head)) + head[-2:]


@pytest.mark.parametrize(("path", "content_type"), BODY_ROUTES)
def test_framing_and_bounds_on_every_body_route(server, path, content_type):
    limit = UPLOAD_LIMIT if content_type == "text/csv" else LIMIT
    headers = {"Content-Type": content_type, "Accept": FHIR_JSON}
    target = path + QUERY
    cases = {
        "chunked over the limit": (
            request("POST", target, padded(limit + 1), headers, "chunked"),
            413,
        ),
        "length over the limit": (request("POST", target, padded(limit + 1), headers), 413),
        "short": (request("POST", target, padded(200), headers)[:-50], 400),
        "bad chunk size": (
            request("POST", target, None, {**headers, "Transfer-Encoding": "chunked"})
            + b"zz\r\n{}\r\n0\r\n\r\n",
            400,
        ),
        "chunk without its CRLF": (
            request("POST", target, None, {**headers, "Transfer-Encoding": "chunked"})
            + b"2\r\n{}XX0\r\n\r\n",
            400,
        ),
        "chunked without its last chunk": (
            request("POST", target, None, {**headers, "Transfer-Encoding": "chunked"})
            + b"2\r\n{}\r\n",
            400,
        ),
        "a chunk larger than sent": (
            request("POST", target, None, {**headers, "Transfer-Encoding": "chunked"})
            + b"ffffffffffff\r\n{}",
            None,
        ),
        "a bad chunk extension": (
            request("POST", target, None, {**headers, "Transfer-Encoding": "chunked"})
            + b'2;a="\r\n{}\r\n0\r\n\r\n',
            400,
        ),
    }
    for case, (data, status) in cases.items():
        answer = send(server, data)
        check(answer, (path, content_type, case))
        if status is not None:
            assert answer.status == status, (path, case, answer.status, answer.body[:300])
        else:
            assert answer.status in (400, 413), (path, case, answer.status)


def multipart(sheet: bytes, boundary: str = "hostile") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + sheet
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/$convert-sheet", "*/*"), ("/$convert-sheet", FHIR_JSON), ("/", "*/*"), ("/", "text/html")],
)
def test_forms_over_the_limit_short_or_malformed(server, path, accept):
    headers = {"Content-Type": "multipart/form-data; boundary=hostile", "Accept": accept}
    over = multipart(CSV.encode() + b"\n" * (UPLOAD_LIMIT + 1024 * 1024 + 1))
    for framing in ("length", "chunked"):
        answer = send(server, request("POST", path + QUERY, over, headers, framing))
        check(answer, (path, framing))
        assert answer.status == 413, (path, framing, answer.body[:300])
    short = request("POST", path + QUERY, multipart(CSV.encode()), headers)[:-30]
    answer = send(server, short)
    check(answer, (path, "short"))
    assert answer.status == 400
    broken = request("POST", path, None, {**headers, "Transfer-Encoding": "chunked"}) + b"q\r\n"
    answer = send(server, broken)
    check(answer, (path, "broken"))
    assert answer.status == 400


# --- values ----------------------------------------------------------------------------------------

HUGE = ["1e308", "-1e308", "1e4300", "9e9999999999", "1e-400", "1" * 5000, "-0", "0.0000001"]
DAYS = ["0001-01-01", "9999-12-31", "1900-01-01", "2100-12-31", "0000-01-01", "2024-02-30"]


def value_bodies() -> Iterator[tuple[str, bytes]]:
    text = json.dumps(ANSWERS)
    for number in HUGE:
        yield "/$convert", text.replace('"phq4-worry": 2', f'"phq4-worry": {number}').encode()
    for day in DAYS:
        yield "/$convert", json.dumps({**ANSWERS, "authored": day}).encode()
    yield "/$convert", text.replace(PLANTED, "\\ud800" + PLANTED).encode()
    yield "/$convert", text.replace('"phq4-worry"', '"phq4-\\udfffworry"').encode()
    yield "/$convert", text.replace(PLANTED, "\\ud83d\\ude00" + PLANTED).encode()
    yield (
        "/QuestionnaireResponse/$validate",
        (
            '{"resourceType": "QuestionnaireResponse", "questionnaire": "phq4", "status": '
            '"completed", "subject": {"identifier": {"value": "\\udbff' + PLANTED + '"}}, "item": '
            '[{"linkId": "phq4-worry", "answer": [{"valueInteger": 9e9999999999}]}]}'
        ).encode(),
    )
    yield (
        "/$report",
        json.dumps([obs("pain-mean", "2024-01-01", 50, patient=PLANTED)])
        .replace(PLANTED, "\\ud800" + PLANTED)
        .encode(),
    )
    yield "/MedicationStatement/$from-regimen", b'{"subject": "\\udc00", "dose": 1e4300}'


def test_numbers_dates_and_surrogates(server):
    for path, body in value_bodies():
        answer = send(server, request("POST", path + QUERY, body, {"Content-Type": FHIR_JSON}))
        check(answer, (path, body[:120]))
        assert PLANTED.encode() not in answer.body or answer.status == 200, (path, body[:80])
    still_serving(server)


def report_bodies() -> Iterator[bytes]:
    for number in HUGE:
        text = json.dumps([obs("pain-mean", "2024-01-01", 50), obs("pain-mean", "2024-03-01", 7)])
        yield text.replace('"value": 7', f'"value": {number}').encode()
    for day in DAYS:
        yield json.dumps([obs("pain-mean", day, 50), obs("pain-mean", "2024-03-01", 7)]).encode()


def test_report_numbers_and_calendar_ends(server):
    """The report's own robustness (adapter/report) seen over HTTP, as HTML, Bundle and chart."""
    for body in report_bodies():
        for accept in ("text/html", FHIR_JSON, "image/svg+xml"):
            headers = {"Content-Type": FHIR_JSON, "Accept": accept}
            check(send(server, request("POST", "/$report", body, headers)), (body[:100], accept))


def test_page_urls_and_cross_site_posts(server):
    created = send(
        server,
        request(
            "POST",
            "/",
            multipart(CSV.encode()),
            {"Content-Type": "multipart/form-data; boundary=hostile"},
        ),
    )
    assert created.status == 200, created.body[:300]
    result = created.headers["content-location"]
    for number in ("%D9%A1", "%C2%B2", "%EF%BC%91", "1" * 4000, "0", "01", "%00", "1%2F1"):
        for accept in ("text/html", "*/*"):
            answer = send(
                server, request("GET", f"{result}/patients/{number}", None, {"Accept": accept})
            )
            check(answer, number)
            assert answer.status == 404, (number, answer.status)
    assert (
        send(server, request("GET", f"{result}/patients/1", None, {"Accept": "text/html"})).status
        == 200
    )
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        posted = send(
            server,
            request(
                "POST",
                "/" + QUERY,
                multipart(CSV.encode()),
                {"Content-Type": "multipart/form-data; boundary=hostile", **headers},
            ),
        )
        check(posted, headers)
        assert posted.status == 403


# --- a seeded random mix -------------------------------------------------------------------------

METHODS = ["GET", "POST", "POST", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]
PATHS = [
    "/",
    "/$convert",
    "/$convert-sheet",
    "/$report",
    "/QuestionnaireResponse/$validate",
    "/QuestionnaireResponse/$extract",
    "/MedicationStatement/$from-regimen",
    "/metadata",
    "/Questionnaire/phq4",
    "/results/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/patients/%D9%A1",
    "/%ED%A0%80",
    "/%00",
    "/..%2F..%2Fetc%2Fpasswd",
]
CONTENT_TYPES = [
    FHIR_JSON,
    "application/json",
    "application/fhir+ndjson",
    "text/csv",
    "text/csv; charset=utf-16",
    "multipart/form-data; boundary=hostile",
    "multipart/form-data",
    "text/plain",
    "application/fhir+json; fhirVersion=3.0",
    "",
]
EXTRA_HEADERS = [
    {"Accept": "text/html"},
    {"Accept": "image/svg+xml"},
    {"Accept": "application/fhir+ndjson"},
    {"Accept": "*/*;q=nan"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://["},
    {"Origin": "HTTP://127.0.0.1"},
    {"Authorization": "Bearer \u00ff"},
    {"X-Request-ID": PLANTED + "\u00e9"},
    {"Prefer": "return=OperationOutcome"},
    {"If-None-Match": "*"},
    {"Access-Control-Request-Method": "POST", "Origin": "https://app.example"},
]


def seeds() -> list[bytes]:
    text = json.dumps(ANSWERS)
    return [
        text.encode(),
        json.dumps(
            [obs("pain-mean", "2024-01-01", 50), obs("pain-mean", "2024-03-01", 20)]
        ).encode(),
        CSV.encode(),
        multipart(CSV.encode()),
        CSV.encode("utf-16"),
        text.replace(PLANTED, "\\ud800").encode(),
        b"[" * 500,
        b'{"a": ' + b"9" * 5000 + b"}",
        padded(LIMIT + 1),
        b"\xff\xfe\x00",
    ]


def mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0 or not data:
        return data
    if choice == 1:
        return data[: rng.randrange(len(data))]
    if choice == 2:
        flipped = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    if choice == 3:
        return data + data[: rng.randrange(len(data))]
    return data.replace(b"2", b"\\ud800", 1)


def random_request(rng: random.Random) -> tuple[bytes, bool]:
    method = rng.choice(METHODS)
    target = rng.choice(PATHS) + rng.choice(["", QUERY, QUERY + "&_format=xml", "?_pretty=true"])
    headers: dict[str, str] = {}
    kind = rng.choice(CONTENT_TYPES)
    if kind:
        headers["Content-Type"] = kind
    for extra in rng.sample(EXTRA_HEADERS, rng.randrange(3)):
        headers.update(extra)
    body = mutate(rng, rng.choice(seeds())) if method in ("POST", "PUT", "PATCH") else None
    framing = rng.choice(["length", "length", "chunked", "none", "short"])
    if framing == "short" and body:
        return request(method, target, body, headers)[: -max(1, len(body) // 2)], True
    if framing == "none":
        return request(method, target, None, headers) + (body or b""), True
    data = request(method, target, body, headers, framing)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").encode("latin-1", "replace") + b"\r\n\r\n" + rest, True


def test_a_seeded_random_mix(server):
    rng = random.Random(SEED)
    slowest = 0.0
    for number in range(RANDOM_REQUESTS):
        data, close = random_request(rng)
        answer = send(server, data, close)
        check(answer, (number, data[:300]), head=data.startswith(b"HEAD "))
        slowest = max(slowest, answer.seconds)
    assert slowest < TIMEOUT
    still_serving(server)
