"""The report's use cases, for every edge: the CLI (`fms-fhir report`), `POST /$report`, the page.

Each takes resources (from `load_resources`, or a parsed request body through
`resources_from_json`) and a `Settings`, and returns a result or raises an error of the
taxonomy in `adapter.outcome`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from adapter import jsonio, outputs
from adapter.bundle import BundleType
from adapter.report import charts, html
from adapter.report.core import FollowUp, follow_up, one_patient
from adapter.report.observations import changes_bundle
from adapter.settings import Settings
from adapter.sheets.output import safe_name

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


def chart(
    resources: Resources,
    settings: Settings,
    fmt: charts.Format = "png",
    patient: str | None = None,
    baseline: date | str | None = None,
    panel: str | None = None,
) -> bytes:
    """One patient's chart as PNG or SVG: both panels, or panel "a" or "b" (a chart shows no
    change from baseline: none is computed)."""
    report = one_patient(follow_up(resources, settings, patient, baseline, with_changes=False))
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
) -> list[Path]:
    """Per patient `<id>.html` (self-contained), `<id>.png`, `<id>.svg` (both panels) and
    `<id>-changes.json` (the change Observations, a transaction Bundle); with no patient named,
    every patient and `index.html`. Written through `adapter.outputs`: into a staging folder, moved
    into place whole; a folder holding anything it did not write, or an input, is refused."""
    reports = follow_up(resources, settings, patient, baseline)
    names: list[str] = []
    try:
        with outputs.output_folder(out_dir, KIND, inputs, _recognise) as staging:
            for name, data in _report_files(reports, settings, patient is None):
                (staging / name).write_bytes(data)
                names.append(name)
    except OSError as error:
        raise outputs.unwritable(out_dir, error) from None
    return [Path(out_dir) / name for name in names]


def _report_files(
    reports: list[FollowUp], settings: Settings, with_index: bool
) -> Iterator[tuple[str, bytes]]:
    """The report's files by name, one patient at a time."""
    stems = _file_stems(reports)
    for report, stem in zip(reports, stems, strict=True):
        yield f"{stem}.html", html.report_html(report, INDEX if with_index else None).encode()
        yield f"{stem}.png", charts.chart(report, "png")
        yield f"{stem}.svg", charts.chart(report, "svg")
        changes = _checked(changes_bundle([report], settings), settings)
        yield f"{stem}-changes.json", jsonio.dumps(changes)
    if with_index:
        yield INDEX, html.index_html(reports, [f"{stem}.html" for stem in stems]).encode()
