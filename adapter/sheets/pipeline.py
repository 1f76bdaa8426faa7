"""A whole sheet: read rows one at a time, convert each, account for every one, write, report."""

from __future__ import annotations

import secrets
from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from adapter.model import Issue, Subject
from adapter.outcome import InvalidInput, operation_outcome
from adapter.settings import Settings
from adapter.sheets.contract import SheetContract
from adapter.sheets.delta import STATES, State, Visit
from adapter.sheets.doses import Dose, Rejected, medication_statements
from adapter.sheets.output import Sink
from adapter.sheets.parallel import Encoded, converted
from adapter.sheets.readers import open_sheet
from adapter.sheets.rows import RowPlan, RowResult, plan_rows
from adapter.sheets.values import is_blank

if TYPE_CHECKING:
    from adapter.sheets.since import Since

MAX_LISTED_WARNINGS = 1000

Progress = Callable[[int, float | None], None]


@dataclass(frozen=True)
class RowIssues:
    """The issues of one row (None: of the sheet as a whole), each placed by its fields."""

    row: int | None
    issues: tuple[Issue, ...]

    def to_json(self, settings: Settings) -> dict[str, Any]:
        return {"row": self.row, "outcome": operation_outcome(self.issues, settings)}


@dataclass
class SheetReport:
    file: str
    format: str
    settings: Settings
    rows_read: int = 0
    rows_converted: int = 0
    """Rows converted, whole or in part (rows_partial of them in part)."""
    rows_rejected: int = 0
    rows_blank: int = 0
    rows_partial: int = 0
    """Rows converted in part: a response (or the dose) rejected, the visit's rest converted."""
    resources: Counter[str] = field(default_factory=Counter)
    rejected: list[RowIssues] = field(default_factory=list)
    partial: list[RowIssues] = field(default_factory=list)
    """Every row converted in part, with the issues of what was rejected."""
    worksheet: str | None = None
    """The worksheet read (XLSX)."""
    worksheets: tuple[str, ...] = ()
    warnings: list[RowIssues] = field(default_factory=list)
    warnings_total: int = 0
    since: SinceReport | None = None
    """With `--since`: what changed since the previous output."""

    def to_json(self) -> dict[str, Any]:
        """The row report: every row read is converted or rejected, with its reasons."""
        delta = {"since": self.since.to_json()} if self.since is not None else {}
        return delta | {
            "file": self.file,
            "format": self.format,
            **self._worksheet_json(),
            "rows_read": self.rows_read,
            "rows_converted": self.rows_converted,
            "rows_partial": self.rows_partial,
            "rows_rejected": self.rows_rejected,
            "rows_blank": self.rows_blank,
            "resources": dict(sorted(self.resources.items())),
            "rejected": [entry.to_json(self.settings) for entry in self.rejected],
            "partial": [entry.to_json(self.settings) for entry in self.partial],
            "warnings": [entry.to_json(self.settings) for entry in self.warnings],
            "warnings_total": self.warnings_total,
        }

    def _worksheet_json(self) -> dict[str, Any]:
        if self.worksheet is None:
            return {}
        return {"worksheet": self.worksheet, "worksheets": list(self.worksheets)}

    def worksheet_issue(self) -> Issue | None:
        """Which worksheet was read, and the workbook's others (an XLSX only)."""
        if self.worksheet is None:
            return None
        others = [name for name in self.worksheets if name != self.worksheet]
        listed = f"; the others: {', '.join(others)}" if others else " (the only one)"
        message = f"read the worksheet {self.worksheet!r}{listed}"
        return Issue("information", "informational", message, None, "worksheet-read")

    def counts(self) -> dict[str, int]:
        return {
            "rows-read": self.rows_read,
            "rows-converted": self.rows_converted,
            "rows-rejected": self.rows_rejected,
            "rows-blank": self.rows_blank,
            "rows-partial": self.rows_partial,
        }

    def to_outcome(self) -> dict[str, Any]:
        """The row report as one OperationOutcome: a summary, then each rejected row's issues and
        the warnings, each placed by row (and column) in `expression`."""
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.resources.items())) or "none"
        summary = (
            f"{self.file}: rows read {self.rows_read}, converted {self.rows_converted}"
            f"{self._in_part()}, rejected {self.rows_rejected}, blank rows skipped "
            f"{self.rows_blank}; resources: {kinds}"
        )
        found = [Issue("information", "informational", summary, None, "row-report")]
        sheet = self.worksheet_issue()
        if sheet is not None:
            found.append(sheet)
        if self.since is not None:
            found.append(
                Issue("information", "informational", self.since.summary(), None, "since-report")
            )
        outcome = operation_outcome(found, self.settings)
        for entry in [*self.rejected, *self.partial, *self.warnings]:
            placed = [
                issue.at(entry.row) if issue.expression is None and entry.row else issue
                for issue in entry.issues
            ]
            outcome["issue"].extend(operation_outcome(placed, self.settings)["issue"])
        listed = sum(len(entry.issues) for entry in self.warnings)
        if self.warnings_total > listed:
            message = f"{self.warnings_total - listed} more warnings not listed"
            more = Issue("information", "informational", message, None, "truncated")
            outcome["issue"].extend(operation_outcome([more], self.settings)["issue"])
        return outcome

    def to_parameters(self, bundles: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer of the `$convert-sheet` operation: counts, the row report, the Bundles."""
        parameters: list[dict[str, Any]] = [
            {"name": name, "valueInteger": value} for name, value in self.counts().items()
        ]
        if self.resources:
            parts = [{"name": k, "valueInteger": n} for k, n in sorted(self.resources.items())]
            parameters.append({"name": "resources", "part": parts})
        parameters.append({"name": "report", "resource": self.to_outcome()})
        parameters.extend({"name": "bundle", "resource": bundle} for bundle in bundles)
        return {"resourceType": "Parameters", "parameter": parameters}

    def _in_part(self) -> str:
        return f" ({self.rows_partial} of them in part)" if self.rows_partial else ""

    def summary(self) -> str:
        lines = [
            f"{self.file}: rows read {self.rows_read}, converted {self.rows_converted}"
            f"{self._in_part()}, rejected {self.rows_rejected} (blank rows skipped: "
            f"{self.rows_blank})",
            "resources: "
            + (", ".join(f"{n} {kind}" for kind, n in sorted(self.resources.items())) or "none"),
        ]
        sheet = self.worksheet_issue()
        if sheet is not None:
            lines.insert(0, sheet.message)
        if self.since is not None:
            lines.append(self.since.summary())
        for entry in self.rejected[:50]:
            for issue in entry.issues:
                where = issue.expression or f"row {entry.row}"
                lines.append(f"  rejected {where}: {issue.message}")
        if len(self.rejected) > 50:
            lines.append(f"  ... and {len(self.rejected) - 50} more rejected rows (see the report)")
        for entry in self.partial[:50]:
            for issue in entry.issues:
                if issue.is_error:
                    where = issue.expression or f"row {entry.row}"
                    lines.append(f"  rejected in part {where}: {issue.message}")
        if len(self.partial) > 50:
            lines.append(
                f"  ... and {len(self.partial) - 50} more rows converted in part (see the report)"
            )
        if self.warnings_total:
            lines.append(f"warnings: {self.warnings_total} (see the report)")
        return "\n".join(lines)

    def _warn(self, row: int | None, issues: list[Issue]) -> None:
        self.warnings_total += len(issues)
        if len(self.warnings) < MAX_LISTED_WARNINGS:
            self.warnings.append(RowIssues(row, tuple(issues)))


@dataclass
class SinceReport:
    """What a `--since` run found: each converted row's state, the withdrawn visits, and the
    resources by state (a patient's MedicationStatements count among the resources)."""

    previous: str
    rows: dict[State, list[int]] = field(default_factory=lambda: {s: [] for s in STATES[:3]})
    withdrawn: list[Visit] = field(default_factory=list)
    resources: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "previous": self.previous,
            "rows": {state: rows for state, rows in self.rows.items()},
            "withdrawn": [{"patient": p, "visit_date": d} for p, d in self.withdrawn],
            "resources": {state: self.resources[state] for state in STATES},
        }

    def summary(self) -> str:
        rows = ", ".join(f"{len(found)} {state}" for state, found in self.rows.items())
        kinds = ", ".join(f"{self.resources[state]} {state}" for state in STATES)
        return (
            f"since {self.previous}: rows {rows}; visits withdrawn {len(self.withdrawn)}; "
            f"resources {kinds} (only new, changed and withdrawn ones are written)"
        )


class Visits:
    """One patient's visit days, each at most once, with the dose recorded at each visit.

    Kept compact, so that 100,000 rows convert in about the memory of 1,000, whatever the dates
    (a set of day numbers costs 70 to 130 bytes a visit: an int object and its slots):
    `days` holds each visit's day as a 4-byte ordinal, in the order read; `_slots` holds the
    same ordinals again as an open-addressing hash table (0 is an empty slot: ordinals start at
    1) at most two thirds full, like a dict, so a day already seen is found in constant expected
    time for 6 to 12 bytes a visit. A day's slot comes from multiply-shift hashing with a
    multiplier drawn at start-up, so no choice of dates in a sheet makes the probes long. A dose
    is the Decimal the cell held, one shared object per distinct value (a course has few).
    """

    __slots__ = ("_shift", "_slots", "days", "doses", "rejected")

    def __init__(self) -> None:
        self.days: array[int] = array("i")
        self.doses: list[Decimal | Rejected | None] = []
        self.rejected: list[tuple[str, Rejected]] = []
        """The rejected rows that held a dose: they end the course before them."""
        self._slots: array[int] = array("i", [0]) * 8
        self._shift = 64 - 3  # 2**3 slots: a slot is the top 3 bits of a 64-bit product

    def add(self, day: int) -> bool:
        """Record a visit on `day` (an ordinal); False if the patient has one on that day."""
        slot = self._slot(day)
        if self._slots[slot] == day:
            return False
        self._slots[slot] = day
        self.days.append(day)
        if 3 * len(self.days) > 2 * len(self._slots):
            self._slots = array("i", [0]) * (2 * len(self._slots))
            self._shift -= 1
            for seen in self.days:
                self._slots[self._slot(seen)] = seen
        return True

    def _slot(self, day: int) -> int:
        """Where `day` is in the table, or the empty slot where it goes (linear probing)."""
        slots, mask = self._slots, len(self._slots) - 1
        slot = ((day * _MULTIPLIER) & _WORD) >> self._shift
        while slots[slot] and slots[slot] != day:
            slot = (slot + 1) & mask
        return slot

    def add_dose(self, dose: Decimal | None, shared: dict[Decimal, Decimal]) -> None:
        """The dose at the visit added last."""
        self.doses.append(None if dose is None else shared.setdefault(dose, dose))

    def with_doses(self) -> list[tuple[str, Dose]]:
        return [
            *(
                (date.fromordinal(day).isoformat(), dose)
                for day, dose in zip(self.days, self.doses, strict=True)
            ),
            *self.rejected,
        ]


_WORD = 2**64 - 1
_MULTIPLIER = secrets.randbits(64) | 1
"""Odd, and unknown to whoever wrote the sheet."""


def convert_sheet(
    stream: IO[bytes],
    name: str,
    contract: SheetContract,
    sink: Sink,
    settings: Settings,
    progress: Progress | None = None,
    since: Since | None = None,
    jobs: int = 1,
) -> SheetReport:
    """Every row converted or rejected with its reasons; a file that cannot be read raises.

    `since`: write only what changed since a previous output (`adapter.sheets.since`).
    `jobs`: processes converting rows (`adapter.sheets.parallel`); every row is still taken in
    the order read, here, so the output is the same whatever the number."""
    report = SheetReport(name, sink.format, settings)
    if since is not None:
        report.since = SinceReport(str(since.folder))
    visits: dict[str, Visits] = {}
    shared: dict[Decimal, Decimal] = {}
    try:
        if since is not None:
            since.start(sink)
        with open_sheet(stream, name, contract) as sheet:
            report.worksheet, report.worksheets = sheet.worksheet, sheet.worksheets
            plan = plan_rows(sheet.header, contract, sink.links)
            if not isinstance(plan, RowPlan):
                read = report.worksheet_issue()
                raise InvalidInput([*plan, *([read] if read is not None else [])])
            if plan.warnings:
                report._warn(None, plan.warnings)
            # The workers encode what the sink writes, unless each visit's resources are
            # compared with the previous output first.
            encoder = sink.encoder() if since is None else None
            spool = sink.spool() if encoder is not None and jobs > 1 else None
            spooled = spool is not None
            with closing(converted(sheet.rows, plan, jobs, encoder, spool)) as rows:
                for number, cells, problem, result, encoded in rows:
                    if report.rows_read >= settings.max_sheet_rows:
                        message = f"{name} has more than {settings.max_sheet_rows} rows, the limit"
                        raise InvalidInput(
                            [Issue("fatal", "too-long", message, None, "too-many-rows").at(number)],
                            413,
                        )
                    if problem is not None:
                        report.rows_read += 1
                        report.rows_rejected += 1
                        message = f"row {number} {problem}"
                        issue = Issue("error", "structure", message, None, "unreadable-row")
                        report.rejected.append(RowIssues(number, (issue.at(number),)))
                        continue
                    assert result is not None
                    _one_row(
                        plan,
                        number,
                        cells,
                        result,
                        report,
                        sink,
                        visits,
                        shared,
                        since,
                        encoded,
                        spooled,
                    )
                    if progress and report.rows_read % 500 == 0:
                        progress(report.rows_read, sheet.progress())

        def statements_of(patient: str) -> list[dict[str, Any]]:
            return medication_statements(
                Subject(system=plan.patient_system, value=patient),
                visits[patient].with_doses(),
                contract.ldn_form,
                contract.ldn_timing,
                settings,
                contract.test_data,
            )

        def write(patient: str, made: list[dict[str, Any]]) -> None:
            sink.add_patient(patient, made)
            report.resources.update(r["resourceType"] for r in made)

        if since is None:
            # each patient's written as it is made: a long sheet's courses are never all held
            for patient in sorted(visits) if plan.dose is not None else ():
                write(patient, statements_of(patient))
        else:
            # compared with the previous output first: what is withdrawn goes with the rest
            statements: dict[str, list[dict[str, Any]]] = {}
            for patient in sorted(visits) if plan.dose is not None else ():
                statements[patient] = since.visit(patient, "", statements_of(patient))[1]
            _withdraw(since, sink, report, statements)
            for patient, made in sorted(statements.items()):
                write(patient, made)
            since.close()
        sink.finish()
    except BaseException:
        if since is not None:
            since.close()
        sink.abort()
        raise
    return report


def _withdraw(
    since: Since, sink: Sink, report: SheetReport, statements: dict[str, list[dict[str, Any]]]
) -> None:
    """A withdrawn visit's resources, marked entered-in-error, go out as a visit of their own; a
    withdrawn MedicationStatement with its patient's others (one file a patient)."""
    for (patient, day), resources in since.withdraw().items():
        if day:
            sink.add_visit(patient, day, resources)
            report.resources.update(r["resourceType"] for r in resources)
        else:
            statements[patient] = [*statements.get(patient, []), *resources]
    assert report.since is not None
    report.since.withdrawn = since.withdrawn_visits
    report.since.resources = since.delta.resources


def _one_row(
    plan: RowPlan,
    number: int,
    cells: list[Any],
    result: RowResult,
    report: SheetReport,
    sink: Sink,
    visits: dict[str, Visits],
    shared: dict[Decimal, Decimal],
    since: Since | None = None,
    encoded: Encoded | None = None,
    spooled: bool = False,
) -> None:
    """`visits` holds each patient's visit days, to refuse a visit twice in constant time, and
    the doses: a row whose day is new is converted, so its dose is recorded with its day; a
    rejected row that holds a dose ends the course before it (`adapter.sheets.doses`).

    `encoded`: the row's resources as a worker encoded them; `spooled`: as a worker wrote them
    (`Sink.spool`), so a row rejected here is undone in the sink."""
    if result.blank:
        report.rows_blank += 1
        return
    report.rows_read += 1
    if not result.rejected and result.patient and result.date:
        history = visits.get(result.patient)
        if history is None:
            history = visits[result.patient] = Visits()
        if not history.add(date.fromisoformat(result.date).toordinal()):
            message = (
                f"patient {result.patient} already has a visit on {result.date} in an earlier row"
            )
            result.issues.append(
                Issue("error", "duplicate", message, None, "duplicate-visit").at(number)
            )
            result.rejected = True
        elif plan.dose is not None:
            if result.dose_rejected:  # the visit is kept; the dose after it is not known
                history.doses.append(Rejected(number))
                result.issues.append(_dose_cut(number, plan))
            else:
                history.add_dose(result.dose, shared)
    if result.rejected:
        report.rows_rejected += 1
        if (
            plan.dose is not None
            and result.patient
            and result.date
            and plan.dose.index < len(cells)
            and not is_blank(cells[plan.dose.index])
        ):
            history = visits.get(result.patient)
            if history is None:
                history = visits[result.patient] = Visits()
            history.rejected.append((result.date, Rejected(number)))
            result.issues.append(_dose_cut(number, plan))
        report.rejected.append(RowIssues(number, tuple(result.issues)))
        if spooled and encoded is not None:  # a visit given twice, written by a worker
            assert result.patient is not None and result.date is not None
            sink.drop_spooled(result.patient, result.date, encoded[1])
        return
    report.rows_converted += 1
    if result.partial:
        report.rows_partial += 1
        report.partial.append(RowIssues(number, tuple(result.issues)))
    elif result.issues:
        report._warn(number, result.issues)
    assert result.patient is not None and result.date is not None
    if encoded is not None:  # what the sink writes, made (or written) by a worker
        kinds, payload = encoded
        if spooled:
            sink.add_spooled(result.patient, result.date, payload)
        else:
            sink.add_encoded(result.patient, result.date, payload)
        for kind, count in kinds:  # cheaper than Counter.update, row after row
            report.resources[kind] += count
        return
    resources = result.resources
    if since is not None:
        state, resources = since.visit(result.patient, result.date, resources)
        assert report.since is not None
        report.since.rows[state].append(number)
    sink.add_visit(result.patient, result.date, resources)
    report.resources.update(r["resourceType"] for r in resources)


def _dose_cut(number: int, plan: RowPlan) -> Issue:
    message = (
        "the LDN dose of this row is not used: the dose history ends at the last "
        "accepted visit before it, and a later dose starts a new course"
    )
    issue = Issue("information", "informational", message, None, "dose-history-cut")
    return issue.at(number, plan.dose.place if plan.dose is not None else None)
