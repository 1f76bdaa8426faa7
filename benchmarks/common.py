"""What every benchmark section shares: the machine, measured child processes, table printing."""

from __future__ import annotations

import atexit
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without FMS_FHIR_* settings: every run uses the defaults."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FMS_FHIR_")}
    environment.update(extra or {})
    return environment


@dataclass(frozen=True)
class Measured:
    seconds: float
    """Wall time from start to exit of the child process."""
    cpu: float
    """CPU seconds (user and system) of the child: what it cost, whatever it waited for."""
    peak_rss: int
    """The child's peak resident set size in bytes (ru_maxrss of that one process)."""
    status: int
    stdout: str
    stderr: str


class Spawner:
    """The small process that starts every measured child (see benchmarks/spawner.py)."""

    _process: subprocess.Popen | None = None

    @classmethod
    def run(cls, request: dict) -> dict:
        if cls._process is None or cls._process.poll() is not None:
            script = Path(__file__).with_name("spawner.py")
            cls._process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            atexit.register(cls.close)
        assert cls._process.stdin is not None and cls._process.stdout is not None
        cls._process.stdin.write(json.dumps(request) + "\n")
        cls._process.stdin.flush()
        answer = cls._process.stdout.readline()
        if not answer:
            raise RuntimeError("the spawner process ended")
        return json.loads(answer)

    @classmethod
    def close(cls) -> None:
        if cls._process is not None and cls._process.poll() is None:
            assert cls._process.stdin is not None
            cls._process.stdin.close()
            cls._process.wait(timeout=30)
        cls._process = None


DIRTY_LIMIT = 64 * 1024 * 1024
"""Unwritten page-cache bytes above which a run waits for them to be written first."""


def _dirty_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def flush_earlier_writes() -> None:
    """A 100,000-row run leaves 2.5 GB in the page cache; the kernel writing it out during the
    next run slowed that run by up to a fifth, whichever program it was. Flushed when more than
    DIRTY_LIMIT is waiting (where the system says; elsewhere always): a small run, or the suite's
    smoke run beside other tests' writes, does not wait on a disk it barely used."""
    if not hasattr(os, "sync"):
        return
    dirty = _dirty_bytes()
    if dirty is None or dirty > DIRTY_LIMIT:
        os.sync()


def run_measured(
    command: Sequence[str | Path], cwd: Path = ROOT, timeout: float = 3600
) -> Measured:
    """One fresh process: its wall time and its own peak RSS (ru_maxrss from os.wait4), started
    by the spawner so that the benchmark's own memory is not counted in it.

    What earlier runs wrote is flushed to the disk first (`os.sync`, not timed) when it is much
    (`flush_earlier_writes`)."""
    _, (measured,) = run_together([command], cwd, timeout)
    return measured


def run_together(
    commands: Sequence[Sequence[str | Path]], cwd: Path = ROOT, timeout: float = 3600
) -> tuple[float, list[Measured]]:
    """The commands started at once, each a fresh process as `run_measured` starts it: the wall
    time from the first start to the last end, and each one's figures."""
    flush_earlier_writes()
    with tempfile.TemporaryDirectory(prefix="fms-fhir-bench-run-") as folder:
        files = [
            (Path(folder) / f"stdout-{n}", Path(folder) / f"stderr-{n}")
            for n in range(len(commands))
        ]
        answer = Spawner.run(
            {
                "together": [
                    {
                        "command": [str(part) for part in command],
                        "cwd": str(cwd),
                        "env": child_environment(),
                        "stdout": str(out),
                        "stderr": str(err),
                        "timeout": timeout,
                    }
                    for command, (out, err) in zip(commands, files, strict=True)
                ]
            }
        )
        return answer["seconds"], [
            Measured(
                run["seconds"],
                run["cpu"],
                run["maxrss"],
                run["status"],
                out.read_text(errors="replace"),
                err.read_text(errors="replace"),
            )
            for run, (out, err) in zip(answer["runs"], files, strict=True)
        ]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "unknown"


def machine_lines() -> list[str]:
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    packages = ", ".join(
        f"{name} {_version(name)}"
        for name in (
            "fms-fhir",
            "orjson",
            "openpyxl",
            "python-calamine",
            "fhir.resources",
            "gunicorn",
            "flask",
        )
    )
    return [
        f"machine: {cores} cores ({usable} usable), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"python:  {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"code:    {_git()}; {packages}",
        load_line(),
    ]


def load_line() -> str:
    """The machine's load now: other work on a shared machine shows in every figure."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    line = f"load:    {load} (1, 5, 15 min)"
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        fields = dict(part.split("=") for part in some[1:])
        line += f"; CPU pressure {fields['avg60']}% (tasks waiting for a CPU, last minute)"
    except (OSError, IndexError, KeyError, ValueError):
        pass
    return f"{line}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(number: int, title: str) -> None:
    say()
    say(f"== {number}. {title} " + "=" * max(0, 96 - len(title) - len(str(number)) - 6))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: bool = True) -> None:
    """Columns sized to their widest cell; the first column left-aligned, the others right."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = str(cell)
            parts.append(text.ljust(widths[i]) if i == 0 or not right else text.rjust(widths[i]))
        return "  ".join(parts).rstrip()

    say(line(header))
    for row in rows:
        say(line(row))


def count(value: float) -> str:
    return f"{value:,.0f}"


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
