"""Deterministic ids: the same source always yields the same ids, so retries create nothing new."""

from __future__ import annotations

import uuid
from typing import Any

# Fixed forever: changing it would change every id the project has ever emitted.
NAMESPACE = uuid.UUID("6f1c1d2e-5b0a-5f7e-9a43-0f4d2c8e6a11")
URI_SYSTEM = "urn:ietf:rfc:3986"


def resource_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def identifier(resource_id: str) -> dict[str, Any]:
    return {"system": URI_SYSTEM, "value": f"urn:uuid:{resource_id}"}


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def reference(resource_id: str) -> dict[str, str]:
    return {"reference": full_url(resource_id)}
