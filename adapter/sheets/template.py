"""The canonical template: an empty sheet with every column, and a second sheet explaining each."""

from __future__ import annotations

import csv
from pathlib import Path

from adapter.instrument import Item, Score
from adapter.registry import instruments
from adapter.sheets.contract import targets

FIXED = [
    (
        "patient_id",
        "patient",
        "text",
        "the patient's identifier (its system comes from the contract or --patient-system)",
    ),
    ("visit_date", "visit", "date", "YYYY-MM-DD, or an Excel date cell"),
    (
        "ldn_dose_mg",
        "LDN",
        "decimal",
        "daily low-dose naltrexone dose at this visit in mg; blank when none",
    ),
]


def describe_columns() -> list[tuple[str, str, str, str]]:
    """(column, instruments, type and allowed values, meaning) for every column of the template."""
    owners: dict[str, list[str]] = {}
    for instrument in instruments().values():
        for link_id in [i.link_id for i in instrument.answerable_items()] + [
            s.code.code for s in instrument.scores
        ]:
            owners.setdefault(link_id, []).append(instrument.id)
    rows = list(FIXED)
    for name, target in targets().items():
        if isinstance(target, Item):
            if target.type == "boolean":
                kind = "yes/no (x, ja, yes, 1 / nein, no, 0); blank = unanswered"
            elif target.type == "choice":
                kind = "choice: " + ", ".join(
                    f"{o.score} = {o.code.display}" for o in target.options
                )
            else:
                kind = f"whole number {target.min_value}-{target.max_value}"
            meaning = f"answer: {target.text}"
        else:
            assert isinstance(target, Score)
            kind = (
                "yes/no"
                if target.value_type == "boolean"
                else f"{'whole number' if target.value_type == 'integer' else 'number'} {target.low}-{target.high}"
            )
            meaning = f"reported score (legacy rows with totals only): {target.code.display}"
        rows.append((name, ", ".join(owners.get(name, [])), kind, meaning))
    return rows


def write_template(path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = describe_columns()
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow([c[0] for c in columns])
        return
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    visits = workbook.active
    visits.title = "visits"
    visits.append([c[0] for c in columns])
    for cell in visits[1]:
        cell.font = Font(bold=True)
    visits.freeze_panes = "B2"
    guide = workbook.create_sheet("columns")
    guide.append(["column", "instruments", "type and values", "meaning"])
    for cell in guide[1]:
        cell.font = Font(bold=True)
    for row in columns:
        guide.append(list(row))
    for letter, width in zip("ABCD", (18, 18, 60, 90), strict=True):
        guide.column_dimensions[letter].width = width
    workbook.save(path)
