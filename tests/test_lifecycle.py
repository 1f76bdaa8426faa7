"""Corrections reach the server: FHIR's words for a correction, `convert-sheet --since`, a
rejected dose that ends a course, and the small holes of the same kind (issue 19).

The same lifecycle posted to a real FHIR server is in test_lifecycle_server.py.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter import api
from adapter.bundle import bundle
from adapter.cli import main
from adapter.links import links_for
from adapter.medication import daily_dose_mg
from adapter.outcome import InvalidInput
from adapter.report import load_resources, render_report
from adapter.resources import response_resources
from adapter.sheets.delta import Delta, Previous, digest, relative
from adapter.sheets.since import STATE
from tests.support import EXAMPLES, ROOT, SETTINGS, assert_valid_fhir
from tests.support.sheets import PHQ, write_csv

HEADER = ["patient_id", "visit_date", "ldn_dose_mg", "pain-mean", "pain-max", *PHQ]
BEFORE = [
    ["P1", "2024-01-10", "", 60, 80, 1, 2, 1, 1],
    ["P1", "2024-03-10", "1.5", 50, 70, 1, 1, 1, 1],
    ["P2", "2024-01-11", "4.5", 40, 60, 0, 1, 0, 1],
    ["P2", "2024-02-11", "4.5", 30, 50, 0, 0, 0, 1],
]
AFTER = [
    ["P1", "2024-01-10", "", 60, 80, 1, 2, 1, 1],  # unchanged
    ["P1", "2024-03-10", "1.5", 55, 70, 1, 1, 1, 1],  # pain-mean corrected 50 -> 55
    ["P2", "2024-01-11", "4.5", 40, 65, 0, 1, 0, 1],  # pain-max corrected 60 -> 65
    ["P2", "2024-04-11", "4.5", 20, 40, 0, 0, 0, 0],  # a new visit; 2024-02-11 is withdrawn
]
FORMATS = ["transaction", "patient", "ndjson"]


def sheet(path: Path, rows: list[list[Any]]) -> Path:
    return write_csv(path, [HEADER, *rows])


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def written(out: Path) -> dict[str, dict[str, Any]]:
    """Every resource in an output folder by its id (a Bundle entry's id is in its fullUrl)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("*.json")):
        bundle = json.loads(path.read_text())
        assert_valid_fhir(bundle)
        for entry in bundle["entry"]:
            found[entry["fullUrl"].removeprefix("urn:uuid:")] = entry["resource"]
    for path in sorted(out.glob("[!.]*.ndjson")):  # not the state a --since run leaves
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            assert_valid_fhir(resource)
            found[resource["id"]] = resource
    return found


def convert(rows: list[list[Any]], folder: Path, fmt: str = "transaction", *more: str) -> Path:
    out = folder / "out"
    result = cli(
        "convert-sheet", sheet(folder / "s.csv", rows), "--format", fmt, "--out", out, *more
    )
    assert result.exit_code == 0, result.output
    return out


def visit_key(resource: dict[str, Any]) -> tuple[str, str]:
    day = resource.get("authored") or resource.get("effectiveDateTime") or ""
    return resource["subject"]["identifier"]["value"], day


# --- FHIR's own words for a correction ----------------------------------------------------------


PHQ4 = {
    "instrument": "phq4",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "L1"}},
    "authored": "2025-04-10",
    "answers": {"phq4-nervous": 1, "phq4-worry": 1, "phq4-interest": 2, "phq4-down": 2},
}


def test_an_amended_response_keeps_its_identity_and_its_scores_are_corrected():
    first = api.convert(PHQ4, SETTINGS).bundle
    amended = {**PHQ4, "status": "amended", "answers": {**PHQ4["answers"], "phq4-down": 1}}
    second = api.convert(amended, SETTINGS).bundle
    assert [e["fullUrl"] for e in second["entry"]] == [e["fullUrl"] for e in first["entry"]]
    assert [e["request"] for e in second["entry"]] == [e["request"] for e in first["entry"]]
    response, *scores = (e["resource"] for e in second["entry"])
    assert response["status"] == "amended"
    assert response["identifier"] == first["entry"][0]["resource"]["identifier"]
    assert {s["status"] for s in scores} == {"corrected"}
    assert {s["status"] for s in (e["resource"] for e in first["entry"][1:])} == {"final"}
    extracted = api.extract(response, SETTINGS).bundle
    assert {e["resource"]["status"] for e in extracted["entry"]} == {"corrected"}
    assert [e["fullUrl"] for e in extracted["entry"]] == [e["fullUrl"] for e in second["entry"][1:]]


def test_no_entry_carries_a_client_id_and_every_one_is_a_conditional_update():
    bundle = api.convert(PHQ4, SETTINGS, "batch").bundle
    for entry in bundle["entry"]:
        rid = entry["fullUrl"].removeprefix("urn:uuid:")
        assert "id" not in entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{entry['resource']['resourceType']}?identifier="
            f"{SETTINGS.identifier_system}|{rid}",
        }


PHQ9 = {
    "instrument": "phq9",
    "subject": {"identifier": {"system": "urn:example:mrn", "value": "L9"}},
    "authored": "2025-04-10",
    "answers": {f"phq9-q{n}": 1 for n in range(1, 10)},
}


def test_a_flag_is_created_once_and_only_its_withdrawal_is_an_update():
    entries = api.convert(PHQ9, SETTINGS).bundle["entry"]
    (flag,) = [e for e in entries if e["resource"]["resourceType"] == "Flag"]
    rid = flag["fullUrl"].removeprefix("urn:uuid:")
    search = f"identifier={SETTINGS.identifier_system}|{rid}"
    assert flag["request"] == {"method": "POST", "url": "Flag", "ifNoneExist": search}
    assert "id" not in flag["resource"]
    withdrawn = bundle([{**flag["resource"], "id": rid, "status": "entered-in-error"}], SETTINGS)
    assert withdrawn["entry"][0]["request"] == {"method": "PUT", "url": f"Flag?{search}"}


# --- the comparison itself (pure) ---------------------------------------------------------------


def test_a_resource_digests_alike_whatever_the_output_wrote_its_references_as():
    response = api.convert(PHQ4, SETTINGS).converted[0].response
    by_style = {}
    for style in ("transaction", "batch", "ndjson"):
        resources = response_resources(response, links_for(style, SETTINGS)).resources
        kinds = {r["id"]: r["resourceType"] for r in resources}
        by_style[style] = [relative(r, kinds, SETTINGS) for r in resources]
    assert by_style["transaction"] == by_style["batch"] == by_style["ndjson"]
    total = by_style["batch"][1]
    rid = by_style["batch"][0]["id"]
    assert total["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{rid}"}]
    corrected = {**total, "status": "corrected"}
    assert digest(corrected) == digest(total)  # a correction once made is not a change again
    assert digest({**total, "status": "entered-in-error"}) != digest(total)


def test_the_delta_of_a_visit_says_new_changed_unchanged_and_marks_corrections():
    links = links_for("transaction", SETTINGS)
    before = api.convert(PHQ4, SETTINGS).converted[0].resources
    previous = Previous()
    kinds = {r["id"]: r["resourceType"] for r in before}
    for resource in before:
        previous.add(relative(resource, kinds, SETTINGS))
    visit = ("L1", "2025-04-10")
    same = Delta(previous, SETTINGS).compare(visit, before)
    assert same[0] == "unchanged" and same[1] == []
    previous2 = Previous()
    for resource in before:
        previous2.add(relative(resource, kinds, SETTINGS))
    changed = {**PHQ4, "answers": {**PHQ4["answers"], "phq4-down": 1}}
    after = api.convert(changed, SETTINGS).converted[0].resources
    delta = Delta(previous2, SETTINGS)
    state, write, _held = delta.compare(visit, after)
    assert state == "changed"
    statuses = {(r["resourceType"], r["status"]) for r in write}
    assert ("QuestionnaireResponse", "amended") in statuses
    assert ("Observation", "corrected") in statuses
    assert ("Observation", "final") not in statuses
    # GAD-2 (nervous + worry) did not change: it is not written again
    assert len(write) == len(after) - 1 and delta.resources == {"changed": 3, "unchanged": 1}
    assert delta.gone() == (set(), set())
    assert links.to("Observation", "x") == {"reference": "urn:uuid:x"}


# --- convert-sheet --since ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_since_writes_only_what_changed_and_withdraws_a_dropped_visit(tmp_path, fmt):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    previous = convert(BEFORE, tmp_path / "a", fmt)
    full = convert(AFTER, tmp_path / "b", fmt)
    out = tmp_path / "delta"
    report = tmp_path / "report.json"
    result = cli(
        "convert-sheet", sheet(tmp_path / "after.csv", AFTER), "--format", fmt,
        "--since", previous, "--out", out, "--report", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rows 1 new, 2 changed, 1 unchanged; visits withdrawn 1" in result.output
    delta = written(out)
    old, new = written(previous), written(full)
    withdrawn = {rid for rid in old if rid not in new}
    changed = {rid for rid in new if rid in old and _fresh(old[rid]) != _fresh(new[rid])}
    added = {rid for rid in new if rid not in old}
    assert set(delta) == withdrawn | changed | added
    assert len(withdrawn) == 7 and len(added) == 7 and len(changed) == 5
    assert {visit_key(old[rid]) for rid in withdrawn} == {("P2", "2024-02-11")}
    for rid in withdrawn:
        assert delta[rid]["status"] == "entered-in-error"
        assert _fresh(delta[rid]) == _fresh(old[rid]) | {"status": "entered-in-error"}
    for rid in changed:
        expected = {"QuestionnaireResponse": "amended", "Observation": "corrected"}
        kind = new[rid]["resourceType"]
        assert delta[rid]["status"] == expected.get(kind, new[rid]["status"])
        assert _fresh(delta[rid]) | {"status": None} == _fresh(new[rid]) | {"status": None}
    kinds = sorted(new[rid]["resourceType"] for rid in changed)
    assert kinds == ["MedicationStatement", "Observation", "Observation", "QuestionnaireResponse", "QuestionnaireResponse"]  # fmt: skip
    since = json.loads(report.read_text())["since"]
    assert since["rows"] == {"new": [5], "changed": [3, 4], "unchanged": [2]}
    assert since["withdrawn"] == [{"patient": "P2", "visit_date": "2024-02-11"}]
    assert since["resources"] == {"new": 7, "changed": 5, "unchanged": 18, "withdrawn": 7}
    assert (out / STATE).is_file() and STATE in (out / ".fms-fhir-output").read_text()


def _fresh(resource: dict[str, Any]) -> dict[str, Any]:
    """Content as compared: no id, references as Type/id (any output style)."""
    found = {k: v for k, v in resource.items() if k != "id"}
    text = json.dumps(found, sort_keys=True)
    text = re.sub(r'"reference": "urn:uuid:', '"reference": "?/', text)
    text = re.sub(r'"reference": "(QuestionnaireResponse|Observation)/', '"reference": "?/', text)
    return json.loads(text)  # type: ignore[no-any-return]


def test_since_chains_from_a_delta_folder_and_a_rerun_writes_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    first = convert(BEFORE, tmp_path / "a")
    second, third, fourth = tmp_path / "2", tmp_path / "3", tmp_path / "4"
    after = sheet(tmp_path / "after.csv", AFTER)
    assert cli("convert-sheet", after, "--since", first, "--out", second).exit_code == 0
    again = cli("convert-sheet", after, "--since", second, "--out", third)
    assert again.exit_code == 0, again.output
    assert written(third) == {} and "rows 0 new, 0 changed, 4 unchanged" in again.output
    # The old sheet once more: the corrections go back, the withdrawn visit comes back as new
    back = cli(
        "convert-sheet", sheet(tmp_path / "b.csv", BEFORE), "--since", third, "--out", fourth
    )
    assert back.exit_code == 0, back.output
    assert "rows 1 new, 2 changed, 1 unchanged; visits withdrawn 1" in back.output
    found = written(fourth)
    assert {r["status"] for r in found.values() if visit_key(r) == ("P2", "2024-02-11")} == {
        "completed",
        "final",
    }
    assert {r["status"] for r in found.values() if visit_key(r) == ("P2", "2024-04-11")} == {
        "entered-in-error"
    }


def test_a_since_that_is_no_output_stops_before_anything_is_written(tmp_path):
    after = sheet(tmp_path / "after.csv", AFTER)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.json").write_text("{}")
    for since, code, rule in (
        (after, 1, "since-not-an-output"),
        (tmp_path / "plain", 1, "since-not-an-output"),
        (tmp_path / "missing", 1, "since-not-an-output"),
    ):
        result = cli("convert-sheet", after, "--since", since, "--out", tmp_path / "out")
        assert result.exit_code == code, result.output
        outcome = json.loads(result.stdout)
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == rule
        assert outcome["issue"][0]["expression"] == ["--since"]
        assert not (tmp_path / "out").exists()
    (tmp_path / "a").mkdir()
    previous = convert(BEFORE, tmp_path / "a")
    same = cli("convert-sheet", after, "--since", previous, "--out", previous)
    assert same.exit_code == 4 and "input" in same.stdout  # the previous output is kept
    assert written(previous)


# --- a rejected dose is not a stretched dose ----------------------------------------------------


def test_a_rejected_dose_ends_the_course_at_the_last_accepted_visit(tmp_path):
    rows = REJECTED_DOSE
    out = tmp_path / "out"
    report_path = tmp_path / "r.json"
    result = cli(
        "convert-sheet", sheet(tmp_path / "s.csv", rows), "--out", out, "--report", report_path
    )
    assert result.exit_code == 3, result.output
    statements = sorted(
        (r for r in written(out).values() if r["resourceType"] == "MedicationStatement"),
        key=lambda r: r["effectivePeriod"]["start"],
    )
    first, second = statements
    assert first["effectivePeriod"] == {"start": "2023-10-04", "end": "2023-10-04"}
    assert first["status"] == "unknown"
    why = "the dose after 2023-10-04 is not known: row 3 (2024-03-12) gives a dose but was rejected"
    assert why in first["note"][-1]["text"] and why in first["dosage"][-1]["text"]
    assert second["effectivePeriod"] == {"start": "2024-09-17"}
    assert [float(daily_dose_mg(d)) for d in second["dosage"]] == [4.5]
    # The row is converted in part (issue 20): its PHQ-4 is kept, its pain ratings and its
    # dose are rejected, and the dose history is cut there.
    report = json.loads(report_path.read_text())
    assert report["rejected"] == [] and report["rows_partial"] == 1
    (partial,) = report["partial"]
    rules = [i["details"]["coding"][0]["code"] for i in partial["outcome"]["issue"]]
    assert partial["row"] == 3 and rules[-1] == "dose-history-cut"
    assert {"dose-implausible", "out-of-range", "response-rejected"} <= set(rules)


REJECTED_DOSE = [
    ["P1", "2023-10-04", "1.5", 70, 90, 2, 2, 2, 2],
    ["P1", "2024-03-12", "450", 70, 900, 2, 2, 2, 2],  # rejected: the dose, pain-max 900
    ["P1", "2024-09-17", "4.5", 50, 70, 1, 1, 1, 1],
]


@pytest.mark.slow  # the report draws its charts
def test_the_follow_up_report_shows_the_gap_a_rejected_dose_leaves(tmp_path):
    out = tmp_path / "out"
    assert (
        cli("convert-sheet", sheet(tmp_path / "s.csv", REJECTED_DOSE), "--out", out).exit_code == 3
    )
    html = render_report(load_resources(out, SETTINGS), SETTINGS, "P1")
    phases = html[html.index('<h2 id="ldn">') :]
    assert "2023-10-04" in phases and "2024-09-17" in phases
    assert "row 3 (2024-03-12) gives a dose but was rejected" in phases


# --- the dose shape, and a regimen without a reason ----------------------------------------------


def test_every_medication_statement_gives_a_dose_and_a_once_daily_timing(tmp_path):
    regimen = json.loads((EXAMPLES / "ldn-regimen.json").read_text())
    made = [api.regimen(regimen, SETTINGS).resource]
    out = convert(BEFORE, tmp_path)
    made += [r for r in written(out).values() if r["resourceType"] == "MedicationStatement"]
    assert len(made) == 3
    for statement in made:
        assert "rateRatio" not in json.dumps(statement)
        for dosage in statement["dosage"]:
            (dose,) = dosage["doseAndRate"]
            assert dose["doseQuantity"]["code"] == "mg"
            repeat = dosage["timing"]["repeat"]
            assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (1, 1, "d")


def test_an_empty_reason_list_is_an_operation_outcome(tmp_path):
    regimen = json.loads((EXAMPLES / "ldn-regimen.json").read_text()) | {"reason": []}
    with pytest.raises(InvalidInput) as raised:
        api.regimen(regimen, SETTINGS)
    assert [(i.expression, i.rule) for i in raised.value.issues] == [("reason", "empty-reason")]
    path = tmp_path / "regimen.json"
    path.write_text(json.dumps(regimen))
    result = cli("regimen", path)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["issue"][0]["details"]["coding"][0]["code"] == "empty-reason"


# --- small holes of the same kind ---------------------------------------------------------------


def test_extract_of_a_response_without_id_or_identifier_warns():
    response = api.convert(PHQ4, SETTINGS).bundle["entry"][0]["resource"]
    bare = {k: v for k, v in response.items() if k not in ("id", "identifier")}
    result = api.extract(bare, SETTINGS)
    assert [w.rule for w in result.warnings] == ["no-derived-from"]
    assert all("derivedFrom" not in e["resource"] for e in result.bundle["entry"])
    named = api.extract(response, SETTINGS)
    assert named.warnings == []
    assert all(e["resource"]["derivedFrom"] for e in named.bundle["entry"])


def test_make_demo_writes_the_example_patient_under_one_identifier_system(tmp_path):
    makefile = (ROOT / "Makefile").read_text()
    system = re.search(r"^EXAMPLE_PATIENT_SYSTEM := (\S+)$", makefile, re.M)
    assert system is not None
    demo = makefile[makefile.index("\ndemo:") :].split("\n\n")[0]
    assert "--patient-system $(EXAMPLE_PATIENT_SYSTEM)" in demo
    documents = json.loads((EXAMPLES / "baseline-visit.json").read_text())
    assert {d["subject"]["identifier"]["system"] for d in documents} == {system.group(1)}
    visit = api.convert(documents, SETTINGS).bundle
    out = tmp_path / "case"
    result = cli(
        "convert-sheet", EXAMPLES / "case-report-followup.xlsx", "--out", out,
        "--patient-system", system.group(1),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from_sheet = set(written(out))
    from_documents = {e["fullUrl"].removeprefix("urn:uuid:") for e in visit["entry"]}
    assert from_documents & from_sheet  # the same visit has the same ids in both files


# --- property: the delta applied to the old state is the new sheet ------------------------------


ROW = st.tuples(
    st.sampled_from(["P1", "P2", "P3"]),
    st.integers(1, 12),  # the month of the visit
    st.sampled_from(["", "1.5", "3", "4.5"]),
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(0, 3),
)


def _rows(drawn: list[tuple[Any, ...]]) -> list[list[Any]]:
    rows, seen = [], set()
    for patient, month, dose, mean, most, phq in drawn:
        if (patient, month) not in seen:
            seen.add((patient, month))
            rows.append([patient, f"2024-{month:02}-15", dose, mean, most, phq, phq, 1, 1])
    return rows


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ROW, min_size=1, max_size=6),
    st.lists(ROW, min_size=1, max_size=6),
    st.sampled_from(FORMATS),
)
def test_the_delta_applied_to_the_old_state_equals_the_new_sheet(old_rows, new_rows, fmt):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "old").mkdir()
        (folder / "new").mkdir()
        old = written(convert(_rows(old_rows), folder / "old", fmt))
        new = written(convert(_rows(new_rows), folder / "new", fmt))
        out = folder / "delta"
        result = cli(
            "convert-sheet", sheet(folder / "n.csv", _rows(new_rows)), "--format", fmt,
            "--since", folder / "old" / "out", "--out", out,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        state = old | written(out)
        live = {rid: r for rid, r in state.items() if r["status"] != "entered-in-error"}
        assert set(live) == set(new)
        assert {rid for rid in state if rid not in new} == {rid for rid in old if rid not in new}
        fresh = {"amended": "completed", "corrected": "final"}
        for rid, resource in live.items():
            status = fresh.get(resource["status"], resource["status"])
            assert _fresh(resource) | {"status": status} == _fresh(new[rid])
