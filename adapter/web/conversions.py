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

import codecs
import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from flask import Response, g, request

from adapter import api, jsonio
from adapter.bundle import BUNDLE_TYPES, FORMATS
from adapter.model import Issue
from adapter.outcome import InvalidInput, operation_outcome
from adapter.settings import MIB, Settings
from adapter.sheets.output import MemorySink, NdjsonStreamSink
from adapter.sheets.pipeline import SheetReport
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
from adapter.web.problems import HttpProblem
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
    result = api.convert(payload, settings, bundle_type)  # type: ignore[arg-type]
    if prefers_outcome():
        return fhir_response(operation_outcome(result.warnings, settings))
    return fhir_response(result.bundle)


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
    stream: IO[bytes]
    name: str
    charset: str | None = None
    contract: bytes | None = None
    contract_name: str = "contract"


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


def read_upload(settings: Settings) -> Upload:
    """The sheet as a seekable stream (werkzeug spools file parts; a raw body is spooled here)."""
    limit = settings.max_upload_bytes
    if request.mimetype == MULTIPART_TYPE:
        request.max_content_length = limit + MULTIPART_SLACK
        part = request.files.get("file")
        if part is None:
            bad_request("a multipart upload carries the sheet in a part named 'file'", "file")
        if _size(part.stream) > limit:
            raise jsonio.too_large("the sheet", limit)
        upload = Upload(part.stream, _file_name(part.filename, part.mimetype))
        contract = request.files.get("contract")
        if contract is not None:
            upload.contract = contract.stream.read(settings.max_input_bytes + 1)
            upload.contract_name = _file_name(contract.filename, None)
        elif request.form.get("contract"):
            upload.contract = request.form["contract"].encode()
        return upload
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
    return Upload(spool, _file_name(None, request.mimetype), charset)


def _layout() -> str:
    """`format` picks the layout; without it, NDJSON when that is what the caller accepts."""
    layout = choice("format", FORMATS, None, form=True)
    if layout is None:
        layout = "ndjson" if g.media_type == NDJSON_TYPE else "transaction"
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


def _contract(upload: Upload, settings: Settings) -> Any:
    from adapter.sheets.contract import default_contract, with_patient_system

    if upload.contract is not None:
        contract = api.load_contract(upload.contract, upload.contract_name, settings)
    else:
        contract = default_contract()
    if upload.charset and contract.encoding is None:
        try:
            codecs.lookup(upload.charset)
        except LookupError:
            message = f"unknown charset {upload.charset[:40]!r} in the Content-Type"
            raise HttpProblem(415, message, "not-supported", "unknown-charset") from None
        contract = dataclasses.replace(contract, encoding=upload.charset)
    system = request.args.get("patient-system") or request.form.get("patient-system")
    if system:
        try:
            contract = with_patient_system(contract, system)
        except InvalidInput as error:
            # the core names the CLI flag; here it is the query or form parameter
            issues = [dataclasses.replace(i, expression="patient-system") for i in error.issues]
            raise InvalidInput(issues, 400) from None
    return contract


def row_report(report: SheetReport, settings: Settings) -> dict[str, Any]:
    """The row report as an OperationOutcome (the core's)."""
    return report.to_outcome()


def _count_headers(report: SheetReport) -> dict[str, str]:
    return {f"X-{name.title()}": str(value) for name, value in report.counts().items()}


def sheet_parameters(report: SheetReport, sink: MemorySink, settings: Settings) -> dict[str, Any]:
    return report.to_parameters(sink.bundles())


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while data := spool.read(CHUNK):
            yield data
    finally:
        spool.close()


def convert_sheet() -> Response:
    current = state()
    settings = current.settings
    bundle_type = choice("bundle-type", BUNDLE_TYPES, None)
    upload = read_upload(settings)
    try:
        layout = _layout()
        bundle_type = bundle_type or choice("bundle-type", BUNDLE_TYPES, "transaction", form=True)
        contract = _contract(upload, settings)
        if layout == "ndjson":
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            try:
                sink = NdjsonStreamSink(spool, settings)
                report = api.convert_sheet(upload.stream, upload.name, contract, sink, settings)
                spool.write(serialize(row_report(report, settings)))
                length = spool.tell()
                spool.seek(0)
            except BaseException:
                spool.close()
                raise
            headers = {**_count_headers(report), "Content-Length": str(length)}
            return Response(_chunks(spool), headers=headers, content_type=NDJSON_TYPE)
        rows = min(settings.max_sheet_rows, current.options.max_bundle_rows)
        bounded = settings.with_(max_sheet_rows=rows)
        memory = MemorySink(bounded, layout, bundle_type)  # type: ignore[arg-type]
        try:
            report = api.convert_sheet(upload.stream, upload.name, contract, memory, bounded)
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
        return fhir_response(
            sheet_parameters(report, memory, settings), headers=_count_headers(report)
        )
    finally:
        if request.mimetype != MULTIPART_TYPE:
            upload.stream.close()


COUNT_HEADERS = {
    f"X-Rows-{part}": {"description": f"rows {part.lower()}", "schema": {"type": "string"}}
    for part in ("Read", "Converted", "Rejected", "Blank")
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
        name="convert",
        method="POST",
        path="/$convert",
        view=convert,
        summary="Answers document(s) -> transaction Bundle (QuestionnaireResponse + scores)",
        description=(
            "Deterministic: the same document gives the same Bundle, and every entry is a "
            "conditional create on a stable identifier, so a retried post creates nothing twice."
        ),
        consumes=JSON_BODY,
        result={"oneOf": [ref("TransactionBundle"), ref("OperationOutcome")]},
        params=(BUNDLE_TYPE, PREFER),
        errors=(400, 413, 415, 422),
        examples=examples.convert,
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
