"""What one app holds besides Flask's config: the Settings, the registry, the web-only options,
the shutdown flag, the in-flight count and the caches of generated documents."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from adapter.settings import Settings
from adapter.web.operations import Operation

EXTENSION = "fms_fhir"


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text} is negative")
    return value


# Environment variable -> (WebOptions field, parser): options only the service has.
WEB_ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "FMS_FHIR_MAX_CONCURRENT": ("max_concurrent", _count),
    "FMS_FHIR_RETRY_AFTER": ("retry_after", _count),
    "FMS_FHIR_MAX_BUNDLE_ROWS": ("max_bundle_rows", _count),
}


@dataclass(frozen=True)
class WebOptions:
    max_concurrent: int = 0
    """Requests one process serves at once before answering 503 (0: no limit)."""
    retry_after: int = 5
    """Seconds in Retry-After on a 503."""
    max_bundle_rows: int = 2000
    """Most sheet rows answered as JSON Bundles (held in memory); NDJSON goes to max_sheet_rows."""

    @classmethod
    def from_env(cls, environ: Mapping[str, Any]) -> WebOptions:
        values: dict[str, Any] = {}
        for name, (attribute, parse) in WEB_ENVIRONMENT.items():
            text = environ.get(name)
            if text is not None and str(text).strip() != "":
                values[attribute] = parse(str(text))
        return cls(**values)


@dataclass
class WebState:
    settings: Settings
    options: WebOptions
    operations: dict[str, Operation]
    """Flask endpoint -> operation."""
    shutting_down: threading.Event = field(default_factory=threading.Event)
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Built once per app; two threads racing build the same deterministic value."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]

    def admit(self) -> bool:
        if not self.options.max_concurrent:
            return True
        with self.lock:
            if self.inflight >= self.options.max_concurrent:
                return False
            self.inflight += 1
            return True

    def release(self) -> None:
        if self.options.max_concurrent:
            with self.lock:
                self.inflight = max(0, self.inflight - 1)


def state(app: Flask | None = None) -> WebState:
    return (app or current_app).extensions[EXTENSION]
