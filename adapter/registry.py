"""Instruments by id and by canonical url; every module in `mappings/` with an INSTRUMENT counts."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import mappings
from adapter.instrument import Instrument, Score
from adapter.settings import Settings


@cache
def instruments() -> dict[str, Instrument]:
    """Discovered once: adding an instrument means adding one module, nothing else."""
    found: dict[str, Instrument] = {}
    for module_info in sorted(pkgutil.iter_modules(mappings.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mappings.{module_info.name}")
        instrument = getattr(module, "INSTRUMENT", None)
        if isinstance(instrument, Instrument):
            if instrument.id in found:
                raise ValueError(f"two mappings declare instrument {instrument.id!r}")
            found[instrument.id] = instrument
    return dict(sorted(found.items(), key=lambda pair: (pair[1].rank, pair[0])))


def check_band_schemes(pairs: tuple[tuple[str, str], ...]) -> None:
    """Every (score code, scheme id) names a declared scheme; else a ValueError that says which.
    Called where the configuration is built (`adapter.config`), not by Settings, so that
    settings imports nothing of the project."""
    scores = {s.code.code: s for i in instruments().values() for s in i.scores}
    for code, scheme_id in pairs:
        score = scores.get(code)
        if score is None:
            raise ValueError(f"{code!r} is not a score code")
        if score.scheme(scheme_id) is None or (scheme_id and not score.schemes):
            known = ", ".join(s.id for s in score.schemes) or "none"
            raise ValueError(f"{code} has no band scheme {scheme_id!r}; known: {known}")


def scores() -> dict[str, Score]:
    """Every declared Score by its code, in registry order; a score that several instruments
    share (the WPI in wpi, fm2016 and fm2011) is the same declaration, listed once."""
    found: dict[str, Score] = {}
    for instrument in instruments().values():
        for score in instrument.scores:
            if found.setdefault(score.code.code, score) is not score:
                raise ValueError(f"two declarations of score {score.code.code!r}")
    return found


def get(instrument_id: str) -> Instrument | None:
    return instruments().get(instrument_id)


def by_canonical(canonical: str, settings: Settings) -> tuple[Instrument | None, str | None]:
    """Resolve `url` or `url|version`; returns the instrument and the version asked for."""
    url, _, version = canonical.partition("|")
    for instrument in instruments().values():
        if settings.questionnaire_url(instrument.id) == url:
            return instrument, version or None
    return None, version or None
