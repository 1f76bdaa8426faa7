"""Spreadsheet conversion: rows per second and peak memory, as ratios to a plain CSV read.

    make bench            (or: .venv/bin/python benchmarks/bench_sheets.py [rows ...])

The baseline reads the same CSV with the csv module and touches every cell; the conversion reads,
checks, scores and writes NDJSON. Memory is traced with tracemalloc; two sizes show whether it
grows with the file (it should not, beyond 8 bytes per visit of dose history).
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from adapter.settings import DEFAULT as SETTINGS
from adapter.sheets.contract import default_contract, template_columns
from adapter.sheets.output import NdjsonSink
from adapter.sheets.pipeline import convert_sheet

PATIENTS = 500


def make_sheet(path: Path, rows: int) -> None:
    """Visits with FIQR, PHQ-4, pain and a dose: 33 filled columns a row."""
    random.seed(7)
    header = template_columns()
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        for n in range(rows):
            row = {"patient_id": f"P{n % PATIENTS:05d}"}
            row["visit_date"] = _date(n)
            row["ldn_dose_mg"] = "4.5" if n >= PATIENTS * 4 else ""
            row |= {f"fiqr-f{i}": random.randint(0, 10) for i in range(1, 10)}
            row |= {f"fiqr-o{i}": random.randint(0, 10) for i in range(1, 3)}
            row |= {f"fiqr-s{i}": random.randint(0, 10) for i in range(1, 11)}
            row |= {
                k: random.randint(0, 3)
                for k in ("phq4-nervous", "phq4-worry", "phq4-interest", "phq4-down")
            }
            row |= {"pain-mean": random.randint(0, 100), "pain-max": random.randint(0, 100)}
            writer.writerow(row)


def _date(n: int) -> str:
    from datetime import date, timedelta

    return (date(2000, 1, 1) + timedelta(days=n // PATIENTS)).isoformat()


def plain_read(path: Path) -> int:
    cells = 0
    with open(path, newline="") as handle:
        for row in csv.reader(handle):
            cells += sum(1 for cell in row if cell)
    return cells


def convert(path: Path) -> int:
    out = Path(tempfile.mkdtemp()) / "out"
    with open(path, "rb") as stream:
        report = convert_sheet(
            stream, path.name, default_contract(), NdjsonSink(out, SETTINGS), SETTINGS
        )
    shutil.rmtree(out.parent)
    assert report.rows_rejected == 0
    return report.rows_converted


def measure(run: Callable[[Path], int], path: Path) -> tuple[float, float]:
    start = time.perf_counter()
    run(path)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    run(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [5_000, 20_000]
    folder = Path(tempfile.mkdtemp())
    print(
        f"{'rows':>7} {'pipeline':14} {'rows/s':>9} {'x baseline':>11} {'peak MiB':>9} {'x baseline':>11}"
    )
    try:
        for rows in sizes:
            path = folder / f"sheet-{rows}.csv"
            make_sheet(path, rows)
            base_time, base_peak = measure(plain_read, path)
            time_, peak = measure(convert, path)
            print(
                f"{rows:7} {'csv.reader':14} {rows / base_time:9.0f} {1:11.3f} {base_peak:9.2f} {1:11.1f}"
            )
            print(
                f"{rows:7} {'convert-sheet':14} {rows / time_:9.0f} {base_time / time_:11.3f} "
                f"{peak:9.2f} {peak / base_peak:11.1f}"
            )
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
