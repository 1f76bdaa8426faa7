"""Section 3: in-process micro-benchmarks of the core API, timeit-style (median of repeats).

The documents are those of `examples/baseline-visit.json` (fm2016, FIQR, PHQ-4, pain). The FIQR
QuestionnaireResponse validated is the one `convert` makes of the FIQR document; the same dict
is given to `adapter.api.validate` and to the R4B model alone
(`fhir.resources.R4B.questionnaireresponse.QuestionnaireResponse.model_validate`).
"""

from __future__ import annotations

import copy
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, count, median, say, table

EXAMPLE = ROOT / "examples" / "baseline-visit.json"


def calibrate(call: Callable[[], Any], budget: float) -> int:
    """Calls per repeat so that one repeat takes about `budget` seconds."""
    timer = timeit.Timer(call)
    number = 1
    while True:
        took = timer.timeit(number)
        if took >= budget / 4 or number >= 1 << 20:
            break
        number *= 2
    return max(1, int(number * budget / max(took, 1e-9)))


def measure(
    cases: list[tuple[str, Callable[[], Any]]], budget: float, repeats: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds per call of every case, repeat by repeat: the cases take turns within each
    repeat, so a busy spell of a shared machine weighs on all of them alike."""
    numbers = {name: calibrate(call, budget) for name, call in cases}
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(repeats):
        for name, call in cases:
            times[name].append(timeit.Timer(call).timeit(numbers[name]) / numbers[name])
    return times, numbers


def run(budget: float, repeats: int) -> dict[str, float]:
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    from adapter import api
    from adapter.settings import Settings

    settings = Settings()
    visit = json.loads(Path(EXAMPLE).read_text())
    fiqr_document = next(d for d in visit if d["instrument"] == "fiqr")
    converted = api.convert(copy.deepcopy(fiqr_document), settings).bundle
    response = next(
        entry["resource"]
        for entry in converted["entry"]
        if entry["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    before = json.dumps(response, sort_keys=True)
    validated = api.validate(response, settings)
    if not validated.valid or json.dumps(response, sort_keys=True) != before:
        raise RuntimeError("validate refused (or changed) the FIQR response convert made")
    QuestionnaireResponse.model_validate(response)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("convert: one FIQR answers document", lambda: api.convert(fiqr_document, settings)),
        (
            f"convert: the whole visit ({len(visit)} documents)",
            lambda: api.convert(visit, settings),
        ),
        ("validate: the FIQR QuestionnaireResponse", lambda: api.validate(response, settings)),
        (
            "parse alone: R4B QuestionnaireResponse.model_validate",
            lambda: QuestionnaireResponse.model_validate(response),
        ),
    ]
    say(
        f"timeit: each repeat about {budget:g} s per case, the cases in turn, median of "
        f"{repeats} repeats; documents from {EXAMPLE.relative_to(ROOT)}"
    )
    times, numbers = measure(cases, budget, repeats)
    results = {name: median(values) for name, values in times.items()}
    rows = [
        [name, f"{results[name] * 1e6:,.0f}", count(1 / results[name]), f"{numbers[name]:,}"]
        for name, _ in cases
    ]
    table(["case", "us/call", "calls/s", "calls/repeat"], rows)
    validate_name = "validate: the FIQR QuestionnaireResponse"
    parse_name = "parse alone: R4B QuestionnaireResponse.model_validate"
    validate, parse = results[validate_name], results[parse_name]
    ratio = median([v / p for v, p in zip(times[validate_name], times[parse_name], strict=True)])
    say(
        f"validate / parse alone: {ratio:.2f}x (median of the ratios repeat by repeat; validate "
        "includes that parse and every rule against the Questionnaire)"
    )
    return {
        "validate": validate,
        "parse": parse,
        "ratio": ratio,
        "convert_fiqr": results["convert: one FIQR answers document"],
        "convert_visit": results[f"convert: the whole visit ({len(visit)} documents)"],
    }
