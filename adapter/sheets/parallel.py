"""Rows converted on several cores, handed back in row order (`convert-sheet --jobs N`).

`convert_row` is pure and takes most of a conversion's time, so it is what the workers do; what
depends on earlier rows (a patient's visits, the duplicate check, the doses, the sink) stays in
the calling process, which reads the rows, sends them in chunks and takes the results back in
the order it sent them. The output is therefore the same, byte for byte, whatever N is.

The workers are forked once the sheet's header is planned, so each inherits the `RowPlan`
without copying it through a pipe. At most `WINDOW` chunks a worker are in flight: the reader
waits for the workers (memory stays flat however long the sheet), and the workers for the
writer. A worker also encodes a row's resources as the sink would write them (`Sink.encoder`).
A folder sink (`Sink.spool`) has the workers write those bytes themselves, into its staging
folder, and only where each row went travels back: the calling process, which on two cores
shares one with the workers, then reads the sheet, keeps the order and has the kernel copy
the kept rows' bytes into place, about a twentieth of the work of a row. A stream sink gets
the encoded bytes; where the resources themselves are needed (`--since` compares them with
the previous output; a sink in memory keeps them) they travel as JSON bytes, cheaper to send
and read back than a pickle of the same dicts (only JSON types are in them: the sinks write
them with orjson).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import orjson

from adapter.model import Issue
from adapter.outcome import InternalFault
from adapter.sheets.output import Spool
from adapter.sheets.rows import RowPlan, RowResult, convert_row

Row = tuple[int, list[Any], str | None]
"""A row as a reader gives it: its number, its cells, why it cannot be read (None: it can)."""
Encoder = Callable[[list[dict[str, Any]]], Any]
Encoded = tuple[tuple[tuple[str, int], ...], Any]
"""A row's resources counted by type, and those resources as the sink's encoder made them (with
a spool: where a worker wrote them)."""
Converted = tuple[int, list[Any], str | None, RowResult | None, Encoded | None]
"""The row, its result (None for a row that cannot be read) and, when an encoder was given and
the row has resources, those resources encoded (the result then holds none)."""

CHUNK = 200
"""Rows sent to a worker at a time: enough that sending costs little beside converting, few
enough that the chunks in flight hold a few MB of resources (about 25 kB a row)."""
WINDOW = 2
"""Chunks in flight per worker: one being converted, one waiting."""


def worker_ended(doing: str) -> Issue:
    """A worker process that ended abruptly while `doing` (what the command's workers do)."""
    return Issue(
        "fatal",
        "exception",
        "a worker process ended abruptly (killed by a signal, or by the system when memory ran "
        f"short) while {doing}; nothing was written: run again, with fewer --jobs if memory is "
        "short",
        None,
        "worker-ended",
    )


WORKER_ENDED = worker_ended("converting rows")


def slots(jobs: int) -> int:
    """The spool's slots: one more than the chunks in flight, since the next chunk is sent
    before the rows of the one taken out are handed on. Chunk n is written to slot n % slots,
    so a slot is written again only after `Spool.release` (files reused: no file is made or
    removed per chunk, and overwriting a file's blocks costs the file system less)."""
    return WINDOW * jobs + 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def converted(
    rows: Iterable[Row],
    plan: RowPlan,
    jobs: int = 1,
    encoder: Encoder | None = None,
    spool: Spool | None = None,
) -> Generator[Converted, None, None]:
    """Each row with its result, in the order read; `jobs` > 1 converts in that many processes,
    which also encode each row's resources with `encoder` (a sink's: writing is then a copy)
    and, given a `spool` (with an encoder), write them themselves: a row's encoded value is
    then its placement, for the sink's `add_spooled` or `drop_spooled`, and the spool is told
    when every row of a chunk has been taken (`slots`).

    A reader error is raised where it happened: after the results of every row before it."""
    if jobs <= 1:
        for number, cells, problem in rows:
            result = convert_row(plan, number, cells) if problem is None else None
            yield number, cells, problem, result, None
        return
    yield from _in_workers(rows, plan, jobs, encoder, spool if encoder is not None else None)


_PLAN: RowPlan | None = None
_ENCODER: Encoder | None = None
_SPOOL: Spool | None = None


def _start(plan: RowPlan, encoder: Encoder | None, spool: Spool | None) -> None:
    """A worker: the plan it converts with; signals are the parent's to handle (it stops us)."""
    global _PLAN, _ENCODER, _SPOOL
    _PLAN, _ENCODER, _SPOOL = plan, encoder, spool
    become_worker(writes=spool is not None)


def become_worker(writes: bool) -> None:
    """In a new worker process: signals are the parent's to handle (it stops us), and a worker
    that `writes` into the parent's staging folder ends with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if writes:
        end_with_parent()


PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """A worker that writes into the parent's staging folder ends when the parent does (even
    killed): the next run removes a killed run's staging folder, and nothing may write into it
    after that. Linux only; elsewhere a worker ends at its next chunk (its pipe is closed)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent ended before the line above
        os._exit(1)


Done = tuple[RowResult, bytes, Encoded | None]


def _convert(slot: int, rows: list[tuple[int, list[Any]]]) -> list[Done]:
    """A worker's share: each row's result, with its resources encoded (and written, with a
    spool), else as JSON bytes."""
    assert _PLAN is not None, "the pool's initializer sets the plan"
    done: list[Done] = []
    spooled: list[tuple[int, tuple[tuple[str, int], ...]]] = []
    """The rows of `done` the spool writes, with their resources counted by type."""
    written: list[tuple[str, str, Any]] = []
    for number, cells in rows:
        result = convert_row(_PLAN, number, cells)
        resources, encoded = b"", None
        if result.resources:
            if _ENCODER is not None:
                counts: dict[str, int] = {}
                for resource in result.resources:
                    kind = resource["resourceType"]
                    counts[kind] = counts.get(kind, 0) + 1
                kinds = tuple(counts.items())
                encoded = (kinds, _ENCODER(result.resources))
                if _SPOOL is not None:
                    assert result.patient and result.date, "a row with resources is converted"
                    spooled.append((len(done), kinds))
                    written.append((result.patient, result.date, encoded[1]))
                    encoded = None
            else:
                resources = orjson.dumps(result.resources)
            result.resources = []
        done.append((result, resources, encoded))
    if _SPOOL is not None and written:
        placed = _SPOOL.write_chunk(slot, written)
        for (index, kinds), where in zip(spooled, placed, strict=True):
            done[index] = (done[index][0], b"", (kinds, where))
    return done


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """The rows in chunks; the rows read before a reader error come out before it."""
    chunk: list[Row] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


class WorkerEnded(Exception):
    """A worker process ended before it answered (killed, or out of memory)."""


class _Worker:
    """One forked worker with a task queue and a result pipe of its own.

    A worker killed while it writes an answer leaves a partial message in its pipe. Had the
    workers shared one pipe (as `concurrent.futures.ProcessPoolExecutor`'s do), the reader of
    that pipe would wait for the rest of the message forever, and the other workers for its
    lock. Here only that worker writes into its pipe, so its death ends the message: reading
    it fails at once (`WorkerEnded`)."""

    def __init__(
        self, context: Any, plan: RowPlan, encoder: Encoder | None, spool: Spool | None
    ) -> None:
        self.tasks = context.Queue()  # a feeder thread sends: a chunk never waits for a worker
        self.tasks.cancel_join_thread()  # a dead worker's unread chunk never holds up the exit
        self.results, writer = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve, args=(self.tasks, writer, plan, encoder, spool), daemon=True
        )
        self.process.start()
        writer.close()  # the worker holds the only writing end (see the class)

    def send(self, slot: int, rows: list[tuple[int, list[Any]]]) -> None:
        self.tasks.put((slot, rows))

    def answer(self) -> list[Done]:
        """The answer to the oldest chunk sent; raises what `_convert` raised there."""
        try:
            ok, value = self.results.recv()
        except (EOFError, OSError):
            raise WorkerEnded from None
        if not ok:
            raise value
        return value

    def stop(self, finished: bool) -> None:
        """Finished: the worker is told to end; else (an error, a stop) it is killed. Either
        way it has ended when this returns: nothing more is written into the staging folder."""
        if finished:
            self.tasks.put(None)
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.tasks.close()
        self.results.close()


def _serve(
    tasks: Any, results: Any, plan: RowPlan, encoder: Encoder | None, spool: Spool | None
) -> None:
    """A worker's loop: a chunk in, its answer out, until told to end."""
    _start(plan, encoder, spool)
    while (task := tasks.get()) is not None:
        try:
            answer: tuple[bool, Any] = (True, _convert(*task))
        except Exception as error:  # handed to the calling process, raised there
            answer = (False, error)
        try:
            results.send(answer)
        except Exception as error:  # an exception that cannot be pickled: its text
            results.send((False, RuntimeError(f"{type(error).__name__}: {error}")))


def _in_workers(
    rows: Iterable[Row], plan: RowPlan, jobs: int, encoder: Encoder | None, spool: Spool | None
) -> Iterator[Converted]:
    """Chunk n goes to worker n % jobs, so each worker's answers come back in the order its
    chunks were sent, and taking worker n % jobs's next answer gives chunk n's."""
    chunks = _chunks(rows)
    slot_numbers = itertools.cycle(range(slots(jobs)))
    pending: deque[tuple[int, list[Row], _Worker]] = deque()
    failure: Exception | None = None
    context = multiprocessing.get_context("fork")
    workers: list[_Worker] = []
    sent = 0
    finished = False
    try:
        for _ in range(jobs):
            workers.append(_Worker(context, plan, encoder, spool))

        def send() -> bool:
            nonlocal failure, sent
            try:
                chunk = next(chunks)
            except StopIteration:
                return False
            except Exception as error:  # raised once the rows read before it are handed back
                failure = error
                return False
            work = [(number, cells) for number, cells, problem in chunk if problem is None]
            slot = next(slot_numbers)
            worker = workers[sent % jobs]
            sent += 1
            worker.send(slot, work)
            pending.append((slot, chunk, worker))
            return True

        more = True
        while more and len(pending) < WINDOW * jobs:
            more = send()
        while pending:
            slot, chunk, worker = pending.popleft()
            # Taken out one at a time, so a row's resources are freed once it is written: a
            # chunk's worth kept alive would make every garbage collection walk them.
            results = deque(worker.answer())
            if more:
                more = send()
            for number, cells, problem in chunk:
                if problem is not None:
                    yield number, cells, problem, None, None
                    continue
                result, resources, encoded = results.popleft()
                if resources:
                    result.resources = orjson.loads(resources)
                yield number, cells, problem, result, encoded
            if spool is not None:  # every row of the chunk taken: its slot may be reused
                spool.release(slot)
        finished = True
    except WorkerEnded:
        raise InternalFault([WORKER_ENDED]) from None
    finally:
        for worker in workers:
            worker.stop(finished)
    if failure is not None:
        raise failure
