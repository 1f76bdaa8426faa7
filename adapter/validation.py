"""QuestionnaireResponse against its Questionnaire: one small named rule per check.

Every rule has a stable code (`RULES`) that engines can route on, and names its source. The
structure is checked first with the R4B model (fhir.resources); the rules then walk the response
and the instrument's declaration side by side, so the Questionnaire and the validation come from
the same source. Each answer is checked by the checker answers documents and sheet rows use
(`rules.check_answer`): one rule code and one wording per fact on every path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from adapter import registry
from adapter.fhir import validation_issues
from adapter.instrument import Instrument, Item
from adapter.model import Issue, Response, Subject
from adapter.questionnaire import form_items
from adapter.rules import (
    RULES,
    TAKES,
    FhirAnswer,
    check_answer,
    issue,
    reported_agrees,
    required_issues,
)
from adapter.schemas import ABSOLUTE_URI, REFERENCE
from adapter.scoring import score_answers, wire_value
from adapter.settings import Settings

ROOT = "QuestionnaireResponse"
MAX_ISSUES = 500
STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
# The rule codes, their severity, FHIR issue type and source: one table (in adapter/rules.py)
# for every path. docs/answers.md lists it.
__all__ = ["RULES", "Validated", "local_canonical", "resolve", "validate_response"]


@dataclass
class Answered:
    """An answer found in the response, with its place."""

    item: Item
    value: Any
    path: str


@dataclass
class Walk:
    instrument: Instrument
    index: Mapping[str, Item]
    settings: Settings
    issues: list[Issue] = field(default_factory=list)
    answers: dict[str, list[Answered]] = field(default_factory=dict)
    present: dict[str, str] = field(default_factory=dict)
    attempted: set[str] = field(default_factory=set)
    """Items with an answer, valid or not: a wrong answer is reported once, not also as missing."""


# --- rules on one item -----------------------------------------------------------------------


def rule_text(q_item: Item, qr_item: Mapping[str, Any], path: str) -> Iterator[Issue]:
    # R4: QuestionnaireResponse.item.text "Name for group or question text" (from the Questionnaire)
    text = qr_item.get("text")
    if text is not None and text.strip() != q_item.text.strip():
        yield issue(
            "text-mismatch",
            f"{q_item.link_id}: text {text!r} is not {q_item.text!r}",
            f"{path}.text",
        )


def rule_answer_and_items(q_item: Item, qr_item: Mapping[str, Any], path: str) -> Iterator[Issue]:
    # R4 invariant qrs-1: (answer.exists() and item.exists()).not()
    if q_item.type not in ("group", "display") and qr_item.get("answer") and qr_item.get("item"):
        message = f"{qr_item['linkId']}: an item holds answers or child items, never both"
        yield issue("answer-and-items", message, path)


def rule_answer_count(q_item: Item, answers: list[Any], path: str) -> Iterator[Issue]:
    # R4 Questionnaire.item.repeats: false means at most one answer
    if len(answers) > 1 and not q_item.repeats:
        yield issue(
            "multiple-answers",
            f"{q_item.link_id} takes one answer, got {len(answers)}",
            f"{path}.answer[1]",
        )


def _value(answer: Mapping[str, Any]) -> tuple[str | None, Any]:
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return None, None


def rule_calculated_type(q_item: Item, key: str | None, value: Any, path: str) -> Iterator[Issue]:
    # R4 Questionnaire.item.type: a calculated score item takes the score's value[x] (an
    # integer score may be sent as a decimal); its value is compared by `rule_calculated`
    allowed = {"valueBoolean"} if q_item.type == "boolean" else {"valueInteger", "valueDecimal"}
    takes = TAKES.get(q_item.type, q_item.type)
    if key not in allowed:
        shown = key or "no value"
        message = f"{q_item.link_id}: takes {takes}, got {shown}"
        yield issue("wrong-type", message, f"{path}.{key}" if key else path)
    elif not _json_type_fits(key, value):
        # `"5"` in a valueInteger: pydantic's lax mode reads it as 5, the scores would not
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message = f"{q_item.link_id}: takes {takes}, got {key} {shown}"
        yield issue("wrong-type", message, f"{path}.{key}")


def _json_type_fits(key: str, value: Any) -> bool:
    """The JSON type R4 gives the value[x]: a JSON boolean, a whole JSON number (`17.0` is
    whole, as R4's JSON parsers read it), a number."""
    if key == "valueBoolean":
        return value.__class__ is bool
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    if not math.isfinite(value):
        return False
    return key != "valueInteger" or value == int(value)


# --- the walk ---------------------------------------------------------------------------------


def _walk_items(
    walk: Walk, q_items: tuple[Item, ...], qr_items: list[Mapping[str, Any]], path: str
) -> None:
    positions = {item.link_id: (position, item) for position, item in enumerate(q_items)}
    last_position = -1
    seen: set[str] = set()
    for number, qr_item in enumerate(qr_items):
        here = f"{path}.item[{number}]"
        link_id = qr_item["linkId"]
        if link_id not in positions:
            if link_id in walk.index:
                message = f"{link_id} belongs elsewhere in {walk.instrument.id}, not under {path}"
                walk.issues.append(issue("wrong-place", message, f"{here}.linkId"))
            else:
                message = f"{link_id!r} is not an item of {walk.instrument.id}"
                walk.issues.append(issue("unknown-link-id", message, f"{here}.linkId"))
            continue
        position, q_item = positions[link_id]
        if link_id in seen and not q_item.repeats:
            # R4 invariant qrs-2: repeated answers go in one item's answer array
            message = f"{link_id} appears twice; repeated answers belong in one item"
            walk.issues.append(issue("duplicate-item", message, here))
        elif position < last_position:
            message = f"{link_id} comes after an item that follows it in the Questionnaire"
            walk.issues.append(issue("item-order", message, here))
        seen.add(link_id)
        last_position = max(last_position, position)
        walk.present.setdefault(link_id, here)
        walk.issues.extend(rule_text(q_item, qr_item, here))
        both = list(rule_answer_and_items(q_item, qr_item, here))
        walk.issues.extend(both)
        answers = qr_item.get("answer") or []
        if q_item.type in ("group", "display"):
            if answers:  # the checker's not-answerable, once for the item
                _check_answer(walk, q_item, answers[0], f"{here}.answer[0]")
        else:
            if answers:
                walk.attempted.add(link_id)
            walk.issues.extend(rule_answer_count(q_item, answers, here))
            for answer_number, answer in enumerate(answers):
                _check_answer(walk, q_item, answer, f"{here}.answer[{answer_number}]")
        if qr_item.get("item") and not both:
            _walk_items(walk, q_item.children, qr_item["item"], here)


def _check_answer(walk: Walk, q_item: Item, answer: Mapping[str, Any], path: str) -> None:
    key, value = _value(answer)
    where = f"{path}.{key}" if key else path
    if q_item.score is not None:  # a calculated score item of the form, not an answer
        found = list(rule_calculated_type(q_item, key, value, path))
        plain = value
    else:
        plain, checked = check_answer(q_item, FhirAnswer(key, value), walk.settings.codesystem_url)
        if q_item.type in ("group", "display"):
            where = path
        found = [replace(i, expression=where) for i in checked]
    walk.issues.extend(found)
    if any(i.is_error for i in found):
        return
    walk.answers.setdefault(q_item.link_id, []).append(Answered(q_item, plain, path))
    if answer.get("item"):
        _walk_items(walk, q_item.children, answer["item"], path)


# --- the whole response -----------------------------------------------------------------------


@dataclass
class Validated:
    issues: list[Issue]
    instrument: Instrument | None = None
    response: Response | None = None

    @property
    def valid(self) -> bool:
        return not any(i.is_error for i in self.issues)


LOCAL_QUESTIONNAIRE = re.compile(r"Questionnaire/(?P<id>[A-Za-z0-9\-.]{1,64})")
"""A relative reference to a Questionnaire (the `id` pattern of R4)."""


def local_canonical(text: str, settings: Settings, base_url: str | None = None) -> str:
    """The canonical url of a Questionnaire an app names the way it reads it from this service:
    as a relative reference (`Questionnaire/phq9`) or by the service's own address
    (`<base_url>/Questionnaire/phq9`, base_url being the address the request came to), with or
    without `|version`. Any other text is returned as it is."""
    url, bar, version = text.partition("|")
    url = url.strip()
    if base_url and url.startswith(f"{base_url.rstrip('/')}/Questionnaire/"):
        url = url[len(base_url.rstrip("/")) + 1 :]
    match = LOCAL_QUESTIONNAIRE.fullmatch(url)
    if match is None or registry.get(match["id"]) is None:
        return text
    return settings.questionnaire_url(match["id"]) + bar + version


def resolve(
    resource: Mapping[str, Any],
    questionnaire_id: str | None,
    settings: Settings,
    base_url: str | None = None,
) -> tuple[Instrument | None, list[Issue]]:
    """The Questionnaire from QuestionnaireResponse.questionnaire, or the one the caller names
    (by id, or by its canonical url, with or without `|version`; or as `local_canonical` reads
    it: `Questionnaire/<id>`, or the service's own url of it)."""
    canonical = resource.get("questionnaire")
    if isinstance(canonical, str) and canonical:
        canonical = local_canonical(canonical, settings, base_url)
    if questionnaire_id:
        questionnaire_id = local_canonical(questionnaire_id, settings, base_url)
    named = None
    if questionnaire_id:
        if "/" in questionnaire_id or "|" in questionnaire_id:
            named, version = registry.by_canonical(questionnaire_id, settings)
            if named is not None and version is not None and version != named.version:
                message = (
                    f"{named.id} version {version} is unknown; this adapter serves {named.version}"
                )
                return None, [issue("unknown-version", message, None)]
        else:
            named = registry.get(questionnaire_id)
        if named is None:
            known = ", ".join(registry.instruments())
            message = f"unknown questionnaire {questionnaire_id[:200]!r}; known: {known}"
            return None, [issue("unknown-questionnaire", message, None)]
    if not canonical:
        if named is None:
            message = "questionnaire is empty: name the Questionnaire (--questionnaire ID, ?questionnaire=ID)"
            return None, [issue("no-questionnaire", message, f"{ROOT}.questionnaire")]
        return named, []
    found, version = registry.by_canonical(canonical, settings)
    if found is None:
        if named is not None:
            message = f"questionnaire {canonical} is not {settings.questionnaire_url(named.id)}"
            return None, [issue("questionnaire-mismatch", message, f"{ROOT}.questionnaire")]
        message = f"{canonical} is not a Questionnaire of this adapter; known: " + ", ".join(
            settings.questionnaire_url(i) for i in registry.instruments()
        )
        return None, [issue("unknown-questionnaire", message, f"{ROOT}.questionnaire")]
    if named is not None and named.id != found.id:
        message = f"the response is for {found.id}, the caller named {named.id}"
        return None, [issue("questionnaire-mismatch", message, f"{ROOT}.questionnaire")]
    if version is not None and version != found.version:
        message = f"{found.id} version {version} is unknown; this adapter serves {found.version}"
        return None, [issue("unknown-version", message, f"{ROOT}.questionnaire")]
    return found, []


def validate_response(
    resource: Any,
    settings: Settings,
    questionnaire_id: str | None = None,
    base_url: str | None = None,
) -> Validated:
    """Check a parsed JSON value as a QuestionnaireResponse; never raises on bad input.
    `base_url`: the address the service was reached at, by which an app may name a
    Questionnaire it read from it."""
    if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
        return Validated(
            [issue("not-a-resource", "the body is JSON, but not a FHIR resource", None)]
        )
    if resource["resourceType"] != ROOT:
        message = f"expected a QuestionnaireResponse, got a {resource['resourceType']}"
        return Validated([issue("wrong-resource-type", message, "resourceType")])
    structure = [
        issue("fhir-structure", i.message, i.expression) for i in validation_issues(dict(resource))
    ]
    if structure:
        return Validated(structure[:MAX_ISSUES])
    issues: list[Issue] = []
    status = resource["status"]
    if status not in STATUSES:
        issues.append(
            issue(
                "invalid-status",
                f"status {status!r} is not one of {', '.join(STATUSES)}",
                f"{ROOT}.status",
            )
        )
    if not resource.get("authored"):
        issues.append(issue("authored-missing", "authored is missing", f"{ROOT}.authored"))
    issues.extend(rule_modifiers(resource, ROOT))
    subject = resource.get("subject") or {}
    has_subject = bool(subject.get("reference") or (subject.get("identifier") or {}).get("value"))
    reference = subject.get("reference")
    if reference and not REFERENCE.fullmatch(reference):
        message = f"subject {reference[:80]!r} is not a Patient reference such as 'Patient/123'"
        issues.append(issue("subject-not-patient", message, f"{ROOT}.subject.reference"))
    system = (subject.get("identifier") or {}).get("system")
    if system is not None and not ABSOLUTE_URI.fullmatch(system):
        message = f"subject identifier system {system[:80]!r} is not an absolute URI"
        issues.append(issue("subject-invalid", message, f"{ROOT}.subject.identifier.system"))
    if not has_subject:
        issues.append(
            issue(
                "subject-missing", "subject (reference or identifier) is missing", f"{ROOT}.subject"
            )
        )
    instrument, found = resolve(resource, questionnaire_id, settings, base_url)
    issues.extend(found)
    if instrument is None:
        return Validated(issues)
    items = form_items(instrument)
    index = {**instrument.item_index, **{i.link_id: i for i in items}}
    walk = Walk(instrument, index, settings)
    _walk_items(walk, items, resource.get("item") or [], ROOT)
    plain = {link_id: found[0].value for link_id, found in walk.answers.items()}
    walk.issues.extend(
        required_issues(
            instrument.items,
            plain,
            walk.attempted,
            status,
            instrument.item_index,
            walk.present,
            ROOT,
            {link_id: found[0].path for link_id, found in walk.answers.items()},
        )
    )
    issues.extend(walk.issues)
    result = Validated(issues, instrument)
    if result.valid:
        response = _response(instrument, resource, walk)
        issues.extend(rule_calculated(response, walk))
        if has_subject:
            result.response = response
    if len(issues) > MAX_ISSUES:
        dropped = len(issues) - MAX_ISSUES
        result.issues = [
            *issues[:MAX_ISSUES],
            issue("truncated", f"{dropped} more issues not listed", None),
        ]
    return result


def rule_modifiers(node: Any, path: str) -> Iterator[Issue]:
    # R4 Extensibility: "implementations SHALL NOT ignore modifier extensions they do not know";
    # this adapter knows none, so any modifierExtension makes the response unreadable here.
    stack = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, Mapping):
            for key, value in current.items():
                if key == "modifierExtension" and value:
                    urls = ", ".join(
                        str(e.get("url"))[:80] for e in value if isinstance(e, Mapping)
                    )
                    message = f"unknown modifier extension(s): {urls}"
                    yield issue("unknown-modifier", message, f"{where}.modifierExtension")
                elif isinstance(value, Mapping | list):
                    stack.append((value, f"{where}.{key}"))
        elif isinstance(current, list):
            stack.extend((value, f"{where}[{n}]") for n, value in enumerate(current))


def _response(instrument: Instrument, resource: Mapping[str, Any], walk: Walk) -> Response:
    answers = {
        link_id: found[0].value
        for link_id, found in walk.answers.items()
        if link_id in instrument.item_index
    }
    security = (resource.get("meta") or {}).get("security") or []
    test_data = (
        "derived from a QuestionnaireResponse marked as test data (HTEST)"
        if any(isinstance(s, Mapping) and s.get("code") == "HTEST" for s in security)
        else None
    )
    return Response(
        instrument=instrument,
        subject=Subject.from_json(resource.get("subject") or {}),
        authored=resource["authored"],
        status=resource["status"],
        answers=answers,
        test_data=test_data,
    )


def rule_calculated(response: Response, walk: Walk) -> Iterator[Issue]:
    # SDC calculatedExpression: a renderer's score should equal this adapter's (Python reference)
    for result in score_answers(response.instrument, response.answers):
        sent = walk.answers.get(result.code)
        if not sent or sent[0].item.score is None:
            continue
        ours = wire_value(result.score, result.value)
        theirs = sent[0].value
        if result.value is None:
            message = f"{result.code}: the response holds {theirs!r}, but it cannot be computed ({result.missing_reason})"
        elif reported_agrees(result.score, result.value, theirs):
            continue
        else:
            message = f"{result.code}: the response holds {theirs}, the scoring gives {ours}"
        yield issue("calculated-mismatch", message, sent[0].path)
