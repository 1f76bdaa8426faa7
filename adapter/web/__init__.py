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

from adapter.settings import ENVIRONMENT, MIB, Settings
from adapter.web import conversions, definitions, errors, hooks, system
from adapter.web.operations import Operation, endpoint
from adapter.web.routes import CONCERNS, blueprint
from adapter.web.state import EXTENSION, WebOptions, WebState, state


def _configure(config: Mapping[str, Any] | Settings | None) -> tuple[Settings, WebOptions, dict]:
    """Settings, web options and the remaining Flask config from what `create_app` was given.

    None: the environment (FMS_FHIR_* variables). A Settings: it, with default web options. A
    mapping: `SETTINGS` (a Settings) or FMS_FHIR_* keys as in the environment; other keys are
    Flask config (e.g. TESTING).
    """
    if config is None:
        return Settings.from_env(os.environ), WebOptions.from_env(os.environ), {}
    if isinstance(config, Settings):
        return config, WebOptions(), {}
    given = config.get("SETTINGS")
    if isinstance(given, Settings):
        settings = given
    else:
        settings = Settings.from_env({k: str(v) for k, v in config.items() if k in ENVIRONMENT})
    flask_config = {
        k: v
        for k, v in config.items()
        if k != "SETTINGS" and not k.startswith("FMS_FHIR_") and k.isupper()
    }
    return settings, WebOptions.from_env(config), flask_config


def _logging() -> None:
    """One INFO line per request reaches standard error unless the host configured logging."""
    logger = logging.getLogger("fms_fhir.http")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s %(message)s")
        )
        logger.addHandler(handler)


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """The Flask app: settings, one blueprint per concern, hooks, one error handler."""
    settings, options, flask_config = _configure(config)
    app = Flask(__name__, static_folder=None)
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
    app.extensions[EXTENSION] = WebState(settings, options, registered)
    hooks.install(app)
    errors.install(app)
    _logging()
    return app


def warm(app: Flask) -> None:
    """Build what the first requests would (definitions, /metadata, /openapi.json) and import the
    lazily imported modules, e.g. before `gc.freeze()` in a gunicorn worker."""
    import adapter.fhir  # noqa: F401 - the R4B models, imported on first validation otherwise
    import adapter.questionnaire  # noqa: F401
    import adapter.sheets.pipeline  # noqa: F401
    from adapter.report import charts

    charts.warm()  # matplotlib: ~0.4 s on a worker's first report otherwise

    with app.test_request_context("/metadata"):
        definitions.definitions()
        system.metadata()
        system.openapi_json()


def begin_shutdown(app: Flask) -> None:
    """From now on every request is answered 503 with Retry-After (a worker got SIGTERM)."""
    state(app).shutting_down.set()


__all__ = ["CONCERNS", "begin_shutdown", "create_app", "warm"]
