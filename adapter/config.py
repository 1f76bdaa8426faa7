"""Settings shared by every generator: the canonical base and the FHIR version on the wire."""

import os

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"
DEFAULT_CANONICAL_BASE = "https://fms-fhir.org/fhir"
CODESYSTEM_ID = "fms-instruments"
SCORE_UNIT = {"unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}


def canonical_base() -> str:
    """The base of every canonical url; set FMS_FHIR_CANONICAL_BASE to publish under your own."""
    return os.environ.get("FMS_FHIR_CANONICAL_BASE", DEFAULT_CANONICAL_BASE).rstrip("/")


def codesystem_url() -> str:
    return f"{canonical_base()}/CodeSystem/{CODESYSTEM_ID}"


def questionnaire_url(instrument_id: str) -> str:
    return f"{canonical_base()}/Questionnaire/{instrument_id}"


def strict_mode() -> bool:
    """Validate every emitted resource with the fhir.resources models (slower; FMS_FHIR_STRICT=1)."""
    return os.environ.get("FMS_FHIR_STRICT", "").lower() in ("1", "true", "yes")
