"""Read every row of a workbook's first sheet with one reader; print rows, cells and seconds.

    .venv/bin/python benchmarks/read_xlsx.py openpyxl|calamine FILE.xlsx

Run as its own process by the reader benchmark, so that its peak RSS is the reader's alone.
The time covers opening the workbook and reading every row (not the interpreter's start-up).
"""

from __future__ import annotations

import json
import sys
import time


def read_openpyxl(path: str) -> tuple[int, int]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    rows = cells = 0
    for row in workbook.worksheets[0].iter_rows(values_only=True):
        rows += 1
        cells += len(row)
    workbook.close()
    return rows, cells


def read_calamine(path: str) -> tuple[int, int]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(path)
    rows = cells = 0
    for row in workbook.get_sheet_by_index(0).iter_rows():
        rows += 1
        cells += len(row)
    workbook.close()
    return rows, cells


READERS = {"openpyxl": read_openpyxl, "calamine": read_calamine}


def main() -> int:
    reader, path = sys.argv[1], sys.argv[2]
    if reader == "openpyxl":
        import openpyxl  # noqa: F401 - imports are not part of the reading time
    else:
        import python_calamine  # noqa: F401
    start = time.perf_counter()
    rows, cells = READERS[reader](path)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": rows, "cells": cells, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
