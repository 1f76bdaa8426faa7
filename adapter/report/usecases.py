"""The report's use cases, for every edge: the CLI (`fms-fhir report`), `POST /$report`, the page.

Each takes resources (from `load_resources`, or a parsed request body through
`resources_from_json`) and a `Settings`, and returns a result or raises an error of the
taxonomy in `adapter.outcome`.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from collections import Counter, deque
from collections.abc import Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

from adapter import jsonio, outputs
from adapter.bundle import BundleType
from adapter.outcome import InternalFault
from adapter.report import drawing, html
from adapter.report.core import FollowUp, follow_up, one_patient
from adapter.report.observations import changes_bundle
from adapter.settings import Settings
from adapter.sheets.output import safe_name
from adapter.sheets.parallel import become_worker, worker_ended

Resources = Iterable[Mapping[str, Any]]
INDEX = "index.html"


def _checked(resource: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from adapter.api import checked  # here: adapter.api may import this package

    return checked(resource, settings)


def render_report(
    resources: Resources,
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
) -> str:
    """One patient's HTML report (the input holds one patient, or `patient` names one)."""
    return html.report_html(one_patient(follow_up(resources, settings, patient, baseline)))


def render_report_parts(
    resources: Resources,
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
) -> Iterator[str]:
    """`render_report` as parts made one after another, for an edge that sends the page as it
    is made. The resources are read and checked here, before the first part: an error of the
    input is raised by this call, never in the middle of a page."""
    return html.report_html_parts(one_patient(follow_up(resources, settings, patient, baseline)))


def chart(
    resources: Resources,
    settings: Settings,
    fmt: drawing.Format = "png",
    patient: str | None = None,
    baseline: date | str | None = None,
    panel: str | None = None,
) -> bytes:
    """One patient's chart as PNG or SVG: both panels, or panel "a" or "b" (a chart shows no
    change from baseline: none is computed)."""
    report = one_patient(follow_up(resources, settings, patient, baseline, with_changes=False))
    return drawing.chart(report, fmt, panel)


def change_bundle(
    resources: Resources,
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
    bundle_type: BundleType = "transaction",
) -> dict[str, Any]:
    """The change Observations of every patient (or the one named) as a Bundle to store."""
    reports = follow_up(resources, settings, patient, baseline)
    return _checked(changes_bundle(reports, settings, bundle_type), settings)


def _file_stems(reports: list[FollowUp]) -> list[str]:
    """Each patient's file name, apart from every other patient's even where the file system
    does not tell case apart (macOS, Windows): patients "ab" and "AB" would write one file, and
    the index would open one patient's report for the other. Names that differ only in case get
    a hash of the patient's key, whatever their order."""
    labels = Counter(report.patient.label for report in reports)
    stems = [
        safe_name(report.patient.label if labels[report.patient.label] == 1 else report.patient.key)
        for report in reports
    ]
    folded = Counter(stem.casefold() for stem in stems)
    return [
        f"{stem}-{hashlib.sha1(report.patient.key.encode()).hexdigest()[:8]}"
        if folded[stem.casefold()] > 1
        else stem
        for stem, report in zip(stems, reports, strict=True)
    ]


KIND = "report"
OUR_NAMES = re.compile(r".+\.(html|png|svg)|.+-changes\.json")
"""The names the report writes (for the marker of an earlier version, which listed none, and
for the staging folder of a killed run)."""


def _recognise(folder: Path) -> set[str] | None:
    return outputs.matching(folder, OUR_NAMES) if outputs.marked(folder, KIND) else None


def write_reports(
    resources: Resources,
    out_dir: str | Path,
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
    inputs: Iterable[str | Path] = (),
    jobs: int = 1,
    png: bool = False,
) -> list[Path]:
    """Per patient `<id>.html` (self-contained, its charts inline), `<id>.svg` (both panels),
    `<id>-changes.json` (the change Observations, a transaction Bundle) and, when `png` is
    asked for, `<id>.png` (the same charts rasterised: about nine tenths of a patient's time, so
    drawn only on request); with no patient named, every patient and `index.html`. Written
    through `adapter.outputs`: into a staging folder, moved into place whole; a folder holding
    anything it did not write, or an input, is refused.

    `jobs` > 1 draws that many patients at once in worker processes (patients are independent):
    the same files, byte for byte."""
    reports = follow_up(resources, settings, patient, baseline)
    with_index = patient is None
    stems = _file_stems(reports)
    names: list[str] = []
    try:
        with outputs.output_folder(out_dir, KIND, inputs, _recognise) as staging:
            files = Files(with_index, png)
            written = _patients_written(reports, stems, settings, files, staging, jobs)
            with closing(written):  # its workers stopped before the staging folder goes
                for patient_names in written:
                    names += patient_names
            if with_index:
                pages = [f"{stem}.html" for stem in stems]
                (staging / INDEX).write_bytes(html.index_html(reports, pages).encode())
                names.append(INDEX)
    except OSError as error:
        raise outputs.unwritable(out_dir, error) from None
    return [Path(out_dir) / name for name in names]


@dataclass(frozen=True)
class Files:
    """Which files a patient gets besides the page, the SVG and the changes."""

    with_index: bool
    """The page links back to `index.html` (every patient is written)."""
    png: bool = False


def _patient_files(
    report: FollowUp, stem: str, settings: Settings, files: Files
) -> Iterator[tuple[str, bytes]]:
    """One patient's files by name."""
    yield f"{stem}.html", html.report_html(report, INDEX if files.with_index else None).encode()
    if files.png:
        yield f"{stem}.png", drawing.chart(report, "png")
    yield f"{stem}.svg", drawing.chart(report, "svg")
    changes = _checked(changes_bundle([report], settings), settings)
    yield f"{stem}-changes.json", jsonio.dumps(changes)


def _write_patient(
    report: FollowUp, stem: str, settings: Settings, files: Files, staging: Path
) -> list[str]:
    names = []
    for name, data in _patient_files(report, stem, settings, files):
        (staging / name).write_bytes(data)
        names.append(name)
    return names


def _patients_written(
    reports: list[FollowUp],
    stems: list[str],
    settings: Settings,
    files: Files,
    staging: Path,
    jobs: int,
) -> Generator[list[str], None, None]:
    """Each patient's files written into `staging`, their names in patient order."""
    if jobs <= 1 or len(reports) <= 1:
        for report, stem in zip(reports, stems, strict=True):
            yield _write_patient(report, stem, settings, files, staging)
        return
    # Forked once the reports are built: each worker inherits them and is sent only a number;
    # the rasteriser is loaded before, so no worker loads it again. At most two patients a worker
    # are in flight, taken back in order.
    drawing.warm()
    work = (reports, stems, settings, files, staging)
    workers = min(jobs, len(reports))
    numbers = iter(range(len(reports)))
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start,
        initargs=(work,),
    )
    # Leaving early (an error, a stop), the patients being drawn end first: nothing is written
    # into the staging folder after this returns.
    with pool:
        pending: deque[Future[list[str]]] = deque()
        try:
            pending.extend(pool.submit(_write_numbered, n) for n in islice(numbers, 2 * workers))
            while pending:
                names = pending.popleft().result()
                following = next(numbers, None)
                if following is not None:
                    pending.append(pool.submit(_write_numbered, following))
                yield names
        except BrokenProcessPool:  # from a result, or from sending the next patient
            raise InternalFault([WORKER_ENDED]) from None
        finally:
            for future in pending:
                future.cancel()


WORKER_ENDED = worker_ended("drawing a patient's report")

_WORK: tuple[list[FollowUp], list[str], Settings, Files, Path] | None = None


def _start(work: tuple[list[FollowUp], list[str], Settings, Files, Path]) -> None:
    """A worker: what it draws from (it writes into the parent's staging folder)."""
    global _WORK
    _WORK = work
    become_worker(writes=True)


def _write_numbered(number: int) -> list[str]:
    assert _WORK is not None, "the pool's initializer sets the work"
    reports, stems, settings, files, staging = _WORK
    return _write_patient(reports[number], stems[number], settings, files, staging)
