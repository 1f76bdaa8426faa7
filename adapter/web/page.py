"""The page for people (`GET /`): upload a CSV or XLSX sheet and an optional contract, read the row
report, download the FHIR as a zip, and open each patient's follow-up report.

Server-rendered HTML (`page_templates.py`) with no script and no outside request. The routes are
in the one registry like every other, as `system` interactions: they are in /openapi.json (tag
`system`) and stay out of the FHIR CapabilityStatement.

    GET  /                                  the form
    POST /                                  convert -> the result page (a browser: 303 to it)
    GET  /results/{id}                      the result page again
    GET  /results/{id}/fhir.zip             the output (Bundles or NDJSON files) and the row report
    GET  /results/{id}/patients/{number}    that patient's follow-up report (HTML), linking back
    GET  /results/{id}/contract.yaml        the contract made in the mapping step
    GET  /mappings/{id}                     the mapping step: each column, what it seems to hold
    POST /mappings/{id}                     preview the first rows, convert, or the contract
    GET  /template.xlsx                     the canonical sheet template
    GET  /help/contract                     what a sheet contract is, with an example

A browser's upload whose headers do not fit the template (or the contract given) is kept as it came and the browser is sent to the mapping step (`page_mapping.py`): the
suggestion of `adapter.sheets.suggest` column by column, changed with plain selects; its choices
become a contract in the documented format, and Convert runs the same conversion as an upload
with that contract.

Each conversion is kept on disk by `page_store.Store` under an unguessable id, so the result
survives between requests and across gunicorn workers, for FMS_FHIR_PAGE_TTL_MINUTES. Bearer
tokens apply here as on every route (a browser cannot send them from a plain form: the page is
for deployments without tokens, or behind the hospital's own sign-on proxy).

A browser says it wants `text/html` by name in Accept. It is sent from `POST /` to the result's
address (303 See Other: Back and reload never post the sheet again), and its errors are pages: the
form again (or an error page) with each problem in words and the same status. Any other client
gets the result page itself (200, its address in Content-Location) and OperationOutcomes, like
everywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Response, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from adapter import api
from adapter.bundle import BUNDLE_TYPES, FORMATS
from adapter.model import Issue
from adapter.outcome import FmsError, InvalidInput
from adapter.report import follow_up, load_resources
from adapter.report import patients as patient_list
from adapter.report.core import one_patient
from adapter.report.html import report_html
from adapter.settings import MIB, Settings
from adapter.sheets.output import MARKER
from adapter.sheets.pipeline import RowIssues
from adapter.sheets.request import WEB_PLACES, ContractFile, SheetOptions, SheetRequest, ToFolder
from adapter.sheets.suggest import Suggestion
from adapter.web.conversions import Upload, read_upload, requested_format, sheet_request
from adapter.web.operations import MULTIPART_TYPE, Operation, Param
from adapter.web.page_mapping import (
    Choices,
    Preview,
    check_choices,
    choice_groups,
    choice_labels,
    contract_data,
    contract_yaml,
    preview,
    read_choices,
    rows,
    suggest_for,
    suggestion_from_json,
    suggestion_to_json,
)
from adapter.web.page_store import CONTRACT, MAPPING, OUT, RESULT, SHEET, ZIP, Store, Stored
from adapter.web.page_templates import render
from adapter.web.problems import HttpProblem
from adapter.web.protocol import serialize
from adapter.web.report import HTML_TYPE, REPORT_POLICY
from adapter.web.schemas import ref
from adapter.web.state import state

ZIP_TYPE = "application/zip"
YAML_TYPE = "application/yaml"
FORM_TYPE = "application/x-www-form-urlencoded"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOES_NOT_FIT = frozenset({"missing-column", "duplicate-column"})
"""The rules of a header the contract does not describe: the mapping step, for a browser."""
ACTIONS = ("preview", "convert", "contract")
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'self'"
)
"""The browser is told to load nothing from anywhere (the page has no script either)."""
PATIENT_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
"""A patient's number in a result's URL, as the result page writes it."""
LISTED = 1000
"""Most rejected-row reasons and warnings the result page lists (all are in the zip)."""
FORMAT_CHOICES = (
    (
        "transaction",
        "Transaction Bundles, one per visit",
        "A FHIR transaction Bundle per visit, and one per patient for the LDN doses: each can "
        "be posted to a FHIR server as it is.",
    ),
    (
        "patient",
        "One Bundle per patient",
        "All of a patient's visits and LDN doses in one transaction Bundle.",
    ),
    (
        "ndjson",
        "NDJSON (FHIR Bulk Data)",
        "One file per resource type, one resource a line, for a server's bulk import.",
    ),
)
BUNDLE_TYPE_CHOICES = (
    ("transaction", "Transaction (all or nothing)"),
    ("batch", "Batch (entry by entry)"),
)
"""The values are BUNDLE_TYPES: the form's select, as `bundle-type` of $convert-sheet."""
CONTENTS = {
    "transaction": "The zip holds one transaction Bundle per visit "
    "(visit-&lt;patient&gt;-&lt;date&gt;.json) and one per patient's LDN doses "
    "(medication-&lt;patient&gt;.json).",
    "patient": "The zip holds one transaction Bundle per patient (patient-&lt;patient&gt;.json).",
    "ndjson": "The zip holds one NDJSON file per resource type (Observation.ndjson, ...), "
    "references relative, as FHIR Bulk Data $import reads them.",
}


# --- the store -----------------------------------------------------------------------------------


def page_store() -> Store:
    """The app's store, made by `create_app` from the page's options (FMS_FHIR_PAGE_...)."""
    return state().page_store


# --- answers -------------------------------------------------------------------------------------


def _base() -> str:
    """Links are absolute paths under the app's root, so a proxy's prefix is kept."""
    return request.script_root.rstrip("/")


def _html(body: str, status: int = 200, policy: str = PAGE_POLICY) -> Response:
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return Response(body, status=status, headers=headers, content_type="text/html; charset=utf-8")


def _duration(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _bytes_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / MIB:.1f} MB"


def _wants_html() -> bool:
    """A browser names text/html in Accept; an API client (no Accept, */*) gets FHIR errors."""
    return any(kind == HTML_TYPE and q > 0 for kind, q in request.accept_mimetypes)


def _problems(error: FmsError | HTTPException) -> tuple[int, list[str]]:
    if isinstance(error, FmsError):
        lines = [
            f"{issue.message} ({issue.expression})"
            if issue.expression and issue.expression not in issue.message
            else issue.message
            for issue in error.issues
        ]
        return error.status, lines
    status = error.code or 500
    if status == 413 and not isinstance(error, HttpProblem):
        limit = state().settings.max_upload_bytes
        return status, [f"The file is larger than this service accepts ({_bytes_text(limit)})."]
    return status, [error.description or error.name]


def _chosen() -> dict[str, str]:
    """The choices made before an error, to show the form as it was (the template's defaults
    when the form could not be read)."""
    try:
        form = request.form if request.method == "POST" else {}
    except (HTTPException, ValueError):
        form = {}
    layout = form.get("format")
    bundle_type = form.get("bundle-type")
    return {
        "format": layout if layout in FORMATS else "transaction",
        "bundle_type": bundle_type if bundle_type in BUNDLE_TYPES else "transaction",
        "patient_system": (form.get("patient-system") or "")[:500],
    }


def _form_page(status: int = 200, problems: Iterable[str] = (), title: str = "") -> Response:
    options = page_store().options
    rows = min(state().settings.max_sheet_rows, options.max_rows)
    body = render(
        "form",
        title="Convert a spreadsheet" if not problems else "Error: convert a spreadsheet",
        base=_base(),
        formats=FORMAT_CHOICES,
        bundle_types=BUNDLE_TYPE_CHOICES,
        chosen=_chosen(),
        max_rows=f"{rows:,}",
        ttl=_duration(options.ttl),
        problems=list(problems),
        problem_title=title,
    )
    return _html(body, status)


def _for_people(view: Callable[..., Response]) -> Callable[..., Response]:
    """Client errors as a page for a browser; as OperationOutcomes (the app's handlers) else."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Response:
        try:
            return view(**kwargs)
        except (FmsError, HTTPException) as error:
            status, problems = _problems(error)
            if status >= 500 or status == 401 or not _wants_html():
                raise
            if view is upload:
                return _form_page(status, problems, "The sheet could not be converted")
            if view is mapping_post and kwargs.get("id") and status not in (404, 413):
                stored = page_store().get(kwargs["id"])
                if stored is not None and stored.kind == MAPPING:
                    return _mapping_again(stored, status, problems)
            heading = "Not found" if status == 404 else "Something is wrong with this request"
            body = render("error", title=heading, heading=heading, base=_base(), problems=problems)
            return _html(body, status)

    return wrapped


def _gone() -> InvalidInput:
    ttl = _duration(page_store().options.ttl)
    message = (
        f"no such result: results are kept for {ttl}, and this one is unknown, expired or "
        "removed; convert the sheet again"
    )
    return InvalidInput([Issue("error", "not-found", message, None, "unknown-result")], 404)


def _stored(id: str, kind: str = RESULT) -> Stored:  # noqa: A002 - the path parameter's name
    stored = page_store().get(id)
    if stored is None or stored.kind != kind:
        raise _gone()
    return stored


# --- the form and the conversion ------------------------------------------------------------------


def form() -> Response:
    page_store().sweep()  # expired results go even while nobody converts
    return _form_page()


def _placed(issue: Issue, row: int | None) -> dict[str, Any]:
    """Row, column and reason of one issue of the row report."""
    row = issue.row or row
    column = issue.column.removeprefix("column ") if issue.column else None
    if column is None and issue.row is None and issue.expression:
        column = issue.expression.removeprefix("column ")  # not a cell: a header, the contract
    return {
        "row": row if row is not None else "-",
        "column": column or "-",
        "reason": issue.message,
    }


def _listed(entries: list[RowIssues]) -> tuple[list[dict[str, Any]], int]:
    listed: list[dict[str, Any]] = []
    total = 0
    for entry in entries:
        for issue in entry.issues:
            total += 1
            if len(listed) < LISTED:
                listed.append(_placed(issue, entry.row))
    return listed, total


def _patients(out: Path, settings: Settings) -> tuple[list[dict[str, Any]], str | None]:
    """Every patient with score Observations in the output, for the report links."""
    if not out.is_dir():
        return [], "no row was converted"
    try:
        found = patient_list(load_resources(out, settings), settings)
    except InvalidInput as error:
        # the files by their names: the server's folders are no business of the page's reader
        inside = f"{out}{os.sep}"
        return [], "; ".join(issue.message.replace(inside, "") for issue in error.issues)
    return [{"label": p.label, "key": p.key, "visits": visits} for p, visits in found], None


def _zip_name(name: str, layout: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)[:60].strip("._") or "sheet"
    return f"{stem}-{layout}.zip"


def _write_zip(staging: Path, folder: str, report: dict[str, Any]) -> int:
    """The output files and the row report, under one folder; returns the zip's size."""
    out = staging / OUT
    target = staging / ZIP
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        if out.is_dir():
            for file in sorted(out.iterdir()):
                if file.is_file() and file.name != MARKER:
                    archive.write(file, f"{folder}/{file.name}")
        archive.writestr(f"{folder}/row-report.json", serialize(report, indent=True))
    return target.stat().st_size


def _too_many_rows(error: InvalidInput, rows: int) -> InvalidInput:
    if not any(issue.rule == "too-many-rows" for issue in error.issues):
        return error
    hint = Issue(
        "information",
        "informational",
        f"the page converts at most {rows} rows (FMS_FHIR_PAGE_MAX_ROWS); convert larger "
        "sheets with `fms-fhir convert-sheet` or POST /$convert-sheet?format=ndjson",
        None,
        "use-the-api",
    )
    return InvalidInput([*error.issues, hint], error.status)


def _keep(
    sheet: SheetRequest,
    layout: str,
    rows: int,
    extra: dict[str, Any] | None = None,
    files: dict[str, bytes] | None = None,
) -> Stored:
    """Converts the sheet into a new kept result (its output, zip and the files given)."""
    settings = state().settings
    store = page_store()
    options = store.options
    store.sweep()
    identifier, staging = store.begin()
    try:
        try:
            report = api.convert_sheet(sheet, ToFolder(staging / OUT), settings).report
        except InvalidInput as error:
            raise _too_many_rows(error, rows) from None
        for file, data in (files or {}).items():
            (staging / file).write_bytes(data)
        patients, note = _patients(staging / OUT, settings)
        name = sheet.name
        zip_name = _zip_name(name, layout)
        zip_bytes = 0
        if report.rows_converted:
            folder = zip_name.removesuffix(".zip")
            zip_bytes = _write_zip(staging, folder, report.to_outcome())
        size = store.size_of(staging)
        if size > options.max_bytes:
            message = (
                f"the converted output ({_bytes_text(size)}) is larger than the page keeps "
                f"({_bytes_text(options.max_bytes)}, FMS_FHIR_PAGE_MAX_MB); convert it with "
                "`fms-fhir convert-sheet` or POST /$convert-sheet"
            )
            raise InvalidInput([Issue("error", "too-long", message, None, "too-large")], 413)
        rejected, rejected_total = _listed(report.rejected)
        partial, _ = _listed(
            [RowIssues(e.row, tuple(i for i in e.issues if i.is_error)) for e in report.partial]
        )
        warnings, _ = _listed(report.warnings)
        meta = {
            "kind": RESULT,
            "file": name,
            "format": layout,
            "bundle_type": sheet.options.bundle_type,
            "patient_system": sheet.options.patient_system or None,
            "counts": report.counts(),
            "resources": dict(sorted(report.resources.items())),
            "rejected": rejected,
            "rejected_total": rejected_total,
            "partial": partial,
            "warnings": warnings,
            "warnings_total": report.warnings_total,
            "patients": patients,
            "reports_note": note,
            "zip_name": zip_name,
            "zip_bytes": zip_bytes,
            **(extra or {}),
        }
        return store.commit(identifier, staging, meta)
    except BaseException:
        store.abort(staging)
        raise


def _see(path: str) -> Response:
    """Post/Redirect/Get: the browser shows the answer at its own address, so Back and reload
    never post again."""
    response = redirect(f"{_base()}{path}", 303)
    response.headers["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]  # flask.redirect makes the app's Response class


def _does_not_fit(error: InvalidInput) -> bool:
    return any(issue.rule in DOES_NOT_FIT for issue in error.issues)


def upload() -> Response:
    """The form of `GET /`, read as `$convert-sheet` reads it (the same fields, the same
    request, the same conversion); the output goes to the page's store. A browser's sheet whose
    header does not fit goes to the mapping step instead."""
    settings = state().settings
    options = page_store().options
    given = read_upload(settings)
    layout = requested_format() or "transaction"
    rows = min(settings.max_sheet_rows, options.max_rows)
    sheet = sheet_request(given, layout, rows)
    try:
        stored = _keep(sheet, layout, rows)
    except InvalidInput as error:
        if _wants_html() and _does_not_fit(error):
            return _to_mapping(given, sheet, _problems(error)[1])
        raise
    if _wants_html():
        return _see(f"/results/{stored.id}")
    return _result_page(stored)


def _to_mapping(given: Upload, sheet: SheetRequest, reasons: list[str]) -> Response:
    """Keeps the upload as it came (a sheet the suggestion can read) and sends the browser to
    its mapping step."""
    given.stream.seek(0)
    data = given.stream.read()
    suggestion = suggest_for(io.BytesIO(data), sheet.name)  # unreadable: the form says so
    store = page_store()
    store.sweep()
    identifier, staging = store.begin()
    try:
        (staging / SHEET).write_bytes(data)
        meta = {
            "kind": MAPPING,
            "file": sheet.name,
            "format": sheet.options.format,
            "bundle_type": sheet.options.bundle_type,
            "patient_system": sheet.options.patient_system or None,
            "reasons": reasons[:20],
            "contract_given": sheet.contract is not None,
            "suggestion": suggestion_to_json(suggestion),
        }
        stored = store.commit(identifier, staging, meta)
    except BaseException:
        store.abort(staging)
        raise
    return _see(f"/mappings/{stored.id}")


# --- the mapping step ----------------------------------------------------------------------------


def _suggestion(stored: Stored, worksheet: str | None) -> Suggestion:
    """The suggestion kept with the upload; for another worksheet, suggested then kept too
    (suggesting reads the sheet again, which takes a moment for a wide one)."""
    kept = stored.meta.get("suggestion")
    if kept and worksheet in (None, kept.get("worksheet")):
        try:
            return suggestion_from_json(kept)
        except ValueError:
            pass
    digest = hashlib.sha256((worksheet or "").encode()).hexdigest()[:16]
    cached = stored.folder / f"suggestion-{digest}.json"
    try:
        return suggestion_from_json(json.loads(cached.read_bytes()))
    except (OSError, ValueError):
        pass
    try:
        with open(stored.sheet, "rb") as stream:
            suggestion = suggest_for(stream, stored.meta["file"], worksheet)
    except OSError:
        raise _gone() from None
    partial = cached.with_suffix(f".{secrets.token_hex(4)}.partial")
    try:
        partial.write_bytes(json.dumps(suggestion_to_json(suggestion)).encode())
        partial.replace(cached)
    except OSError:
        partial.unlink(missing_ok=True)  # removed meanwhile: the next request says so
    return suggestion


def _first_choices(suggestion: Suggestion) -> Choices:
    """The form as the suggestion fills it."""
    formats = suggestion.date_formats
    return Choices({}, formats[0] if formats else "", suggestion.decimal_comma)


def _mapping_page(
    stored: Stored,
    suggestion: Suggestion,
    choices: Choices,
    status: int = 200,
    problems: Iterable[str] = (),
    invalid: Iterable[str] = (),
    shown: Preview | None = None,
) -> Response:
    meta = stored.meta
    listed = list(problems)
    body = render(
        "mapping",
        title=("Error: " if listed else "") + f"Match the columns of {meta['file']}",
        base=_base(),
        id=stored.id,
        file=meta["file"],
        rows=rows(suggestion, choices.columns),
        groups=choice_groups(),
        labels=choice_labels(),
        worksheets=suggestion.worksheets,
        worksheet=suggestion.worksheet,
        header_row=suggestion.header_row,
        header_rows=suggestion.header_rows,
        notes=suggestion.notes,
        reasons=meta.get("reasons", []),
        contract_given=meta.get("contract_given", False),
        date_format=choices.date_format,
        decimal_comma=choices.decimal_comma,
        problems=listed,
        problem_title="These choices cannot be used yet",
        invalid=set(invalid),
        preview=shown,
    )
    return _html(body, status)


def _mapping_again(stored: Stored, status: int, problems: list[str]) -> Response:
    """The mapping page with the problems of a post that could not be read (the suggestion's
    choices, since the post's are not)."""
    try:
        suggestion = _suggestion(stored, None)
    except (FmsError, HTTPException):
        body = render(
            "error", title="Not converted", heading="Not converted", base=_base(), problems=problems
        )
        return _html(body, status)
    return _mapping_page(stored, suggestion, _first_choices(suggestion), status, problems)


def mapping(id: str) -> Response:  # noqa: A002
    stored = _stored(id, MAPPING)
    suggestion = _suggestion(stored, request.args.get("worksheet") or None)
    return _mapping_page(stored, suggestion, _first_choices(suggestion))


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)[:60].strip("._") or "sheet"


def mapping_post(id: str) -> Response:  # noqa: A002
    """Preview, Convert or the contract, from the choices of the mapping page."""
    stored = _stored(id, MAPPING)
    meta = stored.meta
    form = request.form
    action = form.get("action") or "preview"
    if action not in ACTIONS:
        message = f"action is one of {', '.join(ACTIONS)}, not {action[:40]!r}"
        raise InvalidInput([Issue("error", "value", message, "action", "invalid-value")], 400)
    suggestion = _suggestion(stored, form.get("worksheet") or None)
    choices = read_choices(form, suggestion)
    wrong = check_choices(suggestion, choices)
    if wrong:
        return _mapping_page(
            stored,
            suggestion,
            choices,
            422,
            [issue.message for issue in wrong],
            [issue.expression for issue in wrong if issue.expression],
        )
    text = contract_yaml(
        contract_data(suggestion, choices, meta.get("patient_system")), meta["file"]
    )
    contract_name = f"{_stem(meta['file'])}-contract.yaml"
    if action == "contract":
        return _attachment(text.encode(), YAML_TYPE, contract_name)
    settings = state().settings
    rows_ = min(settings.max_sheet_rows, page_store().options.max_rows)
    options = SheetOptions(
        format=meta["format"],
        bundle_type=meta["bundle_type"],
        patient_system=meta.get("patient_system"),
        max_rows=rows_,
    )
    try:
        with open(stored.sheet, "rb") as stream:
            sheet = SheetRequest(
                stream,
                meta["file"],
                ContractFile(text.encode(), contract_name),
                options,
                WEB_PLACES,
            )
            if action == "preview":
                shown = preview(sheet, settings)
                return _mapping_page(stored, suggestion, choices, shown=shown)
            result = _keep(
                sheet,
                meta["format"],
                rows_,
                {"contract": contract_name, "mapping": stored.id},
                {CONTRACT: text.encode()},
            )
    except OSError:
        raise _gone() from None
    except InvalidInput as error:
        if error.status in (404, 413):
            raise
        status, problems = _problems(error)
        return _mapping_page(stored, suggestion, choices, status, problems)
    if _wants_html():
        return _see(f"/results/{result.id}")
    return _result_page(result)


def _attachment(data: bytes, media_type: str, name: str) -> Response:
    response = send_file(
        io.BytesIO(data), mimetype=media_type, as_attachment=True, download_name=name, max_age=0
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def template() -> Response:
    from adapter.sheets.template import write_template

    return _attachment(write_template(".xlsx"), XLSX_TYPE, "fms-fhir-template.xlsx")


HELP_EXAMPLE = """sheet: Visiten                 # the worksheet (or its position: 2)
header: {row: 3, rows: 2}      # "FIQR" merged over its columns in row 3, their headers in row 4
patient: {column: Pat.-Nr.}
visit_date: {column: Datum, formats: ['%d.%m.%Y']}
ldn_dose: {column: LDN}        # cells such as "4,5 mg"
decimal_comma: true
columns:
  FIQR Schmerz: fiqr-s1
  FIQR Energie: fiqr-s2
  Schmerz max: pain-max
  PHQ-4 nervös: phq4-nervous
  Kopfschmerz:                 # the column's own words
    to: sss-headache
    values: {ja: true, nein: false}
"""


def contract_help() -> Response:
    body = render("help", title="Sheet contracts", base=_base(), example=HELP_EXAMPLE.rstrip("\n"))
    return _html(body)


# --- the kept result -----------------------------------------------------------------------------


def _result_page(stored: Stored) -> Response:
    meta = stored.meta
    labels = {value: label for value, label, _ in FORMAT_CHOICES}
    expires = datetime.fromtimestamp(stored.expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    resources = ", ".join(f"{n} {kind}" for kind, n in meta["resources"].items())
    body = render(
        "result",
        title=f"Converted: {meta['file']}",
        base=_base(),
        id=stored.id,
        meta=meta,
        patients=meta["patients"],
        format_label=labels.get(meta["format"], meta["format"]),
        expires=expires,
        resources=resources,
        zip_size=_bytes_text(int(meta["zip_bytes"])),
        contents=_contents(meta["format"]),
    )
    response = _html(body)
    response.headers["Content-Location"] = f"{_base()}/results/{stored.id}"
    return response


def _contents(layout: str) -> Any:
    from markupsafe import Markup

    return Markup(CONTENTS.get(layout, ""))  # noqa: S704 - constant text of this module


def result(id: str) -> Response:  # noqa: A002
    return _result_page(_stored(id))


def download(id: str) -> Response:  # noqa: A002
    stored = _stored(id)
    try:
        handle = open(stored.zip, "rb")  # noqa: SIM115 - send_file closes it
    except OSError:
        raise _gone() from None
    response = send_file(
        handle,
        mimetype=ZIP_TYPE,
        as_attachment=True,
        download_name=stored.meta["zip_name"],
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def contract(id: str) -> Response:  # noqa: A002
    stored = _stored(id)
    name = stored.meta.get("contract")
    try:
        data = stored.contract.read_bytes() if name else None
    except OSError:
        data = None
    if data is None or not name:
        message = "this result was converted without the mapping step: it has no contract here"
        raise InvalidInput([Issue("error", "not-found", message, None, "no-contract")], 404)
    return _attachment(data, YAML_TYPE, str(name))


def patient_report(id: str, number: str) -> Response:  # noqa: A002
    stored = _stored(id)
    patients = stored.meta["patients"]
    # ASCII digits only: str.isdigit() also takes '²' (int() refuses it) and '١' (an Arabic-Indic
    # one, a second address for a patient); and a bounded length (int() refuses 4,300 digits)
    if not PATIENT_NUMBER.fullmatch(number) or not 1 <= int(number) <= len(patients):
        message = f"no patient {number[:20]!r} in this result; it has {len(patients)}"
        raise InvalidInput([Issue("error", "not-found", message, None, "unknown-patient")], 404)
    settings = state().settings
    patient = patients[int(number) - 1]
    try:
        resources = load_resources(stored.out, settings)
        report = one_patient(follow_up(resources, settings, patient["key"]))
        page = report_html(report, index_href=f"{_base()}/results/{stored.id}")
    except (InvalidInput, OSError):
        if page_store().get(id) is None:  # removed while reading
            raise _gone() from None
        raise
    return _html(page, policy=REPORT_POLICY)


# --- the registry --------------------------------------------------------------------------------

ID = Param(
    "id",
    "The result's id, as the result page gives it",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$"},
    "path",
    True,
)
# The same multipart form as POST /$convert-sheet.
UPLOAD_BODY = {MULTIPART_TYPE: ref("SheetUpload")}
PAGE = "The page for people (HTML); not a FHIR interaction"
OPERATIONS = (
    Operation(
        name="page",
        method="GET",
        path="/",
        view=_for_people(form),
        summary="The page: a form to upload a sheet and an optional contract",
        description=PAGE + ". No script, nothing loaded from elsewhere.",
        interaction="system",
        produces=(HTML_TYPE,),
        fhir=False,
    ),
    Operation(
        name="page-upload",
        method="POST",
        path="/",
        view=_for_people(upload),
        summary="The page: convert the uploaded sheet and show the row report",
        description=(
            PAGE + ". The form of `GET /`, the same multipart form as `POST /$convert-sheet` "
            "(`file`, optional `contract`, `format`, `bundle-type`, `patient-system`), converted "
            "the same way. The result is kept on the server (FMS_FHIR_PAGE_TTL_MINUTES) at "
            "the address in Content-Location. A browser (an Accept that names text/html) is "
            "sent there instead (303 See Other), and gets its errors as a page."
        ),
        interaction="system",
        consumes=UPLOAD_BODY,
        produces=(HTML_TYPE,),
        errors=(400, 413, 415, 422),
        fhir=False,
        response_headers={
            "Content-Location": {
                "description": "The result page's address",
                "schema": {"type": "string"},
            }
        },
    ),
    Operation(
        name="page-result",
        method="GET",
        path="/results/{id}",
        view=_for_people(result),
        summary="The page: a kept conversion's row report, download and patients",
        description=PAGE + ". 404 once the result has expired.",
        interaction="system",
        produces=(HTML_TYPE,),
        params=(ID,),
        errors=(404,),
        fhir=False,
    ),
    Operation(
        name="page-download",
        method="GET",
        path="/results/{id}/fhir.zip",
        view=_for_people(download),
        summary="The page: a kept conversion's FHIR (Bundles or NDJSON files) and row report",
        interaction="system",
        produces=(ZIP_TYPE,),
        params=(ID,),
        errors=(404,),
        fhir=False,
    ),
    Operation(
        name="page-patient-report",
        method="GET",
        path="/results/{id}/patients/{number}",
        view=_for_people(patient_report),
        summary="The page: the follow-up report of a patient of a kept conversion",
        interaction="system",
        produces=(HTML_TYPE,),
        params=(
            ID,
            Param(
                "number",
                "The patient's number in the result page's list (1, 2, ...)",
                {"type": "integer", "minimum": 1},
                "path",
                True,
            ),
        ),
        errors=(404,),
        fhir=False,
    ),
    Operation(
        name="page-contract",
        method="GET",
        path="/results/{id}/contract.yaml",
        view=_for_people(contract),
        summary="The page: the contract a conversion from the mapping step was made with",
        description=PAGE + ". YAML in the documented contract format; 404 for a conversion "
        "that did not go through the mapping step.",
        interaction="system",
        produces=(YAML_TYPE,),
        params=(ID,),
        errors=(404,),
        fhir=False,
    ),
    Operation(
        name="page-mapping",
        method="GET",
        path="/mappings/{id}",
        view=_for_people(mapping),
        summary="The page: match the columns of a sheet whose headers do not fit",
        description=(
            PAGE + ". Each column of the uploaded sheet, a few of its values and the item it "
            "seems to hold (the suggestion of `fms-fhir contract suggest`), to change with "
            "plain selects. 404 once the upload has expired."
        ),
        interaction="system",
        produces=(HTML_TYPE,),
        params=(
            ID,
            Param("worksheet", "Read this worksheet of the workbook instead of the best match"),
        ),
        errors=(404, 422),
        fhir=False,
    ),
    Operation(
        name="page-mapping-post",
        method="POST",
        path="/mappings/{id}",
        view=_for_people(mapping_post),
        summary="The page: preview, convert, or download the contract of the columns matched",
        description=(
            PAGE + ". The form of the mapping page: `column-<n>` (what column n holds: an item "
            "id, a score code, `$patient`, `$visit_date`, `$ldn_dose` or `ignore`), "
            "`date-format`, `decimal-comma`, `worksheet`, and `action`: `preview` (the first "
            "rows as they will be converted), `convert` (the conversion with the contract the "
            "choices make: a browser is sent to its result) or `contract` (that contract, YAML)."
        ),
        interaction="system",
        consumes={FORM_TYPE: {"type": "object", "additionalProperties": {"type": "string"}}},
        produces=(HTML_TYPE, YAML_TYPE),
        params=(ID,),
        errors=(400, 404, 413, 415, 422),
        fhir=False,
    ),
    Operation(
        name="page-template",
        method="GET",
        path="/template.xlsx",
        view=_for_people(template),
        summary="The page: the canonical sheet template (XLSX, its columns explained)",
        interaction="system",
        produces=(XLSX_TYPE,),
        fhir=False,
    ),
    Operation(
        name="page-contract-help",
        method="GET",
        path="/help/contract",
        view=_for_people(contract_help),
        summary="The page: what a sheet contract is, with an example",
        interaction="system",
        produces=(HTML_TYPE,),
        fhir=False,
    ),
)
