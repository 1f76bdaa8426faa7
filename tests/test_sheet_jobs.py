"""`convert-sheet --jobs N`: the same output, byte for byte and in the same order, as one process.

Sheets mix every kind of row the pipeline treats apart (converted, rejected, converted in part,
a visit given twice, blank, doses that start and end courses), and the chunks sent to the
workers are made small so the rows of one patient straddle chunks and workers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.sheets import parallel
from adapter.sheets.request import SheetOptions
from tests.support.sheets import HEADER, write_csv

FORMATS = ("transaction", "patient", "ndjson")


def _row(draw: random.Random, day: int) -> list[object]:
    """One row: usually a good visit, sometimes one of the rows the pipeline treats apart."""
    patient = f"P{draw.randint(1, 4)}"
    when = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}"
    dose = draw.choice(["", "1.5", "3", "4.5", "4.5", "4.5", "abc", "1500000"])
    answers = [draw.randint(0, 3) for _ in range(4)]
    pains: list[object] = [draw.randint(0, 100), draw.randint(0, 100)]
    kind = draw.random()
    if kind < 0.08:
        answers[1] = 9  # not an option: the PHQ-4 response rejected, the row in part or not
    elif kind < 0.12:
        patient = ""  # no patient: rejected
    elif kind < 0.16:
        when = "10.03.2024"  # not a date: rejected
    elif kind < 0.20:
        pains[1] = "x"  # not a number
    elif kind < 0.24:
        return [""] * len(HEADER)  # blank: skipped
    elif kind < 0.28:
        answers, pains = ["", "", "", ""], ["", ""]  # a dose only (or nothing: rejected)
    return [patient, when, dose, *answers, "", *pains]


def _sheet(path: Path, seed: int, count: int) -> Path:
    draw = random.Random(seed)
    rows = [_row(draw, draw.randint(0, 40)) for _ in range(count)]  # days repeat: duplicates
    return write_csv(path, [HEADER, *rows])


def _convert(sheet: Path, out: Path, output_format: str, jobs: int, *extra: str) -> bytes:
    report = out.with_name(out.name + ".report.json")
    result = CliRunner().invoke(
        main,
        [
            "convert-sheet",
            str(sheet),
            "--format",
            output_format,
            "--out",
            str(out),
            "--report",
            str(report),
            "--jobs",
            str(jobs),
            *extra,
        ],
    )
    assert result.exit_code in (0, 3), result.output
    return report.read_bytes()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jobs_2_writes_what_jobs_1_writes(tmp_path, monkeypatch, output_format, seed):
    monkeypatch.setattr(parallel, "CHUNK", 7)  # many chunks, so order across workers matters
    sheet = _sheet(tmp_path / "visits.csv", seed, 120)
    one = _convert(sheet, tmp_path / "one", output_format, 1)
    two = _convert(sheet, tmp_path / "two", output_format, 2)
    assert two == one  # the row report
    files = _files(tmp_path / "one")
    assert len(files) > 1
    assert _files(tmp_path / "two") == files
    assert b'"rows_partial": 0' not in one and b'"rows_rejected": 0' not in one
    assert b"duplicate-visit" in one and b"dose-history-cut" in one


@pytest.mark.parametrize("output_format", FORMATS)
def test_jobs_with_since_writes_what_one_process_writes(tmp_path, monkeypatch, output_format):
    monkeypatch.setattr(parallel, "CHUNK", 5)
    first = _sheet(tmp_path / "first.csv", 7, 60)
    _convert(first, tmp_path / "previous", output_format, 1)
    later = _sheet(tmp_path / "later.csv", 8, 60)  # rows changed, added and withdrawn
    since = ("--since", str(tmp_path / "previous"))
    one = _convert(later, tmp_path / "one", output_format, 1, *since)
    two = _convert(later, tmp_path / "two", output_format, 3, *since)
    assert two == one
    assert _files(tmp_path / "two") == _files(tmp_path / "one")


def test_a_reader_error_comes_after_the_rows_before_it(monkeypatch):
    monkeypatch.setattr(parallel, "CHUNK", 3)
    from adapter.links import links_for
    from adapter.sheets.contract import default_contract
    from adapter.sheets.rows import RowPlan, plan_rows
    from tests.support import SETTINGS

    plan = plan_rows(HEADER, default_contract(), links_for("ndjson", SETTINGS))
    assert isinstance(plan, RowPlan)

    def rows():
        for number in range(2, 9):
            yield number, ["P1", f"2024-01-{number:02d}", "", 1, 1, 1, 1, "", 10, 20], None
        raise ValueError("the file ends in the middle of a row")

    seen = []
    with pytest.raises(ValueError, match="in the middle"):
        for number, _, _, result, _ in parallel.converted(rows(), plan, 2):
            assert result is not None and not result.rejected
            seen.append(number)
    assert seen == list(range(2, 9))


def test_jobs_is_at_least_one():
    with pytest.raises(ValueError, match="jobs"):
        SheetOptions(jobs=0)
    result = CliRunner().invoke(main, ["convert-sheet", "x.csv", "--out", "o", "--jobs", "-1"])
    assert result.exit_code == 2 and "--jobs" in result.output
