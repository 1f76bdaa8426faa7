"""The follow-up report's own codes, added to the project CodeSystem by `adapter.terminology`.

Kept free of imports so the CodeSystem can read them without loading the report.
"""

from __future__ import annotations

CHANGE = "change-from-baseline"
"""Observation.code of a change Observation: one score, one follow-up visit against baseline."""

# Observation.component codes of a change Observation.
COMPARED_SCORE = "compared-score"
BASELINE_VALUE = "baseline-value"
FOLLOW_UP_VALUE = "follow-up-value"
PERCENT_CHANGE = "percent-change"
BASELINE_BAND = "baseline-band"
FOLLOW_UP_BAND = "follow-up-band"

# Observation.interpretation: the responder category a rule gives (responder / not-responder:
# the result of a per-visit rule, shown in the report, not emitted as a change Observation).
SUBSTANTIAL = "substantial-improvement"
MODERATE = "moderate-improvement"
IMPORTANT = "important-improvement"
NOT_IMPORTANT = "no-important-change"
WORSENED = "worsened"
BAND_IMPROVED = "band-improved"
BAND_UNCHANGED = "band-unchanged"
BAND_WORSENED = "band-worsened"
RESPONDER = "responder"
NOT_RESPONDER = "not-responder"

# Observation.method: the responder rule applied (see adapter.report.rules).
IMMPACT = "immpact-pain"
FIQ_MCID = "fiq-mcid"
BAND_TRANSITION = "band-transition"
CHANGE_ONLY = "change-only"
PGIC_RESPONDER = "pgic-responder"

REPORT_CODES: tuple[tuple[str, str], ...] = (
    (CHANGE, "Change of a score from baseline (follow-up minus baseline)"),
    (COMPARED_SCORE, "Score compared"),
    (BASELINE_VALUE, "Score at baseline"),
    (FOLLOW_UP_VALUE, "Score at follow-up"),
    (PERCENT_CHANGE, "Percent change from baseline"),
    (BASELINE_BAND, "Severity band at baseline"),
    (FOLLOW_UP_BAND, "Severity band at follow-up"),
    (SUBSTANTIAL, "Substantial improvement"),
    (MODERATE, "Moderate improvement"),
    (IMPORTANT, "Minimal important improvement"),
    (NOT_IMPORTANT, "No important change"),
    (WORSENED, "Worse than baseline"),
    (BAND_IMPROVED, "Improved to a lower severity band"),
    (BAND_UNCHANGED, "Same severity band"),
    (BAND_WORSENED, "Worsened to a higher severity band"),
    (RESPONDER, "Responder"),
    (NOT_RESPONDER, "Not a responder"),
    (IMMPACT, "IMMPACT pain-intensity change benchmarks (Dworkin 2008)"),
    (FIQ_MCID, "14% minimal clinically important difference of the original FIQ (Bennett 2009)"),
    (BAND_TRANSITION, "Transition between the severity bands of the score"),
    (CHANGE_ONLY, "Change from baseline, no responder rule applied"),
    (PGIC_RESPONDER, "PGIC responder: much or very much improved since treatment began"),
)
"""(code, display) of every code above: the CodeSystem includes them so each Coding resolves."""
