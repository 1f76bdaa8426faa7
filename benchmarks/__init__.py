"""fms-fhir benchmarks: `python -m benchmarks` (make bench), `--smoke` for the smallest sizes."""
