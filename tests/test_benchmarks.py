"""The benchmark suite runs once at its smallest sizes (`python -m benchmarks --smoke`), so that
no benchmark can rot. Not a timed test: it checks that every section ran and that the
same-output baseline wrote what fms-fhir writes, never how fast anything was."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import TITLES

pytestmark = pytest.mark.slow  # every benchmark at its smallest size (about a minute)

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_runs_at_its_smallest_size(tmp_path):
    # The HTTP section needs gunicorn; only then is it left out.
    http = importlib.util.find_spec("gunicorn") is not None
    sections = ["sheets", "jobs", "readers", "micro"] + (["http"] if http else []) + ["report"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--only",
            ",".join(sections),
            "--workdir",
            str(tmp_path),
            "--http-seconds",  # each HTTP case still runs; half a second shows it works
            "0.5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    shown = result.stdout[-6000:] + "\n" + result.stderr[-3000:]
    assert result.returncode == 0, shown
    output = result.stdout
    assert output.startswith("fms-fhir benchmarks (smoke"), shown
    assert "machine: " in output and "python:  " in output, shown
    for name in [*sections, "targets"]:
        assert TITLES[name] in output, f"section {name!r} did not print\n{shown}"
    assert "SECTION FAILED" not in output, shown
    # The baseline is the floor only if it writes the same resources: the check ran and passed.
    assert output.count(" and the LDN courses): QuestionnaireResponse ") == 2, shown  # CSV, XLSX
    assert "same-output check: passed" in output, shown
    assert "-> FAILED" not in output, shown
    if importlib.util.find_spec("python_calamine") is not None:
        assert "cell values, openpyxl vs calamine" in output, shown
        assert "recommendation: " in output, shown
    assert "jobs same-bytes check: passed" in output, shown
    # --jobs 2 is shown beside what two independent processes give on the machine at that time.
    assert re.search(r"ceiling: +[\d,]+ +\d+\.\d\dx +\d+\.\d\dx \| +\d+% \|", output), shown
    for output_format in ("transaction", "patient"):  # the default format, and one per patient
        row = rf"{output_format} \| jobs 1: +[\d,]+ +[\d.]+ \| jobs 2: .* \d+\.\d\dx \| yes"
        assert re.search(row, output), shown
    assert "validate / parse alone: " in output, shown
    if http:
        assert "$convert-answers / trivial route, requests/s: " in output, shown
    # The report: today's code against the baseline kept from before issue 22, the same files
    # but for the charts, which must be drawn from the same data.
    assert "report same-content check: passed" in output, shown
    assert "long-history same-page check (charts by their data): passed" in output, shown
    assert "report CPU per patient, baseline / fms-fhir: " in output, shown
    default = r"report \(the default: .*\): \d+\.\d+ CPU s / patient .*same bytes: yes"
    assert re.search(default, output), shown
    assert "benchmarks done in" in output and f"{len(sections)} sections ran" in output, shown
