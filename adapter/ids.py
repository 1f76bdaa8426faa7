"""Deterministic ids and the identifiers servers match retries on.

The same source always yields the same id, so a retried post creates nothing new. Each
resource also carries an identifier (system under the canonical base, value = the id): servers
rewrite every string equal to a placeholder fullUrl (`urn:uuid:...`) when they store a
transaction, so the identifier value must never be one, or the retry's search matches nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from adapter.settings import Settings

# Fixed forever: changing it would change every id the project has ever emitted.
NAMESPACE = uuid.UUID("6f1c1d2e-5b0a-5f7e-9a43-0f4d2c8e6a11")


_PREFIX = NAMESPACE.bytes


def resource_id(*parts: str) -> str:
    """A uuid5 of the parts as a JSON array: no separator inside a part can make two lists alike.

    RFC 4122 name-based (SHA-1) UUID, equal to `uuid.uuid5(NAMESPACE, json)`, without building a
    UUID object (this runs for every resource emitted).
    """
    return _uuid(hashlib.sha1(_PREFIX + orjson.dumps(parts)).hexdigest())


def ids_under(*parts: str) -> Callable[[str], str]:
    """`resource_id(*parts, last)` for many `last`: the resources of one response share their
    first parts (subject, instrument, date), so those are hashed once, not once a resource."""
    head = hashlib.sha1(_PREFIX + orjson.dumps(parts)[:-1] + (b"," if parts else b""))

    def make(last: str) -> str:
        hashed = head.copy()
        hashed.update(_tail(last))
        return _uuid(hashed.hexdigest())

    return make


@lru_cache(maxsize=4096)
def _tail(last: str) -> bytes:
    """The closing part of the JSON array: the same few score codes end most ids."""
    return orjson.dumps(last) + b"]"


# RFC 4122 variant bits (10xx) in the first hex digit of the fourth group.
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def _uuid(sha1: str) -> str:
    """The first 16 bytes of the SHA-1 (hex), version 5 and the variant set, in 8-4-4-4-12."""
    x = sha1
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def identifier(resource_id: str, settings: Settings) -> dict[str, Any]:
    return {"system": settings.identifier_system, "value": resource_id}


def identifier_search(resource_id: str, settings: Settings) -> str:
    """The search that finds a resource by its identifier (ifNoneExist, conditional update)."""
    return f"identifier={settings.identifier_system}|{resource_id}"


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"
