"""A patient's LDN dose column over visits -> treatment courses -> MedicationStatements.

The dose at a visit is known from that visit on; it holds until the next visit that records
another dose. A blank or 0 dose after doses ends the course the day before that visit; a later
dose starts a new course (a new MedicationStatement), since phases of one course never leave gaps.

A rejected row that holds a dose is not a stretched dose: what the sheet says there could not be
used, so the history cannot claim the earlier dose went on through it. The course ends at the
last accepted visit before that row (status `unknown`: whether it went on is not known), says
why, and a later dose starts a new course; the follow-up report shows the gap between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapter.medication import Phase, Regimen, build_medication_statement
from adapter.model import Subject
from adapter.settings import Settings
from mappings import ldn


@dataclass(frozen=True)
class Rejected:
    """A rejected row that held a dose: its number, for the statement to name."""

    row: int


Dose = Decimal | Rejected | None
"""At a visit: the dose, a rejected row's unusable dose, or none (blank or 0 ends a course)."""


@dataclass(frozen=True)
class Course:
    phases: list[Phase]
    asserted: date
    """The last visit date that speaks of it (its dateAsserted)."""
    cut: str | None = None
    """Why it ends where it does, when a rejected row ended it."""


NOTE = (
    "Built from the LDN dose recorded at each visit of a spreadsheet; each dose is known from "
    "the visit that records it."
)


def _order(visit: tuple[str, Dose]) -> tuple[str, int]:
    """By day; an accepted visit before a rejected row of the same day (it wins)."""
    return visit[0], isinstance(visit[1], Rejected)


def courses(history: Iterable[tuple[str, Dose]]) -> list[Course]:
    """The courses of one patient, in order."""
    result: list[Course] = []
    phases: list[Phase] = []
    asserted: date | None = None
    accepted: set[str] = set()
    for day_text, dose in sorted(history, key=_order):
        day = date.fromisoformat(day_text)
        if isinstance(dose, Rejected):
            if day_text in accepted or not phases or asserted is None:
                continue
            last = phases[-1]
            phases[-1] = Phase(last.dose_mg, last.start, asserted)
            cut = (
                f"the dose after {asserted} is not known: row {dose.row} ({day_text}) gives a "
                "dose but was rejected (see the row report)"
            )
            result.append(Course(phases, asserted, cut))
            phases = []
            continue
        accepted.add(day_text)
        if dose is None or dose == 0:
            if phases:
                phases[-1] = Phase(phases[-1].dose_mg, phases[-1].start, day - timedelta(days=1))
                result.append(Course(phases, day))
                phases = []
            continue
        if phases and phases[-1].dose_mg != dose:
            phases[-1] = Phase(phases[-1].dose_mg, phases[-1].start, day - timedelta(days=1))
        if not phases or phases[-1].dose_mg != dose:
            phases.append(Phase(dose, day))
        asserted = day
    if phases and asserted is not None:
        result.append(Course(phases, asserted))
    return result


def _status(course: Course) -> str:
    if course.cut is not None:
        return "unknown"
    return "active" if course.phases[-1].end is None else "completed"


def medication_statements(
    subject: Subject,
    history: Iterable[tuple[str, Dose]],
    form: str | None,
    timing: str | None,
    settings: Settings,
    test_data: str | None = None,
) -> list[dict[str, Any]]:
    statements = []
    for course in courses(history):
        regimen = Regimen(
            subject=subject,
            status=_status(course),
            reasons=ldn.FIBROMYALGIA,
            form=form,
            timing=timing,
            phases=tuple(course.phases),
            asserted=course.asserted,
            note=NOTE,
            test_data=test_data,
            cut=course.cut,
        )
        statements.append(build_medication_statement(regimen, settings))
    return statements
