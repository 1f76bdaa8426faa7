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

# Observation.interpretation: the category a rule gives (responder / not-responder: the result
# of a per-visit rule, shown in the report, not emitted as a change Observation). Direction alone
# (better, worse) is the standard v3 ObservationInterpretation B / W (adapter.terminology).
SUBSTANTIAL = "substantial-improvement"
MODERATE = "moderate-improvement"
MINIMAL = "minimal-improvement"
IMPORTANT = "important-improvement"
NOT_IMPORTANT = "no-important-change"
MINIMAL_WORSE = "minimal-worsening"
MODERATE_WORSE = "moderate-worsening"
SUBSTANTIAL_WORSE = "substantial-worsening"
IMPORTANT_WORSE = "important-worsening"
POINTS_IMPROVED = "individual-improvement"
POINTS_WORSENED = "individual-worsening"
POINTS_UNCHANGED = "no-individual-change"
RESPONSE = "response"
REMISSION = "remission-below-5"
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
PHQ9_CHANGE = "phq9-change"
GAD7_CHANGE = "gad7-change"

IMPROVED = frozenset(
    {SUBSTANTIAL, MODERATE, MINIMAL, IMPORTANT, POINTS_IMPROVED, BAND_IMPROVED, RESPONSE}
)
"""Categories that say the score improved importantly (v3 B beside them)."""
WORSENED = frozenset(
    {SUBSTANTIAL_WORSE, MODERATE_WORSE, MINIMAL_WORSE, IMPORTANT_WORSE, POINTS_WORSENED,
     BAND_WORSENED}
)  # fmt: skip
"""Categories that say the score worsened importantly (v3 W beside them)."""

REPORT_CODES: tuple[tuple[str, str], ...] = (
    (CHANGE, "Change of a score from baseline (follow-up minus baseline)"),
    (COMPARED_SCORE, "Score compared"),
    (BASELINE_VALUE, "Score at baseline"),
    (FOLLOW_UP_VALUE, "Score at follow-up"),
    (PERCENT_CHANGE, "Percent change from baseline"),
    (BASELINE_BAND, "Severity band at baseline"),
    (FOLLOW_UP_BAND, "Severity band at follow-up"),
    (SUBSTANTIAL, "Substantial improvement: a fall of 50% or more (IMMPACT)"),
    (MODERATE, "Moderate improvement: a fall of 30% to < 50% (IMMPACT)"),
    (MINIMAL, "Minimal improvement: a fall of 10% to < 30% (IMMPACT)"),
    (IMPORTANT, "A fall of 14% or more (the original FIQ's minimal important difference)"),
    (NOT_IMPORTANT, "No important change: below the rule's least threshold either way"),
    (MINIMAL_WORSE, "Minimal worsening: a rise of 10% to < 30% (IMMPACT, applied upward)"),
    (MODERATE_WORSE, "Moderate worsening: a rise of 30% to < 50% (IMMPACT, applied upward)"),
    (SUBSTANTIAL_WORSE, "Substantial worsening: a rise of 50% or more (IMMPACT, applied upward)"),
    (IMPORTANT_WORSE, "A rise of 14% or more (the original FIQ's difference, applied upward)"),
    (POINTS_IMPROVED, "Individual improvement: a fall of at least the score's individual change"),
    (POINTS_WORSENED, "Individual worsening: a rise of at least the score's individual change"),
    (POINTS_UNCHANGED, "No individual change: less than the score's individual change"),
    (RESPONSE, "Response: a fall of 50% or more"),
    (REMISSION, "Remission: below 5 at follow-up"),
    (BAND_IMPROVED, "Improved to a lower severity band"),
    (BAND_UNCHANGED, "Same severity band"),
    (BAND_WORSENED, "Worsened to a higher severity band"),
    (RESPONDER, "Responder"),
    (NOT_RESPONDER, "Not a responder"),
    (IMMPACT, "IMMPACT pain-intensity change benchmarks (Dworkin 2008), both ways"),
    (FIQ_MCID, "14% minimal clinically important difference of the original FIQ (Bennett 2009)"),
    (BAND_TRANSITION, "Transition between the severity bands of the score"),
    (CHANGE_ONLY, "Change from baseline, no responder rule applied"),
    (PGIC_RESPONDER, "PGIC responder: much or very much improved since treatment began"),
    (PHQ9_CHANGE, "PHQ-9: 5-point individual change (Lowe 2004), response and remission"),
    (GAD7_CHANGE, "GAD-7: 4-point individual change (Toussaint 2020), response and remission"),
)
"""(code, display) of every code above: the CodeSystem includes them so each Coding resolves."""
