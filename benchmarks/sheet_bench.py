"""Section 1: `fms-fhir convert-sheet --format ndjson` against the same-output baseline.

Every measurement is one fresh child process (the real command line, as a user runs it): its wall
time, its CPU time and its own peak RSS, read by os.wait4. The two programs alternate, run by run. Each
program's start-up (interpreter, imports, a 1-row sheet) is measured apart, so "net" rates show
the conversion alone. After the last run of each size, the two outputs are compared: the same
resource counts per type and total sizes within 10%, or the check fails loudly.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import generate
from benchmarks.common import (
    BIN,
    ROOT,
    Measured,
    count,
    median,
    mib,
    run_measured,
    run_together,
    say,
)

TYPES = ("QuestionnaireResponse", "Observation", "MedicationStatement")
SIZE_TOLERANCE = 0.10
LARGE = 20_000
"""Sizes above this run once per program (a 100,000-row run takes minutes); smaller ones repeat."""


class CheckFailed(RuntimeError):
    """The baseline does not write what fms-fhir writes: its figures would mean nothing."""


def ours(sheet: Path, out: Path, output_format: str = "ndjson") -> list[str | Path]:
    script = BIN / "fms-fhir"
    entry: list[str | Path] = [script] if script.exists() else [sys.executable, "-m", "adapter.cli"]
    return [*entry, "convert-sheet", sheet, "--format", output_format, "--out", out]


def baseline(sheet: Path, out: Path) -> list[str | Path]:
    script = ROOT / "benchmarks" / "baseline_sheet.py"
    return [sys.executable, script, sheet, "--format", "ndjson", "--out", out]


PROGRAMS = {"fms-fhir": ours, "baseline": baseline}


@dataclass
class Figures:
    kind: str
    rows: int
    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PROGRAMS})
    rss: dict[str, list[int]] = field(default_factory=lambda: {p: [] for p in PROGRAMS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PROGRAMS})
    """CPU seconds of each run: the cost of the work even where the disk sets the pace."""
    written: dict[str, int] = field(default_factory=dict)
    """NDJSON bytes each program wrote (the last run)."""
    check: str = ""

    def rate(self, program: str) -> float:
        return self.rows / median(self.seconds[program])

    def net_rate(self, program: str, startup: float) -> float | None:
        work = median(self.seconds[program]) - startup
        return self.rows / work if work > 0.1 * median(self.seconds[program]) else None

    def peak(self, program: str) -> float:
        return median(self.rss[program])

    def cpu_ratio(self) -> float:
        """Baseline CPU seconds over fms-fhir's: above 0.7 is within the target's reach."""
        return median(self.cpu["baseline"]) / median(self.cpu["fms-fhir"])


def _measure(command: list[str | Path], out: Path) -> Measured:
    shutil.rmtree(out, ignore_errors=True)
    measured = run_measured(command)
    if measured.status != 0:
        tail = "\n".join((measured.stderr + measured.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(map(str, command))} exited with {measured.status}:\n{tail}")
    return measured


def _lines_and_bytes(path: Path) -> tuple[int, int]:
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines, path.stat().st_size


def _identical(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    with open(first, "rb") as a, open(second, "rb") as b:
        while True:
            chunk = a.read(1 << 22)
            if chunk != b.read(1 << 22):
                return False
            if not chunk:
                return True


def compare(
    kind: str, rows: int, ours_out: Path, base_out: Path
) -> tuple[str, dict[str, int], bool]:
    """The same-output check: (its line, bytes each program wrote, passed)."""
    parts = []
    totals = {"fms-fhir": 0, "baseline": 0}
    counted: dict[str, int] = {}
    same_counts = True
    identical = True
    for kind_name in TYPES:
        mine, theirs = ours_out / f"{kind_name}.ndjson", base_out / f"{kind_name}.ndjson"
        a = _lines_and_bytes(mine) if mine.exists() else (0, 0)
        b = _lines_and_bytes(theirs) if theirs.exists() else (0, 0)
        totals["fms-fhir"] += a[1]
        totals["baseline"] += b[1]
        same_counts &= a[0] == b[0]
        counted[kind_name] = a[0]
        identical &= mine.exists() and theirs.exists() and _identical(mine, theirs)
        parts.append(f"{kind_name} {count(a[0])} vs {count(b[0])}")
    others = sorted(
        p.name for p in ours_out.glob("*.ndjson") if p.name.removesuffix(".ndjson") not in TYPES
    )
    if others:
        parts.append(f"fms-fhir also wrote {', '.join(others)}")
        same_counts = False
    difference = totals["baseline"] / totals["fms-fhir"] - 1 if totals["fms-fhir"] else 1.0
    passed = same_counts and abs(difference) <= SIZE_TOLERANCE
    per_row = sum(counted[k] for k in TYPES if k != "MedicationStatement") / rows if rows else 0
    line = (
        f"{kind:<4} {count(rows):>7} rows ({per_row:g} resources a row and the LDN courses): "
        f"{', '.join(parts)}; "
        f"{totals['fms-fhir'] / 1e6:,.1f} MB vs {totals['baseline'] / 1e6:,.1f} MB "
        f"({difference:+.2%}); byte-identical: {'yes' if identical else 'no'} -> "
        + ("passed" if passed else "FAILED")
    )
    return line, totals, passed


def run(workdir: Path, kinds: list[str], sizes: list[int], repeats: int) -> dict[str, object]:
    say(
        f"Generated canonical-template visits ({generate.PATIENTS} patients, seed {generate.SEED}): "
        "fm2016 (19 WPI areas, 6 SSS items, fm-duration-3m), 21 FIQR items, 4 PHQ-4 items, "
        f"pain-mean, pain-max and ldn_dose_mg (4.5 mg, blank on {generate.DOSE_BLANK:.0%} of "
        "visits)."
    )
    say(
        "fms-fhir: `fms-fhir convert-sheet FILE --format ndjson --out DIR`; baseline: "
        "`python benchmarks/baseline_sheet.py FILE --format ndjson --out DIR`; each run a fresh "
        f"process; median of {repeats} runs up to {count(LARGE)} rows, 1 run above."
    )
    startup: dict[tuple[str, str], float] = {}
    for kind in kinds:
        one = generate.ensure(workdir, kind, 1)
        for program, command in PROGRAMS.items():
            out = workdir / f"startup-{program}"
            times = [_measure(command(one, out), out).seconds for _ in range(max(1, repeats))]
            startup[(kind, program)] = median(times)
            shutil.rmtree(out, ignore_errors=True)
    say(
        "start-up (a 1-row sheet, interpreter and imports included): "
        + "; ".join(
            f"{kind} {program} {seconds:.2f} s" for (kind, program), seconds in startup.items()
        )
    )
    say()
    header = (
        f"{'':12} {'':5} | {'fms-fhir convert-sheet':^40} | {'same-output baseline':^40} | "
        f"{'fms-fhir / baseline':^28}"
    )
    columns = f"{'rows/s':>8} {'net rows/s':>10} {'bytes/row':>10} {'peak MiB':>9}"
    say(header)
    say(
        f"{'format  rows':12} {'runs':>5} | {columns} | {columns} | "
        f"{'rows/s':>8} {'net':>9} {'cpu':>8}"
    )
    figures: list[Figures] = []
    checks: list[tuple[str, bool]] = []
    for kind in kinds:
        for rows in sizes:
            path = workdir / f"visits-{rows}.{kind}"
            if not path.exists():
                say(f"  (writing {path.name} ...)")
                generate.ensure(workdir, kind, rows)
            result = Figures(kind, rows)
            runs = repeats if rows <= LARGE else 1
            outs = {}
            for attempt in range(runs):
                for program, command in PROGRAMS.items():
                    out = workdir / f"out-{program}-{kind}-{rows}"
                    measured = _measure(command(path, out), out)
                    result.seconds[program].append(measured.seconds)
                    result.rss[program].append(measured.peak_rss)
                    result.cpu[program].append(measured.cpu)
                    outs[program] = out
                    if attempt < runs - 1:
                        shutil.rmtree(out, ignore_errors=True)
            line, written, passed = compare(kind, rows, outs["fms-fhir"], outs["baseline"])
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
            result.check = line
            result.written = written
            checks.append((line, passed))
            figures.append(result)
            cells = []
            for program in PROGRAMS:
                net = result.net_rate(program, startup[(kind, program)])
                cells.append(
                    f"{count(result.rate(program)):>8} {count(net) if net else '-':>10} "
                    f"{count(written[program] / rows):>10} "
                    f"{mib(result.peak(program)):>9}"
                )
            base_net = result.net_rate("baseline", startup[(kind, "baseline")])
            our_net = result.net_rate("fms-fhir", startup[(kind, "fms-fhir")])
            net_ratio = f"{our_net / base_net:.2f}x" if our_net and base_net else "-"
            wall_ratio = result.rate("fms-fhir") / result.rate("baseline")
            say(
                f"{kind:<5} {count(rows):>7} {runs:>4} | {cells[0]} | {cells[1]} | "
                f"{wall_ratio:>7.2f}x {net_ratio:>9} {result.cpu_ratio():>7.2f}x"
            )
    say()
    say(
        "same-output check (resource counts per type must match, total NDJSON size within "
        f"{SIZE_TOLERANCE:.0%}):"
    )
    for line, _ in checks:
        say(f"  {line}")
    passed = all(ok for _, ok in checks)
    say(f"same-output check: {'passed' if passed else 'FAILED'}")
    if not passed:
        raise CheckFailed("the baseline's output is not the same as fms-fhir's (see above)")
    return {"figures": figures, "startup": startup}


# --- --jobs: the same command in N processes ------------------------------------------------------


JOBS = (1, 2)


def jobs_command(
    sheet: Path, out: Path, jobs: int, output_format: str = "ndjson"
) -> list[str | Path]:
    return [*ours(sheet, out, output_format), "--jobs", str(jobs)]


def _same_folder(first: Path, second: Path) -> bool:
    names = sorted(p.name for p in first.iterdir())
    return names == sorted(p.name for p in second.iterdir()) and all(
        _identical(first / name, second / name) for name in names if (first / name).is_file()
    )


def _together(path: Path, workdir: Path, rows: int) -> tuple[float, list[Measured]]:
    """Two `--jobs 1` conversions of the sheet (`rows` rows) started at once: the wall time of
    both, and each one's figures (their outputs removed)."""
    outs = [workdir / f"out-together{n}-{rows}" for n in (1, 2)]
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    wall, both = run_together([jobs_command(path, out, 1) for out in outs])
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    for measured in both:
        if measured.status != 0:
            tail = "\n".join((measured.stderr + measured.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"two --jobs 1 at once: one exited with {measured.status}:\n{tail}")
    return wall, both


def run_jobs(workdir: Path, sizes: list[int], repeats: int) -> dict[str, object]:
    """`convert-sheet --jobs 2` against `--jobs 1` on the CSV: rows/s, CPU time (os.wait4: the
    command's and its reaped workers'), the peak RSS of its largest process, and the outputs
    compared byte for byte.

    Beside them, the same machine's ceiling, measured in the same turns: the sheet's rows split
    in two halves converted by two `--jobs 1` processes started at once, the same rows and the
    same bytes written, with nothing to hand over. On a shared virtual machine two busy
    processes can each cost more CPU than one alone (the host's other tenants, or two virtual
    cores on one physical core's threads), and that share changes from hour to hour; the
    ceiling says how much of a speed-up is the machine's to give at that moment, and `--jobs 2`
    is shown against it too."""
    say(
        "fms-fhir: `fms-fhir convert-sheet FILE --format ndjson --out DIR --jobs N`, CSV; each run "
        f"a fresh process; median of {repeats} runs at every size, the commands taking turns. CPU "
        "is the parent's and its workers' (a shared machine's other work slows wall time, not "
        "CPU time). Ceiling: the same number of rows as two halves, two `--jobs 1` conversions "
        "started at once (rows/s of both together, their CPU summed): the most two processes "
        "give on this machine at that time."
    )
    say()
    say(
        f"{'rows':>8} {'runs':>5} | "
        + " | ".join(f"jobs {j}: {'rows/s':>8} {'CPU s':>7} {'peak MiB':>9}" for j in JOBS)
        + f" | {'speed-up':>8} {'CPU ratio':>9} | ceiling: {'rows/s':>8} {'speed-up':>8} "
        + f"{'CPU ratio':>9} | jobs 2 of ceiling | same bytes"
    )
    results: list[dict[str, object]] = []
    all_same = True
    for rows in sizes:
        path = generate.ensure(workdir, "csv", rows)
        half = generate.ensure(workdir, "csv", rows // 2)
        runs = repeats  # at every size: one 100,000-row run varied from 1.4x to 1.8x
        seconds: dict[int, list[float]] = {j: [] for j in JOBS}
        cpu: dict[int, list[float]] = {j: [] for j in JOBS}
        rss: dict[int, list[int]] = {j: [] for j in JOBS}
        pair_seconds: list[float] = []
        pair_cpu: list[float] = []
        outs: dict[int, Path] = {}
        for attempt in range(runs):
            for jobs in JOBS:
                out = workdir / f"out-jobs{jobs}-{rows}"
                measured = _measure(jobs_command(path, out, jobs), out)
                seconds[jobs].append(measured.seconds)
                cpu[jobs].append(measured.cpu)
                rss[jobs].append(measured.peak_rss)
                outs[jobs] = out
                if attempt < runs - 1:
                    shutil.rmtree(out, ignore_errors=True)
            wall, both = _together(half, workdir, rows // 2)
            pair_seconds.append(wall)
            pair_cpu.append(sum(m.cpu for m in both))
        same = _same_folder(outs[1], outs[2])
        all_same &= same
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
        rate = {j: rows / median(seconds[j]) for j in JOBS}
        ceiling = 2 * (rows // 2) / median(pair_seconds)
        figures = {
            "rows": rows,
            "rate": rate,
            "cpu": {j: median(cpu[j]) for j in JOBS},
            "speedup": rate[2] / rate[1],
            "ceiling": ceiling / rate[1],
            "ceiling_cpu": median(pair_cpu) / median(cpu[1]),
            "same": same,
        }
        results.append(figures)
        say(
            f"{count(rows):>8} {runs:>5} | "
            + " | ".join(
                f"jobs {j}: {count(rate[j]):>8} {median(cpu[j]):>7.2f} {mib(median(rss[j])):>9}"
                for j in JOBS
            )
            + f" | {rate[2] / rate[1]:>7.2f}x {median(cpu[2]) / median(cpu[1]):>8.2f}x | "
            + f"ceiling: {count(ceiling):>8} {figures['ceiling']:>7.2f}x "
            + f"{figures['ceiling_cpu']:>8.2f}x | {rate[2] / ceiling:>16.0%} | "
            + ("yes" if same else "NO")
        )
    formats = _jobs_formats(workdir, sizes[len(sizes) // 2], repeats)
    all_same &= all(bool(f["same"]) for f in formats)
    say(f"jobs same-bytes check: {'passed' if all_same else 'FAILED'}")
    if not all_same:
        raise CheckFailed("--jobs 2 did not write what --jobs 1 writes (see above)")
    return {"figures": results, "formats": formats}


OTHER_FORMATS = ("transaction", "patient")
"""The default format (a Bundle a visit: a file a row) and a Bundle a patient."""


def _jobs_formats(workdir: Path, rows: int, repeats: int) -> list[dict[str, object]]:
    """`--jobs 2` against `--jobs 1` in the other output formats, at one size: what a user of
    the default format gets (a file a visit costs the file system more than NDJSON lines)."""
    say()
    say(
        f"the other formats, {count(rows)} rows (`--format F`), median of {repeats} runs, the "
        "commands taking turns:"
    )
    say(
        f"{'format':>12} | "
        + " | ".join(f"jobs {j}: {'rows/s':>8} {'CPU s':>7}" for j in JOBS)
        + f" | {'speed-up':>8} | same bytes"
    )
    path = generate.ensure(workdir, "csv", rows)
    found: list[dict[str, object]] = []
    for output_format in OTHER_FORMATS:
        seconds: dict[int, list[float]] = {j: [] for j in JOBS}
        cpu: dict[int, list[float]] = {j: [] for j in JOBS}
        outs: dict[int, Path] = {}
        for attempt in range(repeats):
            for jobs in JOBS:
                out = workdir / f"out-{output_format}-jobs{jobs}-{rows}"
                measured = _measure(jobs_command(path, out, jobs, output_format), out)
                seconds[jobs].append(measured.seconds)
                cpu[jobs].append(measured.cpu)
                outs[jobs] = out
                if attempt < repeats - 1:
                    shutil.rmtree(out, ignore_errors=True)
        same = _same_folder(outs[1], outs[2])
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
        rate = {j: rows / median(seconds[j]) for j in JOBS}
        found.append(
            {
                "format": output_format,
                "rows": rows,
                "rate": rate,
                "cpu": {j: median(cpu[j]) for j in JOBS},
                "speedup": rate[2] / rate[1],
                "same": same,
            }
        )
        say(
            f"{output_format:>12} | "
            + " | ".join(f"jobs {j}: {count(rate[j]):>8} {median(cpu[j]):>7.2f}" for j in JOBS)
            + f" | {rate[2] / rate[1]:>7.2f}x | "
            + ("yes" if same else "NO")
        )
    return found
