"""Where `fms-fhir convert-sheet` spends its time: cProfile over the real command line.

    .venv/bin/python -m benchmarks.profile_sheet [--rows 10000] [--format csv] [--top 10]

Writes the generated sheet (the benchmark's rows) to a temporary folder, runs
`fms-fhir convert-sheet FILE --format ndjson --out DIR` in this process under cProfile (whatever
the core does at run time), and prints the top functions by cumulative time, then by own time.
`--save FILE` keeps the raw profile for snakeviz or pstats.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
from pathlib import Path

from benchmarks import generate
from benchmarks.common import ROOT


def _name(key: tuple[str, int, str]) -> str:
    path, line, function = key
    if path.startswith(str(ROOT)):
        path = str(Path(path).relative_to(ROOT))
    elif path != "~":
        path = Path(path).name
    return f"{function} ({path}:{line})" if path != "~" else function


def report(profile: cProfile.Profile, top: int) -> str:
    """The project's functions by cumulative time (without the entry chain that holds the whole
    run: the CLI, the API call, the pipeline loop), then every function by its own time."""
    stats = pstats.Stats(profile, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = sum(own for _, _, own, _, _ in stats.values())
    ours = [
        (key, value)
        for key, value in stats.items()
        if any(f"{ROOT}/{package}/" in key[0] for package in ("adapter", "mappings"))
        and value[3] < 0.9 * total
    ]
    lines = [f"profiled: {total:.2f} s of own time in {len(stats):,} functions", ""]
    lines.append(f"top {top} by cumulative time (fms-fhir code, the entry chain left out):")
    lines.append(f"{'cum s':>7} {'cum %':>6} {'own s':>7} {'calls':>9}  function")
    for key, (_, calls, own, cumulative, _) in sorted(ours, key=lambda kv: -kv[1][3])[:top]:
        lines.append(
            f"{cumulative:7.2f} {cumulative / total:6.1%} {own:7.2f} {calls:9,}  {_name(key)}"
        )
    lines.append("")
    lines.append(f"top {top} by own time (every function, builtins included):")
    lines.append(f"{'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>9}  function")
    for key, (_, calls, own, cumulative, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[
        :top
    ]:
        lines.append(f"{own:7.2f} {own / total:6.1%} {cumulative:7.2f} {calls:9,}  {_name(key)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--save", type=Path, help="write the raw profile here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fms-fhir-profile-"))
    try:
        sheet = generate.ensure(folder, args.format, args.rows)
        from adapter.cli import main as cli

        command = ["convert-sheet", str(sheet), "--format", "ndjson", "--out", str(folder / "out")]
        profile = cProfile.Profile()
        status: int | str | None = None
        profile.enable()
        try:
            cli(command)
        except SystemExit as done:
            status = done.code
        finally:
            profile.disable()
        if status not in (0, None):
            print(f"convert-sheet exited with {status}")
            return 1
        if args.save:
            profile.dump_stats(args.save)
        print(f"fms-fhir convert-sheet, {args.rows:,} rows {args.format.upper()} -> NDJSON")
        print(report(profile, args.top))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
