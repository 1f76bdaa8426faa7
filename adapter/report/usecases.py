"""The report's use cases, for every edge: the CLI (`fms-fhir report`), `POST /$report`, the page.

Each takes resources (from `load_resources`, or a parsed request body through
`resources_from_json`) and a `Settings`, and returns a result or raises an error of the
taxonomy in `adapter.outcome`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from adapter import jsonio
from adapter.bundle import BundleType
from adapter.model import Issue
from adapter.outcome import OutputConflict
from adapter.report import charts, html
from adapter.report.core import FollowUp, follow_up, one_patient
from adapter.report.observations import changes_bundle
from adapter.settings import Settings
from adapter.sheets.output import MARKER, safe_name

Resources = Iterable[Mapping[str, Any]]
MARKER_TEXT = "written by fms-fhir report\n"
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


def chart(
    resources: Resources,
    settings: Settings,
    fmt: charts.Format = "png",
    patient: str | None = None,
    baseline: date | str | None = None,
    panel: str | None = None,
) -> bytes:
    """One patient's chart as PNG or SVG: both panels, or panel "a" or "b"."""
    report = one_patient(follow_up(resources, settings, patient, baseline))
    return charts.chart(report, fmt, panel)


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
    labels = [report.patient.label for report in reports]
    return [
        safe_name(
            report.patient.label if labels.count(report.patient.label) == 1 else report.patient.key
        )
        for report in reports
    ]


def _check_target(target: Path) -> None:
    """A new or empty folder, or one this command wrote; never an input or anything else."""
    if not target.exists():
        return
    marker = target / MARKER
    ours = marker.is_file() and marker.read_text(errors="replace") == MARKER_TEXT
    if not target.is_dir() or (any(target.iterdir()) and not ours):
        message = (
            f"{target} exists and is not a folder written by fms-fhir report; name a new or "
            "empty folder"
        )
        raise OutputConflict([Issue("fatal", "conflict", message, None, "output-exists")])


def write_reports(
    resources: Resources,
    out_dir: str | Path,
    settings: Settings,
    patient: str | None = None,
    baseline: date | str | None = None,
) -> list[Path]:
    """Per patient `<id>.html` (self-contained), `<id>.png`, `<id>.svg` (both panels) and
    `<id>-changes.json` (the change Observations, a transaction Bundle); with no patient named,
    every patient and `index.html`. Written to a staging folder and moved into place whole."""
    reports = follow_up(resources, settings, patient, baseline)
    target = Path(out_dir)
    _check_target(target)
    stems = _file_stems(reports)
    files: dict[str, bytes] = {}
    with_index = patient is None
    for report, stem in zip(reports, stems, strict=True):
        page = html.report_html(report, INDEX if with_index else None)
        files[f"{stem}.html"] = page.encode()
        files[f"{stem}.png"] = charts.chart(report, "png")
        files[f"{stem}.svg"] = charts.chart(report, "svg")
        changes = _checked(changes_bundle([report], settings), settings)
        files[f"{stem}-changes.json"] = jsonio.dumps(changes)
    if with_index:
        files[INDEX] = html.index_html(reports, [f"{stem}.html" for stem in stems]).encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        (staging / MARKER).write_text(MARKER_TEXT)
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / name for name in files]
