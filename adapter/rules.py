"""One checker per fact, shared by answers documents, sheet rows and QuestionnaireResponses.

- `RULES`: every rule code a checked answer or a QuestionnaireResponse can get, with its
  severity, FHIR issue type, meaning and source; `issue` makes an Issue of one.
- `check_answer`: one answer against its item (type, option, system, display, range), whatever
  path it came by; `check_reported`: a score someone else reported (type and range).
- `required_issues`: which required items are unanswered, and which disabled items are answered.
- `reported_agrees`: whether a score someone else reported agrees with ours.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from adapter.instrument import AnswerOption, EnableWhen, Item, Score, ScoreValue
from adapter.model import Issue, Severity

COMPLETE_STATUSES = ("completed", "amended")


@dataclass(frozen=True)
class Rule:
    """A rule code engines route on: what it means and where the rule comes from."""

    severity: Severity
    issue_type: str
    """OperationOutcome.issue.code (FHIR R4 IssueType)."""
    meaning: str
    source: str


# code -> its rule. The one table of the codes below: docs/answers.md lists it.
RULES: dict[str, Rule] = {
    "not-json": Rule("error", "structure", "the body is not JSON", "RFC 8259"),
    "not-a-resource": Rule(
        "error", "structure", "JSON, but not a FHIR resource (no resourceType)", "FHIR R4 JSON"
    ),
    "wrong-resource-type": Rule(
        "error",
        "structure",
        "another resource type than QuestionnaireResponse",
        "FHIR R4 JSON",
    ),
    "too-large": Rule(
        "error", "too-long", "the response is larger than the service accepts", "fms-fhir limit"
    ),
    "fhir-structure": Rule(
        "error",
        "structure",
        "the R4 structure is broken (type, cardinality, unknown element)",
        "FHIR R4 StructureDefinition",
    ),
    "invalid-status": Rule(
        "error",
        "invalid",
        "status is not a QuestionnaireResponse status",
        "R4 ValueSet questionnaire-answers-status",
    ),
    "no-questionnaire": Rule(
        "error",
        "invalid",
        "questionnaire is empty and the caller named none",
        "R4 QuestionnaireResponse.questionnaire",
    ),
    "unknown-questionnaire": Rule(
        "error",
        "not-found",
        "the questionnaire is not one of this adapter's",
        "fms-fhir registry",
    ),
    "unknown-version": Rule(
        "error",
        "not-found",
        "the questionnaire version is not the one served",
        "R4 canonical url|version",
    ),
    "questionnaire-mismatch": Rule(
        "error",
        "invalid",
        "the response names another questionnaire than the caller",
        "R4 QuestionnaireResponse.questionnaire",
    ),
    "unknown-link-id": Rule(
        "error",
        "invalid",
        "the linkId is not in the Questionnaire",
        "R4 QuestionnaireResponse.item.linkId",
    ),
    "wrong-place": Rule(
        "error",
        "invalid",
        "the linkId exists, but under another parent",
        "R4 QuestionnaireResponse.item (hierarchy mirrors the Questionnaire)",
    ),
    "item-order": Rule(
        "error",
        "invalid",
        "items are not in the Questionnaire's order",
        "R4 QuestionnaireResponse.item (order follows the Questionnaire)",
    ),
    "duplicate-item": Rule(
        "error", "invalid", "a non-repeating item appears twice", "R4 invariant qrs-2"
    ),
    "answer-and-items": Rule(
        "error",
        "invalid",
        "an item holds both answers and child items",
        "R4 invariant qrs-1",
    ),
    "multiple-answers": Rule(
        "error",
        "invalid",
        "more than one answer to an item that does not repeat",
        "R4 Questionnaire.item.repeats",
    ),
    # --- the answer checker's codes (`check_answer`, `check_reported`): every path -------------
    "not-answerable": Rule(
        "error",
        "structure",
        "an answer to a group or display item, which takes none",
        "R4 Questionnaire.item.type group, display",
    ),
    "wrong-type": Rule(
        "error",
        "value",
        "the answer is not of the type its item takes (true or false, a whole number, ...)",
        "R4 Questionnaire.item.type answer types",
    ),
    "not-an-option": Rule(
        "error",
        "code-invalid",
        "a choice answer, whatever its type, that is none of the item's options",
        "R4 Questionnaire.item.answerOption",
    ),
    "wrong-system": Rule(
        "error",
        "code-invalid",
        "a choice answer's Coding has an option's code but another system",
        "R4 Questionnaire.item.answerOption (Coding system and code)",
    ),
    "display-mismatch": Rule(
        "warning",
        "code-invalid",
        "a choice answer's Coding display differs from the option's display",
        "R4 Coding.display (the display of the code in its system)",
    ),
    "integer-for-choice": Rule(
        "information",
        "informational",
        "a choice answered with its score (valueInteger) instead of the Coding; accepted",
        "fms-fhir, ordinalValue",
    ),
    "out-of-range": Rule(
        "error",
        "value",
        "a number below minValue or above maxValue (a reported score: outside its range)",
        "R4 extensions minValue/maxValue",
    ),
    "too-long": Rule(
        "error",
        "value",
        "a text answer is longer than maxLength",
        "R4 Questionnaire.item.maxLength",
    ),
    # -------------------------------------------------------------------------------------------
    "text-mismatch": Rule(
        "warning",
        "business-rule",
        "item.text differs from the Questionnaire's text",
        "R4 QuestionnaireResponse.item.text",
    ),
    "required-missing": Rule(
        "error",
        "required",
        "a required item is unanswered (warning while in-progress)",
        "R4 Questionnaire.item.required",
    ),
    "disabled-answered": Rule(
        "error",
        "invalid",
        "an item disabled by enableWhen has an answer",
        "R4 Questionnaire.item.enableWhen",
    ),
    "authored-missing": Rule(
        "error",
        "invalid",
        "authored is missing: scores need a date",
        "fms-fhir (scores are dated by authored)",
    ),
    "subject-missing": Rule(
        "warning",
        "business-rule",
        "subject is missing: R4 allows it, but scores need a patient (an error in extract)",
        "R4 QuestionnaireResponse.subject 0..1; fms-fhir (scores need a subject)",
    ),
    "subject-not-patient": Rule(
        "warning",
        "business-rule",
        "subject is not a literal Patient reference ('Patient/<id>'): scores are about a "
        "patient (an error in extract)",
        "R4 QuestionnaireResponse.subject Reference(Any); fms-fhir (scores need a patient)",
    ),
    "subject-invalid": Rule(
        "warning",
        "business-rule",
        "the subject identifier's system is not an absolute URI (an error in extract, whose "
        "Observations would carry it)",
        "R4 Identifier.system (uri)",
    ),
    "unknown-modifier": Rule(
        "error",
        "invalid",
        "a modifierExtension this adapter does not know: the response cannot be read safely",
        "R4 Extensibility: modifier extensions SHALL NOT be ignored",
    ),
    "calculated-mismatch": Rule(
        "warning",
        "business-rule",
        "a calculated score in the response differs from this adapter's",
        "SDC calculatedExpression",
    ),
    "truncated": Rule(
        "information",
        "informational",
        "more issues were found than are listed",
        "fms-fhir limit",
    ),
}


def issue(
    rule: str, message: str, expression: str | None = None, severity: Severity | None = None
) -> Issue:
    """An Issue of a rule in `RULES`: its severity (unless the caller's differs, as a
    required item's in an unfinished response) and its FHIR issue type."""
    known = RULES[rule]
    return Issue(severity or known.severity, known.issue_type, message, expression, rule)


# --- one answer against its item -------------------------------------------------------------


@dataclass(frozen=True)
class FhirAnswer:
    """A QuestionnaireResponse answer as it came: its value[x] key (`valueCoding`; None when
    it has none) and that value. Every other raw answer is a plain JSON value."""

    key: str | None
    value: object


Checked = tuple[Any, tuple[Issue, ...]]
"""The plain value (None when rejected) and the issues: at most one error, or notes."""

TAKES = {
    "boolean": "true or false",
    "integer": "a whole number",
    "decimal": "a number",
    "string": "text",
    "text": "text",
}
VALUE_KEY = {
    "boolean": "valueBoolean",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "string": "valueString",
    "text": "valueString",
}
"""The value[x] an item type takes in a QuestionnaireResponse (a choice: valueCoding)."""


def check_answer(item: Item, raw: object, codesystem: str | None = None) -> Checked:
    """One answer against its item, the same on every path: one rule code and one wording per
    fact, whether it came in an answers document, a sheet cell or a QuestionnaireResponse.

    `raw` is a plain JSON value (an answers document's, or a sheet cell's as the sheet read it:
    a number, true or false, or the cell's text) or a `FhirAnswer`. The plain value returned:
    bool for boolean items, int for integer items, the number for decimal ones, the text for
    string ones, the AnswerOption for choices (found by its integer score or its code; in a
    FHIR answer by its Coding, or by its score in a valueInteger, which is noted). A bool is
    never taken as a number, nor a number as a bool. `codesystem` is the project's CodeSystem
    url: the system of the options declared without one, against which a Coding is checked.

    Codes: `not-answerable` (a group or display item), `wrong-type` (boolean, integer, decimal
    and text items), `out-of-range`, `too-long`, `not-an-option` (a choice answer that is no
    option, whatever its type), `wrong-system` (an option's code in another system); on an
    accepted Coding `display-mismatch` (a warning), on a valueInteger `integer-for-choice`.
    """
    kind, cls = item.type, raw.__class__
    # The usual answers first, accepted as `_check_plain` accepts them; anything else (a
    # refusal above all) goes the whole way below.
    if kind == "choice":
        if cls is int or cls is str:
            option = item.option_for(raw)
            if option is not None:
                return option, ()
    elif kind == "boolean":
        if cls is bool:
            return raw, ()
    elif kind == "integer" and cls is int:
        return _in_range(item.link_id, raw, item.min_value, item.max_value, None)
    if kind in ("group", "display"):
        return _rejected(item.link_id, "not-answerable", f"is a {item.type} and takes no answer")
    if isinstance(raw, FhirAnswer):
        return _check_fhir(item, raw, codesystem)
    return _check_plain(item, raw, None)


def _check_plain(item: Item, raw: object, shown: str | None) -> Checked:
    kind = item.type
    if kind == "choice":
        option = item.option_for(raw)
        return (option, ()) if option is not None else _not_an_option(item, shown or _shown(raw))
    if kind == "boolean":
        if raw.__class__ is bool:
            return raw, ()
    elif kind == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return _in_range(item.link_id, raw, item.min_value, item.max_value, shown)
    elif kind == "decimal":
        if _is_number(raw):
            return _in_range(item.link_id, raw, item.min_value, item.max_value, shown)
    elif kind in ("string", "text"):
        if isinstance(raw, str):
            if item.max_length is not None and len(raw) > item.max_length:
                message = f"{len(raw)} characters, at most {item.max_length}"
                return _rejected(item.link_id, "too-long", message)
            return raw, ()
    return _wrong_type(item.link_id, TAKES.get(kind, kind), shown or _shown(raw))


def _check_fhir(item: Item, answer: FhirAnswer, codesystem: str | None) -> Checked:
    key, value = answer.key, answer.value
    shown = f"{key} {_shown(value)}" if key else "no value"
    if item.type == "choice":
        if key == "valueCoding":
            return _check_coding(item, value, codesystem)
        if key == "valueInteger" and value.__class__ is int:
            option = item.option_for(value)
            if option is not None:
                message = (
                    f"{item.link_id}: answered with the score {value}; read as {option.code.code}"
                )
                return option, (issue("integer-for-choice", message),)
        return _not_an_option(item, shown)
    if key != VALUE_KEY.get(item.type):
        return _wrong_type(item.link_id, TAKES.get(item.type, item.type), shown)
    return _check_plain(item, value, shown)


def _check_coding(item: Item, coding: object, codesystem: str | None) -> Checked:
    """R4 Questionnaire.item.answerOption: a Coding answers a choice when its system (if it
    has one) and its code are an option's; its display, if any, should be the option's."""
    if not isinstance(coding, Mapping):
        return _not_an_option(item, f"valueCoding {_shown(coding)}")
    code, system = coding.get("code"), coding.get("system")
    named = [o for o in item.options if o.code.code == code] if isinstance(code, str) else []
    if not named:
        given = code if system is None else f"{system}|{code}"
        return _not_an_option(item, f"valueCoding {_shown(given)}")
    option = next(
        (o for o in named if system is None or (o.code.system or codesystem) in (None, system)),
        None,
    )
    if option is None:
        expected = " or ".join(dict.fromkeys(str(o.code.system or codesystem) for o in named))
        given = str(system) if len(str(system)) <= 80 else str(system)[:77] + "..."
        message = f"code {code!r} is an option in the system {expected}, not in {given}"
        return _rejected(item.link_id, "wrong-system", message)
    display = coding.get("display")
    if isinstance(display, str) and display.strip() != option.code.display.strip():
        message = (
            f"{item.link_id}: display {_shown(display)} is not {option.code.display!r}, "
            f"the display of {code}"
        )
        return option, (issue("display-mismatch", message),)
    return option, ()


def check_reported(score: Score, raw: object) -> Checked:
    """A score someone else reported (a sheet's score column): its type and its range, in the
    words and codes of `check_answer`."""
    name = score.code.code
    if score.value_type == "boolean":
        return (
            (raw, ()) if raw.__class__ is bool else _wrong_type(name, "true or false", _shown(raw))
        )
    whole = score.value_type == "integer"
    if not _is_number(raw) or (whole and not isinstance(raw, int)):
        return _wrong_type(name, "a whole number" if whole else "a number", _shown(raw))
    return _in_range(name, raw, score.low, score.high, None)


def _is_number(raw: object) -> bool:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | Fraction):
        return False
    return (
        math.isfinite(raw)
        if isinstance(raw, float)
        else not isinstance(raw, Decimal) or raw.is_finite()
    )


def _in_range(name: str, raw: Any, low: Any, high: Any, shown: str | None) -> Checked:
    if low is not None and raw < low:
        return _rejected(name, "out-of-range", f"{shown or _shown(raw)} is below the minimum {low}")
    if high is not None and raw > high:
        return _rejected(
            name, "out-of-range", f"{shown or _shown(raw)} is above the maximum {high}"
        )
    return raw, ()


def _wrong_type(name: str, takes: str, shown: str) -> Checked:
    return _rejected(name, "wrong-type", f"takes {takes}, got {shown}")


def _not_an_option(item: Item, shown: str) -> Checked:
    """The options in the Questionnaire's order, each as `score (code)`."""
    options = ", ".join(f"{o.score} ({o.code.code})" for o in item.options)
    return _rejected(item.link_id, "not-an-option", f"{shown} is not one of the options: {options}")


def _rejected(name: str, rule: str, text: str) -> Checked:
    return None, (issue(rule, f"{name}: {text}"),)


def _shown(raw: object) -> str:
    """A value for a message, bounded: a 10,000-digit number is not echoed whole."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10**30:
        return f"a number of {len(str(abs(raw)))} digits"
    if isinstance(raw, Fraction):
        raw = Decimal(raw.numerator) / raw.denominator
    text = str(raw) if isinstance(raw, Decimal) else repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


# --- enableWhen and required -------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    return value.code.code if isinstance(value, AnswerOption) else value


def _condition_holds(
    condition: EnableWhen, answers: Mapping[str, Any], items: Mapping[str, Item]
) -> bool:
    value = answers.get(condition.question)
    target = condition.answer
    if condition.operator == "exists":
        return (value is not None) == bool(target)
    if value is None:
        return False
    question = items.get(condition.question)
    if isinstance(target, str | int) and question is not None and question.type == "choice":
        option = question.option_for(target)
        target = option.code.code if option else target
    value = _comparable(value)
    try:
        return {
            "=": lambda: value == target,
            "!=": lambda: value != target,
            ">": lambda: value > target,
            "<": lambda: value < target,
            ">=": lambda: value >= target,
            "<=": lambda: value <= target,
        }[condition.operator]()
    except TypeError:
        return False


def enabled(item: Item, answers: Mapping[str, Any], items: Mapping[str, Item]) -> bool:
    """R4 Questionnaire.item.enableWhen over plain answers (linkId -> value)."""
    if not item.enable_when:
        return True
    results = [_condition_holds(c, answers, items) for c in item.enable_when]
    return all(results) if item.enable_behavior == "all" else any(results)


def missing_required(
    items: tuple[Item, ...], answers: Mapping[str, Any], index: Mapping[str, Item]
) -> list[str]:
    """linkIds of the enabled required items without an answer, in the Questionnaire's order."""
    missing: list[str] = []
    for item in items:
        if not enabled(item, answers, index):
            continue
        if item.children:
            missing.extend(missing_required(item.children, answers, index))
        elif item.required and item.link_id not in answers:
            missing.append(item.link_id)
    return missing


def required_issues(
    items: tuple[Item, ...],
    answers: Mapping[str, Any],
    attempted: Collection[str],
    status: str,
    index: Mapping[str, Item],
    where: Mapping[str, str] | None = None,
    default_where: str | None = None,
    answered_where: Mapping[str, str] | None = None,
) -> Iterator[Issue]:
    """R4 Questionnaire.item.required and enableWhen.

    A required item left unanswered is an error in a `completed` (or `amended`) response and a
    warning otherwise (`in-progress`, `stopped`): R4 lets an unfinished response lack it.
    `attempted` are the items that carry an answer, valid or not (a wrong answer is reported
    once, not also as missing). `where` names the place of a group; `answered_where` the
    place of an answer.
    """
    severity: Severity = "error" if status in COMPLETE_STATUSES else "warning"
    where = where or {}
    answered_where = answered_where or {}
    for item in items:
        if not enabled(item, answers, index):
            if item.link_id in answers:
                message = f"{item.link_id} is disabled by enableWhen and must not be answered"
                place = answered_where.get(item.link_id, default_where)
                yield issue("disabled-answered", message, place)
            continue
        if item.children:
            yield from required_issues(
                item.children,
                answers,
                attempted,
                status,
                index,
                where,
                where.get(item.link_id, default_where),
                answered_where,
            )
        elif item.required and item.link_id not in attempted:
            message = f"{item.link_id} is required and unanswered"
            if severity == "warning":
                message += f" (status {status})"
            yield issue("required-missing", message, default_where, severity)


# --- reported scores ---------------------------------------------------------------------------


def decimal_places(value: Any) -> int:
    """Decimal places a reported number was written with (at most 6)."""
    exact = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    places = 0
    while exact.denominator != 1 and places < 6:
        exact *= 10
        places += 1
    return places


def reported_agrees(score: Score, computed: ScoreValue, reported: Any) -> bool:
    """A reported score agrees when it equals ours to the precision it was written with:
    `35.7` agrees with 35.67, `35.6` does not; booleans must be equal."""
    if isinstance(computed, bool) or isinstance(reported, bool):
        return computed == reported
    exact = Fraction(str(reported)) if isinstance(reported, float) else Fraction(reported)
    tolerance = Fraction(1, 2 * 10 ** decimal_places(reported))
    return abs(Fraction(computed) - exact) <= tolerance
