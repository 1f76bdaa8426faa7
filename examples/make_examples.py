"""Writes the case report's two-year follow-up as sheets: the canonical XLSX and a legacy CSV.

    .venv/bin/python examples/make_examples.py

Totals and dose follow the figure captions of Moser, Cureus 2025: February to
August 2023 FIQR > 70 (72.5 here), SSS 9, PHQ-4 7, pain mean 70 / max 90; WPI 17 at the initial
assessment; LDN 4.5 mg/day; April 2025 FIQR 35 points lower (37.5, mild), SSS 6, PHQ-4 5, pain
mean 30 / max 55. Item answers are chosen so the totals match. The captions give no values
between August 2023 and April 2025 and no titration schedule: the 1.5 -> 3 -> 4.5 mg steps in
September 2023 are common start-low practice, marked as such in the README.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

HERE = Path(__file__).parent
PATIENT = "MOSER-CASE-1"
# Said in every resource made from the examples (meta.security HTEST and the narrative).
TEST_DATA = (
    "Example from the published case (Moser, Cureus 2025): the totals, the baseline WPI areas, "
    "the pain ratings and LDN 4.5 mg/day follow the figure captions; the item answers, the visit "
    "days and the 1.5 -> 3 -> 4.5 mg titration are invented to match them."
)

WPI_BASELINE = {
    "wpi-jaw-l", "wpi-jaw-r", "wpi-shoulder-l", "wpi-shoulder-r", "wpi-upper-arm-l",
    "wpi-upper-arm-r", "wpi-lower-arm-l", "wpi-lower-arm-r", "wpi-hip-l", "wpi-hip-r",
    "wpi-upper-leg-l", "wpi-upper-leg-r", "wpi-lower-leg-l", "wpi-lower-leg-r", "wpi-neck",
    "wpi-upper-back", "wpi-chest",
}  # fmt: skip
WPI_AREAS = [
    ("wpi-jaw-l", "Kiefer links"), ("wpi-jaw-r", "Kiefer rechts"),
    ("wpi-shoulder-l", "Schulter links"), ("wpi-shoulder-r", "Schulter rechts"),
    ("wpi-upper-arm-l", "Oberarm links"), ("wpi-upper-arm-r", "Oberarm rechts"),
    ("wpi-lower-arm-l", "Unterarm links"), ("wpi-lower-arm-r", "Unterarm rechts"),
    ("wpi-hip-l", "Hüfte links"), ("wpi-hip-r", "Hüfte rechts"),
    ("wpi-upper-leg-l", "Oberschenkel links"), ("wpi-upper-leg-r", "Oberschenkel rechts"),
    ("wpi-lower-leg-l", "Unterschenkel links"), ("wpi-lower-leg-r", "Unterschenkel rechts"),
    ("wpi-neck", "Nacken"), ("wpi-upper-back", "Oberer Rücken"), ("wpi-lower-back", "Unterer Rücken"),
    ("wpi-chest", "Brust"), ("wpi-abdomen", "Bauch"),
]  # fmt: skip


def fiqr(function: list[int], overall: list[int], symptoms: list[int]) -> dict[str, int]:
    answers = {f"fiqr-f{n}": v for n, v in enumerate(function, 1)}
    answers |= {f"fiqr-o{n}": v for n, v in enumerate(overall, 1)}
    return answers | {f"fiqr-s{n}": v for n, v in enumerate(symptoms, 1)}


def sss(fatigue: int, unrefreshed: int, cognitive: int, headache: bool) -> dict[str, object]:
    return {
        "sss-fatigue": fatigue, "sss-unrefreshed": unrefreshed, "sss-cognitive": cognitive,
        "sss-headache": headache, "sss-abdominal": False, "sss-depression": False,
    }  # fmt: skip


def phq4(nervous: int, worry: int, interest: int, down: int) -> dict[str, int]:
    return {
        "phq4-nervous": nervous,
        "phq4-worry": worry,
        "phq4-interest": interest,
        "phq4-down": down,
    }


# (date, LDN dose mg/day or None, answers, reported FIQR total for the legacy sheet)
VISITS: list[tuple[date, float | None, dict[str, object]]] = [
    (
        date(2023, 2, 14), None,
        {link_id: link_id in WPI_BASELINE for link_id, _ in WPI_AREAS}
        | sss(3, 3, 2, True) | {"fm-duration-3m": True}
        | fiqr([7, 8, 6, 9, 8, 7, 7, 5, 6], [8, 8], [9, 8, 7, 8, 6, 7, 6, 8, 6, 6])
        | phq4(2, 2, 1, 2) | {"pain-mean": 70, "pain-max": 90},
    ),
    (
        date(2023, 5, 16), None,
        sss(3, 3, 2, True)
        | fiqr([6, 8, 7, 9, 8, 7, 6, 6, 6], [9, 7], [9, 8, 8, 7, 6, 7, 6, 8, 6, 6])
        | phq4(2, 1, 2, 2) | {"pain-mean": 70, "pain-max": 90},
    ),
    (
        date(2023, 8, 22), None,
        sss(3, 2, 3, True)
        | fiqr([7, 7, 7, 8, 8, 7, 7, 6, 6], [8, 8], [8, 8, 7, 8, 7, 7, 6, 8, 6, 6])
        | phq4(2, 2, 2, 1) | {"pain-mean": 70, "pain-max": 90},
    ),
    (date(2023, 9, 1), 1.5, {}),
    (date(2023, 9, 15), 3.0, {}),
    (date(2023, 9, 29), 4.5, {}),
    (
        date(2025, 4, 10), 4.5,
        sss(2, 2, 1, True)
        | fiqr([2, 5, 3, 5, 4, 4, 4, 3, 3], [4, 4], [5, 4, 4, 4, 3, 4, 3, 4, 3, 3])
        | phq4(1, 2, 1, 1) | {"pain-mean": 30, "pain-max": 55},
    ),
]  # fmt: skip


def fiqr_total(answers: dict[str, object]) -> float | None:
    if "fiqr-f1" not in answers:
        return None
    function = sum(int(answers[f"fiqr-f{n}"]) for n in range(1, 10)) / 3  # type: ignore[call-overload]
    overall = sum(int(answers[f"fiqr-o{n}"]) for n in range(1, 3))  # type: ignore[call-overload]
    symptoms = sum(int(answers[f"fiqr-s{n}"]) for n in range(1, 11)) / 2  # type: ignore[call-overload]
    return round(function + overall + symptoms, 2)


def write_canonical_xlsx(path: Path) -> None:
    import io

    from openpyxl import load_workbook

    from adapter.sheets.template import FIXED_TIME, _fixed_zip_times, write_template

    workbook = load_workbook(io.BytesIO(write_template(".xlsx")))
    sheet = workbook["visits"]
    header = [cell.value for cell in sheet[1]]
    for day, dose, answers in VISITS:
        row = {"patient_id": PATIENT, "visit_date": day, "ldn_dose_mg": dose, **answers}
        sheet.append([row.get(column) for column in header])
    for cell in sheet["B"][1:]:
        cell.number_format = "yyyy-mm-dd"
    workbook.properties.created = workbook.properties.modified = FIXED_TIME
    raw = io.BytesIO()
    workbook.save(raw)
    path.write_bytes(_fixed_zip_times(raw.getvalue()))


LEGACY_COLUMNS = [
    ("Patienten-Nr", None), ("Datum", None), ("LDN (mg/Tag)", None),
    *[(f"Schmerz {label}", link_id) for link_id, label in WPI_AREAS],
    ("Müdigkeit (0-3)", "sss-fatigue"), ("Unerholt aufgewacht (0-3)", "sss-unrefreshed"),
    ("Kognitive Symptome (0-3)", "sss-cognitive"), ("Kopfschmerzen", "sss-headache"),
    ("Unterbauchschmerzen", "sss-abdominal"), ("Depression", "sss-depression"),
    ("Beschwerden seit mind. 3 Monaten", "fm-duration-3m"),
    *[(f"FIQR F{n}", f"fiqr-f{n}") for n in range(1, 10)],
    *[(f"FIQR O{n}", f"fiqr-o{n}") for n in range(1, 3)],
    *[(f"FIQR S{n}", f"fiqr-s{n}") for n in range(1, 11)],
    ("FIQR Gesamt", "fiqr-total"),
    ("PHQ-4 Nervosität", "phq4-nervous"), ("PHQ-4 Sorgen", "phq4-worry"),
    ("PHQ-4 Interesse", "phq4-interest"), ("PHQ-4 Niedergeschlagenheit", "phq4-down"),
    ("Schmerz Mittel (0-100)", "pain-mean"), ("Schmerz Max (0-100)", "pain-max"),
]  # fmt: skip
WPI_IDS = {link_id for link_id, _ in WPI_AREAS}


def _legacy_cell(link_id: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        if link_id in WPI_IDS:
            return "x" if value else ""  # checkbox style: a cross, or nothing
        return "ja" if value else "nein"
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


def write_legacy_csv(path: Path) -> None:
    with open(path, "w", newline="", encoding="cp1252") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow([header for header, _ in LEGACY_COLUMNS])
        for day, dose, answers in VISITS:
            values = {**answers, "fiqr-total": fiqr_total(answers)}
            row = [PATIENT, day.strftime("%d.%m.%Y"), _legacy_cell("", dose)]
            row += [_legacy_cell(link_id, values.get(link_id)) for _, link_id in LEGACY_COLUMNS[3:]]
            writer.writerow(row)


def write_legacy_contract(path: Path) -> None:
    lines = [
        "# Contract of the legacy CSV: German headers, dd.mm.yyyy dates, semicolons, decimal commas,",
        "# Windows-1252 text (encoding and delimiter are detected; they may also be set under csv:).",
        "patient: {column: Patienten-Nr, system: 'urn:example:mrn'}",
        "visit_date: {column: Datum, formats: ['%d.%m.%Y']}",
        "ldn_dose: {column: LDN (mg/Tag)}",
        "csv: {decimal_comma: true}",
        f"test_data: '{TEST_DATA}'",
        "true_values: [x, ja]",
        "false_values: [nein]",
        "columns:",
    ]
    for header, link_id in LEGACY_COLUMNS[3:]:
        if link_id in WPI_IDS:
            lines.append(f"  '{header}': {{to: {link_id}, blank: false}}")
        else:
            lines.append(f"  '{header}': {link_id}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_canonical_xlsx(HERE / "case-report-followup.xlsx")
    write_legacy_csv(HERE / "legacy-followup.csv")
    write_legacy_contract(HERE / "legacy-contract.yaml")
    print("wrote examples/case-report-followup.xlsx, legacy-followup.csv, legacy-contract.yaml")
