"""gunicorn's side of the service: a logger that writes no request value, and a sync worker
whose refusals (before the app sees a request) are OperationOutcomes.

gunicorn.conf.py names both (`logger_class`, `worker_class`). gunicorn answers some requests
itself, before the app: a malformed request line (no HTTP version, a NUL, a raw space), a header
it refuses, headers or a request line over its limits (431, 414), a transfer coding other than
chunked (501). It logs each one with the request line, query and all, and answers an HTML page
without a Content-Security-Policy. Here the log line keeps only the kind of fault (see
`adapter.web.logs`), and the answer is an OperationOutcome with the same status.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn import glogging, util
from gunicorn.workers import sync

from adapter.settings import FHIR_JSON, Settings
from adapter.web.errors import BASELINE_HEADERS, server_outcome
from adapter.web.logs import stack_only, withheld

LAYER = "gunicorn"
KEPT_REQUEST_HEADERS = ("user-agent", "x-request-id", "content-type", "content-length")
"""Request headers an access log format may still show (`%({name}i)s`); any other is '-'."""


def _text(msg: Any, args: tuple[Any, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError, KeyError):
        return f"{msg!s} (arguments withheld)"


class Logger(glogging.Logger):
    """gunicorn's logger, every line through `withheld`; an exception's traceback is its frames
    and types, never its message; the access log (off by default) never shows a query."""

    def _write(self, level: int, msg: Any, args: tuple[Any, ...], info: bool = False) -> None:
        text = withheld(_text(msg, args))
        if info:
            text = f"{text}\n{stack_only(sys.exc_info())}"
        self.error_log.log(level, "%s", text)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.CRITICAL, msg, args, bool(kwargs.get("exc_info")))

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.ERROR, msg, args, bool(kwargs.get("exc_info")))

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.WARNING, msg, args, bool(kwargs.get("exc_info")))

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.INFO, msg, args, bool(kwargs.get("exc_info")))

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.DEBUG, msg, args, bool(kwargs.get("exc_info")))

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._write(logging.ERROR, msg, args, info=True)

    def log(self, lvl: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self._write(lvl, msg, args, bool(kwargs.get("exc_info")))

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        found = super().atoms(resp, req, environ, request_time)
        path = environ.get("PATH_INFO", "-")
        found["r"] = f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL')}"
        found["q"] = "-"
        cleaned: dict[str, Any] = {}
        for key, value in found.items():
            if key.endswith("}e"):
                continue  # the environment holds QUERY_STRING and RAW_URI
            if key.endswith("}i") and key[1:-2] not in KEPT_REQUEST_HEADERS:
                continue
            cleaned[key] = withheld(value) if isinstance(value, str) else value
        return cleaned


class _Captured:
    """Stands in for the client's socket while gunicorn writes its own error page."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.data = bytearray()

    def sendall(self, data: bytes) -> None:
        self.data += data

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class SyncWorker(sync.SyncWorker):
    """gunicorn's sync worker; its refusals are OperationOutcomes with the baseline headers."""

    def _settings(self) -> Settings:
        try:
            from adapter.web.state import state

            return state(self.wsgi).settings
        except Exception:  # the app is not built yet: the defaults name the codes
            return Settings()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)  # gunicorn decides status and log line
        head = bytes(captured.data).split(b"\r\n", 1)[0].split(b" ", 2)
        try:
            status = int(head[1])
            reason = head[2].decode("latin-1") if len(head) > 2 else "Error"
        except (IndexError, ValueError):
            util.write_nonblock(client, bytes(captured.data))
            return
        body = server_outcome(status, LAYER, self._settings())
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Connection: close",
            f"Content-Type: {FHIR_JSON}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in BASELINE_HEADERS.items()),
        ]
        answer = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")
