"""Resources -> transaction or batch Bundle that a server applies as "create if absent, update
if changed, nothing if equal".

Every entry is a conditional update on the resource's identifier
(`PUT <Type>?identifier=<system>|<id>`): the first post creates the resource, a correction (a
re-exported sheet, an `amended` response, a longer regimen) replaces it with one new version
under the same server id, and a retry of the same content changes nothing (HAPI, Medplum and
Azure keep the current version when an update changes nothing; see docs/lifecycle.md). A
conditional create (`ifNoneExist`) would keep the first version forever.

The resource carries no `id`: R4 lets a server refuse an update-as-create with a client id
(Medplum does). The entry's fullUrl is the `urn:uuid:` placeholder other entries of a
transaction refer to; the server resolves it to the id it finds or gives.

A Flag is the exception: once on the server it is the clinicians' (they review it and set it
`inactive`), so it is a conditional create that a re-run never undoes; only its withdrawal
(`entered-in-error`, a corrected answer that no longer raises it) is an update.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from adapter.ids import full_url, identifier_search, resource_id
from adapter.settings import Settings

BundleType = Literal["transaction", "batch"]
BUNDLE_TYPES: tuple[BundleType, ...] = ("transaction", "batch")
Format = Literal["transaction", "patient", "ndjson"]
FORMATS: tuple[Format, ...] = ("transaction", "patient", "ndjson")
"""Layouts of a sheet's output: a Bundle per visit, a Bundle per patient, or Bulk Data NDJSON."""


CREATED_ONCE = frozenset({"Flag"})
"""Resources the server's users take over once created: conditional create (see the module)."""


def entry(resource: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A conditional update on the identifier; the body without `id` (see the module)."""
    rid = resource["id"]
    kind = resource["resourceType"]
    body = dict(resource)  # copied in C, the keys in their order, then without the id
    del body["id"]
    search = identifier_search(rid, settings)
    if kind in CREATED_ONCE and resource.get("status") != "entered-in-error":
        request = {"method": "POST", "url": kind, "ifNoneExist": search}
    else:
        request = {"method": "PUT", "url": f"{kind}?{search}"}
    return {"fullUrl": full_url(rid), "resource": body, "request": request}


def entry_id(entry: dict[str, Any]) -> str | None:
    """The deterministic id of an entry's resource (its fullUrl carries it; older outputs also
    kept it in the resource)."""
    full = entry.get("fullUrl")
    if isinstance(full, str) and full.startswith("urn:uuid:"):
        return full.removeprefix("urn:uuid:")
    resource = entry.get("resource")
    rid = resource.get("id") if isinstance(resource, dict) else None
    return rid if isinstance(rid, str) else None


def bundle_id(bundle_type: str, resource_ids: Iterable[str]) -> str:
    """Deterministic, from the entries in order; computable in one pass over a stream."""
    digest = BundleIds()
    for rid in resource_ids:
        digest.update(rid.encode() + b"\n")
    return digest.bundle_id(bundle_type)


class BundleIds:
    """`bundle_id` fed piece by piece: the entries' fullUrls, each followed by a newline, as a
    Bundle written entry by entry (`bundle_head`) gets them."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def update(self, full_urls: bytes) -> None:
        self._digest.update(full_urls)

    def bundle_id(self, bundle_type: str) -> str:
        return resource_id("Bundle", bundle_type, self._digest.hexdigest())


# A Bundle written entry by entry, memory holding one entry at a time: `bundle_head`, then the
# entries, each after ENTRY_SEPARATOR but the first, then BUNDLE_TAIL. The same Bundle as
# `bundle` (as JSON; the bytes have a line per entry). Its id comes first and depends on every
# entry: `BundleIds`, fed with `entries_with_urls`' fullUrls.

ENTRY_SEPARATOR = b",\n"
BUNDLE_TAIL = b"\n]}\n"


def bundle_head(bundle_type: str, rid: str) -> bytes:
    """What comes before the first entry; as long for every id (a UUID)."""
    head = orjson.dumps({"resourceType": "Bundle", "id": rid, "type": bundle_type})
    return head[:-1] + b',"entry":[\n'


def entries_with_urls(
    resources: Iterable[dict[str, Any]], settings: Settings
) -> tuple[bytes, bytes]:
    """The resources' entries, each after ENTRY_SEPARATOR, and their fullUrls for `BundleIds`."""
    urls: list[bytes] = []
    entries: list[bytes] = []
    for resource in resources:
        made = entry(resource, settings)
        urls.append(made["fullUrl"].encode() + b"\n")
        entries.append(ENTRY_SEPARATOR + orjson.dumps(made))
    return b"".join(urls), b"".join(entries)


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
