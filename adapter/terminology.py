"""The project's own CodeSystem, generated from the instrument declarations.

It holds every local code an instrument uses (instrument, item, answer, score) plus the band
codes of Observation.interpretation, so every Coding the project emits resolves.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from adapter import __version__
from adapter.instrument import Code, Instrument, walk
from adapter.registry import instruments
from adapter.settings import CODESYSTEM_ID, Settings

# The band codes the project has always had; every other one comes from the declarations.
BANDS = {
    "none": "None",
    "normal": "Normal",
    "mild": "Mild",
    "moderate": "Moderate",
    "severe": "Severe",
    "very-severe": "Very severe",
    "positive": "Positive",
    "negative": "Negative",
}


@cache
def _coding(code: Code, settings: Settings) -> dict[str, Any]:
    return {
        "system": code.system or settings.codesystem_url,
        "code": code.code,
        "display": code.display,
    }


def coding(code: Code, settings: Settings) -> dict[str, Any]:
    """A fresh copy of a coding built once per code and settings."""
    return dict(_coding(code, settings))


def local_codes(instrument: Instrument) -> list[Code]:
    codes: list[Code] = []
    if instrument.code:
        codes.append(instrument.code)
    for item in walk(instrument.items):
        if item.code:
            codes.append(item.code)
        codes.extend(option.code for option in item.options)
    codes.extend(score.code for score in instrument.scores)
    return [code for code in codes if code.system is None]


# Observation.method: how the value came to be, so reported legacy totals can be told apart.
METHODS = {
    "computed": "Computed by fms-fhir from the item answers",
    "reported": "Reported by the source, not computed from items",
}


def method_code(reported: bool) -> Code:
    code = "reported" if reported else "computed"
    return Code(code, METHODS[code])


def bands() -> dict[str, str]:
    """Every band code of every scheme of every score, from the declarations."""
    found: dict[str, str] = {}
    for instrument in instruments().values():
        for score in instrument.scores:
            for scheme in score.schemes:
                for band in scheme.bands:
                    if found.setdefault(band.code, band.display) != band.display:
                        raise ValueError(f"band code {band.code!r} is declared with two displays")
    return found


V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
"""HL7 v3 ObservationInterpretation, the code system of R4's Observation.interpretation."""

POSITIVE = Code("POS", "Positive", V3_INTERPRETATION)
NEGATIVE = Code("NEG", "Negative", V3_INTERPRETATION)
BETTER = Code("B", "Better", V3_INTERPRETATION)
WORSE = Code("W", "Worse", V3_INTERPRETATION)

STANDARD_BANDS = {"positive": POSITIVE, "negative": NEGATIVE}
"""Band codes with a standard code of the same meaning: the interpretation carries both (the
project's band, as the contract names it, and the v3 code a clinical system understands)."""


def interpretation_codings(band: str, display: str, settings: Settings) -> list[dict[str, Any]]:
    """The codings of a band's interpretation: the project's band code, then the standard one."""
    codings = [coding(Code(band, display), settings)]
    if band in STANDARD_BANDS:
        codings.append(coding(STANDARD_BANDS[band], settings))
    return codings


def band_code(code: str) -> Code:
    return Code(code, (bands() | BANDS)[code])


def feature_codes() -> dict[str, str]:
    """Local codes of features beyond the instruments (the follow-up report's change
    Observations), declared by their packages, so every Coding they emit resolves too."""
    from adapter.report_codes import REPORT_CODES

    return dict(REPORT_CODES)


def codesystem(settings: Settings) -> dict[str, Any]:
    concepts: dict[str, dict[str, str]] = {}
    for instrument in instruments().values():
        for code in local_codes(instrument):
            known = concepts.setdefault(code.code, {"code": code.code, "display": code.display})
            if known["display"] != code.display:
                raise ValueError(f"code {code.code!r} is declared with two displays")
    for local, display in (BANDS | bands() | METHODS | feature_codes()).items():
        known = concepts.setdefault(local, {"code": local, "display": display})
        if known["display"] != display:
            raise ValueError(f"code {local!r} is declared with two displays")
    return {
        "resourceType": "CodeSystem",
        "id": CODESYSTEM_ID,
        "url": settings.codesystem_url,
        "version": __version__,
        "name": "FmsInstruments",
        "title": "fms-fhir instruments, items, scores and severity bands",
        "status": "active",
        "experimental": False,
        "publisher": "fms-fhir",
        "description": (
            "Codes of the instruments, items and scores that have no LOINC code ("
            + ", ".join(i.title for i in instruments().values())
            + "), the severity bands used in Observation.interpretation, and the codes of the "
            "follow-up report's change Observations (change from baseline, responder categories "
            "and rules)."
        ),
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": list(concepts.values()),
    }
