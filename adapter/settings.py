"""Settings: the core's part of the one configuration (`adapter.config` builds it at the edge).

The core never reads the environment; every function that needs the canonical base, a limit or
strict mode receives this value. The variables, their parsing and their bounds are in the one
table of `adapter.config`; this module imports nothing of the project, so anything may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
DEFAULT_CANONICAL_BASE = "https://fms-fhir.org/fhir"
CODESYSTEM_ID = "fms-instruments"
SCORE_UNIT = {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
MIB = 1024 * 1024

BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
"""RFC 6750's b64token: what an `Authorization: Bearer` header can carry."""


def token_problem(token: object) -> str | None:
    """Why this cannot be a bearer token, or None. Never quotes the token (it is a secret)."""
    if not isinstance(token, str):
        return f"is a {type(token).__name__}, not text"
    if not token.strip():
        return "is empty"
    if not BEARER_TOKEN.fullmatch(token):
        return (
            "holds a character a bearer token cannot carry "
            "(RFC 6750: letters, digits, - . _ ~ + / and = at the end)"
        )
    return None


@dataclass(frozen=True)
class Settings:
    canonical_base: str = DEFAULT_CANONICAL_BASE
    strict: bool = False
    """Validate every emitted resource with the R4B models (slower)."""
    max_input_bytes: int = 64 * MIB
    """Largest answers document, regimen or contract read."""
    max_response_bytes: int = 8 * MIB
    """Largest QuestionnaireResponse validated or extracted."""
    max_json_depth: int = 64
    """Deepest nesting of arrays and objects in any JSON input."""
    max_upload_bytes: int = 256 * MIB
    """Largest spreadsheet accepted by the service."""
    max_sheet_rows: int = 1_000_000
    """Most rows converted from one spreadsheet."""
    api_tokens: frozenset[str] = field(default_factory=frozenset)
    """Bearer tokens the service accepts; none: no authentication. An empty or blank token is
    refused here, so a configured-but-empty secret can never mean 'no authentication'."""
    band_schemes: tuple[tuple[str, str], ...] = ()
    """(score code, scheme id) pairs: a published band scheme chosen instead of the default."""
    baseline_max_days: int = 30
    """The report warns when a score's baseline value is older than this many days before the
    baseline day (the LDN start); 0: never."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical_base", self.canonical_base.rstrip("/"))
        if not isinstance(self.api_tokens, frozenset):
            raise ValueError("api_tokens: give a frozenset of tokens")
        for token in self.api_tokens:
            problem = token_problem(token)
            if problem:
                raise ValueError(f"api_tokens: one token {problem}")
        # Settings key many caches (codings, static fragments): hash the fields once.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))

    @cached_property
    def schemes(self) -> dict[str, str]:
        """Score code -> the band scheme chosen for it."""
        return dict(self.band_schemes)

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]  # set in __post_init__ (a frozen dataclass)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @cached_property
    def codesystem_url(self) -> str:
        return f"{self.canonical_base}/CodeSystem/{CODESYSTEM_ID}"

    @cached_property
    def issue_system(self) -> str:
        return f"{self.canonical_base}/CodeSystem/fms-issue"

    @cached_property
    def identifier_system(self) -> str:
        """System of every identifier the project gives its resources; the value is a stable id."""
        return f"{self.canonical_base}/sid/resource-id"

    @cached_property
    def patient_system(self) -> str:
        """Default system of patient identifiers when the caller names none."""
        return f"{self.canonical_base}/sid/patient-id"

    def questionnaire_url(self, instrument_id: str) -> str:
        return f"{self.canonical_base}/Questionnaire/{instrument_id}"


DEFAULT = Settings()
