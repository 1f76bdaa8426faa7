"""What reaches a log never holds a value from a request: no query string (`?patient=...`), no
request line, no result id (it opens a patient's data), no exception message (it may quote the
input), and never a lone surrogate (a handler that cannot encode a line prints the whole record,
arguments and all, as a "Logging error").

`withheld` cleans one line; `WithoutValues` is the logging filter that applies it (and replaces a
traceback by its frames and exception types) on Flask's app logger, werkzeug's logger and the
service's own; gunicorn's logger class (`adapter.web.gunicorn_worker.Logger`) and the development
server's request handler (`adapter.web.dev_server`) use the same function.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

QUERY = re.compile(r"\?[^\s'\"]+")
RESULT = re.compile(r"(/results/)(?!<id>)[^/\s?'\"]+")
REQUEST_MESSAGES = (
    # gunicorn: "Invalid request from ip=127.0.0.1: Invalid HTTP request line: 'GET /?...'"
    re.compile(r"(?s)^(Invalid request from ip=\S*?): (?P<kind>[^:'\"(]*)"),
    # gunicorn: "Error handling request GET /x?patient=...", "... disconnection. <data>"
    re.compile(r"(?s)^(Error handling request)"),
    re.compile(r"(?s)^(Ignored premature client disconnection\.)"),
    re.compile(r"(?s)^(Closing connection\.)"),
    # the standard library's HTTP server (werkzeug's development server):
    # "code 400, message Bad request syntax ('GET /?patient=...')"
    re.compile(r"(?s)^(code \d+), message (?P<kind>[^:'\"(]*)"),
)
WITHHELD = "<withheld>"
NOTE = " (the request line, headers and body are never logged)"


def safe_text(text: str) -> str:
    """Text every handler can encode: a lone surrogate becomes its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def withheld(text: str) -> str:
    """One log line without request values (see the module's docstring)."""
    text = safe_text(text)
    for pattern in REQUEST_MESSAGES:
        found = pattern.match(text)
        if found:
            kind = (found.groupdict().get("kind") or "").strip()
            return found.group(1) + (f": {kind}" if kind else "") + NOTE
    return QUERY.sub("?" + WITHHELD, RESULT.sub(r"\1" + WITHHELD, text))


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def stack_only(info: ExcInfo | tuple[None, None, None]) -> str:
    """A traceback's frames and exception types, never an exception's message (it may hold a
    value of the request); chained exceptions by their types."""
    kind, error, tb = info
    if kind is None or error is None:
        return ""
    lines = ["Traceback (most recent call last), messages withheld:"]
    lines += [line.rstrip() for line in traceback.format_list(traceback.extract_tb(tb))]
    lines.append(kind.__qualname__)
    chained = error.__cause__ or error.__context__
    while chained is not None:
        lines.append(f"  while handling {type(chained).__qualname__}")
        chained = chained.__cause__ or chained.__context__
    return "\n".join(lines)


def clean_record(record: logging.LogRecord) -> None:
    """The record, rewritten in place: its message withheld, its traceback frames only."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: say so, not its arguments
        message = f"{record.msg!s} (arguments withheld)"
    if record.exc_info and record.exc_info[0] is not None:
        message = f"{message}\n{stack_only(record.exc_info)}"
    record.msg = withheld(message)
    record.args = ()
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None


VALUES_FREE = {"values_free": True}
"""`extra` of a record whose message and arguments hold no request value by construction (the
service's own line per request): `WithoutValues` passes it as it is."""


class WithoutValues(logging.Filter):
    """Rewrites each record with `clean_record` (but one marked `VALUES_FREE` without a
    traceback); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.__dict__.get("values_free") is True and record.exc_info is None):
            clean_record(record)
        return True


LOGGERS = ("werkzeug", "fms_fhir.http", "fms_fhir.config")


def install(*loggers: logging.Logger) -> None:
    """`WithoutValues` on these loggers and on werkzeug's and the service's (once each). A filter
    on a logger applies to what is logged to that logger, so each is named."""
    for logger in (*loggers, *(logging.getLogger(name) for name in LOGGERS)):
        if not any(isinstance(f, WithoutValues) for f in logger.filters):
            logger.addFilter(WithoutValues())
