"""`convert-sheet --jobs N`: the same output, byte for byte and in the same order, as one process.

Sheets mix every kind of row the pipeline treats apart (converted, rejected, converted in part,
a visit given twice, blank, doses that start and end courses), and the chunks sent to the
workers are made small so the rows of one patient straddle chunks and workers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import outputs
from adapter.cli import main
from adapter.sheets import parallel
from adapter.sheets.contract import default_contract
from adapter.sheets.output import SINKS
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from adapter.sheets.request import SheetOptions
from tests.support import SETTINGS
from tests.support.memory import KeptPerRow
from tests.support.sheets import HEADER, write_csv
from tests.test_sheet_memory import visits_csv

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


@pytest.mark.parametrize("output_format", ["transaction", "patient"])
def test_patients_whose_ids_differ_only_in_case_keep_files_of_their_own(
    tmp_path, monkeypatch, output_format
):
    """On macOS and Windows `visit-abc-…` and `visit-ABC-…` are one file: each patient's files
    must have names apart there too, with one process or several, and hold that patient's
    resources only."""
    monkeypatch.setattr(parallel, "CHUNK", 2)  # the patients' rows in different workers
    ids = ["abc", "ABC", "Abc", "P1"]
    rows = [
        [patient, f"2024-01-{day:02d}", "4.5", 1, 2, 0, 1, "", 30, 60]
        for day in (1, 2, 3)
        for patient in ids
    ]
    sheet = write_csv(tmp_path / "case.csv", [HEADER, *rows])
    one = _convert(sheet, tmp_path / "one", output_format, 1)
    two = _convert(sheet, tmp_path / "two", output_format, 2)
    assert two == one
    files = _files(tmp_path / "one")
    assert _files(tmp_path / "two") == files
    folded = [name.casefold() for name in files if name != outputs.MARKER]
    assert len(set(folded)) == len(folded)
    expected = 3 * len(ids) + len(ids) if output_format == "transaction" else len(ids)
    assert len(folded) == expected
    found: dict[str, int] = {}
    for name, content in files.items():
        if name == outputs.MARKER:
            continue
        subjects = {
            resource["subject"]["identifier"]["value"]
            for entry in json.loads(content)["entry"]
            for resource in [entry["resource"]]
        }
        assert len(subjects) == 1, name  # one patient's resources in a file
        (patient,) = subjects
        assert name.split("-", 1)[1].startswith(patient)
        found[patient] = found.get(patient, 0) + 1
    assert found == {patient: len(folded) // len(ids) for patient in ids}
    assert "visit-abc-2024-01-01.json" in files or "patient-abc.json" in files  # no clash: plain


@pytest.mark.parametrize("bundle_type", ["transaction", "batch"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_patients_file_is_its_bundle_written_entry_by_entry(
    tmp_path, monkeypatch, bundle_type, jobs
):
    """`--format patient` writes each entry once, in its patient's file, and the head (whose id
    depends on every entry) last, in the room left for it: the file is `bundle()` of the
    patient's resources in the order read, one line per entry, whichever process wrote what."""
    import orjson

    from adapter.sheets.output import MemorySink

    monkeypatch.setattr(parallel, "CHUNK", 3)
    sheet = _sheet(tmp_path / "visits.csv", 4, 80)
    out = tmp_path / "out"
    folder = SINKS["patient"](out, SETTINGS, bundle_type)  # type: ignore[arg-type]
    memory = MemorySink(SETTINGS, "patient", bundle_type)  # type: ignore[arg-type]
    for sink, processes in ((folder, jobs), (memory, 1)):
        with open(sheet, "rb") as stream:
            run_pipeline(stream, sheet.name, default_contract(), sink, SETTINGS, jobs=processes)
    expected = memory.bundles()
    written = sorted(out.glob("patient-*.json"))
    assert len(written) == len(expected) > 1
    for path, made in zip(written, expected, strict=True):
        head = orjson.dumps({k: made[k] for k in ("resourceType", "id", "type")})
        lines = b",\n".join(orjson.dumps(entry) for entry in made["entry"])
        assert path.read_bytes() == head[:-1] + b',"entry":[\n' + lines + b"\n]}\n"
    assert not (out / ".parts").exists()


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


# --- the workers write, this process places: the spool of each folder sink ---------------------


KINDS = ("QuestionnaireResponse", "Observation", "MedicationStatement")
PATIENTS = (
    "P1",
    "P2",
    "a b/c",
    "P1 ",
    f"a_b_c-{hashlib.sha1(b'a b/c').hexdigest()[:8]}",
    "p2",
    "pp",
    "PP",
)
"""Two need cleaning into file names; the fifth is the name the one before it cleans to (it gets
a hash of its own: `safe_name`); the last three differ from another only in case (the one named
second gets a hash: `FileNames`)."""


@st.composite
def _spooled_runs(draw: st.DrawFn) -> tuple[list[tuple[str, str, list[dict]]], int, list[int]]:
    """Rows (patient, day, resources) with visits given twice, the chunk size, and for each
    window of chunks the order the workers finish them in."""
    count = draw(st.integers(1, 40))
    rows = []
    for number in range(count):
        patient = draw(st.sampled_from(PATIENTS))
        day = f"2024-01-{draw(st.integers(1, 4)):02d}"
        kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
        resources = [{"resourceType": k, "id": f"r{number}-{i}"} for i, k in enumerate(kinds)]
        rows.append((patient, day, resources))
    size = draw(st.integers(1, 6))
    chunks = -(-count // size)
    order = draw(st.permutations(range(chunks)))
    return rows, size, list(order)


@pytest.mark.slow
@pytest.mark.parametrize("output_format", FORMATS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=_spooled_runs(), window=st.integers(1, 4))
def test_what_workers_write_is_placed_as_one_process_writes_it(
    tmp_path_factory, output_format, run, window
):
    """The spool (the workers' side of a folder sink) against `add_encoded` in row order:
    chunks written in any order within the window of chunks in flight (so a visit given twice
    may be written first by the later row), slots reused, rows given twice dropped, then the
    patients' own resources written by this process into the same files."""
    _placed_as_one_process_places(tmp_path_factory.mktemp("spool"), output_format, run, window)


class CaseBlindOs:
    """The `os` functions a folder sink's spool calls, as a file system that does not tell case
    apart sees them (macOS and Windows by default): a name that differs only in case from an
    entry of its folder is that entry (`O_EXCL` fails on it, a rename onto it replaces it).
    This machine's file systems tell case apart; everything else is the real `os`."""

    @staticmethod
    def _seen(path: str | os.PathLike[str]) -> str:
        folder, name = os.path.split(os.fspath(path))
        if os.path.lexists(os.path.join(folder, name)) or not os.path.isdir(folder):
            return os.path.join(folder, name)
        for entry in os.listdir(folder):
            if entry.casefold() == name.casefold():
                return os.path.join(folder, entry)
        return os.path.join(folder, name)

    def open(self, path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        return os.open(self._seen(path), flags, mode)

    def lstat(self, path: str | os.PathLike[str]) -> os.stat_result:
        return os.lstat(self._seen(path))

    def unlink(self, path: str | os.PathLike[str]) -> None:
        os.unlink(self._seen(path))

    def rename(self, source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        os.rename(self._seen(source), self._seen(target))

    def replace(self, source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        os.replace(self._seen(source), self._seen(target))

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=_spooled_runs(), window=st.integers(1, 4))
def test_workers_place_visits_where_case_is_not_told_apart(
    tmp_path_factory, monkeypatch, run, window
):
    """The same where `visit-pp-…` and `visit-PP-…` are one name: a worker's O_EXCL fails on
    another patient's file, a file is moved aside from under a name that differs only in case,
    and still every visit ends in its own patient's file, as one process writes them."""
    from adapter.sheets import output

    monkeypatch.setattr(output, "os", CaseBlindOs())
    _placed_as_one_process_places(tmp_path_factory.mktemp("caseblind"), "transaction", run, window)


def _placed_as_one_process_places(
    folder: Path, output_format: str, run: tuple[list, int, list[int]], window: int
) -> None:
    rows, size, order = run
    one = SINKS[output_format](folder / "one", SETTINGS)
    many = SINKS[output_format](folder / "many", SETTINGS)
    encode = one.encoder()
    assert encode is not None
    spool = many.spool()
    assert spool is not None
    chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
    seen: set[tuple[str, str]] = set()
    for first in range(0, len(chunks), window):
        batch = [n for n in order if first <= n < first + window]
        placed = {
            n: spool.write_chunk(n % window, [(p, d, encode(r)) for p, d, r in chunks[n]])
            for n in batch
        }
        for n in sorted(batch):
            for (patient, day, resources), where in zip(chunks[n], placed[n], strict=True):
                if (patient, day) in seen:  # a visit given twice: the later row is rejected
                    many.drop_spooled(patient, day, where)
                    continue
                seen.add((patient, day))
                one.add_encoded(patient, day, encode(resources))
                many.add_spooled(patient, day, where)
            spool.release(n % window)
    for patient in PATIENTS:
        statement = [{"resourceType": "MedicationStatement", "id": f"m-{patient}"}]
        one.add_patient(patient, statement)
        many.add_patient(patient, statement)
    one.finish()
    many.finish()
    assert _files(folder / "many") == _files(folder / "one")
    names = [path.name.casefold() for path in (folder / "one").iterdir()]
    assert len(set(names)) == len(names)
    assert not [p for p in folder.iterdir() if ".partial-" in p.name]


# --- the whole command: any sheet, any number of workers, the same bytes ------------------------


UNREADABLE = (
    b"P1," + b"x" * 140_000 + b",,1,1,1,1,,10,20\r\n",  # the csv module refuses the row
    b"P2,2024-02-0\xff,,1,1,1,1,,10,20\r\n",  # a stray byte (the encoding is guessed)
)
"""Rows the reader cannot give: its error for the one, the rows after it read on."""


@st.composite
def _sheets(draw: st.DrawFn) -> tuple[bytes, str, int, int]:
    """A CSV of every kind of row `_row` makes, unreadable rows among them; the format, the
    number of workers and the chunk size."""
    seed = draw(st.integers(0, 2**32))
    rows = _sheet_rows(random.Random(seed), draw(st.integers(1, 90)))
    lines = [_csv_line(HEADER), *(_csv_line(row) for row in rows)]
    for line in draw(st.lists(st.sampled_from(UNREADABLE), max_size=3)):
        lines.insert(draw(st.integers(1, len(lines))), line)
    return (
        b"".join(lines),
        draw(st.sampled_from(FORMATS)),
        draw(st.integers(2, 3)),
        draw(st.integers(1, 12)),
    )


def _sheet_rows(draw: random.Random, count: int) -> list[list[object]]:
    return [_row(draw, draw.randint(0, 40)) for _ in range(count)]


def _csv_line(row: Sequence[object]) -> bytes:
    return (",".join(str(cell) for cell in row) + "\r\n").encode()


@pytest.mark.slow
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_sheets())
def test_any_sheet_in_workers_gives_the_bytes_of_one_process(tmp_path_factory, case):
    data, output_format, jobs, chunk = case
    folder = tmp_path_factory.mktemp("jobs")
    sheet = folder / "visits.csv"
    sheet.write_bytes(data)
    original = parallel.CHUNK
    parallel.CHUNK = chunk
    try:
        one = _convert(sheet, folder / "one", output_format, 1)
        many = _convert(sheet, folder / "many", output_format, jobs)
    finally:
        parallel.CHUNK = original
    assert many == one
    assert _files(folder / "many") == _files(folder / "one")
    assert sorted(p.name for p in folder.iterdir()) == [
        "many",
        "many.report.json",
        "one",
        "one.report.json",
        "visits.csv",
    ]


# --- nothing left behind: an error, a stop, a kill ----------------------------------------------


ROOT = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_sheet_stopped_midway_leaves_nothing_of_the_workers(tmp_path, monkeypatch, output_format):
    monkeypatch.setattr(parallel, "CHUNK", 4)
    sheet = _sheet(tmp_path / "visits.csv", 4, 120)
    result = CliRunner().invoke(
        main,
        ["convert-sheet", str(sheet), "--format", output_format, "--out", str(tmp_path / "out")],
        env={"FMS_FHIR_MAX_SHEET_ROWS": "50"},
    )
    assert result.exit_code != 0 and "too-many-rows" in result.output
    again = CliRunner().invoke(
        main,
        [
            *("convert-sheet", str(sheet), "--format", output_format),
            *("--out", str(tmp_path / "out"), "--jobs", "2"),
        ],
        env={"FMS_FHIR_MAX_SHEET_ROWS": "50"},
    )
    assert again.exit_code == result.exit_code and again.output == result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["visits.csv"]


def _running(pid: int) -> bool:
    """The process exists and has not ended (a zombie waiting for its parent has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


BIG_ROWS = [
    [f"P{n % 50}", f"{2000 + n // 365 % 20}-{n % 12 + 1:02d}-{n % 28 + 1:02d}", "4.5"]
    + [n % 4, 1, 2, 3, "", n % 100, 90]
    for n in range(30_000)
]


def _started(tmp_path: Path) -> tuple[list[str], subprocess.Popen[bytes], list[int]]:
    """`convert-sheet --jobs 2` on a long sheet, once its workers write: the command line
    (without the options), the process and its workers."""
    sheet = write_csv(tmp_path / "big.csv", [HEADER, *BIG_ROWS])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "adapter.cli", "convert-sheet", str(sheet), "--out", str(out)]
    process = subprocess.Popen(
        [*command, "--format", "ndjson", "--jobs", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    staging = tmp_path / f".out.partial-{process.pid}"
    deadline = time.monotonic() + 60
    while not any((staging / ".spool").glob("*.ndjson")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    workers = [int(pid) for pid in children]
    assert len(workers) == 2
    return command, process, workers


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_a_stopped_run_and_its_staging_goes(tmp_path, stop):
    """SIGTERM: the run removes its staging folder itself. SIGKILL: the workers end with it
    (nothing more is written into the staging folder) and the next run removes the folder."""
    command, process, workers = _started(tmp_path)
    staging = tmp_path / f".out.partial-{process.pid}"
    process.send_signal(stop)
    assert process.wait(timeout=30) == (128 + stop if stop == signal.SIGTERM else -stop)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived the run"
        time.sleep(0.02)
    if stop == signal.SIGKILL:
        assert _leftovers(tmp_path) == [staging.name]
        small = write_csv(tmp_path / "small.csv", [HEADER, BIG_ROWS[0]])
        subprocess.run([*command[:4], str(small), *command[-2:]], cwd=ROOT, check=True)
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_ends_the_run_with_an_outcome_and_nothing_written(tmp_path):
    _, process, workers = _started(tmp_path)
    os.kill(workers[0], signal.SIGKILL)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 5
    assert b"worker-ended" in out and b"OperationOutcome" in out
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("frozen_heap")
@pytest.mark.parametrize("output_format", FORMATS)
def test_with_workers_this_process_keeps_a_few_bytes_a_row(tmp_path, output_format):
    """What the workers hand back is let go once placed: from row 1,000 to the last, this
    process keeps what one process keeps (the visit days: a few bytes a visit)."""
    sheet = visits_csv(tmp_path / "visits.csv", 5_000)
    kept = KeptPerRow(5_000)
    sink = SINKS[output_format](tmp_path / "out", SETTINGS)
    tracemalloc.start()
    try:
        with open(sheet, "rb") as stream:
            report = run_pipeline(
                stream, sheet.name, default_contract(), sink, SETTINGS, kept.sample, jobs=2
            )
    finally:
        tracemalloc.stop()
    assert report.rows_converted == report.rows_read == 5_000
    assert kept.per_row < 40, f"{kept.per_row:.0f} B a row; grown:\n{kept.grown()}"


# --- the two file operations the workers' output goes through -----------------------------------


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.binary(max_size=40), max_size=30),
    most=st.none() | st.integers(1, 50),
    batch=st.integers(1, 5),
)
def test_pieces_are_written_whole_and_in_order(tmp_path_factory, pieces, most, batch):
    """However few bytes a writev takes (`most`: a full disk, a signal) and however few buffers
    (`batch`), every piece is written once, in order."""
    real = os.writev

    def writev(fd: int, buffers: list[memoryview]) -> int:
        assert 0 < len(buffers) <= batch
        if most is None:
            return real(fd, buffers)
        return os.write(fd, b"".join(bytes(b) for b in buffers)[:most])

    path = tmp_path_factory.mktemp("pieces") / "file"
    with pytest.MonkeyPatch.context() as patch, open(path, "wb") as handle:
        patch.setattr(outputs, "IOV_MAX", batch)
        patch.setattr(outputs.os, "writev", writev)
        assert outputs.write_pieces(handle.fileno(), list(pieces)) == sum(map(len, pieces))
    assert path.read_bytes() == b"".join(pieces)


@pytest.mark.parametrize("kernel", [True, False])
def test_a_range_is_copied_by_the_kernel_or_else_by_blocks(tmp_path, monkeypatch, kernel):
    if not kernel:  # a system or file system that cannot copy between files

        def refuse(*args: object) -> int:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(outputs.os, "copy_file_range", refuse, raising=False)
        monkeypatch.setattr(outputs, "COPY_BLOCK", 7)
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 40)
    with open(source, "rb") as read, open(tmp_path / "target", "wb") as write:
        write.write(b"head:")
        write.flush()
        outputs.copy_range(read.fileno(), write.fileno(), 1000, 5000)
        outputs.copy_range(read.fileno(), write.fileno(), 3, 2)
        with pytest.raises(OSError, match="the source ends"):
            outputs.copy_range(read.fileno(), write.fileno(), 10_000, 500)
    expected = b"head:" + source.read_bytes()[1000:6000] + source.read_bytes()[3:5]
    assert (tmp_path / "target").read_bytes().startswith(expected)
