"""`fms-fhir package`: the library as a FHIR NPM package, checked inside and loaded from outside.

Inside: package.json, `.index.json` against the files, every resource valid with the R4B models,
the OperationDefinitions at the urls `/metadata` names (and served there), the ImplementationGuide
and NOTICE, the `.tgz` byte-identical run to run.
Outside: fhir-package-loader (SUSHI's loader, in node) loads the `.tgz` and a package-cache
folder, offline (`tests/js/load_package.js`); skipped without node or the npm package. With the
SDC package `make test` fetches from the npm registry (FMS_FHIR_TEST_FHIR_PACKAGES names another
folder of FHIR package tarballs), every SDC canonical the package names resolves in it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
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
from adapter.package import (
    DEPENDENCIES,
    NOTICE,
    PACKAGE_NAME,
    TAR_MTIME,
    package_resources,
    write_package,
)
from adapter.settings import Settings
from adapter.web import create_app
from tests.support import ROOT, SETTINGS, assert_valid_fhir, node_environment, skip_or_fail

LOADER = ROOT / "tests" / "js" / "load_package.js"
FHIR_PACKAGES = Path(
    os.environ.get("FMS_FHIR_TEST_FHIR_PACKAGES") or ROOT / ".venv" / "js" / "fhir-packages"
)
"""FHIR package tarballs `make test` fetches with `npm pack` (the Makefile's FHIR_PACKAGES)."""
SDC_TARBALL = "hl7.fhir.uv.sdc-4.0.0-ballot.tgz"
SDC_BASE = "http://hl7.org/fhir/uv/sdc/"
DECLARED = {
    "hl7.fhir.r4.core": "4.0.1",
    "hl7.fhir.uv.sdc": "3.0.0",
    "hl7.fhir.uv.extensions.r4": "5.1.0",
}
NOT_RESOURCES = ("package.json", ".index.json", NOTICE)
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
        json.loads(data) for name, data in folder_files(tgz).items() if name not in NOT_RESOURCES
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
    # Every package whose definitions the resources name: R4, SDC (the Questionnaires' profile
    # and calculatedExpression, $extract's base), the extensions pack (itemWeight).
    assert manifest["dependencies"] == DECLARED
    assert manifest["url"] == SETTINGS.canonical_base
    assert manifest["type"] == "Conformance"
    assert manifest["license"] == "Apache-2.0"
    assert manifest["description"] and manifest["author"]
    assert written.name == f"{PACKAGE_NAME}-{__version__}.tgz"


def test_index_lists_every_resource_file(written: Path) -> None:
    files = folder_files(written)
    index = json.loads(files[".index.json"])
    assert index["index-version"] == 1
    listed = [entry["filename"] for entry in index["files"]]
    assert listed == sorted(set(files) - set(NOT_RESOURCES))
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
        assert definition["kind"] == "operation"
        # The deprecated alias `$convert` is retired; every other operation is active.
        retired = definition["id"] == "convert"
        assert definition["status"] == ("retired" if retired else "active")
        where = listed[url]["resource"]
        assert definition.get("resource") == ([where] if where else None)
        assert definition["system"] is (where is None)
        assert definition["type"] is (where is not None)
        assert definition["instance"] is False
        for parameter in definition["parameter"]:
            assert parameter["type"] and parameter["max"] == "1" and parameter["documentation"]
            assert parameter["use"] in ("in", "out") and parameter["min"] in (0, 1)
        outs = [p["name"] for p in definition["parameter"] if p["use"] == "out"]
        assert outs == {"extract": ["return", "issues"]}.get(definition["id"], ["return"])
    manifest = json.loads((tgz.parent / "package" / "package.json").read_bytes())
    assert manifest["canonical"] == base
    assert all(r["url"].startswith(f"{base}/") for r in resources_in(tgz))


def _parameters(definition: dict[str, Any]) -> dict[str, tuple[str, int, str, str]]:
    return {p["name"]: (p["use"], p["min"], p["max"], p["type"]) for p in definition["parameter"]}


def test_validate_and_extract_declare_the_standard_operations_they_follow() -> None:
    """`base` names R4's Resource-validate and SDC's QuestionnaireResponse-extract; the
    parameters are theirs in full (names, directions, cardinalities, types), plus the extras."""
    by_id = {
        r["id"]: r
        for r in package_resources(SETTINGS)
        if r["resourceType"] == "OperationDefinition"
    }
    validate, extract = by_id["validate"], by_id["extract"]
    assert validate["base"] == "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    assert validate["code"] == "validate"
    assert _parameters(validate) == {
        "resource": ("in", 0, "1", "Resource"),
        "mode": ("in", 0, "1", "code"),
        "profile": ("in", 0, "1", "uri"),
        "questionnaire": ("in", 0, "1", "canonical"),
        "return": ("out", 1, "1", "OperationOutcome"),
    }
    assert extract["base"] == f"{SDC_BASE}OperationDefinition/QuestionnaireResponse-extract"
    assert extract["code"] == "extract"
    assert _parameters(extract) == {
        "questionnaire-response": ("in", 0, "1", "Resource"),
        "questionnaire": ("in", 0, "1", "Resource"),
        "bundle-type": ("in", 0, "1", "code"),
        "return": ("out", 0, "1", "Bundle"),
        "issues": ("out", 0, "1", "OperationOutcome"),
    }
    questionnaire = next(p for p in extract["parameter"] if p["name"] == "questionnaire")
    assert questionnaire["targetProfile"] == [
        "http://hl7.org/fhir/StructureDefinition/Questionnaire"
    ]
    # Operations that follow no standard one carry no base.
    assert all("base" not in d for i, d in by_id.items() if i not in ("validate", "extract"))


def test_the_served_operation_definitions_are_the_packaged_ones() -> None:
    client = create_app({"SETTINGS": SETTINGS, "TESTING": True}).test_client()
    packaged = [
        r for r in package_resources(SETTINGS) if r["resourceType"] == "OperationDefinition"
    ]
    for definition in packaged:
        response = client.get(f"/OperationDefinition/{definition['id']}")
        assert response.status_code == 200 and response.headers["ETag"]
        assert response.get_json(force=True) == definition
    missing = client.get("/OperationDefinition/convert-everything")
    assert missing.status_code == 404
    assert missing.get_json(force=True)["issue"][0]["code"] == "not-found"
    statement = client.get("/metadata").get_json(force=True)
    types = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert [i["code"] for i in types["OperationDefinition"]["interaction"]] == ["read"]


def test_the_implementation_guide_and_the_notice(written: Path) -> None:
    """The package says what it depends on and whose copyright covers which content."""
    files = folder_files(written)
    guide = json.loads(files[f"ImplementationGuide-{PACKAGE_NAME}.json"])
    assert_valid_fhir(guide)
    assert guide["packageId"] == PACKAGE_NAME and guide["version"] == __version__
    assert guide["url"] == f"{SETTINGS.canonical_base}/ImplementationGuide/{PACKAGE_NAME}"
    assert guide["fhirVersion"] == ["4.0.1"] and guide["license"] == "Apache-2.0"
    assert {d["packageId"]: d["version"] for d in guide["dependsOn"]} == DECLARED
    assert [d.package for d in DEPENDENCIES] == [d["packageId"] for d in guide["dependsOn"]]
    sdc = next(d for d in guide["dependsOn"] if d["packageId"] == "hl7.fhir.uv.sdc")
    assert sdc["uri"] == f"{SDC_BASE}ImplementationGuide/hl7.fhir.uv.sdc"
    others = [r for r in resources_in(written) if r["resourceType"] != "ImplementationGuide"]
    listed = [r["reference"]["reference"] for r in guide["definition"]["resource"]]
    assert sorted(listed) == sorted(f"{r['resourceType']}/{r['id']}" for r in others)
    text = guide["copyright"]
    notice = files[NOTICE].decode()
    assert text in notice
    for needle in ("Apache License 2.0", "Copyright Pfizer Inc.", "Bennett RM", "LOINC"):
        assert needle in text
    for questionnaire in (r for r in others if r["resourceType"] == "Questionnaire"):
        assert questionnaire["title"] in text
        if "copyright" in questionnaire:
            assert f"{questionnaire['title']}: {questionnaire['copyright']}" in text
    fiqr = api.questionnaire("fiqr", SETTINGS)["copyright"]
    assert "published wording" in fiqr and "paraphrase" not in fiqr


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


def load(
    node: dict[str, str],
    cache: Path,
    source: str,
    *dependencies: str,
    resolve: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run fhir-package-loader on a .tgz or a `name#version` in `cache` (then on each dependency,
    into the same set), resolving the canonicals `resolve`; never the network."""
    run = subprocess.run(
        ["node", str(LOADER), str(cache), source, *dependencies],
        capture_output=True,
        text=True,
        env={**node, "TMPDIR": str(cache.parent), "FPL_RESOLVE": json.dumps(list(resolve))},
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
    assert manifest["dependencies"] == DECLARED
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


def sdc_canonicals() -> tuple[str, ...]:
    """Every SDC canonical the package's resources name: the Questionnaires' profile and
    extensions, $extract's base."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith(SDC_BASE):
            found.add(node)

    walk(package_resources(SETTINGS))
    return tuple(sorted(found))


def test_the_sdc_canonicals_are_those_sdc_defines() -> None:
    assert sdc_canonicals() == (
        f"{SDC_BASE}ImplementationGuide/hl7.fhir.uv.sdc",
        f"{SDC_BASE}OperationDefinition/QuestionnaireResponse-extract",
        f"{SDC_BASE}StructureDefinition/sdc-questionnaire",
        f"{SDC_BASE}StructureDefinition/sdc-questionnaire-calculatedExpression",
    )


@pytest.mark.slow
def test_the_declared_dependencies_are_not_fetched_offline(
    node: dict[str, str], written: Path, tmp_path: Path
) -> None:
    """What blocks resolving the declared versions here: none is in the cache, the loader may
    not download (the FHIR registry is out of reach, and the npm registry holds neither
    hl7.fhir.r4.core nor SDC 3.0.0). The package itself still loads."""
    declared = [f"{name}#{version}" for name, version in DECLARED.items()]
    got = load(node, tmp_path / "packages", str(written), *declared)
    assert got["status"] == "LOADED"
    assert [(d["name"], d["version"], d["status"]) for d in got["dependencies"]] == [
        (*label.split("#"), "FAILED") for label in declared
    ]
    assert got["downloads"] == declared


@pytest.mark.slow
def test_the_sdc_canonicals_resolve_in_the_sdc_package(
    node: dict[str, str], written: Path, tmp_path: Path
) -> None:
    """The package and SDC loaded side by side, as SUSHI loads dependencies: every SDC
    canonical the package names is found in SDC, as the kind of resource it is used as. The one
    SDC release on the npm registry is 4.0.0-ballot; it holds the same canonicals as 3.0.0."""
    tarball = FHIR_PACKAGES / SDC_TARBALL
    if not tarball.is_file():
        skip_or_fail(f"{tarball} not fetched (make test fetches it with npm pack)")
    ours = SETTINGS.questionnaire_url("phq9")
    wanted = sdc_canonicals()
    got = load(node, tmp_path / "packages", str(written), str(tarball), resolve=(*wanted, ours))
    assert got["status"] == "LOADED", got["log"]
    assert got["loaded"] == [LABEL, "hl7.fhir.uv.sdc#4.0.0-ballot"]
    assert got["canonicals"][ours]["package"] == LABEL
    assert got["dependencies"] == [
        {"name": "hl7.fhir.uv.sdc", "version": "4.0.0-ballot", "status": "LOADED"}
    ]
    assert got["downloads"] == []
    kinds = {
        "ImplementationGuide": "ImplementationGuide",
        "OperationDefinition": "OperationDefinition",
        "StructureDefinition": "StructureDefinition",
    }
    for url in wanted:
        found = got["canonicals"][url]
        assert found is not None, f"{url} is not in SDC"
        assert found["package"] == "hl7.fhir.uv.sdc#4.0.0-ballot"
        assert found["resourceType"] == kinds[url[len(SDC_BASE) :].split("/")[0]]
