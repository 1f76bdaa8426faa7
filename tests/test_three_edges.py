"""One sheet, one contract, the same options: `POST /$convert-sheet`, the page's `POST /` and
`fms-fhir convert-sheet` give the same resources, byte for byte, and the same row report.

The page and `$convert-sheet` get the very same multipart form; the CLI gets the same choices as
options. The page's output is read from the zip its result page links to, the CLI's from its
folder. Bundles are compared by their (deterministic) ids, entries in order; NDJSON line by line
in order, per resource type. The sheet has three patients, LDN doses and a rejected row, so that
the Bundles per visit and per patient, the MedicationStatements and the row report all differ
from one patient or row to the next.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from adapter.cli import main
from adapter.config import from_environ
from adapter.settings import Settings
from adapter.web import create_app

SYSTEM = "urn:example:mrn"
CONTRACT_SYSTEM = "urn:example:other"
CONTRACT = f"""\
patient: {{column: Patient, system: '{CONTRACT_SYSTEM}'}}
visit_date: {{column: Date, formats: ['%d.%m.%Y']}}
ldn_dose: {{column: LDN mg}}
columns:
  Nervous: phq4-nervous
  Worry: phq4-worry
  Interest: phq4-interest
  Down: phq4-down
"""
HEADER = ["Patient", "Date", "LDN mg", "Nervous", "Worry", "Interest", "Down"]
ROWS: list[list[Any]] = [
    ["P1", "10.04.2025", 1.5, 1, 2, 0, 1],
    ["P2", "11.04.2025", None, 1, 2, 9, 1],  # interest 9: out of range, the row is rejected
    ["P1", "12.05.2025", 3, 0, 1, 1, 0],
    ["P3", "13.05.2025", 4.5, 0, 0, 0, 0],
    ["P2", "14.05.2025", None, 2, 2, 2, 2],
]
FORMATS = ("transaction", "patient", "ndjson")
CHOICES = {
    "caller's": {"bundle-type": "batch", "patient-system": SYSTEM},
    "defaults": {},
}


@dataclass
class Output:
    """What one edge gave: the resources (Bundles by id, or NDJSON lines by resource type),
    the output files by name (the folder edges), the row counts and the row report."""

    bundles: dict[str, bytes] = field(default_factory=dict)
    lines: dict[str, list[bytes]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def canonical(data: bytes) -> bytes:
    """Compact JSON, members in their order: the same resource gives the same bytes, whether
    it came pretty (a file) or inside a Parameters."""
    return orjson.dumps(orjson.loads(data))


def _csv() -> bytes:
    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    lines = [",".join(HEADER), *(",".join(cell(v) for v in row) for row in ROWS)]
    return ("\n".join(lines) + "\n").encode()


def _xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def settings(monkeypatch) -> Settings:
    """The CLI reads its settings from the environment: the service gets the same ones."""
    for name in [name for name in os.environ if name.startswith("FMS_FHIR_")]:
        monkeypatch.delenv(name)
    return from_environ(os.environ).settings


@pytest.fixture
def client(settings, tmp_path) -> FlaskClient:
    config = {"SETTINGS": settings, "TESTING": True, "PAGE_DIR": str(tmp_path / "page")}
    return create_app(config).test_client()


def _form(sheet: Path, fmt: str, choices: dict[str, str]) -> dict[str, Any]:
    return {
        "file": (io.BytesIO(sheet.read_bytes()), sheet.name),
        "contract": (io.BytesIO(CONTRACT.encode()), "contract.yaml"),
        "format": fmt,
        **choices,
    }


def _from_files(files: dict[str, bytes], fmt: str) -> Output:
    output = Output(files=files)
    for name, data in files.items():
        if fmt == "ndjson":
            output.lines[name.removesuffix(".ndjson")] = data.splitlines(keepends=True)
        else:
            output.bundles[orjson.loads(data)["id"]] = canonical(data)
    return output


def via_service(client: FlaskClient, sheet: Path, fmt: str, choices: dict[str, str]) -> Output:
    response = client.post(
        "/$convert-sheet", data=_form(sheet, fmt, choices), content_type="multipart/form-data"
    )
    assert response.status_code == 200, response.data[:500]
    counts = {name: int(response.headers[f"X-{name.title()}"]) for name in COUNTS}
    output = Output(counts=counts)
    if fmt == "ndjson":
        *lines, last = response.data.splitlines(keepends=True)
        for line in lines:
            output.lines.setdefault(orjson.loads(line)["resourceType"], []).append(line)
        output.report = orjson.loads(last)
        return output
    parameters = response.get_json(force=True)["parameter"]
    for parameter in parameters:
        if parameter["name"] == "bundle":
            data = orjson.dumps(parameter["resource"])
            output.bundles[parameter["resource"]["id"]] = canonical(data)
        elif parameter["name"] == "report":
            output.report = parameter["resource"]
        elif parameter["name"] in COUNTS:
            assert parameter["valueInteger"] == counts[parameter["name"]]
    return output


def via_page(client: FlaskClient, sheet: Path, fmt: str, choices: dict[str, str]) -> Output:
    response = client.post("/", data=_form(sheet, fmt, choices), content_type="multipart/form-data")
    assert response.status_code == 200, response.data[:500]
    html = response.get_data(as_text=True)
    link = re.search(r'href="([^"]+/fhir\.zip)"', html)
    assert link, "the result page links to the download"
    download = client.get(link.group(1))
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    files: dict[str, bytes] = {}
    report = None
    for name in archive.namelist():
        base = name.rsplit("/", 1)[-1]
        if base == "row-report.json":
            report = orjson.loads(archive.read(name))
        else:
            files[base] = archive.read(name)
    output = _from_files(files, fmt)
    shown = dict(re.findall(r'<dd id="(rows-\w+)">(\d+)</dd>', html))
    output.counts = {name: int(value) for name, value in shown.items()}
    output.report = report
    return output


def via_cli(tmp_path: Path, sheet: Path, fmt: str, choices: dict[str, str]) -> Output:
    contract = tmp_path / "contract.yaml"
    contract.write_text(CONTRACT)
    out, report = tmp_path / f"out-{fmt}", tmp_path / f"report-{fmt}.json"
    options = [f"--{name}={value}" for name, value in choices.items()]
    arguments = ["convert-sheet", str(sheet), "--contract", str(contract), "--format", fmt]
    arguments += [*options, "--out", str(out), "--report", str(report)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 3, result.output  # converted, one row rejected
    files = {
        path.name: path.read_bytes() for path in out.iterdir() if not path.name.startswith(".")
    }
    output = _from_files(files, fmt)
    written = orjson.loads(report.read_bytes())
    output.counts = {name: written[name.replace("-", "_")] for name in COUNTS}
    output.report = written
    return output


COUNTS = ("rows-read", "rows-converted", "rows-rejected", "rows-blank")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("chosen", list(CHOICES))
def test_the_three_edges_give_the_same_output(client, tmp_path, kind, fmt, chosen):
    sheet = tmp_path / f"visits.{kind}"
    sheet.write_bytes(_csv() if kind == "csv" else _xlsx())
    choices = CHOICES[chosen]
    service = via_service(client, sheet, fmt, choices)
    page = via_page(client, sheet, fmt, choices)
    cli = via_cli(tmp_path, sheet, fmt, choices)

    # the same rows read, converted and rejected
    assert (
        service.counts
        == page.counts
        == cli.counts
        == {
            "rows-read": 5,
            "rows-converted": 4,
            "rows-rejected": 1,
            "rows-blank": 0,
        }
    )
    assert service.report == page.report, "the row report, as an OperationOutcome"
    rejected = [i for i in service.report["issue"] if i["severity"] == "error"]
    assert rejected and all(i["expression"][0].startswith("row 3") for i in rejected)
    assert [entry["row"] for entry in cli.report["rejected"]] == [3]

    # the page and the CLI write the same files, byte for byte
    assert page.files == cli.files
    # and the service answers the same resources, byte for byte, in the same order
    if fmt == "ndjson":
        assert service.lines == page.lines == cli.lines
        assert set(service.lines) == {"QuestionnaireResponse", "Observation", "MedicationStatement"}
        everything = b"".join(b"".join(lines) for lines in service.lines.values())
    else:
        assert service.bundles == page.bundles == cli.bundles
        types = {orjson.loads(data)["type"] for data in service.bundles.values()}
        assert types == {choices.get("bundle-type", "transaction")}
        # per visit: 4 visits and the LDN doses of P1 and P3 (P2 took none); or 3 patients
        assert len(service.bundles) == (3 if fmt == "patient" else 6)
        everything = b"".join(service.bundles.values())
    system = choices.get("patient-system", CONTRACT_SYSTEM)
    other = CONTRACT_SYSTEM if system == SYSTEM else SYSTEM
    assert system.encode() in everything and other.encode() not in everything


def test_a_bad_patient_system_is_named_as_each_edge_calls_it(client, tmp_path):
    sheet = tmp_path / "visits.csv"
    sheet.write_bytes(_csv())
    choices = {"patient-system": "not a uri"}
    for path in ("/$convert-sheet", "/"):
        response = client.post(
            path, data=_form(sheet, "transaction", choices), content_type="multipart/form-data"
        )
        assert response.status_code == 400
        issue = response.get_json(force=True)["issue"][0]
        assert issue["expression"] == ["patient-system"]
    result = CliRunner().invoke(
        main,
        [
            "convert-sheet",
            str(sheet),
            "--patient-system",
            "not a uri",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert orjson.loads(result.stdout_bytes)["issue"][0]["expression"] == ["--patient-system"]
    assert not (tmp_path / "o").exists(), "nothing written"


def test_the_request_is_resolved_once_naming_the_edge_s_places(settings):
    """What every edge shares: the checks of the request, each naming the caller's place."""
    from adapter import api
    from adapter.outcome import InvalidInput
    from adapter.sheets.request import (
        CLI_PLACES,
        ContractFile,
        SheetOptions,
        SheetRequest,
        ToMemory,
        resolve_contract,
    )

    def request(places=CLI_PLACES, contract=None, **options: Any) -> SheetRequest:
        return SheetRequest(io.BytesIO(_csv()), "v.csv", contract, SheetOptions(**options), places)

    with pytest.raises(InvalidInput) as error:
        resolve_contract(request(test_data="x" * 2001), settings)
    assert error.value.issues[0].expression == "--test-data"
    with pytest.raises(InvalidInput) as error:
        resolve_contract(request(charset="nope"), settings)
    assert error.value.status == 415 and error.value.issues[0].rule == "unknown-charset"
    huge = ContractFile(b"#" * (settings.max_input_bytes + 1), "big.yaml")
    with pytest.raises(InvalidInput) as error:
        resolve_contract(request(contract=huge), settings)
    assert error.value.status == 413
    resolved = resolve_contract(request(patient_system="", test_data="invented"), settings)
    assert resolved.patient_system is None and resolved.test_data == "invented"

    contract = ContractFile(CONTRACT.encode(), "contract.yaml")
    result = api.convert_sheet(request(contract=contract, max_rows=5), ToMemory(), settings)
    assert result.report.rows_read == 5 and len(result.bundles) == 6
    with pytest.raises(InvalidInput) as error:
        api.convert_sheet(request(contract=contract, max_rows=4), ToMemory(), settings)
    assert error.value.status == 413 and error.value.issues[0].rule == "too-many-rows"


class _Controls(HTMLParser):
    """The form's named controls (input, select) and the ids its labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.named: dict[str, dict[str, str | None]] = {}
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "select") and found.get("name"):
            self.named.setdefault(str(found["name"]), found)
        elif tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))


def test_the_page_s_form_is_the_form_openapi_gives_both_routes(client):
    spec = client.get("/openapi.json").get_json()
    bodies = [
        spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        for path in ("/$convert-sheet", "/")
    ]
    assert bodies[0] == bodies[1]
    fields = set(spec["components"]["schemas"]["SheetUpload"]["properties"])
    controls = _Controls()
    controls.feed(client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True))
    assert set(controls.named) == fields
    for name in ("patient-system", "bundle-type"):
        assert controls.named[name]["id"] in controls.labelled, f"{name} has its label"
    # an error shows the form again as it was chosen
    form = {"format": "patient", "bundle-type": "batch", "patient-system": SYSTEM}
    again = client.post(
        "/", data=form, content_type="multipart/form-data", headers={"Accept": "text/html"}
    )
    assert again.status_code == 400
    html = again.get_data(as_text=True)
    assert re.search(r'<option value="batch"[^>]*selected', html)
    assert f'value="{SYSTEM}"' in html
