"""One sheet-conversion request, whichever edge it comes from (the CLI, `POST /$convert-sheet`,
the page's `POST /`), and the one place it is resolved into the contract and the sink used.

An edge only translates its input into a `SheetRequest` (and names, in `Places`, where it took
each option from, so that an error points at the caller's own option or field); every default
and every check lives here, so the same sheet with the same options gives the same output on
every edge. Where the output goes is a `Destination`: the sink is built here from it, with the
request's format and bundle type, so no edge can build a sink that disagrees with its request.
"""

from __future__ import annotations

import codecs
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from adapter.bundle import BUNDLE_TYPES, FORMATS, BundleType, Format
from adapter.jsonio import too_large
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import Settings
from adapter.sheets.contract import (
    SheetContract,
    contract_from_bytes,
    default_contract,
    with_patient_system,
)
from adapter.sheets.output import SINKS, MemorySink, NdjsonStreamSink, Sink

if TYPE_CHECKING:
    from adapter.sheets.since import Since

MAX_TEST_DATA = 2000
"""Characters of a test-data note: the limit a contract's own `test_data` has."""


@dataclass(frozen=True)
class ContractFile:
    """A contract as the caller gave it (YAML or JSON bytes) and the name to call it by."""

    data: bytes
    name: str


@dataclass(frozen=True)
class SheetOptions:
    """What the caller may choose; the defaults are every edge's defaults."""

    format: Format = "transaction"
    """transaction (a Bundle per visit), patient (a Bundle per patient) or ndjson."""
    bundle_type: BundleType = "transaction"
    patient_system: str | None = None
    """Identifier system of the patient column, over the contract's ("" or None: not given)."""
    charset: str | None = None
    """The CSV's character set as the transport says it (a Content-Type parameter); the
    contract's own `encoding` wins."""
    test_data: str | None = None
    """Example or synthetic sheet: what is invented; every resource is tagged HTEST."""
    max_rows: int | None = None
    """A lower row limit than the settings' (an edge that holds the output in memory)."""
    since: str | Path | None = None
    """A previous output folder of convert-sheet: write only what changed since it (new and
    changed resources, a withdrawn visit's resources marked entered-in-error)."""
    jobs: int = 1
    """Processes converting rows (`adapter.sheets.parallel`): the output is the same, byte for
    byte and in the same order, whatever the number. 1 by default: a request served from a
    threaded server must not fork, and more processes take more of a shared machine's cores
    and memory than the caller may want to give."""

    def __post_init__(self) -> None:
        # The edges check the caller's choice in their own terms (click.Choice, a 400 naming
        # the parameter); a value outside these is a programming error.
        if self.format not in FORMATS:
            raise ValueError(f"format is one of {FORMATS}, not {self.format!r}")
        if self.bundle_type not in BUNDLE_TYPES:
            raise ValueError(f"bundle type is one of {BUNDLE_TYPES}, not {self.bundle_type!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError("max_rows is at least 1")
        if self.jobs < 1:
            raise ValueError("jobs is at least 1")


@dataclass(frozen=True)
class Places:
    """Where the edge took each option from, as its caller knows it (an error names it)."""

    patient_system: str = "patient-system"
    charset: str = "Content-Type"
    test_data: str = "test-data"
    since: str = "since"


WEB_PLACES = Places()
"""The multipart field (or query parameter) names of `$convert-sheet` and the page."""
CLI_PLACES = Places(patient_system="--patient-system", test_data="--test-data", since="--since")
"""The command's options (it takes no charset: a contract's `encoding` says that)."""


@dataclass(frozen=True)
class SheetRequest:
    """A sheet (a readable binary stream and the file's name, whose ending picks the reader),
    its contract (None: the canonical template) and the options."""

    stream: IO[bytes]
    name: str
    contract: ContractFile | None = None
    options: SheetOptions = field(default_factory=SheetOptions)
    places: Places = WEB_PLACES


# --- destinations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToFolder:
    """Files in a folder (replaced whole, only once the sheet converted); `inputs` may not be
    in it."""

    path: str | Path
    inputs: tuple[str | Path, ...] = ()
    hold: bool = False
    """Leave the output staged (`SheetResult.held`): the caller puts it in place together with
    another output (the CLI's `--report`), or neither."""


@dataclass(frozen=True)
class ToMemory:
    """The Bundles in memory (transaction or patient format): for an answer that holds them."""


@dataclass(frozen=True)
class ToStream:
    """NDJSON lines on a binary stream (ndjson format), references relative."""

    stream: IO[bytes]


Destination = ToFolder | ToMemory | ToStream


# --- resolution --------------------------------------------------------------------------------


def _invalid(message: str, where: str, code: str, rule: str, status: int) -> InvalidInput:
    return InvalidInput([Issue("error", code, message, where, rule)], status)


def resolve_contract(request: SheetRequest, settings: Settings) -> SheetContract:
    """The contract actually used: the given one (or the template), then the options over it.

    Each check names the place the edge took the value from: a contract too large is 413, one
    that cannot be read 400 (naming the contract file), an unknown charset 415, a patient system
    that is not an absolute URI 400.
    """
    options, places = request.options, request.places
    given = request.contract
    if given is None:
        contract = default_contract()
    else:
        if len(given.data) > settings.max_input_bytes:
            raise too_large(f"the contract {given.name}", settings.max_input_bytes)
        contract = contract_from_bytes(given.data, given.name, settings)
    charset = options.charset
    if charset and contract.encoding is None:
        try:
            codecs.lookup(charset)
        except LookupError:
            message = f"unknown charset {charset[:40]!r} in the {places.charset}"
            raise _invalid(
                message, places.charset, "not-supported", "unknown-charset", 415
            ) from None
        contract = dataclasses.replace(contract, encoding=charset)
    if options.patient_system:
        contract = with_patient_system(contract, options.patient_system, places.patient_system)
    note = options.test_data
    if note:
        if len(note) > MAX_TEST_DATA:
            message = f"the test-data note is longer than {MAX_TEST_DATA} characters"
            raise _invalid(message, places.test_data, "too-long", "invalid-value", 400)
        contract = dataclasses.replace(contract, test_data=note)
    return contract


def bounded(options: SheetOptions, settings: Settings) -> Settings:
    """The settings with the request's row limit, when it is below the settings' own."""
    if options.max_rows is None or options.max_rows >= settings.max_sheet_rows:
        return settings
    return dataclasses.replace(settings, max_sheet_rows=options.max_rows)


def open_since(request: SheetRequest, settings: Settings) -> Since | None:
    """The previous output the request compares with (None: it asks for the whole output).
    Read before the output is opened: a folder that is not one stops the run, nothing written."""
    if request.options.since is None:
        return None
    from adapter.sheets.since import open_since as read

    return read(request.options.since, settings, request.places.since)


def open_sink(destination: Destination, options: SheetOptions, settings: Settings) -> Sink:
    """The sink for a destination, in the request's format and bundle type."""
    match destination:
        case ToFolder(path, inputs, hold):
            return SINKS[options.format](path, settings, options.bundle_type, inputs, hold)
        case ToMemory():
            if options.format == "ndjson":
                raise ValueError("NDJSON goes to a folder or a stream, not into memory")
            return MemorySink(settings, options.format, options.bundle_type)
        case ToStream(stream):
            if options.format != "ndjson":
                raise ValueError("a stream takes NDJSON; Bundles go to a folder or memory")
            return NdjsonStreamSink(stream, settings)
    raise TypeError(f"not a destination: {destination!r}")
