"""The canonical template: an empty sheet with every column, and a second sheet explaining each."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime

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


FIXED_TIME = datetime(2025, 1, 1)
ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def write_template(kind: str) -> bytes:
    """The template as bytes, `.csv` or `.xlsx`: the same bytes on every run (no timestamps)."""
    columns = describe_columns()
    if kind == ".csv":
        text = io.StringIO()
        csv.writer(text).writerow([c[0] for c in columns])
        return text.getvalue().encode("utf-8")
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    visits = workbook.worksheets[0]
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
    workbook.properties.creator = "fms-fhir"
    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME
    raw = io.BytesIO()
    workbook.save(raw)
    return _fixed_zip_times(raw.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    """openpyxl stamps docProps/core.xml and every zip entry with the current time: fix both."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>2025-01-01T00:00:00Z\g<2>",
                    content,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            target.writestr(fixed, content)
    return out.getvalue()
