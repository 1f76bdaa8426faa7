"""gunicorn settings for the fms-fhir HTTP service: `gunicorn -c gunicorn.conf.py`.

Sync workers: each serves one request at a time and takes the next connection only when free, so
load spreads evenly over the workers (a gthread worker takes every kept-alive connection it
accepted, and one worker can end up with most of the traffic). Put a buffering reverse proxy
(nginx) in front so that slow clients do not hold a worker.

Every value comes from the environment, through the one table of `adapter.config` (see
docs/configuration.md). The app's own configuration is checked here too, before any worker
starts: a bad value (or an unusable page folder) stops gunicorn with one line naming the
variable, instead of workers failing one after another. Each worker's `create_app()` then builds
the same configuration from the same environment.
"""

from __future__ import annotations

import gc
import os
import signal
from typing import Any

from adapter.config import ConfigError, server_options

try:
    from adapter.web import configure

    SERVER = server_options(os.environ)
    configure(None)
except ConfigError as error:
    raise SystemExit(f"fms-fhir: configuration: {error}") from None

wsgi_app = "adapter.web:create_app()"
bind = list(SERVER.bind)
workers = SERVER.workers
worker_class = "adapter.web.gunicorn_worker.SyncWorker"
"""gunicorn's sync worker, whose own refusals (a malformed request line, headers too large, an
unknown transfer coding) are OperationOutcomes instead of HTML pages."""
logger_class = "adapter.web.gunicorn_worker.Logger"
"""gunicorn's logger without request values: a refused request line is logged as the kind of
fault only (never its path or query), an exception by its frames and types (never its message)."""
timeout = SERVER.timeout
"""A request still running after this many seconds is killed with its worker (big NDJSON sheets
convert at about 3,000 rows a second (all instruments): raise it for them)."""
graceful_timeout = SERVER.graceful_timeout
"""After SIGTERM, running requests get this long to finish; new ones get 503 + Retry-After."""
keepalive = 5
max_requests = SERVER.max_requests
max_requests_jitter = max_requests // 10
control_socket = SERVER.control_socket
control_socket_disable = not control_socket
"""gunicorn's control socket (gunicornc) only when a path is given: the default path is shared by
every gunicorn of the user, so two services would collide."""
accesslog = None
"""The app logs one line per request (request id, route rule, status, duration) and never a URL
with its values. gunicorn's access log, if turned on (`--access-logfile`), goes through the same
logger class: its request line has no query, and it shows no request header but User-Agent,
X-Request-ID, Content-Type and Content-Length."""
errorlog = "-"
loglevel = SERVER.log_level
GC_FREEZE = SERVER.gc_freeze


def post_worker_init(worker: Any) -> None:
    """Build the app's caches, mark SIGTERM as 'shutting down', then freeze the heap.

    gc.freeze() moves everything alive now (modules, the R4B models, the definitions) out of the
    collector's generations, so later collections walk only what requests allocate.
    """
    from adapter.web import begin_shutdown, warm

    app = worker.wsgi
    warm(app)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        begin_shutdown(app)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)
    if GC_FREEZE:
        gc.collect()
        gc.freeze()


def worker_int(worker: Any) -> None:
    """SIGINT or SIGQUIT: a quick shutdown; answer 503 to whatever still arrives."""
    from adapter.web import begin_shutdown

    begin_shutdown(worker.wsgi)
