"""The library as a FHIR NPM package: every Questionnaire, the CodeSystem(s) and one
OperationDefinition per operation of the service, as FHIR tools (SUSHI, the IG Publisher, HAPI,
Firely) load definitions.

`package_resources` builds the resources; `package_files` lays them out as the package folder
(`package.json`, `.index.json`, one `<ResourceType>-<id>.json` per resource); `tarball` packs that
folder into a `.tgz` that is byte-identical from run to run; `write_package` writes both.

The OperationDefinitions come from the web registry of operations (`adapter.web.operations`), the
same records the routes and `/metadata` are built from: each one's url is the definition
`/metadata` names for it. The web modules are imported only when the package is built.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapter import __version__, api, jsonio, outputs
from adapter.settings import FHIR_VERSION, Settings

if TYPE_CHECKING:
    from adapter.web.operations import Operation, Param

PACKAGE_NAME = "fms-fhir.instruments"
"""The package id: two or more lower-case parts joined by dots, as the FHIR package spec asks."""
CORE_PACKAGE = {"hl7.fhir.r4.core": FHIR_VERSION}
TAR_MTIME = 499162500
"""1985-10-26T08:15:00Z, the fixed time npm itself gives every entry of a reproducible tarball."""
INDEX_FIELDS = ("kind", "type", "supplements", "content")
"""Besides filename, resourceType, id, url and version: what `.index.json` carries when present."""


# --- resources ---------------------------------------------------------------------------------


def _fhir_type(schema: Mapping[str, Any]) -> str:
    """The FHIR type of a query parameter, from its JSON Schema."""
    if "enum" in schema:
        return "code"
    kind, form = schema.get("type"), schema.get("format")
    if kind == "integer":
        return "integer"
    if kind == "boolean":
        return "boolean"
    if kind == "number":
        return "decimal"
    if form == "date":
        return "date"
    if form == "uri":
        return "uri"
    return "string"


def _resource_types(schema: Mapping[str, Any], components: Mapping[str, Any]) -> list[str]:
    """The FHIR resource types a JSON Schema admits (following `$ref`s and `oneOf`)."""
    found: list[str] = []
    reference = schema.get("$ref")
    if isinstance(reference, str):
        target = components.get(reference.rsplit("/", 1)[-1], {})
        found.extend(_resource_types(target, components))
    for option in schema.get("oneOf", ()):
        found.extend(_resource_types(option, components))
    kind = schema.get("properties", {}).get("resourceType", {}).get("const")
    if isinstance(kind, str):
        found.append(kind)
    return list(dict.fromkeys(found))


def _machine_name(name: str) -> str:
    """`convert-sheet` -> `ConvertSheet`: OperationDefinition.name is a computer-friendly name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _code(operation: Operation) -> str:
    """The operation's code: its route's `$name`, without the `$`."""
    last = operation.path.rstrip("/").rsplit("/", 1)[-1]
    return last[1:] if last.startswith("$") else operation.name


def _in_parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "use": "in",
        "min": 1 if param.required else 0,
        "max": "1",
        "documentation": param.description,
        "type": _fhir_type(param.schema),
    }


def _return_parameter(operation: Operation, components: Mapping[str, Any]) -> dict[str, Any]:
    kinds = _resource_types(operation.result, components)
    documentation = f"The answer in a JSON media type: {' or '.join(kinds) or 'a resource'}"
    return {
        "name": "return",
        "use": "out",
        "min": 1,
        "max": "1",
        "documentation": documentation,
        "type": kinds[0] if len(kinds) == 1 else "Resource",
    }


def _body(schema: Mapping[str, Any], components: Mapping[str, Any]) -> str:
    """What a request body holds: its schema's description, else its FHIR resource types, else
    the description of the schema it refers to."""
    if schema.get("description"):
        return str(schema["description"])
    kinds = _resource_types(schema, components)
    if kinds:
        return " or ".join(kinds)
    reference = schema.get("$ref")
    target = components.get(reference.rsplit("/", 1)[-1], {}) if isinstance(reference, str) else {}
    return str(target.get("description") or "")


def _comment(operation: Operation, components: Mapping[str, Any]) -> str:
    """The HTTP side, which OperationDefinition has no element for: body, media types, headers."""
    lines = []
    if operation.consumes:
        bodies: dict[str, list[str]] = {}
        for media_type, schema in operation.consumes.items():
            bodies.setdefault(_body(schema, components), []).append(media_type)
        described = "; ".join(
            f"{what} ({', '.join(types)})" if what else ", ".join(types)
            for what, types in bodies.items()
        )
        lines.append(f"{operation.method} with the input as the request body: {described}.")
    lines.append(f"Answers in {', '.join(operation.produces)}, by Accept.")
    for param in operation.params:
        if param.where == "header":
            lines.append(f"Header `{param.name}`: {param.description}.")
    return " ".join(lines)


def operation_definition(
    operation: Operation, settings: Settings, components: Mapping[str, Any]
) -> dict[str, Any]:
    """One R4 OperationDefinition from a registry record: what `/metadata` points at."""
    from adapter.web.capability import definition_url

    description = operation.description or operation.summary
    if operation.definition:
        description += f"\n\nFollows {operation.definition}."
    resource: dict[str, Any] = {
        "resourceType": "OperationDefinition",
        "id": operation.name,
        "url": definition_url(operation, settings),
        "version": __version__,
        "name": _machine_name(operation.name),
        "title": operation.summary,
        "status": "active",
        "kind": "operation",
        "publisher": "fms-fhir",
        "description": description,
        "affectsState": False,
        "code": _code(operation),
        "comment": _comment(operation, components),
    }
    if operation.resource is not None:
        resource["resource"] = [operation.resource]
    instance = "{" in operation.path
    resource["system"] = operation.resource is None
    resource["type"] = operation.resource is not None and not instance
    resource["instance"] = instance
    parameters = [_in_parameter(p) for p in operation.params if p.where == "query"]
    resource["parameter"] = [*parameters, _return_parameter(operation, components)]
    return resource


def defined_operations(settings: Settings) -> list[Operation]:
    """The registry's operations that `/metadata` lists as operations, in registry order: those
    are the ones it names an OperationDefinition for."""
    from adapter.web.capability import capability_statement
    from adapter.web.routes import registered_operations

    operations = registered_operations()
    statement = capability_statement(operations, settings)
    named = {
        entry["name"]
        for rest in statement["rest"]
        for holder in [rest, *rest.get("resource", [])]
        for entry in holder.get("operation", [])
    }
    return [operation for operation in operations if operation.name in named]


def operation_definitions(settings: Settings) -> list[dict[str, Any]]:
    from adapter.web.schemas import components

    schemas = components()
    return [operation_definition(op, settings, schemas) for op in defined_operations(settings)]


def package_resources(settings: Settings) -> list[dict[str, Any]]:
    """Every Questionnaire, the CodeSystem(s), then one OperationDefinition per FHIR operation."""
    return [
        *api.questionnaires(settings),
        *api.codesystems(settings),
        *operation_definitions(settings),
    ]


# --- the package -------------------------------------------------------------------------------


def file_name(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def package_json(settings: Settings) -> dict[str, Any]:
    return {
        "name": PACKAGE_NAME,
        "version": __version__,
        "type": "Conformance",
        "title": "fms-fhir: fibromyalgia instruments and operations",
        "description": (
            "The fibromyalgia instruments of fms-fhir as SDC Questionnaires (a calculatedExpression "
            "for every score), its CodeSystem of score and band codes, and the OperationDefinitions "
            "of the fms-fhir service's operations. FHIR R4 (4.0.1)."
        ),
        "author": "fms-fhir",
        "license": "Apache-2.0",
        "canonical": settings.canonical_base,
        "fhirVersions": [FHIR_VERSION],
        "dependencies": dict(CORE_PACKAGE),
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
    names = {"package.json", ".index.json"}
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
    "PACKAGE_NAME",
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
