"""A readable table of scores for people at a terminal (the demo, `convert --table`)."""

from __future__ import annotations

from collections.abc import Iterable

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
                    result.score.code.display,
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
