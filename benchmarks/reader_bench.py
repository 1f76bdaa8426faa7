"""Section 2: the XLSX reader alone, openpyxl (read-only, values_only) against python-calamine.

Speed and peak RSS: each reader in its own process over the generated workbooks. Cell values:
both readers over the same workbooks, cell by cell, first as they come (type and value), then
after the normalizations a reader adapter would apply (a blank is None or ""; a date is a date
or a datetime at midnight; 2 equals 2.0). Every difference is counted by kind and shown.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import date, datetime, time
from itertools import zip_longest
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import ROOT, count, median, mib, run_measured, say, table

EXAMPLE = ROOT / "examples" / "case-report-followup.xlsx"
LARGE = 20_000


def calamine_available() -> bool:
    try:
        import python_calamine  # noqa: F401
    except ImportError:
        return False
    return True


def _read(reader: str, path: Path) -> tuple[float, int, int]:
    """(seconds reading, rows, peak RSS) of one fresh process."""
    script = ROOT / "benchmarks" / "read_xlsx.py"
    measured = run_measured([sys.executable, script, reader, path])
    if measured.status != 0:
        raise RuntimeError(f"read_xlsx.py {reader} {path.name} failed:\n{measured.stderr[-2000:]}")
    answer = json.loads(measured.stdout)
    return answer["seconds"], answer["rows"], measured.peak_rss


def edge_workbooks(folder: Path) -> list[Path]:
    """Cells where readers part ways: decimals, Excel dates (both epochs), booleans, blanks."""
    from openpyxl import Workbook
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    values: list[tuple[str, Any, str | None]] = [
        ("decimal 0.1", 0.1, None),
        ("decimal 72.5", 72.5, None),
        ("decimal 35.67", 35.67, None),
        ("decimal 4.125", 4.125, None),
        ("decimal 1/3", 1 / 3, None),
        ("decimal 0.1+0.2", 0.1 + 0.2, None),
        ("decimal 1e-7", 1e-7, None),
        ("decimal -3.5", -3.5, None),
        ("decimal 123456789.123456", 123456789.123456, None),
        ("percent 0.25", 0.25, "0%"),
        ("integer 0", 0, None),
        ("integer 7", 7, None),
        ("integer 2**53", 2**53, None),
        ("integer 10**15", 10**15, None),
        ("boolean TRUE", True, None),
        ("boolean FALSE", False, None),
        ("blank", None, None),
        ("date 2023-02-14", date(2023, 2, 14), "yyyy-mm-dd"),
        ("date 1900-03-01 (1900 epoch only)", date(1900, 3, 1), "yyyy-mm-dd"),
        ("date 1904-01-02", date(1904, 1, 2), "yyyy-mm-dd"),
        ("date-time 2023-02-14 08:30:15", datetime(2023, 2, 14, 8, 30, 15), "yyyy-mm-dd hh:mm:ss"),
        ("time 08:30", time(8, 30), "hh:mm"),
        ("text '007'", "007", None),
        ("text '4,5'", "4,5", None),
        ("text ' x '", " x ", None),
        ("text 'TRUE'", "TRUE", None),
        ("text '2023-02-14'", "2023-02-14", None),
    ]
    paths = []
    for epoch in ("1900", "1904"):
        workbook = Workbook()
        if epoch == "1904":
            workbook.epoch = CALENDAR_MAC_1904
        sheet = workbook.active
        sheet.append(["what", "value", "after a blank"])
        # A date before its workbook's epoch is no Excel date (Excel shows ####): 1900 only.
        kept = [v for v in values if epoch == "1900" or "1900 epoch" not in v[0]]
        for row, (label, value, number_format) in enumerate(kept, 2):
            sheet.cell(row, 1, label)
            cell = sheet.cell(row, 2, value)
            if number_format:
                cell.number_format = number_format
            sheet.cell(row, 4, "end")
        path = folder / f"edge-cells-{epoch}.xlsx"
        workbook.save(path)
        paths.append(path)
    return paths


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if value == "":
        return "''"
    return type(value).__name__


def _normal(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) and value.tzinfo is None else value
    return value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def compare_values(path: Path) -> tuple[int, Counter[str], list[str]]:
    """(cells, raw differences by kind, cells that still differ after normalizing)."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter
    from python_calamine import CalamineWorkbook

    book = load_workbook(path, read_only=True, data_only=True)
    other = CalamineWorkbook.from_path(path)
    cells = 0
    raw: Counter[str] = Counter()
    remaining: list[str] = []
    try:
        first = book.worksheets[0].iter_rows(values_only=True)
        second = other.get_sheet_by_index(0).iter_rows()
        for number, (row_a, row_b) in enumerate(zip_longest(first, second, fillvalue=()), 1):
            for column, (a, b) in enumerate(zip_longest(row_a, row_b), 1):
                cells += 1
                if _same(a, b):
                    continue
                raw[f"{_kind(a)} vs {_kind(b)}"] += 1
                if _normal(a) != _normal(b) or (
                    isinstance(_normal(a), bool) != isinstance(_normal(b), bool)
                ):
                    remaining.append(f"{get_column_letter(column)}{number}: {a!r} vs {b!r}")
    finally:
        book.close()
        other.close()
    return cells, raw, remaining


def run(workdir: Path, sizes: list[int], repeats: int, sheets: dict[str, Any] | None) -> dict:
    if not calamine_available():
        say("python-calamine is not installed: only openpyxl is measured.")
        say("  (install it: .venv/bin/python -m pip install python-calamine)")
    readers = ["openpyxl", "calamine"] if calamine_available() else ["openpyxl"]
    say(
        "Each reader in its own process reads every row of the generated workbook "
        "(openpyxl: load_workbook(read_only=True, data_only=True), iter_rows(values_only=True); "
        "calamine: CalamineWorkbook.from_path(...).get_sheet_by_index(0).iter_rows()); "
        "time from opening to the last row."
    )
    rows_out = []
    speed: dict[tuple[str, int], float] = {}
    peak: dict[tuple[str, int], float] = {}
    for rows in sizes:
        path = generate.ensure(workdir, "xlsx", rows)
        runs = repeats if rows <= LARGE else 1
        for reader in readers:
            seconds, peaks = [], []
            for _ in range(runs):
                took, read, rss = _read(reader, path)
                seconds.append(took)
                peaks.append(rss)
            speed[(reader, rows)] = rows / median(seconds)
            peak[(reader, rows)] = median(peaks)
        line = [count(rows), str(runs)]
        for reader in readers:
            line += [count(speed[(reader, rows)]), mib(peak[(reader, rows)])]
        if len(readers) == 2:
            line.append(f"{speed[('calamine', rows)] / speed[('openpyxl', rows)]:.1f}x")
        rows_out.append(line)
    header = ["rows", "runs"]
    for reader in readers:
        header += [f"{reader} rows/s", "peak MiB"]
    if len(readers) == 2:
        header.append("calamine speed-up")
    table(header, rows_out)
    share = _read_share(sheets, speed, sizes)
    if share:
        say(share)
    if len(readers) < 2:
        return {"speed": speed, "peak": peak}

    say()
    say("cell values, openpyxl vs calamine (type and value, cell by cell):")
    workbooks = [generate.ensure(workdir, "xlsx", min(sizes))]
    if EXAMPLE.exists():
        workbooks.append(EXAMPLE)
    workbooks += edge_workbooks(workdir)
    all_equal = True
    for path in workbooks:
        cells, raw, remaining = compare_values(path)
        kinds = ", ".join(f"{kind} {count(n)}" for kind, n in raw.most_common()) or "none"
        say(f"  {path.name}: {count(cells)} cells; as read, differ: {kinds}")
        say(
            "    after normalizing (blank None = '', datetime at midnight = date, 2 = 2.0): "
            + (f"{len(remaining)} differ" if remaining else "identical")
        )
        for line in remaining[:12]:
            say(f"      {line}")
        all_equal &= not remaining
    say()
    say(recommendation(speed, peak, sizes, all_equal))
    return {"speed": speed, "peak": peak, "values_equal": all_equal}


def _read_share(sheets: dict[str, Any] | None, speed: dict, sizes: list[int]) -> str | None:
    """How much of convert-sheet's XLSX time is openpyxl reading, at the largest common size."""
    if not sheets:
        return None
    rates = {f.rows: f.rate("fms-fhir") for f in sheets["figures"] if f.kind == "xlsx"}
    common = [rows for rows in sizes if rows in rates and ("openpyxl", rows) in speed]
    if not common:
        return None
    rows = max(common)
    share = rates[rows] / speed[("openpyxl", rows)]
    text = (
        f"reading with openpyxl is {share:.0%} of `convert-sheet`'s XLSX time at {count(rows)} rows"
    )
    if ("calamine", rows) in speed:
        after = rates[rows] / speed[("calamine", rows)]
        projected = 1 / (
            1 / rates[rows] - 1 / speed[("openpyxl", rows)] + 1 / speed[("calamine", rows)]
        )
        text += (
            f"; with calamine it would be {after:.0%} "
            f"(about {count(projected)} rows/s instead of {count(rates[rows])})"
        )
    return text


def recommendation(speed: dict, peak: dict, sizes: list[int], equal: bool) -> str:
    small, large = min(sizes), max(sizes)
    faster = speed[("calamine", large)] / speed[("openpyxl", large)]
    head = f"recommendation: calamine reads {faster:.1f}x faster at {count(large)} rows"
    if not equal:
        return (
            f"{head}, but it does not give the same cell values (see above): keep openpyxl, "
            "or adopt calamine only with an adapter that settles every difference shown."
        )
    values = (
        "gives the same values once an adapter maps '' to None, a midnight datetime to a date "
        "and 2.0 to 2 (which the sheet value readers already accept)"
    )
    if large == small:
        return (
            f"{head} and {values}; whether its memory stays bounded needs two sizes (run "
            "without --smoke): python-calamine loads the whole sheet before the first row."
        )
    growth = {r: peak[(r, large)] / peak[(r, small)] for r in ("openpyxl", "calamine")}
    if growth["calamine"] > 1.25:
        per_thousand = (peak[("calamine", large)] - peak[("calamine", small)]) / (
            (large - small) / 1000
        )
        return (
            f"{head} and {values}; but it loads the whole sheet into memory before the first "
            f"row: +{mib(per_thousand)} MiB per 1,000 rows of this template "
            f"({mib(peak[('calamine', large)])} MiB at {count(large)} rows; openpyxl "
            f"read-only {mib(peak[('openpyxl', large)])} MiB, "
            f"{mib(peak[('openpyxl', small)])} at {count(small)}). Do not replace the "
            "streaming reader with it: "
            "`convert-sheet` promises bounded memory for any size. It pays only behind the "
            "reader interface for small workbooks (chosen by the sheet's inflated XML size, "
            "known before opening), keeping openpyxl read-only for the rest."
        )
    return f"{head}, {values}, and its memory stays bounded here: adopt it."
