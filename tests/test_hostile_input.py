"""Nothing lost, nothing altered, always an answer: one test (or property) per class of fault.

Each test here fails without its fix: values taken for what they are not, user files deleted,
tracebacks and hangs on odd input, memory that grows with a patient's history.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from adapter import api, jsonio
from adapter.cli import main
from adapter.outcome import InvalidInput
from adapter.sheets.contract import default_contract
from adapter.sheets.output import MARKER, SINKS
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from adapter.sheets.values import CellError, parse_date, parse_decimal
from tests.support import SETTINGS, assert_valid_fhir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def outcome_codes(output: str) -> list[str]:
    outcome = json.loads(output[output.index("{") :])
    assert_valid_fhir(outcome)
    return [i["details"]["coding"][0]["code"] for i in outcome["issue"] if "details" in i]


def sheet(path: Path, rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


# --- values taken for what they are not ----------------------------------------------------------


@FAST
@given(st.text(max_size=30) | st.integers() | st.floats(allow_nan=True) | st.decimals())
def test_only_whole_dates_are_dates(raw):
    """A date comes from a date cell, a whole ISO date (or date-time) or a contract format."""
    try:
        found = parse_date(raw, default_contract())
    except CellError:
        return
    assert isinstance(raw, str)
    text = raw.strip()
    assert text[:10] == found and date.fromisoformat(found)
    assert len(text) == 10 or text[10] in "T "


@pytest.mark.parametrize("raw", ["2024", "45336", "2024-01-10garbage", "2024-01-10T", "10.03.2024"])
def test_non_dates_are_not_dates(raw):
    with pytest.raises(CellError):
        parse_date(raw, default_contract())


@FAST
@given(
    st.from_regex(r"-?[0-9]{0,12}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,12})?", fullmatch=True)
    | st.integers()
)
def test_numbers_of_any_size_are_read_exactly_or_refused_at_once(raw):
    started = time.monotonic()
    try:
        value = parse_decimal(raw if isinstance(raw, int) else str(raw), default_contract())
    except CellError:
        value = None
    assert time.monotonic() - started < 0.5
    if value is not None:
        assert value == Decimal(str(raw).strip())


def test_json_numbers_are_exact_and_json_is_strict():
    assert jsonio.loads(b'{"dose_mg": 4.50}')["dose_mg"] == Decimal("4.50")
    for text, rule in [
        (b'{"a": 1, "a": 2}', "duplicate-key"),
        (b"[NaN]", "not-json"),
        (b"[1e400, Infinity]", "not-json"),
        (b"[" * 10000 + b"]" * 10000, "too-deep"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "too-deep"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            jsonio.loads(text)
        assert raised.value.issues[0].rule == rule and raised.value.status == 400


def _document(**changes):
    document = {
        "instrument": "fm2016",
        "subject": {"identifier": {"system": "urn:example:mrn", "value": "P1"}},
        "authored": "2025-04-10",
        "status": "stopped",
        "answers": {"wpi-neck": True, "sss-fatigue": 2},
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"answers": {"wpi-neck": 1}}, "wrong-type"),  # a number is not a boolean
        ({"answers": {"sss-fatigue": True}}, "not-an-option"),  # a boolean is not a score
        ({"answers": {"sss-fatigue": Decimal("2.0")}}, "not-an-option"),
        ({"subject": {"reference": "Patient/1 junk"}}, "invalid-value"),
        ({"subject": {"reference": "Group/1"}}, "invalid-value"),
        ({"subject": {"identifier": {"system": "not a uri", "value": "P1"}}}, "invalid-value"),
        ({"authored": "2025-04-10T10:00:00"}, "invalid-value"),  # a time needs its zone
    ],
)
def test_answers_documents_refuse_what_they_are_not(change, rule):
    with pytest.raises(InvalidInput) as raised:
        api.convert(_document(**change), SETTINGS)
    assert rule in [issue.rule for issue in raised.value.issues]


def test_booleans_are_not_integers_in_regimens():
    regimen = json.loads((EXAMPLES / "ldn-regimen.json").read_text())
    regimen["titration"]["every_days"] = True
    with pytest.raises(InvalidInput) as raised:
        api.regimen(regimen, SETTINGS)
    assert raised.value.issues[0].expression == "titration.every_days"


def test_a_leap_second_gets_the_same_answer_from_convert_and_validate():
    document = _document(authored="2016-12-31T23:59:60Z")
    response = api.convert(document, SETTINGS).bundle["entry"][0]["resource"]
    assert not api.validate(response, SETTINGS).issues or api.validate(response, SETTINGS).valid
    for authored in ("2016-12-31T23:59:61Z", "2025-02-29", "0000-01-01"):
        with pytest.raises(InvalidInput):
            api.convert(_document(authored=authored), SETTINGS)
        assert not api.validate({**response, "authored": authored}, SETTINGS).valid


def _valid_response():
    document = _document(instrument="pain-nrs", answers={"pain-max": 40}, status="completed")
    return api.convert(document, SETTINGS).bundle["entry"][0]["resource"]


def test_an_unknown_modifier_extension_is_an_error_wherever_it_is():
    response = _valid_response()
    response["item"][0]["answer"][0]["modifierExtension"] = [
        {"url": "http://example.org/negated", "valueBoolean": True}
    ]
    result = api.validate(response, SETTINGS)
    assert [(i.rule, i.expression) for i in result.issues] == [
        ("unknown-modifier", "QuestionnaireResponse.item[0].answer[0].modifierExtension")
    ]
    with pytest.raises(InvalidInput):
        api.extract(response, SETTINGS)


@pytest.mark.parametrize(
    ("subject", "rule"),
    [
        ({"reference": "Group/7"}, "subject-not-patient"),
        ({"reference": "Patient/1/_history/2 x"}, "subject-not-patient"),
        ({"identifier": {"system": "MRN", "value": "P1"}}, "subject-invalid"),
        (None, "subject-missing"),
    ],
)
def test_subjects_scores_cannot_use_warn_in_validate_and_fail_in_extract(subject, rule):
    response = _valid_response()
    if subject is None:
        response.pop("subject")
    else:
        response["subject"] = subject
    found = api.validate(response, SETTINGS).issues
    assert [(i.rule, i.severity) for i in found] == [(rule, "warning")]
    with pytest.raises(InvalidInput) as raised:
        api.extract(response, SETTINGS)
    assert [(i.rule, i.severity) for i in raised.value.issues] == [(rule, "error")]


def _walk(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    yield node


def test_no_null_is_written_into_fhir_json():
    document = _document(subject={"identifier": {"system": "urn:x", "value": "P1"}})
    bundle = api.convert(
        document, SETTINGS, regimen=json.loads((EXAMPLES / "ldn-regimen.json").read_text())
    ).bundle
    assert all(node is not None for node in _walk(bundle))


# --- sheets: rows, not files, are rejected; rows numbered as the spreadsheet numbers them ------


def test_one_bad_byte_rejects_its_row_and_rows_keep_the_spreadsheets_numbers(tmp_path):
    lines = [
        ",".join(HEADER),
        "P1,2024-01-10,,40,60",
        '"P1","2024-01-11",,"40","6\n0"',  # one record over two lines: still row 3
        "P1,2024-01-12,,40,\xff60",  # row 4: a byte that is not UTF-8
        "P1,2024-01-13,,40,60",
    ]
    data = (
        ("\n".join(lines[:4]) + "\n").encode()
        + b"P1,2024-01-12,,40,\xff60\n"
        + lines[5 - 1].encode()
    )
    data = (
        "\n".join(lines[:3]).encode() + b"\nP1,2024-01-12,,40,\xff60\n" + lines[4].encode() + b"\n"
    )
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    contract = dataclasses.replace(default_contract(), encoding="utf-8")  # as a contract says
    with open(path, "rb") as stream:
        sink = SINKS["ndjson"](tmp_path / "o", SETTINGS)
        report = run_pipeline(stream, path.name, contract, sink, SETTINGS)
    assert [
        (e["row"], e["outcome"]["issue"][0]["details"]["coding"][0]["code"])
        for e in report.to_json()["rejected"]
    ] == [
        (3, "wrong-type"),  # '6\n0' is not a whole number, as in an answers document
        (4, "unreadable-row"),
    ]
    assert report.rows_converted == 2


def test_a_huge_header_cell_is_an_answer_not_a_traceback(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("patient_id,visit_date," + "x" * 300_000 + "\nP1,2024-01-10,1\n")
    result = run("convert-sheet", path, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "unreadable-file" in outcome_codes(result.output)


def test_duplicated_headers_are_named(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("patient_id,visit_date,pain-max,pain-max\nP1,2024-01-10,40,60\n")
    result = run("convert-sheet", path, "--out", tmp_path / "o")
    assert result.exit_code == 1 and outcome_codes(result.output) == ["duplicate-column"]
    assert "columns C and D" in result.output


def test_formula_cells_without_a_value_are_named_not_dropped(tmp_path):
    workbook = Workbook()
    workbook.active.append(HEADER)
    workbook.active.append(["P1", date(2024, 1, 10), None, 40, "=30+30"])  # no cached value
    workbook.save(tmp_path / "f.xlsx")
    with open(tmp_path / "f.xlsx", "rb") as stream:
        report = run_pipeline(
            stream,
            "f.xlsx",
            default_contract(),
            SINKS["ndjson"](tmp_path / "o", SETTINGS),
            SETTINGS,
        )
    (rejected,) = report.to_json()["rejected"]
    assert "formula" in rejected["outcome"]["issue"][0]["diagnostics"]


def test_a_workbook_that_inflates_past_the_limit_is_refused_before_it_is_read(
    tmp_path, monkeypatch
):
    import adapter.sheets.readers as readers

    monkeypatch.setattr(readers, "MAX_SHARED_STRINGS_BYTES", 1024 * 1024)
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"<sst>" + b"a" * (2 * 1024 * 1024) + b"</sst>")
    assert path.stat().st_size < 100_000
    result = run("convert-sheet", path, "--out", tmp_path / "o")
    assert result.exit_code == 1 and outcome_codes(result.output) == ["too-large"]


def test_contracts_in_other_encodings_without_aliases_and_with_real_formats(tmp_path):
    base = "patient: {column: p}\nvisit_date: {column: d}\ncolumns: {Müdigkeit: sss-fatigue}\n"
    assert api.load_contract(base.encode("utf-16"), "c.yaml", SETTINGS).by_header["Müdigkeit"]
    for data, fragment in [
        (base.encode("cp1252"), "not utf-8"),
        (b"a: &x [1]\nb: *x\n", "anchors or aliases"),
        (b"a: &x [*x]\n", "anchors or aliases"),
        (base.replace("{column: d}", "{column: d, formats: ['%Q']}").encode(), "day"),
        (base.replace("{column: d}", "{column: d, formats: ['%Y']}").encode(), "day"),
        (
            b"patient: {column: p}\nvisit_date: {column: d}\ncsv: {encoding: klingon}\ncolumns: {}\n",
            "unknown encoding",
        ),
        (
            b"patient: {column: p}\nvisit_date: {column: d}\ncolumns: {x: {to: wpi-neck, values: {a: [1]}}}\n",
            "maps",
        ),
        (b"- " * 5000 + b"x", "nested"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            api.load_contract(data, "c.yaml", SETTINGS)
        assert fragment in str(raised.value).lower(), (fragment, str(raised.value))


# --- never delete what the project did not write ------------------------------------------------


def test_a_users_file_in_a_previous_output_is_never_deleted(tmp_path):
    data = sheet(tmp_path / "s.csv", [["P1", "2024-01-10", "", 40, 60]])
    out = tmp_path / "out"
    assert run("convert-sheet", data, "--out", out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = run("convert-sheet", data, "--out", out)
    assert result.exit_code == 4 and "notes.txt" in result.output
    assert (out / "notes.txt").read_text() == "mine"


def test_an_output_or_report_that_is_or_holds_an_input_is_refused(tmp_path, monkeypatch):
    data = sheet(tmp_path / "s.csv", [["P1", "2024-01-10", "", 40, 60]])
    before = data.read_bytes()
    for args in (
        ["--out", tmp_path],
        ["--out", tmp_path / "o", "--report", data],
        ["--out", tmp_path / "o", "--report", tmp_path / "o" / "report.json"],
    ):
        result = run("convert-sheet", data, *args)
        assert result.exit_code == 4, (args, result.output)
        assert data.read_bytes() == before
    monkeypatch.chdir(tmp_path)
    for out in (".", ""):
        result = run("convert-sheet", data.name, "--out", out)
        assert result.exit_code == 4 and data.read_bytes() == before


@pytest.mark.parametrize("kind", ["symlink", "file", "unwritable"])
def test_every_kind_of_output_path_gets_an_outcome(tmp_path, kind):
    data = sheet(tmp_path / "s.csv", [["P1", "2024-01-10", "", 40, 60]])
    target = tmp_path / "target"
    if kind == "symlink":
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    elif kind == "file":
        target.write_text("x")
    else:
        target = Path("/proc/fms-fhir-cannot-write-here")
    result = run("convert-sheet", data, "--out", target)
    assert result.exit_code == 4
    assert outcome_codes(result.output)[0] in ("output-exists", "output-unwritable")
    result = run("convert", EXAMPLES / "baseline-visit.json", "--out", "/proc/fms-fhir/x.json")
    assert result.exit_code == 4 and outcome_codes(result.output) == ["output-unwritable"]


def test_staging_folders_of_killed_runs_are_cleaned_and_nothing_else(tmp_path):
    data = sheet(tmp_path / "s.csv", [["P1", "2024-01-10", "", 40, 60]])
    dead = 2**22 + 12345  # above the kernel's pid range: no such process
    ours = tmp_path / f".out.partial-{dead}"
    ours.mkdir()
    (ours / MARKER).write_text("written by fms-fhir convert-sheet; the files it wrote here:\n")
    (ours / "Observation.ndjson").write_text("{}\n")
    theirs = tmp_path / f".out.old-{dead}"
    theirs.mkdir()
    (theirs / "thesis.docx").write_text("precious")
    assert run("convert-sheet", data, "--out", tmp_path / "out").exit_code == 0
    assert not ours.exists() and (theirs / "thesis.docx").exists()


def test_sigterm_leaves_no_staging_folder_and_the_old_output_whole(tmp_path):
    rows = [
        [f"P{n % 50}", f"{2000 + n // 365 % 20}-{n % 12 + 1:02d}-{n % 28 + 1:02d}", "", 40, 60]
        for n in range(20000)
    ]
    data = sheet(tmp_path / "big.csv", rows)
    small = sheet(tmp_path / "small.csv", [["P1", "2024-01-10", "", 40, 60]])
    out = tmp_path / "out"
    assert run("convert-sheet", small, "--out", out).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "convert-sheet", str(data), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name]
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.slow
def test_report_and_outputs_are_written_whole_and_template_is_deterministic(tmp_path):
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    assert run("template", "--out", first).exit_code == 0
    time.sleep(1.1)
    assert run("template", "--out", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()


# --- bounded time and memory ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_patients_whole_history_is_not_held_in_memory_for_one_bundle(tmp_path):
    rows = [["P1", date.fromordinal(730000 + n).isoformat(), "", 40, 60] for n in range(3000)]
    data = sheet(tmp_path / "long.csv", rows)
    tracemalloc.start()
    with open(data, "rb") as stream:
        sink = SINKS["patient"](tmp_path / "out", SETTINGS)
        report = run_pipeline(stream, "long.csv", default_contract(), sink, SETTINGS)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.rows_converted == 3000
    (bundle_path,) = (tmp_path / "out").glob("patient-*.json")
    bundle = json.loads(bundle_path.read_text())
    assert len(bundle["entry"]) == 3000 * 3
    # The Bundle is written entry by entry: memory is a small part of the Bundle's size.
    assert peak < bundle_path.stat().st_size / 3, (peak, bundle_path.stat().st_size)


def test_a_large_array_is_refused_with_a_size_not_converted_slowly():
    with pytest.raises(InvalidInput) as raised:
        api.convert([_document()] * 10_001, SETTINGS)
    assert raised.value.status == 413 and raised.value.issues[0].rule == "too-many-documents"


def test_test_data_is_tagged_in_every_resource():
    documents = json.loads((EXAMPLES / "baseline-visit.json").read_text())
    regimen = json.loads((EXAMPLES / "ldn-regimen.json").read_text())
    bundle = api.convert(documents, SETTINGS, regimen=regimen).bundle
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
                "display": "test health data"} in resource["meta"]["security"]  # fmt: skip
        assert "invented" in resource["text"]["div"]
    assert_valid_fhir(bundle)


def test_environment_is_read_at_the_edge_only():
    """The core reads no environment variable (Settings is passed in)."""
    for path in (ROOT / "adapter").rglob("*.py"):
        if path.name in ("cli.py", "settings.py") or "web" in path.parts:
            continue
        assert "os.environ" not in path.read_text(), path


if os.name != "posix":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX signals and /proc")


@pytest.mark.parametrize(
    "document",
    [
        {"phases": [{"dose_mg": "1e999999999", "start": "2024-01-01"}]},
        {"phases": [{"dose_mg": "-1e-999999999", "start": "2024-01-01"}]},
        {"titration": {"start_mg": 1.5, "step_mg": 1.5, "every_days": 14, "target_mg": 4.5,
                       "start": "9999-12-25"}},
        {"phases": [{"dose_mg": 4.5, "start": "0001-01-01", "end": "9999-12-31"}]},
    ],
)  # fmt: skip
def test_doses_and_dates_at_the_ends_are_answered_at_once(document):
    started = time.monotonic()
    try:
        result = api.regimen({"subject": {"reference": "Patient/1"}, **document}, SETTINGS)
        assert_valid_fhir(result.resource)
    except InvalidInput as error:
        assert error.issues and len(str(error)) < 500
    assert time.monotonic() - started < 1
