"""What one app holds besides Flask's config: its configuration (built once by `create_app`),
the registry, the page's store, the shutdown flag, the in-flight count and the caches of
generated documents."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from adapter.config import Config, WebOptions
from adapter.settings import Settings
from adapter.web.operations import Operation
from adapter.web.page_store import Store

EXTENSION = "fms_fhir"


@dataclass
class WebState:
    config: Config
    operations: dict[str, Operation]
    """Flask endpoint -> operation."""
    page_store: Store
    """The page's conversions on disk; its folder was checked when the app was built."""
    shutting_down: threading.Event = field(default_factory=threading.Event)
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.config.settings

    @property
    def options(self) -> WebOptions:
        """The service's own options."""
        return self.config.service

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


__all__ = ["EXTENSION", "WebOptions", "WebState", "state"]


def state(app: Flask | None = None) -> WebState:
    return (app or current_app).extensions[EXTENSION]
