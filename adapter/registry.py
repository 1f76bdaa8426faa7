"""Instruments by id and by canonical url; every module in `mappings/` with an INSTRUMENT counts."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import mappings
from adapter.instrument import Instrument
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


def get(instrument_id: str) -> Instrument | None:
    return instruments().get(instrument_id)


def by_canonical(canonical: str, settings: Settings) -> tuple[Instrument | None, str | None]:
    """Resolve `url` or `url|version`; returns the instrument and the version asked for."""
    url, _, version = canonical.partition("|")
    for instrument in instruments().values():
        if settings.questionnaire_url(instrument.id) == url:
            return instrument, version or None
    return None, version or None
