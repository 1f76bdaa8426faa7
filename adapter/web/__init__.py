"""The HTTP service: a thin edge over `adapter.api`, following FHIR R4's REST conventions.

`create_app(config)` builds the Flask app; importing this package does nothing else. Both
`fms-fhir serve` and gunicorn (`gunicorn.conf.py`: `adapter.web:create_app()`) use it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask

from adapter.config import Config, ConfigError, for_app, unknown_variables
from adapter.outcome import InternalFault
from adapter.settings import MIB, Settings
from adapter.web import conversions, definitions, errors, hooks, logs, system
from adapter.web.body import BodyRequest
from adapter.web.operations import Operation, endpoint
from adapter.web.page_store import Store
from adapter.web.routes import CONCERNS, blueprint
from adapter.web.state import EXTENSION, WebState, state


def configure(
    config: Config | Settings | Mapping[str, Any] | None = None,
) -> tuple[Config, dict[str, Any], Store]:
    """The app's configuration, the Flask config and the page's store, from what `create_app` was
    given; a bad value (or an unusable page folder) raises ConfigError naming the variable.

    None: the environment (FMS_FHIR_* variables). A Config: it. A Settings: the core's part; the
    service's and the page's options from the environment. A mapping: `SETTINGS` (a Settings)
    and FMS_FHIR_* keys of any part, the environment unread; an unknown FMS_FHIR_* key is
    refused; other upper-case keys are Flask config (e.g. TESTING).
    """
    if config is None:
        for warning in unknown_variables(os.environ):
            logging.getLogger("fms_fhir.config").warning(warning)
    built, flask_config = for_app(config, os.environ)
    store = Store(built.page)
    try:
        store.root()
    except InternalFault as error:
        raise ConfigError("FMS_FHIR_PAGE_DIR", error.issues[0].message) from None
    return built, flask_config, store


class App(Flask):
    """Flask, with requests whose bodies are read whole or refused (`body.BodyRequest`), and a
    development server (`run`, as `fms-fhir serve` uses it) that logs and answers without the
    request's values (`dev_server.RequestHandler`)."""

    request_class = BodyRequest

    def run(self, *args: Any, **options: Any) -> None:
        from adapter.web.dev_server import handler_for

        options.setdefault("request_handler", handler_for(state(self).settings))
        super().run(*args, **options)


def _logging(app: Flask) -> None:
    """One INFO line per request reaches standard error unless the host configured logging;
    no log this app writes to holds a request's values (`logs.WithoutValues`)."""
    logs.install(app.logger)
    logger = logging.getLogger("fms_fhir.http")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s %(message)s")
        )
        logger.addHandler(handler)


def create_app(config: Config | Settings | Mapping[str, Any] | None = None) -> Flask:
    """The Flask app: its configuration (built here, once; see `configure`), one blueprint per
    concern, hooks, one error handler. A bad configuration raises ConfigError, naming the
    variable, before anything is served."""
    built, flask_config, store = configure(config)
    settings = built.settings
    app = App(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=max(
            settings.max_upload_bytes + conversions.MULTIPART_SLACK,
            settings.max_input_bytes,
            settings.max_response_bytes,
        ),
        MAX_FORM_MEMORY_SIZE=min(settings.max_input_bytes, 4 * MIB),
        JSON_SORT_KEYS=False,
    )
    app.config.update(flask_config)
    app.url_map.strict_slashes = False
    registered: dict[str, Operation] = {}
    for concern, operations in CONCERNS:
        app.register_blueprint(blueprint(concern, operations))
        registered.update({endpoint(concern, op): op for op in operations})
    app.extensions[EXTENSION] = WebState(built, registered, store)
    hooks.install(app)
    errors.install(app)
    _logging(app)
    return app


def warm(app: Flask) -> None:
    """Build what the first requests would (definitions, /metadata, /openapi.json) and import the
    lazily imported modules, e.g. before `gc.freeze()` in a gunicorn worker."""
    import adapter.fhir  # noqa: F401 - the R4B models, imported on first validation otherwise
    import adapter.questionnaire  # noqa: F401
    import adapter.sheets.pipeline  # noqa: F401
    from adapter.report import drawing

    drawing.warm()  # the rasteriser and its fonts, before gc.freeze()

    with app.test_request_context("/metadata"):
        definitions.definitions()
        system.metadata()
        system.openapi_json()


def begin_shutdown(app: Flask) -> None:
    """From now on every request is answered 503 with Retry-After (a worker got SIGTERM)."""
    state(app).shutting_down.set()


__all__ = ["CONCERNS", "App", "ConfigError", "begin_shutdown", "configure", "create_app", "warm"]
