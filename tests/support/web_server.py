"""Start the real service under gunicorn (`gunicorn.conf.py`) on a free 127.0.0.1 port, for tests.

Bounded everywhere: the start waits at most `start_timeout` for /healthz, and the server is always
terminated (SIGTERM, then SIGKILL after the grace period) when the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import ROOT


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request; an HTTP error status is an answer too."""
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post_json(self, path: str, value: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        status, answer_headers, data = self.request(
            "POST", path, json.dumps(value).encode(), headers, **kwargs
        )
        return status, answer_headers, json.loads(data)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without any FMS_FHIR_* setting, so the test decides them all."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FMS_FHIR_")}
    environment.update(extra)
    return environment


@contextmanager
def gunicorn_server(
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    start_timeout: float = 60,
    grace: float = 15,
) -> Iterator[Server]:
    port = free_port()
    settings = {
        "FMS_FHIR_BIND": f"127.0.0.1:{port}",
        "FMS_FHIR_WORKERS": str(workers),
        "FMS_FHIR_GRACEFUL_TIMEOUT": str(int(grace)),
        **(env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    with tempfile.TemporaryDirectory(prefix="fms-fhir-gunicorn-") as folder:
        log_path = Path(folder) / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=_environment(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_until_healthy(server, start_timeout)
            yield server
        finally:
            stop(server, grace + 5)


def _wait_until_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"gunicorn exited with {server.process.returncode}:\n{server.log()}")
        try:
            status, _, _ = server.request("GET", "/healthz", timeout=2)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise ServerError(f"gunicorn did not answer /healthz within {timeout}s:\n{server.log()}")


def stop(server: Server, timeout: float) -> int:
    """SIGTERM to the master (graceful), SIGKILL to its whole group if it overstays."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode
