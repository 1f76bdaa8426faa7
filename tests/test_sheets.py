"""Legacy spreadsheets -> FHIR: contract, readers, accounting, reported totals, doses, outputs."""

import dataclasses
import json
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from adapter.cli import main
from adapter.medication import UCUM as UCUM_SYSTEM
from adapter.medication import daily_dose_mg
from adapter.outcome import InvalidInput
from adapter.sheets.contract import (
    contract_from_data,
    default_contract,
    template_columns,
)
from adapter.sheets.doses import courses
from adapter.sheets.output import SINKS
from tests.support import SETTINGS, assert_valid_fhir
from tests.support.sheets import (
    HEADER,
    PHQ,
    convert_sheet,
    load_contract,
    observations,
    resources,
    run,
    write_csv,
    write_xlsx,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# --- accounting -------------------------------------------------------------------------------


def test_every_row_is_converted_or_rejected(tmp_path):
    rows = [
        HEADER,
        ["P1", "2024-01-10", "", 1, 2, 1, 1, "", 40, 60],  # good
        ["", "", "", "", "", "", "", "", "", ""],  # blank: skipped, not a data row
        ["P1", "2024-02-10", "", 1, 2, 9, 1, "", "", ""],  # 9 is not an option
        ["", "2024-03-10", "", 1, 1, 1, 1, "", "", ""],  # no patient
        ["P2", "10.03.2024", "", 1, 1, 1, 1, "", "", ""],  # date not ISO, no format given
        ["P2", "2024-03-11", "", "", "", "", "", "", "", ""],  # nothing but patient and date
        ["P2", "2024-03-12", "", "", "", "", "", "", "55", "x"],  # 'x' is not a number
        ["P3", "2024-03-12", "3", "", "", "", "", "", "", ""],  # dose only: converted
        ["P1", "2024-01-10", "", 0, 0, 0, 0, "", "", ""],  # the same visit again
    ]
    report, out = run(write_csv(tmp_path / "mixed.csv", rows), tmp_path)
    assert (report.rows_read, report.rows_converted, report.rows_rejected, report.rows_blank) == (
        8,
        2,
        6,
        1,
    )
    assert report.rows_read == report.rows_converted + report.rows_rejected
    reasons = {
        entry["row"]: [
            (i["details"]["coding"][0]["code"], i.get("expression", [""])[0])
            for i in entry["outcome"]["issue"]
        ]
        for entry in report.to_json()["rejected"]
    }
    assert reasons == {
        4: [("not-an-option", 'row 4, column F "phq4-interest"')],  # was out-of-range
        5: [("missing-patient", 'row 5, column A "patient_id"')],
        6: [("invalid-date", 'row 6, column B "visit_date"')],
        7: [("empty-visit", "row 7")],
        8: [("wrong-type", 'row 8, column J "pain-max"')],  # was invalid-value
        10: [("duplicate-visit", "row 10")],
    }
    for entry in report.to_json()["rejected"]:
        assert_valid_fhir(entry["outcome"])
    found = resources(out)
    assert {r["resourceType"] for r in found} == {
        "QuestionnaireResponse",
        "Observation",
        "MedicationStatement",
    }


def test_report_and_exit_status_through_the_cli(tmp_path):
    sheet = write_csv(
        tmp_path / "s.csv",
        [
            HEADER,
            ["P1", "2024-01-10", "", 1, 2, 1, 1, "", 40, 60],
            ["P1", "2024-01-11", "", 1, 2, 7, 1, "", "", ""],
        ],
    )
    result = CliRunner().invoke(
        main,
        [
            "convert-sheet",
            str(sheet),
            "--out",
            str(tmp_path / "out"),
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["rows_read"], report["rows_converted"], report["rows_rejected"]) == (2, 1, 1)
    assert (
        report["rejected"][0]["row"] == 3
        and report["rejected"][0]["outcome"]["resourceType"] == "OperationOutcome"
    )
    assert "rows read 2, converted 1, rejected 1" in result.stderr
    assert 'rejected row 3, column F "phq4-interest"' in result.stderr


# --- contract features --------------------------------------------------------------------------


def test_default_contract_is_the_template():
    names = [rule.header for rule in default_contract().columns]
    assert template_columns() == ["patient_id", "visit_date", "ldn_dose_mg", *names]
    assert "fm-duration-3m" in names and "fiqr-total" in names and "55758-7" in names


def test_contract_maps_columns_values_dates_and_decimal_commas(tmp_path):
    contract = contract_from_data(
        {
            "patient": {"column": "Nr", "system": "urn:example:mrn"},
            "visit_date": {"column": "Datum", "formats": ["%d.%m.%Y", "%d/%m/%y"]},
            "ldn_dose": {"column": "LDN"},
            "csv": {"decimal_comma": True},
            "true_values": ["x", "ja"],
            "columns": {
                "Nervös": {
                    "to": "phq4-nervous",
                    "values": {"gar nicht": 0, "an einzelnen Tagen": 1},
                },
                "Sorgen": "phq4-worry",
                "Interesse": "phq4-interest",
                "Niedergeschlagen": "phq4-down",
                "Nacken": {"to": "wpi-neck", "blank": False},
                "FIQR": "fiqr-total",
            },
        }
    )
    sheet = write_csv(
        tmp_path / "s.csv",
        [
            [
                "Nr",
                "Datum",
                "LDN",
                "Nervös",
                "Sorgen",
                "Interesse",
                "Niedergeschlagen",
                "FIQR",
                "Nacken",
                "Kommentar",
            ],
            ["7", "10.04.2025", "4,5", "An einzelnen Tagen", "2", "LA6569-3", "1", "", "", "gut"],
            ["7", "11/04/25", "4,5", "", "", "", "", "37,5", "", ""],
        ],
        delimiter=";",
    )
    report, out = run(sheet, tmp_path, contract)
    assert report.rows_rejected == 0, report.rejected
    assert [
        w["outcome"]["issue"][0]["details"]["coding"][0]["code"]
        for w in report.to_json()["warnings"]
    ] == ["unmapped-column"]
    found = observations(resources(out))
    assert found[("2025-04-10", "70272-0")]["valueQuantity"]["value"] == 5
    reported = found[("2025-04-11", "fiqr-total")]
    assert reported["valueQuantity"]["value"] == 37.5
    assert reported["interpretation"][0]["coding"][0]["code"] == "mild"
    assert reported["method"]["text"].startswith("Reported by the source")
    assert reported["method"]["coding"][0]["code"] == "reported"
    assert "derivedFrom" not in reported
    # blank checkbox-style cells alone do not make an instrument part of the visit
    assert not any(code == "wpi-score" for _, code in found)


def test_blank_checkbox_columns_are_false_once_the_instrument_is_present(tmp_path):
    contract = contract_from_data(
        {
            "patient": {"column": "id"},
            "visit_date": {"column": "date"},
            "columns": {n: {"to": n, "blank": False} for n in ["wpi-neck", "wpi-chest"]}
            | {
                n: n
                for n in ["wpi-jaw-l", "wpi-jaw-r"]
                + [
                    f"wpi-{a}-{s}"
                    for a in ["shoulder", "upper-arm", "lower-arm", "hip", "upper-leg", "lower-leg"]
                    for s in "lr"
                ]
                + ["wpi-upper-back", "wpi-lower-back", "wpi-abdomen"]
            },
        }
    )
    header = ["id", "date", "wpi-neck", "wpi-chest"] + [
        rule.header for rule in contract.columns[2:]
    ]
    row = ["P1", "2024-01-01", "x", ""] + ["nein"] * 17
    report, out = run(write_csv(tmp_path / "w.csv", [header, row]), tmp_path, contract)
    assert report.rows_converted == 1
    assert observations(resources(out))[("2024-01-01", "wpi-score")]["valueQuantity"]["value"] == 1


@pytest.mark.parametrize(
    ("data", "expression"),
    [
        (
            {
                "patient": {"column": "id"},
                "visit_date": {"column": "d"},
                "columns": {"A": "phq4-sleep"},
            },
            "contract.columns.A",
        ),
        (
            {
                "patient": {"column": "id"},
                "visit_date": {"column": "d"},
                "columns": {"A": "phq4-down", "B": "phq4-down"},
            },
            "contract.columns.B",
        ),
        (
            {
                "patient": {"column": "id"},
                "visit_date": {"column": "d"},
                "columns": {"A": {"to": "phq4-down", "blank": True}},
            },
            "contract.columns.A.value",
        ),
        ({"visit_date": {"column": "d"}, "columns": {}}, "contract.patient"),
        (
            {
                "patient": {"column": "id"},
                "visit_date": {"column": "d"},
                "columns": {},
                "colour": "red",
            },
            "contract.colour",
        ),
        (
            {
                "patient": {"column": "id"},
                "visit_date": {"column": "d"},
                "columns": {},
                "ldn": {"form": "tablet"},
            },
            "contract.ldn.form",
        ),
    ],
    ids=[
        "unknown target",
        "target twice",
        "bad blank",
        "no patient",
        "unknown key",
        "unknown form",
    ],
)
def test_bad_contracts_are_refused_with_the_place(data, expression):
    with pytest.raises(InvalidInput) as raised:
        contract_from_data(data)
    assert expression in [issue.expression for issue in raised.value.issues]


def test_contract_file_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("patient: [unclosed")
    with pytest.raises(InvalidInput):
        load_contract(bad)
    result = CliRunner().invoke(
        main,
        ["convert-sheet", str(EXAMPLES / "case-report-followup.xlsx"), "--contract",
         str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 1 and "unreadable-file" in result.output


# --- readers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_encodings_and_delimiters_are_detected(tmp_path, encoding, delimiter):
    contract = contract_from_data(
        {
            "patient": {"column": "Patientennummer"},
            "visit_date": {"column": "Datum"},
            "columns": {"Schmerz (Ø)": "pain-mean", "Schmerz max": "pain-max"},
        }
    )
    sheet = write_csv(
        tmp_path / "s.csv",
        [
            ["Patientennummer", "Datum", "Schmerz (Ø)", "Schmerz max"],
            ["Jürgen-1", "2024-01-01", "30", "55"],
        ],
        delimiter,
        encoding,
    )
    report, out = run(sheet, tmp_path, contract)
    assert (report.rows_converted, report.warnings) == (1, [])
    subject = resources(out)[0]["subject"]["identifier"]["value"]
    assert subject == "Jürgen-1"


def test_xlsx_date_cells_and_numbers(tmp_path):
    sheet = write_xlsx(
        tmp_path / "s.xlsx",
        [
            HEADER,
            ["P1", datetime(2024, 1, 10), 1.5, 1, 2, 1, 1, None, 40, 60],
            [1001, date(2024, 2, 10), 3, 1, 2, 1, 1, None, 40.0, 60],
            # A bare number in the date column (an Excel serial without a date format, or a
            # year) is not taken for a date: the row is rejected with the reason.
            ["P1", 45336, None, None, None, None, None, None, 30, 50],
            ["P1", 2024, None, None, None, None, None, None, 30, 50],
        ],
    )
    report, out = run(sheet, tmp_path)
    assert [(entry["row"], entry["outcome"]["issue"][0]["details"]["coding"][0]["code"])
            for entry in report.to_json()["rejected"]] == [(4, "invalid-date"), (5, "invalid-date")]  # fmt: skip
    assert "is a number, not a date" in report.rejected[0].issues[0].message
    found = resources(out)
    dates = sorted(
        {r.get("effectiveDateTime") for r in found if r["resourceType"] == "Observation"}
    )
    assert dates == ["2024-01-10", "2024-02-10"]
    assert {r["subject"]["identifier"]["value"] for r in found} == {"P1", "1001"}


def test_a_1904_workbook_reads_its_dates_with_its_own_epoch(tmp_path):
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    workbook = Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    for row in [HEADER, ["P1", datetime(2024, 1, 10), None, 1, 2, 1, 1, None, 40, 60]]:
        workbook.active.append(row)
    workbook.save(tmp_path / "mac.xlsx")
    report, out = run(tmp_path / "mac.xlsx", tmp_path)
    assert report.rows_converted == 1
    assert {
        r["effectiveDateTime"] for r in resources(out) if r["resourceType"] == "Observation"
    } == {"2024-01-10"}


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("not-zip.xlsx", b"this is not a workbook", "not-a-workbook"),
        ("empty.xlsx", b"", "empty-file"),
        ("empty.csv", b"", "empty-file"),
        ("blank.csv", b"\n\n  \n", "empty-file"),
        ("old.xls", b"\xd0\xcf\x11\xe0", "not-a-workbook"),
    ],
)
def test_unreadable_files_get_one_clear_error_and_nothing_is_written(tmp_path, name, content, rule):
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["convert-sheet", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    outcome = json.loads(result.stdout)
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == rule
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    result = CliRunner().invoke(main, ["convert-sheet", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["issue"][0]["details"]["coding"][0]["code"] == "not-a-workbook"


def test_a_contract_naming_a_chart_sheet_is_told_it_holds_no_rows(tmp_path):
    from openpyxl.chart import BarChart, Reference

    workbook = Workbook()
    workbook.active.append(HEADER)
    chart = BarChart()
    chart.add_data(Reference(workbook.active, min_col=1, min_row=1, max_row=1))
    workbook.create_chartsheet("chart").add_chart(chart)
    workbook.save(tmp_path / "charted.xlsx")
    contract = dataclasses.replace(default_contract(), sheet="chart")
    with pytest.raises(InvalidInput) as raised:
        run(tmp_path / "charted.xlsx", tmp_path, contract)
    (issue,) = raised.value.issues
    assert issue.message == "charted.xlsx has no sheet 'chart' (sheets: Sheet)"


def test_missing_required_columns(tmp_path):
    sheet = write_csv(tmp_path / "s.csv", [["patient", "date"], ["P1", "2024-01-01"]])
    result = CliRunner().invoke(main, ["convert-sheet", str(sheet), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert {i["details"]["coding"][0]["code"] for i in json.loads(result.stdout)["issue"]} == {
        "missing-column"
    }


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.docx").write_text("precious")
    sheet = write_csv(
        tmp_path / "s.csv", [HEADER, ["P1", "2024-01-10", "", 1, 2, 1, 1, "", 40, 60]]
    )
    result = CliRunner().invoke(main, ["convert-sheet", str(sheet), "--out", str(tmp_path / "out")])
    # Not invalid input: the output place is taken (exit 4, OutputConflict).
    assert result.exit_code == 4 and (tmp_path / "out" / "thesis.docx").exists()
    assert "output-exists" in result.output


# --- reported totals ------------------------------------------------------------------------------


def _phq_sheet(tmp_path, total):
    return write_csv(
        tmp_path / "s.csv", [HEADER, ["P1", "2024-01-10", "", 1, 2, 1, 1, total, "", ""]]
    )


def test_reported_total_that_agrees_is_accepted(tmp_path):
    report, out = run(_phq_sheet(tmp_path, "5"), tmp_path)
    assert report.rows_converted == 1
    total = observations(resources(out))[("2024-01-10", "70272-0")]
    assert "Reported" not in total["method"]["text"] and total["derivedFrom"]
    assert total["method"]["coding"][0]["code"] == "computed"


def test_reported_total_that_disagrees_rejects_the_row(tmp_path):
    report, _ = run(_phq_sheet(tmp_path, "7"), tmp_path)
    assert report.rejected[0].issues[0].row == 2
    assert report.rejected[0].issues[0].column == 'column H "70272-0"'
    issue = report.to_json()["rejected"][0]["outcome"]["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "reported-mismatch"
    assert issue["expression"] == ['row 2, column H "70272-0"']
    assert "reported 7 disagrees with 5" in issue["diagnostics"]


def test_mismatch_can_be_a_warning_by_contract(tmp_path):
    contract = contract_from_data(
        {
            "patient": {"column": "patient_id"},
            "visit_date": {"column": "visit_date"},
            "on_mismatch": "warn",
            "columns": {n: n for n in HEADER[3:]},
        }
    )
    report, _ = run(_phq_sheet(tmp_path, "7"), tmp_path, contract)
    assert report.rows_converted == 1
    codes = [issue.rule for w in report.warnings for issue in w.issues]
    assert "reported-mismatch" in codes


def test_fiqr_total_rounded_in_the_sheet_agrees(tmp_path):
    items = [
        f"fiqr-{d}{n}" for d, count in (("f", 9), ("o", 2), ("s", 10)) for n in range(1, count + 1)
    ]
    header = ["patient_id", "visit_date", *items, "fiqr-total"]
    values = [2] * 9 + [5, 5] + [4] * 10  # 6 + 10 + 20 = 36
    rows = [
        header,
        ["P1", "2024-01-01", *values, "36"],
        ["P1", "2024-01-02", 1, *values[1:], "35.7"],
        ["P1", "2024-01-03", 1, *values[1:], "35.6"],
    ]
    report, _ = run(write_csv(tmp_path / "f.csv", rows), tmp_path)
    # 35.67 is reported as 35.7 (agrees) or 35.6 (does not)
    assert report.rows_converted == 2 and [e.row for e in report.rejected] == [4]


# --- LDN dose history -----------------------------------------------------------------------------


def test_dose_history_becomes_phases_and_courses():
    history = [
        ("2024-01-01", None), ("2024-01-15", 1.5), ("2024-01-29", 3.0), ("2024-02-12", 4.5),
        ("2024-05-01", 4.5), ("2024-07-01", None), ("2024-09-01", 4.5),
    ]  # fmt: skip
    found = courses(
        [(d, None if v is None else __import__("decimal").Decimal(str(v))) for d, v in history]
    )
    (first, first_asserted), (second, second_asserted) = [(c.phases, c.asserted) for c in found]
    assert [(str(p.dose_mg), p.start.isoformat(), p.end and p.end.isoformat()) for p in first] == [
        ("1.5", "2024-01-15", "2024-01-28"),
        ("3.0", "2024-01-29", "2024-02-11"),
        ("4.5", "2024-02-12", "2024-06-30"),
    ]
    assert first_asserted == date(2024, 7, 1)
    assert [(str(p.dose_mg), p.start.isoformat(), p.end) for p in second] == [
        ("4.5", "2024-09-01", None)
    ]
    assert second_asserted == date(2024, 9, 1)


def test_dose_column_gives_one_medication_statement_per_course(tmp_path):
    rows = [HEADER] + [
        ["P1", day, dose, "", "", "", "", "", "40", "60"]
        for day, dose in [
            ("2024-01-15", "1.5"),
            ("2024-03-01", ""),
            ("2024-01-29", "4.5"),
            ("2024-04-01", "4.5"),
        ]
    ]
    report, out = run(write_csv(tmp_path / "d.csv", rows), tmp_path)
    assert report.rows_converted == 4
    statements = sorted(
        (r for r in resources(out) if r["resourceType"] == "MedicationStatement"),
        key=lambda r: r["effectivePeriod"]["start"],
    )
    assert [(s["status"], s["effectivePeriod"]) for s in statements] == [
        ("completed", {"start": "2024-01-15", "end": "2024-02-29"}),
        ("active", {"start": "2024-04-01"}),
    ]
    assert [float(daily_dose_mg(d)) for d in statements[0]["dosage"]] == [
        1.5,
        4.5,
    ]


# --- outputs and the examples -----------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["transaction", "patient", "ndjson"])
def test_formats_hold_the_same_resources_and_repeat_identically(tmp_path, output_format):
    path = EXAMPLES / "case-report-followup.xlsx"
    report, out = run(path, tmp_path, output_format=output_format)
    assert (report.rows_read, report.rows_converted, report.rows_rejected) == (7, 7, 0)
    found = resources(out)
    assert len(found) == 61
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    out2 = tmp_path / "again"
    convert_sheet(path, default_contract(), SINKS[output_format](out2, SETTINGS))
    assert {p.name: p.read_bytes() for p in out2.iterdir()} == first
    if output_format == "patient":
        assert [p.name for p in out.glob("*.json")] == ["patient-MOSER-CASE-1.json"]
    if output_format == "ndjson":
        assert sorted(p.name for p in out.glob("*.ndjson")) == [
            "MedicationStatement.ndjson", "Observation.ndjson", "QuestionnaireResponse.ndjson"
        ]  # fmt: skip


def test_case_report_values(tmp_path):
    _, out = run(EXAMPLES / "case-report-followup.xlsx", tmp_path)
    found = observations(resources(out))
    expect = {
        ("2023-02-14", "wpi-score"): 17, ("2023-02-14", "sss-score"): 9, ("2023-02-14", "fs-score"): 26,
        ("2023-02-14", "fiqr-total"): 72.5, ("2023-02-14", "70272-0"): 7, ("2023-02-14", "pain-max"): 90,
        ("2023-05-16", "fiqr-total"): 72.5, ("2023-08-22", "sss-score"): 9,
        ("2025-04-10", "fiqr-total"): 37.5, ("2025-04-10", "sss-score"): 6, ("2025-04-10", "70272-0"): 5,
        ("2025-04-10", "pain-mean"): 30, ("2025-04-10", "pain-max"): 55,
    }  # fmt: skip
    for key, value in expect.items():
        assert found[key]["valueQuantity"]["value"] == value, key
    assert found[("2023-02-14", "acr2016-criteria")]["valueBoolean"] is True
    assert found[("2025-04-10", "fiqr-total")]["interpretation"][0]["coding"][0]["code"] == "mild"


def test_legacy_csv_gives_the_same_resources_as_the_canonical_xlsx(tmp_path):
    legacy = load_contract(EXAMPLES / "legacy-contract.yaml")
    report, out = run(EXAMPLES / "legacy-followup.csv", tmp_path, legacy, "ndjson")
    assert report.rows_converted == 7 and report.warnings == []
    canonical = default_contract(patient_system="urn:example:mrn")
    canonical = dataclasses.replace(canonical, test_data=legacy.test_data)
    out2 = tmp_path / "canonical"
    convert_sheet(
        EXAMPLES / "case-report-followup.xlsx", canonical, SINKS["ndjson"](out2, SETTINGS)
    )
    by_id = lambda found: {r["id"]: r for r in found}  # noqa: E731
    assert by_id(resources(out)) == by_id(resources(out2))


def test_template_command(tmp_path):
    from openpyxl import load_workbook

    result = CliRunner().invoke(main, ["template", "--out", str(tmp_path / "t.xlsx")])
    assert result.exit_code == 0
    workbook = load_workbook(tmp_path / "t.xlsx")
    assert workbook.sheetnames == ["visits", "columns"]
    assert [c.value for c in workbook["visits"][1]] == template_columns()
    guide = {row[0].value: row for row in workbook["columns"].iter_rows(min_row=2)}
    assert set(guide) == set(template_columns())
    assert (
        "LA6570-1" not in str(guide["phq4-down"][2].value)
        and "More than half the days" in guide["phq4-down"][2].value
    )
    CliRunner().invoke(main, ["template", "--out", str(tmp_path / "t.csv")])
    assert (tmp_path / "t.csv").read_text().splitlines()[0].split(",") == template_columns()


# --- doses are kept exactly or rejected ----------------------------------------------------------


def test_odd_doses_are_rejected_with_row_and_column_and_others_kept_exactly(tmp_path):
    header = ["patient_id", "visit_date", "ldn_dose_mg", "pain-max"]
    rows = [
        header,
        ["P1", "2024-01-10", "1.5", 60],
        ["P1", "2024-02-10", "1500000", 60],  # not an LDN dose: a unit or typing error
        ["P1", "2024-03-10", "1.2345", 60],  # more decimals than a pharmacy writes
        ["P1", "2024-04-10", "-1", 60],
        ["P1", "2024-05-10", "4.125", 60],  # three decimals: kept as written
        ["P1", "2024-06-10", "6.5", 60],  # kept, with a warning: above the studied LDN doses
        ["P1", "2024-07-10", "0", 60],  # no LDN at this visit: ends the course
    ]
    report, out = run(write_csv(tmp_path / "doses.csv", rows), tmp_path, output_format="ndjson")
    # A rejected dose rejects the dose, not the visit's answers (issue 20): converted in part.
    rejected = {
        entry["row"]: [
            (i["details"]["coding"][0]["code"], i["expression"][0])
            for i in entry["outcome"]["issue"]
        ]
        for entry in report.to_json()["partial"]
    }
    cut = ("dose-history-cut", 'row {}, column C "ldn_dose_mg"')
    assert rejected == {
        3: [("dose-implausible", 'row 3, column C "ldn_dose_mg"'), (cut[0], cut[1].format(3))],
        4: [("dose-too-precise", 'row 4, column C "ldn_dose_mg"'), (cut[0], cut[1].format(4))],
        5: [("dose-not-positive", 'row 5, column C "ldn_dose_mg"'), (cut[0], cut[1].format(5))],
    }
    warned = [
        i["details"]["coding"][0]["code"]
        for w in report.to_json()["warnings"]
        for i in w["outcome"]["issue"]
    ]
    assert "not-low-dose" in warned
    # A rejected dose is not a stretched dose (issue 19): 1.5 mg is known at 2024-01-10 only;
    # the rows after it with doses were rejected, so the next course starts at 2024-05-10.
    first, second = sorted(
        (r for r in resources(out) if r["resourceType"] == "MedicationStatement"),
        key=lambda r: r["effectivePeriod"]["start"],
    )
    assert first["status"] == "unknown"
    assert first["effectivePeriod"] == {"start": "2024-01-10", "end": "2024-01-10"}
    assert "row 3 (2024-02-10) gives a dose but was rejected" in first["note"][-1]["text"]
    doses = [float(daily_dose_mg(d)) for d in second["dosage"]]
    assert doses == [4.125, 6.5]
    assert [d["timing"]["repeat"]["boundsPeriod"] for d in second["dosage"]] == [
        {"start": "2024-05-10", "end": "2024-06-09"},
        {"start": "2024-06-10", "end": "2024-07-09"},
    ]
    text = (out / "MedicationStatement.ndjson").read_text()
    assert '"value":4.125' in text and "1500000" not in text and "1.234" not in text


# --- every reported score the row's items can compute is checked -------------------------------

WPI_ITEMS = [i.link_id for i in __import__("mappings.wpi", fromlist=["ITEMS"]).ITEMS]
SSS_ITEMS = ["sss-fatigue", "sss-unrefreshed", "sss-cognitive", "sss-headache", "sss-abdominal",
             "sss-depression"]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "wrong", "right"),
    [
        ("fs-score", 20, 19),
        ("wpi-score", 9, 10),
        ("sss-score", 8, 9),
        ("gp-regions", 2, 4),
        ("acr2016-criteria", "nein", "ja"),
        ("70272-0", 6, 5),
        ("phq4-anxiety", 2, 3),
        ("55758-7", 3, 2),
    ],
)
def test_every_reported_score_the_items_compute_must_agree(tmp_path, code, wrong, right):
    header = ["patient_id", "visit_date", *WPI_ITEMS, *SSS_ITEMS, "fm-duration-3m", *PHQ, code]
    wpi = ["x"] * 8 + [""] * 11  # jaw, shoulders, upper and lower arms
    wpi[8:10] = ["x", "x"]  # and hips: WPI 10, generalized pain in 4 regions
    wpi = ["ja" if v else "nein" for v in wpi]
    sss = [3, 3, 3, "nein", "nein", "nein"]
    phq = [1, 2, 1, 1]
    rows = [
        header,
        ["P1", "2024-01-10", *wpi, *sss, "ja", *phq, right],
        ["P1", "2024-02-10", *wpi, *sss, "ja", *phq, wrong],
    ]
    report, _ = run(write_csv(tmp_path / "r.csv", rows), tmp_path)
    # The instrument of the wrong score is rejected at that visit, the visit's others are
    # converted (issue 20): the row is converted in part.
    codes = [
        (e["row"], e["outcome"]["issue"][0]["details"]["coding"][0]["code"])
        for e in report.to_json()["partial"]
    ]
    assert codes == [(3, "reported-mismatch")], report.partial
    assert report.rows_rejected == 0 and report.rows_partial == 1


def test_a_row_with_wpi_and_sss_but_no_duration_keeps_its_fs_score(tmp_path):
    header = ["patient_id", "visit_date", *WPI_ITEMS, *SSS_ITEMS]
    rows = [
        header,
        ["P1", "2024-01-10", *(["ja"] * 10 + ["nein"] * 9), 3, 3, 3, "ja", "nein", "nein"],
    ]
    report, out = run(write_csv(tmp_path / "fs.csv", rows), tmp_path)
    assert report.rows_converted == 1
    found = observations(resources(out))
    assert found[("2024-01-10", "fs-score")]["valueQuantity"]["value"] == 20
    assert "dataAbsentReason" in found[("2024-01-10", "acr2016-criteria")]
    # The same rule as convert: the response lacks a required item, so it is 'stopped'.
    (response,) = [r for r in resources(out) if r["resourceType"] == "QuestionnaireResponse"]
    assert response["status"] == "stopped"


def test_a_dose_column_states_only_what_the_sheet_holds(tmp_path):
    rows = [["patient_id", "visit_date", "ldn_dose_mg"], ["P1", "2024-01-15", "4.5"]]
    _, out = run(write_csv(tmp_path / "d.csv", rows), tmp_path)
    (statement,) = [r for r in resources(out) if r["resourceType"] == "MedicationStatement"]
    text = json.dumps(statement)
    assert "capsule" not in text and "bedtime" not in text and '"HS"' not in text
    assert "route" not in statement["dosage"][0]
    assert statement["medicationCodeableConcept"]["text"] == "Low-dose naltrexone (LDN)"
    # A daily oral dose is a dose and a once-daily timing (issue 21), not a rate.
    assert statement["dosage"][0]["doseAndRate"] == [
        {"doseQuantity": {"value": 4.5, "unit": "mg", "system": UCUM_SYSTEM, "code": "mg"}}
    ]
    repeat = statement["dosage"][0]["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "d")
    assert "when" not in repeat
    said = contract_from_data(
        {
            "patient": {"column": "patient_id"},
            "visit_date": {"column": "visit_date"},
            "ldn_dose": {"column": "ldn_dose_mg"},
            "ldn": {"form": "capsule", "timing": "bedtime"},
            "columns": {},
        }
    )
    _, out = run(write_csv(tmp_path / "d2.csv", rows), tmp_path / "said", said)
    (statement,) = [r for r in resources(out) if r["resourceType"] == "MedicationStatement"]
    assert statement["dosage"][0]["timing"]["repeat"]["when"] == ["HS"]
    assert "capsule" in statement["medicationCodeableConcept"]["text"]


def test_every_patient_id_has_file_names_of_its_own():
    """A patient id makes part of a file name: the same name is never given to two ids, also
    when one id is the very text another is cleaned to (nothing overwritten, nothing merged)."""
    import hashlib

    from hypothesis import given
    from hypothesis import strategies as st

    from adapter.sheets.output import safe_name

    cleaned = f"a_b_c-{hashlib.sha1(b'a b/c').hexdigest()[:8]}"
    assert safe_name("a b/c") == cleaned
    assert safe_name(cleaned) not in (cleaned, safe_name("a b/c"))
    assert safe_name("P001") == "P001" and safe_name("MOSER-CASE-1") == "MOSER-CASE-1"

    @given(
        st.lists(
            st.text(min_size=1, max_size=70)
            | st.from_regex(r"[a-z_]{1,8}-[0-9a-f]{8}", fullmatch=True),
            min_size=2,
            max_size=6,
            unique=True,
        )
    )
    def distinct(ids: list[str]) -> None:
        names = [safe_name(i) for i in ids]
        assert len(set(names)) == len(names)
        assert all(n and len(n) <= 69 and "/" not in n for n in names)

    distinct()


def test_patient_names_stay_apart_where_case_is_not_told_apart():
    """`abc` and `ABC` are one file name on macOS and Windows: the patient named second (in the
    order read) gets a hash of its id, whatever ids came before; an id without such a clash
    keeps `safe_name`'s plain name; the same id keeps its name."""
    import hashlib

    from hypothesis import given
    from hypothesis import strategies as st

    from adapter.sheets.output import FileNames, safe_name

    names = FileNames()
    assert [names(i) for i in ("abc", "P001", "ABC", "abc", "Abc")] == [
        "abc",
        "P001",
        f"ABC-{hashlib.sha1(b'ABC').hexdigest()[:8]}",
        "abc",
        f"Abc-{hashlib.sha1(b'Abc').hexdigest()[:8]}",
    ]

    ids = st.text("aAbB-_ ./", min_size=1, max_size=12) | st.from_regex(
        r"[a-zA-Z]{1,3}-[0-9a-fA-F]{8}", fullmatch=True
    )

    @given(st.lists(ids, min_size=1, max_size=30))
    def apart(order: list[str]) -> None:
        names = FileNames()
        given_names = {i: names(i) for i in order}
        assert {i: names(i) for i in reversed(order)} == given_names  # named once, kept
        folded = [n.casefold() for n in given_names.values()]
        assert len(set(folded)) == len(folded)
        earlier: set[str] = set()
        for i in dict.fromkeys(order):
            plain = safe_name(i)
            if plain.casefold() not in earlier:
                assert given_names[i] == plain
            earlier.add(given_names[i].casefold())

    apart()


def test_two_patients_one_cleaned_to_the_others_id_keep_their_visits(tmp_path):
    """The collision `safe_name` used to allow, through the command: both patients' visits
    are written, each Bundle in a file of its own."""
    import hashlib

    other = f"a_b_c-{hashlib.sha1(b'a b/c').hexdigest()[:8]}"
    sheet = tmp_path / "two.csv"
    sheet.write_text(
        "patient_id,visit_date,phq4-nervous,phq4-worry,phq4-interest,phq4-down\n"
        f"a b/c,2024-01-01,1,2,0,1\n{other},2024-01-01,0,1,0,0\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["convert-sheet", str(sheet), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    visits = sorted(p.name for p in (tmp_path / "o").glob("visit-*.json"))
    assert len(visits) == 2
    subjects = {
        json.loads(p.read_text())["entry"][0]["resource"]["subject"]["identifier"]["value"]
        for p in (tmp_path / "o").glob("visit-*.json")
    }
    assert subjects == {"a b/c", other}
