"""Resources -> transaction Bundle with conditional creates, so a retried post duplicates nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.ids import URI_SYSTEM, full_url, resource_id


def transaction(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for resource in resources:
        rid = resource["id"]
        entries.append(
            {
                "fullUrl": full_url(rid),
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": resource["resourceType"],
                    "ifNoneExist": f"identifier={URI_SYSTEM}|urn:uuid:{rid}",
                },
            }
        )
    return {
        "resourceType": "Bundle",
        "id": resource_id("Bundle", *(entry["fullUrl"] for entry in entries)),
        "type": "transaction",
        "entry": entries,
    }
