"""The development server's (`fms-fhir serve`, werkzeug) request handler, without request values.

werkzeug logs each request line with its query (`?patient=...`), and the standard library's HTTP
server answers a malformed request line itself, logging the line ("Bad request syntax ('GET
/?patient=...')") and answering an HTML page without a Content-Security-Policy. This handler
logs the method, the path without its query (a result id withheld) and the status, and answers
those refusals with an OperationOutcome, like the service.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler

from adapter.settings import FHIR_JSON, Settings
from adapter.web.errors import BASELINE_HEADERS, server_outcome
from adapter.web.hooks import METHODS
from adapter.web.logs import withheld

LAYER = "the development server"


class RequestHandler(WSGIRequestHandler):
    settings: Settings = Settings()
    """The app's settings (for the OperationOutcome's codes): see `handler_for`."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        method = getattr(self, "command", None) or "-"
        method = method if method in METHODS or method == "-" else "other"
        path = urlsplit(getattr(self, "path", "") or "").path or "-"
        self.log("info", '"%s %s" %s %s', method, path, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        try:
            text = message % args if args else message
        except (TypeError, ValueError):
            text = f"{message} (arguments withheld)"
        super().log(type, "%s", withheld(text))

    def parse_request(self) -> bool:
        """HTTP/1.0 and 1.1 only: an HTTP/0.9 request ("GET /path", no version) would be answered
        with a bare body, without status or headers (no Content-Security-Policy)."""
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A refusal before the app (bad request line, headers too large): an OperationOutcome
        that names the layer, never the request."""
        if self.request_version == "HTTP/0.9":
            # the version was not read (or is 0.9): answer with a status line and headers anyway
            self.request_version = "HTTP/1.0"
        self.log_error("code %d, message %s", code, "refused before the app")
        body = server_outcome(code, LAYER, self.settings)
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = "Error"
        self.send_response(code, reason)
        self.send_header("Connection", "close")
        self.close_connection = True
        if code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.send_header("Content-Type", FHIR_JSON)
            self.send_header("Content-Length", str(len(body)))
            for name, value in BASELINE_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)
        else:
            self.end_headers()


def handler_for(settings: Settings) -> type[RequestHandler]:
    """The request handler class for an app of these settings (`App.run` passes it on)."""
    return type("AppRequestHandler", (RequestHandler,), {"settings": settings})
