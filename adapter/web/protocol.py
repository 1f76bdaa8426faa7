"""FHIR's REST conventions in one place: media types in and out (`_format`, `Accept`, the
`fhirVersion` parameter), `_pretty`, bounded JSON bodies, `Parameters` bodies, ETags."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NoReturn

import orjson
from flask import Response, g, request

from adapter import api, registry
from adapter.jsonio import SURROGATE
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import FHIR_JSON, Settings
from adapter.web.operations import (
    FHIR_JSON_TYPE,
    JSON_TYPE,
    NDJSON_TYPE,
    Operation,
)
from adapter.web.problems import HttpProblem

FHIR_VERSIONS = ("4.0", "4.0.1")
FORMAT_ALIASES = {
    "json": FHIR_JSON_TYPE,
    "fhir+json": FHIR_JSON_TYPE,
    FHIR_JSON_TYPE: FHIR_JSON_TYPE,
    JSON_TYPE: JSON_TYPE,
    "ndjson": NDJSON_TYPE,
    NDJSON_TYPE: NDJSON_TYPE,
    "application/ndjson": NDJSON_TYPE,
}
"""`_format` values (FHIR R4 3.1.0.1.8); anything else (xml, turtle, html) is 406."""
CONTENT_TYPES = {FHIR_JSON_TYPE: FHIR_JSON, JSON_TYPE: "application/json", NDJSON_TYPE: NDJSON_TYPE}


# --- media types ---------------------------------------------------------------------------------


PARSED_HEADERS = 256
"""Distinct Accept and Content-Type values whose parse each worker keeps (clients send a few)."""


def _media_range(text: str) -> tuple[str, dict[str, str]]:
    kind, *rest = text.split(";")
    params: dict[str, str] = {}
    for part in rest:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _version_ok(params: Mapping[str, str]) -> bool:
    version = params.get("fhirversion")
    return version is None or version in FHIR_VERSIONS


@lru_cache(maxsize=PARSED_HEADERS)
def _content_type(header: str) -> tuple[str, str | None]:
    """A Content-Type's media type and its fhirVersion parameter (None: not given)."""
    kind, params = _media_range(header)
    return kind, params.get("fhirversion")


@lru_cache(maxsize=PARSED_HEADERS)
def _accept_ranges(header: str) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...]]:
    """The ranges with their q, and the fhirVersions asked for that this service does not serve."""
    ranges: list[tuple[str, float]] = []
    refused: list[str] = []
    for item in header.split(","):
        if not item.strip():
            continue
        kind, params = _media_range(item)
        if not _version_ok(params):
            refused.append(params["fhirversion"])
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            continue
        if q == q and 0 <= q <= 1:  # q == q: not NaN; q=0 means "not this one"
            ranges.append((kind, q))
    return tuple(ranges), tuple(refused)


def _quality(candidate: str, ranges: tuple[tuple[str, float], ...]) -> float:
    """RFC 9110 12.5.1: the most specific matching range decides."""
    best: tuple[int, float] = (-1, 0.0)
    family = candidate.split("/")[0] + "/*"
    for kind, q in ranges:
        specificity = (
            2 if kind == candidate else 1 if kind == family else 0 if kind == "*/*" else -1
        )
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def _format_param() -> str | None:
    # A literal '+' in a query string arrives as a space ("application/fhir json").
    value = request.args.get("_format")
    return value.strip().replace(" ", "+").lower() if value is not None else None


@lru_cache(maxsize=PARSED_HEADERS)
def _by_accept(header: str, offered: tuple[str, ...]) -> str | None:
    """The first of the best-rated offered types by an `Accept` header, None if none is."""
    ranges, _ = _accept_ranges(header)
    scored = [(_quality(kind, ranges), -index, kind) for index, kind in enumerate(offered)]
    q, _, kind = max(scored)
    return kind if q > 0 else None


def choose(produces: Iterable[str]) -> str | None:
    """The answer's media type by `_format`, else `Accept`; None: nothing acceptable."""
    offered = tuple(produces)
    if not offered:
        return None
    asked = _format_param()
    if asked is not None:
        wanted = FORMAT_ALIASES.get(asked)
        return wanted if wanted in offered else None
    header = request.headers.get("Accept", "").strip()
    if not header:
        return offered[0]
    return _by_accept(header, offered)


def not_acceptable(offered: Iterable[str]) -> HttpProblem:
    _, refused = _accept_ranges(request.headers.get("Accept", ""))
    if refused and _format_param() is None:
        message = (
            f"fhirVersion {', '.join(refused)} is not served here; this service speaks FHIR "
            "4.0 (R4, 4.0.1)"
        )
    else:
        message = (
            f"cannot answer in the media type asked for; this route answers {', '.join(offered)}"
        )
    return HttpProblem(406, message, "not-supported", rule="not-acceptable")


def negotiate(operation: Operation) -> None:
    """Checks the request's media type (415) and picks the answer's (406) before the view runs."""
    if operation.consumes and request.method == "POST":
        kind, version = _content_type(request.headers.get("Content-Type", ""))
        accepted = list(operation.consumes)
        if not kind and FHIR_JSON_TYPE in accepted:
            kind = FHIR_JSON_TYPE  # a JSON operation reads a body sent without a type as JSON
        if kind not in accepted:
            shown = kind or "none"
            raise HttpProblem(
                415,
                f"the body's media type {shown} is not read here; send {', '.join(accepted)}",
                "not-supported",
                rule="unsupported-media-type",
            )
        if version is not None and version not in FHIR_VERSIONS:
            message = f"the body is fhirVersion {version}; this service reads FHIR 4.0 (R4)"
            raise HttpProblem(415, message, "not-supported", rule="unsupported-fhir-version")
    chosen = choose(operation.produces)
    if chosen is None:
        raise not_acceptable(operation.produces)
    g.media_type = chosen


def acceptable(media_type: str) -> bool:
    return choose([media_type]) is not None


# --- answers -------------------------------------------------------------------------------------


def pretty() -> bool:
    return request.args.get("_pretty", "").strip().lower() == "true"


def serialize(value: Any, indent: bool = False) -> bytes:
    """JSON with orjson; what orjson refuses (a lone surrogate in a message, an integer past 64
    bits) is written by the standard library instead, a lone surrogate as U+FFFD, so an answer
    (an error's above all) never fails to be written."""
    option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        text = json.dumps(
            unicode_safe(value),
            ensure_ascii=False,
            indent=2 if indent else None,
            separators=None if indent else (",", ":"),
        )
        return (text + "\n").encode("utf-8")


def unicode_safe(value: Any) -> Any:
    """The value with every lone surrogate in a string or a key replaced by U+FFFD."""
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {unicode_safe(key): unicode_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [unicode_safe(item) for item in value]
    return value


def etag_of(value: Any) -> str:
    """Weak: the same for every representation (pretty or not, fhir+json or json); stable across
    restarts because definitions are deterministic."""
    digest = hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'W/"{digest[:32]}"'


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


def fhir_response(
    resource: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    etag: bool = False,
) -> Response:
    """A FHIR JSON answer in the negotiated media type; with `etag`, 304 when it is unchanged."""
    media_type = g.get("media_type") or FHIR_JSON_TYPE
    if media_type not in (FHIR_JSON_TYPE, JSON_TYPE):
        media_type = FHIR_JSON_TYPE
    all_headers = dict(headers or {})
    all_headers["Vary"] = "Accept"
    if etag:
        tag = etag_of(resource)
        all_headers["ETag"] = tag
        condition = request.headers.get("If-None-Match")
        if condition and request.method in ("GET", "HEAD") and _matches(condition, tag):
            return Response(status=304, headers=all_headers)
    body = serialize(resource, pretty())
    return Response(
        body, status=status, headers=all_headers, content_type=CONTENT_TYPES[media_type]
    )


def prefers_outcome() -> bool:
    """FHIR's `Prefer: return=OperationOutcome`: the issues instead of the resource."""
    prefer = request.headers.get("Prefer", "")
    return any(
        part.strip().lower() == "return=operationoutcome"
        for item in prefer.split(",")
        for part in item.split(";")
    )


# --- request bodies ------------------------------------------------------------------------------


def json_body(settings: Settings, limit: int, what: str) -> Any:
    """The body as JSON within `limit` bytes and the depth limit (413, 400 by api.read_json)."""
    request.max_content_length = limit
    data = request.get_data(cache=False)
    return api.read_json(data, settings, what, limit)


def bad_request(
    message: str, expression: str | None = None, rule: str = "invalid-value"
) -> NoReturn:
    raise InvalidInput([Issue("error", "invalid", message, expression, rule)], 400)


def is_parameters(body: Any) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Parameters"


def parameter(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The first `Parameters.parameter` named `name` (400 when `parameter` is not a list)."""
    entries = body.get("parameter", [])
    if not isinstance(entries, list):
        bad_request("Parameters.parameter is a list", "Parameters.parameter", "invalid-parameters")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def parameter_text(entry: Mapping[str, Any] | None) -> str | None:
    """A parameter's primitive value (valueString, valueCode, valueCanonical, ...)."""
    if entry is None:
        return None
    for key, value in entry.items():
        if key.startswith("value") and isinstance(value, str):
            return value
    return None


def parameter_resource(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    entry = parameter(body, name)
    resource = entry.get("resource") if entry else None
    if not isinstance(resource, dict):
        bad_request(
            f"the Parameters body needs a parameter {name!r} holding the resource",
            "Parameters.parameter",
            "missing-parameter",
        )
    return resource


def choice(
    name: str, allowed: Iterable[str], default: str | None, form: bool = False
) -> str | None:
    """A query (or form) parameter restricted to `allowed` (400 otherwise)."""
    value = request.args.get(name)
    if value is None and form:
        value = request.form.get(name)
    if value is None or value.strip() == "":
        return default
    options = list(allowed)
    if value not in options:
        bad_request(f"{name} is one of {', '.join(options)}, got {value[:40]!r}", name)
    return value


def questionnaire_id(settings: Settings, named: str | None) -> str | None:
    """The Questionnaire named by `?questionnaire=` and/or a `questionnaire` parameter: an
    instrument id or a canonical (`url` or `url|version`)."""
    query = request.args.get("questionnaire")
    query = query.strip() if query and query.strip() else None
    if query and named and _as_id(query, settings) != _as_id(named, settings):
        bad_request(
            "?questionnaire= and the questionnaire parameter name different Questionnaires",
            "questionnaire",
            "questionnaire-conflict",
        )
    # Passed on as given: the core resolves an id or a canonical, and checks a `|version`.
    return named or query


def _as_id(value: str, settings: Settings) -> str:
    """The instrument a name means, however an app writes it (id, canonical, `Questionnaire/id`,
    this service's own url), so two spellings of one Questionnaire never conflict."""
    from adapter.validation import local_canonical  # loads the R4B models: only when asked

    canonical = local_canonical(value, settings, request.url_root)
    instrument, _ = registry.by_canonical(canonical, settings)
    return instrument.id if instrument is not None else value


def named_questionnaire(body: Mapping[str, Any]) -> str | None:
    """SDC passes the Questionnaire as a resource, R4 operations as a canonical or an id."""
    entry = parameter(body, "questionnaire")
    if entry is None:
        return None
    resource = entry.get("resource")
    if isinstance(resource, dict):
        text = resource.get("url") or resource.get("id")
        return text if isinstance(text, str) else None
    return parameter_text(entry)
