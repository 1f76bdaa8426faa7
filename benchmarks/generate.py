"""Deterministic canonical-template sheets for the benchmarks: every instrument on every row.

Each row is one visit of one of `PATIENTS` patients (a visit a week, each patient on its own
weekday) with the fm2016 survey (19 WPI areas, 6 SSS items, fm-duration-3m), the 21 FIQR items,
the 4 PHQ-4 items, pain-mean and pain-max, and the LDN dose (4.5 mg on most visits, blank on
some). The score columns of the template stay blank: the scores are computed from the items.

The same seed and row count always give the same rows, in CSV (booleans `yes`/`no`, ISO dates)
and in XLSX (booleans as TRUE/FALSE cells, dates as date cells, numbers as number cells).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from adapter.sheets.contract import template_columns
from mappings import fiqr, phq4, sss, wpi

PATIENTS = 300
SEED = 20_250_410
FIRST_VISIT = date(2016, 1, 4)
DOSE_BLANK = 0.08
"""Share of visits without a dose: each such visit ends a course, the next dose starts one."""

WPI_AREAS = wpi.LINK_IDS
SSS_CHOICES = tuple(item.link_id for item in sss.ITEMS if item.type == "choice")
SSS_BOOLEANS = tuple(item.link_id for item in sss.ITEMS if item.type == "boolean")
FIQR_ITEMS = tuple(
    item.link_id for item in (*fiqr.FUNCTION_ITEMS, *fiqr.OVERALL_ITEMS, *fiqr.SYMPTOM_ITEMS)
)
PHQ4_ITEMS = tuple(item.link_id for item in phq4.ITEMS)
PAIN_ITEMS = ("pain-mean", "pain-max")
FILLED = (
    "patient_id",
    "visit_date",
    "ldn_dose_mg",
    *WPI_AREAS,
    *SSS_CHOICES,
    *SSS_BOOLEANS,
    "fm-duration-3m",
    *FIQR_ITEMS,
    *PHQ4_ITEMS,
    *PAIN_ITEMS,
)


def columns() -> list[str]:
    """The canonical template's header, read from the core (so new columns follow)."""
    header = template_columns()
    missing = [name for name in FILLED if name not in header]
    if missing:
        raise SystemExit(f"the canonical template lost columns the benchmark fills: {missing}")
    return header


def rows(count: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """`count` visits as typed values (bool, int, float, date, None for blank)."""
    draw = random.Random(seed)
    for n in range(count):
        patient, visit = n % PATIENTS, n // PATIENTS
        row: dict[str, Any] = {
            "patient_id": f"P{patient:05d}",
            "visit_date": FIRST_VISIT + timedelta(days=7 * visit + patient % 7),
            "ldn_dose_mg": None if draw.random() < DOSE_BLANK else 4.5,
        }
        row.update((link_id, draw.random() < 0.6) for link_id in WPI_AREAS)
        row.update((link_id, draw.randint(0, 3)) for link_id in SSS_CHOICES)
        row.update((link_id, draw.random() < 0.4) for link_id in SSS_BOOLEANS)
        row["fm-duration-3m"] = draw.random() < 0.8
        row.update((link_id, draw.randint(0, 10)) for link_id in FIQR_ITEMS)
        row.update((link_id, draw.randint(0, 3)) for link_id in PHQ4_ITEMS)
        row.update((link_id, draw.randint(0, 100)) for link_id in PAIN_ITEMS)
        yield row


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_csv(path: Path, count: int, seed: int = SEED) -> Path:
    header = columns()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows(count, seed):
            writer.writerow([_csv_text(row.get(name)) for name in header])
    return path


def write_xlsx(path: Path, count: int, seed: int = SEED) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    header = columns()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Visits")
    sheet.append(header)
    date_at = header.index("visit_date")
    for row in rows(count, seed):
        values: list[Any] = [row.get(name) for name in header]
        cell = WriteOnlyCell(sheet, value=values[date_at])
        cell.number_format = "yyyy-mm-dd"
        values[date_at] = cell
        sheet.append(values)
    workbook.save(path)
    return path


def ensure(folder: Path, kind: str, count: int) -> Path:
    """The sheet of `count` rows in `folder`, written once per run and reused."""
    path = folder / f"visits-{count}.{kind}"
    if not path.exists():
        partial = path.with_name(f".{path.name}.partial")
        (write_csv if kind == "csv" else write_xlsx)(partial, count)
        partial.rename(path)
    return path
