"""Score results -> FHIR R4 Observations (category survey, derivedFrom the response).

What is the same for every Observation of a score (its code, method texts, each band's
interpretation) is built once per score and settings and shared between the Observations:
copy a resource before changing it in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from adapter.ids import identifier, ids_under
from adapter.instrument import Instrument, Score
from adapter.links import Links
from adapter.model import Subject
from adapter.scoring import ScoreResult, wire_value
from adapter.settings import SCORE_UNIT, Settings
from adapter.terminology import coding, interpretation_codings, method_code

SURVEY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
OBSERVATION_STATUS = {
    "completed": "final",
    # R4 ObservationStatus: `corrected` is the `amended` that fixes an error in a result. Scores
    # of an amended response are recomputed from corrected answers: they are corrected, not
    # final again (docs/lifecycle.md).
    "amended": "corrected",
    "entered-in-error": "entered-in-error",
    "in-progress": "preliminary",
    "stopped": "preliminary",
}


@dataclass(frozen=True)
class _Static:
    name: str
    """The score's code, the last part of its Observation's id."""
    whole: bool
    """An integer score: its value goes on the wire as a whole number."""
    code: dict[bool, dict[str, Any]]
    """Observation.code by `reported`: the text says a total typed from a sheet is one."""
    methods: dict[bool, dict[str, Any]]
    interpretations: dict[int, list[dict[str, Any]]]
    """By the band's id(): bands are declared once, and a Band's hash (its bounds) is slow."""
    answers: dict[int, dict[str, Any]]
    """A score sent as its item's answer (`Score.answer_item`): score -> valueCodeableConcept."""


@cache
def _statics(instrument: Instrument, settings: Settings) -> dict[int, _Static]:
    """Each score's fixed parts by the score's id(): one lookup per response, not per score."""
    return {id(score): _static(score, instrument, settings) for score in instrument.scores}


def _static(score: Score, instrument: Instrument, settings: Settings) -> _Static:
    method = f"{score.method} [fms-fhir {instrument.id} {instrument.version}]"
    methods = {
        reported: {
            "coding": [coding(method_code(reported), settings)],
            "text": f"Reported by the source, not computed from items. {method}"
            if reported
            else method,
        }
        for reported in (False, True)
    }
    interpretations = {
        id(band): [
            {
                "coding": interpretation_codings(band.code, band.display, settings),
                "text": f"{band.display} ({scheme.name})",
            }
        ]
        for scheme in score.schemes
        for band in scheme.bands
    }
    codings = [coding(code, settings) for code in (score.code, *score.codings)]
    label = score.label or score.code.display
    code = {
        reported: {
            "coding": codings,
            "text": f"{label}, as reported by the source (not computed from items)"
            if reported
            else label,
        }
        for reported in (False, True)
    }
    answers: dict[int, dict[str, Any]] = {}
    if score.answer_item is not None:
        item = instrument.item_index[score.answer_item]
        answers = {
            option.score: {"coding": [coding(option.code, settings)], "text": option.code.display}
            for option in item.options
        }
    return _Static(
        score.code.code, score.value_type == "integer", code, methods, interpretations, answers
    )


def build_observations(
    results: list[ScoreResult],
    instrument: Instrument,
    subject: Subject,
    authored: str,
    response_status: str,
    derived_from: dict[str, Any] | None,
    links: Links,
    made: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """One Observation per score; totals reference their parts in hasMember. A score declared
    `emit="when-computed"` (a flag) has an Observation only when it has a value. `made`: the
    response's `ids_under(subject.key, instrument.id, authored)` when the caller has it."""
    results = [r for r in results if r.value is not None or r.score.emit == "always"]
    settings = links.settings
    statics = _statics(instrument, settings)
    fixed = [statics[id(r.score)] for r in results]
    # An Observation's id is resource_id(subject, instrument, date, code): the prefix hashed once.
    made = made or ids_under(subject.key, instrument.id, authored)
    ids = {static.name: made(static.name) for static in fixed}
    status = OBSERVATION_STATUS.get(response_status, "final")
    subject_reference = subject.fhir()
    observations = []
    for (score, raw, missing_reason, band, reported), static in zip(results, fixed, strict=True):
        oid = ids[static.name]
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": oid,
            "identifier": [identifier(oid, settings)],
            "status": status,
            "category": [SURVEY],
            "code": static.code[reported],
            "subject": subject_reference,
            "effectiveDateTime": authored,
        }
        if raw is None:
            observation["dataAbsentReason"] = {
                "coding": [{"system": DATA_ABSENT_SYSTEM, "code": "unknown", "display": "Unknown"}],
                "text": missing_reason or "not computed",
            }
        elif raw.__class__ is bool:
            observation["valueBoolean"] = raw
        elif static.answers and int(raw) in static.answers:
            observation["valueCodeableConcept"] = static.answers[int(raw)]
        else:
            value = int(raw) if static.whole else wire_value(score, raw)
            observation["valueQuantity"] = {"value": value, **SCORE_UNIT}
        if band is not None:
            observation["interpretation"] = static.interpretations[id(band)]
        observation["method"] = static.methods[reported]
        if derived_from:
            observation["derivedFrom"] = [derived_from]
        if score.members:
            members = [ids[code] for code in score.members if code in ids]
            if members:
                observation["hasMember"] = [links.to("Observation", member) for member in members]
        observations.append(observation)
        if score.alert and band is not None and band.code == "positive":
            observations.append(
                flag_resource(score, observation, made(f"{static.name}-flag"), links)
            )
    return observations


FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
FLAG_STATUS = {"entered-in-error": "entered-in-error"}
"""Flag.status from the Observation's status: active, unless the response was withdrawn."""


def flag_resource(
    score: Score, observation: dict[str, Any], fid: str, links: Links
) -> dict[str, Any]:
    """A FHIR Flag beside a raised flag Observation (`Score.alert`): what a clinical system
    routes to a worklist or shows on opening the record. It stays `active` until a clinician
    sets it `inactive` after review; `flag-detail` points to the Observation with the answer."""
    return {
        "resourceType": "Flag",
        "id": fid,
        "identifier": [identifier(fid, links.settings)],
        "extension": [
            {"url": FLAG_DETAIL, "valueReference": links.to("Observation", observation["id"])}
        ],
        "status": FLAG_STATUS.get(observation["status"], "active"),
        "category": [
            {"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}
        ],
        "code": {"coding": observation["code"]["coding"], "text": score.alert},
        "subject": observation["subject"],
        "period": {"start": observation["effectiveDateTime"]},
    }
