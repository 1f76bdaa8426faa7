"""Resources -> transaction Bundle, idempotent: a retried post duplicates nothing.

Responses and scores are facts of one visit: conditional create (`ifNoneExist`). A regimen grows
as phases are added, so a MedicationStatement is a conditional update (PUT on its identifier):
posting the longer regimen replaces the shorter one instead of being skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.ids import URI_SYSTEM, full_url, resource_id

UPDATED_TYPES = frozenset({"MedicationStatement"})


def request(resource: dict[str, Any]) -> dict[str, str]:
    search = f"identifier={URI_SYSTEM}|urn:uuid:{resource['id']}"
    if resource["resourceType"] in UPDATED_TYPES:
        return {"method": "PUT", "url": f"{resource['resourceType']}?{search}"}
    return {"method": "POST", "url": resource["resourceType"], "ifNoneExist": search}


def transaction(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [
        {"fullUrl": full_url(resource["id"]), "resource": resource, "request": request(resource)}
        for resource in resources
    ]
    return {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", *(entry["fullUrl"] for entry in entries)),
        "type": "transaction",
        "entry": entries,
    }
