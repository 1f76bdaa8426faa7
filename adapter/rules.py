"""One checker per fact, shared by answers documents, sheet rows and QuestionnaireResponses.

- `check_value`: one answer against its item (type, option, range).
- `required_issues`: which required items are unanswered, and which disabled items are answered.
- `reported_agrees`: whether a score someone else reported agrees with ours.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from adapter.instrument import AnswerOption, EnableWhen, Item, Score, ScoreValue
from adapter.model import Issue, Severity

COMPLETE_STATUSES = ("completed", "amended")


def _describe_options(item: Item) -> str:
    return ", ".join(f"{o.score} ({o.code.code})" for o in item.options)


def check_value(item: Item, raw: object, where: str | None) -> tuple[object | None, Issue | None]:
    """One answer against its item; returns the plain value or the issue that rejects it.

    Plain values: bool for boolean items, int for integer items, the AnswerOption for choices
    (found by its integer score or its code). A bool is never taken as a number, nor a number
    as a bool.
    """

    def bad(message: str, rule: str = "wrong-type", code: str = "value") -> tuple[None, Issue]:
        return None, Issue("error", code, f"{item.link_id}: {message}", where, rule)

    if item.type == "boolean":
        if not isinstance(raw, bool):
            return bad(f"takes true or false, got {_shown(raw)}")
        return raw, None
    if item.type == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            return bad(f"takes a whole number, got {_shown(raw)}")
        if item.min_value is not None and raw < item.min_value:
            return bad(f"{_shown(raw)} is below the minimum {item.min_value}", "out-of-range")
        if item.max_value is not None and raw > item.max_value:
            return bad(f"{_shown(raw)} is above the maximum {item.max_value}", "out-of-range")
        return raw, None
    if item.type == "choice":
        option = item.option_for(raw) if isinstance(raw, int | str) else None
        if option is None:
            rule = (
                "out-of-range"
                if isinstance(raw, int) and not isinstance(raw, bool)
                else "not-an-option"
            )
            return bad(f"{_shown(raw)} is not one of the options: {_describe_options(item)}", rule)
        return option, None
    return bad(f"is a {item.type} and takes no answer", "not-answerable", "structure")


def _shown(raw: object) -> str:
    """A value for a message, bounded: a 10,000-digit number is not echoed whole."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10**30:
        return f"a number of {len(str(abs(raw)))} digits"
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
                yield Issue(
                    "error",
                    "invalid",
                    message,
                    answered_where.get(item.link_id, default_where),
                    "disabled-answered",
                )
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
            yield Issue(
                severity,
                "required",
                message,
                default_where,
                "required-missing",
            )


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
