"""Resources -> transaction or batch Bundle that a real server stores, and re-stores on a retry
without a duplicate.

Responses and scores are facts of one visit: conditional create (`ifNoneExist` on the
identifier). A regimen grows as phases are added, so a MedicationStatement is a conditional
update (`PUT MedicationStatement?identifier=...`), and carries no `id`: R4 lets a server refuse
an update-as-create with a client id (Medplum does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson

from adapter.ids import full_url, identifier_search, resource_id
from adapter.settings import Settings

BundleType = Literal["transaction", "batch"]
BUNDLE_TYPES: tuple[BundleType, ...] = ("transaction", "batch")
Format = Literal["transaction", "patient", "ndjson"]
FORMATS: tuple[Format, ...] = ("transaction", "patient", "ndjson")
"""Layouts of a sheet's output: a Bundle per visit, a Bundle per patient, or Bulk Data NDJSON."""
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


def bundle_id(bundle_type: str, resource_ids: Iterable[str]) -> str:
    """Deterministic, from the entries in order; computable in one pass over a stream."""
    digest = hashlib.sha256()
    for rid in resource_ids:
        digest.update(rid.encode() + b"\n")
    return resource_id("Bundle", bundle_type, digest.hexdigest())


def bundle(
    resources: Iterable[dict[str, Any]],
    settings: Settings,
    bundle_type: BundleType = "transaction",
) -> dict[str, Any]:
    entries = [entry(resource, settings) for resource in resources]
    return {
        "resourceType": "Bundle",
        "id": bundle_id(bundle_type, (e["fullUrl"] for e in entries)),
        "type": bundle_type,
        "entry": entries,
    }


def write_bundle(
    resources: Callable[[], Iterable[dict[str, Any]]],
    settings: Settings,
    bundle_type: BundleType,
    write: Callable[[bytes], Any],
) -> None:
    """The same Bundle as `bundle`, written entry by entry: memory holds one resource at a time.

    `resources` is called twice (the id is derived from every entry, and comes first).
    """
    rid = bundle_id(bundle_type, (full_url(r["id"]) for r in resources()))
    head = {"resourceType": "Bundle", "id": rid, "type": bundle_type}
    write(orjson.dumps(head)[:-1] + b',"entry":[\n')
    for number, resource in enumerate(resources()):
        write((b",\n" if number else b"") + orjson.dumps(entry(resource, settings)))
    write(b"\n]}\n")
