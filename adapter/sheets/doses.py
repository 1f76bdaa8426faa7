"""A patient's LDN dose column over visits -> treatment courses -> MedicationStatements.

The dose at a visit is known from that visit on; it holds until the next visit that records
another dose. A blank or 0 dose after doses ends the course the day before that visit; a later
dose starts a new course (a new MedicationStatement), since phases of one course never leave gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapter.medication import Phase, Regimen, build_medication_statement
from adapter.model import Subject
from adapter.settings import Settings
from mappings import ldn


def courses(history: Iterable[tuple[str, Decimal | None]]) -> list[tuple[list[Phase], date]]:
    """Each course: its phases and the last visit date that speaks of it (its dateAsserted)."""
    result: list[tuple[list[Phase], date]] = []
    phases: list[Phase] = []
    asserted: date | None = None
    for day_text, dose in sorted(history, key=lambda visit: visit[0]):
        day = date.fromisoformat(day_text)
        if dose is None or dose == 0:
            if phases:
                phases[-1] = Phase(phases[-1].dose_mg, phases[-1].start, day - timedelta(days=1))
                result.append((phases, day))
                phases = []
            continue
        if phases and phases[-1].dose_mg != dose:
            phases[-1] = Phase(phases[-1].dose_mg, phases[-1].start, day - timedelta(days=1))
        if not phases or phases[-1].dose_mg != dose:
            phases.append(Phase(dose, day))
        asserted = day
    if phases and asserted is not None:
        result.append((phases, asserted))
    return result


def medication_statements(
    subject: Subject,
    history: Iterable[tuple[str, Decimal | None]],
    form: str | None,
    timing: str | None,
    settings: Settings,
    test_data: str | None = None,
) -> list[dict[str, Any]]:
    statements = []
    for phases, asserted in courses(history):
        regimen = Regimen(
            subject=subject,
            status="active" if phases[-1].end is None else "completed",
            reasons=ldn.FIBROMYALGIA,
            form=form,
            timing=timing,
            phases=tuple(phases),
            asserted=asserted,
            note="Built from the LDN dose recorded at each visit of a spreadsheet; each dose is known from the visit that records it.",
            test_data=test_data,
        )
        statements.append(build_medication_statement(regimen, settings))
    return statements
