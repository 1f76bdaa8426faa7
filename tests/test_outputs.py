"""Writing outputs safely (`adapter.outputs`): whole or nothing, never over an input, never over
what fms-fhir did not write, leftovers of killed runs cleaned, an OperationOutcome for every
place that cannot be used."""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import outputs
from adapter.cli import main
from adapter.outcome import OutputConflict, operation_outcome
from adapter.outputs import MARKER, OutputFile, OutputFolder, commit, output_folder, write_file
from tests.support import SETTINGS, assert_valid_fhir

DEAD = 2**22 + 4321  # above the kernel's pid range: no such process
KIND = "test-kind"
NAMES = re.compile(r".+\.txt")


def recognise(folder: Path) -> set[str] | None:
    return outputs.matching(folder, NAMES) if outputs.marked(folder, KIND) else None


def rule_of(error: pytest.ExceptionInfo[OutputConflict]) -> str:
    """The one rule code, after checking the error makes a valid OperationOutcome."""
    assert error.value.exit_code == 4 and error.value.status == 409
    outcome = operation_outcome(error.value.issues, SETTINGS)
    assert_valid_fhir(outcome)
    [issue] = error.value.issues
    assert issue.rule is not None
    return issue.rule


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def write_folder(target: Path, files: dict[str, bytes], **options: object) -> None:
    with output_folder(target, KIND, **options) as staging:  # type: ignore[arg-type]
        for name, data in files.items():
            (staging / name).write_bytes(data)


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- a file --------------------------------------------------------------------------------------


def test_a_file_is_written_whole_and_replaced_whole(tmp_path):
    target = tmp_path / "deep" / "er" / "out.json"
    assert write_file(target, b"first") == target
    assert target.read_bytes() == b"first"
    write_file(target, b"second")
    assert target.read_bytes() == b"second"
    assert siblings(target.parent) == ["out.json"], "no temporary file left beside it"


def test_an_input_is_never_the_output_file(tmp_path, monkeypatch):
    source = tmp_path / "in.json"
    source.write_bytes(b"input")
    alias = tmp_path / "alias.json"
    alias.symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for target, inputs in [
        (source, [source]),
        ("in.json", [source]),  # relative and absolute name the same file
        (source, ["./sub/../in.json"]),
        (alias, [source]),  # resolved: a link to the input is the input
        (source, ["-", None, "", alias]),
    ]:
        with pytest.raises(OutputConflict) as error:
            write_file(target, b"overwritten", inputs)
        assert rule_of(error) == "output-is-input"
    assert source.read_bytes() == b"input" and alias.is_symlink()


def test_a_folder_is_never_taken_for_a_file(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    with pytest.raises(OutputConflict) as error:
        write_file(tmp_path / "folder", b"x")
    assert rule_of(error) == "output-exists"
    assert listing(tmp_path / "folder") == {"keep.txt": b"mine"}


def test_a_file_in_a_folder_that_is_replaced_whole_is_refused(tmp_path):
    with pytest.raises(OutputConflict) as error:
        OutputFile(tmp_path / "out" / "report.json", replaced=[tmp_path / "out"])
    assert rule_of(error) == "output-is-input"


@pytest.mark.parametrize(
    "place",
    [
        "parent-is-a-file/x.json",
        "parent-is-a-file/deeper/x.json",
        "/proc/fms-fhir-cannot-write-here/x.json",
        "/proc/fms-fhir-cannot-write-here.json",
        "/sys/fms-fhir-no-permission.json",
    ],
)
def test_places_that_cannot_be_written_get_an_outcome(tmp_path, place):
    (tmp_path / "parent-is-a-file").write_text("a file")
    with pytest.raises(OutputConflict) as error:
        write_file(tmp_path / place, b"x")
    assert rule_of(error) == "output-unwritable"
    assert (tmp_path / "parent-is-a-file").read_text() == "a file"


def test_several_files_are_written_all_or_none(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_bytes(b"old a")
    with pytest.raises(OutputConflict):
        outputs.write_files([(first, b"new a"), ("/proc/fms-fhir-nowhere/b.json", b"new b")])
    assert siblings(tmp_path) == ["a.json"] and first.read_bytes() == b"old a"
    # A place that turns into a folder after staging: nothing of the set is put in place.
    staged = [OutputFile(first).stage(b"new a"), OutputFile(second).stage(b"new b")]
    second.mkdir()
    with pytest.raises(OutputConflict) as error:
        commit(*staged)
    assert rule_of(error) == "output-exists"
    assert siblings(tmp_path) == ["a.json", "b.json"] and first.read_bytes() == b"old a"
    second.rmdir()
    assert outputs.write_files([(first, b"new a"), (second, b"new b")]) == [first, second]
    assert listing(tmp_path) == {"a.json": b"new a", "b.json": b"new b"}


def test_a_temporary_file_of_a_killed_run_is_removed(tmp_path):
    target = tmp_path / "out.json"
    leftover = tmp_path / f".out.json.partial-{DEAD}"
    leftover.write_bytes(b"half")
    alive = tmp_path / f".out.json.partial-{os.getppid()}"  # a run still writing
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.json.partial-{DEAD}"
    other.write_bytes(b"not this output's")
    write_file(target, b"whole")
    assert siblings(tmp_path) == sorted([alive.name, other.name, "out.json"])


# --- a folder ------------------------------------------------------------------------------------


def test_a_folder_is_written_with_its_marker_and_replaced_whole(tmp_path):
    target = tmp_path / "parent" / "out"
    write_folder(target, {"a.txt": b"1", "b.txt": b"2"})
    marker = (target / MARKER).read_text().splitlines()
    assert marker == [outputs.marker_text(KIND).strip(), '["a.txt", "b.txt"]']
    write_folder(target, {"c.txt": b"3"})
    assert listing(target) == {MARKER: (target / MARKER).read_bytes(), "c.txt": b"3"}
    assert siblings(target.parent) == ["out"], "no staging or trash folder left"


def test_an_empty_folder_may_be_used(tmp_path):
    (tmp_path / "out").mkdir()
    write_folder(tmp_path / "out", {"a.txt": b"1"})
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"1"


def test_a_folder_holding_a_file_fms_fhir_did_not_write_is_refused(tmp_path):
    target = tmp_path / "out"
    write_folder(target, {"a.txt": b"1"})
    (target / "thesis.docx").write_text("precious")
    before = listing(target)
    with pytest.raises(OutputConflict) as error:
        write_folder(target, {"b.txt": b"2"})
    assert rule_of(error) == "output-exists" and "thesis.docx" in str(error.value)
    assert listing(target) == before and siblings(tmp_path) == ["out"]


def test_a_file_appearing_while_writing_stops_the_replacement(tmp_path):
    target = tmp_path / "out"
    write_folder(target, {"a.txt": b"1"})
    before = listing(target)
    with pytest.raises(OutputConflict) as error:
        with output_folder(target, KIND) as staging:
            (staging / "b.txt").write_bytes(b"2")
            (target / "notes.md").write_text("written meanwhile")
    assert rule_of(error) == "output-exists" and "notes.md" in str(error.value)
    assert listing(target) == {**before, "notes.md": b"written meanwhile"}
    assert siblings(tmp_path) == ["out"]


def test_another_commands_folder_is_not_this_ones(tmp_path):
    target = tmp_path / "out"
    with output_folder(target, "another-command") as staging:
        (staging / "a.txt").write_bytes(b"theirs")
    with pytest.raises(OutputConflict):
        write_folder(target, {"a.txt": b"mine"})
    assert (target / "a.txt").read_bytes() == b"theirs"


def test_a_marker_of_an_earlier_version_counts_the_files_by_name(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / MARKER).write_text(f"written by fms-fhir {KIND}\n")  # lists no files
    (target / "old.txt").write_text("ours by its name")
    write_folder(target, {"new.txt": b"1"}, recognise=recognise)
    assert sorted(listing(target)) == [MARKER, "new.txt"]
    (target / MARKER).write_text(f"written by fms-fhir {KIND}\n")
    (target / "data.csv").write_text("not a name this command writes")
    with pytest.raises(OutputConflict):
        write_folder(target, {"new.txt": b"2"}, recognise=recognise)
    assert (target / "data.csv").exists()


def test_a_folder_kept_without_its_marker_is_known_by_recognise(tmp_path):
    def by_manifest(folder: Path) -> set[str] | None:
        try:
            return {"manifest", *json.loads((folder / "manifest").read_text())}
        except (OSError, ValueError):
            return set() if outputs.marked(folder, KIND) else None

    target = tmp_path / "out"
    files = {"manifest": b'["a.txt"]', "a.txt": b"1"}
    write_folder(target, files, recognise=by_manifest, keep_marker=False)
    assert listing(target) == files
    write_folder(target, files, recognise=by_manifest, keep_marker=False)
    assert listing(target) == files and siblings(tmp_path) == ["out"]
    (target / "b.txt").write_text("not in the manifest")
    with pytest.raises(OutputConflict):
        write_folder(target, files, recognise=by_manifest, keep_marker=False)


def test_folder_places_that_cannot_be_used(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    for target, rule in [
        (tmp_path / "a-file", "output-exists"),
        (tmp_path / "link", "output-exists"),
        (tmp_path / "a-file" / "out", "output-unwritable"),
        (Path("/proc/fms-fhir-cannot-write-here"), "output-unwritable"),
        (Path("/sys/fms-fhir-no-permission"), "output-unwritable"),
    ]:
        with pytest.raises(OutputConflict) as error:
            write_folder(target, {"a.txt": b"1"})
        assert rule_of(error) == rule, target
    assert (tmp_path / "a-file").read_text() == "x" and not any(real.iterdir())
    assert siblings(tmp_path) == ["a-file", "link", "real"]


def test_an_input_is_never_in_the_output_folder(tmp_path, monkeypatch):
    source = tmp_path / "data" / "sheet.csv"
    source.parent.mkdir()
    source.write_text("p,d\n")
    monkeypatch.chdir(tmp_path / "data")
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path / "data")
    for target, inputs in [
        (tmp_path / "data", [source]),  # the folder holds the input
        (tmp_path, [source]),  # an ancestor holds it
        (".", ["sheet.csv"]),
        ("", ["sheet.csv"]),
        (tmp_path / "data", [alias / "sheet.csv"]),  # by another path
        (tmp_path / "data", [tmp_path / "data"]),  # a folder that is the input
    ]:
        with pytest.raises(OutputConflict) as error:
            write_folder(target, {"a.txt": b"1"}, inputs=inputs)
        assert rule_of(error) == "output-is-input", (target, inputs)
    assert source.read_text() == "p,d\n" and siblings(tmp_path / "data") == ["sheet.csv"]


@pytest.mark.parametrize("stop", [ValueError("a bad row"), SystemExit(143), KeyboardInterrupt()])
def test_an_interrupted_run_removes_its_staging_and_keeps_the_old_output(tmp_path, stop):
    target = tmp_path / "out"
    write_folder(target, {"a.txt": b"old"})
    before = listing(target)
    with pytest.raises(type(stop)):
        with output_folder(target, KIND) as staging:
            (staging / "a.txt").write_bytes(b"half")
            raise stop
    assert listing(target) == before and siblings(tmp_path) == ["out"]
    with pytest.raises(type(stop)):
        with output_folder(tmp_path / "new" / "deeper", KIND) as staging:
            raise stop
    assert siblings(tmp_path) == ["out"], "folders made for the output are removed too"


def test_leftovers_of_killed_runs_are_cleaned_and_nothing_else(tmp_path):
    def leftover(name: str, files: dict[str, str], marker: str | None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for file, text in files.items():
            (folder / file).write_text(text)
        if marker is not None:
            (folder / MARKER).write_text(marker)
        return folder

    staging = outputs.marker_text(KIND)
    listed = outputs.marker_text(KIND, ["a.txt"])
    cleaned = [
        leftover(f".out.partial-{DEAD}", {"a.txt": "half"}, staging),  # killed while writing
        leftover(f".out.old-{DEAD}", {"a.txt": "old"}, listed),  # killed between the renames
        leftover(f".out.partial-{DEAD + 1}", {}, staging),
    ]
    kept = [
        leftover(f".out.partial-{DEAD + 2}", {"thesis.docx": "precious"}, staging),
        leftover(f".out.old-{DEAD + 3}", {"a.txt": "x", "b.txt": "unlisted"}, listed),
        leftover(f".out.old-{DEAD + 4}", {"a.txt": "no marker"}, None),
        leftover(f".out.old-{DEAD + 5}", {"a.txt": "x"}, outputs.marker_text("other", ["a.txt"])),
        leftover(f".out.partial-{os.getppid()}", {"a.txt": "a run still writing"}, staging),
        leftover(f".other.partial-{DEAD}", {"a.txt": "another output's"}, staging),
        leftover(".out.partial-not-a-pid", {"a.txt": "x"}, staging),
    ]
    write_folder(tmp_path / "out", {"a.txt": b"new"}, recognise=recognise)
    assert not [folder for folder in cleaned if folder.exists()]
    assert all(folder.exists() and any(folder.iterdir()) for folder in kept)
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"new"


def test_a_failed_commit_puts_every_output_back(tmp_path):
    """The sheet's output and its row report: both or neither."""
    target = tmp_path / "out"
    write_folder(target, {"a.txt": b"old"})
    report = tmp_path / "report.json"
    report.write_bytes(b"old report")
    before = listing(target)
    folder = OutputFolder(target, KIND)
    (folder.staging / "a.txt").write_bytes(b"new")
    file = OutputFile(report, replaced=[target]).stage(b"new report")
    file.temporary.unlink()  # the report's rename will fail after the folder's
    with pytest.raises(OutputConflict) as error:
        commit(folder, file)
    assert rule_of(error) == "output-unwritable"
    assert listing(target) == before and report.read_bytes() == b"old report"
    assert siblings(tmp_path) == ["out", "report.json"]


def test_the_sheet_output_is_not_moved_into_place_when_its_report_cannot_be_written(tmp_path):
    def sheet(path: Path, patient: str) -> Path:
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(
                [
                    ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max"],
                    [patient, "2024-01-10", "", 40, 60],
                ]
            )
        return path

    out = tmp_path / "out"
    first = sheet(tmp_path / "first.csv", "P1")
    assert CliRunner().invoke(main, ["convert-sheet", str(first), "--out", str(out)]).exit_code == 0
    before = listing(out)
    second = sheet(tmp_path / "second.csv", "P2")
    nowhere = "/proc/fms-fhir-cannot-write-here/report.json"
    result = CliRunner().invoke(
        main, ["convert-sheet", str(second), "--out", str(out), "--report", nowhere]
    )
    assert result.exit_code == 4, result.output
    assert json.loads(result.stdout)["issue"][0]["details"]["coding"][0]["code"] == (
        "output-unwritable"
    )
    assert listing(out) == before, "the old output stays: the new one went nowhere"
    assert siblings(tmp_path) == ["first.csv", "out", "second.csv"]


# --- properties ----------------------------------------------------------------------------------

NAME = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._ -]{0,20}", fullmatch=True).filter(
    lambda name: name != MARKER
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.sets(NAME, max_size=6), second=st.sets(NAME, max_size=6), stranger=NAME)
def test_a_folder_holds_exactly_what_the_last_run_wrote(first, second, stranger):
    with tempfile.TemporaryDirectory() as root:
        target = Path(root) / "out"
        write_folder(target, {name: name.encode() for name in first})
        write_folder(target, {name: name.encode() for name in second})
        assert set(listing(target)) == {MARKER, *second}
        assert outputs.written(target, KIND) == second
        if stranger not in second:
            (target / stranger).write_bytes(b"not ours")
            with pytest.raises(OutputConflict):
                write_folder(target, {})
            assert set(listing(target)) == {MARKER, *second, stranger}
        assert os.listdir(root) == ["out"]
