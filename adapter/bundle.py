"""Resources -> transaction or batch Bundle that a real server stores, and re-stores on a retry
without a duplicate.

Responses and scores are facts of one visit: conditional create (`ifNoneExist` on the
identifier). A regimen grows as phases are added, so a MedicationStatement is a conditional
update (`PUT MedicationStatement?identifier=...`), and carries no `id`: R4 lets a server refuse
an update-as-create with a client id (Medplum does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from adapter.ids import full_url, identifier_search, resource_id
from adapter.settings import Settings

BundleType = Literal["transaction", "batch"]
BUNDLE_TYPES: tuple[BundleType, ...] = ("transaction", "batch")
UPDATED_TYPES = frozenset({"MedicationStatement"})


def entry(resource: dict[str, Any], settings: Settings) -> dict[str, Any]:
    rid = resource["id"]
    kind = resource["resourceType"]
    search = identifier_search(rid, settings)
    if kind in UPDATED_TYPES:
        body = {key: value for key, value in resource.items() if key != "id"}
        return {
            "fullUrl": full_url(rid),
            "resource": body,
            "request": {"method": "PUT", "url": f"{kind}?{search}"},
        }
    return {
        "fullUrl": full_url(rid),
        "resource": resource,
        "request": {"method": "POST", "url": kind, "ifNoneExist": search},
    }


def bundle(
    resources: Iterable[dict[str, Any]],
    settings: Settings,
    bundle_type: BundleType = "transaction",
) -> dict[str, Any]:
    entries = [entry(resource, settings) for resource in resources]
    return {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", bundle_type, *(e["fullUrl"] for e in entries)),
        "type": bundle_type,
        "entry": entries,
    }
