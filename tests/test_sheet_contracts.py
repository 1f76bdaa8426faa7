"""The contract describes real workbooks (issue 20), every problem is said at once with its place
and rule code, and the sheet faults of issue 18 are OperationOutcomes, never tracebacks."""

from __future__ import annotations

import codecs
import dataclasses
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from adapter import api
from adapter.links import links_for
from adapter.outcome import InvalidInput
from adapter.sheets.contract import SheetContract, contract_from_data, default_contract
from adapter.sheets.output import SINKS
from adapter.sheets.readers import read_csv
from adapter.sheets.rows import RowPlan, convert_row, plan_rows
from adapter.sheets.values import CellError, parse_decimal, parse_dose
from tests.support import SETTINGS
from tests.support.sheets import convert_sheet, observations, resources, write_csv, write_xlsx

PHQ = ["phq4-nervous", "phq4-worry", "phq4-interest", "phq4-down"]


def contract(**extra: Any) -> SheetContract:
    data = {"patient": {"column": "Patient"}, "visit_date": {"column": "Datum"}, "columns": {}}
    data.update(extra)
    return contract_from_data(data)


def load(text: str) -> SheetContract:
    return api.load_contract(text.encode(), "c.yaml", SETTINGS)


def run(path: Path, tmp_path: Path, used: SheetContract) -> tuple[Any, list[dict[str, Any]]]:
    out = tmp_path / "out"
    report = convert_sheet(path, used, SINKS["ndjson"](out, SETTINGS))
    return report, resources(out)


def refused(call: Any) -> list[Any]:
    with pytest.raises(InvalidInput) as raised:
        call()
    return list(raised.value.issues)


# --- worksheets and headers --------------------------------------------------------------------


def two_sheets(path: Path) -> Path:
    workbook = Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["Fill in one row per visit."])
    visits = workbook.create_sheet("Visits")
    visits.append(["Patient", "Datum", "pain-mean"])
    visits.append(["P1", "2024-01-10", 40])
    workbook.save(path)
    return path


def test_a_worksheet_by_position_or_name_and_the_others_listed(tmp_path):
    sheet = two_sheets(tmp_path / "book.xlsx")
    columns = {"pain-mean": "pain-mean"}
    report, _ = run(sheet, tmp_path, contract(sheet=2, columns=columns))
    assert report.rows_converted == 1 and report.to_json()["worksheet"] == "Visits"
    issues = report.to_outcome()["issue"]
    assert any("read the worksheet 'Visits'; the others: Notes" in i["diagnostics"] for i in issues)
    (issue,) = refused(lambda: run(sheet, tmp_path, contract(sheet="Visit", columns=columns)))
    assert "did you mean 'Visits'" in issue.message
    (issue,) = refused(lambda: run(sheet, tmp_path, contract(sheet=3, columns=columns)))
    assert "no worksheet 3 (worksheets: 1: Notes, 2: Visits)" in issue.message
    # the first worksheet, when none is named: its header lacks the columns, and says which it is
    issues = refused(lambda: run(sheet, tmp_path, contract(columns=columns)))
    assert issues[-1].rule == "worksheet-read" and "the others: Visits" in issues[-1].message


def test_the_header_row_skips_title_rows_and_two_rows_join_their_groups(tmp_path):
    rows = [
        ["Verlaufsbogen 2024"],
        ["", "", "PHQ-4", "", "", ""],
        ["Patient", "Datum", "Nervosität", "Sorgen", "Interesse", "Niedergeschlagenheit"],
        ["P1", "2024-01-10", 1, 2, 1, 1],
    ]
    sheet = write_csv(tmp_path / "s.csv", rows)
    columns = dict(zip([f"PHQ-4 {h}" for h in rows[2][2:]], PHQ, strict=True))
    used = contract(header={"row": 2, "rows": 2}, columns=columns)
    report, found = run(sheet, tmp_path, used)
    assert report.rows_converted == 1
    assert observations(found)[("2024-01-10", "70272-0")]["valueQuantity"]["value"] == 5
    # the same in a workbook whose group cell is merged over its columns
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.active.append(["P1", "2024-02-10", 1, 1, 1, 1, "FIQR?"])
    workbook.active.merge_cells("C2:F2")
    workbook.save(tmp_path / "s.xlsx")
    report, found = run(tmp_path / "s.xlsx", tmp_path, used)
    assert report.rows_converted == 2
    # a header row that is not there
    (issue,) = refused(lambda: run(sheet, tmp_path, contract(header={"row": 9}, columns=columns)))
    assert issue.message == "s.csv has no header row at row 9"


def test_decimal_commas_in_any_cell_and_never_an_ambiguous_dot(tmp_path):
    rows = [["Patient", "Datum", "Dosis", "FIQR"], ["P1", "2024-01-10", "4,5 mg", "37,5"]]
    rows += [["P1", "2024-02-10", "1.500", "35,5"]]  # 1.500: 1500 or 1.5? refused
    sheet = write_xlsx(tmp_path / "s.xlsx", rows)
    used = contract(
        decimal_comma=True, ldn_dose={"column": "Dosis"}, columns={"FIQR": "fiqr-total"}
    )
    report, found = run(sheet, tmp_path, used)
    assert observations(found)[("2024-01-10", "fiqr-total")]["valueQuantity"]["value"] == 37.5
    (entry,) = report.partial
    assert "ambiguous" in entry.issues[0].message and entry.issues[0].column == 'column C "Dosis"'


def test_value_maps_for_any_column_and_the_dose(tmp_path):
    rows = [["Patient", "Datum", "LDN", "Nacken", "Kopf", *PHQ]]
    rows += [["P1", "2024-01-10", "keine", "x", "sim", 1, 2, 3, 4]]
    rows += [["P1", "2024-02-10", "4,5 mg", "", "não", 1, 1, 1, 1]]
    sheet = write_csv(tmp_path / "s.csv", rows)
    coded = {"values": {1: 0, 2: 1, 3: 2, 4: 3}}  # a coded choice: 1 is the first option
    used = load(
        yaml.safe_dump(
            {
                "patient": {"column": "Patient"},
                "visit_date": {"column": "Datum"},
                "ldn_dose": {"column": "LDN", "values": {"keine": 0}},
                "decimal_comma": True,
                "columns": {
                    "Nacken": {"to": "wpi-neck", "blank": False},
                    "Kopf": "sss-headache",
                    **{p: {"to": p, "values": dict(coded["values"])} for p in PHQ},
                },
            },
            allow_unicode=True,
        )
    )
    report, found = run(sheet, tmp_path, used)
    assert report.rows_rejected == 0, report.to_json()
    scores = observations(found)
    assert scores[("2024-01-10", "70272-0")]["valueQuantity"]["value"] == 0 + 1 + 2 + 3
    answers = {
        (r["authored"][:10], item["linkId"]): item["answer"][0]
        for r in found
        if r["resourceType"] == "QuestionnaireResponse"
        for item in _items(r["item"])
        if "answer" in item
    }
    assert answers[("2024-01-10", "wpi-neck")] == {"valueBoolean": True}  # x
    # blank is no only where the WPI is part of the visit; here none of its columns is filled
    assert ("2024-02-10", "wpi-neck") not in answers
    assert answers[("2024-01-10", "sss-headache")] == {"valueBoolean": True}  # sim
    assert answers[("2024-02-10", "sss-headache")] == {"valueBoolean": False}  # não
    doses = [r for r in found if r["resourceType"] == "MedicationStatement"]
    assert [d["doseAndRate"][0]["doseQuantity"]["value"] for s in doses for d in s["dosage"]] == [
        4.5
    ]


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for item in items for x in [item, *_items(item.get("item", []))]]


def test_a_missing_column_names_the_nearest_header_unless_optional(tmp_path):
    sheet = write_csv(
        tmp_path / "s.csv",
        [["Patienten-Nr", "Datum", "Schmerz max", "Schmerz Mittel"], ["P1", "2024-01-10", 70, 40]],
    )
    used = contract(
        patient={"column": "Patient-Nr"},
        ldn_dose={"column": "LDN"},
        columns={"Schmerz Maximum": "pain-max", "Schmerz Mittel": "pain-mean"},
    )
    issues = refused(lambda: run(sheet, tmp_path, used))
    messages = [i.message for i in issues]
    assert messages == [
        "no patient column 'Patient-Nr'; did you mean 'Patienten-Nr'?",
        "no LDN dose column 'LDN'; the header has 'Patienten-Nr', 'Datum', 'Schmerz max', "
        "'Schmerz Mittel'",
        "no pain-max column 'Schmerz Maximum'; did you mean 'Schmerz max'?",
    ]
    assert {i.rule for i in issues} == {"missing-column"}
    optional = contract(
        patient={"column": "Patienten-Nr"},
        ldn_dose={"column": "LDN", "optional": True},
        columns={
            "Schmerz Maximum": {"to": "pain-max", "optional": True},
            "Schmerz Mittel": "pain-mean",
        },
    )
    report, _ = run(sheet, tmp_path, optional)
    assert report.rows_converted == 1


def test_a_rows_problems_come_all_at_once(tmp_path):
    header = ["Patient", "Datum", *PHQ, "70272-0", "pain-mean"]
    sheet = write_csv(tmp_path / "s.csv", [header, ["", "31.02.2024", 1, "oft", 1, 1, 9, 500]])
    columns = {p: p for p in [*PHQ, "70272-0", "pain-mean"]}
    report, _ = run(sheet, tmp_path, contract(columns=columns))
    (entry,) = report.rejected
    found = [(i.rule, i.column) for i in entry.issues]
    assert ("missing-patient", 'column A "Patient"') in found
    assert ("invalid-date", 'column B "Datum"') in found
    assert ("not-an-option", 'column D "phq4-worry"') in found
    assert ("out-of-range", 'column H "pain-mean"') in found


def test_did_you_mean_for_targets_keys_and_words():
    (issue,) = refused(lambda: contract(columns={"F1": "fiqr-f01"}))
    assert issue.message == "'fiqr-f01' is not a linkId or score code; did you mean 'fiqr-f1'?"
    assert issue.expression == "contract.columns.F1"
    (issue,) = refused(lambda: contract(visit_dates={}))
    assert issue.message == "unknown field 'visit_dates'; did you mean 'visit_date'?"
    plan = plan_rows(["Patient", "Datum", "K"], contract(columns={"K": "sss-headache"}),
                     links_for("ndjson", SETTINGS))  # fmt: skip
    assert isinstance(plan, RowPlan)
    result = convert_row(plan, 2, ["P1", "2024-01-10", "jaa"])
    assert "did you mean 'ja'?" in result.issues[0].message


def test_a_yaml_error_says_line_and_column():
    (issue,) = refused(lambda: load("patient: {column: P}\nvisit_date: [unclosed\ncolumns: {}\n"))
    assert issue.expression is not None and issue.expression.startswith("line ")
    assert "column" in issue.expression and "Traceback" not in issue.message
    (issue,) = refused(lambda: load("patient:\n\tcolumn: P\n"))
    assert issue.expression == "line 2, column 1" and "tabs" in issue.message


# --- issue 18: the sheet faults -----------------------------------------------------------------


def test_a_utf16_csv_is_read_by_its_bom_and_refused_without_one(tmp_path):
    text = "patient_id,visit_date,pain-mean\nP1,2024-01-10,40\n"
    for encoding in ("utf-16", "utf-32"):
        (tmp_path / "u.csv").write_bytes(text.encode(encoding))
        report, _ = run(tmp_path / "u.csv", tmp_path, default_contract())
        assert report.rows_converted == 1, encoding
    (tmp_path / "u.csv").write_bytes(text.encode("utf-16-le"))
    (issue,) = refused(lambda: run(tmp_path / "u.csv", tmp_path, default_contract()))
    assert "without a byte order mark" in issue.message
    named = dataclasses.replace(default_contract(), encoding="utf-16-le")
    report, _ = run(tmp_path / "u.csv", tmp_path, named)
    assert report.rows_converted == 1


def _damaged(tmp_path: Path, part: str, change: Any) -> Path:
    source = write_xlsx(tmp_path / "good.xlsx", [["patient_id", "visit_date", "pain-mean"],
                                                 ["P1", "2024-01-10", 40]])  # fmt: skip
    data = source.read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            zout.writestr(info.filename, change(body) if info.filename == part else body)
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize(
    ("part", "change"),
    [
        ("xl/worksheets/sheet1.xml", lambda b: b[: len(b) // 2]),
        ("xl/worksheets/sheet1.xml", lambda b: b"<<<" + b),
        ("xl/workbook.xml", lambda b: b[:40]),
        ("xl/styles.xml", lambda b: b"garbage"),
        ("xl/_rels/workbook.xml.rels", lambda b: b[:30]),
    ],
)
def test_a_damaged_part_inside_an_xlsx_is_an_outcome(tmp_path, part, change):
    path = _damaged(tmp_path, part, change)
    (issue,) = refused(lambda: run(path, tmp_path, default_contract()))
    assert issue.rule == "not-a-workbook" and "damaged.xlsx" in issue.message


def test_a_corrupt_deflate_stream_is_an_outcome(tmp_path):
    source = write_xlsx(
        tmp_path / "good.xlsx", [["patient_id", "visit_date"], ["P1", "2024-01-10"]]
    )
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for index in range(start + 10, start + 20):
        data[index] ^= 0xFF
    (tmp_path / "bad.xlsx").write_bytes(bytes(data))
    (issue,) = refused(lambda: run(tmp_path / "bad.xlsx", tmp_path, default_contract()))
    assert issue.rule == "not-a-workbook" and "damaged" in issue.message


def test_contract_faults_are_refused_with_the_key():
    base = "patient: {column: P}\nvisit_date: {column: D%s}\n%scolumns: {%s}\n"
    cases = [
        (base % ("", "", "S: {to: fiqr-total, values: {hoch: high}}"), "takes a number"),
        (base % ("", "csv: {encoding: rot13}\n", ""), "not a text encoding"),
        (base % ("", "csv: {encoding: base64}\n", ""), "not a text encoding"),
        (base % (", formats: ['%d.%m.%Y %d']", "", ""), "names %d more than once"),
        (base % (", formats: ['%d.%m.%Y %']", "", ""), "not a date format"),
        (base % ("", "sheet: 0\n", ""), "position"),
        (base % ("", "header: {rows: 3}\n", ""), "Must be one of"),
    ]
    for text, fragment in cases:
        issues = refused(lambda text=text: load(text))
        assert any(fragment in i.message for i in issues), (text, issues)


def test_a_non_text_encoding_given_to_the_reader_is_an_outcome():
    for name in ("rot13", "base64", "zlib"):
        used = dataclasses.replace(default_contract(), encoding=name)
        stream = io.BytesIO(b"patient_id,visit_date\nP1,2024-01-10\n")

        def read(used: SheetContract = used, stream: io.BytesIO = stream) -> None:
            with read_csv(stream, "s.csv", used):
                pass

        (issue,) = refused(read)
        assert "not a text encoding" in issue.message


# --- every other way in: contracts and cells ----------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["%d.%m.%Y", "%d%d%m%Y", "%Y", "%", "utf-16", "rot13", "fiqr-f1", "x"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = ["patient", "visit_date", "ldn_dose", "csv", "decimal_comma", "true_values", "false_values",
        "sheet", "header", "redcap", "on_mismatch", "ldn", "test_data", "prefer", "columns"]  # fmt: skip
NESTED = {
    "patient": ["column", "system"],
    "visit_date": ["column", "formats"],
    "ldn_dose": ["column", "optional", "values"],
    "csv": ["delimiter", "encoding", "decimal_comma"],
    "header": ["row", "rows", "join"],
    "redcap": ["event", "complete", "checkboxes"],
}


@st.composite
def contracts(draw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True)):
        if key in NESTED and draw(st.booleans()):
            fields = draw(st.lists(st.sampled_from(NESTED[key]), max_size=3, unique=True))
            data[key] = {name: draw(VALUES) for name in fields}
        elif key == "columns" and draw(st.booleans()):
            data[key] = {
                draw(st.text(max_size=5)): draw(
                    st.one_of(
                        st.sampled_from(["fiqr-f1", "fiqr-total", "wpi-neck", "sss-fatigue"]),
                        st.fixed_dictionaries(
                            {"to": st.sampled_from(["fiqr-f1", "fiqr-total", "wpi-neck", "x"])},
                            optional={"values": VALUES, "blank": VALUES, "optional": VALUES},
                        ),
                    )
                )
                for _ in range(draw(st.integers(0, 3)))
            }
        else:
            data[key] = draw(VALUES)
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contracts())
def test_any_contract_is_loaded_or_refused_with_issues(data):
    try:
        contract_from_data(data)
    except InvalidInput as error:
        assert error.issues and all(i.message for i in error.issues)


CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["4,5 mg", "1.500", "x", "ja", "keine", "31.02.2024", "1 234,5", "4.5µg"]),
    st.dates(),
    st.datetimes(),
)
RICH = contract_from_data(
    {
        "patient": {"column": "P"},
        "visit_date": {"column": "D", "formats": ["%d.%m.%Y"]},
        "ldn_dose": {"column": "L", "values": {"keine": 0}},
        "decimal_comma": True,
        "redcap": {"event": None, "checkboxes": {"wpi": ["wpi-neck", "wpi-chest"]}},
        "columns": {
            "F": "fiqr-f1",
            "T": {"to": "fiqr-total", "values": {"hoch": 80}},
            "N": {"to": "phq4-nervous", "values": {"oft": 2}},
            "H": {"to": "sss-headache", "blank": False},
        },
    }
)
RICH_HEADER = ["P", "D", "L", "F", "T", "N", "H", "wpi___1", "wpi___2", "form_complete"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CELLS, min_size=0, max_size=len(RICH_HEADER) + 2))
def test_any_row_is_converted_or_rejected_never_raises(cells):
    plan = plan_rows(RICH_HEADER, RICH, links_for("ndjson", SETTINGS))
    assert isinstance(plan, RowPlan)
    result = convert_row(plan, 2, cells)
    assert result.blank or result.rejected or result.patient is not None
    if result.rejected:
        assert any(i.is_error for i in result.issues) and not result.resources


# --- numbers and doses: exact or rejected -------------------------------------------------------


@st.composite
def written(draw: Any) -> tuple[Decimal, str, bool]:
    """A number, and the way a clinic may have written it: (value, text, decimal comma)."""
    value = draw(st.decimals(min_value=0, max_value=10**6, places=draw(st.integers(0, 4))))
    comma = draw(st.booleans())
    text = f"{value:f}"
    whole, _, fraction = text.partition(".")
    if draw(st.booleans()) and len(whole) > 3:  # thousands separated
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        separator = draw(st.sampled_from([".", " "] if comma else [" ", "\u00a0"]))
        whole = separator.join([whole, *groups])
    text = whole + ((("," if comma else ".") + fraction) if fraction else "")
    unit = draw(st.sampled_from(["", " mg", "mg", " MG", " mg/Tag"]))
    return value, text + unit, comma


@settings(max_examples=300, deadline=None)
@given(written())
def test_a_written_number_is_read_exactly_or_rejected(case):
    value, text, comma = case
    used = SheetContract(decimal_comma=comma)
    try:
        read = parse_dose(text, used)
    except CellError:
        # refused only where the text is ambiguous (1.500 with decimal commas)
        assert comma and "," not in text
        return
    assert read == value and str(read) == str(value), (text, read)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,- mgµlMG/\u00a0e+_", max_size=14), st.booleans())
def test_any_text_is_a_number_only_as_written(text, comma):
    used = SheetContract(decimal_comma=comma)
    for parse in (parse_decimal, parse_dose):
        try:
            read = parse(text, used)
        except CellError:
            continue
        digits = "".join(c for c in text.split("e")[0].split("E")[0] if c.isdigit()).lstrip("0")
        shown = "".join(c for c in f"{read:f}" if c.isdigit()).lstrip("0")
        assert shown.rstrip("0") == digits.rstrip("0") or "e" in text.lower(), (text, read)


def test_other_units_are_rejected_with_the_reason():
    used = SheetContract(decimal_comma=True)
    for text, rule in (("4,5 µg", "dose-unit"), ("4.5 ml", "dose-unit"), ("4 mg/kg", "dose-unit"),
                       ("4,5 mg abends", "invalid-value"), ("ca. 4 mg", "invalid-value")):  # fmt: skip
        with pytest.raises(CellError) as raised:
            parse_dose(text, used)
        assert raised.value.rule == rule, text
    assert codecs.lookup("utf-16")  # the encodings above are real ones
