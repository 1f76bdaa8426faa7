"""LDN regimen document -> FHIR R4 MedicationStatement, the titration as ordered dosages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from adapter.ids import identifier, resource_id
from adapter.instrument import Code
from adapter.model import Issue, Subject
from adapter.outcome import InvalidInput
from adapter.provenance import mark_test_data
from adapter.schemas import RegimenSchema, issues_from
from adapter.settings import Settings
from adapter.terminology import coding
from mappings import ldn

_SCHEMA = RegimenSchema()
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Phase:
    """One dose over a period; `end` is the last day taken (inclusive), None while ongoing."""

    dose_mg: Decimal
    start: date
    end: date | None = None


@dataclass(frozen=True)
class Regimen:
    subject: Subject
    status: str
    reasons: tuple[Code, ...]
    form: str | None
    """None: the source does not say (a sheet's dose column); nothing is claimed."""
    timing: str | None
    """None: only the daily amount is known, not when or how often it is taken."""
    phases: tuple[Phase, ...]
    asserted: date
    note: str | None = None
    test_data: str | None = None
    cut: str | None = None
    """Why the dose history ends where it does when the source contradicts a longer one (a
    sheet row with a dose was rejected): said in the last dosage's text and in a note."""


def expand_titration(
    start_mg: Decimal,
    step_mg: Decimal,
    every_days: int,
    target_mg: Decimal,
    start: date,
    end: date | None = None,
) -> list[Phase]:
    """1.5 -> 3 -> 4.5 mg, `every_days` each; a target off the step is reached in a last, smaller step."""
    phases = []
    dose, day = start_mg, start
    while dose < target_mg:
        phases.append(Phase(dose, day, day + timedelta(days=every_days - 1)))
        day += timedelta(days=every_days)
        dose = min(dose + step_mg, target_mg)
    phases.append(Phase(target_mg, day, end))
    return phases


MAX_PHASES = 366
"""A titration expands to at most this many steps (a daily step for a year)."""


def _titration_issues(rule: Mapping[str, Any]) -> list[Issue]:
    def error(field: str, message: str, code: str) -> Issue:
        return Issue("error", "value", message, f"titration.{field}", code)

    issues: list[Issue] = []
    for name in ("start_mg", "target_mg"):
        issues.extend(i for i in dose_issues(rule[name], f"titration.{name}") if i.is_error)
    if rule["step_mg"] <= 0:
        issues.append(error("step_mg", "the step must be above 0 mg", "dose-not-positive"))
    else:
        issues.extend(i for i in dose_issues(rule["step_mg"], "titration.step_mg") if i.is_error)
    if rule["every_days"] < 1:
        issues.append(error("every_days", "a step lasts at least 1 day", "invalid-value"))
    if rule["target_mg"] < rule["start_mg"]:
        issues.append(error("target_mg", "the target is below the starting dose", "invalid-value"))
    elif not issues and (rule["target_mg"] - rule["start_mg"]) / rule["step_mg"] >= MAX_PHASES:
        message = f"this titration would take more than {MAX_PHASES} steps; check step_mg"
        issues.append(error("step_mg", message, "too-many-phases"))
    return issues


def dose_issues(dose: Decimal, where: str | None) -> list[Issue]:
    """The one check of a daily dose, for regimen documents and sheet dose cells alike.

    A dose is kept exactly as written or rejected; it is never rounded or rescaled.
    """
    if not dose.is_finite():
        return [Issue("error", "value", f"{dose} is not a dose", where, "invalid-dose")]
    # Bounded before any formatting: 1E+999999999 written out in full would take seconds.
    shown = format(dose, "f") if -12 <= dose.adjusted() <= 12 else f"{dose:.3E}"
    if dose <= 0:
        message = f"dose {shown} mg: a daily dose must be above 0 mg"
        return [Issue("error", "value", message, where, "dose-not-positive")]
    if dose > ldn.MAX_DAILY_DOSE_MG:
        message = (
            f"{shown} mg/day cannot be a low-dose naltrexone dose (above {ldn.MAX_DAILY_DOSE_MG} "
            "mg, the full-dose tablet); check the unit"
        )
        return [Issue("error", "value", message, where, "dose-implausible")]
    exponent = dose.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > ldn.MAX_DOSE_DECIMALS:
        message = (
            f"{shown} mg has more than {ldn.MAX_DOSE_DECIMALS} decimals, more than a pharmacy "
            "writes; give the dose as prescribed"
        )
        return [Issue("error", "value", message, where, "dose-too-precise")]
    if dose > ldn.LOW_DOSE_LIMIT_MG:
        message = (
            f"{shown} mg/day is above {ldn.LOW_DOSE_LIMIT_SOURCE}: no longer low-dose "
            "naltrexone as studied; check the dose"
        )
        return [Issue("warning", "business-rule", message, where, "not-low-dose")]
    return []


def phase_issues(phases: list[Phase], where: str = "phases") -> list[Issue]:
    """Doses checked, ends after starts, and phases that follow each other without overlap or gap."""
    issues = []
    for index, phase in enumerate(phases):
        place = f"{where}[{index}]"
        issues.extend(dose_issues(phase.dose_mg, f"{place}.dose_mg"))
        if phase.end is not None and phase.end < phase.start:
            message = f"ends {phase.end}, before it starts ({phase.start})"
            issues.append(Issue("error", "value", message, f"{place}.end", "end-before-start"))
        if index == 0:
            continue
        previous = phases[index - 1]
        if previous.end is None:
            message = f"{where}[{index - 1}] has no end, so only the last phase may be open"
            issues.append(
                Issue("error", "business-rule", message, f"{place}.start", "phase-overlap")
            )
        elif phase.start <= previous.end:
            message = f"starts {phase.start}, before {where}[{index - 1}] ends ({previous.end})"
            issues.append(
                Issue("error", "business-rule", message, f"{place}.start", "phase-overlap")
            )
        elif phase.start > previous.end + timedelta(days=1):
            gap = (phase.start - previous.end).days - 1
            message = (
                f"starts {phase.start}, {gap} day(s) after {where}[{index - 1}] ends "
                f"({previous.end}); record a pause as its own phase or end the regimen"
            )
            issues.append(Issue("error", "business-rule", message, f"{place}.start", "phase-gap"))
    return issues


def regimen_from_document(document: Any) -> tuple[Regimen, list[Issue]]:
    """Regimen document -> Regimen and its warnings, or InvalidInput with every error."""
    if not isinstance(document, Mapping):
        raise InvalidInput(
            [Issue("error", "structure", "a regimen is a JSON object", None, "not-an-object")]
        )
    try:
        data = _SCHEMA.load(document)
    except ValidationError as error:
        raise InvalidInput(issues_from(error)) from None
    issues: list[Issue] = []
    if data["form"] not in ldn.FORMS:
        message = f"unknown form {data['form']!r}; known: {', '.join(ldn.FORMS)}"
        issues.append(Issue("error", "code-invalid", message, "form", "unknown-form"))
    if data["timing"] not in ldn.TIMINGS:
        message = f"unknown timing {data['timing']!r}; known: {', '.join(ldn.TIMINGS)}"
        issues.append(Issue("error", "code-invalid", message, "timing", "unknown-timing"))
    if "titration" in data:
        rule = data["titration"]
        rule_issues = _titration_issues(rule)
        issues.extend(rule_issues)
        try:
            phases = [] if rule_issues else expand_titration(**rule)
        except OverflowError:
            message = "the titration runs past the end of the calendar (9999-12-31)"
            rule_issues = [Issue("error", "value", message, "titration.start", "invalid-value")]
            issues.extend(rule_issues)
            phases = []
        if phases and rule["end"] is not None and rule["end"] < phases[-1].start:
            message = f"ends {rule['end']}, before the target dose is reached ({phases[-1].start})"
            issues.append(Issue("error", "value", message, "titration.end", "end-before-start"))
        else:
            issues.extend(
                i.under("titration") for i in phase_issues(phases, "phases") if not i.is_error
            )
    elif len(data["phases"]) > MAX_PHASES:
        message = f"{len(data['phases'])} phases; a regimen holds at most {MAX_PHASES}"
        issues.append(Issue("error", "too-long", message, "phases", "too-many-phases"))
        phases = []
    else:
        phases = [Phase(p["dose_mg"], p["start"], p["end"]) for p in data["phases"]]
        issues.extend(phase_issues(phases))
    if data["reason"] is not None and not data["reason"]:
        message = "'reason' holds no coding; give at least one, or leave it out (fibromyalgia)"
        issues.append(Issue("error", "required", message, "reason", "empty-reason"))
    if any(issue.is_error for issue in issues):
        raise InvalidInput(issues)
    reasons = (
        tuple(Code(r["code"], r.get("display", r["code"]), r["system"]) for r in data["reason"])
        if data["reason"] is not None
        else ldn.FIBROMYALGIA
    )
    regimen = Regimen(
        subject=Subject.from_json(data["subject"]),
        status=data["status"],
        reasons=reasons,
        form=data["form"],
        timing=data["timing"],
        phases=tuple(phases),
        asserted=data["asserted"] or phases[-1].start,
        note=data["note"],
        test_data=data["test_data"],
    )
    return regimen, issues


def _mg(dose: Decimal) -> str:
    return format(dose.normalize(), "f")


def _quantity(dose: Decimal) -> int | float:
    """JSON has no decimal type: a whole number written without decimals stays a whole number
    (`3` is not `3.0`, whose precision FHIR reads as significant); otherwise the float whose
    shortest form is exactly the dose's digits."""
    if dose.as_tuple().exponent == 0:
        return int(dose)
    value = float(dose)
    if Decimal(repr(value)) != dose:
        raise ValueError(f"dose {dose} cannot be written exactly")
    return value


def _period(phase: Phase) -> dict[str, str]:
    period = {"start": phase.start.isoformat()}
    if phase.end is not None:
        period["end"] = phase.end.isoformat()
    return period


def _mg_quantity(dose: Decimal) -> dict[str, Any]:
    return {"value": _quantity(dose), "unit": "mg", "system": UCUM, "code": "mg"}


def _dosage(
    sequence: int, phase: Phase, regimen: Regimen, settings: Settings, last: bool
) -> dict[str, Any]:
    """A daily oral dose as R4 writes one: `doseQuantity` with a once-daily timing.

    `Dosage.doseAndRate.rate[x]` is the speed of administration (an infusion's mL/h); an LDN
    dose is a whole dose once a day, so it is a dose and a timing, whatever the source says of
    the time of day (a sheet's dose column says nothing: no `when` is claimed then).
    """
    span = f"from {phase.start}" + (f" to {phase.end}" if phase.end else ", ongoing")
    repeat: dict[str, Any] = {
        "boundsPeriod": _period(phase),
        "frequency": 1,
        "period": 1,
        "periodUnit": "d",
    }
    dosage: dict[str, Any] = {"sequence": sequence}
    if regimen.timing is None:
        dosage["text"] = f"{_mg(phase.dose_mg)} mg once a day, {span}"
    else:
        when, words = ldn.TIMINGS[regimen.timing]
        if when:
            repeat["when"] = [when]
        form = f" ({ldn.FORMS[regimen.form]})" if regimen.form else ""
        dosage["text"] = f"{_mg(phase.dose_mg)} mg by mouth {words}{form}, {span}"
    if last and regimen.cut is not None:
        dosage["text"] += f"; {regimen.cut}"
    dosage["timing"] = {"repeat": repeat}
    dosage["doseAndRate"] = [{"doseQuantity": _mg_quantity(phase.dose_mg)}]
    if regimen.form is not None:
        dosage["route"] = {"coding": [coding(ldn.ORAL_ROUTE, settings)], "text": "oral"}
    return dosage


def daily_dose_mg(dosage: Mapping[str, Any]) -> Decimal | None:
    """The daily dose of one of our dosages, whichever way it is written (readers use this)."""
    for dose_and_rate in dosage.get("doseAndRate") or []:
        quantity = dose_and_rate.get("doseQuantity") or (dose_and_rate.get("rateRatio") or {}).get(
            "numerator"
        )
        if quantity and quantity.get("value") is not None:
            value = quantity["value"]
            return value if isinstance(value, Decimal) else Decimal(repr(value))
    return None


def medication_statement_id(regimen: Regimen) -> str:
    return resource_id(
        regimen.subject.key, "ldn", regimen.phases[0].start.isoformat(), "MedicationStatement"
    )


def build_medication_statement(regimen: Regimen, settings: Settings) -> dict[str, Any]:
    """One MedicationStatement; each phase a dosage with its sequence and boundsPeriod."""
    rid = medication_statement_id(regimen)
    effective = {"start": regimen.phases[0].start.isoformat()}
    if regimen.phases[-1].end is not None:
        effective["end"] = regimen.phases[-1].end.isoformat()
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": rid,
        "identifier": [identifier(rid, settings)],
        "status": regimen.status,
        "medicationCodeableConcept": {
            "coding": [coding(ldn.NALTREXONE, settings)],
            "text": ldn.medication_text(regimen.form),
        },
        "subject": regimen.subject.fhir(),
        "effectivePeriod": effective,
        "dateAsserted": regimen.asserted.isoformat(),
        "reasonCode": [
            {
                "coding": [coding(code, settings) for code in regimen.reasons],
                "text": regimen.reasons[0].display,
            }
        ],
        "dosage": [
            _dosage(n, phase, regimen, settings, n == len(regimen.phases))
            for n, phase in enumerate(regimen.phases, 1)
        ],
    }
    notes = [text for text in (regimen.note, regimen.cut) if text]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return mark_test_data(resource, regimen.test_data)
