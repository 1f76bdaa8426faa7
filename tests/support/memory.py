"""Memory kept by the code under test, traced by tracemalloc while it runs.

tracemalloc sees only what was allocated after it started, in every thread. Two things in the
full suite (one pytest-xdist worker running hundreds of tests) read as memory kept when none
was: the test runner's own allocations (execnet receiving the next tests, pytest's reports),
left out by the frame that made them; and a hash table grown while a test ran (Python's
interned strings, which pathlib adds every path part to), a new megabyte block whose old table
was never traced. The second made a sheet conversion that keeps a few bytes a row read as 870.
"""

from __future__ import annotations

import gc
import tracemalloc

NOT_OURS = [
    tracemalloc.Filter(False, pattern)
    for pattern in ("*/execnet/*", "*/xdist/*", "*/_pytest/*", "*/pluggy/*", "*/logging/*")
]


def _snapshot() -> tracemalloc.Snapshot:
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(NOT_OURS)


class KeptPerRow:
    """Bytes kept per row by a sheet conversion while it runs: traced at its progress sample of
    row 1,000 (what the first rows warm up is not counted) and at the one of its last row
    (`rows`, a multiple of 500: the pipeline samples every 500 rows)."""

    def __init__(self, rows: int, first: int = 1_000) -> None:
        self.rows, self.first = rows, first
        self.snapshots: dict[int, tracemalloc.Snapshot] = {}

    def sample(self, rows: int, share: float | None) -> None:
        """A pipeline's progress callback."""
        if rows in (self.first, self.rows):
            self.snapshots[rows] = _snapshot()

    @property
    def per_row(self) -> float:
        assert set(self.snapshots) == {self.first, self.rows}, set(self.snapshots)
        kept = sum(stat.size_diff for stat in self._compared() if not _resized_table(stat))
        return kept / (self.rows - self.first)

    def _compared(self) -> list[tracemalloc.StatisticDiff]:
        return self.snapshots[self.rows].compare_to(self.snapshots[self.first], "traceback")

    def grown(self, top: int = 8) -> str:
        """Where the kept bytes were allocated, largest first (for a failing test's message)."""
        stats = self._compared()
        return "\n".join(
            f"{stat.size_diff:+,} B, {stat.count_diff:+,} blocks:\n  "
            + "\n  ".join(stat.traceback.format())
            for stat in stats[:top]
        )


TABLE = 1 << 20


def _resized_table(stat: tracemalloc.StatisticDiff) -> bool:
    """One new block of a megabyte or more, from one place: a hash table grown, such as that of
    Python's interned strings (pathlib interns every part of every path it makes). The table it
    replaces was allocated before tracing started, so it looks like a megabyte kept; what a
    conversion keeps per row shows as many blocks, and is counted."""
    return stat.count_diff == 1 and stat.size_diff >= TABLE
