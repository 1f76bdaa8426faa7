"""What changed since a previous output: the pure comparison behind `convert-sheet --since`.

Resources are compared by their deterministic id (the same visit, instrument and score give the
same id on every run) and by a digest of their content, written the same way whatever the
output format was: without `id`, every reference between emitted resources as `Type/id` (a
transaction's `urn:uuid:` placeholder and a batch's identifier reference alike), and the status
a fresh conversion gives (`amended` -> `completed`, `corrected` -> `final`), so a resource that
was corrected once and did not change since is unchanged.

- **new**: an id the previous output does not hold (or held as `entered-in-error`): written as
  converted.
- **changed**: the same id, other content: written with FHIR's word for a correction (a
  QuestionnaireResponse `amended`, an Observation `corrected`; a MedicationStatement, which has
  no such status, is replaced whole).
- **unchanged**: not written.
- **withdrawn**: a previous resource whose id this run does not give (a visit no longer in the
  sheet, an instrument blanked out, a course that no longer exists): written once more, marked
  `entered-in-error`, never silently deleted and never silently kept.

No I/O here: `adapter.sheets.since` reads the previous folder and writes the state.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from adapter.links import Links
from adapter.settings import Settings

State = Literal["new", "changed", "unchanged", "withdrawn"]
STATES: tuple[State, ...] = ("new", "changed", "unchanged", "withdrawn")

FRESH = {
    "QuestionnaireResponse": {"amended": "completed"},
    "Observation": {"corrected": "final", "amended": "final"},
}
"""A status a correction gives -> the status a fresh conversion gives (compared alike)."""
CORRECTED = {
    "QuestionnaireResponse": {"completed": "amended"},
    "Observation": {"final": "corrected"},
}
"""FHIR's word for a corrected resource, by the status a fresh conversion gives."""
WITHDRAWN = "entered-in-error"

Visit = tuple[str, str]
"""(patient, visit date); a patient's MedicationStatements are the visit (patient, "")."""


def _walk(node: Any, change: Any) -> Any:
    if isinstance(node, dict):
        found = change(node)
        if found is not None:
            return found
        return {key: _walk(value, change) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, change) for value in node]
    return node


def relative(
    resource: Mapping[str, Any], kinds: Mapping[str, str], settings: Settings
) -> dict[str, Any]:
    """The resource (id kept) with every reference between emitted resources as `Type/id`.

    `kinds`: id -> resource type of the resources a `urn:uuid:` placeholder may name.
    """
    system = settings.identifier_system

    def change(node: dict[str, Any]) -> dict[str, Any] | None:
        reference = node.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:uuid:"):
            rid = reference.removeprefix("urn:uuid:")
            kind = kinds.get(rid)
            return {**node, "reference": f"{kind}/{rid}"} if kind else None
        ident = node.get("identifier")
        if (
            reference is None
            and isinstance(node.get("type"), str)
            and isinstance(ident, dict)
            and ident.get("system") == system
            and isinstance(ident.get("value"), str)
            and len(node) == 2
        ):
            return {"reference": f"{node['type']}/{ident['value']}"}
        return None

    return _walk(dict(resource), change)


def relinked(resource: Mapping[str, Any], links: Links, ids: set[str]) -> dict[str, Any]:
    """A relative resource written for an output's link style; `ids`: the targets in it."""

    def change(node: dict[str, Any]) -> dict[str, Any] | None:
        reference = node.get("reference")
        if isinstance(reference, str) and reference.count("/") == 1:
            kind, rid = reference.split("/")
            if rid in ids:
                return {
                    **{k: v for k, v in node.items() if k != "reference"},
                    **links.to(kind, rid),
                }
        return None

    return _walk(dict(resource), change)


def fresh_status(resource: Mapping[str, Any]) -> str | None:
    status = resource.get("status")
    if not isinstance(status, str):
        return None
    return FRESH.get(resource.get("resourceType", ""), {}).get(status, status)


def digest(relative_resource: Mapping[str, Any]) -> bytes:
    """Of the content: no id, no server meta, the fresh status; keys in a fixed order."""
    content = {key: value for key, value in relative_resource.items() if key != "id"}
    meta = content.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        content["meta"] = meta
        if not meta:
            del content["meta"]
    if "status" in content:
        content["status"] = fresh_status(content)
    return hashlib.blake2b(
        orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


def visit_of(resource: Mapping[str, Any]) -> Visit:
    """The visit a resource belongs to: its patient and its date."""
    subject = resource.get("subject")
    subject = subject if isinstance(subject, dict) else {}
    ident = subject.get("identifier")
    patient = ident.get("value") if isinstance(ident, dict) else subject.get("reference")
    kind = resource.get("resourceType")
    day = (
        resource.get("authored")
        if kind == "QuestionnaireResponse"
        else resource.get("effectiveDateTime")
        if kind == "Observation"
        else ""
    )
    return str(patient or ""), str(day or "")


def corrected(resource: dict[str, Any]) -> dict[str, Any]:
    """FHIR's word for a correction, where the resource type has one."""
    status = resource.get("status")
    word = (
        CORRECTED.get(resource["resourceType"], {}).get(status) if isinstance(status, str) else None
    )
    return {**resource, "status": word} if word else resource


def withdrawn(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {**resource, "status": WITHDRAWN}


@dataclass(frozen=True, slots=True)
class Known:
    """One resource of the previous output."""

    digest: bytes
    visit: Visit
    withdrawn: bool


@dataclass
class Previous:
    """The previous output, as id -> what is needed to compare (not the resources themselves)."""

    known: dict[str, Known] = field(default_factory=dict)
    per_visit: Counter[Visit] = field(default_factory=Counter)
    """Resources of each visit that were not withdrawn already."""
    visits: dict[Visit, Visit] = field(default_factory=dict)
    """Each visit once: the resources of a visit share it."""

    def add(self, relative_resource: Mapping[str, Any]) -> None:
        rid = relative_resource.get("id")
        if not isinstance(rid, str):
            return
        visit = self.visits.setdefault(visit_of(relative_resource), visit_of(relative_resource))
        gone = relative_resource.get("status") == WITHDRAWN
        old = self.known.get(rid)
        if old is not None and not old.withdrawn:
            self.per_visit[old.visit] -= 1
        self.known[rid] = Known(digest(relative_resource), visit, gone)
        if not gone:
            self.per_visit[visit] += 1


@dataclass
class Delta:
    """Compares each visit of this run with the previous output; what is left is withdrawn."""

    previous: Previous
    settings: Settings
    resources: Counter[str] = field(default_factory=Counter)
    """Resources by state."""
    seen: set[Visit] = field(default_factory=set)

    def compare(
        self, visit: Visit, resources: Iterable[dict[str, Any]]
    ) -> tuple[State, list[dict[str, Any]], list[dict[str, Any]]]:
        """The visit's state, the resources to write (corrections marked), and every resource
        of the visit as the server holds it after they are applied (relative, for the state)."""
        resources = list(resources)
        kinds = {r["id"]: r["resourceType"] for r in resources}
        states: set[State] = set()
        write: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        matched = 0
        for resource in resources:
            rel = relative(resource, kinds, self.settings)
            known = self.previous.known.pop(resource["id"], None)
            if known is None or known.withdrawn:
                state: State = "new"
                out = resource
            else:
                matched += 1
                if known.digest == digest(rel):
                    state, out = "unchanged", resource
                else:
                    state, out = "changed", corrected(resource)
            self.resources[state] += 1
            states.add(state)
            if state != "unchanged":
                write.append(out)
            held.append(corrected(rel) if state == "changed" else rel)
        self.seen.add(visit)
        before = self.previous.per_visit.get(visit, 0)
        if matched < before:
            states.add("changed")  # resources of this visit are gone: an instrument blanked out
        if not states or states == {"unchanged"}:
            return "unchanged", write, held
        if states == {"new"} and before == 0:
            return "new", write, held
        return "changed", write, held

    def gone(self) -> tuple[set[str], set[str]]:
        """(ids to mark entered-in-error now, ids already withdrawn before): every previous id
        this run did not give."""
        now = {rid for rid, known in self.previous.known.items() if not known.withdrawn}
        before = {rid for rid, known in self.previous.known.items() if known.withdrawn}
        self.resources["withdrawn"] += len(now)
        return now, before

    def withdrawn_visits(self, resources: Iterable[Mapping[str, Any]]) -> list[Visit]:
        """The visits (not a patient's statements) of which nothing is in this run."""
        visits = {visit_of(r) for r in resources}
        return sorted(v for v in visits if v[1] and v not in self.seen)


__all__ = [
    "STATES",
    "Delta",
    "Known",
    "Previous",
    "State",
    "Visit",
    "corrected",
    "digest",
    "relative",
    "relinked",
    "visit_of",
    "withdrawn",
]
