"""The same-output baseline: the floor `fms-fhir convert-sheet --format ndjson` is measured against.

    .venv/bin/python benchmarks/baseline_sheet.py FILE --format ndjson --out DIR

A plain Python program for canonical-template sheets whose rows are valid (it checks nothing):
it reads the same file (the csv module; openpyxl read-only for XLSX) and writes the same NDJSON
files (QuestionnaireResponse, Observation, MedicationStatement) with the same resources and
fields: item texts, codings, values, scores with their interpretation (band and scheme named),
method, identifiers, relative references, LDN courses. Every part that is the same on every row
(codings, item texts, band fragments, method texts, category, unit) is built once at start-up
from the instrument declarations (`mappings/`, read through `adapter.registry`); per row only
the values, ids and dates change. The scores (sums, prorating, bands, rounding) are computed here
in integer arithmetic, ids are uuid5 as the core makes them, and every resource is one
`orjson.dumps`. No conversion code of the core runs, neither at start-up nor per row. Which
instruments a row makes is read once, from the first row (the rule of docs/sheets.md: those with
answered items, less any whose items lie inside another's, the first of those with the same
items); a sheet whose rows make an instrument this program does not know stops it at start-up.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import uuid
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from adapter import registry
from adapter.config import from_environ
from adapter.ids import NAMESPACE
from adapter.settings import Settings
from mappings import ldn

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
TRUE_WORDS = frozenset({"x", "ja", "j", "yes", "y", "true", "wahr", "1", "oui", "si", "sí", "✓"})
DOSE_NOTE = (
    "Built from the LDN dose recorded at each visit of a spreadsheet; each dose is known from "
    "the visit that records it."
)
APPEND = orjson.OPT_APPEND_NEWLINE
BUFFER = 1 << 20
"""The write buffer fms-fhir's NDJSON writer uses: the two programs make the same system calls."""
dumps = orjson.dumps


class Fragments:
    """Everything that is the same on every row, built once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codesystem = settings.codesystem_url
        self.id_system = settings.identifier_system
        self.patient_system = settings.patient_system
        self.survey = [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ]
        self.instruments = {i.id: i for i in registry.instruments().values()}
        computed = self.coding_of("computed", "Computed by fms-fhir from the item answers")
        self.questionnaire: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self.code: dict[str, dict[str, Any]] = {}
        self.method: dict[str, dict[str, Any]] = {}
        self.bands: dict[str, list[tuple[int | None, int | None, list[dict[str, Any]]]]] = {}
        self.options: dict[str, dict[int, dict[str, Any]]] = {}
        for instrument in self.instruments.values():
            self.questionnaire[instrument.id] = (
                f"{settings.questionnaire_url(instrument.id)}|{instrument.version}"
            )
            for link_id, item in instrument.item_index.items():
                self.text[link_id] = item.text
                if item.options:
                    self.options[link_id] = {
                        option.score: self.coding(option.code) for option in item.options
                    }
            for score in instrument.scores:
                code = score.code.code
                self.code[code] = {"coding": [self.coding(score.code)], "text": score.code.display}
                self.method[f"{instrument.id} {code}"] = {
                    "coding": [computed],
                    "text": f"{score.method} [fms-fhir {instrument.id} {instrument.version}]",
                }
                scheme = score.scheme(settings.schemes.get(code))
                if scheme is not None:
                    self.bands[code] = [
                        (
                            band.low,
                            band.high,
                            [
                                {
                                    "coding": [self.coding_of(band.code, band.display)],
                                    "text": f"{band.display} ({scheme.name})",
                                }
                            ],
                        )
                        for band in scheme.bands
                    ]
        self.medication = {
            "coding": [self.coding(ldn.NALTREXONE)],
            "text": "Low-dose naltrexone (LDN)",
        }
        self.reason = [
            {
                "coding": [self.coding(code) for code in ldn.FIBROMYALGIA],
                "text": ldn.FIBROMYALGIA[0].display,
            }
        ]
        self.note = [{"text": DOSE_NOTE}]

    def coding(self, code: Any) -> dict[str, Any]:
        return {
            "system": code.system or self.codesystem,
            "code": code.code,
            "display": code.display,
        }

    def coding_of(self, code: str, display: str) -> dict[str, Any]:
        return {"system": self.codesystem, "code": code, "display": display}

    def band(self, code: str, value: int, scale: int = 1) -> list[dict[str, Any]] | None:
        """The interpretation of value/scale: bands are half-open [low, high), compared exactly."""
        for low, high, fragment in self.bands.get(code, ()):
            if (low is None or value >= low * scale) and (high is None or value < high * scale):
                return fragment
        return None


def hundredths(numerator: int, denominator: int) -> float:
    """numerator/denominator rounded half up to 2 places (values are never negative here)."""
    return (200 * numerator + denominator) // (2 * denominator) / 100


def present_instruments(
    instruments: dict[str, Any], where: dict[str, int], cells: list[Any]
) -> list[str]:
    """Which instruments a row makes, read once from the first row (every row of the sheets
    this baseline reads fills the same columns): those with an answered item, less any whose
    items are all inside another one's (WPI and SSS inside the fm2016 survey); of instruments
    with the same items (fm2016 and fm2011), the first in the registry's order."""
    filled = {
        name
        for name, index in where.items()
        if index < len(cells) and cells[index] is not None and str(cells[index]).strip()
    }
    items = {
        key: {item.link_id for item in instrument.answerable_items()}
        for key, instrument in instruments.items()
    }
    answered = [key for key in instruments if items[key] & filled]
    return [
        key
        for n, key in enumerate(answered)
        if not any(items[key] < items[other] for other in answered)
        and not any(items[key] == items[other] for other in answered[:n])
    ]


KNOWN = ("fm2016", "fm2011", "fiqr", "phq4", "pain-nrs")
"""The instruments whose scores this baseline computes itself."""


class Converter:
    def __init__(
        self, fragments: Fragments, header: list[str], first: list[Any], out: Path
    ) -> None:
        self.f = fragments
        where = {name.strip(): index for index, name in enumerate(header)}
        self.patient = where["patient_id"]
        self.visit = where["visit_date"]
        self.dose = where.get("ldn_dose_mg")
        self.present = present_instruments(fragments.instruments, where, first)
        unknown = [key for key in self.present if key not in KNOWN]
        if unknown:
            raise SystemExit(
                f"baseline: these rows make {', '.join(unknown)}, which "
                "benchmarks/baseline_sheet.py does not write yet"
            )
        # Per instrument, its scores in declared order with the members each total lists.
        self.scores = {
            key: [(score.code.code, score.members) for score in fragments.instruments[key].scores]
            for key in self.present
        }
        fm2016 = fragments.instruments["fm2016"]
        self.wpi_group, self.sss_group, _ = fm2016.items
        self.wpi = [
            (item.link_id, item.text, where[item.link_id]) for item in self.wpi_group.children
        ]
        self.sss = [
            (item.link_id, item.text, where[item.link_id], item.type == "choice")
            for item in self.sss_group.children
        ]
        wpi_position = {link_id: n for n, (link_id, _, _) in enumerate(self.wpi)}
        regions = fm2016.score("gp-regions").formula.regions
        self.regions = [[wpi_position[link_id] for link_id in region] for region in regions]
        self.duration = (
            "fm-duration-3m",
            fragments.text["fm-duration-3m"],
            where["fm-duration-3m"],
        )
        self.fiqr = [
            (item.link_id, item.text, where[item.link_id])
            for item in fragments.instruments["fiqr"].items
        ]
        self.phq4 = [
            (item.link_id, item.text, where[item.link_id])
            for item in fragments.instruments["phq4"].items
        ]
        self.pain = [
            (item.link_id, item.text, where[item.link_id])
            for item in fragments.instruments["pain-nrs"].items
        ]
        self.subjects: dict[str, tuple[str, dict[str, Any]]] = {}
        self.doses: dict[str, tuple[array, list[float | None]]] = {}
        self.counts = {"QuestionnaireResponse": 0, "Observation": 0, "MedicationStatement": 0}
        out.mkdir(parents=True, exist_ok=True)
        self.qr_file = open(out / "QuestionnaireResponse.ndjson", "wb", buffering=BUFFER)  # noqa: SIM115
        self.obs_file = open(out / "Observation.ndjson", "wb", buffering=BUFFER)  # noqa: SIM115
        self.out = out

    def close(self) -> None:
        self.qr_file.close()
        self.obs_file.close()

    # --- pieces ------------------------------------------------------------------------------

    def subject(self, patient: str) -> tuple[str, dict[str, Any]]:
        known = self.subjects.get(patient)
        if known is None:
            system = self.f.patient_system
            key = dumps(["identifier", system, patient]).decode()
            known = (key, {"identifier": {"system": system, "value": patient}})
            self.subjects[patient] = known
        return known

    def emit(
        self,
        instrument: str,
        key: str,
        subject: dict[str, Any],
        authored: str,
        items: list[dict[str, Any]],
        values: dict[str, tuple[Any, int, int]],
    ) -> None:
        """The response and one Observation per declared score; `values`: code -> (value on
        the wire, exact value as numerator and denominator for its band)."""

        def rid(code: str) -> str:
            return str(uuid.uuid5(NAMESPACE, dumps((key, instrument, authored, code)).decode()))

        qid = rid("QuestionnaireResponse")
        self.qr_file.write(
            dumps(
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": qid,
                    "identifier": {"system": self.f.id_system, "value": qid},
                    "questionnaire": self.f.questionnaire[instrument],
                    "status": "completed",
                    "subject": subject,
                    "authored": authored,
                    "item": items,
                },
                option=APPEND,
            )
        )
        derived = [{"reference": f"QuestionnaireResponse/{qid}"}]
        scores = self.scores[instrument]
        ids = {code: rid(code) for code, _ in scores}
        write = self.obs_file.write
        for code, members in scores:
            value, numerator, denominator = values[code]
            oid = ids[code]
            resource: dict[str, Any] = {
                "resourceType": "Observation",
                "id": oid,
                "identifier": [{"system": self.f.id_system, "value": oid}],
                "status": "final",
                "category": self.f.survey,
                "code": self.f.code[code],
                "subject": subject,
                "effectiveDateTime": authored,
            }
            if value is True or value is False:
                resource["valueBoolean"] = value
            else:
                resource["valueQuantity"] = {
                    "value": value,
                    "unit": "{score}",
                    "system": UCUM,
                    "code": "{score}",
                }
                interpretation = self.f.band(code, numerator, denominator)
                if interpretation is not None:
                    resource["interpretation"] = interpretation
            resource["method"] = self.f.method[f"{instrument} {code}"]
            resource["derivedFrom"] = derived
            if members:
                resource["hasMember"] = [
                    {"reference": f"Observation/{ids[member]}"}
                    for member in members
                    if member in ids
                ]
            write(dumps(resource, option=APPEND))
        self.counts["QuestionnaireResponse"] += 1
        self.counts["Observation"] += len(scores)

    # --- one row -----------------------------------------------------------------------------

    def row(self, cells: list[Any]) -> None:
        patient = str(cells[self.patient]).strip()
        raw_date = cells[self.visit]
        authored = (
            raw_date.date().isoformat()
            if isinstance(raw_date, datetime)
            else raw_date.isoformat()
            if isinstance(raw_date, date)
            else raw_date.strip()
        )
        key, subject = self.subject(patient)
        present = self.present
        options = self.f.options

        def yes(value: Any) -> bool:
            return value if value is True or value is False else value.strip().lower() in TRUE_WORDS

        if "fm2016" in present or "fm2011" in present:
            # The fm2016 survey (and fm2011, the same items judged by the 2010/2011 rule).
            areas = [yes(cells[index]) for _, _, index in self.wpi]
            sss_items = []
            sss = 0
            for link_id, text, index, choice in self.sss:
                if choice:
                    level = int(cells[index])
                    sss += level
                    answer = {"valueCoding": options[link_id][level]}
                else:
                    flag = yes(cells[index])
                    sss += flag
                    answer = {"valueBoolean": flag}
                sss_items.append({"linkId": link_id, "text": text, "answer": [answer]})
            link_id, text, index = self.duration
            duration = yes(cells[index])
            items = [
                {
                    "linkId": "wpi",
                    "text": self.wpi_group.text,
                    "item": [
                        {"linkId": link_id, "text": text, "answer": [{"valueBoolean": value}]}
                        for (link_id, text, _), value in zip(self.wpi, areas, strict=True)
                    ],
                },
                {"linkId": "sss", "text": self.sss_group.text, "item": sss_items},
                {"linkId": link_id, "text": text, "answer": [{"valueBoolean": duration}]},
            ]
            wpi = sum(areas)
            regions = sum(1 for region in self.regions if any(areas[n] for n in region))
            values = {
                "wpi-score": (wpi, wpi, 1),
                "gp-regions": (regions, regions, 1),
                "sss-score": (sss, sss, 1),
                "fs-score": (wpi + sss, wpi + sss, 1),
                "acr2016-criteria": (
                    bool(
                        ((wpi >= 7 and sss >= 5) or (4 <= wpi <= 6 and sss >= 9))
                        and regions >= 4
                        and duration
                    ),
                    0,
                    1,
                ),
                "acr2011-criteria": (
                    bool(((wpi >= 7 and sss >= 5) or (3 <= wpi <= 6 and sss >= 9)) and duration),
                    0,
                    1,
                ),
            }
            for instrument in ("fm2016", "fm2011"):
                if instrument in present:
                    self.emit(instrument, key, subject, authored, items, values)

        if "fiqr" in present:
            # 21 items; the function domain prorated over answered items, the total banded
            # on its exact value.
            answers = [
                None if cells[index] is None or cells[index] == "" else int(cells[index])
                for _, _, index in self.fiqr
            ]
            answered_function = [value for value in answers[:9] if value is not None]
            answered = len(answered_function)  # one function item may be blank: prorated
            function_sum = sum(answered_function)
            overall_sum, symptom_sum = sum(answers[9:11]), sum(answers[11:])
            # Exact fractions as integer pairs: function = sum x 9/answered / 3 = 3 x sum /
            # answered; total = function + overall + symptoms / 2, over 2 x answered.
            denominator = 2 * answered
            total = 6 * function_sum + overall_sum * denominator + symptom_sum * answered
            self.emit(
                "fiqr",
                key,
                subject,
                authored,
                [
                    {"linkId": link_id, "text": text, "answer": [{"valueInteger": value}]}
                    for (link_id, text, _), value in zip(self.fiqr, answers, strict=True)
                    if value is not None
                ],
                {
                    "fiqr-function": (
                        hundredths(3 * function_sum, answered),
                        3 * function_sum,
                        answered,
                    ),
                    "fiqr-overall": (hundredths(overall_sum, 1), overall_sum, 1),
                    "fiqr-symptoms": (hundredths(symptom_sum, 2), symptom_sum, 2),
                    "fiqr-total": (hundredths(total, denominator), total, denominator),
                },
            )

        if "phq4" in present:
            # LOINC answers; GAD-2, PHQ-2 and the total, each banded.
            levels = [int(cells[index]) for _, _, index in self.phq4]
            anxiety, depression = levels[0] + levels[1], levels[2] + levels[3]
            self.emit(
                "phq4",
                key,
                subject,
                authored,
                [
                    {
                        "linkId": link_id,
                        "text": text,
                        "answer": [{"valueCoding": options[link_id][level]}],
                    }
                    for (link_id, text, _), level in zip(self.phq4, levels, strict=True)
                ],
                {
                    "phq4-anxiety": (anxiety, anxiety, 1),
                    "55758-7": (depression, depression, 1),
                    "70272-0": (anxiety + depression, anxiety + depression, 1),
                },
            )

        if "pain-nrs" in present:
            # Two ratings, each its own score.
            ratings = [int(cells[index]) for _, _, index in self.pain]
            self.emit(
                "pain-nrs",
                key,
                subject,
                authored,
                [
                    {"linkId": link_id, "text": text, "answer": [{"valueInteger": value}]}
                    for (link_id, text, _), value in zip(self.pain, ratings, strict=True)
                ],
                {
                    link_id: (value, value, 1)
                    for (link_id, _, _), value in zip(self.pain, ratings, strict=True)
                },
            )

        if self.dose is not None:
            raw = cells[self.dose]
            dose = None if raw is None or raw == "" else float(raw)
            days, doses = self.doses.setdefault(patient, (array("i"), []))
            days.append(date.fromisoformat(authored).toordinal())
            doses.append(dose)

    # --- LDN courses, after the last row -----------------------------------------------------

    def medication_statements(self) -> None:
        with open(self.out / "MedicationStatement.ndjson", "wb") as handle:
            for patient in sorted(self.doses):
                days, doses = self.doses[patient]
                key, subject = self.subject(patient)
                phases: list[list[Any]] = []
                asserted = None
                for day, dose in sorted(zip(days, doses, strict=True), key=lambda v: v[0]):
                    if dose is None or dose == 0:
                        if phases:
                            phases[-1][2] = day - 1
                            handle.write(self.statement(key, subject, phases, day))
                            phases = []
                        continue
                    if phases and phases[-1][0] != dose:
                        phases[-1][2] = day - 1
                    if not phases or phases[-1][0] != dose:
                        phases.append([dose, day, None])
                    asserted = day
                if phases and asserted is not None:
                    handle.write(self.statement(key, subject, phases, asserted))

    def statement(self, key: str, subject: dict, phases: list[list[Any]], asserted: int) -> bytes:
        self.counts["MedicationStatement"] += 1
        start = date.fromordinal(phases[0][1]).isoformat()
        sid = str(uuid.uuid5(NAMESPACE, dumps((key, "ldn", start, "MedicationStatement")).decode()))
        effective = {"start": start}
        if phases[-1][2] is not None:
            effective["end"] = date.fromordinal(phases[-1][2]).isoformat()
        dosages = []
        for sequence, (dose, first, last) in enumerate(phases, 1):
            begin = date.fromordinal(first).isoformat()
            period = {"start": begin}
            if last is not None:
                period["end"] = date.fromordinal(last).isoformat()
            span = f"from {begin}" + (f" to {period['end']}" if last is not None else ", ongoing")
            mg = repr(dose).removesuffix(".0")
            whole = int(dose) if dose == int(dose) else dose  # a dose goes out as written
            dosages.append(
                {
                    "sequence": sequence,
                    "text": f"{mg} mg once a day, {span}",
                    "timing": {
                        "repeat": {
                            "boundsPeriod": period,
                            "frequency": 1,
                            "period": 1,
                            "periodUnit": "d",
                        }
                    },
                    "doseAndRate": [
                        {
                            "doseQuantity": {
                                "value": whole,
                                "unit": "mg",
                                "system": UCUM,
                                "code": "mg",
                            }
                        }
                    ],
                }
            )
        return dumps(
            {
                "resourceType": "MedicationStatement",
                "id": sid,
                "identifier": [{"system": self.f.id_system, "value": sid}],
                "status": "active" if phases[-1][2] is None else "completed",
                "medicationCodeableConcept": self.f.medication,
                "subject": subject,
                "effectivePeriod": effective,
                "dateAsserted": date.fromordinal(asserted).isoformat(),
                "reasonCode": self.f.reason,
                "dosage": dosages,
                "note": self.f.note,
            },
            option=APPEND,
        )


@contextmanager
def sheet_rows(path: Path) -> Iterator[tuple[list[str], Iterator[list[Any]]]]:
    """(header, rows): the csv module for CSV, openpyxl read-only for XLSX."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            rows = workbook.worksheets[0].iter_rows(values_only=True)
            header = [str(cell) if cell is not None else "" for cell in next(rows)]
            yield header, rows
        finally:
            workbook.close()
    else:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            yield next(reader), reader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=["ndjson"], default="ndjson")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    fragments = Fragments(from_environ(os.environ).settings)
    rows_read = 0
    with sheet_rows(args.file) as (header, rows):
        first = next(rows, None)
        if first is None:
            raise SystemExit(f"baseline: {args.file} has no rows")
        converter = Converter(fragments, header, list(first), args.out)
        try:
            converter.row(first)
            rows_read += 1
            for cells in rows:
                converter.row(cells)
                rows_read += 1
        finally:
            converter.close()
    converter.medication_statements()
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(converter.counts.items()))
    print(f"{args.file.name}: rows read {rows_read}; resources: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
