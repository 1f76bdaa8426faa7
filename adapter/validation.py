"""QuestionnaireResponse against its Questionnaire: one small named rule per check.

Every rule has a stable code (`RULES`) that engines can route on, and names its source. The
structure is checked first with the R4B model (fhir.resources); the rules then walk the response
and the instrument's declaration side by side, so the Questionnaire and the validation come from
the same source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapter import registry
from adapter.fhir import validation_issues
from adapter.instrument import AnswerOption, Instrument, Item
from adapter.model import Issue, Response, Subject
from adapter.questionnaire import form_items
from adapter.rules import check_value, reported_agrees, required_issues
from adapter.schemas import ABSOLUTE_URI, REFERENCE
from adapter.scoring import score_answers, wire_value
from adapter.settings import Settings

ROOT = "QuestionnaireResponse"
MAX_ISSUES = 500
STATUSES = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
ANSWER_KEY = {
    "boolean": "valueBoolean",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "choice": "valueCoding",
    "string": "valueString",
    "text": "valueString",
}

# code -> (severity, what it means, source). docs/answers.md lists this table.
RULES: dict[str, tuple[str, str, str]] = {
    "not-json": ("error", "the body is not JSON", "RFC 8259"),
    "not-a-resource": ("error", "JSON, but not a FHIR resource (no resourceType)", "FHIR R4 JSON"),
    "wrong-resource-type": (
        "error",
        "another resource type than QuestionnaireResponse",
        "FHIR R4 JSON",
    ),
    "too-large": ("error", "the response is larger than the service accepts", "fms-fhir limit"),
    "fhir-structure": (
        "error",
        "the R4 structure is broken (type, cardinality, unknown element)",
        "FHIR R4 StructureDefinition",
    ),
    "invalid-status": (
        "error",
        "status is not a QuestionnaireResponse status",
        "R4 ValueSet questionnaire-answers-status",
    ),
    "no-questionnaire": (
        "error",
        "questionnaire is empty and the caller named none",
        "R4 QuestionnaireResponse.questionnaire",
    ),
    "unknown-questionnaire": (
        "error",
        "the questionnaire is not one of this adapter's",
        "fms-fhir registry",
    ),
    "unknown-version": (
        "error",
        "the questionnaire version is not the one served",
        "R4 canonical url|version",
    ),
    "questionnaire-mismatch": (
        "error",
        "the response names another questionnaire than the caller",
        "R4 QuestionnaireResponse.questionnaire",
    ),
    "unknown-link-id": (
        "error",
        "the linkId is not in the Questionnaire",
        "R4 QuestionnaireResponse.item.linkId",
    ),
    "wrong-place": (
        "error",
        "the linkId exists, but under another parent",
        "R4 QuestionnaireResponse.item (hierarchy mirrors the Questionnaire)",
    ),
    "item-order": (
        "error",
        "items are not in the Questionnaire's order",
        "R4 QuestionnaireResponse.item (order follows the Questionnaire)",
    ),
    "duplicate-item": ("error", "a non-repeating item appears twice", "R4 invariant qrs-2"),
    "answer-and-items": (
        "error",
        "an item holds both answers and child items",
        "R4 invariant qrs-1",
    ),
    "group-answered": ("error", "a group carries an answer", "R4 Questionnaire.item.type group"),
    "multiple-answers": (
        "error",
        "more than one answer to an item that does not repeat",
        "R4 Questionnaire.item.repeats",
    ),
    "wrong-answer-type": (
        "error",
        "the answer's type does not fit item.type",
        "R4 Questionnaire.item.type answer types",
    ),
    "integer-for-choice": (
        "information",
        "a choice answered with its score (valueInteger) instead of the Coding; accepted",
        "fms-fhir, ordinalValue",
    ),
    "not-an-option": (
        "error",
        "a choice answer is not among the answerOptions (system and code)",
        "R4 Questionnaire.item.answerOption",
    ),
    "out-of-range": (
        "error",
        "the answer is below minValue or above maxValue",
        "R4 extensions minValue/maxValue",
    ),
    "too-long": (
        "error",
        "a text answer is longer than maxLength",
        "R4 Questionnaire.item.maxLength",
    ),
    "text-mismatch": (
        "warning",
        "item.text differs from the Questionnaire's text",
        "R4 QuestionnaireResponse.item.text",
    ),
    "required-missing": (
        "error",
        "a required item is unanswered (warning while in-progress)",
        "R4 Questionnaire.item.required",
    ),
    "disabled-answered": (
        "error",
        "an item disabled by enableWhen has an answer",
        "R4 Questionnaire.item.enableWhen",
    ),
    "authored-missing": (
        "error",
        "authored is missing: scores need a date",
        "fms-fhir (scores are dated by authored)",
    ),
    "subject-missing": (
        "warning",
        "subject is missing: R4 allows it, but scores need a patient (an error in extract)",
        "R4 QuestionnaireResponse.subject 0..1; fms-fhir (scores need a subject)",
    ),
    "subject-not-patient": (
        "warning",
        "subject is not a literal Patient reference ('Patient/<id>'): scores are about a "
        "patient (an error in extract)",
        "R4 QuestionnaireResponse.subject Reference(Any); fms-fhir (scores need a patient)",
    ),
    "subject-invalid": (
        "warning",
        "the subject identifier's system is not an absolute URI (an error in extract, whose "
        "Observations would carry it)",
        "R4 Identifier.system (uri)",
    ),
    "unknown-modifier": (
        "error",
        "a modifierExtension this adapter does not know: the response cannot be read safely",
        "R4 Extensibility: modifier extensions SHALL NOT be ignored",
    ),
    "calculated-mismatch": (
        "warning",
        "a calculated score in the response differs from this adapter's",
        "SDC calculatedExpression",
    ),
}


# FHIR issue type (OperationOutcome.issue.code) where it is not the severity's default.
ISSUE_TYPE = {
    "required-missing": "required",
    "fhir-structure": "structure",
    "not-json": "structure",
    "not-a-resource": "structure",
    "wrong-resource-type": "structure",
    "unknown-questionnaire": "not-found",
    "unknown-version": "not-found",
    "too-large": "too-long",
}
SEVERITY_TYPE = {"error": "invalid", "warning": "business-rule", "information": "informational"}


def issue(rule: str, message: str, expression: str | None, severity: str | None = None) -> Issue:
    chosen = severity or RULES[rule][0]
    code = ISSUE_TYPE.get(rule, SEVERITY_TYPE[chosen])
    return Issue(chosen, code, message, expression, rule)  # type: ignore[arg-type]  # RULES name severities


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


def rule_group_answer(q_item: Item, qr_item: Mapping[str, Any], path: str) -> Iterator[Issue]:
    # R4 Questionnaire.item.type: a group has child items, never answers
    if q_item.type in ("group", "display") and qr_item.get("answer"):
        yield issue(
            "group-answered",
            f"{q_item.link_id} is a {q_item.type} and takes no answer",
            f"{path}.answer[0]",
        )


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


def rule_answer_type(q_item: Item, key: str | None, path: str) -> Iterator[Issue]:
    # R4 Questionnaire.item.type fixes the answer's value[x] (boolean -> valueBoolean, ...)
    expected = ANSWER_KEY.get(q_item.type)
    if q_item.score is not None:
        allowed: Collection[str | None] = {"boolean": {"valueBoolean"}}.get(
            q_item.type, {"valueInteger", "valueDecimal"}
        )
    elif q_item.type == "choice":
        allowed = {"valueCoding", "valueInteger"}
    else:
        allowed = {expected}
    if key not in allowed:
        message = f"{q_item.link_id} is a {q_item.type} item and takes {expected}, got {key or 'no value'}"
        yield issue("wrong-answer-type", message, f"{path}.{key}" if key else path)


def match_coding(q_item: Item, value: Any, settings: Settings) -> AnswerOption | None:
    if not isinstance(value, Mapping):
        return None
    for option in q_item.options:
        system = option.code.system
        if value.get("code") == option.code.code and value.get("system") in (
            None,
            system or settings.codesystem_url,
        ):
            return option
    return None


def rule_value(
    q_item: Item, key: str, value: Any, path: str, settings: Settings
) -> tuple[Any, list[Issue]]:
    """The answer's plain value, checked by the same checker as answers documents and sheets.

    R4 Questionnaire.item.answerOption (a choice answer is one of the options, system and
    code); R4 extensions minValue / maxValue.
    """
    where = f"{path}.{key}"
    if q_item.score is not None or q_item.type not in ("boolean", "integer", "choice"):
        return value, []
    if key == "valueCoding":
        option = match_coding(q_item, value, settings)
        if option is None:
            shown = value.get("code") if isinstance(value, Mapping) else value
            allowed = ", ".join(f"{o.code.code} ({o.score})" for o in q_item.options)
            message = f"{q_item.link_id}: {shown!r} is not one of the options: {allowed}"
            return None, [issue("not-an-option", message, where)]
        return option, []
    plain, problem = check_value(q_item, value, where)
    if problem is not None:
        rule = "not-an-option" if q_item.type == "choice" else problem.rule or "out-of-range"
        return None, [issue(rule, problem.message, where)]
    if key == "valueInteger" and isinstance(plain, AnswerOption):
        message = f"{q_item.link_id}: answered with the score {value}; read as {plain.code.code}"
        return plain, [issue("integer-for-choice", message, where)]
    return plain, []


def rule_length(q_item: Item, key: str, value: Any, path: str) -> Iterator[Issue]:
    # R4 Questionnaire.item.maxLength
    if q_item.max_length is not None and isinstance(value, str) and len(value) > q_item.max_length:
        message = f"{q_item.link_id}: {len(value)} characters, at most {q_item.max_length}"
        yield issue("too-long", message, f"{path}.{key}")


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
        walk.issues.extend(rule_group_answer(q_item, qr_item, here))
        both = list(rule_answer_and_items(q_item, qr_item, here))
        walk.issues.extend(both)
        answers = qr_item.get("answer") or []
        if q_item.type not in ("group", "display"):
            if answers:
                walk.attempted.add(link_id)
            walk.issues.extend(rule_answer_count(q_item, answers, here))
            for answer_number, answer in enumerate(answers):
                _check_answer(walk, q_item, answer, f"{here}.answer[{answer_number}]")
        if qr_item.get("item") and not both:
            _walk_items(walk, q_item.children, qr_item["item"], here)


def _check_answer(walk: Walk, q_item: Item, answer: Mapping[str, Any], path: str) -> None:
    key, value = _value(answer)
    type_issues = list(rule_answer_type(q_item, key, path))
    walk.issues.extend(type_issues)
    if type_issues or key is None:
        return
    plain, found = rule_value(q_item, key, value, path, walk.settings)
    found += rule_length(q_item, key, value, path)
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


def resolve(
    resource: Mapping[str, Any], questionnaire_id: str | None, settings: Settings
) -> tuple[Instrument | None, list[Issue]]:
    """The Questionnaire from QuestionnaireResponse.questionnaire, or the one the caller names
    (by id, or by its canonical url, with or without `|version`)."""
    canonical = resource.get("questionnaire")
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
    resource: Any, settings: Settings, questionnaire_id: str | None = None
) -> Validated:
    """Check a parsed JSON value as a QuestionnaireResponse; never raises on bad input."""
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
    instrument, found = resolve(resource, questionnaire_id, settings)
    issues.extend(found)
    if instrument is None:
        return Validated(issues)
    items = form_items(instrument)
    index = {**instrument.item_index, **{i.link_id: i for i in items}}
    walk = Walk(instrument, index, settings)
    _walk_items(walk, items, resource.get("item") or [], ROOT)
    plain = {link_id: found[0].value for link_id, found in walk.answers.items()}
    walk.issues.extend(
        issue(i.rule or "required-missing", i.message, i.expression, i.severity)
        for i in required_issues(
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
        result.issues = issues[:MAX_ISSUES] + [
            Issue(
                "information",
                "informational",
                f"{dropped} more issues not listed",
                None,
                "truncated",
            )
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
