"""A readable table of scores for people at a terminal (the demo, `convert --table`)."""

from __future__ import annotations

from collections.abc import Iterable

from adapter.instrument import Score
from adapter.resources import Converted


def score_rows(converted: Iterable[Converted]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in converted:
        response = item.response
        for result in item.scores:
            if result.value is None and result.score.emit != "always":
                continue  # a flag that did not fire (PHQ-9 item 9 at 0): no Observation, no row
            value = result.wire_value()
            shown = (
                "not computed"
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else f"{value:g}"
            )
            rows.append(
                (
                    response.subject.value or response.subject.reference or "",
                    response.authored,
                    response.instrument.id,
                    result.code,
                    _short_label(result.score),
                    shown,
                    result.band.display if result.band else "",
                )
            )
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    header = ("patient", "date", "instrument", "code", "score", "value", "band")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _short_label(score: Score) -> str:
    """The project's own name of the score (a LOINC display's "[Reported]" names LOINC's method,
    not how the value came to be), without the explanation a label may carry after a colon."""
    if score.label:
        return score.label.partition(": ")[0]
    return score.code.display
