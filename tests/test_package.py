"""`fms-fhir package`: the library as a FHIR NPM package, checked inside and loaded from outside.

Inside: package.json, `.index.json` against the files, every resource valid with the R4B models,
the OperationDefinitions at the urls `/metadata` names, the `.tgz` byte-identical run to run.
Outside: fhir-package-loader (SUSHI's loader, in node) loads the `.tgz` and a package-cache
folder, offline (`tests/js/load_package.js`); skipped without node or the npm package.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapter import __version__, api, registry
from adapter.cli import main
from adapter.package import PACKAGE_NAME, TAR_MTIME, package_resources, write_package
from adapter.settings import Settings
from adapter.web import create_app
from tests.support import ROOT, SETTINGS, assert_valid_fhir, node_environment

LOADER = ROOT / "tests" / "js" / "load_package.js"
LABEL = f"{PACKAGE_NAME}#{__version__}"
NAME_RULE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$")
"""The FHIR package spec: two or more lower-case namespaces joined by dots."""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package written once with the default settings: the `.tgz`, beside `package/`."""
    return write_package(tmp_path_factory.mktemp("package"), SETTINGS)


def folder_files(tgz: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((tgz.parent / "package").iterdir())}


def resources_in(tgz: Path) -> list[dict[str, Any]]:
    return [
        json.loads(data)
        for name, data in folder_files(tgz).items()
        if name not in ("package.json", ".index.json")
    ]


def metadata_definitions(settings: Settings) -> dict[str, dict[str, Any]]:
    """Definition url -> where `/metadata` lists the operation (resource type or None)."""
    client = create_app({"SETTINGS": settings, "TESTING": True}).test_client()
    rest = client.get("/metadata").get_json(force=True)["rest"][0]
    found = {op["definition"]: {"resource": None} for op in rest.get("operation", [])}
    for resource in rest["resource"]:
        for op in resource.get("operation", []):
            found[op["definition"]] = {"resource": resource["type"]}
    return found


# --- the package's structure -------------------------------------------------------------------


def test_package_json(written: Path) -> None:
    manifest = json.loads((written.parent / "package" / "package.json").read_bytes())
    assert NAME_RULE.match(manifest["name"]) and manifest["name"] == PACKAGE_NAME
    assert manifest["version"] == __version__
    assert manifest["canonical"] == SETTINGS.canonical_base
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["type"] == "Conformance"
    assert manifest["license"] == "Apache-2.0"
    assert manifest["description"] and manifest["author"]
    assert written.name == f"{PACKAGE_NAME}-{__version__}.tgz"


def test_index_lists_every_resource_file(written: Path) -> None:
    files = folder_files(written)
    index = json.loads(files[".index.json"])
    assert index["index-version"] == 1
    listed = [entry["filename"] for entry in index["files"]]
    assert listed == sorted(set(files) - {"package.json", ".index.json"})
    for entry in index["files"]:
        resource = json.loads(files[entry["filename"]])
        assert entry["filename"] == f"{resource['resourceType']}-{resource['id']}.json"
        for key in ("resourceType", "id", "url", "version", "kind", "content"):
            assert entry.get(key) == (
                resource.get(key) if isinstance(resource.get(key), str) else None
            )


def test_every_resource_is_valid_r4(written: Path) -> None:
    resources = resources_in(written)
    by_file = sorted(
        package_resources(SETTINGS), key=lambda r: f"{r['resourceType']}-{r['id']}.json"
    )
    assert resources == by_file
    for resource in resources:
        assert_valid_fhir(resource)


def test_every_instrument_and_the_codesystem(written: Path) -> None:
    """The package, the registry and `GET /Questionnaire` hold the same instruments."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources_in(written):
        by_type.setdefault(resource["resourceType"], []).append(resource)
    client = create_app({"SETTINGS": SETTINGS, "TESTING": True}).test_client()
    served = client.get("/Questionnaire").get_json(force=True)
    assert served["total"] == len(registry.instruments())
    served_ids = {entry["resource"]["id"] for entry in served["entry"]}
    assert {q["id"] for q in by_type["Questionnaire"]} == set(registry.instruments()) == served_ids
    for questionnaire in by_type["Questionnaire"]:
        assert questionnaire == api.questionnaire(questionnaire["id"], SETTINGS)
    assert by_type["CodeSystem"] == api.codesystems(SETTINGS)


@pytest.mark.parametrize("base", [SETTINGS.canonical_base, "https://example.org/fhir"])
def test_operation_definitions_are_the_ones_metadata_names(tmp_path: Path, base: str) -> None:
    settings = SETTINGS.with_(canonical_base=base)
    tgz = write_package(tmp_path, settings)
    definitions = {
        r["url"]: r for r in resources_in(tgz) if r["resourceType"] == "OperationDefinition"
    }
    listed = metadata_definitions(settings)
    assert set(definitions) == set(listed) and listed
    for url, definition in definitions.items():
        assert url == f"{base}/OperationDefinition/{definition['id']}"
        assert definition["kind"] == "operation" and definition["status"] == "active"
        where = listed[url]["resource"]
        assert definition.get("resource") == ([where] if where else None)
        assert definition["system"] is (where is None)
        assert definition["type"] is (where is not None)
        assert definition["instance"] is False
        outs = [p for p in definition["parameter"] if p["use"] == "out"]
        assert [p["name"] for p in outs] == ["return"]
        for parameter in definition["parameter"]:
            assert parameter["type"] and parameter["max"] == "1" and parameter["documentation"]
    manifest = json.loads((tgz.parent / "package" / "package.json").read_bytes())
    assert manifest["canonical"] == base
    assert all(r["url"].startswith(f"{base}/") for r in resources_in(tgz))


def test_tgz_is_byte_identical_and_holds_the_folder(written: Path, tmp_path: Path) -> None:
    again = write_package(tmp_path / "again", SETTINGS)
    assert again.read_bytes() == written.read_bytes()
    rewritten = write_package(written.parent, SETTINGS)  # over the first: same bytes again
    assert rewritten.read_bytes() == again.read_bytes()
    data = written.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip, no timestamp
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert all(m.isfile() and m.uid == m.gid == 0 and m.mtime == TAR_MTIME for m in members)
        packed = {m.name: archive.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert packed == {f"package/{name}": body for name, body in folder_files(written).items()}


# --- the command -------------------------------------------------------------------------------


def test_command_writes_the_package(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    tgz = out / f"{PACKAGE_NAME}-{__version__}.tgz"
    assert tgz.is_file() and (out / "package" / "package.json").is_file()
    # A resource an earlier version wrote (and listed in its index) that this one no longer has.
    stale = out / "package" / "Questionnaire-retired.json"
    stale.write_text("{}")
    index = json.loads((out / "package" / ".index.json").read_text())
    index["files"].append({"filename": stale.name, "resourceType": "Questionnaire"})
    (out / "package" / ".index.json").write_text(json.dumps(index))
    assert CliRunner().invoke(main, ["package", "--out", str(out)]).exit_code == 0
    assert not stale.exists(), "a rerun replaces the package folder whole"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no staging left behind"
    # A file the package never listed is someone else's: the folder is kept as it is.
    notes = out / "package" / "notes.txt"
    notes.write_text("mine")
    result = CliRunner().invoke(main, ["package", "--out", str(out)])
    assert result.exit_code == 4 and "notes.txt" in result.stdout
    assert notes.read_text() == "mine"


def test_command_refuses_a_file_as_out(tmp_path: Path) -> None:
    target = tmp_path / "package.tgz"
    target.write_text("keep")
    result = CliRunner().invoke(main, ["package", "--out", str(target)])
    assert result.exit_code == 4
    outcome = json.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "output-exists"
    assert target.read_text() == "keep"


def test_command_leaves_a_foreign_package_folder_alone(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "package.json").write_text('{"name": "someone.else"}')
    result = CliRunner().invoke(main, ["package", "--out", str(tmp_path)])
    assert result.exit_code == 4
    assert json.loads(result.stdout)["resourceType"] == "OperationOutcome"
    assert json.loads((tmp_path / "package" / "package.json").read_text())["name"] == "someone.else"


# --- loaded by an outside loader ---------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> dict[str, str]:
    return node_environment("fhir-package-loader")


def load(node: dict[str, str], cache: Path, source: str) -> dict[str, Any]:
    """Run fhir-package-loader on a .tgz or a `name#version` in `cache`; never the network."""
    run = subprocess.run(
        ["node", str(LOADER), str(cache), source],
        capture_output=True,
        text=True,
        env={**node, "TMPDIR": str(cache.parent)},
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def assert_loaded(got: dict[str, Any], tgz: Path) -> None:
    resources = resources_in(tgz)
    assert got["status"] == "LOADED", got["log"]
    assert got["downloads"] == [], "the loader asked for a download"
    assert got["loaded"] == [LABEL], "only this package: hl7.fhir.r4.core is not fetched"
    manifest = got["package"]
    assert (manifest["name"], manifest["version"]) == (PACKAGE_NAME, __version__)
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    counts: dict[str, int] = {}
    for resource in resources:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    assert got["counts"] == counts
    assert got["questionnaires"] == sorted(
        SETTINGS.questionnaire_url(i) for i in registry.instruments()
    )
    assert sorted(
        (r["resourceType"], r["id"], r["url"], r["version"]) for r in got["resources"]
    ) == (sorted((r["resourceType"], r["id"], r["url"], r["version"]) for r in resources))
    assert got["resolvedByUrl"] == len(resources)


@pytest.mark.slow
def test_fhir_package_loader_loads_the_tgz(
    node: dict[str, str], written: Path, tmp_path: Path
) -> None:
    """The loader's own cache unpacks the .tgz into `<cache>/<name>#<version>/package/`."""
    cache = tmp_path / "packages"
    got = load(node, cache, str(written))
    assert_loaded(got, written)
    assert Path(got["packagePath"]) == cache / LABEL
    assert (cache / LABEL / "package" / "package.json").is_file()


@pytest.mark.slow
def test_fhir_package_loader_loads_a_package_cache_folder(
    node: dict[str, str], written: Path, tmp_path: Path
) -> None:
    """`package/` copied into a FHIR package cache (`~/.fhir/packages` layout), as the docs say."""
    cache = tmp_path / "packages"
    shutil.copytree(written.parent / "package", cache / LABEL / "package")
    assert_loaded(load(node, cache, LABEL), written)


@pytest.mark.slow
def test_the_loader_is_kept_offline(node: dict[str, str], tmp_path: Path) -> None:
    """What is not in the cache is refused, not fetched: the harness cannot reach the network."""
    got = load(node, tmp_path / "packages", "hl7.fhir.r4.core#4.0.1")
    assert got["status"] == "FAILED"
    assert got["downloads"] == ["hl7.fhir.r4.core#4.0.1"]
    assert got["loaded"] == []
