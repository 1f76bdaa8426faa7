"""Legacy spreadsheets (CSV, XLSX) -> FHIR: contract, readers, per-row conversion, outputs."""
