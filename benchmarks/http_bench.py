"""Section 4: the HTTP service under gunicorn on 127.0.0.1, bounded in time.

gunicorn starts as a child process with the repository's `gunicorn.conf.py` on a free loopback
port (FMS_FHIR_BIND), every other setting its default. The load generator is this process: N
threads, each with its own connection, sending the next request as soon as the last answer is
read (HTTP/1.1; a connection the server closes is opened again, and that time counts in the
latency). Each case runs a fixed time after a short warm-up; requests/s counts answers received,
and every answer must be 200. The workers' CPU time (user + system, from /proc) over each case,
divided by its requests, is what one request costs the server whatever else the machine runs.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, child_environment, count, median, say

EXAMPLE = ROOT / "examples" / "baseline-visit.json"
CONVERT = "POST /$convert-answers"
FHIR_JSON = "application/fhir+json"


def gunicorn_available() -> bool:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return (ROOT / "gunicorn.conf.py").exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Connection:
    """A minimal HTTP/1.1 client over one socket: fixed request bytes, Content-Length or chunked
    answers, reconnecting when the server closes."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer = b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _fill(self) -> bool:
        assert self.sock is not None
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buffer += data
        return True

    def exchange(self) -> tuple[int, bytes]:
        """(status, body) of one request; one retry on a fresh connection if the kept one died."""
        for attempt in (0, 1):
            reused = self.sock is not None
            if self.sock is None:
                self._connect()
            try:
                assert self.sock is not None
                self.sock.sendall(self.request)
                return self._answer()
            except (ConnectionError, EOFError):
                self.close()
                if not reused or attempt:
                    raise
        raise ConnectionError("unreachable")

    def _answer(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError("connection closed before the answer")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                if not self._fill():
                    raise EOFError("connection closed inside the body")
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        elif headers.get("transfer-encoding") == "chunked":
            body = self._chunked()
        else:
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
            self.close()
        if headers.get("connection") == "close" or lines[0].startswith("HTTP/1.0"):
            self.close()
        return status, body

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill():
                    raise EOFError("connection closed inside a chunk")
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self.buffer) < size + 2:
                if not self._fill():
                    raise EOFError("connection closed inside a chunk")
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2 :]
            if size == 0:
                return body


def request_bytes(
    method: str, path: str, body: bytes | None, port: int, accept: str = FHIR_JSON
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Accept: {accept}",
        "Connection: keep-alive",
    ]
    if body is not None:
        lines += [f"Content-Type: {FHIR_JSON}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    answer_bytes: int
    cpu: float | None = None
    """CPU seconds (user + system) the server's workers spent over the case, when known."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float | None:
        return self.cpu / self.requests if self.cpu is not None and self.requests else None

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def load(
    port: int,
    request: bytes,
    concurrency: int,
    seconds: float,
    warmup: float,
    server: Gunicorn | None = None,
) -> Load:
    """`concurrency` threads, each its own connection, for `warmup` + `seconds`; with `server`,
    its workers' CPU time over the measured `seconds`."""
    start_at = time.perf_counter() + warmup
    stop_at = start_at + seconds
    results: list[tuple[int, list[float], int]] = []
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = Connection(port, request)
        done = size = 0
        latencies: list[float] = []
        try:
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    break
                status, body = connection.exchange()
                ended = time.perf_counter()
                if status != 200:  # every answer must be a 200, or the figures mean nothing
                    failures.append(f"{status}: {body[:300]!r}")
                    break
                if began >= start_at:
                    done += 1
                    latencies.append(ended - began)
                    size = len(body)
        except (OSError, EOFError, ValueError) as error:
            failures.append(f"{error.__class__.__name__}: {error}")
        finally:
            connection.close()
        with lock:
            results.append((done, latencies, size))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu = None
    if server is not None:
        time.sleep(max(0.0, start_at - time.perf_counter()))
        before = server.cpu_times()
        time.sleep(max(0.0, stop_at - time.perf_counter()))
        cpu = _spent(before, server.cpu_times())
    for thread in threads:
        thread.join(warmup + seconds + 60)
    if failures:
        raise RuntimeError("requests failed: " + "; ".join(failures[:3]))
    return Load(
        sum(r[0] for r in results),
        seconds,
        [latency for r in results for latency in r[1]],
        max((r[2] for r in results), default=0),
        cpu,
    )


TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _spent(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds between two readings (a worker started in between counts from zero)."""
    if before is None or after is None:
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Gunicorn:
    """gunicorn -c gunicorn.conf.py on a free 127.0.0.1 port; stopped with SIGTERM."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log_path = folder / "gunicorn.log"
        environment = child_environment({"FMS_FHIR_BIND": f"127.0.0.1:{self.port}"})
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_healthy(self, timeout: float = 60) -> None:
        request = request_bytes("GET", "/healthz", None, self.port, "application/json")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            connection = Connection(self.port, request)
            try:
                status, body = connection.exchange()
                if status == 200:
                    return
                if 400 <= status < 500:
                    raise RuntimeError(f"GET /healthz answered {status}: {body[:300]!r}")
            except (OSError, EOFError):
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        raise RuntimeError(
            f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{self.log()}"
        )

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def workers(self) -> int:
        return len(self.worker_pids())

    def cpu_times(self) -> dict[int, float] | None:
        """Each worker's CPU seconds so far (user + system), or None where /proc cannot say."""
        times: dict[int, float] = {}
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            times[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        return times or None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def cases(port: int) -> list[tuple[str, bytes]]:
    visit = json.loads(EXAMPLE.read_text())
    fiqr = next(d for d in visit if d["instrument"] == "fiqr")
    from adapter import api
    from adapter.settings import Settings

    bundle = api.convert(copy.deepcopy(fiqr), Settings()).bundle
    response = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    return [
        (
            "GET /healthz (trivial)",
            request_bytes("GET", "/healthz", None, port, "application/json"),
        ),
        (
            f"POST /$convert-answers (visit, {len(visit)} documents)",
            request_bytes("POST", "/$convert-answers", json.dumps(visit).encode(), port),
        ),
        (
            "POST /$convert-answers (one FIQR document)",
            request_bytes("POST", "/$convert-answers", json.dumps(fiqr).encode(), port),
        ),
        (
            "POST /QuestionnaireResponse/$validate (FIQR)",
            request_bytes(
                "POST", "/QuestionnaireResponse/$validate", json.dumps(response).encode(), port
            ),
        ),
    ]


def run(
    seconds: float, rounds: int = 1, concurrencies: tuple[int, ...] = (1, 4)
) -> dict[str, dict[str, Any]]:
    """Every case at every concurrency, `rounds` times interleaved (a busy spell of a shared
    machine then hits every case alike); medians over the rounds."""
    if not gunicorn_available():
        raise RuntimeError("gunicorn is not installed (or gunicorn.conf.py is missing)")
    runs: dict[tuple[str, int], list[Load]] = {}
    with tempfile.TemporaryDirectory(prefix="fms-fhir-bench-http-") as folder:
        server = Gunicorn(Path(folder))
        try:
            server.wait_healthy()
            say(
                f"gunicorn -c gunicorn.conf.py on 127.0.0.1:{server.port}, "
                f"{server.workers()} workers (the config's default); client: threads in this "
                f"process, one connection each; {seconds:g} s per case and concurrency after "
                f"0.5 s of warm-up, {rounds} round{'s' if rounds > 1 else ''} interleaved "
                "(medians)"
            )
            requests = cases(server.port)
            for name, request in requests:
                probe = Connection(server.port, request)
                status, body = probe.exchange()
                probe.close()
                if status != 200:
                    raise RuntimeError(f"{name} answered {status}: {body[:500]!r}")
                load(server.port, request, max(concurrencies), 0.5, 0)  # every worker warm
            for _ in range(rounds):
                for name, request in requests:
                    for concurrency in concurrencies:
                        one = load(server.port, request, concurrency, seconds, 0.5, server)
                        runs.setdefault((name, concurrency), []).append(one)
        finally:
            server.stop()
    results: dict[str, dict[str, Any]] = {}
    say(
        f"{'case':<46} {'c':>3} {'requests':>9} {'req/s':>8} {'range':>13} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'CPU ms/req':>10} {'answer B':>9}"
    )
    for (name, concurrency), measured in runs.items():
        rates = sorted(m.rate for m in measured)
        costs = [c for m in measured if (c := m.cpu_per_request) is not None]
        figures: dict[str, Any] = {
            "rate": median(rates),
            "p50": median([m.percentile(0.50) for m in measured]),
            "p99": median([m.percentile(0.99) for m in measured]),
            "requests": sum(m.requests for m in measured),
            "cpu": median(costs) if costs else None,
        }
        cost = f"{figures['cpu'] * 1e3:.2f}" if figures["cpu"] is not None else "-"
        results[f"{name} c={concurrency}"] = figures
        spread = f"{count(rates[0])}-{count(rates[-1])}" if len(rates) > 1 else "-"
        say(
            f"{name:<46} {concurrency:>3} {count(figures['requests']):>9} "
            f"{count(figures['rate']):>8} {spread:>13} {figures['p50'] * 1e3:>7.2f} "
            f"{figures['p99'] * 1e3:>7.2f} {cost:>10} {count(measured[0].answer_bytes):>9}"
        )
    trivial = {c: results[f"GET /healthz (trivial) c={c}"] for c in concurrencies}
    for name, figures in results.items():
        if name.startswith(CONVERT):
            base = trivial[int(name.rsplit("=", 1)[1])]
            figures["of_trivial"] = figures["rate"] / base["rate"]
            if figures["cpu"] and base["cpu"]:
                figures["cpu_of_trivial"] = figures["cpu"] / base["cpu"]
    say(
        "$convert-answers / trivial route, requests/s: "
        + "; ".join(
            f"{name.removeprefix(CONVERT + ' ')}: {figures['of_trivial']:.0%}"
            for name, figures in results.items()
            if "of_trivial" in figures
        )
    )
    say(
        "CPU per request, $convert-answers / trivial route: "
        + "; ".join(
            f"{name.removeprefix(CONVERT + ' ')}: {figures['cpu_of_trivial']:.2f}x"
            for name, figures in results.items()
            if "cpu_of_trivial" in figures
        )
    )
    return results
