"""Throughput and memory of `convert`, as ratios to plain baselines measured in the same run.

    make bench            (or: .venv/bin/python benchmarks/bench_convert.py [visits])

Baselines: `json-roundtrip` parses and re-serializes the input documents (the floor any converter
pays); `fhir.resources` builds the same output through the R4B models (the road not taken).
"""

from __future__ import annotations

import copy
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from adapter import jsonio
from adapter.api import convert
from adapter.fhir import get_fhir_model_class
from adapter.settings import DEFAULT as SETTINGS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "baseline-visit.json"


def visits(count: int) -> list[list[dict]]:
    template = json.loads(EXAMPLE.read_text())
    result = []
    for n in range(count):
        visit = copy.deepcopy(template)
        for document in visit:
            document["subject"]["identifier"]["value"] = f"P{n:06d}"
        result.append(visit)
    return result


def ours(visit: list[dict]) -> bytes:
    return jsonio.dumps(convert(visit, SETTINGS).bundle, pretty=False)


def json_roundtrip(visit: list[dict]) -> bytes:
    return json.dumps(json.loads(json.dumps(visit))).encode()


def through_models(visit: list[dict]) -> bytes:
    bundle = convert(visit, SETTINGS).bundle
    model = get_fhir_model_class("Bundle").model_validate(bundle)
    return model.model_dump_json(exclude_none=True).encode()


def measure(run: Callable[[list[dict]], bytes], data: list[list[dict]]) -> tuple[float, int]:
    start = time.perf_counter()
    for visit in data:
        run(visit)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    for visit in data[:50]:
        run(visit)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(data) / elapsed, peak


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    data = visits(count)
    ours(data[0])  # warm caches (registry, models)
    through_models(data[0])
    rows = {
        "json-roundtrip (baseline)": measure(json_roundtrip, data),
        "fms-fhir convert": measure(ours, data),
        "via fhir.resources models": measure(through_models, data[: max(count // 5, 20)]),
    }
    base_rate, base_peak = rows["json-roundtrip (baseline)"]
    print(f"{count} visits of 4 instruments (18 resources each)")
    print(f"{'pipeline':28} {'visits/s':>10} {'x baseline':>11} {'peak KiB':>9} {'x baseline':>11}")
    for name, (rate, peak) in rows.items():
        print(
            f"{name:28} {rate:10.0f} {rate / base_rate:11.3f} {peak / 1024:9.0f} {peak / base_peak:11.1f}"
        )


if __name__ == "__main__":
    main()
