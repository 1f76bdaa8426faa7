"""fms-fhir: FHIR R4 interoperability adapter for fibromyalgia care."""

__version__ = "0.1.0"
