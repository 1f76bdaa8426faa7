"""fms-fhir benchmarks: everything in one run, side by side with the performance targets (issues 11 and 22).

    .venv/bin/python -m benchmarks            # make bench: 1,000 / 10,000 / 100,000 rows
    .venv/bin/python -m benchmarks --smoke    # the smallest sizes only (what CI runs)

Sections: (1) sheet conversion, CSV and XLSX to NDJSON, against the same-output baseline
(`benchmarks/baseline_sheet.py`); (1b) the same conversion with --jobs 2 against --jobs 1; (2) the XLSX reader alone, openpyxl against python-calamine;
(3) in-process convert and validate; (4) HTTP under gunicorn on 127.0.0.1; (5) the follow-up
report against its code before issue 22 (`benchmarks/report_baseline/`); (6) the targets.

Benchmarks are not timed tests: a slow machine fails nothing. The run fails (exit 1) only when a
section cannot run or the baseline's output is not the same as fms-fhir's.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import http_bench, micro_bench, reader_bench, report_bench, sheet_bench
from benchmarks.common import count, heading, load_line, machine_lines, say, table

SECTIONS = ("sheets", "jobs", "readers", "micro", "http", "report")
TITLES = {
    "sheets": "Sheet conversion to NDJSON: fms-fhir against the same-output baseline",
    "jobs": "Sheet conversion in N processes: --jobs 2 against --jobs 1 (CSV -> NDJSON)",
    "readers": "XLSX reader alone: openpyxl (read-only) against python-calamine",
    "micro": "In-process: convert one answers document, validate one FIQR response",
    "http": "HTTP under gunicorn on 127.0.0.1, concurrency 1 and 4",
    "report": "Follow-up report: fms-fhir against the report's code before issue 22 (baseline)",
    "targets": "Targets (issues 11 and 22) next to the measured figures",
}


def _sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "").replace(",", "")) for part in text.split("/")})


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--smoke", action="store_true", help="smallest sizes, shortest runs")
    parser.add_argument("--sizes", type=_sizes, help="rows, e.g. 1000/10000/100000")
    parser.add_argument("--formats", default="csv,xlsx", help="csv,xlsx (default both)")
    parser.add_argument("--repeats", type=int, help="runs per measurement (median)")
    parser.add_argument("--http-seconds", type=float, help="load time per HTTP case")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections to run: {','.join(SECTIONS)}"
    )
    parser.add_argument("--workdir", type=Path, help="where sheets and outputs go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated sheets")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    args.formats = [kind.strip() for kind in args.formats.split(",") if kind.strip()]
    if args.sizes is None:
        args.sizes = [1_000] if args.smoke else [1_000, 10_000, 100_000]
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    if args.http_seconds is None:
        args.http_seconds = 2.0 if args.smoke else 5.0
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so the generated sheets and gunicorn are cleaned up


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    say("fms-fhir benchmarks" + (" (smoke: smallest sizes only)" if args.smoke else ""))
    for line in machine_lines():
        say(line)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fms-fhir-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    failures: list[str] = []

    def section(number: int, name: str, body: Callable[[], Any]) -> None:
        heading(number, TITLES[name])
        try:
            results[name] = body()
        except Exception as error:  # a section that cannot run is reported, the others still run
            failures.append(f"{name}: {error.__class__.__name__}: {str(error).splitlines()[0]}")
            say(f"SECTION FAILED: {error.__class__.__name__}: {error}")
            say(traceback.format_exc().rstrip())

    try:
        number = 0
        if "sheets" in args.only:
            number += 1
            section(
                number,
                "sheets",
                lambda: sheet_bench.run(workdir, args.formats, args.sizes, args.repeats),
            )
        if "jobs" in args.only:
            number += 1
            section(number, "jobs", lambda: sheet_bench.run_jobs(workdir, args.sizes, args.repeats))
        if "readers" in args.only:
            number += 1
            section(
                number,
                "readers",
                lambda: reader_bench.run(workdir, args.sizes, args.repeats, results.get("sheets")),
            )
        if "micro" in args.only:
            number += 1
            budget = 0.05 if args.smoke else 0.2
            repeats = 3 if args.smoke else 7
            section(number, "micro", lambda: micro_bench.run(budget, repeats))
        if "http" in args.only:
            number += 1
            rounds = 1 if args.smoke else 3
            section(number, "http", lambda: http_bench.run(args.http_seconds, rounds))
        if "report" in args.only:
            number += 1
            cohort, long_visits = ((2, 4), 100) if args.smoke else ((300, 4), 10_000)
            section(number, "report", lambda: report_bench.run(workdir, *cohort, long_visits))
        heading(number + 1, TITLES["targets"])
        targets(results, args)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    say()
    say(load_line().replace("load:    ", "load at the end: "))
    took = time.perf_counter() - started
    if failures:
        say(f"benchmarks FAILED after {took:,.0f} s: " + "; ".join(failures))
        return 1
    say(f"benchmarks done in {took:,.0f} s: {len(args.only)} sections ran")
    return 0


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def targets(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[list[str]] = []
    sheets = results.get("sheets")
    if sheets:
        for kind in args.formats:
            figures = sorted((f for f in sheets["figures"] if f.kind == kind), key=lambda f: f.rows)
            if not figures:
                continue
            largest = figures[-1]
            value = largest.rate("fms-fhir") / largest.rate("baseline")
            goal = ">= 0.70x" if kind == "csv" else "(CSV's goal)"
            rows.append(
                [
                    f"{kind.upper()} -> NDJSON rows/s, fms-fhir / baseline ({count(largest.rows)} rows)",
                    goal,
                    f"{value:.2f}x ({count(largest.rate('fms-fhir'))} vs "
                    f"{count(largest.rate('baseline'))} rows/s; CPU time "
                    f"{largest.cpu_ratio():.2f}x)",
                    _status(value >= 0.7) if kind == "csv" else "-",
                ]
            )
        for kind in args.formats:
            figures = sorted((f for f in sheets["figures"] if f.kind == kind), key=lambda f: f.rows)
            if len(figures) < 2:
                continue
            small, large = figures[0], figures[-1]
            value = large.peak("fms-fhir") / small.peak("fms-fhir")
            rows.append(
                [
                    f"{kind.upper()} peak RSS, {count(large.rows)} rows / {count(small.rows)} rows",
                    "<= 1.25x",
                    f"{value:.3f}x ({large.peak('fms-fhir') / 2**20:,.1f} vs "
                    f"{small.peak('fms-fhir') / 2**20:,.1f} MiB)",
                    _status(value <= 1.25),
                ]
            )
    jobs = results.get("jobs")
    if jobs:
        largest = max(jobs["figures"], key=lambda f: f["rows"])
        rows.append(
            [
                f"--jobs 2 / --jobs 1 rows/s ({count(largest['rows'])} rows, CSV -> NDJSON)",
                ">= 1.70x",
                f"{largest['speedup']:.2f}x (CPU time {largest['cpu'][2]:.1f} vs "
                f"{largest['cpu'][1]:.1f} s); the machine's ceiling in the same turns, the rows "
                f"in two halves by two --jobs 1 at once: {largest['ceiling']:.2f}x "
                f"(CPU {largest['ceiling_cpu']:.2f}x)",
                _status(largest["speedup"] >= 1.7),
            ]
        )
    micro = results.get("micro")
    if micro:
        value = micro["ratio"]
        rows.append(
            [
                "validate FIQR response / fhir.resources parse alone",
                "<= 2x",
                f"{value:.2f}x ({micro['validate'] * 1e6:,.0f} vs {micro['parse'] * 1e6:,.0f} us)",
                _status(value <= 2),
            ]
        )
    http = results.get("http")
    if http:
        for name, figures in http.items():
            if name.startswith("POST /$convert-answers (visit"):
                cpu = figures.get("cpu_of_trivial")
                rows.append(
                    [
                        f"$convert-answers (visit) req/s / trivial route, "
                        f"c={name.rsplit('=', 1)[1]}",
                        ">= 50%",
                        f"{figures['of_trivial']:.0%} ({count(figures['rate'])} req/s"
                        + (f"; CPU per request {cpu:.2f}x" if cpu else "")
                        + ")",
                        _status(figures["of_trivial"] >= 0.5),
                    ]
                )
        for name, figures in http.items():
            if name.endswith("c=4") and not name.startswith("GET"):
                label = name.removesuffix(" c=4").replace("POST /QuestionnaireResponse/", "")
                label = label.replace("POST /", "")
                rows.append(
                    [
                        f"p99 at c=4, {label}",
                        "< 10 ms",
                        f"{figures['p99'] * 1e3:.1f} ms (p50 {figures['p50'] * 1e3:.1f} ms)",
                        _status(figures["p99"] < 0.010),
                    ]
                )
    rows += report_bench.targets(results.get("report"))
    if not rows:
        say("no figures (the sections that give them did not run)")
        return
    table(["target", "goal", "measured", "status"], rows, right=False)
    say(
        "(medians on this machine, informational: a slow or busy machine fails nothing. "
        "$convert-answers is the whole visit of examples/baseline-visit.json; section 4 has one "
        "document.)"
    )
