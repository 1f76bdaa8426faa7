# Two commands: `make demo` and `make test` set everything up from nothing, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

FHIRPATH_JS := $(VENV)/js/node_modules/fhirpath/package.json

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# fhirpath.js (LHC-Forms' engine) checks that renderers compute our scores too; skipped without npm.
$(FHIRPATH_JS): | $(STAMP)
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/js fhirpath@5.2.2 \
		|| echo "npm install failed: the fhirpath.js agreement test will be skipped"; \
	else echo "npm not found: the fhirpath.js agreement test will be skipped"; fi

demo: $(STAMP)
	$(BIN)/fms-fhir convert examples/baseline-visit.json --out build/baseline-bundle.json --table
	$(BIN)/fms-fhir convert-sheet examples/case-report-followup.xlsx --out build/case-report --report build/case-report-report.json

test: $(STAMP) $(FHIRPATH_JS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_convert.py
	$(BIN)/python benchmarks/bench_sheets.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
