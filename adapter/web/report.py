"""`POST /$report`: the follow-up report of one patient from score Observations (and LDN
MedicationStatements), answered by `Accept`:

- `text/html` (the default, and what browsers ask for): the self-contained HTML report;
- `image/png`, `image/svg+xml`: the chart, both panels or `?panel=a|b`;
- `application/fhir+json` (or `application/json`, `_format=json`): the change Observations as a
  transaction Bundle (`?bundle-type=batch` for a batch), to store beside the scores.

The body is a Bundle, a JSON array of resources, a single resource, or NDJSON
(`application/fhir+ndjson`, one resource a line), within FMS_FHIR_REPORT_MAX_MB (and
FMS_FHIR_MAX_INPUT_MB) and FMS_FHIR_REPORT_MAX_RESOURCES resources, 413 above: a report's time
and memory grow with its visits (about 1-2 ms a visit with every instrument; 0.1 MiB a visit for
the change Bundle, little for the page, which is sent as it is made), and
the bounds keep one request from holding a worker for long. `?patient=` names
the patient (identifier value, `system|value`, or the subject reference); the HTML and the charts
need it when the body holds several patients, the Bundle then holds every patient's changes.
`?baseline=YYYY-MM-DD` replaces the day LDN started as the baseline day.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date
from typing import Any, cast

from flask import Response, g, request

from adapter import api, jsonio
from adapter.bundle import BUNDLE_TYPES
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.report import (
    change_bundle,
    chart,
    render_report_parts,
    resources_from_json,
    resources_from_ndjson,
)
from adapter.settings import Settings
from adapter.web.operations import (
    FHIR_JSON_TYPE,
    JSON_TYPE,
    NDJSON_TYPE,
    Examples,
    Operation,
    Param,
)
from adapter.web.protocol import bad_request, choice, fhir_response
from adapter.web.responses import BUNDLE_TYPE
from adapter.web.schemas import ref
from adapter.web.state import state

HTML_TYPE = "text/html"
PNG_TYPE = "image/png"
SVG_TYPE = "image/svg+xml"
REPORT_TYPES = (HTML_TYPE, PNG_TYPE, SVG_TYPE, FHIR_JSON_TYPE, JSON_TYPE)
"""What `$report` answers, by `Accept`; the first is the default (no Accept, or `*/*`)."""
PANELS = ("a", "b")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
"""The report is self-contained: the browser is told to fetch nothing else, ever."""
STREAM_BUFFER = 1024 * 1024
"""How much of an NDJSON body is read from the server at once."""
PAGE_PIECE = 256 * 1024
"""The HTML page is sent in pieces of about this many characters, as it is made."""


def _baseline() -> str | None:
    """`?baseline=` as a date (YYYY-MM-DD); a malformed value is a 400, like any bad parameter."""
    value = request.args.get("baseline")
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        if DAY.fullmatch(value):
            date.fromisoformat(value)
            return value
    except ValueError:
        pass
    bad_request(f"baseline is a date (YYYY-MM-DD), got {value[:40]!r}", "baseline")


def _patient() -> str | None:
    value = request.args.get("patient")
    return value.strip() if value and value.strip() else None


def _counted(resources: Iterator[dict[str, Any]], limit: int) -> Iterator[dict[str, Any]]:
    """The resources as they are read, and a 413 at the first one past `limit`: raised while
    the report reads them, before anything of it is built, and before any error of a later
    line (the same answer as counting them all first), without holding them all."""
    for count, resource in enumerate(resources, 1):
        if count > limit:
            message = (
                f"the body holds more than {limit} resources, the most one $report reads "
                "(FMS_FHIR_REPORT_MAX_RESOURCES); send one patient's resources at a time"
            )
            raise InvalidInput(
                [Issue("error", "too-long", message, None, "too-many-resources")], 413
            )
        yield resource


def read_resources(settings: Settings) -> Iterator[dict[str, Any]]:
    """The body's resources: NDJSON a line at a time from the request's stream (the body is
    never held whole, and each resource can be dropped once read), else one JSON value (Bundle,
    array, resource); within FMS_FHIR_REPORT_MAX_MB (and FMS_FHIR_MAX_INPUT_MB), the depth limit
    and FMS_FHIR_REPORT_MAX_RESOURCES. A body over the limit is a 413 before any line is read
    when its Content-Length says so, else when the reading passes the limit."""
    options = state().options
    limit = min(settings.max_input_bytes, options.report_max_bytes)
    request.max_content_length = limit
    if request.mimetype == NDJSON_TYPE:
        stream = io.BufferedReader(cast(io.RawIOBase, request.stream), STREAM_BUFFER)
        resources = resources_from_ndjson(stream, settings, "the body")
    else:
        data = request.get_data(cache=False)
        if len(data) > limit:
            raise jsonio.too_large("the body", limit)
        resources = resources_from_json(
            api.read_json(data, settings, "the body", limit), "the body", read_by_jsonio=True
        )
    return _counted(resources, options.report_max_resources)


def report() -> Response:
    settings = state().settings
    patient = _patient()
    baseline = _baseline()
    panel = choice("panel", PANELS, None)
    bundle_type = choice("bundle-type", BUNDLE_TYPES, "transaction")
    resources = read_resources(settings)
    media_type = g.media_type
    headers = {"Vary": "Accept"}
    if media_type in (FHIR_JSON_TYPE, JSON_TYPE):
        bundle = change_bundle(resources, settings, patient, baseline, bundle_type)  # type: ignore[arg-type]  # choice() gives one of BUNDLE_TYPES
        return fhir_response(bundle)
    if media_type in (PNG_TYPE, SVG_TYPE):
        image = chart(
            resources,
            settings,
            "png" if media_type == PNG_TYPE else "svg",
            patient,
            baseline,
            panel,
        )
        return Response(image, headers=headers, content_type=media_type)
    parts = render_report_parts(resources, settings, patient, baseline)  # input errors: here
    headers["Content-Security-Policy"] = REPORT_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    g.streamed = True  # its slot held, and the request logged, until the last piece (hooks)
    return Response(_pieces(parts), headers=headers, content_type="text/html; charset=utf-8")


def _pieces(parts: Iterator[str]) -> Iterator[bytes]:
    """The page as UTF-8 pieces, sent as they are made: with years of visits a page is tens of
    megabytes, mostly the change table, and held whole (as text, then as bytes) it set the
    request's peak memory. The parts need no request context: they are made from the report
    alone."""
    batch: list[str] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= PAGE_PIECE:
            yield "".join(batch).encode("utf-8")
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode("utf-8")


# --- the registry --------------------------------------------------------------------------------

EXAMPLE_PATIENT = {"system": "urn:example:mrn", "value": "EXAMPLE-1"}


def _example_answers(authored: str, answers: dict[str, int]) -> dict[str, Any]:
    return {
        "instrument": "phq4",
        "subject": {"identifier": EXAMPLE_PATIENT},
        "authored": authored,
        "status": "completed",
        "answers": answers,
    }


def examples(settings: Settings) -> Examples:
    """A PHQ-4 before LDN started and one three months later, with the regimen: the Bundle
    `$convert-answers` and `$from-regimen` give for them, and the change Observations `$report` gives."""
    from adapter.web.examples import REGIMEN

    before = _example_answers(
        "2025-01-03",
        {"phq4-nervous": 2, "phq4-worry": 2, "phq4-interest": 1, "phq4-down": 2},
    )
    after = _example_answers(
        "2025-04-10",
        {"phq4-nervous": 1, "phq4-worry": 1, "phq4-interest": 0, "phq4-down": 1},
    )
    converted = api.convert([before, after], settings).bundle
    resources = [
        entry["resource"]
        for entry in converted["entry"]
        if entry["resource"]["resourceType"] == "Observation"
    ]
    resources.append(api.regimen(REGIMEN, settings).resource)
    body = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": resource} for resource in resources],
    }
    return Examples({"scores and regimen": body}, change_bundle(resources, settings))


RESOURCES_BODY = {
    "oneOf": [
        ref("Bundle"),
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["resourceType"],
                "properties": {"resourceType": {"type": "string"}},
            },
            "description": "The resources, one an item",
        },
    ],
    "description": "Score Observations (and LDN MedicationStatements): a Bundle or an array",
}
REPORT_BODY: dict[str, dict[str, Any]] = {
    FHIR_JSON_TYPE: RESOURCES_BODY,
    JSON_TYPE: RESOURCES_BODY,
    NDJSON_TYPE: {"type": "string", "description": "One resource a line (FHIR Bulk Data)"},
}
OPERATIONS = (
    Operation(
        name="report",
        method="POST",
        path="/$report",
        view=report,
        summary="Score Observations of a patient -> the follow-up report (HTML, a chart, or FHIR)",
        description=(
            "Change from baseline, responder categories and time on LDN for one patient, from "
            "the score Observations (and LDN MedicationStatements) in the body: a Bundle, a JSON "
            "array of resources, or NDJSON. By `Accept`: `text/html` (the default) the "
            "self-contained report; `image/png` or `image/svg+xml` the chart (`panel` a: FIQR "
            "and pain, b: SSS and PHQ-4, c: PHQ-9 and GAD-7 for a patient who has them; all by "
            "default); `application/fhir+json` the change "
            "Observations as a transaction Bundle. `patient` names the patient (identifier value, "
            "`system|value` or reference): needed for the report and the chart when the body "
            "holds several, and the Bundle then holds every patient's changes unless one is "
            "named. `baseline` (YYYY-MM-DD) replaces the day LDN started as the baseline day. "
            "422 when the body holds no score Observation, 404 for an unknown patient."
        ),
        consumes=REPORT_BODY,
        produces=REPORT_TYPES,
        result=ref("TransactionBundle"),
        params=(
            Param("patient", "The patient: identifier value, system|value, or subject reference"),
            Param(
                "baseline",
                "Baseline day (YYYY-MM-DD); default: the day LDN started",
                {"type": "string", "format": "date"},
            ),
            Param(
                "panel",
                "For a chart: a (FIQR, pain) or b (SSS and the PHQ-4, PHQ-9, GAD-7 totals)",
                {"enum": list(PANELS)},
            ),
            BUNDLE_TYPE,
        ),
        errors=(400, 404, 413, 415, 422),
        examples=examples,
    ),
)
