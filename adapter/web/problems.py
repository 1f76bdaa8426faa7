"""The HTTP error the web layer raises itself: at the bottom of `adapter/web`, so the request
protocol and the hooks can raise it without importing the error handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import HTTPException


class HttpProblem(HTTPException):
    """An HTTP error raised by the web layer itself, with its issue type, rule and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        issue_type: str,
        rule: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description=message)
        self.code = status
        self.issue_type = issue_type
        self.rule = rule
        self.extra_headers = dict(headers or {})

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), *self.extra_headers.items()]
