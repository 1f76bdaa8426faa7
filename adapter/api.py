"""The use cases every edge calls: the CLI today, the HTTP service, the page.

Each takes plain values and a `Settings`, returns a result or raises one error of the taxonomy
in `adapter.outcome`. No I/O beyond the streams and sinks handed in; no environment reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from adapter import registry
from adapter.answers import Shared, response_from_document
from adapter.bundle import BundleType, bundle
from adapter.jsonio import loads
from adapter.links import links_for
from adapter.medication import Regimen, build_medication_statement, regimen_from_document
from adapter.model import Issue, Response
from adapter.outcome import InternalFault, InvalidInput
from adapter.resources import (
    Converted,
    iter_resources,
    response_id,
    response_resources,
    score_resources,
)
from adapter.settings import Settings

if TYPE_CHECKING:
    from adapter.outputs import OutputFolder

    # Loaded by the use cases that need them: validation loads the R4B models, the sheet
    # modules openpyxl; a command that converts a CSV starts without either.
    from adapter.sheets.contract import SheetContract
    from adapter.sheets.pipeline import Progress, SheetReport
    from adapter.sheets.request import Destination, SheetRequest
    from adapter.validation import Validated


def read_json(
    data: bytes | str, settings: Settings, what: str = "input", max_bytes: int | None = None
) -> Any:
    """Parse a JSON input within the size and depth limits (400 not JSON, 413 too large)."""
    return loads(data, what, max_bytes or settings.max_input_bytes, settings.max_json_depth)


def checked(resource: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """In strict mode, every emitted resource is validated with the R4B models: a failure is ours."""
    if settings.strict:
        from adapter.fhir import validation_issues

        issues = validation_issues(resource)
        if issues:
            raise InternalFault(issues)
    return resource


# --- answers documents -------------------------------------------------------------------------


MAX_DOCUMENTS = 10_000
"""Answers documents in one `convert` (one Bundle); a sheet is the way for more."""


def parse_documents(payload: Any) -> list[Response]:
    """One answers document or a JSON array of them; every issue of every document is collected."""
    documents = payload if isinstance(payload, list) else [payload]
    if not documents:
        raise InvalidInput(
            [Issue("error", "required", "the array holds no answers document", None, "empty")]
        )
    if len(documents) > MAX_DOCUMENTS:
        message = (
            f"{len(documents)} answers documents in one array; at most {MAX_DOCUMENTS} "
            "(one Bundle): send them in parts, or as a spreadsheet"
        )
        raise InvalidInput([Issue("error", "too-long", message, None, "too-many-documents")], 413)
    responses: list[Response] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    shared: Shared | None = {} if len(documents) > 1 else None
    for index, document in enumerate(documents):
        prefix = f"[{index}]." if isinstance(payload, list) else ""
        try:
            response = response_from_document(document, prefix, shared)
        except InvalidInput as error:
            issues.extend(error.issues)
            continue
        rid = response_id(response)
        if rid in seen:
            message = (
                f"same subject, instrument and authored date as document [{seen[rid]}]; "
                "a visit holds one response per instrument"
            )
            issues.append(
                Issue(
                    "error", "duplicate", message, prefix.rstrip(".") or None, "duplicate-response"
                )
            )
            continue
        seen[rid] = index
        responses.append(response)
    if issues:
        raise InvalidInput(issues)
    return responses


@dataclass(frozen=True)
class ConvertResult:
    bundle: dict[str, Any]
    converted: list[Converted]
    warnings: list[Issue] = field(default_factory=list)


def convert(
    payload: Any,
    settings: Settings,
    bundle_type: BundleType = "transaction",
    regimen: Any = None,
) -> ConvertResult:
    """Answers document(s) -> one Bundle of QuestionnaireResponses and score Observations.

    `regimen`, a regimen document, adds its MedicationStatement to the same Bundle.
    """
    warnings: list[Issue] = []
    extra: list[dict[str, Any]] = []
    if regimen is not None:
        try:
            parsed, found = regimen_from_document(regimen)
        except InvalidInput as error:
            raise InvalidInput([i.under("regimen") for i in error.issues]) from None
        warnings.extend(i.under("regimen") for i in found)
        extra.append(build_medication_statement(parsed, settings))
    links = links_for(bundle_type, settings)
    converted = [response_resources(response, links) for response in parse_documents(payload)]
    result = bundle([*iter_resources(converted), *extra], settings, bundle_type)
    return ConvertResult(checked(result, settings), converted, warnings)


# --- QuestionnaireResponses --------------------------------------------------------------------


def validate(
    resource: Any,
    settings: Settings,
    questionnaire_id: str | None = None,
    base_url: str | None = None,
) -> Validated:
    """Check a parsed QuestionnaireResponse against its Questionnaire; never raises on bad input.

    `questionnaire_id` names the Questionnaire when the response leaves it empty: an instrument
    id, or its canonical url with or without `|version`. Either (and the response's own
    `questionnaire`) may also be `Questionnaire/<id>`, or `<base_url>/Questionnaire/<id>` where
    `base_url` is the service's address as the request reached it (apps name what they read).
    """
    from adapter.validation import validate_response

    return validate_response(resource, settings, questionnaire_id, base_url)


@dataclass(frozen=True)
class ExtractResult:
    bundle: dict[str, Any]
    converted: Converted
    warnings: list[Issue]


SUBJECT_RULES = frozenset({"subject-missing", "subject-not-patient", "subject-invalid"})


def _derived_from(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The incoming response as the scores' source: by its identifier where it has one (the
    server's id for it is unknown to us), else by its id."""
    identifier = resource.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return {"type": "QuestionnaireResponse", "identifier": identifier}
    if resource.get("id"):
        return {"reference": f"QuestionnaireResponse/{resource['id']}"}
    return None


def extract(
    resource: Any,
    settings: Settings,
    questionnaire_id: str | None = None,
    bundle_type: BundleType = "transaction",
    base_url: str | None = None,
) -> ExtractResult:
    """Score Observations of a valid QuestionnaireResponse, as a Bundle.

    The same code path as `convert`: same scores, same deterministic ids. An invalid response,
    or one without a subject (scores need a patient), raises InvalidInput. The Questionnaire is
    named as in `validate`.
    """
    from adapter.validation import validate_response

    validated = validate_response(resource, settings, questionnaire_id, base_url)
    # What R4 lets a response lack, or hold, but scores cannot: a warning in validate, an error here.
    issues = [
        replace(i, severity="error") if i.rule in SUBJECT_RULES else i for i in validated.issues
    ]
    if validated.response is None or any(i.is_error for i in issues):
        raise InvalidInput(issues)
    links = links_for(bundle_type, settings)
    derived_from = _derived_from(resource)
    converted = score_resources(validated.response, links, derived_from)
    result = bundle(converted.resources, settings, bundle_type)
    warnings = [i for i in issues if i.severity == "warning"]
    if derived_from is None:
        message = (
            "the response has neither an id nor an identifier, so the score Observations "
            "cannot name it in derivedFrom; send the response as the server stores it (with "
            "its id), or give it an identifier"
        )
        warnings.append(Issue("warning", "incomplete", message, "id", "no-derived-from"))
    return ExtractResult(checked(result, settings), converted, warnings)


# --- LDN regimen -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimenResult:
    resource: dict[str, Any]
    regimen: Regimen
    warnings: list[Issue]


def regimen(document: Any, settings: Settings) -> RegimenResult:
    """Regimen document -> MedicationStatement (warnings apart), or InvalidInput."""
    parsed, warnings = regimen_from_document(document)
    resource = build_medication_statement(parsed, settings)
    return RegimenResult(checked(resource, settings), parsed, warnings)


# --- definitions -------------------------------------------------------------------------------


def unknown_instrument(instrument_id: str) -> InvalidInput:
    known = ", ".join(registry.instruments())
    message = f"unknown instrument {instrument_id!r}; known: {known}"
    return InvalidInput([Issue("error", "not-found", message, None, "unknown-instrument")], 404)


def questionnaire(instrument_id: str, settings: Settings) -> dict[str, Any]:
    from adapter.questionnaire import build_questionnaire

    instrument = registry.get(instrument_id)
    if instrument is None:
        raise unknown_instrument(instrument_id)
    return build_questionnaire(instrument, settings)


def questionnaires(settings: Settings) -> list[dict[str, Any]]:
    from adapter.questionnaire import build_questionnaire

    return [build_questionnaire(i, settings) for i in registry.instruments().values()]


def codesystems(settings: Settings) -> list[dict[str, Any]]:
    from adapter.terminology import codesystem

    return [codesystem(settings)]


# --- spreadsheets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetResult:
    """The row report, and the Bundles when the destination was memory (else empty)."""

    report: SheetReport
    bundles: list[dict[str, Any]] = field(default_factory=list)
    held: OutputFolder | None = None
    """A folder destination's output, still staged, when the destination asked to hold it."""


def convert_sheet(
    request: SheetRequest,
    destination: Destination,
    settings: Settings,
    progress: Progress | None = None,
) -> SheetResult:
    """A sheet request -> resources into the destination, every row accounted for in the report.

    Every edge calls this with a `SheetRequest` built from its own input: the contract, the
    options, the row limit and the sink are resolved here, the same way for all of them.
    """
    from adapter.sheets.output import FolderSink, MemorySink
    from adapter.sheets.pipeline import convert_sheet as run
    from adapter.sheets.request import bounded, open_since, open_sink, resolve_contract

    contract = resolve_contract(request, settings)
    limited = bounded(request.options, settings)
    since = open_since(request, limited)
    sink = open_sink(destination, request.options, limited)
    jobs = request.options.jobs
    report = run(request.stream, request.name, contract, sink, limited, progress, since, jobs)
    bundles = sink.bundles() if isinstance(sink, MemorySink) else []
    held = sink.output if isinstance(sink, FolderSink) and sink.hold else None
    return SheetResult(report, bundles, held)


def load_contract(data: bytes, name: str, settings: Settings) -> SheetContract:
    from adapter.sheets.contract import contract_from_bytes

    return contract_from_bytes(data, name, settings)


__all__ = [
    "ConvertResult",
    "ExtractResult",
    "RegimenResult",
    "SheetResult",
    "checked",
    "codesystems",
    "convert",
    "convert_sheet",
    "extract",
    "load_contract",
    "parse_documents",
    "questionnaire",
    "questionnaires",
    "read_json",
    "regimen",
    "validate",
]
