"""A draft contract from a sheet's headers and a sample of its values (`contract suggest`).

Each column is matched against what it may hold: the patient, the visit date, the LDN dose,
each item (by its linkId, its text, its prefix and number, its instrument's name) and each score,
and the words clinics use for them in English, German, Portuguese and Spanish
(`mappings/vocabulary/`). A match must also fit the column's values, read the way the contract
will read them. A column is mapped only when its best match reaches `THRESHOLD` and stands
clear of the runner-up; every other column is listed as unmapped with its nearest candidate.
Nothing is guessed silently.

`suggest(samples, ...)` is pure (samples in, a `Suggestion` out); `suggest_contract(stream, ...)`
reads the samples first. The page and the CLI use the same value: `Suggestion.contract()` is
the draft as data, `to_yaml()` the draft with its comments, `lines()` the report for people.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from difflib import SequenceMatcher
from functools import cache, lru_cache
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import yaml

import mappings
from adapter import registry
from adapter.instrument import Item, Score
from adapter.sheets.contract import (
    REDCAP_SYSTEM_COLUMNS,
    TRUE_WORDS,
    ColumnRule,
    SheetContract,
    targets,
)
from adapter.sheets.readers import Sample, join_header, sample_sheets
from adapter.sheets.rows import _kind, _read_cell, check_target
from adapter.sheets.values import CellError, column_letter, is_blank, parse_dose

THRESHOLD = 0.8
"""The least confidence of a mapped column: below it, the column is listed, not mapped."""
# A match's score is scaled by how many of the sample's values its target takes: a few bad cells
# (at least 70% good) cost nothing, a column of values the target does not take costs most.
MARGIN = 0.05
"""How far the best match must stand above the runner-up (another target)."""
SAMPLE_ROWS = 200
SHOWN_SAMPLES = 5
DATE_FORMATS = (
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d.%m.%y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%Y%m%d",
)
PATIENT, DATE, DOSE = "$patient", "$visit_date", "$ldn_dose"
ROLE_NAMES = {PATIENT: "the patient", DATE: "the visit date", DOSE: "the LDN dose"}
VOCABULARY = Path(mappings.__file__).parent / "vocabulary"
RANGE = re.compile(r"\(?(?<![\w.,])[01]\s*[-–—]\s*\d{1,3}(?![\w.,])\)?")
"""A scale note in a header, '(0-10)': not part of its name."""
CHECKBOX = re.compile(r"(.+?)___([A-Za-z0-9_]+)")

Role = Literal["patient", "date", "dose", "item", "score", "checkbox", "redcap", "unmapped"]


# --- the words ---------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Lower case, no accents, no punctuation, no scale note: 'Müdigkeit (0-3)' -> 'mudigkeit'."""
    text = RANGE.sub(" ", str(text))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("ß", "ss")
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)  # f1 -> f 1, phq4 -> phq 4
    return " ".join(re.findall(r"[a-z0-9]+", text))


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(sorted(t for t in text.split() if t.isdigit()))


@dataclass(frozen=True)
class Phrase:
    """A way to head a column holding `target`, normalized."""

    target: str
    text: str
    source: str
    instrument: str | None = None
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    phrases: tuple[Phrase, ...]
    """Matched against whole headers."""
    names: tuple[tuple[str, str], ...]
    """(normalized name, instrument id): how instruments are called."""
    local: dict[str, tuple[Phrase, ...]]
    """Per instrument: phrases matched against what follows its name ('FIQR' + 'F1')."""
    totals: dict[str, str]
    """Per instrument: the score a column named only by the instrument holds."""
    total_words: frozenset[str]
    answers: dict[str, str]
    """A normalized answer word -> the option code it means."""


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _words(entry: Any) -> list[str]:
    """A vocabulary entry's words: {language: [words]} or [words]."""
    if isinstance(entry, Mapping):
        return [str(w) for words in entry.values() for w in (words or [])]
    return [str(w) for w in (entry or [])]


def _phrase(target: str, text: str, source: str, instrument: str | None = None) -> Phrase:
    normal = normalize(text)
    return Phrase(target, normal, source, instrument, _numbers(normal))


@cache
def vocabulary() -> Vocabulary:
    """The project's words (item ids, texts, codes) and the vocabulary files, loaded once."""
    known = targets()
    phrases: list[Phrase] = []
    local: dict[str, list[Phrase]] = {}
    names: list[tuple[str, str]] = []
    totals: dict[str, str] = {}
    sheet = _load(VOCABULARY / "sheet.yaml")
    for role in (PATIENT, DATE, DOSE):
        phrases += [_phrase(role, w, "vocabulary") for w in _words(sheet.get(role[1:]))]
    for target in (PATIENT, DATE, DOSE):
        phrases.append(_phrase(target, target[1:], "id"))
    phrases.append(_phrase(DOSE, "ldn_dose_mg", "id"))
    phrases.append(_phrase(PATIENT, "patient_id", "id"))
    for instrument in registry.instruments().values():
        own: list[Phrase] = local.setdefault(instrument.id, [])
        names.append((normalize(instrument.id), instrument.id))
        for number, item in enumerate(instrument.answerable_items(), 1):
            phrases.append(_phrase(item.link_id, item.link_id, "id", instrument.id))
            phrases.append(_phrase(item.link_id, _topic(item.text), "item text", instrument.id))
            if item.code is not None and item.code.code != item.link_id:
                phrases.append(_phrase(item.link_id, item.code.code, "code", instrument.id))
            aliases = [str(number), f"q{number}", f"item {number}", f"frage {number}"]
            aliases += [f"pergunta {number}", f"pregunta {number}", f"i{number}"]
            if item.prefix:
                aliases.append(item.prefix)
            own += [_phrase(item.link_id, a, "item number", instrument.id) for a in aliases]
            own.append(_phrase(item.link_id, _topic(item.text), "item text", instrument.id))
        for score in instrument.scores:
            if score.emit != "always":
                continue
            code = score.code.code
            phrases.append(_phrase(code, code, "id", instrument.id))
            display = re.sub(r"\[.*?\]", "", score.label or score.code.display)
            phrases.append(_phrase(code, display, "score name", instrument.id))
    for path in sorted(VOCABULARY.glob("*.yaml")):
        if path.name in ("sheet.yaml", "answers.yaml"):
            continue
        data = _load(path)
        instrument_id = str(data.get("instrument", path.stem))
        if registry.get(instrument_id) is None:
            raise ValueError(f"{path.name}: no instrument {instrument_id!r}")
        names += [(normalize(n), instrument_id) for n in _words(data.get("names"))]
        if data.get("total"):
            totals[instrument_id] = str(data["total"])
        own = local.setdefault(instrument_id, [])
        for target, entry in (data.get("targets") or {}).items():
            if str(target) not in known:
                raise ValueError(f"{path.name}: {target!r} is not a linkId or score code")
            for word in _words(entry):
                phrases.append(_phrase(str(target), word, "vocabulary", instrument_id))
                own.append(_phrase(str(target), word, "vocabulary", instrument_id))
    answers = {
        normalize(word): str(code)
        for code, entry in _load(VOCABULARY / "answers.yaml").items()
        for word in _words(entry)
    }
    return Vocabulary(
        tuple(p for p in phrases if p.text),
        tuple(sorted({n for n in names if n[0]}, key=lambda n: -len(n[0]))),
        {k: tuple(p for p in v if p.text) for k, v in local.items()},
        totals,
        frozenset(normalize(w) for w in _words(sheet.get("total"))),
        answers,
    )


def _topic(text: str) -> str:
    """An item's text without its scale anchors: 'Pain (0 = no pain, ...)' -> 'Pain'."""
    return re.sub(r"\s*\(.*\)\s*$", "", text) or text


@lru_cache(maxsize=1 << 16)
def _token_match(a: str, b: str) -> bool:
    """Two words alike: equal, one the start of the other (4 letters at least), or one typo
    apart. Headers repeat their words, so each pair is compared once."""
    if a == b:
        return True
    if a.isdigit() or b.isdigit():
        return False
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return True
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 2:
        return False
    matcher = SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85


def similarity(header: str, phrase: Phrase) -> float:
    """How well a normalized header matches a phrase, 0 to 1; numbers must agree."""
    text = phrase.text
    if header == text:
        return 1.0
    if _numbers(header) != phrase.numbers:
        return 0.0
    matcher = SequenceMatcher(None, header, text)
    # ratio() is the costly part: only where its upper bounds leave it a chance to matter
    close = matcher.real_quick_ratio() >= 0.7 and matcher.quick_ratio() >= 0.7
    ratio = matcher.ratio() if close else 0.0
    mine, theirs = header.split(), text.split()
    if not mine or not theirs:
        return ratio
    matched = sum(1 for t in mine if any(_token_match(t, u) for u in theirs))
    covered = sum(1 for u in theirs if any(_token_match(t, u) for t in mine))
    tokens = min(matched / len(mine), covered / len(theirs))
    return max(ratio, 0.95 * tokens)


def _candidates(header: str) -> dict[str, tuple[float, str]]:
    """Every target's best score for a header, with how it was matched."""
    words = vocabulary()
    normal = normalize(header)
    found: dict[str, tuple[float, str]] = {}

    def offer(target: str, score: float, how: str) -> None:
        if score > found.get(target, (0.0, ""))[0]:
            found[target] = (score, how)

    if not normal:
        return found
    for phrase in words.phrases:
        offer(phrase.target, similarity(normal, phrase), phrase.source)
    padded = f" {normal} "
    for name, instrument_id in words.names:
        if f" {name} " not in padded:
            continue
        rest = padded.replace(f" {name} ", " ", 1).strip()
        if not rest or rest in words.total_words:
            total = words.totals.get(instrument_id)
            if total is not None:
                offer(total, 0.97 if rest else 0.9, f"the {instrument_id} total")
            continue
        for phrase in words.local.get(instrument_id, ()):
            score = similarity(rest, phrase)
            offer(phrase.target, score, f"{phrase.source} within {instrument_id}")
    return found


# --- the values --------------------------------------------------------------------------------


def shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat() if not value.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_date(value: Any, formats: Iterable[str]) -> bool:
    if isinstance(value, datetime | date):
        return True
    text = shown(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?", text):
        return True
    for fmt in formats:
        try:
            datetime.strptime(text, fmt)
            return True
        except ValueError:
            continue
    return False


def date_formats(values: list[Any]) -> tuple[tuple[str, ...], str]:
    """The formats that read every text date of the sample, and a note when it is ambiguous
    (03/04/2024: day first or month first)."""
    texts = [
        shown(v)
        for v in values
        if not isinstance(v, datetime | date) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", shown(v))
    ]
    if not texts:
        return (), ""
    fitting = [f for f in DATE_FORMATS if all(_is_date(t, (f,)) for t in texts)]
    if not fitting:
        return (), ""
    first = fitting[0]
    note = ""
    if len(fitting) > 1 and {"%d/%m/%Y", "%m/%d/%Y"} <= set(fitting):
        note = "day and month cannot be told apart in the sample: day first assumed"
    return (first,), note


def _fit(
    target: Item | Score, values: list[Any], rule: ColumnRule, contract: SheetContract
) -> tuple[float, str]:
    """The share of sample values the contract would read and accept for `target`, and the
    first it would not."""
    if not values:
        return 1.0, ""
    kind = _kind(target)
    good, first_bad = 0, ""
    for value in values:
        try:
            read = _read_cell(value, kind, rule, contract)
        except CellError:
            read = value if isinstance(value, int | float) else shown(value)
        _, issue = check_target(target, read)
        if issue is None:
            good += 1
        elif not first_bad:
            first_bad = f"{shown(value)!r} does not fit it"
    return good / len(values), first_bad


def _value_map(target: Item | Score, values: list[Any]) -> dict[str, Any] | None:
    """A value map for words the contract does not read by itself: answer words of a choice
    (by mappings/vocabulary/answers.yaml)."""
    if not isinstance(target, Item) or target.type != "choice":
        return None
    words = {shown(v) for v in values if isinstance(v, str) and not v.strip().lstrip("-").isdigit()}
    if not words:
        return None
    answers = vocabulary().answers
    mapped: dict[str, Any] = {}
    for word in sorted(words):
        code = answers.get(normalize(word))
        option = next((o for o in target.options if o.code.code == code), None)
        if option is None:
            return None
        mapped[word] = option.score
    return mapped


def _boolean_style(target: Item | Score, values: list[Any], blanks: int) -> bool:
    """A checkbox column: one yes word, and blanks (a blank is then no)."""
    if not isinstance(target, Item) or target.type != "boolean" or not blanks:
        return False
    distinct = {shown(v).lower() for v in values}
    return len(distinct) == 1 and distinct <= set(TRUE_WORDS)


# --- the suggestion ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnGuess:
    """One column: what it is taken for, how sure, and what came next."""

    index: int
    header: str
    samples: tuple[str, ...]
    role: Role
    target: str | None
    """A linkId or score code (role item or score); None for the other roles."""
    confidence: float
    runner_up: str | None = None
    runner_up_confidence: float = 0.0
    note: str = ""
    """How it was matched, or why it is not mapped."""
    values: dict[str, Any] | None = None
    blank_false: bool = False

    @property
    def letter(self) -> str:
        return column_letter(self.index)

    @property
    def mapped(self) -> bool:
        return self.role != "unmapped"

    def describe(self) -> str:
        what = (
            self.target
            if self.role in ("item", "score")
            else ROLE_NAMES.get(f"${self.role}", self.role)
        )
        if self.role == "date":
            what = "the visit date"
        elif self.role == "patient":
            what = "the patient"
        elif self.role == "dose":
            what = "the LDN dose"
        runner = (
            f"; runner-up {_target_name(self.runner_up)} ({self.runner_up_confidence:.2f})"
            if self.runner_up and self.runner_up_confidence > 0
            else "; no runner-up"
        )
        return f"{what} (confidence {self.confidence:.2f}{runner}; {self.note})"


@dataclass(frozen=True)
class Suggestion:
    """A draft contract for one worksheet, column by column."""

    file: str
    worksheet: str | None
    worksheets: tuple[str, ...]
    header_row: int
    header_rows: int
    first_row: int
    """The first non-blank row: `header.row` is written only when the header is not it."""
    columns: tuple[ColumnGuess, ...]
    date_formats: tuple[str, ...] = ()
    decimal_comma: bool = False
    redcap: bool = False
    redcap_event: str | None = None
    checkboxes: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def role(self, role: Role) -> ColumnGuess | None:
        return next((c for c in self.columns if c.role == role), None)

    @property
    def mapped(self) -> list[ColumnGuess]:
        return [c for c in self.columns if c.mapped and c.role != "redcap"]

    @property
    def unmapped(self) -> list[ColumnGuess]:
        return [c for c in self.columns if not c.mapped]

    def contract(self, choices: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """The draft as data (what `contract_from_data` loads). `choices` overrides columns by
        header: a linkId or score code, or None to leave the column out."""
        choices = choices or {}
        data: dict[str, Any] = {}
        if self.worksheet is not None and len(self.worksheets) > 1:
            data["sheet"] = self.worksheet
        if self.header_rows > 1 or self.header_row != self.first_row:
            header: dict[str, Any] = {"row": self.header_row}
            if self.header_rows > 1:
                header["rows"] = self.header_rows
            data["header"] = header
        patient, day, dose = self.role("patient"), self.role("date"), self.role("dose")
        data["patient"] = {"column": patient.header if patient else "patient_id"}
        data["visit_date"] = {"column": day.header if day else "visit_date"}
        if self.date_formats:
            data["visit_date"]["formats"] = list(self.date_formats)
        if dose is not None:
            data["ldn_dose"] = {"column": dose.header}
        if self.decimal_comma:
            data["decimal_comma"] = True
        if self.redcap:
            data["redcap"] = {"event": self.redcap_event}
            if self.checkboxes:
                data["redcap"]["checkboxes"] = dict(self.checkboxes)
        columns: dict[str, Any] = {}
        used: set[str] = set()
        for column in self.columns:
            if column.role in ("patient", "date", "dose", "checkbox", "redcap"):
                continue
            target = choices[column.header] if column.header in choices else column.target
            if target is None or target in used:
                continue
            used.add(target)
            rule: dict[str, Any] = {"to": target}
            if column.values and target == column.target:
                rule["values"] = dict(column.values)
            if column.blank_false and target == column.target:
                rule["blank"] = False
            columns[column.header] = rule if len(rule) > 1 else target
        data["columns"] = columns
        return data

    def to_yaml(self) -> str:
        """The draft with a comment per line: the confidence and the runner-up of each mapped
        column, and a list of the columns left unmapped."""
        data = self.contract()
        out = [
            f"# Draft contract for {self.file}"
            + (f", worksheet {self.worksheet!r}" if self.worksheet else "")
            + ", written by `fms-fhir contract suggest`.",
            "# Check each line (confidence and runner-up in the comments), then:",
            f"#   fms-fhir convert-sheet {self.file} --contract THIS_FILE --out OUT",
        ]
        out += [f"# note: {note}" for note in self.notes]
        by_header = {c.header: c for c in self.columns}
        if "sheet" in data:
            others = ", ".join(w for w in self.worksheets if w != self.worksheet)
            out.append(f"sheet: {_q(data['sheet'])}  # the other worksheets: {others}")
        if "header" in data:
            out.append(f"header: {_flow(data['header'])}")
        for key in ("patient", "visit_date", "ldn_dose"):
            if key in data:
                guess = by_header.get(data[key]["column"])
                comment = f"  # {guess.describe()}" if guess else "  # NOT FOUND: name the column"
                out.append(f"{key}: {_flow(data[key])}{comment}")
        if "decimal_comma" in data:
            out.append("decimal_comma: true  # numbers in the sample are written 4,5")
        if "redcap" in data:
            out.append("redcap:")
            out.append(f"  event: {_q(self.redcap_event) if self.redcap_event else 'null'}")
            if self.checkboxes:
                out.append("  checkboxes:")
                for name, listed in self.checkboxes.items():
                    guess = by_header.get(f"{name}___1")
                    comment = f"  # {guess.note}" if guess else ""
                    out.append(f"    {_q(name)}: {_flow(listed)}{comment}")
        out.append("columns:")
        for header, rule in data["columns"].items():
            guess = by_header[header]
            out.append(f"  {_q(header)}: {_flow(rule)}  # {guess.letter}: {guess.describe()}")
        if not data["columns"]:
            out[-1] = "columns: {}"
        unmapped = self.unmapped
        if unmapped:
            out.append("# Not mapped (listed, never guessed): add a line under columns to use one.")
            for guess in unmapped:
                out.append(f"#   {guess.letter} {_q(guess.header)}: {guess.note}")
        return "\n".join(out) + "\n"

    def lines(self) -> list[str]:
        """The suggestion for people (standard error): the sheet, then a line per column."""
        where = f"worksheet {self.worksheet!r}" if self.worksheet else "the sheet"
        others = [w for w in self.worksheets if w != self.worksheet]
        found = [
            f"{self.file}: {where}"
            + (f" (others: {', '.join(others)})" if others else "")
            + f", header in row {self.header_row}"
            + (f" and {self.header_row + 1}" if self.header_rows > 1 else "")
        ]
        found += [f"note: {note}" for note in self.notes]
        for column in self.columns:
            place = f"{column.letter} {column.header!r}"
            if column.role == "redcap":
                found.append(f"  REDCap  {place}: {column.note}")
            elif column.mapped:
                found.append(f"  mapped  {place} -> {column.describe()}")
            else:
                found.append(f"  unmapped {place}: {column.note}")
        mapped, unmapped = len(self.mapped), len(self.unmapped)
        found.append(f"{mapped} columns mapped, {unmapped} left unmapped")
        return found


def _q(text: Any) -> str:
    """A YAML double-quoted scalar (JSON's escapes), which keeps every character of a header."""
    escaped = orjson.dumps(str(text)).decode()
    for char in ("\u0085", "\u2028", "\u2029", "\ufeff"):
        escaped = escaped.replace(char, f"\\u{ord(char):04x}")
    return escaped


def _flow(value: Any) -> str:
    """A value as YAML flow style, every text double-quoted."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_q(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return _q(value)


# --- the steps ---------------------------------------------------------------------------------


def suggest_contract(stream: IO[bytes], name: str, sheet: str | None = None) -> Suggestion:
    """Reads a sample of the sheet (each worksheet, or the one named) and suggests for the one
    that maps best (`suggest`). A file that cannot be read raises InvalidInput."""
    samples, worksheets = sample_sheets(stream, name, sheet, SAMPLE_ROWS)
    return suggest(samples, name, worksheets)


def suggest(samples: list[Sample], name: str, worksheets: tuple[str, ...] = ()) -> Suggestion:
    """The best draft among the samples (one per worksheet): the most columns mapped."""
    drafts = [_suggest_one(sample, name, worksheets) for sample in samples]
    if not drafts:
        return Suggestion(name, None, worksheets, 1, 1, 1, ())
    return max(
        drafts,
        key=lambda d: (
            d.role("patient") is not None and d.role("date") is not None,
            len(d.mapped),
        ),
    )


def find_header(sample: Sample) -> tuple[int, int, list[str], int]:
    """(header row, header rows, the header as the reader will join it, first non-blank row):
    the densest row of text among the first 30 holds the header; a row right above it of group
    cells (merged over several columns, or a few cells over a full header) joins it."""
    rows = sample.rows[:30]

    def filled(row: tuple[Any, ...]) -> list[int]:
        return [i for i, v in enumerate(row) if not is_blank(v)]

    def texts(row: tuple[Any, ...]) -> int:
        return sum(
            1
            for v in row
            if isinstance(v, str) and v.strip() and not re.fullmatch(r"[\d.,\s-]+", v.strip())
        )

    first = next((n for n, row in enumerate(rows, 1) if filled(row)), 1)
    if not rows:
        return 1, 1, [], 1
    widest = max(len(filled(row)) for row in rows)
    header_row = next(
        (
            n
            for n, row in enumerate(rows, 1)
            if len(filled(row)) >= max(2, 0.6 * widest) and texts(row) >= 0.6 * len(filled(row))
        ),
        first,
    )
    names = [shown(v) if not is_blank(v) else "" for v in rows[header_row - 1]]
    if header_row > 1:
        above = rows[header_row - 2]
        cells = filled(above)
        spans = [s for s in sample.spans.get(header_row - 1, []) if s[1] > s[0]]
        width = max(len(names), 1)
        grouped = (spans and all(last - first_ + 1 < 0.8 * width for first_, last in spans)) or (
            not spans and len(cells) >= 2 and len(cells) < 0.8 * len(filled(rows[header_row - 1]))
        )
        if cells and grouped:
            groups = [shown(v) if not is_blank(v) else "" for v in above]
            return header_row - 1, 2, join_header(groups, names, spans or None), first
    return header_row, 1, names, first


def _suggest_one(sample: Sample, name: str, worksheets: tuple[str, ...]) -> Suggestion:
    header_row, header_rows, header, first = find_header(sample)
    data = [
        row
        for row in sample.rows[header_row + header_rows - 1 :]
        if any(not is_blank(v) for v in row)
    ]

    def column_values(index: int) -> tuple[list[Any], int]:
        values = [row[index] for row in data if index < len(row) and not is_blank(row[index])]
        return values, len(data) - len(values)

    notes: list[str] = []
    headers = [h for h in header]
    redcap = "redcap_event_name" in headers or (
        any(h.endswith("_complete") for h in headers) and "record_id" in headers
    )
    all_values = [column_values(i)[0] for i in range(len(headers))]
    decimal_comma = any(
        isinstance(v, str) and re.fullmatch(r"\s*-?\d+,\d+\s*(mg)?\s*", v, re.IGNORECASE)
        for values in all_values
        for v in values
    )
    contract = SheetContract(decimal_comma=decimal_comma)
    guesses: list[ColumnGuess | None] = [None] * len(headers)
    every = targets()

    # REDCap's own columns and checkbox groups
    checkboxes: dict[str, list[str]] = {}
    groups: dict[str, list[tuple[int, str]]] = {}
    for index, text in enumerate(headers):
        found = CHECKBOX.fullmatch(text) if redcap else None
        if found:
            groups.setdefault(found.group(1), []).append((index, found.group(2)))
        elif redcap and (text in REDCAP_SYSTEM_COLUMNS or text.endswith("_complete")):
            what = "the event of each row" if text == "redcap_event_name" else "REDCap's own column"
            if text.endswith("_complete"):
                what = f"the completion of form {text.removesuffix('_complete')}: an unfilled form gives no answers"
            guesses[index] = ColumnGuess(index, text, (), "redcap", None, 1.0, note=what)
    for base, members in groups.items():
        codes = [code for _, code in members]
        match = _checkbox_instrument(base, len(members))
        for index, _ in members:
            guesses[index] = ColumnGuess(
                index,
                headers[index],
                tuple(sorted({shown(v) for v in all_values[index]})[:SHOWN_SAMPLES]),
                "checkbox" if match else "unmapped",
                None,
                match[1] if match else 0.0,
                note=(
                    f"checkbox {base}: {len(members)} boxes in the order of {match[0]}'s items"
                    if match
                    else f"checkbox field {base!r}: {len(members)} boxes match no instrument's yes/no items"
                ),
            )
        if match and codes == [str(n) for n in range(1, len(codes) + 1)]:
            instrument = registry.get(match[0])
            assert instrument is not None
            checkboxes[base] = [
                i.link_id for i in instrument.answerable_items() if i.type == "boolean"
            ]

    # every other column, by its header and its values
    scored: dict[int, list[tuple[float, str, str, float, str]]] = {}
    for index, text in enumerate(headers):
        if guesses[index] is not None or not text:
            continue
        values, blanks = column_values(index)
        ranked = []
        for target, (score, how) in _candidates(text).items():
            if score < 0.5:
                continue
            fit, bad = 1.0, ""
            if target == DATE:
                fit = (
                    sum(_is_date(v, DATE_FORMATS) for v in values) / len(values) if values else 1.0
                )
                bad = "" if fit == 1 else "not every value is a date"
            elif target == DOSE:
                fit, bad = _dose_fit(values, contract)
            elif target in every:
                words = _value_map(every[target], values)
                lowered = {k.strip().lower(): v for k, v in words.items()} if words else None
                rule = ColumnRule(text, target, values=lowered)
                fit, bad = _fit(every[target], values, rule, contract)
            ranked.append((score * min(1.0, 0.3 + fit), target, how, fit, bad))
        ranked.sort(key=lambda r: (-r[0], r[1]))
        scored[index] = ranked
        if not ranked and values and sum(_is_date(v, DATE_FORMATS) for v in values) == len(values):
            scored[index] = [(0.0, DATE, "by its values", 1.0, "")]

    chosen: dict[str, int] = {}
    for index in sorted(scored, key=lambda i: -(scored[i][0][0] if scored[i] else 0)):
        ranked = scored[index]
        values, blanks = column_values(index)
        samples = tuple(dict.fromkeys(shown(v) for v in values))[:SHOWN_SAMPLES]
        text = headers[index]
        free = [r for r in ranked if r[1] not in chosen]
        if not free:
            nearest = (
                f"nearest: {ranked[0][1]} ({ranked[0][0]:.2f}), taken by another column"
                if ranked
                else "no item, score, patient, date or dose is close"
            )
            guesses[index] = ColumnGuess(index, text, samples, "unmapped", None, 0.0, note=nearest)
            continue
        best = free[0]
        runner = next((r for r in free[1:] if r[1] != best[1]), None)
        confidence = round(best[0], 2)
        clear = runner is None or best[0] - runner[0] >= MARGIN or best[0] == 1.0 > runner[0]
        if confidence >= THRESHOLD and clear:
            target = best[1]
            role: Role = {PATIENT: "patient", DATE: "date", DOSE: "dose"}.get(target, "item")  # type: ignore[assignment]  # a Role by construction
            if role == "item" and isinstance(every.get(target), Score):
                role = "score"
            values_map = _value_map(every[target], values) if target in every else None
            blank_false = target in every and _boolean_style(every[target], values, blanks)
            chosen[target] = index
            guesses[index] = ColumnGuess(
                index,
                text,
                samples,
                role,
                target if role in ("item", "score") else None,
                confidence,
                runner[1] if runner else None,
                round(runner[0], 2) if runner else 0.0,
                f"by {best[2]}" + (f"; {best[4]}" if best[4] else ""),
                values_map,
                blank_false,
            )
        else:
            why = (
                "below the threshold"
                if confidence < THRESHOLD
                else f"too close to {runner[1] if runner else ''}"
            )
            bad = f"; {best[4]}" if best[4] else ""
            guesses[index] = ColumnGuess(
                index,
                text,
                samples,
                "unmapped",
                None,
                confidence,
                runner[1] if runner else None,
                round(runner[0], 2) if runner else 0.0,
                f"nearest {_target_name(best[1])} ({confidence:.2f}, {why}{bad})",
            )
    for index, text in enumerate(headers):
        if guesses[index] is None:
            values, _ = column_values(index)
            samples = tuple(dict.fromkeys(shown(v) for v in values))[:SHOWN_SAMPLES]
            note = (
                "an empty header" if not text else "no item, score, patient, date or dose is close"
            )
            guesses[index] = ColumnGuess(index, text, samples, "unmapped", None, 0.0, note=note)

    # required roles the headers did not give: proposed, marked, never silent
    final = [g for g in guesses if g is not None]
    day = next((g for g in final if g.role == "date"), None)
    formats: tuple[str, ...] = ()
    if day is not None:
        formats, note = date_formats(column_values(day.index)[0])
        if note:
            notes.append(f"{day.header}: {note}")
    if not any(g.role == "patient" for g in final):
        notes.append("no column is clearly the patient: name it under patient.column")
    if day is None:
        notes.append("no column is clearly the visit date: name it under visit_date.column")
    return Suggestion(
        name,
        sample.worksheet,
        worksheets,
        header_row,
        header_rows,
        first,
        tuple(final),
        formats,
        decimal_comma,
        redcap,
        "redcap_event_name" if "redcap_event_name" in headers else None,
        checkboxes,
        tuple(notes),
    )


def _target_name(target: str) -> str:
    return ROLE_NAMES.get(target, target)


def _dose_fit(values: list[Any], contract: SheetContract) -> tuple[float, str]:
    if not values:
        return 1.0, ""
    good, bad = 0, ""
    for value in values:
        try:
            parse_dose(value, contract)
            good += 1
        except CellError:
            bad = bad or shown(value)
    return good / len(values), (f"{bad!r} is not a dose in mg" if bad else "")


def _checkbox_instrument(base: str, count: int) -> tuple[str, float] | None:
    """The instrument whose yes/no items a REDCap checkbox field holds: by its name, and the
    same number of boxes as items."""
    normal = normalize(base)
    best: tuple[str, float] | None = None
    for name, instrument_id in vocabulary().names:
        instrument = registry.get(instrument_id)
        if instrument is None:
            continue
        booleans = [i for i in instrument.answerable_items() if i.type == "boolean"]
        if len(booleans) != count:
            continue
        score = similarity(normal, Phrase("", name, "", None, _numbers(name)))
        if normal.startswith(name + " ") or normal.endswith(" " + name):
            score = max(score, 0.9)
        if score >= THRESHOLD and (best is None or score > best[1]):
            best = (instrument_id, round(score, 2))
    return best


__all__ = [
    "THRESHOLD",
    "ColumnGuess",
    "Suggestion",
    "normalize",
    "suggest",
    "suggest_contract",
    "vocabulary",
]
