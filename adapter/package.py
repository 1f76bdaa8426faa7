"""The library as a FHIR NPM package: every Questionnaire, the CodeSystem(s) and one
OperationDefinition per operation of the service, as FHIR tools (SUSHI, the IG Publisher, HAPI,
Firely) load definitions.

`package_resources` builds the resources; `package_files` lays them out as the package folder
(`package.json`, `.index.json`, one `<ResourceType>-<id>.json` per resource); `tarball` packs that
folder into a `.tgz` that is byte-identical from run to run; `write_package` writes both.

The OperationDefinitions come from the web registry of operations (`adapter.web.operations`), the
same records the routes and `/metadata` are built from (`adapter.web.operation_definitions`):
each one's url is the definition `/metadata` names for it, and `GET /OperationDefinition/{id}`
serves the same resource.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter import __version__, api, jsonio, outputs
from adapter.settings import FHIR_VERSION, Settings
from adapter.web.operation_definitions import (
    defined_operations,
    operation_definition,
    operation_definitions,
)
from adapter.web.routes import registered_operations

PACKAGE_NAME = "fms-fhir.instruments"
"""The package id: two or more lower-case parts joined by dots, as the FHIR package spec asks."""


@dataclass(frozen=True)
class Dependency:
    """A package whose definitions this one's resources name (the FHIR package spec: every
    such package is listed), with its ImplementationGuide's canonical and why it is needed."""

    package: str
    version: str
    guide: str
    why: str


DEPENDENCIES = (
    Dependency(
        "hl7.fhir.r4.core",
        FHIR_VERSION,
        "http://hl7.org/fhir/ImplementationGuide/fhir",
        "FHIR R4: the resources, and the extensions minValue, maxValue, ordinalValue, "
        "questionnaire-itemControl and questionnaire-sliderStepValue",
    ),
    Dependency(
        "hl7.fhir.uv.sdc",
        "3.0.0",
        "http://hl7.org/fhir/uv/sdc/ImplementationGuide/hl7.fhir.uv.sdc",
        "SDC 3.0.0 (STU 3, for FHIR 4.0.1): every Questionnaire's profile sdc-questionnaire, "
        "the extension sdc-questionnaire-calculatedExpression, and QuestionnaireResponse-extract "
        "(the base of $extract)",
    ),
    Dependency(
        "hl7.fhir.uv.extensions.r4",
        "5.1.0",
        "http://hl7.org/fhir/extensions/ImplementationGuide/hl7.fhir.uv.extensions",
        "the FHIR Extensions Pack for R4: the extension itemWeight on every scored answer option "
        "(R4's own is ordinalValue, given beside it); 5.1.0 is the version SDC's newer releases "
        "build on",
    ),
)
NOTICE = "NOTICE"
"""Whose copyright covers which content, a text file beside package.json (the loaders read only
the `.json` files, and `.index.json` lists resources only)."""
LOINC_NOTICE = (
    "This material contains content from LOINC (https://loinc.org). LOINC is copyright "
    "Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes (LOINC) "
    "Committee and is available at no cost under the license at https://loinc.org/license."
)
TAR_MTIME = 499162500
"""1985-10-26T08:15:00Z, the fixed time npm itself gives every entry of a reproducible tarball."""
INDEX_FIELDS = ("kind", "type", "supplements", "content")
"""Besides filename, resourceType, id, url and version: what `.index.json` carries when present."""


# --- resources ---------------------------------------------------------------------------------


def definitions(settings: Settings) -> list[dict[str, Any]]:
    """Every Questionnaire, the CodeSystem(s), then one OperationDefinition per FHIR operation."""
    return [
        *api.questionnaires(settings),
        *api.codesystems(settings),
        *operation_definitions(registered_operations(), settings),
    ]


def guide_url(settings: Settings) -> str:
    """`<canonical>/ImplementationGuide/<package name>`, the convention the FHIR package spec
    and the IG Publisher follow."""
    return f"{settings.canonical_base}/ImplementationGuide/{PACKAGE_NAME}"


def copyright_text(questionnaires: list[dict[str, Any]]) -> str:
    """Whose copyright covers which content: the software's own licence, each instrument's
    declared copyright (the instruments' wording), LOINC's notice. Markdown."""
    lines = [
        "The software that generated this package, and what it generated of its own (the "
        "CodeSystem, the OperationDefinitions, and the Questionnaires' structure, codes and "
        "scoring expressions): copyright the fms-fhir authors, licensed under the Apache "
        "License 2.0 (https://www.apache.org/licenses/LICENSE-2.0).",
        "",
        "The instruments' own wording is not the software's and is not under that licence:",
        "",
    ]
    for questionnaire in questionnaires:
        if questionnaire.get("copyright"):
            lines.append(f"- {questionnaire['title']}: {questionnaire['copyright']}")
    unclaimed = [q["title"] for q in questionnaires if not q.get("copyright")]
    if unclaimed:
        lines.append(
            f"- {', '.join(unclaimed)}: no third-party licence terms are recorded; the sources "
            "and what is known of their terms are in the project's docs/instruments.md."
        )
    lines += ["", LOINC_NOTICE]
    return "\n".join(lines)


def implementation_guide(settings: Settings, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The package's R4 ImplementationGuide: its id, the packages it depends on, its resources
    and whose copyright covers which of them."""
    questionnaires = [r for r in resources if r["resourceType"] == "Questionnaire"]
    return {
        "resourceType": "ImplementationGuide",
        "id": PACKAGE_NAME,
        "url": guide_url(settings),
        "version": __version__,
        "name": "FmsFhirInstruments",
        "title": TITLE,
        "status": "active",
        "publisher": "fms-fhir",
        "description": DESCRIPTION,
        "copyright": copyright_text(questionnaires),
        "packageId": PACKAGE_NAME,
        "license": "Apache-2.0",
        "fhirVersion": [FHIR_VERSION],
        "dependsOn": [
            {
                "id": re.sub(r"[^A-Za-z0-9]", "", dependency.package),
                "uri": dependency.guide,
                "packageId": dependency.package,
                "version": dependency.version,
            }
            for dependency in DEPENDENCIES
        ],
        "definition": {
            "resource": [
                {
                    "reference": {"reference": f"{r['resourceType']}/{r['id']}"},
                    "name": r.get("title") or r["id"],
                    "exampleBoolean": False,
                }
                for r in resources
            ]
        },
    }


def package_resources(settings: Settings) -> list[dict[str, Any]]:
    """The definitions, then the ImplementationGuide that lists them."""
    resources = definitions(settings)
    return [*resources, implementation_guide(settings, resources)]


def notice(settings: Settings) -> bytes:
    """The NOTICE file: the IG's copyright statement, as plain text with the package's name."""
    questionnaires = api.questionnaires(settings)
    head = f"{PACKAGE_NAME} {__version__}: {TITLE}\n\n"
    return (head + copyright_text(questionnaires) + "\n").encode()


# --- the package -------------------------------------------------------------------------------


def file_name(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


TITLE = "fms-fhir: fibromyalgia instruments and operations"
DESCRIPTION = (
    "The fibromyalgia instruments of fms-fhir as SDC Questionnaires (a calculatedExpression "
    "for every score), its CodeSystem of score and band codes, and the OperationDefinitions "
    "of the fms-fhir service's operations. FHIR R4 (4.0.1). The software is Apache-2.0; the "
    "instruments' wording is its owners' (NOTICE, and ImplementationGuide.copyright)."
)


def package_json(settings: Settings) -> dict[str, Any]:
    return {
        "name": PACKAGE_NAME,
        "version": __version__,
        "type": "Conformance",
        "title": TITLE,
        "description": DESCRIPTION,
        "author": "fms-fhir",
        "license": "Apache-2.0",
        "canonical": settings.canonical_base,
        "url": settings.canonical_base,
        "fhirVersions": [FHIR_VERSION],
        "dependencies": {d.package: d.version for d in DEPENDENCIES},
        "keywords": ["fhir", "fibromyalgia", "questionnaire", "sdc", "ldn"],
    }


def index_entry(resource: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": file_name(resource),
        "resourceType": resource["resourceType"],
        "id": resource["id"],
    }
    for key in ("url", "version", *INDEX_FIELDS):
        if isinstance(resource.get(key), str):
            entry[key] = resource[key]
    return entry


def package_files(settings: Settings) -> dict[str, bytes]:
    """The package folder's files by name (relative to `package/`), sorted by name."""
    resources = package_resources(settings)
    files = {file_name(r): jsonio.dumps(r) for r in resources}
    if len(files) != len(resources):
        raise ValueError("two package resources share a type and id")
    index = {
        "index-version": 1,
        "files": [index_entry(r) for r in sorted(resources, key=file_name)],
    }
    files[".index.json"] = jsonio.dumps(index)
    files["package.json"] = jsonio.dumps(package_json(settings))
    files[NOTICE] = notice(settings)
    return dict(sorted(files.items()))


def tarball(files: Mapping[str, bytes]) -> bytes:
    """The `.tgz`: `package/<name>` entries in name order, fixed times and owners, no gzip name or
    time, so the same files give the same bytes on every run."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, compresslevel=9, mtime=0) as out:
        out.write(raw.getvalue())
    return packed.getvalue()


def tarball_name() -> str:
    return f"{PACKAGE_NAME}-{__version__}.tgz"


KIND = "package"


def _recognise(folder: Path) -> set[str] | None:
    """The package folder carries no marker (tools read it as the package): it is ours when its
    `package.json` names this package, and its files are those its `.index.json` lists (the
    staging folder of a killed run carries the marker instead)."""
    try:
        ours = json.loads((folder / "package.json").read_bytes())["name"] == PACKAGE_NAME
    except (OSError, ValueError, TypeError, KeyError):  # missing, unreadable, not JSON: not ours
        ours = False
    if not ours and not outputs.marked(folder, KIND):
        return None
    names = {"package.json", ".index.json", NOTICE}
    try:
        index = json.loads((folder / ".index.json").read_bytes())
        names.update(entry["filename"] for entry in index["files"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return {name for name in names if isinstance(name, str)}


def write_package(out_dir: str | os.PathLike[str], settings: Settings) -> Path:
    """Write `out_dir/package/` (the unpacked package) and `out_dir/<name>-<version>.tgz`, both or
    neither (through `adapter.outputs`); return the `.tgz`'s path. OutputConflict (exit 4) when
    `out_dir` is a file, `package/` holds files this command did not write, or a place cannot be
    written."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise outputs.conflict(f"{out_dir} exists and is not a folder")
    files = package_files(settings)
    path = folder / tarball_name()
    archive = outputs.OutputFile(path)
    unpacked = outputs.OutputFolder(folder / "package", KIND, (), _recognise, keep_marker=False)
    try:
        for name, data in files.items():
            (unpacked.staging / name).write_bytes(data)
        archive.stage(tarball(files))
    except OSError as error:
        unpacked.abort()
        raise outputs.unwritable(out_dir, error) from None
    except BaseException:
        unpacked.abort()
        archive.abort()
        raise
    outputs.commit(unpacked, archive)
    return path


__all__ = [
    "DEPENDENCIES",
    "PACKAGE_NAME",
    "definitions",
    "implementation_guide",
    "defined_operations",
    "operation_definition",
    "operation_definitions",
    "package_files",
    "package_json",
    "package_resources",
    "tarball",
    "tarball_name",
    "write_package",
]
