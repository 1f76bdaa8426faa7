"""The page's mapping step: a sheet whose columns do not fit the template (or the contract given)
is matched column by column, the person checks each match, previews the first rows, and the
choices become a contract in the documented format, kept for next time.

`adapter.sheets.suggest` proposes the match (the same suggestion `fms-fhir contract suggest`
writes); this module turns it into form choices, reads the form back, builds the contract from
the choices and previews the first converted rows. Nothing here touches Flask: the routes are in
`page.py`, the HTML in `page_templates.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any

import yaml

from adapter import registry
from adapter.links import links_for
from adapter.model import Issue
from adapter.outcome import InvalidInput
from adapter.settings import Settings
from adapter.sheets.contract import targets
from adapter.sheets.readers import open_sheet
from adapter.sheets.request import SheetRequest, resolve_contract
from adapter.sheets.rows import RowPlan, convert_row, plan_rows
from adapter.sheets.suggest import ColumnGuess, Suggestion
from adapter.sheets.values import column_letter

IGNORE = "ignore"
PATIENT, DATE, DOSE = "$patient", "$visit_date", "$ldn_dose"
ROLES = {"patient": PATIENT, "date": DATE, "dose": DOSE}
FIXED_ROLES = ("checkbox", "redcap")
"""REDCap's own columns and checkbox boxes: read as the suggestion's `redcap` part says, not
chosen one by one."""
PREVIEW_ROWS = 10
MAX_FORMAT = 100
FIELD = re.compile(r"column-(\d{1,5})")


# --- what a column may hold ------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Group:
    label: str
    choices: tuple[Choice, ...]


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@cache
def choice_groups() -> tuple[Group, ...]:
    """The select's options: the visit's own columns, then each instrument's items and scores
    (an item several instruments share is listed under the first, as `targets()` keeps it)."""
    groups = [
        Group(
            "The visit",
            (
                Choice(PATIENT, "Patient identifier"),
                Choice(DATE, "Visit date"),
                Choice(DOSE, "LDN dose (mg)"),
            ),
        )
    ]
    known = targets()
    seen: set[str] = set()
    for instrument in registry.instruments().values():
        choices: list[Choice] = []
        for item in instrument.answerable_items():
            if item.link_id in known and item.link_id not in seen:
                seen.add(item.link_id)
                choices.append(Choice(item.link_id, f"{item.link_id}: {_short(item.text)}"))
        for score in instrument.scores:
            code = score.code.code
            if code in known and code not in seen:
                seen.add(code)
                display = score.code.display or code
                choices.append(Choice(code, f"{code}: {_short(display)} (score)"))
        if choices:
            groups.append(Group(f"{instrument.title} ({instrument.id})", tuple(choices)))
    return tuple(groups)


@cache
def choice_values() -> frozenset[str]:
    return frozenset({IGNORE} | {c.value for g in choice_groups() for c in g.choices})


@cache
def choice_labels() -> dict[str, str]:
    labels = {c.value: c.label for g in choice_groups() for c in g.choices}
    return {IGNORE: "ignore", **labels}


# --- the suggestion as form rows -------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One column of the sheet on the mapping page."""

    index: int
    letter: str
    header: str
    samples: tuple[str, ...]
    chosen: str
    """The option selected: the suggestion's, or what the person chose."""
    suggested: str
    confidence: float
    runner_up: str | None
    runner_up_confidence: float
    note: str
    fixed: bool = False
    """A REDCap column or an empty header: shown, not chosen."""

    @property
    def field(self) -> str:
        return f"column-{self.index}"


def suggested_value(guess: ColumnGuess) -> str:
    """The option a column's guess selects."""
    if guess.role in ROLES:
        return ROLES[guess.role]
    if guess.role in ("item", "score") and guess.target in choice_values():
        return str(guess.target)
    return IGNORE


def _runner_up(target: str | None) -> str | None:
    """The runner-up as the page names it: an item by its id, a role in words."""
    if target is None or not target.startswith("$"):
        return target
    return choice_labels().get(target, target).lower()


def rows(suggestion: Suggestion, chosen: Mapping[int, str] | None = None) -> list[Row]:
    chosen = chosen or {}
    found = []
    for guess in suggestion.columns:
        suggested = suggested_value(guess)
        fixed = guess.role in FIXED_ROLES or not guess.header
        found.append(
            Row(
                index=guess.index,
                letter=column_letter(guess.index),
                header=guess.header,
                samples=tuple(guess.samples[:3]),
                chosen=suggested if fixed else chosen.get(guess.index, suggested),
                suggested=suggested,
                confidence=guess.confidence,
                runner_up=_runner_up(guess.runner_up),
                runner_up_confidence=guess.runner_up_confidence,
                note=guess.note,
                fixed=fixed,
            )
        )
    return found


# --- the form back ---------------------------------------------------------------------------


@dataclass
class Choices:
    """What the person chose: a value per column (by its index), the date format, commas."""

    columns: dict[int, str] = field(default_factory=dict)
    date_format: str = ""
    decimal_comma: bool = False


def _problem(message: str, where: str, rule: str = "invalid-mapping") -> Issue:
    return Issue("error", "value", message, where, rule)


def read_choices(form: Mapping[str, str], suggestion: Suggestion) -> Choices:
    """The form's fields for this suggestion's columns; a field that names no column, or a value
    that is not an option, is a 400 (the page's own form never sends one)."""
    columns = {guess.index: guess for guess in suggestion.columns}
    choices = Choices(
        date_format=(form.get("date-format") or "").strip(),
        decimal_comma=form.get("decimal-comma") == "yes",
    )
    bad: list[Issue] = []
    for name, value in form.items():
        found = FIELD.fullmatch(name)
        if found is None:
            continue
        index = int(found.group(1))
        guess = columns.get(index)
        if guess is None or guess.role in FIXED_ROLES or not guess.header:
            bad.append(_problem(f"the sheet has no column to choose for {name!r}", name))
        elif value not in choice_values():
            bad.append(_problem(f"{value[:60]!r} is not one of the choices", name))
        else:
            choices.columns[index] = value
    if len(choices.date_format) > MAX_FORMAT:
        bad.append(_problem(f"a date format has at most {MAX_FORMAT} characters", "date-format"))
    if bad:
        raise InvalidInput(bad, 400)
    return choices


def check_choices(suggestion: Suggestion, choices: Choices) -> list[Issue]:
    """What makes the choices no contract: the patient and the date chosen once each, the dose
    and every item at most once. Each problem names the columns in the person's words."""
    chosen = {r.index: r for r in rows(suggestion, choices.columns)}
    by_value: dict[str, list[Row]] = {}
    for row in chosen.values():
        if row.chosen != IGNORE and not row.fixed:
            by_value.setdefault(row.chosen, []).append(row)
    labels = choice_labels()
    problems = []
    for value, what in ((PATIENT, "patient identifier"), (DATE, "visit date")):
        if value not in by_value:
            problems.append(
                _problem(f"choose the column that holds the {what}", "mapping", "missing-column")
            )
    for value, listed in by_value.items():
        if len(listed) > 1:
            named = " and ".join(f'{r.letter} "{_short(r.header, 40)}"' for r in listed)
            problems.append(
                _problem(
                    f"{labels.get(value, value)} is chosen for more than one column ({named}); "
                    "choose it for one",
                    listed[1].field,
                    "duplicate-target",
                )
            )
    return problems


# --- the contract --------------------------------------------------------------------------------


def contract_data(
    suggestion: Suggestion, choices: Choices, patient_system: str | None = None
) -> dict[str, Any]:
    """The contract (as `contract_from_data` reads it) the choices make: the suggestion's
    worksheet, header rows and REDCap part, the person's column for each role and item. A
    column keeps the suggestion's value map only while it keeps the suggested target."""
    base = suggestion.contract()
    data: dict[str, Any] = {key: base[key] for key in ("sheet", "header") if key in base}
    listed = rows(suggestion, choices.columns)
    role = {row.chosen: row.header for row in listed if row.chosen in ROLES.values()}
    data["patient"] = {"column": role.get(PATIENT, "patient_id")}
    if patient_system:
        data["patient"]["system"] = patient_system
    data["visit_date"] = {"column": role.get(DATE, "visit_date")}
    if choices.date_format:
        data["visit_date"]["formats"] = [choices.date_format]
    if DOSE in role:
        data["ldn_dose"] = {"column": role[DOSE]}
    if choices.decimal_comma:
        data["decimal_comma"] = True
    if "redcap" in base:
        data["redcap"] = base["redcap"]
    guesses = {guess.index: guess for guess in suggestion.columns}
    columns: dict[str, Any] = {}
    for row in listed:
        if row.fixed or row.chosen == IGNORE or row.chosen in ROLES.values():
            continue
        guess = guesses[row.index]
        rule: dict[str, Any] = {"to": row.chosen}
        if row.chosen == guess.target:
            if guess.values:
                rule["values"] = dict(guess.values)
            if guess.blank_false:
                rule["blank"] = False
        columns[row.header] = rule if len(rule) > 1 else row.chosen
    data["columns"] = columns
    return data


def contract_yaml(data: Mapping[str, Any], file: str) -> str:
    """The contract as YAML, with a comment saying what it is for."""
    head = (
        f"# Sheet contract for {_one_line(file)}, written on the fms-fhir page.\n"
        "# Next time, upload it with the sheet (Sheet contract), or:\n"
        "#   fms-fhir convert-sheet SHEET --contract THIS_FILE --out OUT\n"
    )
    body = yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, width=100)
    return head + body


def _one_line(text: str) -> str:
    return " ".join(text.split())[:120]


# --- the preview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    row: int
    patient: str
    date: str
    instruments: tuple[str, ...]
    status: str
    """converted, in part, or rejected."""
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Preview:
    rows: tuple[PreviewRow, ...] = ()
    problems: tuple[str, ...] = ()
    """Problems of the sheet as a whole (its header against the contract)."""
    worksheet: str | None = None


def _described(issue: Issue) -> str:
    column = issue.column.removeprefix("column ") if issue.column else ""
    return f"{column}: {issue.message}" if column and column not in issue.message else issue.message


def _instruments(resources: Iterable[Mapping[str, Any]], settings: Settings) -> tuple[str, ...]:
    """The instruments whose responses (or reported scores) a row's resources hold."""
    found: list[str] = []
    scores = {
        code: instrument
        for instrument in registry.instruments().values()
        for code in (s.code.code for s in instrument.scores)
    }
    for resource in resources:
        instrument = None
        if resource.get("resourceType") == "QuestionnaireResponse":
            instrument, _ = registry.by_canonical(str(resource.get("questionnaire", "")), settings)
        elif resource.get("resourceType") == "Observation":
            codes = [c.get("code") for c in resource.get("code", {}).get("coding", [])]
            instrument = next((scores[c] for c in codes if c in scores), None)
        if instrument is not None and instrument.id not in found:
            found.append(instrument.id)
    return tuple(found)


def preview(request: SheetRequest, settings: Settings, limit: int = PREVIEW_ROWS) -> Preview:
    """The first `limit` rows that are not blank, each converted as the conversion will convert
    it (the same contract, header plan and row conversion), nothing written. A contract that
    cannot be read raises InvalidInput, as the conversion would."""
    contract = resolve_contract(request, settings)
    links = links_for(request.options.bundle_type, settings)
    found: list[PreviewRow] = []
    seen: set[tuple[str, str]] = set()
    with open_sheet(request.stream, request.name, contract) as sheet:
        plan = plan_rows(sheet.header, contract, links)
        if not isinstance(plan, RowPlan):
            return Preview((), tuple(_described(i) for i in plan), sheet.worksheet)
        for number, cells, problem in sheet.rows:
            if problem is not None:
                found.append(PreviewRow(number, "", "", (), "rejected", (f"row {problem}",)))
            else:
                result = convert_row(plan, number, cells)
                if result.blank:
                    continue
                problems = [_described(i) for i in result.issues if i.is_error]
                status = (
                    "rejected"
                    if result.rejected
                    else "in part"
                    if result.partial
                    else ("converted")
                )
                key = (result.patient or "", result.date or "")
                if not result.rejected and key in seen:
                    status = "rejected"
                    problems.append(
                        f"patient {key[0]} already has a visit on {key[1]} in an earlier row"
                    )
                seen.add(key)
                found.append(
                    PreviewRow(
                        number,
                        result.patient or "",
                        result.date or "",
                        () if status == "rejected" else _instruments(result.resources, settings),
                        status,
                        tuple(problems),
                    )
                )
            if len(found) >= limit:
                break
        return Preview(tuple(found), (), sheet.worksheet)


def _rebuilt(cls: type, values: Mapping[str, Any]) -> Any:
    """A dataclass from its `asdict` form: lists back into the tuples its fields hold."""
    given = {}
    for item in dataclasses.fields(cls):
        if item.name in values:
            value = values[item.name]
            if str(item.type).startswith("tuple") and isinstance(value, list):
                value = tuple(value)
            given[item.name] = value
    return cls(**given)


def suggestion_to_json(suggestion: Suggestion) -> dict[str, Any]:
    """The suggestion as JSON (kept with the upload: suggesting reads the sheet again)."""
    return dataclasses.asdict(suggestion)


def suggestion_from_json(data: Mapping[str, Any]) -> Suggestion:
    """The kept suggestion; ValueError when it is not one (kept by another version)."""
    try:
        columns = tuple(_rebuilt(ColumnGuess, column) for column in data["columns"])
        suggestion: Suggestion = _rebuilt(Suggestion, {**data, "columns": columns})
        return suggestion
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a kept suggestion: {error}") from None


def suggest_for(stream: IO[bytes], name: str, worksheet: str | None = None) -> Suggestion:
    """The suggestion for an uploaded sheet (the worksheet named, or the one that maps best)."""
    from adapter.sheets.suggest import suggest_contract

    return suggest_contract(stream, name, worksheet)
