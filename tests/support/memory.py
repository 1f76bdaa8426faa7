"""Memory kept by the code under test, traced by tracemalloc while it runs.

tracemalloc counts every thread of the process. Under pytest-xdist the worker's message thread
(execnet) receives the next tests while one runs, and pytest keeps its reports and captured
logs: a sample taken while they grew once read as 870 bytes a row kept by a sheet conversion
that keeps a few. Those allocations are left out by the frame that made them."""

from __future__ import annotations

import gc
import tracemalloc

NOT_OURS = [
    tracemalloc.Filter(False, pattern)
    for pattern in ("*/execnet/*", "*/xdist/*", "*/_pytest/*", "*/pluggy/*", "*/logging/*")
]


def traced_now() -> int:
    """Bytes alive now that were allocated since tracemalloc started, by anything but the test
    runner (after a full collection)."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(NOT_OURS)
    return sum(stat.size for stat in snapshot.statistics("filename"))


class KeptPerRow:
    """Bytes kept per row by a sheet conversion while it runs: traced (`traced_now`) at its
    progress sample of row 1,000 (what the first rows warm up is not counted) and at the one of
    its last row (`rows`, a multiple of 500: the pipeline samples every 500 rows)."""

    def __init__(self, rows: int, first: int = 1_000) -> None:
        self.rows, self.first = rows, first
        self.readings: dict[int, int] = {}

    def sample(self, rows: int, share: float | None) -> None:
        """A pipeline's progress callback."""
        if rows in (self.first, self.rows):
            self.readings[rows] = traced_now()

    @property
    def per_row(self) -> float:
        assert set(self.readings) == {self.first, self.rows}, self.readings
        return (self.readings[self.rows] - self.readings[self.first]) / (self.rows - self.first)
