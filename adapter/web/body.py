"""Request bodies are read whole or refused, however they are framed.

werkzeug's own stream stops quietly at the route's limit when a body has no Content-Length (a
chunked body), so the part before the limit was processed as if it were all; and gunicorn hands
over a body that ended before its Content-Length as if it were complete. `BodyRequest.stream`
(every route reads its body through it: `get_data`, the form parser, a raw sheet) instead:

- answers 413 as soon as a body is over the route's limit (`request.max_content_length`), by its
  Content-Length before anything is read, or by the bytes counted while reading a chunked one;
- answers 400 when the body ends before its Content-Length, and when the server cannot read it
  (malformed chunked framing: gunicorn and werkzeug raise their own errors from the read);
- reads a body without Content-Length only when the server says it ends (`wsgi.input_terminated`:
  chunked), as werkzeug does; otherwise there is no body.

The errors are `HttpProblem`s (HTTP errors), so werkzeug's form parser lets them through (it hides
a `ValueError`), and each is remembered: a second read answers the same.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

from flask import Request
from werkzeug.exceptions import HTTPException
from werkzeug.utils import cached_property

from adapter.settings import MIB
from adapter.web.problems import HttpProblem

STEP = 1 * MIB
"""The most asked of the server in one read."""


def _shown(limit: int) -> str:
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"


def too_large(limit: int) -> HttpProblem:
    return HttpProblem(
        413,
        f"the request body is larger than {_shown(limit)}, the limit of this route",
        "too-long",
        rule="too-large",
    )


def _short(declared: int, received: int) -> HttpProblem:
    return HttpProblem(
        400,
        f"the request body ended after {received} of the {declared} bytes its Content-Length "
        "announced; nothing of it was used",
        "incomplete",
        rule="incomplete-body",
    )


def _unreadable(error: BaseException) -> HttpProblem:
    if isinstance(error, TimeoutError):
        return HttpProblem(
            408, "the request body stopped arriving; nothing of it was used", "timeout", "timeout"
        )
    return HttpProblem(
        400,
        "the request body could not be read: its framing is malformed (for example a chunk "
        f"size that is no hexadecimal number, or a missing chunk end; {type(error).__name__}); "
        "nothing of it was used",
        "structure",
        rule="malformed-body",
    )


class BoundedBody(io.RawIOBase):
    """The server's input stream read to its announced end, and never past `limit` + 1 bytes
    (the one byte past the limit tells a body over it from one exactly at it)."""

    def __init__(self, stream: IO[bytes], declared: int | None, limit: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._declared = declared
        self._limit = limit
        self._received = 0
        self._ended = False
        self._error: HttpProblem | None = None

    def readable(self) -> bool:
        return True

    def _fail(self, problem: HttpProblem) -> HttpProblem:
        self._error = problem
        return problem

    def _wanted(self, size: int) -> int:
        if self._declared is not None:
            return min(size, self._declared - self._received)
        if self._limit is not None:
            return min(size, self._limit + 1 - self._received)
        return size

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._error is not None:
            raise self._error
        wanted = self._wanted(size)
        if self._ended or wanted <= 0:
            self._ended = self._ended or size > 0
            return b""
        try:
            data = self._stream.read(wanted)
        except HTTPException:
            raise
        except Exception as error:  # gunicorn's and werkzeug's framing errors, a timeout
            raise self._fail(_unreadable(error)) from None
        if not data:
            self._ended = True
            if self._declared is not None and self._received < self._declared:
                raise self._fail(_short(self._declared, self._received))
            return b""
        self._received += len(data)
        if self._limit is not None and self._received > self._limit:
            raise self._fail(too_large(self._limit))
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while data := self.read(STEP):
            parts.append(data)
        return b"".join(parts)


class BodyRequest(Request):
    """Flask's request with `stream` as `BoundedBody` (see the module's docstring)."""

    @cached_property
    def stream(self) -> IO[bytes]:
        declared = self.content_length
        limit = self.max_content_length
        if declared is not None and limit is not None and declared > limit:
            raise too_large(limit)
        if declared is None and "wsgi.input_terminated" not in self.environ:
            return io.BytesIO()  # no length and no end: no body (werkzeug's safe fallback)
        raw: Any = self.environ["wsgi.input"]
        return cast(IO[bytes], BoundedBody(raw, declared, limit))  # a RawIOBase reads bytes
