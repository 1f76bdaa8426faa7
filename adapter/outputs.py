"""Writing outputs safely: the one place every command that writes a file or a folder goes through.

What it guarantees, for every writer:

- **Never half an output.** A file is written to a temporary file beside it, flushed to disk
  (fsync) and renamed over the old one. A folder is written into a staging folder beside it and
  put in place by two renames (old -> trash, staging -> target); the old output is never
  half-deleted, and a run that fails, is interrupted (an exception, Ctrl-C, SIGTERM turned into
  SystemExit by the CLI) removes its staging folder. Several outputs (an output folder and its
  row report) are committed together: all of them or none (`commit`).
- **Never an input overwritten.** Resolved paths are compared: an output that is an input, a
  folder that holds one, and a file inside a folder that is replaced whole are refused.
- **Never delete what fms-fhir did not write.** A folder carries a marker (`MARKER`) naming the
  command and listing the files it wrote there; an existing folder holding anything else (or
  written by another command) is refused before anything is written, and again just before it
  is replaced.
- **Killed runs are cleaned up.** The staging and trash folders of a run that was killed
  (`.<name>.partial-<pid>`, `.<name>.old-<pid>`) are removed by the next run when their process is
  gone and they carry the command's marker and nothing else; a killed run's temporary file
  (`.<name>.partial-<pid>`, a plain file: it can carry no marker) by its name alone.
- **An answer, never a traceback.** A place that cannot be used is an `OutputConflict` (exit 4,
  HTTP 409) whose issue carries a rule code: `output-exists` (a file where a folder is asked, a
  folder where a file is asked, a folder holding files of someone else, a symbolic link),
  `output-is-input`, `output-unwritable` (the parent is a file, no permission, `/proc`).

A file is flushed to disk before its rename. The files of a folder are not flushed one by one
(an fsync costs milliseconds a file: minutes for a sheet of many visits): a folder is whole after
an interrupted or killed run, and after a power cut as far as the file system keeps data and
renames in order.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from adapter.outcome import Issue, OutputConflict

MARKER = ".fms-fhir-output"
"""The file in each output folder that says fms-fhir wrote it and which files it wrote there."""
MARKER_START = "written by fms-fhir"

PathLike = str | os.PathLike[str]
Recognise = Callable[[Path], set[str] | None]
"""For a folder whose marker lists no files (an earlier version's marker, a staging folder of a
killed run) or that carries no marker: the names in it this command wrote; None: not ours."""


# --- issues --------------------------------------------------------------------------------------


def conflict(message: str, rule: str = "output-exists") -> OutputConflict:
    return OutputConflict([Issue("fatal", "conflict", message, None, rule)])


def unwritable(place: PathLike, error: OSError | str) -> OutputConflict:
    reason = error if isinstance(error, str) else (error.strerror or str(error))
    message = f"cannot write {place}: {reason}"
    return OutputConflict([Issue("fatal", "exception", message, None, "output-unwritable")])


# --- paths ---------------------------------------------------------------------------------------


def _absolute(path: PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path) or "."))


def _resolved(path: PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path) or "."))


def _inputs(inputs: Iterable[PathLike | None]) -> list[Path]:
    """The inputs that are paths (not standard input, not absent), resolved."""
    return [_resolved(source) for source in inputs if source and os.fspath(source) != "-"]


def _check_parent(place: Path) -> None:
    """The nearest existing ancestor is a folder (creating the rest can then be tried)."""
    for ancestor in place.parents:
        try:
            info = os.stat(ancestor)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise unwritable(place, error) from None
        if not stat.S_ISDIR(info.st_mode):
            raise unwritable(place, f"{ancestor} is a file, not a folder")
        return


def _make_parents(place: Path) -> list[Path]:
    """Creates the missing folders above `place`; returns them, deepest first, for undoing."""
    missing = []
    for ancestor in place.parents:
        if ancestor.exists():
            break
        missing.append(ancestor)
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _fsync_folder(folder: Path) -> None:
    """A rename is durable once its folder is flushed (where the system allows opening one)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def _leftovers(target: Path, kinds: str) -> Iterator[Path]:
    """Siblings of `target` named as a dead run's staging or trash (`kinds`: a regex group)."""
    pattern = re.compile(re.escape(f".{target.name}.") + rf"(?:{kinds})-(\d+)")
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        found = pattern.fullmatch(sibling.name)
        if found and not _alive(int(found.group(1))):
            yield sibling


# --- the marker ----------------------------------------------------------------------------------


def marker_text(kind: str, names: Iterable[str] | None = None) -> str:
    """The marker: a line naming the command, then (once written) a JSON list of its files."""
    text = f"{MARKER_START} {kind}; the files it wrote here:\n"
    return text if names is None else text + json.dumps(sorted(names)) + "\n"


def _marker_lines(folder: Path) -> list[str] | None:
    path = folder / MARKER
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 22).splitlines()
    except OSError:
        return None


def _by(lines: list[str] | None, kind: str) -> bool:
    """The marker names this command (in this version's words or an earlier one's)."""
    head = lines[0] if lines else ""
    return head == f"{MARKER_START} {kind}" or head.startswith(f"{MARKER_START} {kind};")


def marked(folder: Path, kind: str) -> bool:
    """The folder carries the marker of command `kind` (of any version): another command's
    output is not this one's to replace."""
    return _by(_marker_lines(folder), kind)


def matching(folder: Path, pattern: re.Pattern[str]) -> set[str]:
    """The names in `folder` that `pattern` matches whole (a command's own file names)."""
    return {name for name in os.listdir(folder) if pattern.fullmatch(name)}


def written(folder: Path, kind: str, recognise: Recognise | None = None) -> set[str] | None:
    """The names command `kind` wrote in `folder`; None when the folder is not one of its."""
    lines = _marker_lines(folder)
    mine = _by(lines, kind)
    if lines is not None and mine and len(lines) > 1:
        try:
            listed = json.loads(lines[1])
        except ValueError:
            return set()
        return {name for name in listed if isinstance(name, str)} if type(listed) is list else set()
    if recognise is not None:
        return recognise(folder)
    return set() if mine else None


def foreign(folder: Path, kind: str, recognise: Recognise | None = None) -> set[str]:
    """The names in `folder` command `kind` did not write there (all, if it is not its)."""
    names = set(os.listdir(folder)) - {MARKER}
    ours = written(folder, kind, recognise)
    return names if ours is None else names - ours


def _remove_ours(folder: Path) -> None:
    """Removes a folder of ours, the marker last: if this is interrupted, what is left still
    carries the marker and the next run finishes the job."""
    try:
        entries = [entry for entry in os.scandir(folder) if entry.name != MARKER]
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.unlink(folder / MARKER)
    with contextlib.suppress(OSError):
        folder.rmdir()


# --- copying between files ----------------------------------------------------------------------

COPY_BLOCK = 1 << 20
"""Bytes read at a time where the system cannot copy between files itself."""


def copy_range(source: int, target: int, offset: int, length: int) -> None:
    """Appends `length` bytes of the file `source` from `offset` at the position of `target`
    (both open file descriptors) and moves that position past them.

    The kernel copies (`os.copy_file_range`: no bytes pass through this process) where it
    can; elsewhere (another system, file systems it cannot copy between) they are read and
    written a block at a time."""
    copy = getattr(os, "copy_file_range", None)
    while length > 0 and copy is not None:
        try:
            done = copy(source, target, length, offset)
        except OSError as error:
            if error.errno not in _NO_KERNEL_COPY:
                raise
            break
        if done == 0:
            raise OSError(f"copying {length} bytes from offset {offset}: the source ends")
        offset += done
        length -= done
    while length > 0:
        block = os.pread(source, min(length, COPY_BLOCK), offset)
        if not block:
            raise OSError(f"copying {length} bytes from offset {offset}: the source ends")
        view = memoryview(block)
        while view:
            view = view[os.write(target, view) :]
        offset += len(block)
        length -= len(block)


IOV_MAX = max(16, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16)
"""Buffers one `os.writev` takes (1024 on Linux)."""


def write_pieces(target: int, pieces: list[bytes]) -> int:
    """Writes `pieces` one after the other at the position of the file descriptor `target`, in
    a few system calls and without joining them into one copy first; returns the bytes
    written."""
    total = 0
    views = [memoryview(piece) for piece in pieces if piece]
    first = 0
    while first < len(views):
        done = os.writev(target, views[first : first + IOV_MAX])
        total += done
        while first < len(views) and done >= len(views[first]):
            done -= len(views[first])
            first += 1
        if done:  # a piece written in part (rare: a signal, a full disk)
            views[first] = views[first][done:]
    return total


_NO_KERNEL_COPY = {
    getattr(errno, name)
    for name in ("EXDEV", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "EINVAL", "EBADF", "EPERM")
    if hasattr(errno, name)
}
"""What copy_file_range answers where it cannot copy between these two files (EINVAL, EBADF,
EPERM: a file system or file kind it does not support; the fallback then says what is wrong)."""


# --- outputs -------------------------------------------------------------------------------------


class Output:
    """One output being written: checked and staged when made, put in place by `commit`."""

    shown: str
    """The path as the user gave it, for messages."""

    def _prepare(self) -> None:
        """Last checks before anything is moved (may raise)."""

    def _swap(self) -> Callable[[], None]:
        """Moves the staged output into place; returns what puts the old one back."""
        raise NotImplementedError

    def _settle(self) -> None:
        """After every output of a commit is in place: remove what the old ones left."""

    def abort(self) -> None:
        """Leave nothing behind (idempotent; does nothing once committed)."""


def commit(*outputs: Output) -> None:
    """Puts every output in place, or none: one that cannot be moved puts back those before it,
    and every staged output is removed. An OSError becomes an OutputConflict (exit 4)."""
    ordered = sorted(outputs, key=lambda output: isinstance(output, OutputFile))
    undo: list[Callable[[], None]] = []
    current = ordered[0] if ordered else None
    try:
        for current in ordered:
            current._prepare()
        for current in ordered:
            undo.append(current._swap())
    except BaseException as error:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        for output in reversed(ordered):
            output.abort()
        if isinstance(error, OSError):
            raise unwritable(current.shown if current else "the output", error) from None
        raise
    for output in ordered:
        output._settle()


class OutputFile(Output):
    """A file: `stage(data)` writes it to `.<name>.partial-<pid>` beside the target and flushes
    it; `commit` renames it over the target.

    Refused when made: an input as the target (`output-is-input`), a target inside a folder
    that is being replaced whole (`replaced`), a folder as the target (`output-exists`), a place
    under a file (`output-unwritable`). `role` names the file in messages ("file for the report").
    """

    def __init__(
        self,
        path: PathLike,
        inputs: Iterable[PathLike | None] = (),
        replaced: Iterable[PathLike] = (),
        role: str = "file",
    ) -> None:
        self.shown = os.fspath(path)
        self.target = _absolute(path)
        resolved = _resolved(path)
        for folder in replaced:
            place = _resolved(folder)
            if place == resolved or place in resolved.parents:
                message = (
                    f"{self.shown} lies in the output folder {folder}, which each run replaces"
                )
                raise conflict(message, "output-is-input")
        if resolved in _inputs(inputs):
            raise conflict(f"{self.shown} is an input; name another {role}", "output-is-input")
        if self.target.is_dir():
            raise conflict(f"{self.shown} is a folder; name a {role}")
        _check_parent(self.target)
        self.temporary = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        self.keep = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        self.created: list[Path] = []
        self.staged = False

    def stage(self, data: bytes) -> OutputFile:
        """Writes `data` beside the target and flushes it to disk."""
        try:
            self.created = _make_parents(self.target)
            for leftover in _leftovers(self.target, "partial|old"):
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(leftover).st_mode):
                        leftover.unlink()
            with open(self.temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            self.abort()
            raise unwritable(self.shown, error) from None
        except BaseException:
            self.abort()
            raise
        self.staged = True
        return self

    def _prepare(self) -> None:
        if not self.staged:
            raise RuntimeError(f"{self.shown} was not staged")
        if self.target.is_dir():
            raise conflict(f"a folder appeared at {self.shown}; name a file")

    def _swap(self) -> Callable[[], None]:
        had_old = os.path.lexists(self.target)
        kept = False
        if had_old:
            try:  # a second name for the old file, so that a failed commit can put it back
                os.link(self.target, self.keep, follow_symlinks=False)
                kept = True
            except OSError:
                pass
        os.replace(self.temporary, self.target)
        self.staged = False
        _fsync_folder(self.target.parent)

        def undo() -> None:
            if kept:
                os.replace(self.keep, self.target)
            elif not had_old:
                self.target.unlink()

        return undo

    def _settle(self) -> None:
        with contextlib.suppress(OSError):
            self.keep.unlink()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.temporary.unlink()
        with contextlib.suppress(OSError):
            self.keep.unlink()
        self.staged = False
        _remove_empty(self.created)
        self.created = []


def write_file(
    path: PathLike, data: bytes, inputs: Iterable[PathLike | None] = (), role: str = "file"
) -> Path:
    """Writes one file whole, or not at all; returns its path."""
    output = OutputFile(path, inputs, role=role).stage(data)
    commit(output)
    return output.target


def write_files(
    files: Iterable[tuple[PathLike, bytes]], inputs: Iterable[PathLike | None] = ()
) -> list[Path]:
    """Writes several files, each whole, all of them or none; returns their paths."""
    sources = list(inputs)
    staged: list[OutputFile] = []
    try:
        for path, data in files:
            staged.append(OutputFile(path, sources).stage(data))
    except BaseException:
        for output in reversed(staged):
            output.abort()
        raise
    commit(*staged)
    return [output.target for output in staged]


class OutputFolder(Output):
    """A folder replaced whole: made, it checks the target and cleans up after killed runs, then
    creates the staging folder `.<name>.partial-<pid>` (with our marker) beside it, which the
    caller fills; `commit` lists the files in the marker and puts the staging folder in place.

    `kind` names the command in the marker ("convert-sheet", "report", "package"); `recognise`
    tells which names the command writes in a folder whose marker lists none (see `Recognise`);
    `keep_marker=False` leaves the marker out of the finished folder (the package's folder, which
    tools read file by file and `recognise` knows by its own index).
    """

    def __init__(
        self,
        target: PathLike,
        kind: str,
        inputs: Iterable[PathLike | None] = (),
        recognise: Recognise | None = None,
        keep_marker: bool = True,
    ) -> None:
        self.shown = os.fspath(target)
        self.target = _absolute(target)
        self.kind = kind
        self.recognise = recognise
        self.keep_marker = keep_marker
        self._check(_inputs(inputs))
        self._clean_leftovers()
        self.staging = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        self.trash = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        self.created: list[Path] = []
        self.done = False
        try:
            if os.path.lexists(self.staging):  # this process's own, from an earlier output
                self._remove_if_ours(self.staging)
                if os.path.lexists(self.staging):
                    raise conflict(f"{self.staging} is in the way and fms-fhir did not write it")
            self.created = _make_parents(self.staging)
            self.staging.mkdir()
            (self.staging / MARKER).write_text(marker_text(kind))
        except OSError as error:
            self.abort()
            raise unwritable(self.shown, error) from None

    def _check(self, inputs: list[Path]) -> None:
        target, shown = self.target, self.shown
        if target.is_symlink():
            raise conflict(f"{shown} is a symbolic link; name a real folder")
        resolved = _resolved(target)
        for source in inputs:
            if source == resolved or resolved in source.parents:
                raise conflict(
                    f"{shown} is (or holds) the input {source.name}; name another folder",
                    "output-is-input",
                )
        if not os.path.lexists(target):
            _check_parent(target)
            return
        if not target.is_dir():
            raise conflict(f"{shown} exists and is not a folder; name a new or empty folder")
        try:
            found = foreign(target, self.kind, self.recognise)
        except OSError as error:
            raise unwritable(shown, error) from None
        if found:
            listed = ", ".join(sorted(found)[:5])
            raise conflict(
                f"{shown} holds files fms-fhir did not write ({listed}); name a new or empty "
                "folder: nothing in it is deleted"
            )

    def _remove_if_ours(self, folder: Path) -> None:
        """Removes `folder` when it is ours and holds nothing fms-fhir did not write."""
        try:
            if folder.is_symlink() or not folder.is_dir():
                return
            ours = written(folder, self.kind, self.recognise)
            if ours is None or set(os.listdir(folder)) - {MARKER} - ours:
                return
        except OSError:
            return
        _remove_ours(folder)

    def _clean_leftovers(self) -> None:
        """Staging and trash folders of killed runs, when they are ours and hold nothing else."""
        for leftover in _leftovers(self.target, "partial|old"):
            self._remove_if_ours(leftover)

    def _prepare(self) -> None:
        if self.done:
            raise RuntimeError(f"{self.shown} was committed already")
        if self.keep_marker:
            names = [name for name in os.listdir(self.staging) if name != MARKER]
            (self.staging / MARKER).write_text(marker_text(self.kind, names))
        if os.path.lexists(self.target):
            if self.target.is_symlink() or not self.target.is_dir():
                raise conflict(f"{self.shown} was replaced by something else while writing")
            found = foreign(self.target, self.kind, self.recognise)
            if found:
                raise conflict(
                    f"files appeared in {self.shown} while writing "
                    f"({', '.join(sorted(found)[:5])}); the new output is not moved there"
                )
        if not self.keep_marker:
            (self.staging / MARKER).unlink(missing_ok=True)

    def _swap(self) -> Callable[[], None]:
        # Two renames: the old output is never half-deleted; if killed between them, the old
        # output waits in the trash folder and the next run removes it.
        had_old = os.path.lexists(self.target)
        if had_old:
            self.target.rename(self.trash)
        try:
            self.staging.rename(self.target)
        except BaseException:
            if had_old:
                self.trash.rename(self.target)
            raise
        self.done = True
        _fsync_folder(self.target.parent)

        def undo() -> None:
            self.target.rename(self.staging)
            if had_old:
                self.trash.rename(self.target)
            self.done = False

        return undo

    def _settle(self) -> None:
        if os.path.lexists(self.trash):
            self._remove_if_ours(self.trash)

    def abort(self) -> None:
        if self.done:
            return
        if os.path.lexists(self.staging):
            shutil.rmtree(self.staging, ignore_errors=True)
        _remove_empty(self.created)
        self.created = []


@contextlib.contextmanager
def output_folder(
    target: PathLike,
    kind: str,
    inputs: Iterable[PathLike | None] = (),
    recognise: Recognise | None = None,
    keep_marker: bool = True,
) -> Iterator[Path]:
    """`with output_folder(target, "report", inputs) as staging:` write into `staging`; on
    leaving it is committed, on an exception (or SystemExit) removed."""
    folder = OutputFolder(target, kind, inputs, recognise, keep_marker)
    try:
        yield folder.staging
    except BaseException:
        folder.abort()
        raise
    commit(folder)


__all__ = [
    "MARKER",
    "Output",
    "OutputFile",
    "OutputFolder",
    "commit",
    "conflict",
    "copy_range",
    "foreign",
    "marked",
    "marker_text",
    "matching",
    "output_folder",
    "unwritable",
    "write_file",
    "write_files",
    "write_pieces",
    "written",
]
