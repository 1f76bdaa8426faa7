"""Test data says so: example or synthetic input marks every resource made from it.

`meta.security` carries HTEST (test health data, HL7 v3 ActReason), which servers and
downstream tools use to keep such data out of care and statistics; the resource's narrative
(`text`, shown by every FHIR viewer) says in words what in it is invented.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

HTEST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}
MAX_NOTE = 2000


@lru_cache(maxsize=64)
def _narrative(note: str) -> str:
    return (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Test data.</b> '
        f"{escape(note[:MAX_NOTE])}</p></div>"
    )


def mark_test_data(resource: dict[str, Any], note: str | None) -> dict[str, Any]:
    """The resource, tagged as test data with `note` as its narrative; unchanged when None.

    Marked in place (key order means nothing in FHIR JSON); the narrative is built once a note.
    """
    if note is None:
        return resource
    meta = resource.setdefault("meta", {})
    meta["security"] = [*meta.get("security", ()), dict(HTEST)]
    resource["text"] = {"status": "additional", "div": _narrative(note)}
    return resource
