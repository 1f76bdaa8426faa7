"""Conversions: answers documents (`$convert`), spreadsheets (`$convert-sheet`) and LDN regimens
(`$from-regimen`) into FHIR.

`$convert-sheet` answers, by `format`:
- `transaction` (default) or `patient`: a `Parameters` holding the row counts (`rows-read`,
  `rows-converted`, `rows-rejected`, `rows-blank`), `resources` (a count per type), the row report
  as an OperationOutcome (`report`), then one `bundle` per visit or per patient, in sheet order;
  held in memory, so bounded by FMS_FHIR_MAX_BUNDLE_ROWS rows;
- `ndjson`: `application/fhir+ndjson`, one resource a line with relative references, and as the
  last line the row report (an OperationOutcome). The whole answer is written to a spooled
  temporary file first, so the status is always right (a sheet that fails at row 900 000 is a
  4xx, not a 200 cut short), then sent in 64 KiB chunks with its Content-Length.
Both carry the counts in X-Rows-Read, X-Rows-Converted, X-Rows-Rejected and X-Rows-Blank. A sheet
with rejected rows still answers 200: every row is accounted for in the report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from flask import Response, after_this_request, g, request

from adapter import api, jsonio
from adapter.bundle import BUNDLE_TYPES, FORMATS, Format
from adapter.model import Issue
from adapter.outcome import InvalidInput, operation_outcome
from adapter.settings import MIB, Settings
from adapter.sheets.pipeline import SheetReport
from adapter.sheets.request import (
    WEB_PLACES,
    ContractFile,
    SheetOptions,
    SheetRequest,
    ToMemory,
    ToStream,
)
from adapter.web import examples
from adapter.web.operations import (
    BUNDLE_TYPE,
    CSV_TYPE,
    FHIR_TYPES,
    MULTIPART_TYPE,
    NDJSON_TYPE,
    OCTET_TYPE,
    PREFER,
    XLSX_TYPE,
    Operation,
    Param,
)
from adapter.web.protocol import (
    acceptable,
    bad_request,
    choice,
    choose,
    fhir_response,
    json_body,
    not_acceptable,
    prefers_outcome,
    serialize,
)
from adapter.web.schemas import ref
from adapter.web.state import state

SPOOL_BYTES = 8 * MIB
CHUNK = 64 * 1024
MULTIPART_SLACK = 1 * MIB
"""Room for the contract and the multipart framing beyond the sheet itself."""
SUFFIXES = {CSV_TYPE: ".csv", XLSX_TYPE: ".xlsx"}


# --- answers documents and regimens --------------------------------------------------------------


def convert() -> Response:
    settings = state().settings
    bundle_type = choice("bundle-type", BUNDLE_TYPES, "transaction")
    payload = json_body(settings, settings.max_input_bytes, "the answers document")
    result = api.convert(payload, settings, bundle_type)  # type: ignore[arg-type]  # choice() gives one of BUNDLE_TYPES
    if prefers_outcome():
        return fhir_response(operation_outcome(result.warnings, settings))
    return fhir_response(result.bundle)


DEPRECATED_SINCE = datetime(2026, 12, 7, tzinfo=UTC)
"""When `POST /$convert` became an alias of `$convert-answers` (RFC 9745's Deprecation date)."""


def convert_deprecated() -> Response:
    """`POST /$convert`, answered as `$convert-answers` with RFC 9745's `Deprecation` and RFC
    8288's successor link, on every answer (an error too: a client sees it whatever it gets)."""

    @after_this_request
    def deprecated(response: Response) -> Response:
        response.headers["Deprecation"] = f"@{int(DEPRECATED_SINCE.timestamp())}"
        successor = f"{request.script_root}/$convert-answers"
        response.headers["Link"] = f'<{successor}>; rel="successor-version"'
        return response

    return convert()


def from_regimen() -> Response:
    settings = state().settings
    document = json_body(settings, settings.max_input_bytes, "the regimen")
    result = api.regimen(document, settings)
    if prefers_outcome():
        return fhir_response(operation_outcome(result.warnings, settings))
    return fhir_response(result.resource)


# --- spreadsheets --------------------------------------------------------------------------------


@dataclass
class Upload:
    """The sheet as a seekable stream, its file name, the transport's charset and the contract
    as given; `spooled` when the stream is ours to close (a raw body)."""

    stream: IO[bytes]
    name: str
    charset: str | None = None
    contract: ContractFile | None = None
    spooled: bool = False


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _file_name(given: str | None, media_type: str | None) -> str:
    """The upload's own name (it picks the reader by its ending and names the report), cleaned."""
    name = (given or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:120] or "upload"
    if "." not in name and media_type in SUFFIXES:
        name += SUFFIXES[media_type]
    return name


def _contract_part(settings: Settings) -> ContractFile | None:
    """The `contract` file part, or a `contract` text field. Blank is none (a browser sends an
    empty part for a file input left empty): the canonical template."""
    limit = settings.max_input_bytes
    part = request.files.get("contract")
    if part is not None:
        data = part.stream.read(limit + 1)  # over the limit: the request resolution says 413
        name = _file_name(part.filename, None) if part.filename else "contract"
    else:
        data = request.form.get("contract", "").encode()
        name = "contract"
    return ContractFile(data, name) if data.strip() else None


def read_upload(settings: Settings) -> Upload:
    """The sheet as a seekable stream (werkzeug spools file parts; a raw body is spooled here).

    A multipart form (`$convert-sheet` and the page alike): the sheet in `file`, an optional
    `contract`; an empty `file` part (a browser's, for a file input left empty) is no sheet.
    """
    limit = settings.max_upload_bytes
    if request.mimetype == MULTIPART_TYPE:
        request.max_content_length = limit + MULTIPART_SLACK
        part = request.files.get("file")
        if part is None or (not part.filename and _size(part.stream) == 0):
            bad_request(
                "choose a CSV or XLSX file to convert (the multipart part named 'file')",
                "file",
                "missing-file",
            )
        if _size(part.stream) > limit:
            raise jsonio.too_large("the sheet", limit)
        name = _file_name(part.filename, part.mimetype)
        return Upload(part.stream, name, contract=_contract_part(settings))
    request.max_content_length = limit
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by caller
    try:
        while chunk := request.stream.read(CHUNK):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    charset = request.mimetype_params.get("charset") if request.mimetype == CSV_TYPE else None
    return Upload(spool, _file_name(None, request.mimetype), charset, spooled=True)


def requested_format() -> Format | None:
    """`format`, a query parameter or a form field (400 when it is none of FORMATS)."""
    return choice("format", FORMATS, None, form=True)  # type: ignore[return-value]  # one of FORMATS


def sheet_request(upload: Upload, layout: Format, max_rows: int | None = None) -> SheetRequest:
    """The one sheet request, from the query or the form: `bundle-type`, `patient-system`
    (the same names on `$convert-sheet` and the page), the charset of a raw CSV body."""
    bundle_type = choice("bundle-type", BUNDLE_TYPES, "transaction", form=True)
    system = request.args.get("patient-system") or request.form.get("patient-system")
    options = SheetOptions(
        format=layout,
        bundle_type=bundle_type,  # type: ignore[arg-type]  # choice() gives one of BUNDLE_TYPES
        patient_system=system,
        charset=upload.charset,
        max_rows=max_rows,
    )
    return SheetRequest(upload.stream, upload.name, upload.contract, options, WEB_PLACES)


def _layout(requested: Format | None) -> Format:
    """`format` picks the layout; without it, NDJSON when that is what the caller accepts."""
    layout: Format = requested or ("ndjson" if g.media_type == NDJSON_TYPE else "transaction")
    if layout == "ndjson":
        if not acceptable(NDJSON_TYPE):
            raise not_acceptable([NDJSON_TYPE])
        g.media_type = NDJSON_TYPE
    elif g.media_type not in FHIR_TYPES:
        chosen = choose(FHIR_TYPES)
        if chosen is None:
            raise not_acceptable(FHIR_TYPES)
        g.media_type = chosen
    return layout


def _count_headers(report: SheetReport) -> dict[str, str]:
    return {f"X-{name.title()}": str(value) for name, value in report.counts().items()}


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while data := spool.read(CHUNK):
            yield data
    finally:
        spool.close()


def _ndjson(sheet: SheetRequest, settings: Settings) -> Response:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - _chunks closes it
    try:
        report = api.convert_sheet(sheet, ToStream(spool), settings).report
        spool.write(serialize(report.to_outcome()))
        length = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    headers = {**_count_headers(report), "Content-Length": str(length)}
    return Response(_chunks(spool), headers=headers, content_type=NDJSON_TYPE)


def _bundles(sheet: SheetRequest, settings: Settings, rows: int) -> Response:
    try:
        result = api.convert_sheet(sheet, ToMemory(), settings)
    except InvalidInput as error:
        if any(i.rule == "too-many-rows" for i in error.issues):
            hint = Issue(
                "information",
                "informational",
                f"Bundles in one JSON answer hold at most {rows} rows; ask for format=ndjson "
                f"for up to {settings.max_sheet_rows} rows",
                None,
                "use-ndjson",
            )
            raise InvalidInput([*error.issues, hint], error.status) from None
        raise
    parameters = result.report.to_parameters(result.bundles)
    return fhir_response(parameters, headers=_count_headers(result.report))


def convert_sheet() -> Response:
    current = state()
    settings = current.settings
    upload = read_upload(settings)
    try:
        layout = _layout(requested_format())
        if layout == "ndjson":
            return _ndjson(sheet_request(upload, layout), settings)
        # Bundles are held in memory until the answer is sent: bounded by their own row limit.
        rows = min(settings.max_sheet_rows, current.options.max_bundle_rows)
        return _bundles(sheet_request(upload, layout, rows), settings, rows)
    finally:
        if upload.spooled:
            upload.stream.close()


CONVERT_DESCRIPTION = (
    "Deterministic: the same document gives the same Bundle, and every entry is a "
    "conditional update on a stable identifier: a retried post changes nothing, a "
    "correction (an `amended` response) makes one new version."
)
DEPRECATION_HEADERS = {
    "Deprecation": {
        "description": "RFC 9745: this route is deprecated since that date (`@` Unix seconds)",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'RFC 8288: `</$convert-answers>; rel="successor-version"`',
        "schema": {"type": "string"},
    },
}
COUNT_HEADERS = {
    f"X-Rows-{part}": {"description": f"rows {part.lower()}", "schema": {"type": "string"}}
    for part in ("Read", "Converted", "Rejected", "Blank", "Partial")
}
JSON_BODY = {"application/fhir+json": ref("Answers"), "application/json": ref("Answers")}
REGIMEN_BODY = {"application/fhir+json": ref("Regimen"), "application/json": ref("Regimen")}
SHEET_BODY = {
    MULTIPART_TYPE: ref("SheetUpload"),
    CSV_TYPE: {"type": "string", "description": "The CSV file (UTF-8 or the charset parameter)"},
    XLSX_TYPE: {"type": "string", "contentMediaType": XLSX_TYPE},
    OCTET_TYPE: {"type": "string", "contentMediaType": OCTET_TYPE},
}

OPERATIONS = (
    Operation(
        name="convert-answers",
        method="POST",
        path="/$convert-answers",
        view=convert,
        summary="Answers document(s) -> transaction Bundle (QuestionnaireResponse + scores)",
        description=CONVERT_DESCRIPTION,
        consumes=JSON_BODY,
        result={"oneOf": [ref("TransactionBundle"), ref("OperationOutcome")]},
        params=(BUNDLE_TYPE, PREFER),
        errors=(400, 413, 415, 422),
        examples=examples.convert,
    ),
    Operation(
        name="convert",
        method="POST",
        path="/$convert",
        view=convert_deprecated,
        summary="Deprecated alias of $convert-answers (the same answers)",
        description=(
            f"{CONVERT_DESCRIPTION} Deprecated: at system level `$convert` is R4 core's format "
            "conversion, so this operation is `$convert-answers` now; this route stays for "
            "existing clients and its answers say so (`Deprecation`, `Link: <...>; "
            'rel="successor-version"`).'
        ),
        consumes=JSON_BODY,
        result={"oneOf": [ref("TransactionBundle"), ref("OperationOutcome")]},
        params=(BUNDLE_TYPE, PREFER),
        errors=(400, 413, 415, 422),
        response_headers=DEPRECATION_HEADERS,
        examples=examples.convert,
        successor="convert-answers",
    ),
    Operation(
        name="convert-sheet",
        method="POST",
        path="/$convert-sheet",
        view=convert_sheet,
        summary="Spreadsheet (CSV, XLSX) -> Bundles or NDJSON, with the row report",
        description=(
            "Multipart (`file`, optional `contract`, `format`, `bundle-type`, `patient-system`) "
            "or the raw file as text/csv, the XLSX media type or application/octet-stream. "
            "`format` transaction or patient: a Parameters with the row counts, the row report "
            "(`report`, an OperationOutcome) and the `bundle`s; `format=ndjson`: "
            "application/fhir+ndjson whose last line is the row report."
        ),
        consumes=SHEET_BODY,
        produces=(*FHIR_TYPES, NDJSON_TYPE),
        result=ref("Parameters"),
        params=(
            Param(
                "format",
                "transaction (a Bundle per visit), patient, or ndjson",
                {"enum": list(FORMATS)},
            ),
            BUNDLE_TYPE,
            Param(
                "patient-system", "Identifier system of the patient column (overrides the contract)"
            ),
        ),
        errors=(400, 413, 415, 422),
        response_headers=COUNT_HEADERS,
        examples=examples.convert_sheet,
    ),
    Operation(
        name="from-regimen",
        method="POST",
        path="/MedicationStatement/$from-regimen",
        view=from_regimen,
        summary="LDN regimen document -> MedicationStatement",
        description="Phases, or a titration rule expanded into ordered dosage entries.",
        resource="MedicationStatement",
        consumes=REGIMEN_BODY,
        result={"oneOf": [ref("MedicationStatement"), ref("OperationOutcome")]},
        params=(PREFER,),
        errors=(400, 413, 415, 422),
        examples=examples.regimen,
    ),
)
