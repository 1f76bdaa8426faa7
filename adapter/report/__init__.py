"""The follow-up report: change over time, responders, charts like the case report's, as HTML
and as FHIR change Observations.

Edges call the use cases: `load_resources` (a file or folder) or `resources_from_json` (a
parsed body), then `write_reports`, `render_report` (or `render_report_parts`, to send the page
as it is made), `chart` or `change_bundle`. The pure core
(`follow_up`, `patients`, `chart_data`, `change_observations`) is there for tests and other callers. What
it shows is declared with each score in `mappings/` (`shown_scores`); `rules.py` holds the rules.
"""

from adapter.report.charts import ChartData, chart_data
from adapter.report.core import FollowUp, follow_up, patients, shown_scores
from adapter.report.load import load_resources, resources_from_json, resources_from_ndjson
from adapter.report.observations import change_observations, changes_bundle
from adapter.report.rules import CATALOGUE, RULES, ResponderRule
from adapter.report.usecases import (
    change_bundle,
    chart,
    render_report,
    render_report_parts,
    write_reports,
)
from adapter.report_codes import REPORT_CODES

__all__ = [
    "CATALOGUE",
    "REPORT_CODES",
    "RULES",
    "ChartData",
    "FollowUp",
    "ResponderRule",
    "change_bundle",
    "change_observations",
    "changes_bundle",
    "chart",
    "chart_data",
    "follow_up",
    "load_resources",
    "patients",
    "render_report",
    "render_report_parts",
    "resources_from_json",
    "resources_from_ndjson",
    "shown_scores",
    "write_reports",
]
