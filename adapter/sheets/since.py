"""The edge of `convert-sheet --since PREVIOUS_OUT`: reads the previous output folder, hands the
comparison to `adapter.sheets.delta`, and leaves the state for the next run.

The previous folder is any output of convert-sheet (any format, this version or an earlier one,
whose marker says so). A run with `--since` writes only what changed, so its folder also holds
the whole state after it (`STATE`: every resource as the server holds it once the delta is
posted, NDJSON with relative references): the next run can then take it as its `--since` too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from adapter.bundle import entry_id
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.outputs import MARKER, written
from adapter.settings import Settings
from adapter.sheets.delta import (
    Delta,
    Previous,
    State,
    Visit,
    relative,
    relinked,
    visit_of,
    withdrawn,
)
from adapter.sheets.output import KIND, FolderSink, Sink, recognise

STATE = ".fms-fhir-state.ndjson"
"""The whole state after a `--since` run, in its output folder (hidden: not an output file)."""


def _invalid(message: str, where: str, rule: str) -> InvalidInput:
    return InvalidInput([Issue("error", "invalid", message, where, rule)])


def _files(folder: Path, where: str) -> list[Path]:
    """The files convert-sheet wrote in `folder` (the state alone when there is one)."""
    if not folder.is_dir():
        raise _invalid(f"{folder} is not a folder", where, "since-not-an-output")
    names = written(folder, KIND, recognise)
    if names is None:
        message = (
            f"{folder} is not an output folder of convert-sheet (no {MARKER} naming it); "
            "name the --out folder of an earlier run"
        )
        raise _invalid(message, where, "since-not-an-output")
    if STATE in names and (folder / STATE).is_file():
        return [folder / STATE]
    found = [folder / name for name in sorted(names) if name.endswith((".json", ".ndjson"))]
    return [path for path in found if path.is_file() and not path.name.startswith(".")]


def _resources(path: Path) -> Iterator[dict[str, Any]]:
    """One file's resources, relative, with their ids."""
    if path.suffix == ".ndjson":
        with open(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    value = orjson.loads(line)
                    if isinstance(value, dict):
                        yield value
        return
    bundle = orjson.loads(path.read_bytes())
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    pairs = []
    for item in entries if isinstance(entries, list) else []:
        rid = entry_id(item) if isinstance(item, dict) else None
        resource = item.get("resource") if isinstance(item, dict) else None
        if rid and isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            pairs.append((rid, resource))
    for rid, resource in pairs:
        yield {"resourceType": resource["resourceType"], "id": rid, **resource}


def previous_resources(folder: Path, settings: Settings, where: str) -> Iterator[dict[str, Any]]:
    """Every resource of a previous output, with its id and relative references."""
    for path in _files(folder, where):
        try:
            if path.suffix == ".ndjson":  # relative already, and read a line at a time
                yield from _resources(path)
                continue
            found = list(_resources(path))  # a Bundle: placeholders name its own entries
            kinds = {r["id"]: r["resourceType"] for r in found}
            for resource in found:
                yield relative(resource, kinds, settings)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as error:
            message = f"cannot read {path} of the previous output: {error}"
            raise _invalid(message, where, "since-unreadable") from None


@dataclass
class Since:
    """One run's comparison with a previous output: made before the output is opened (a bad
    folder stops the run before anything is written), started on the sink."""

    folder: Path
    where: str
    settings: Settings
    delta: Delta
    state: IO[bytes] | None = None
    sink: Sink | None = None
    withdrawn_visits: list[Visit] = field(default_factory=list)

    def start(self, sink: Sink) -> None:
        """The state goes beside the output's files, when the output is a folder."""
        self.sink = sink
        if isinstance(sink, FolderSink):
            self.state = open(sink.staging / STATE, "wb")  # noqa: SIM115  # closed by finish/abort

    def _keep(self, resources: list[dict[str, Any]]) -> None:
        if self.state is not None:
            self.state.writelines(
                orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in resources
            )

    def visit(
        self, patient: str, day: str, resources: list[dict[str, Any]]
    ) -> tuple[State, list[dict[str, Any]]]:
        """The visit's state and what to write of it."""
        state, write, held = self.delta.compare((patient, day), resources)
        self._keep(held)
        return state, write

    def withdraw(self) -> dict[Visit, list[dict[str, Any]]]:
        """Each previous resource this run did not give, marked entered-in-error, in the
        output's link style, by visit; those withdrawn by an earlier run are kept as they are."""
        now, before = self.delta.gone()
        marked: dict[Visit, list[dict[str, Any]]] = {}
        found: list[dict[str, Any]] = []
        if now or before:
            for resource in previous_resources(self.folder, self.settings, self.where):
                rid = resource.get("id")
                if rid in now:
                    found.append(withdrawn(resource))
                elif rid in before:
                    self._keep([resource])
        self._keep(found)
        self.withdrawn_visits = self.delta.withdrawn_visits(found)
        assert self.sink is not None, "start() first"
        ids = {r["id"] for r in found}
        for resource in sorted(found, key=lambda r: (visit_of(r), r["id"])):
            marked.setdefault(visit_of(resource), []).append(
                relinked(resource, self.sink.links, ids)
            )
        return marked

    def close(self) -> None:
        if self.state is not None:
            with contextlib.suppress(OSError):
                self.state.close()
            self.state = None


def open_since(folder: str | Path, settings: Settings, where: str = "since") -> Since:
    """Reads the previous output (InvalidInput, naming `where`, when it is not one)."""
    path = Path(folder)
    previous = Previous()
    for resource in previous_resources(path, settings, where):
        previous.add(resource)
    return Since(path, where, settings, Delta(previous, settings))
