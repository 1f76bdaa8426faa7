"""Deterministic ids and the identifiers servers match retries on.

The same source always yields the same id, so a retried post creates nothing new. Each
resource also carries an identifier (system under the canonical base, value = the id): servers
rewrite every string equal to a placeholder fullUrl (`urn:uuid:...`) when they store a
transaction, so the identifier value must never be one, or the retry's search matches nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from adapter.settings import Settings

# Fixed forever: changing it would change every id the project has ever emitted.
NAMESPACE = uuid.UUID("6f1c1d2e-5b0a-5f7e-9a43-0f4d2c8e6a11")


def resource_id(*parts: str) -> str:
    """A uuid5 of the parts as a JSON array: no separator inside a part can make two lists alike."""
    return str(uuid.uuid5(NAMESPACE, orjson.dumps(parts).decode()))


def identifier(resource_id: str, settings: Settings) -> dict[str, Any]:
    return {"system": settings.identifier_system, "value": resource_id}


def identifier_search(resource_id: str, settings: Settings) -> str:
    """The search that finds a resource by its identifier (ifNoneExist, conditional update)."""
    return f"identifier={settings.identifier_system}|{resource_id}"


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def placeholder(resource_id: str) -> dict[str, str]:
    """A reference to another entry of the same transaction Bundle."""
    return {"reference": full_url(resource_id)}
