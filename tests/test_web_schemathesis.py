"""A bounded property-based run of schemathesis against /openapi.json, in process (WSGI): no
generated request, valid or not, gets a 5xx, and every answer matches the OpenAPI description
(status, media type, headers, body schema)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapter.settings import MIB, Settings  # noqa: E402
from adapter.web import create_app  # noqa: E402

pytestmark = pytest.mark.slow  # schemathesis: generated requests against the OpenAPI description

MAX_EXAMPLES = 40
"""Per operation and mode: the whole run takes well under a minute on two cores."""

APP = create_app(
    Settings(
        max_input_bytes=256 * 1024,
        max_response_bytes=128 * 1024,
        max_upload_bytes=1 * MIB,
        max_sheet_rows=200,
    )
)
# An XLSX upload is bytes on the wire, like application/octet-stream.
schemathesis.serializer.alias(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/octet-stream"
)
# NDJSON bodies ($report) are text.
schemathesis.serializer.alias("application/fhir+ndjson", "text/plain")
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    database="none",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_description(case):
    case.call_and_validate(checks=CHECKS)
