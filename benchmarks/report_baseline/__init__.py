"""The follow-up report as it was before it was made faster (issue 22), kept as the baseline of
the report benchmark: `core.py`, `charts.py`, `html.py` and `usecases.py` are the files of
`adapter/report/` at that time, their imports of each other pointed here and nothing else
changed. The benchmark (and tests/test_report_fast.py) check that fms-fhir writes the same
bytes; once that has held long enough, this copy can go."""
