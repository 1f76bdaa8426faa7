"""A clinic's own workbook for the page's mapping step, built the way clinics keep them: a notes
worksheet first, a title row, a group header merged over its columns, German headers, "4,5 mg"
doses and a column nobody named for the page (the person maps it)."""

from __future__ import annotations

import io

from openpyxl import Workbook

HEADERS = [
    "Pat.-Nr.",
    "Datum",
    "LDN Dosis",
    "nervös",
    "Sorgen",
    "Interesse",
    "niedergeschlagen",
    "Schmerz max",
    "Eindruck",
    "Bemerkung",
]
ROWS = [
    ["MA-001", "10.01.2025", "", 2, 2, 1, 2, 80, None, "Erstvorstellung"],
    ["MA-001", "11.04.2025", "4,5 mg", 1, 1, 1, 0, 55, 2, ""],
    ["MA-002", "15.01.2025", "3 mg", 3, 2, 2, 3, 90, None, "x"],
    ["MA-002", "20.04.2025", "4.5mg", 1, 2, 1, 1, 60, 3, ""],
]
"""Rows 5-8 of the worksheet. Column I ("Eindruck", the PGIC) is what the suggestion leaves
unmapped; PHQ-4 totals: 7, 3, 10, 5."""
SUGGESTED = {
    "A": "$patient",
    "B": "$visit_date",
    "C": "$ldn_dose",
    "D": "phq4-nervous",
    "E": "phq4-worry",
    "F": "phq4-interest",
    "G": "phq4-down",
    "H": "pain-max",
    "I": "ignore",
    "J": "ignore",
}
"""What the page preselects for each column."""


def german_workbook(headers: list[str] | None = None) -> bytes:
    book = Workbook()
    notes = book.active
    notes.title = "Hinweise"
    notes.append(["Diese Arbeitsmappe enthält die Verlaufsdaten der LDN-Ambulanz."])
    sheet = book.create_sheet("Visiten")
    sheet.append(["Schmerzambulanz – Verlauf unter LDN 2025"])
    sheet.append([])
    sheet.append(["", "", "", "PHQ-4", None, None, None, "", "", ""])
    sheet.merge_cells("D3:G3")
    sheet.append(headers or HEADERS)
    for row in ROWS:
        sheet.append(row)
    raw = io.BytesIO()
    book.save(raw)
    return raw.getvalue()
