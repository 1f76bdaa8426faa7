"""Settings: one frozen value built at the edge (CLI from the environment, Flask from its config).

The core never reads the environment; every function that needs the canonical base, a limit or
strict mode receives this value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
DEFAULT_CANONICAL_BASE = "https://fms-fhir.org/fhir"
CODESYSTEM_ID = "fms-instruments"
SCORE_UNIT = {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
MIB = 1024 * 1024

# Environment variable -> (Settings field, parser). The one table docs/configuration.md documents.
ENVIRONMENT: dict[str, tuple[str, Any]] = {}


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _tokens(text: str) -> frozenset[str]:
    return frozenset(token.strip() for token in text.split(",") if token.strip())


def _schemes(text: str) -> tuple[tuple[str, str], ...]:
    """ "fiqr-total=salaffi-2020,fs-score=wolfe-2015" -> pairs."""
    pairs = []
    for part in text.split(","):
        if part.strip():
            code, equals, scheme = part.partition("=")
            if not equals:
                raise ValueError(f"{part.strip()!r}: write score-code=scheme-id")
            pairs.append((code.strip(), scheme.strip()))
    return tuple(pairs)


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
    """Bearer tokens the service accepts; empty: no authentication."""
    band_schemes: tuple[tuple[str, str], ...] = ()
    """(score code, scheme id) pairs: a published band scheme chosen instead of the default."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "canonical_base", self.canonical_base.rstrip("/"))
        # Settings key many caches (codings, static fragments): hash the fields once.
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))
        if self.band_schemes:
            from adapter.registry import check_band_schemes

            check_band_schemes(self.band_schemes)

    @cached_property
    def schemes(self) -> dict[str, str]:
        """Score code -> the band scheme chosen for it."""
        return dict(self.band_schemes)

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Only edges call this (the CLI, `create_app` when given no config)."""
        values: dict[str, Any] = {}
        for name, (attribute, parse) in ENVIRONMENT.items():
            text = environ.get(name)
            if text is not None and text.strip() != "":
                values[attribute] = parse(text)
        return cls(**values)

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


ENVIRONMENT.update(
    {
        "FMS_FHIR_CANONICAL_BASE": ("canonical_base", str.strip),
        "FMS_FHIR_STRICT": ("strict", _flag),
        "FMS_FHIR_MAX_INPUT_MB": ("max_input_bytes", lambda t: int(float(t) * MIB)),
        "FMS_FHIR_MAX_RESPONSE_MB": ("max_response_bytes", lambda t: int(float(t) * MIB)),
        "FMS_FHIR_MAX_UPLOAD_MB": ("max_upload_bytes", lambda t: int(float(t) * MIB)),
        "FMS_FHIR_MAX_SHEET_ROWS": ("max_sheet_rows", int),
        "FMS_FHIR_MAX_JSON_DEPTH": ("max_json_depth", int),
        "FMS_FHIR_API_TOKENS": ("api_tokens", _tokens),
        "FMS_FHIR_BAND_SCHEMES": ("band_schemes", _schemes),
    }
)

DEFAULT = Settings()
