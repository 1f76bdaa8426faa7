"""The `fms-fhir` command: reads files and standard input, calls the core API, writes results.

Exit statuses (one table, from the error taxonomy in `adapter.outcome`): 0 done; 1 the input is
unusable (an OperationOutcome on standard output, nothing written); 2 a usage error; 3 a sheet
converted but some rows were rejected; 4 the output cannot go where asked; 5 our own fault.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from adapter import api, jsonio, outputs, registry
from adapter.bundle import BUNDLE_TYPES, BundleType, Format
from adapter.config import Config, ConfigError, from_environ, unknown_variables
from adapter.model import Issue
from adapter.outcome import FmsError, InvalidInput, operation_outcome
from adapter.settings import Settings


class _BadConfiguration(click.ClickException):
    """A bad FMS_FHIR_* value: exit 2 (a usage error) with the message, no traceback."""

    exit_code = 2


def _build_config() -> Config:
    """The one configuration of this run, from the environment, at the group's start."""
    try:
        built = from_environ(os.environ)
    except ConfigError as error:
        raise _BadConfiguration(f"configuration: {error}") from None
    for warning in unknown_variables(os.environ):
        click.echo(f"warning: {warning}", err=True)
    return built


def _config() -> Config:
    """The value the group built (every subcommand shares it)."""
    found = click.get_current_context().find_object(Config)
    return found if found is not None else _build_config()


def _settings() -> Settings:
    return _config().settings


def _fail(error: FmsError, settings: Settings) -> NoReturn:
    """An OperationOutcome on standard output, the error's exit status, nothing written."""
    sys.stdout.buffer.write(jsonio.dumps(operation_outcome(error.issues, settings)))
    sys.exit(error.exit_code)


def _read_bytes(path: str, limit: int) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as error:
        message = f"cannot read {path}: {error.strerror}"
        raise InvalidInput(
            [Issue("fatal", "not-found", message, None, "unreadable-file")], status=400
        ) from None
    if len(data) > limit:
        raise jsonio.too_large(path, limit)
    return data


def _open_input(path: str) -> IO[bytes]:
    """A sheet opened for reading, or InvalidInput (exit 1) naming it."""
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
    except OSError as error:
        message = f"cannot read {path}: {error.strerror}"
        raise InvalidInput(
            [Issue("fatal", "not-found", message, None, "unreadable-file")], 400
        ) from None


def _read_json(path: str, settings: Settings, limit: int | None = None) -> Any:
    limit = limit or settings.max_input_bytes
    return api.read_json(_read_bytes(path, limit), settings, path, limit)


def _warn(issues: list[Issue]) -> None:
    for issue in issues:
        place = f" at {issue.expression}" if issue.expression else ""
        click.echo(f"{issue.severity}{place}: {issue.message}", err=True)


def _emit(resource: Any, out: str | None, inputs: tuple[str, ...] = ()) -> None:
    data = jsonio.dumps(resource)
    if out is not None:
        outputs.write_file(out, data, inputs)
    else:
        sys.stdout.buffer.write(data)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM ends the command like an interrupt: staging folders and partial files are removed
    by the code that made them before the process exits."""
    raise SystemExit(128 + signum)


BUNDLE_TYPE_OPTION = click.option(
    "--bundle-type",
    type=click.Choice(BUNDLE_TYPES),
    default="transaction",
    show_default=True,
    help="transaction (all or nothing) or batch (for servers that cap transaction size).",
)


def _cores_for_zero(context: click.Context, parameter: click.Parameter, jobs: int) -> int:
    from adapter.sheets.parallel import usable_cores  # here: the pool is not every command's

    return jobs or usable_cores()


def jobs_option(what: str) -> Any:
    """`--jobs N` (0: one process per usable core, resolved here); `what` says what N does."""
    return click.option(
        "--jobs",
        type=click.IntRange(min=0),
        default=1,
        show_default=True,
        metavar="N",
        callback=_cores_for_zero,
        help=f"{what} 0: one per usable core.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fms-fhir")
@click.pass_context
def main(context: click.Context) -> None:
    """FHIR R4 adapter for fibromyalgia care: instruments, scores, LDN regimens, spreadsheets.

    Configuration: the FMS_FHIR_* variables, read once at the start (docs/configuration.md).
    """
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    context.obj = _build_config()


@main.command()
@click.argument("instrument_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Write every Questionnaire and the CodeSystem.")
@click.option("--out", help="Folder for --all (DIR/<id>.json).")
def questionnaire(instrument_id: str | None, all_: bool, out: str | None) -> None:
    """Print the Questionnaire INSTRUMENT_ID, or write them all with --all --out DIR."""
    settings = _settings()
    if all_:
        if not out:
            raise click.UsageError("--all needs --out DIR")
        resources = [*api.questionnaires(settings), *api.codesystems(settings)]
        try:
            if Path(out).exists() and not Path(out).is_dir():
                raise outputs.conflict(f"{out} exists and is not a folder")
            outputs.write_files(
                (Path(out) / f"{resource['id']}.json", jsonio.dumps(resource))
                for resource in resources
            )
        except FmsError as error:
            _fail(error, settings)
        click.echo(
            f"wrote {len(registry.instruments())} Questionnaires and the CodeSystem to {out}",
            err=True,
        )
        return
    if not instrument_id:
        raise click.UsageError("name an instrument id, or use --all --out DIR")
    try:
        _emit(api.questionnaire(instrument_id, settings), out=None)
    except FmsError as error:
        _fail(error, settings)


@main.command()
@click.argument("answers", metavar="ANSWERS.json")
@click.option(
    "--out",
    help="Write the Bundle here (default: standard output).",
)
@click.option("--table", is_flag=True, help="Also print a table of the scores on standard error.")
@click.option(
    "--regimen",
    "regimen_path",
    metavar="REGIMEN.json",
    help="Add this LDN regimen's MedicationStatement to the same Bundle.",
)
@BUNDLE_TYPE_OPTION
def convert(
    answers: str, out: str | None, table: bool, regimen_path: str | None, bundle_type: BundleType
) -> None:
    """Answers document(s) -> transaction Bundle (QuestionnaireResponse + score Observations)."""
    from adapter.summary import format_table, score_rows

    settings = _settings()
    try:
        regimen_document = _read_json(regimen_path, settings) if regimen_path else None
        result = api.convert(
            _read_json(answers, settings),
            settings,
            bundle_type,
            regimen_document,
        )
    except FmsError as error:
        _fail(error, settings)
    _warn(result.warnings)
    try:
        _emit(result.bundle, out, (answers, regimen_path or ""))
    except FmsError as error:
        _fail(error, settings)
    if table:
        click.echo(format_table(score_rows(result.converted)), err=True)
    if out:
        click.echo(f"wrote {len(result.bundle['entry'])} resources to {out}", err=True)


QUESTIONNAIRE_OPTION = click.option(
    "--questionnaire",
    "questionnaire_id",
    metavar="ID",
    help="Use this instrument's Questionnaire (needed when QR.questionnaire is empty).",
)


@main.command()
@click.argument("response_path", metavar="QR.json")
@QUESTIONNAIRE_OPTION
def validate(response_path: str, questionnaire_id: str | None) -> None:
    """Check a QuestionnaireResponse against its Questionnaire; print an OperationOutcome.

    Exit 0 when it holds no error (warnings and information do not fail it), 1 when it does.
    """
    settings = _settings()
    try:
        resource = _read_json(response_path, settings, settings.max_response_bytes)
    except FmsError as error:
        _fail(error, settings)
    issues = api.validate(resource, settings, questionnaire_id).issues
    sys.stdout.buffer.write(jsonio.dumps(operation_outcome(issues, settings)))
    sys.exit(1 if any(issue.is_error for issue in issues) else 0)


@main.command()
@click.argument("response_path", metavar="QR.json")
@QUESTIONNAIRE_OPTION
@click.option(
    "--out",
    help="Write the Bundle here (default: standard output).",
)
@BUNDLE_TYPE_OPTION
def extract(
    response_path: str, questionnaire_id: str | None, out: str | None, bundle_type: BundleType
) -> None:
    """Score a valid QuestionnaireResponse: its Observations as a transaction Bundle."""
    settings = _settings()
    try:
        resource = _read_json(response_path, settings, settings.max_response_bytes)
        result = api.extract(resource, settings, questionnaire_id, bundle_type)
    except FmsError as error:
        _fail(error, settings)
    _warn(result.warnings)
    try:
        _emit(result.bundle, out, (response_path,))
    except FmsError as error:
        _fail(error, settings)


@main.command()
@click.argument("regimen_path", metavar="REGIMEN.json")
@click.option("--out", help="Write here (default: standard output).")
def regimen(regimen_path: str, out: str | None) -> None:
    """LDN regimen (phases or a titration rule) -> MedicationStatement."""
    settings = _settings()
    try:
        result = api.regimen(_read_json(regimen_path, settings), settings)
    except FmsError as error:
        _fail(error, settings)
    _warn(result.warnings)
    try:
        _emit(result.resource, out, (regimen_path,))
    except FmsError as error:
        _fail(error, settings)


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
@click.option("--out", required=True, help="Output folder.")
@click.option(
    "--report",
    "report_path",
    help="Write the JSON row report here.",
)
@click.option(
    "--patient-system",
    metavar="URI",
    help="Identifier system of the patient column (overrides the contract).",
)
@click.option(
    "--test-data",
    metavar="NOTE",
    help="Example or synthetic sheet: tag every resource as test data (HTEST), NOTE saying what is invented.",
)
@click.option(
    "--since",
    "since",
    metavar="PREVIOUS_OUT",
    help=(
        "The --out folder of an earlier run: write only what changed since (new and changed "
        "resources, a withdrawn visit's resources marked entered-in-error)."
    ),
)
@jobs_option("Convert rows in N processes; the output is the same, byte for byte and in order.")
@BUNDLE_TYPE_OPTION
def convert_sheet(
    sheet_path: str,
    contract_path: str | None,
    output_format: Format,
    out: str,
    report_path: str | None,
    patient_system: str | None,
    test_data: str | None,
    since: str | None,
    jobs: int,
    bundle_type: BundleType,
) -> None:
    """Legacy spreadsheet (CSV, XLSX) -> FHIR, every row converted or rejected with its reasons.

    Exit 0 when every row converted, 3 when some rows were rejected (the rest is written),
    1 when the file or the contract cannot be used (nothing written).

    With --since PREVIOUS_OUT, the output holds only what a server needs to catch up with the
    sheet (docs/lifecycle.md); the row report says which rows are new, changed, unchanged and
    which visits were withdrawn.

    With --jobs N, N processes convert the rows and this one reads and writes them, in order.
    """
    from adapter.sheets.request import (
        CLI_PLACES,
        ContractFile,
        SheetOptions,
        SheetRequest,
        ToFolder,
    )

    settings = _settings()
    options = SheetOptions(
        format=output_format,
        bundle_type=bundle_type,
        patient_system=patient_system,
        test_data=test_data,
        since=since,
        jobs=jobs,
    )
    inputs = (sheet_path, contract_path or "", since or "")
    try:
        contract = (
            ContractFile(_read_bytes(contract_path, settings.max_input_bytes), contract_path)
            if contract_path
            else None
        )
        stream = _open_input(sheet_path)
        # The report is checked before converting, and put in place with the output: both or
        # neither (a report that cannot be written leaves the old output where it was).
        report_file = (
            outputs.OutputFile(report_path, inputs, replaced=(out,), role="file for the report")
            if report_path is not None
            else None
        )
        with stream:
            request = SheetRequest(stream, Path(sheet_path).name, contract, options, CLI_PLACES)
            sources = tuple(source for source in inputs if source)
            folder = ToFolder(out, sources, hold=report_file is not None)
            result = api.convert_sheet(request, folder, settings, _progress_bar())
        report = result.report
        if report_file is not None and result.held is not None:
            try:
                report_file.stage(jsonio.dumps(report.to_json()))
                outputs.commit(result.held, report_file)
            except BaseException:
                result.held.abort()
                raise
    except FmsError as error:
        _fail(error, settings)
    finally:
        if sys.stderr.isatty():
            click.echo("\r\033[K", nl=False, err=True)
    click.echo(report.summary(), err=True)
    click.echo(f"wrote {output_format} output to {out}", err=True)
    sys.exit(3 if report.rows_rejected or report.rows_partial else 0)


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
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """The HTTP service, on Flask's development server (production: gunicorn -c gunicorn.conf.py)."""
    import logging

    from adapter.web import create_app

    try:
        app = create_app(_config())
    except ConfigError as error:  # the page's folder, checked when the app is built
        raise _BadConfiguration(f"configuration: {error}") from None
    # The development server logs whole URLs; the service logs one line per request itself.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    click.echo(f"fms-fhir serving on http://{host}:{port}/ (development server)", err=True)
    app.run(host=host, port=port)


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--patient", metavar="ID", help="One patient (default: every patient, with an index page)."
)
@click.option(
    "--baseline",
    metavar="YYYY-MM-DD",
    help="Compare with the values of this date (default: the last before LDN started).",
)
@click.option("--out", required=True, help="Output folder (HTML, SVG charts, changes).")
@click.option(
    "--png/--no-png",
    default=False,
    show_default=True,
    help="Also write each patient's charts as PNG (for documents and slides; the page and the "
    "SVG show the same charts); a patient takes about 14 times as long with it.",
)
@jobs_option("Draw N patients at once in N processes; the same files.")
def report(
    input_path: str, patient: str | None, baseline: str | None, out: str, png: bool, jobs: int
) -> None:
    """Follow-up report: each score over time, change from baseline, responders, LDN doses.

    INPUT: a Bundle, a folder of Bundles or NDJSON, as convert and convert-sheet write them.
    """
    from adapter.report import load_resources, write_reports

    settings = _settings()
    try:
        resources = load_resources(input_path, settings)
        written = write_reports(
            resources, out, settings, patient, baseline, (input_path,), jobs, png=png
        )
    except FmsError as error:
        _fail(error, settings)
    click.echo(f"wrote {len(written)} files to {out}", err=True)


@main.group()
def contract() -> None:
    """Sheet contracts: a draft from a sheet (docs/contracts.md)."""


@contract.command("suggest")
@click.argument("sheet_path", metavar="SHEET")
@click.option(
    "--sheet", "worksheet", metavar="NAME", help="The worksheet (default: the one that maps best)."
)
@click.option(
    "--out", metavar="CONTRACT.yaml", help="Write the draft here (default: standard output)."
)
def contract_suggest(sheet_path: str, worksheet: str | None, out: str | None) -> None:
    """A draft contract for SHEET from its headers and a sample of its values.

    Each mapped column has a comment with its confidence and runner-up; columns it could not
    map are listed (on standard error too), never guessed. Exit 0 with the draft even when
    some columns are unmapped; 1 when the sheet cannot be read.
    """
    from adapter.sheets.suggest import suggest_contract

    settings = _settings()
    try:
        stream = _open_input(sheet_path)
        with stream:
            suggestion = suggest_contract(stream, Path(sheet_path).name, worksheet)
        draft = suggestion.to_yaml().encode()
        for line in suggestion.lines():
            click.echo(line, err=True)
        if out is not None:
            outputs.write_file(out, draft, (sheet_path,), role="file for the contract")
            click.echo(f"wrote the draft contract to {out}", err=True)
        else:
            sys.stdout.buffer.write(draft)
    except FmsError as error:
        _fail(error, settings)


@main.command()
@click.option("--out", required=True, help="FILE.xlsx or FILE.csv")
def template(out: str) -> None:
    """Write the canonical sheet template (XLSX: with a second sheet explaining each column)."""
    from adapter.sheets.template import write_template

    if Path(out).suffix.lower() not in (".xlsx", ".csv"):
        raise click.UsageError("--out must end in .xlsx or .csv")
    settings = _settings()
    try:
        outputs.write_file(out, write_template(Path(out).suffix.lower()))
    except FmsError as error:
        _fail(error, settings)
    click.echo(f"wrote the template to {out}", err=True)


@main.command()
@click.option(
    "--out", required=True, help="Output folder (DIR/package/ and DIR/<name>-<version>.tgz)."
)
def package(out: str) -> None:
    """Write the library as a FHIR NPM package: Questionnaires, CodeSystem, OperationDefinitions.

    DIR/package/ holds package.json, .index.json and one file per resource; the .tgz beside it is
    the same folder packed, byte-identical from run to run, for `fhir install`, SUSHI or the IG
    Publisher (FMS_FHIR_CANONICAL_BASE sets the canonical urls).
    """
    from adapter.package import PACKAGE_NAME, write_package

    settings = _settings()
    try:
        written = write_package(out, settings)
    except FmsError as error:
        _fail(error, settings)
    click.echo(f"wrote {PACKAGE_NAME} to {written} and {Path(out) / 'package'}", err=True)


if __name__ == "__main__":
    main()
