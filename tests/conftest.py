"""Every fixture more than one test module uses, defined once; helpers that are no fixture live in
`tests/support/`. Tests marked `slow` (a second or more, or an outside part: a browser, a FHIR
server, node, gunicorn) are left out of `make check`; `make test` runs them all."""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.sheets.contract import default_contract
from adapter.sheets.output import SINKS
from adapter.sheets.pipeline import convert_sheet as run_pipeline
from tests.support import EXAMPLES, SCORE_CASES, SETTINGS, skip_or_fail
from tests.support.fhir_server import SKIP_REASON, FhirServer, available
from tests.support.reports import demo_note

SLOW_MODULE = "\npytestmark = pytest.mark.slow"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not slow"` (`make check`) a module marked slow as a whole is not even imported:
    collecting one takes seconds (schemathesis builds its cases then, Playwright loads)."""
    if config.option.markexpr.replace(" ", "") != "notslow":
        return None
    name = collection_path.name
    if name.startswith("test_") and name.endswith(".py"):
        return SLOW_MODULE in collection_path.read_text(encoding="utf-8") or None
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Under `make test` the suite runs in one process per core (pytest-xdist). Each worker gets a
    temp folder of its own, for itself and the servers it starts, so that what lives in the temp
    folder by default (the page's results, `<temp>/fms-fhir-page-<uid>`) is never shared."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        folder = tempfile.mkdtemp(prefix=f"fms-fhir-tests-{worker}-")
        os.environ["TMPDIR"] = tempfile.tempdir = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection built (modules, their imports, every parametrized case) lives to the end:
    frozen, the garbage collector no longer walks it on every full collection. A test that calls
    `gc.collect()` often (the memory tests) took twice as long in the whole suite as alone."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def frozen_heap() -> None:
    """Everything alive before the test frozen too (what earlier tests built), for a test that
    measures memory with `gc.collect()` between samples: the collections then walk only what the
    test allocates. tracemalloc counts only what is allocated after it starts, so the measurement
    is the same."""
    gc.collect()
    gc.freeze()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "score_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "score_case", SCORE_CASES, ids=[f"{c.instrument_id}: {c.name}" for c in SCORE_CASES]
        )


# --- a real FHIR server (Medplum's router in node) ----------------------------------------------


@pytest.fixture(scope="session")
def fhir_server_process() -> Iterator[FhirServer]:
    if not available():
        skip_or_fail(SKIP_REASON)
    server = FhirServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fhir_server(fhir_server_process: FhirServer) -> FhirServer:
    """The session's FHIR server with an empty repository."""
    fhir_server_process.reset()
    return fhir_server_process


# --- the case report's follow-up ----------------------------------------------------------------


@pytest.fixture(scope="session")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/case-report-followup.xlsx converted as `make demo` does (a Bundle per visit)."""
    out = tmp_path_factory.mktemp("case") / "case-report"
    with open(EXAMPLES / "case-report-followup.xlsx", "rb") as stream:
        report = run_pipeline(
            stream,
            "case-report-followup.xlsx",
            dataclasses.replace(default_contract(), test_data=demo_note()),
            SINKS["transaction"](out, SETTINGS),
            SETTINGS,
        )
    assert report.rows_rejected == 0
    return out


# --- a real browser: Debian's chromium driven by Playwright for Python --------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's chromium (FMS_FHIR_CHROMIUM names another build)."""
    named = os.environ.get("FMS_FHIR_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Skipped with a clear message where no browser is installed (`apt-get install chromium`,
    `pip install playwright`; never `playwright install`)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        skip_or_fail("Playwright for Python is not installed (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        skip_or_fail("no chromium browser found (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as error:
            skip_or_fail(f"chromium at {executable} did not start: {error}")
        try:
            yield launched
        finally:
            launched.close()
