"""Spreadsheet helpers: write a CSV or XLSX, convert it with a contract, read what was written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from adapter import api
from adapter.sheets.contract import default_contract
from adapter.sheets.output import SINKS
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from tests.support import SETTINGS, assert_valid_fhir

PHQ = ["phq4-nervous", "phq4-worry", "phq4-interest", "phq4-down"]


def write_csv(
    path: Path, rows: list[list[Any]], delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def convert_sheet(path: Path, contract: Any, sink: Any) -> Any:
    with open(path, "rb") as stream:
        return run_pipeline(stream, Path(path).name, contract, sink, SETTINGS)


def load_contract(path: Path) -> Any:
    return api.load_contract(Path(path).read_bytes(), str(path), SETTINGS)


def run(
    path: Path, tmp_path: Path, contract: Any = None, output_format: str = "transaction"
) -> tuple[Any, Path]:
    """The sheet converted into `tmp_path/out-<format>`: (report, that folder)."""
    out = tmp_path / f"out-{output_format}"
    report = convert_sheet(
        path, contract or default_contract(), SINKS[output_format](out, SETTINGS)
    )
    return report, out


def resources(out: Path) -> list[dict[str, Any]]:
    """Every resource written into `out` (Bundles and NDJSON), each checked valid FHIR."""
    found: list[dict[str, Any]] = []
    for path in sorted(out.glob("*.json")):
        bundle = json.loads(path.read_text())
        assert_valid_fhir(bundle)
        found += [entry["resource"] for entry in bundle["entry"]]
    for path in sorted(out.glob("*.ndjson")):
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            assert_valid_fhir(resource)
            found.append(resource)
    return found


def observations(found: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Observations by (effective date, code)."""
    return {
        (r["effectiveDateTime"], r["code"]["coding"][0]["code"]): r
        for r in found
        if r["resourceType"] == "Observation"
    }


HEADER = ["patient_id", "visit_date", "ldn_dose_mg", *PHQ, "70272-0", "pain-mean", "pain-max"]
