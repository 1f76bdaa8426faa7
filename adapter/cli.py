"""The `fms-fhir` command. I/O lives here; every decision is the core's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from adapter import config, jsonio, registry
from adapter.outcome import InvalidInput, Issue, operation_outcome


def _fail(issues: list[Issue]) -> None:
    """Invalid input: an OperationOutcome on standard output, exit status 1, nothing written."""
    sys.stdout.buffer.write(jsonio.dumps(operation_outcome(issues)))
    sys.exit(1)


MAX_INPUT_BYTES = 64 * 1024 * 1024


def _read_json(path: str, limit: int = MAX_INPUT_BYTES) -> Any:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as error:
        raise InvalidInput(
            [
                Issue(
                    "fatal",
                    "not-found",
                    f"cannot read {path}: {error.strerror}",
                    None,
                    "unreadable-file",
                )
            ],
            status=400,
        ) from None
    if len(data) > limit:
        message = f"{path} is larger than {limit // (1024 * 1024)} MiB"
        raise InvalidInput([Issue("error", "too-long", message, None, "too-large")], status=413)
    return jsonio.loads(data, path)


def _warn(issues: list[Issue]) -> None:
    for issue in issues:
        place = f" at {issue.expression}" if issue.expression else ""
        click.echo(f"{issue.severity}{place}: {issue.message}", err=True)


def _emit(resource: Any, out: str | None) -> None:
    data = jsonio.dumps(resource)
    if out:
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fms-fhir")
def main() -> None:
    """FHIR R4 adapter for fibromyalgia care: instruments, scores, LDN regimens, spreadsheets."""


@main.command()
@click.argument("instrument_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Write every Questionnaire and the CodeSystem.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for --all (DIR/<id>.json).")
def questionnaire(instrument_id: str | None, all_: bool, out: str | None) -> None:
    """Print the Questionnaire INSTRUMENT_ID, or write them all with --all --out DIR."""
    from adapter.questionnaire import build_questionnaire
    from adapter.terminology import codesystem

    if all_:
        if not out:
            raise click.UsageError("--all needs --out DIR")
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for instrument in registry.instruments().values():
            (folder / f"{instrument.id}.json").write_bytes(
                jsonio.dumps(build_questionnaire(instrument))
            )
        resource = codesystem()
        (folder / f"{resource['id']}.json").write_bytes(jsonio.dumps(resource))
        click.echo(
            f"wrote {len(registry.instruments())} Questionnaires and the CodeSystem to {folder}",
            err=True,
        )
        return
    if not instrument_id:
        raise click.UsageError("name an instrument id, or use --all --out DIR")
    instrument = registry.get(instrument_id)
    if instrument is None:
        known = ", ".join(registry.instruments())
        _fail(
            [
                Issue(
                    "error",
                    "not-found",
                    f"unknown instrument {instrument_id!r}; known: {known}",
                    None,
                    "unknown-instrument",
                )
            ]
        )
        return
    _emit(build_questionnaire(instrument), out=None)


@main.command()
@click.argument("answers", metavar="ANSWERS.json")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the Bundle here (default: standard output).",
)
@click.option("--table", is_flag=True, help="Also print a table of the scores on standard error.")
@click.option(
    "--regimen",
    "regimen_path",
    metavar="REGIMEN.json",
    help="Add this LDN regimen's MedicationStatement to the same Bundle.",
)
def convert(answers: str, out: str | None, table: bool, regimen_path: str | None) -> None:
    """Answers document(s) -> transaction Bundle (QuestionnaireResponse + score Observations)."""
    from adapter.convert import convert_documents
    from adapter.medication import build_medication_statement, regimen_from_document
    from adapter.summary import format_table, score_rows

    try:
        extra = []
        if regimen_path:
            try:
                regimen, warnings = regimen_from_document(_read_json(regimen_path))
            except InvalidInput as error:
                raise InvalidInput([i.under("regimen") for i in error.issues]) from None
            _warn(warnings)
            extra.append(build_medication_statement(regimen))
        bundle, converted = convert_documents(_read_json(answers), extra)
    except InvalidInput as error:
        _fail(error.issues)
        return
    _emit(bundle, out)
    if table:
        click.echo(format_table(score_rows(converted)), err=True)
    if out:
        click.echo(f"wrote {len(bundle['entry'])} resources to {out}", err=True)


MAX_RESPONSE_BYTES = 8 * 1024 * 1024


QUESTIONNAIRE_OPTION = click.option(
    "--questionnaire",
    "questionnaire_id",
    metavar="ID",
    help="Use this instrument's Questionnaire (needed when QR.questionnaire is empty).",
)


def _validated(path: str, questionnaire_id: str | None) -> Any:
    from adapter.validation import validate_response

    try:
        resource = _read_json(path, MAX_RESPONSE_BYTES)
    except InvalidInput as error:
        return None, error.issues, None
    validated = validate_response(resource, questionnaire_id)
    return resource, validated.issues, validated


@main.command()
@click.argument("response_path", metavar="QR.json")
@QUESTIONNAIRE_OPTION
def validate(response_path: str, questionnaire_id: str | None) -> None:
    """Check a QuestionnaireResponse against its Questionnaire; print an OperationOutcome.

    Exit 0 when it holds no error (warnings and information do not fail it), 1 when it does.
    """
    _, issues, _ = _validated(response_path, questionnaire_id)
    sys.stdout.buffer.write(jsonio.dumps(operation_outcome(issues)))
    sys.exit(1 if any(issue.is_error for issue in issues) else 0)


@main.command()
@click.argument("response_path", metavar="QR.json")
@QUESTIONNAIRE_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the Bundle here (default: standard output).",
)
def extract(response_path: str, questionnaire_id: str | None, out: str | None) -> None:
    """Score a valid QuestionnaireResponse: its Observations as a transaction Bundle."""
    from adapter.convert import extract_observations

    resource, issues, validated = _validated(response_path, questionnaire_id)
    if validated is None or not validated.valid:
        _fail(issues)
        return
    _warn([issue for issue in issues if issue.severity == "warning"])
    _emit(extract_observations(resource, validated.response), out)


@main.command()
@click.argument("regimen_path", metavar="REGIMEN.json")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write here (default: standard output)."
)
def regimen(regimen_path: str, out: str | None) -> None:
    """LDN regimen (phases or a titration rule) -> MedicationStatement."""
    from adapter.medication import build_medication_statement, regimen_from_document

    try:
        parsed, warnings = regimen_from_document(_read_json(regimen_path))
    except InvalidInput as error:
        _fail(error.issues)
        return
    _warn(warnings)
    resource = build_medication_statement(parsed)
    if config.strict_mode():
        from adapter.fhir import validate_or_raise

        validate_or_raise(resource)
    _emit(resource, out)


@main.command("convert-sheet")
@click.argument("sheet_path", metavar="FILE")
@click.option(
    "--contract",
    "contract_path",
    metavar="C",
    help="Sheet contract (YAML or JSON); default: the canonical template.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["transaction", "patient", "ndjson"]),
    default="transaction",
    show_default=True,
    help="A transaction Bundle per visit, per patient, or NDJSON files per resource type.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write the JSON row report here.",
)
@click.option(
    "--patient-system",
    metavar="URI",
    help="Identifier system of the patient column (overrides the contract).",
)
def convert_sheet(
    sheet_path: str,
    contract_path: str | None,
    output_format: str,
    out: str,
    report_path: str | None,
    patient_system: str | None,
) -> None:
    """Legacy spreadsheet (CSV, XLSX) -> FHIR, every row converted or rejected with its reasons.

    Exit 0 when every row converted, 3 when some rows were rejected (the rest is written),
    1 when the file or the contract cannot be used (nothing written).
    """
    import dataclasses

    from adapter.sheets.contract import default_contract, load_contract
    from adapter.sheets.output import SINKS
    from adapter.sheets.pipeline import convert_sheet as run

    try:
        contract = load_contract(contract_path) if contract_path else default_contract()
        if patient_system:
            contract = dataclasses.replace(contract, patient_system=patient_system)
        sink = SINKS[output_format](out)
        report = run(sheet_path, contract, sink, output_format, _progress_bar())
    except InvalidInput as error:
        _fail(error.issues)
        return
    finally:
        if sys.stderr.isatty():
            click.echo("\r\033[K", nl=False, err=True)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_bytes(jsonio.dumps(report.to_json()))
    click.echo(report.summary(), err=True)
    click.echo(f"wrote {output_format} output to {out}", err=True)
    sys.exit(3 if report.rows_rejected else 0)


def _progress_bar() -> Any:
    """A bar on standard error, only at a terminal and only once a file takes more than a moment."""
    import time

    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(rows: int, fraction: float | None) -> None:
        elapsed = time.monotonic() - started
        if elapsed < 1.0:
            return
        rate = rows / elapsed
        if fraction is not None:
            filled = int(30 * min(fraction, 1.0))
            bar = "#" * filled + "-" * (30 - filled)
            text = f"[{bar}] {fraction:4.0%}  {rows:,} rows  {rate:,.0f} rows/s"
        else:
            text = f"{rows:,} rows  {rate:,.0f} rows/s"
        click.echo(f"\r{text}", nl=False, err=True)

    return show


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.xlsx or FILE.csv")
def template(out: str) -> None:
    """Write the canonical sheet template (XLSX: with a second sheet explaining each column)."""
    from adapter.sheets.template import write_template

    if Path(out).suffix.lower() not in (".xlsx", ".csv"):
        raise click.UsageError("--out must end in .xlsx or .csv")
    write_template(out)
    click.echo(f"wrote the template to {out}", err=True)


if __name__ == "__main__":
    main()
