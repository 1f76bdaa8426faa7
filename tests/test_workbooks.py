"""Real clinic workbooks (issue 20): built here the way clinics keep them (German, Portuguese and
Spanish headers, title rows, merged group headers, doses with units, a REDCap export, a notes
sheet first, extra columns, bad cells). `contract suggest` maps the columns a person would, and
converting with its draft gives the values the items compute."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from openpyxl import Workbook

from adapter.cli import main
from tests.support.sheets import observations, resources

FIQR_PREFIXES = [f"F{n}" for n in range(1, 10)] + ["O1", "O2"] + [f"S{n}" for n in range(1, 11)]
FIQR_IDS = [f"fiqr-{p.lower()}" for p in FIQR_PREFIXES]
WPI_IDS = [
    "wpi-jaw-l", "wpi-jaw-r", "wpi-shoulder-l", "wpi-shoulder-r", "wpi-upper-arm-l",
    "wpi-upper-arm-r", "wpi-lower-arm-l", "wpi-lower-arm-r", "wpi-hip-l", "wpi-hip-r",
    "wpi-upper-leg-l", "wpi-upper-leg-r", "wpi-lower-leg-l", "wpi-lower-leg-r", "wpi-neck",
    "wpi-upper-back", "wpi-lower-back", "wpi-chest", "wpi-abdomen",
]  # fmt: skip


def fiqr_total(answers: list[int]) -> float:
    """The published FIQR formula, written out here apart from the project's."""
    function, overall, symptoms = answers[:9], answers[9:11], answers[11:]
    return round(sum(function) / 3 + sum(overall) + sum(symptoms) / 2, 4)


def suggest_and_convert(
    sheet: Path, tmp_path: Path, *extra: str
) -> tuple[dict[str, Any], str, dict[str, Any], list[dict[str, Any]]]:
    """`contract suggest SHEET --out draft.yaml`, then `convert-sheet` with that draft: (the
    draft as data, the suggestion's report, the row report, the resources)."""
    runner = CliRunner()
    draft = tmp_path / "draft.yaml"
    suggested = runner.invoke(
        main, ["contract", "suggest", str(sheet), "--out", str(draft), *extra]
    )
    assert suggested.exit_code == 0, suggested.output
    out, report = tmp_path / "out", tmp_path / "report.json"
    converted = runner.invoke(
        main,
        ["convert-sheet", str(sheet), "--contract", str(draft), "--format", "ndjson"]
        + ["--out", str(out), "--report", str(report)],
    )
    assert converted.exit_code in (0, 3), converted.output
    return (
        yaml.safe_load(draft.read_text()),
        suggested.stderr,
        json.loads(report.read_text()),
        resources(out),
    )


# --- a German workbook: notes sheet first, title row, merged group headers, doses with mg -----

GERMAN_ROWS = [
    # patient, date, dose, 21 FIQR answers, PHQ-4 (4), pain mean, pain max, remark
    ["A-17", "14.02.2024", "1,5 mg", [7, 8, 6, 9, 8, 7, 7, 5, 6, 8, 8, 9, 8, 7, 8, 6, 7, 6, 8, 6, 6],
     [2, 2, 1, 2], 70, 90, "erste Vorstellung"],
    ["A-17", "16.05.2024", "4,5 mg", [5, 6, 5, 7, 6, 5, 5, 4, 5, 6, 6, 7, 6, 5, 6, 5, 5, 5, 6, 5, 5],
     [1, 2, 1, 1], 55, 75, ""],
    ["B-03", "20.05.2024", "3 mg", [4, 4, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4],
     [0, 1, 0, 1], 40, 60, "F3 falsch erfasst"],  # 11: out of range, the FIQR of this visit only
    ["B-03", "21.08.2024", "4,5 µg", [3] * 21, [0, 0, 0, 1], 30, 50, ""],  # a unit that is not mg
]  # fmt: skip


def german_workbook(path: Path) -> Path:
    workbook = Workbook()
    notes = workbook.active
    notes.title = "Hinweise"
    notes.append(["Bitte Datum als TT.MM.JJJJ eintragen; Dosis in mg."])
    sheet = workbook.create_sheet("Verlauf")
    sheet.append(["Fibromyalgie-Ambulanz: Verlaufsbogen 2024"])
    sheet.append([])
    groups = ["", "", ""] + ["FIQR"] + [None] * 20 + ["PHQ-4", None, None, None, "Schmerz", None]
    sheet.append(groups)
    sheet.merge_cells(start_row=3, start_column=4, end_row=3, end_column=24)
    sheet.merge_cells(start_row=3, start_column=25, end_row=3, end_column=28)
    sheet.merge_cells(start_row=3, start_column=29, end_row=3, end_column=30)
    sheet.append(
        ["Patienten-Nr", "Datum", "LDN (mg/Tag)", *FIQR_PREFIXES]
        + ["Nervosität", "Sorgen", "Interesse", "Niedergeschlagenheit"]
        + ["Mittel (0-100)", "Max (0-100)", "Bemerkung"]
    )
    for patient, day, dose, fiqr, phq, mean, worst, remark in GERMAN_ROWS:
        sheet.append([patient, day, dose, *fiqr, *phq, mean, worst, remark])
    workbook.save(path)
    return path


def test_a_german_workbook_is_suggested_and_converted(tmp_path):
    sheet = german_workbook(tmp_path / "verlauf.xlsx")
    draft, said, report, found = suggest_and_convert(sheet, tmp_path)

    # what a person would map, and nothing more
    assert draft["sheet"] == "Verlauf" and draft["header"] == {"row": 3, "rows": 2}
    assert draft["patient"] == {"column": "Patienten-Nr"}
    assert draft["visit_date"] == {"column": "Datum", "formats": ["%d.%m.%Y"]}
    assert draft["ldn_dose"] == {"column": "LDN (mg/Tag)"} and draft["decimal_comma"] is True
    columns = {h: (c if isinstance(c, str) else c["to"]) for h, c in draft["columns"].items()}
    expected = {f"FIQR {p}": t for p, t in zip(FIQR_PREFIXES, FIQR_IDS, strict=True)}
    expected |= {
        "PHQ-4 Nervosität": "phq4-nervous",
        "PHQ-4 Sorgen": "phq4-worry",
        "PHQ-4 Interesse": "phq4-interest",
        "PHQ-4 Niedergeschlagenheit": "phq4-down",
        "Schmerz Mittel (0-100)": "pain-mean",
        "Schmerz Max (0-100)": "pain-max",
    }
    assert columns == expected
    assert "unmapped AE 'Bemerkung'" in said and "others: Hinweise" in said

    # the worksheet read is said; a bad FIQR cell rejects that visit's FIQR only; a dose in µg
    # rejects the dose only: rows converted in part, every row accounted for
    assert report["worksheet"] == "Verlauf" and report["worksheets"] == ["Hinweise", "Verlauf"]
    assert (report["rows_read"], report["rows_converted"], report["rows_rejected"]) == (4, 4, 0)
    assert report["rows_partial"] == 2
    partial = {entry["row"]: entry["outcome"]["issue"] for entry in report["partial"]}
    assert set(partial) == {7, 8}
    codes = {
        row: [i["details"]["coding"][0]["code"] for i in issues] for row, issues in partial.items()
    }
    assert "out-of-range" in codes[7] and "response-rejected" in codes[7]
    assert "dose-unit" in codes[8] and "dose-history-cut" in codes[8]

    # the values the items compute
    scores = observations(found)
    for _, day, _, fiqr, phq, mean, worst, _ in GERMAN_ROWS:
        iso = "-".join(reversed(day.split(".")))
        if 11 not in fiqr:
            assert scores[(iso, "fiqr-total")]["valueQuantity"]["value"] == fiqr_total(fiqr)
        else:
            assert (iso, "fiqr-total") not in scores
        assert scores[(iso, "70272-0")]["valueQuantity"]["value"] == sum(phq)
        assert scores[(iso, "pain-mean")]["valueQuantity"]["value"] == mean
        assert scores[(iso, "pain-max")]["valueQuantity"]["value"] == worst
    statements = [r for r in found if r["resourceType"] == "MedicationStatement"]
    doses = sorted(
        d["doseAndRate"][0]["doseQuantity"]["value"] for s in statements for d in s["dosage"]
    )
    assert doses == [1.5, 3, 4.5]  # 4,5 µg is not read as anything


# --- a Portuguese sheet: text answers, sim/não, day-first dates -------------------------------


def test_a_portuguese_sheet_with_answer_words_and_sim_nao(tmp_path):
    header = ["Paciente", "Data da consulta", "Dose de LDN"]
    header += ["Fadiga (0-3)", "Acordar cansado (0-3)", "Sintomas cognitivos (0-3)"]
    header += ["Dor de cabeça", "Dor no baixo ventre", "Depressão"]
    header += ["PHQ-4 Nervoso", "PHQ-4 Preocupação", "PHQ-4 Interesse", "PHQ-4 Para baixo"]
    header += ["Observações"]
    rows = [
        ["P-001", "23/01/2024", "1,5", 2, 3, 1, "sim", "não", "não"]
        + ["Vários dias", "Nenhuma vez", "Quase todos os dias", "Mais da metade dos dias", ""],
        ["P-001", "27/03/2024", "3", 1, 2, 1, "não", "não", "não"]
        + ["Nenhuma vez", "Nenhuma vez", "Vários dias", "Vários dias", "melhorou"],
    ]
    sheet = tmp_path / "seguimento.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=";").writerows([header, *rows])
    draft, said, report, found = suggest_and_convert(sheet, tmp_path)
    columns = {h: (c if isinstance(c, str) else c["to"]) for h, c in draft["columns"].items()}
    assert columns == {
        "Fadiga (0-3)": "sss-fatigue",
        "Acordar cansado (0-3)": "sss-unrefreshed",
        "Sintomas cognitivos (0-3)": "sss-cognitive",
        "Dor de cabeça": "sss-headache",
        "Dor no baixo ventre": "sss-abdominal",
        "Depressão": "sss-depression",
        "PHQ-4 Nervoso": "phq4-nervous",
        "PHQ-4 Preocupação": "phq4-worry",
        "PHQ-4 Interesse": "phq4-interest",
        "PHQ-4 Para baixo": "phq4-down",
    }
    assert draft["visit_date"]["formats"] == ["%d/%m/%Y"]
    assert draft["columns"]["PHQ-4 Nervoso"]["values"]["Vários dias"] == 1
    assert "unmapped" in said and "Observações" in said
    assert report["rows_converted"] == 2 and report["rows_rejected"] == 0
    scores = observations(found)
    assert scores[("2024-01-23", "sss-score")]["valueQuantity"]["value"] == 2 + 3 + 1 + 1
    assert scores[("2024-01-23", "70272-0")]["valueQuantity"]["value"] == 1 + 0 + 3 + 2
    assert scores[("2024-03-27", "70272-0")]["valueQuantity"]["value"] == 2


# --- a Spanish sheet: a title row, reported totals, doses written 4.5mg -----------------------


def test_a_spanish_sheet_with_a_title_row_and_reported_totals(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Seguimiento"
    sheet.append(["Unidad de Fibromialgia - seguimiento LDN"])
    sheet.append(["Nº de paciente", "Fecha de visita", "Dosis LDN", "Dolor medio", "Dolor máximo"]
                 + ["FIQR total", "Notas del médico"])  # fmt: skip
    sheet.append(["E-9", "05/02/2024", "1.5mg", 60, 80, 64.5, "inicio"])
    sheet.append(["E-9", "28/04/2024", "4.5mg", 45, 70, 51.2, ""])
    sheet.append(["E-9", "30/06/2024", "4.5mg", 40, 65, 120, ""])  # a total above 100
    workbook.save(tmp_path / "seguimiento.xlsx")
    draft, said, report, found = suggest_and_convert(tmp_path / "seguimiento.xlsx", tmp_path)
    assert draft["header"] == {"row": 2}
    assert draft["patient"]["column"] == "Nº de paciente"
    assert draft["ldn_dose"]["column"] == "Dosis LDN"
    assert draft["columns"] == {
        "Dolor medio": "pain-mean",
        "Dolor máximo": "pain-max",
        "FIQR total": "fiqr-total",
    }
    assert "Notas del médico" in said
    scores = observations(found)
    assert scores[("2024-02-05", "fiqr-total")]["valueQuantity"]["value"] == 64.5
    assert scores[("2024-04-28", "pain-max")]["valueQuantity"]["value"] == 70
    # the bad total rejects the FIQR of that visit, not its pain ratings
    assert report["rows_partial"] == 1 and ("2024-06-30", "pain-mean") in scores
    assert ("2024-06-30", "fiqr-total") not in scores


# --- a REDCap export: events, checkboxes, completion ------------------------------------------


def redcap_export(path: Path) -> Path:
    header = ["record_id", "redcap_event_name", "visit_date", "ldn_dose", "visit_complete"]
    header += [f"wpi___{n}" for n in range(1, 20)]
    header += ["sss_fatigue", "sss_unrefreshed", "sss_cognitive"]
    header += ["sss_headache", "sss_abdominal", "sss_depression", "wpi_sss_complete"]
    header += [f"fiqr_{n}" for n in range(1, 22)] + ["fiqr_complete"]
    wpi = [1] * 8 + [0] * 11
    rows = [
        ["101", "baseline_arm_1", "2024-03-01", "1.5", 2, *wpi, 2, 3, 1, 1, 0, 0, 2]
        + [5] * 21
        + [2],
        # the WPI/SSS form was not filled in at this event: REDCap exports its boxes as 0
        ["101", "month_3_arm_1", "2024-06-03", "4.5", 2, *([0] * 19), "", "", "", "", "", "", 0]
        + [4] * 21
        + [2],
        # an event nobody has reached yet: every form unfilled
        ["101", "month_6_arm_1", "", "", 0, *([0] * 19), "", "", "", "", "", "", 0]
        + [""] * 21
        + [0],
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_a_redcap_export_honours_form_completion(tmp_path):
    sheet = redcap_export(tmp_path / "study_export.csv")
    draft, said, report, found = suggest_and_convert(sheet, tmp_path)
    assert draft["patient"] == {"column": "record_id"}
    assert draft["redcap"]["event"] == "redcap_event_name"
    assert draft["redcap"]["checkboxes"] == {"wpi": WPI_IDS}
    columns = {h: (c if isinstance(c, str) else c["to"]) for h, c in draft["columns"].items()}
    assert {columns[f"fiqr_{n}"] for n in range(1, 22)} == set(FIQR_IDS)
    assert columns["fiqr_3"] == "fiqr-f3" and columns["fiqr_21"] == "fiqr-s10"
    assert columns["sss_fatigue"] == "sss-fatigue" and columns["sss_depression"] == "sss-depression"
    assert "REDCap" in said and "unmapped" not in said.split("columns mapped")[0].split("\n", 1)[1]
    # the unreached event is no row to convert; the month-3 WPI is no invented 0
    assert (report["rows_read"], report["rows_converted"], report["rows_blank"]) == (2, 2, 1)
    scores = observations(found)
    assert scores[("2024-03-01", "wpi-score")]["valueQuantity"]["value"] == 8
    assert ("2024-06-03", "wpi-score") not in scores and ("2024-06-03", "sss-score") not in scores
    assert scores[("2024-06-03", "fiqr-total")]["valueQuantity"]["value"] == fiqr_total([4] * 21)


def test_a_redcap_form_marked_incomplete_with_answers_is_said_not_read(tmp_path):
    sheet = redcap_export(tmp_path / "export.csv")
    rows = list(csv.reader(sheet.read_text().splitlines()))
    rows[1][rows[0].index("fiqr_complete")] = "0"  # the baseline FIQR: incomplete, with answers
    with open(sheet, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    _, _, report, found = suggest_and_convert(sheet, tmp_path)
    warned = [
        i["details"]["text"]
        for w in report["warnings"] + report["rejected"]
        for i in w["outcome"]["issue"]
        if i["details"]["coding"][0]["code"] == "form-not-complete"
    ]
    assert warned and "form fiqr is not marked filled in" in warned[0]
    assert ("2024-03-01", "fiqr-total") not in observations(found)
