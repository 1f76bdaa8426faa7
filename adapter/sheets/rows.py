"""One sheet row -> the visit's resources, or the issues that reject it. Pure: no I/O.

A row may fill any subset of the instruments; an instrument whose columns are all blank is not
part of that visit. An instrument that contains another (fm2016 holds the WPI and SSS items) is
used when a column only it has is filled (`fm-duration-3m`); then the contained ones are not.

A bad cell rejects the response of its instrument at that visit, not the visit's other
instruments (the row is converted in part); a bad dose rejects the dose, not the answers. The
patient, the date, or a bad cell of no instrument rejects the whole row. Every problem of a row
is found at once, whichever of them would reject it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any

from adapter.instrument import Instrument, Item, Score
from adapter.links import Links
from adapter.medication import dose_issues
from adapter.model import Issue, Response, Severity, Subject
from adapter.registry import instruments
from adapter.resources import Reported, reported_resources, response_resources
from adapter.rules import check_answer, check_reported, missing_required
from adapter.sheets.contract import (
    REDCAP_SYSTEM_COLUMNS,
    ColumnRule,
    SheetContract,
    did_you_mean,
    targets,
)
from adapter.sheets.values import (
    CellError,
    column_letter,
    is_blank,
    mapped,
    parse_boolean,
    parse_date,
    parse_decimal,
    parse_dose,
    parse_integer,
)


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    rule: ColumnRule | None
    kind: str = ""
    """How its cells are read (the target's type), worked out once from the header."""

    @cached_property
    def place(self) -> str:
        return f'column {column_letter(self.index)} "{self.header}"'


@dataclass(frozen=True)
class InstrumentColumns:
    instrument: Instrument
    columns: tuple[Column, ...]
    exclusive: frozenset[str]
    """Columns only this instrument has: filled, they choose it."""
    contains: tuple[str, ...]
    alternatives: tuple[str, ...] = ()
    """Instruments with the same items (fm2011 and fm2016): one of them is chosen."""
    common: frozenset[str] = frozenset()
    """Columns this instrument shares with its alternatives only (fm-duration-3m)."""
    unanswered: dict[frozenset[str], list[str]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    """missing_required by the answered items, for an instrument without enableWhen."""

    @cached_property
    def has_enable_when(self) -> bool:
        return any(item.enable_when for item in self.instrument.item_index.values())

    @cached_property
    def column_targets(self) -> tuple[tuple[str, Column, bool], ...]:
        """Per column: its target, the column, whether the target is an item (else a score)."""
        items = self.instrument.item_index
        return tuple(
            (c.rule.target, c, c.rule.target in items) for c in self.columns if c.rule is not None
        )

    @cached_property
    def own_targets(self) -> frozenset[str]:
        """Columns whose target is another object in this instrument than in the sheet's
        plan (none in the registry today): checked again against this instrument's own."""
        every = targets()
        return frozenset(
            c.rule.target
            for c in self.columns
            if c.rule is not None and self.target(c.rule.target) is not every.get(c.rule.target)
        )

    def target(self, name: str) -> Item | Score:
        """What a column's target is in this instrument: its item, else its score."""
        return self.instrument.item_index.get(name) or self.instrument.score(name)

    @cached_property
    def required(self) -> frozenset[str]:
        """The items `missing_required` asks for (no enableWhen here): required, no children."""
        return frozenset(
            item.link_id
            for item in self.instrument.item_index.values()
            if item.required and not item.children
        )

    def missing(self, answers: dict[str, Any]) -> list[str]:
        instrument = self.instrument
        if self.has_enable_when:
            return missing_required(instrument.items, answers, instrument.item_index)
        if self.required.issubset(answers):  # the common case: every required item answered
            return []
        key = frozenset(answers)
        found = self.unanswered.get(key)
        if found is None:
            found = missing_required(instrument.items, answers, instrument.item_index)
            if len(self.unanswered) < MAX_REMEMBERED:
                self.unanswered[key] = found
        return found


def check_target(target: Item | Score, value: Any) -> tuple[Any, Issue | None]:
    """A cell's value checked against its target by the checker every path shares (an item's
    answer: `check_answer`; a reported score: `check_reported`): the value to keep, or the
    issue (without its place) that rejects it. A plain value gets no note, one issue at most."""
    checked, issues = (
        check_answer(target, value) if isinstance(target, Item) else check_reported(target, value)
    )
    return checked, (issues[0] if issues else None)


MAX_REMEMBERED = 512
MAX_REMEMBERED_TEXT = 64
"""Distinct cells (per column) and checks (per instrument) a plan remembers: rows repeat the
same few values (a 0-10 rating), so each is read and checked once; the bound keeps a column of
free values from growing memory; a text longer than MAX_REMEMBERED_TEXT (never a value) is not
kept, so a sheet of huge cells holds none of them."""


Cell = tuple[Any, Issue | None, Any, Issue | None]
"""A cell read and checked: (value, None, checked value, issue or None), or (None, the issue of
a cell that is not of its target's type, None, None), reported whichever instrument the row is."""


class CellReader:
    """One column's cells, read (`_read_cell`) and checked against the column's target (the
    same Item or Score object in every instrument that has it), each distinct cell once:
    (value, None, checked, issue), (None, the issue of a cell not of the target's type, None,
    None), or BLANK. Text cells (all of a CSV) are remembered by their text, others by type
    and value."""

    __slots__ = ("blank_is_false", "column", "contract", "known", "target", "text")

    def __init__(self, column: Column, contract: SheetContract, target: Item | Score) -> None:
        self.column = column
        self.contract = contract
        self.target = target
        self.text: dict[str, Cell] = {}
        self.known: dict[tuple[type, Any], Cell] = {}
        self.blank_is_false = bool(
            column.rule
            and column.rule.blank_is_false
            and isinstance(target, Item)
            and target.type == "boolean"
        )

    def __call__(self, raw: Any) -> Cell:
        if raw.__class__ is str:
            found = self.text.get(raw)
            if found is None:
                found = self._read(raw)
                if len(self.text) < MAX_REMEMBERED and len(raw) <= MAX_REMEMBERED_TEXT:
                    self.text[raw] = found
            return found
        key = (raw.__class__, raw)  # the cell 1 and the cell TRUE are read differently
        try:
            found = self.known.get(key)
        except TypeError:  # a value with no hash (a signalling NaN): read, not remembered
            return self._read(raw)
        if found is None:
            found = self._read(raw)
            if len(self.known) < MAX_REMEMBERED and not isinstance(raw, str):
                self.known[key] = found
        return found

    def _read(self, raw: Any) -> Cell:
        if is_blank(raw):
            return BLANK
        try:
            value = _read_cell(raw, self.column.kind, self.column.rule, self.contract)
        except CellError:
            # Not of the target's type: the checker names it, as it would the same value in
            # an answers document (the cell's text, or the number or yes/no the cell holds).
            plain = raw if isinstance(raw, int | float | Decimal) else str(raw).strip()
            checked, problem = check_target(self.target, plain)
            if problem is not None:
                return None, self._hinted(problem, raw), None, None
            return plain, None, checked, None
        return (value, None, *check_target(self.target, value))

    def _hinted(self, problem: Issue, raw: Any) -> Issue:
        """The issue with the nearest word the column takes: a value map's, or yes/no."""
        words: list[str] = (
            list(self.column.rule.values) if self.column.rule and self.column.rule.values else []
        )
        if self.column.kind == "boolean":
            words += sorted(self.contract.true_values | self.contract.false_values)
        if not words or not isinstance(raw, str):
            return problem
        hint = did_you_mean(raw.strip().lower(), words, 0.75)
        return replace(problem, message=problem.message + hint) if hint else problem


BLANK: Cell = (None, None, None, None)
"""An empty cell (told apart by identity)."""


@dataclass(frozen=True)
class Form:
    """A REDCap form: its completion column and its mapped columns (index, is a checkbox)."""

    name: str
    status: int
    columns: tuple[tuple[int, bool], ...]


@dataclass
class RowPlan:
    """What each column of this sheet means, worked out once from the header."""

    contract: SheetContract
    links: Links
    patient: Column
    date: Column
    dose: Column | None
    mapped: tuple[Column, ...]
    instruments: tuple[InstrumentColumns, ...]
    warnings: list[Issue] = field(default_factory=list)
    targets: dict[str, Item | Score] = field(default_factory=targets)
    readers: tuple[tuple[int, str, CellReader], ...] = ()
    """Per mapped column: its index, its target, its reader."""
    doses: dict[tuple[type, Any], tuple[Decimal | None, list[Issue]]] = field(default_factory=dict)
    chosen: dict[frozenset[str], list[InstrumentColumns]] = field(default_factory=dict)
    """The instruments of a row by its filled targets (`_present`), worked out once each."""
    forms: tuple[Form, ...] = ()
    """A REDCap export's forms (none for other sheets): an unfilled one gives no answers."""

    def __post_init__(self) -> None:
        self.readers = tuple(
            (
                column.index,
                column.rule.target,
                CellReader(column, self.contract, self.targets[column.rule.target]),
            )
            for column in self.mapped
            if column.rule is not None
        )

    @property
    def patient_system(self) -> str:
        return self.contract.patient_system or self.links.settings.patient_system

    def read_dose(self, raw: Any) -> tuple[Decimal | None, list[Issue]]:
        """A dose cell -> the dose exactly as written, and the issues (without their place)
        that reject or question it; a course repeats one dose, so each is read once."""
        key = (raw.__class__, raw)
        try:
            found = self.doses.get(key)
        except TypeError:  # a value with no hash (a signalling NaN): read, not remembered
            return _read_dose(raw, self.contract)
        if found is None:
            found = _read_dose(raw, self.contract)
            short = not isinstance(raw, str) or len(raw) <= MAX_REMEMBERED_TEXT
            if len(self.doses) < MAX_REMEMBERED and short:
                self.doses[key] = found
        return found

    def present(self, filled: set[str]) -> list[InstrumentColumns]:
        key = frozenset(filled)
        found = self.chosen.get(key)
        if found is None:
            found = _present(self, filled)
            if len(self.chosen) < MAX_REMEMBERED:
                self.chosen[key] = found
        return found


def plan_rows(header: list[str], contract: SheetContract, links: Links) -> RowPlan | list[Issue]:
    """What each column means, or every problem of the header at once: a column the contract
    names and the sheet lacks (with the nearest header), two columns of the same name."""
    positions: dict[str, int] = {}
    issues: list[Issue] = []
    redcap = contract.redcap
    event = redcap.event if redcap is not None else None
    used = {
        contract.patient_column,
        contract.date_column,
        contract.dose_column,
        event,
        *contract.by_header,
    }
    duplicates: list[Issue] = []
    for index, name in enumerate(header):
        if not name:
            continue
        if name in positions:
            first, again = column_letter(positions[name]), column_letter(index)
            severity: Severity = "fatal" if name in used else "warning"
            what = "which one holds the values is unclear" if name in used else "both ignored"
            message = f'columns {first} and {again} are both headed "{_cut(name)}": {what}'
            duplicates.append(Issue(severity, "duplicate", message, "header", "duplicate-column"))
            continue
        positions[name] = index
    headers = [h for h in header if h]

    def absent(name: str, what: str) -> None:
        hint = did_you_mean(name, headers)
        shown = hint or "; the header has " + ", ".join(repr(_cut(h)) for h in headers[:60])
        issues.append(
            Issue(
                "fatal",
                "required",
                f"no {what} column {_cut(name)!r}{shown}",
                "header",
                "missing-column",
            )
        )

    def required(name: str, what: str) -> Column | None:
        if name not in positions:
            absent(name, what)
            return None
        return Column(positions[name], name, None)

    patient = required(contract.patient_column, "patient")
    date = required(contract.date_column, "visit date")
    if (
        contract.dose_column
        and not contract.dose_optional
        and contract.dose_column not in positions
    ):
        absent(contract.dose_column, "LDN dose")
    if event is not None and event not in positions:
        absent(event, "REDCap event")
    rules = contract.by_header
    for name, rule in rules.items():
        if name not in positions and not rule.optional:
            absent(name, f"{rule.target}")
    issues.extend(issue for issue in duplicates if issue.is_error)
    if issues or patient is None or date is None:
        return issues
    dose = (
        Column(positions[contract.dose_column], contract.dose_column, None)
        if contract.dose_column and contract.dose_column in positions
        else None
    )
    every = targets()
    mapped_columns = tuple(
        Column(positions[h], h, rule, _kind(every[rule.target]))
        for h, rule in rules.items()
        if h in positions
    )
    known = {contract.patient_column, contract.date_column, contract.dose_column, event, *rules}
    if redcap is not None:
        known.update(REDCAP_SYSTEM_COLUMNS)
        known.update(h for h in header if h.endswith("_complete"))
    warnings = [
        Issue(
            "warning",
            "informational",
            f'column "{_cut(h)}" is not in the contract and is ignored',
            "header",
            "unmapped-column",
        )
        for h in dict.fromkeys(header)
        if h and h not in known
    ]
    warnings.extend(duplicates)
    return RowPlan(
        contract,
        links,
        patient,
        date,
        dose,
        mapped_columns,
        _instrument_columns(mapped_columns),
        warnings,
        forms=_forms(header, mapped_columns) if redcap is not None else (),
    )


def _forms(header: list[str], columns: tuple[Column, ...]) -> tuple[Form, ...]:
    """Each mapped column's REDCap form: the first `<form>_complete` column at or after it."""
    statuses = [i for i, name in enumerate(header) if name.endswith("_complete")]
    found: dict[int, list[tuple[int, bool]]] = {}
    for column in columns:
        status = next((i for i in statuses if i >= column.index), None)
        if status is not None:
            checkbox = bool(
                column.rule is not None
                and "___" in column.header
                and column.rule.values == {"1": True, "0": False}
            )
            found.setdefault(status, []).append((column.index, checkbox))
    return tuple(
        Form(header[status].removesuffix("_complete"), status, tuple(members))
        for status, members in sorted(found.items())
    )


def _cut(text: str) -> str:
    """A header for a message, bounded: a huge header cell is not echoed whole."""
    return text if len(text) <= 60 else text[:57] + "..."


def _instrument_columns(columns: tuple[Column, ...]) -> tuple[InstrumentColumns, ...]:
    registered = list(instruments().values())
    own = {
        i.id: {x.link_id for x in i.answerable_items()} | {s.code.code for s in i.scores}
        for i in registered
    }
    items = {i.id: {x.link_id for x in i.answerable_items()} for i in registered}
    result = []
    for instrument in registered:
        contained = tuple(
            other.id
            for other in registered
            if other.id != instrument.id and items[other.id] < items[instrument.id]
        )
        alternatives = tuple(
            other.id
            for other in registered
            if other.id != instrument.id and items[other.id] == items[instrument.id]
        )
        shared = set().union(*(own[other] for other in contained)) if contained else set()
        theirs = set().union(*(own[other] for other in alternatives)) if alternatives else set()
        selected = tuple(c for c in columns if c.rule and c.rule.target in own[instrument.id])
        if selected:
            mine = own[instrument.id] - shared
            result.append(
                InstrumentColumns(
                    instrument,
                    selected,
                    frozenset(mine - theirs),
                    contained,
                    alternatives,
                    frozenset(mine & theirs),
                )
            )
    return tuple(result)


@dataclass
class RowResult:
    number: int
    issues: list[Issue]
    patient: str | None = None
    date: str | None = None
    dose: Decimal | None = None
    resources: list[dict[str, Any]] = field(default_factory=list)
    blank: bool = False
    rejected: bool = False
    """Nothing of the row is converted (its issues say why)."""
    partial: bool = False
    """Converted in part: a response (or the dose) of the visit is rejected, the rest kept."""
    dose_rejected: bool = False
    """The dose cell is rejected: the dose history ends before this visit."""
    rejected_instruments: tuple[str, ...] = ()


def _kind(target: Item | Score) -> str:
    return target.type if isinstance(target, Item) else target.value_type


def _read_cell(raw: Any, kind: str, rule: ColumnRule | None, contract: SheetContract) -> Any:
    if rule is not None and rule.values is not None:
        found, value = mapped(raw, rule)
        if found:
            return Fraction(value) if kind == "decimal" and isinstance(value, Decimal) else value
    if kind == "boolean":
        return parse_boolean(raw, rule, contract)
    if kind == "integer":
        return parse_integer(raw, contract)
    if kind == "decimal":
        return Fraction(parse_decimal(raw, contract))
    if kind == "choice":
        try:
            return parse_integer(raw, contract)
        except CellError:
            return str(raw).strip()
    raise CellError(f"cannot read a {kind} column")


PLACEHOLDER_DATE = "2000-01-01"
"""The date an instrument of a row without a readable date is checked under: its problems are
found at once with the date's, and nothing of it is kept."""


def convert_row(plan: RowPlan, number: int, cells: list[Any]) -> RowResult:
    contract = plan.contract

    def cell(column: Column) -> Any:
        return cells[column.index] if column.index < len(cells) else None

    if not any(
        value is not None and (not isinstance(value, str) or value.strip()) for value in cells
    ):
        return RowResult(number, [], blank=True)
    issues: list[Issue] = []
    if plan.forms:
        gated = _gate_forms(plan, number, cells)
        if gated is None:
            return RowResult(number, [], blank=True)
        cells, issues = gated
    failed = bool(issues) and any(issue.is_error for issue in issues)
    patient = cell(plan.patient)
    if is_blank(patient):
        issues.append(
            Issue("error", "required", "no patient identifier", None, "missing-patient").at(
                number, plan.patient.place
            )
        )
        patient = None
    else:
        patient = str(
            int(patient) if isinstance(patient, float) and patient.is_integer() else patient
        ).strip()
    authored = None
    if is_blank(cell(plan.date)):
        issues.append(
            Issue("error", "required", "no visit date", None, "missing-date").at(
                number, plan.date.place
            )
        )
    else:
        try:
            authored = parse_date(cell(plan.date), contract)
        except CellError as error:
            issues.append(
                Issue("error", "value", str(error), None, "invalid-date").at(
                    number, plan.date.place
                )
            )
    failed = failed or patient is None or authored is None
    dose = None
    dose_rejected = False
    if plan.dose is not None and not is_blank(cell(plan.dose)):
        dose, found = plan.read_dose(cell(plan.dose))
        if found:
            issues.extend(issue.at(number, plan.dose.place) for issue in found)
            dose_rejected = any(issue.is_error for issue in found)
            if dose_rejected:
                dose = None
    values: dict[str, Cell] = {}
    """Per filled target, its cell as read and checked (shared by the rows with that cell)."""
    bad: dict[str, Issue] | None = None
    """Per filled target whose cell is not of its type, the issue (placed)."""
    filled: set[str] = set()
    width = len(cells)
    for index, target, read in plan.readers:
        raw = cells[index] if index < width else None
        if raw is None:
            checked = BLANK
        else:  # most cells were met before: a dict lookup, inline for text
            checked = (read.text.get(raw) if raw.__class__ is str else None) or read(raw)
        if checked is BLANK:
            if read.blank_is_false:
                values[target] = (False, None, *check_target(read.target, False))
            continue
        filled.add(target)
        if checked[1] is None:
            values[target] = checked
        else:
            if bad is None:
                bad = {}
            bad[target] = checked[1].at(number, read.column.place)
    subject = Subject(system=plan.patient_system, value=patient or "?")
    chosen = plan.present(filled)
    kept: list[dict[str, Any]] = []
    rejected: list[str] = []
    for entry in chosen:
        if bad is not None and any(target in bad for target, _, _ in entry.column_targets):
            issues.extend(_cell_issues(entry, values, bad, number))
            rejected.append(entry.instrument.id)
            continue
        found_issues: list[Issue] = []
        made = _convert_instrument(
            entry, values, subject, authored or PLACEHOLDER_DATE, number, found_issues, plan
        )
        if found_issues:
            issues.extend(found_issues)
            if any(issue.is_error for issue in found_issues):
                rejected.append(entry.instrument.id)
                continue
        kept.extend(made)
    if bad is not None:
        mine = {target for entry in chosen for target, _, _ in entry.column_targets}
        stray = [issue for target, issue in bad.items() if target not in mine]
        if stray:
            issues.extend(stray)
            failed = True
    if not chosen and dose is None and not dose_rejected and not failed:
        message = "the row holds no instrument answers, scores or LDN dose"
        issues.append(Issue("error", "required", message, None, "empty-visit").at(number))
        failed = True
    result = RowResult(number, issues, patient, authored, dose)
    result.dose_rejected = dose_rejected
    result.rejected_instruments = tuple(rejected)
    if failed or ((rejected or dose_rejected) and not kept and dose is None):
        result.rejected = True
    else:
        result.resources = kept
        if rejected:
            message = (
                f"converted in part: the {', '.join(rejected)} response of this visit is "
                "rejected (its issues above); the visit's other answers are converted"
            )
            issues.append(
                Issue("information", "informational", message, None, "response-rejected").at(number)
            )
        result.partial = bool(rejected or dose_rejected)
    return result


def _cell_issues(
    entry: InstrumentColumns, values: dict[str, Cell], bad: dict[str, Issue], number: int
) -> list[Issue]:
    """Every cell issue of an instrument, in its columns' order: cells not of their target's
    type, and cells the checker rejects."""
    found = []
    for target, column, _ in entry.column_targets:
        if target in bad:
            found.append(bad[target])
        else:
            cell = values.get(target)
            if cell is not None and cell[3] is not None:
                found.append(cell[3].at(number, column.place))
    return found


def _gate_forms(
    plan: RowPlan, number: int, cells: list[Any]
) -> tuple[list[Any], list[Issue]] | None:
    """A REDCap row with the columns of its unfilled forms blanked (REDCap exports an unfilled
    form's checkboxes as 0: they are no answers), and a warning for a form that is not marked
    filled but holds values. None: no form of the row is filled and nothing else is in it."""
    filled_statuses = plan.contract.redcap.filled if plan.contract.redcap else frozenset()
    width = len(cells)
    gated: list[Any] | None = None
    issues: list[Issue] = []
    for form in plan.forms:
        status = cells[form.status] if form.status < width else None
        if _status(status) in filled_statuses:
            continue
        if gated is None:
            gated = list(cells)
        held = 0
        for index, checkbox in form.columns:
            if index < width:
                value = cells[index]
                if not is_blank(value) and not (checkbox and _status(value) == "0"):
                    held += 1
                gated[index] = None
        if held:
            shown = "blank" if is_blank(status) else _status(status)
            message = (
                f"form {form.name} is not marked filled in ({form.name}_complete is {shown}; "
                f"read: {', '.join(sorted(filled_statuses))}): its {held} filled columns are "
                "not read"
            )
            issues.append(
                Issue("warning", "business-rule", message, None, "form-not-complete").at(number)
            )
    if gated is None:
        return cells, issues
    read = [index for _, _, reader in plan.readers for index in (reader.column.index,)]
    dose = plan.dose.index if plan.dose is not None else None
    if all(gated[i] is None or is_blank(gated[i]) for i in read if i < width) and (
        dose is None or dose >= width or is_blank(gated[dose])
    ):
        if not issues:
            return None
        message = "no form of this row is marked filled in: nothing to convert"
        issues.append(
            Issue("error", "business-rule", message, None, "form-not-complete").at(number)
        )
    return gated, issues


def _status(value: Any) -> str:
    """A REDCap status or checkbox cell as text: 2, 2.0 and '2' alike."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _read_dose(raw: Any, contract: SheetContract) -> tuple[Decimal | None, list[Issue]]:
    try:
        dose = parse_dose(raw, contract)
    except CellError as error:
        return None, [Issue("error", "value", str(error), None, error.rule)]
    # 0 records that no LDN was taken at this visit (it ends a course); any other dose is
    # checked like a regimen's: kept exactly, or the row is rejected.
    return dose, ([] if dose == 0 else dose_issues(dose, None))


def _present(plan: RowPlan, filled: set[str]) -> list[InstrumentColumns]:
    """The instruments of a row.

    - An instrument is used when a column only it has is filled.
    - One that contains others (fm2016 holds WPI and SSS) is used when two of those it contains
      are: a row with WPI and SSS items is the survey, and gets the FS score as `convert` gives it.
    - Instruments with the same items (fm2016 and fm2011, the 2016 and 2010/2011 criteria) are
      told apart by their own score columns; where none is filled, the contract's `prefer` list
      decides, else the first in the registry's order (fm2016).
    """
    by_id = {entry.instrument.id: entry for entry in plan.instruments}
    present = {entry.instrument.id: entry for entry in plan.instruments if filled & entry.exclusive}
    for entry in plan.instruments:
        group = (entry.instrument.id, *entry.alternatives)
        if any(member in present for member in group):
            continue
        contained = sum(1 for i in entry.contains if i in present)
        if (entry.contains and contained >= 2) or filled & entry.common:
            chosen = _preferred(group, plan.contract.prefer, by_id)
            present[chosen] = by_id[chosen]
    nested = {instrument_id for entry in present.values() for instrument_id in entry.contains}
    return [
        entry
        for entry in plan.instruments
        if entry.instrument.id in present and entry.instrument.id not in nested
    ]


def _preferred(
    group: tuple[str, ...], prefer: tuple[str, ...], by_id: dict[str, InstrumentColumns]
) -> str:
    named = [instrument_id for instrument_id in prefer if instrument_id in group]
    if named:
        return named[0]
    order = list(by_id)
    return min((i for i in group if i in by_id), key=order.index)


def _convert_instrument(
    entry: InstrumentColumns,
    values: dict[str, Cell],
    subject: Subject,
    authored: str,
    number: int,
    issues: list[Issue],
    plan: RowPlan,
) -> list[dict[str, Any]]:
    """Items -> the same response and scores as `convert`; reported scores must agree."""
    instrument = entry.instrument
    answers: dict[str, Any] = {}
    reported: dict[str, Reported] = {}
    failed = False
    own_targets = entry.own_targets
    for target, column, is_item in entry.column_targets:
        cell = values.get(target)
        if cell is None:
            continue
        value, _, checked, issue = cell
        if own_targets and target in own_targets:
            checked, issue = check_target(entry.target(target), value)
        if issue is not None:
            issues.append(issue.at(number, column.place))
            failed = True
        elif is_item:
            answers[target] = checked
        else:
            reported[target] = Reported(
                checked, f"row {number}, {column.place}", number, column.place
            )
    if failed:
        return []
    if not answers:
        response = Response(instrument, subject, authored, "completed", {}, plan.contract.test_data)
        return reported_resources(response, plan.links, reported)
    missing = entry.missing(answers)
    # A row that leaves a required item blank is a response left incomplete: R4 'stopped'.
    status = "stopped" if missing else "completed"
    if missing:
        message = (
            f"{instrument.id} is incomplete (unanswered: {', '.join(missing)}); its response "
            "is recorded as 'stopped' and its scores as preliminary"
        )
        issues.append(
            Issue("warning", "incomplete", message, None, "incomplete-response").at(number)
        )
    response = Response(instrument, subject, authored, status, answers, plan.contract.test_data)
    converted = response_resources(response, plan.links, reported, plan.contract.on_mismatch)
    issues.extend(converted.issues)
    return converted.resources
