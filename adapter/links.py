"""How emitted resources point at each other, by where they are going.

- In a transaction Bundle: the other entry's placeholder fullUrl (`urn:uuid:...`), which the
  server resolves to whatever id it gives (or already gave) that resource.
- In a batch Bundle: entries are independent and the server picks the ids, so a reference names
  the target by its identifier (a logical reference, resolved by an identifier search).
- In NDJSON (Bulk Data) and single resources: relative `Type/id` with the deterministic ids, as
  `$import` keeps the ids it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from adapter.ids import full_url, identifier
from adapter.settings import Settings

LinkStyle = Literal["transaction", "batch", "relative"]


@dataclass(frozen=True)
class Links:
    style: LinkStyle
    settings: Settings

    def to(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        if self.style == "transaction":
            return {"reference": full_url(resource_id)}
        if self.style == "batch":
            return {"type": resource_type, "identifier": identifier(resource_id, self.settings)}
        return {"reference": f"{resource_type}/{resource_id}"}


def links_for(bundle_type: str, settings: Settings) -> Links:
    """The reference style that fits an output: 'transaction', 'batch', or anything else."""
    style: LinkStyle = bundle_type if bundle_type in ("transaction", "batch") else "relative"  # type: ignore[assignment]  # tested
    return Links(style, settings)
