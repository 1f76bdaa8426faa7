"""A real FHIR R4 server for tests: Medplum's FhirRouter over its in-memory repository, in node.

`tests/js/fhir_server.js` answers one JSON line per request; `FhirServer` drives it. Every write is
checked by Medplum's `validateResource` first, as the Medplum server does; transaction Bundles are
atomic (the "transaction-bundles" project feature) unless `transactions=False`.

The fixtures (tests/conftest.py): `fhir_server_process` starts one node process per session;
`fhir_server` hands it to a test with an empty repository. Both are skipped when node or the npm
packages are missing (`make test` installs them into .venv/js).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

from tests.support import MODULES, ROOT

SCRIPT = ROOT / "tests" / "js" / "fhir_server.js"
SKIP_REASON = "node or @medplum/fhir-router not installed; make test installs them"
MAX_COUNT = 10000  # the in-memory search returns at most _count resources; no paging here


class FhirServerError(RuntimeError):
    """The node process died, hung, or answered something that is not a response line."""


def available() -> bool:
    return shutil.which("node") is not None and all(
        (MODULES / "@medplum" / name / "package.json").is_file()
        for name in ("fhir-router", "core", "definitions")
    )


class FhirServer:
    """One node process running Medplum's FHIR router; requests are answered in order."""

    def __init__(
        self, *, transactions: bool = True, timeout: float = 60.0, start_timeout: float = 60.0
    ) -> None:
        self.timeout = timeout
        command = ["node", str(SCRIPT)] + ([] if transactions else ["--no-transactions"])
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=50)
        started = time.monotonic()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={**os.environ, "NODE_PATH": str(MODULES)},
            cwd=ROOT,
        )
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        ready = json.loads(self._read_line(start_timeout))
        if ready.get("ready") is not True:
            self.close()
            raise FhirServerError(f"unexpected first line from {SCRIPT.name}: {ready}")
        self.startup_seconds = time.monotonic() - started

    def _pump_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)  # EOF: the process has exited

    def _pump_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _read_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._process.kill()  # hung: no point in waiting for a graceful exit
            self._process.wait(timeout=5)
            raise FhirServerError(f"no answer from the FHIR server within {timeout}s") from None
        if line is None:
            self._lines.put(None)
            code = self._process.wait(timeout=5)
            stderr = "\n".join(self._stderr)
            raise FhirServerError(f"FHIR server exited with code {code}:\n{stderr}")
        return line

    def _call(self, message: dict[str, Any], timeout: float | None = None) -> tuple[int, Any]:
        if self._process.poll() is not None:
            self._read_line(0)  # raises with the exit code and stderr
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise FhirServerError(f"FHIR server is gone: {error}") from error
        line = self._read_line(self.timeout if timeout is None else timeout)
        try:
            response = json.loads(line)
            return response["status"], response["body"]
        except (ValueError, KeyError, TypeError) as error:
            raise FhirServerError(f"not a response line: {line[:500]!r}") from error

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        transactions: bool | None = None,
    ) -> tuple[int, Any]:
        """`url` is relative to the FHIR base ("Patient/1", "Observation?code=x", "" = base)."""
        message: dict[str, Any] = {"method": method, "url": url}
        if body is not None:
            message["body"] = body
        if headers:
            message["headers"] = headers
        if transactions is not None:
            message["config"] = {"transactions": transactions}
        return self._call(message)

    def post_bundle(self, bundle: dict[str, Any], **options: Any) -> dict[str, Any]:
        """POSTs a batch/transaction Bundle to the base; returns the response body as is."""
        return self.request("POST", "", bundle, **options)[1]

    def search(self, resource_type: str, params: dict[str, Any] | str = "") -> list[dict[str, Any]]:
        query = params if isinstance(params, str) else urlencode(params, doseq=True)
        query = query.lstrip("?")
        if "_count=" not in query:
            query = f"{query}&_count={MAX_COUNT}" if query else f"_count={MAX_COUNT}"
        status, body = self.request("GET", f"{resource_type}?{query}")
        if status != 200:
            raise FhirServerError(f"search {resource_type}?{query} answered {status}: {body}")
        return [entry["resource"] for entry in body.get("entry", [])]

    def all(self, resource_type: str) -> list[dict[str, Any]]:
        return self.search(resource_type)

    def everything(self) -> list[dict[str, Any]]:
        """Every stored resource (current versions), whatever its type."""
        return self._call({"dump": True})[1]

    def unresolved_references(self) -> list[tuple[str, str]]:
        """(owner "Type/id", reference) for each `reference` that names no stored resource.

        Only relative literal references ("Type/id", "Type/id/_history/v") to a stored resource
        resolve; a leftover "urn:uuid:..." placeholder or an absolute URL counts as unresolved.
        References to contained resources ("#x") and identifier-only references are skipped.
        """
        resources = self.everything()
        stored = {f"{r['resourceType']}/{r['id']}" for r in resources}
        missing: list[tuple[str, str]] = []

        def walk(node: Any, owner: str) -> None:
            if isinstance(node, dict):
                reference = node.get("reference")
                if isinstance(reference, str) and not reference.startswith("#"):
                    parts = reference.split("/")
                    if len(parts) not in (2, 4) or "/".join(parts[:2]) not in stored:
                        missing.append((owner, reference))
                for value in node.values():
                    walk(value, owner)
            elif isinstance(node, list):
                for value in node:
                    walk(value, owner)

        for resource in resources:
            walk(resource, f"{resource['resourceType']}/{resource['id']}")
        return missing

    def bulk_import(self, resources: list[dict[str, Any]]) -> dict[str, int]:
        """Bulk Data `$import` of NDJSON resources: stored under their own ids."""
        status, body = self._call({"import": resources})
        if status != 200:
            raise FhirServerError(f"import answered {status}: {body}")
        return body

    def reset(self) -> None:
        self._call({"reset": True})

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                if self._process.stdin is not None:
                    self._process.stdin.close()
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(timeout=5)

    def __enter__(self) -> FhirServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def statuses(response: dict[str, Any]) -> list[str]:
    """The status of each entry of a batch/transaction-response Bundle."""
    assert response.get("resourceType") == "Bundle", response
    return [entry["response"]["status"] for entry in response["entry"]]


def state(server: FhirServer) -> dict[str, str]:
    """Every stored resource and its version: a retry that changes nothing leaves this equal."""
    return {
        f"{r['resourceType']}/{r['id']}": r.get("meta", {}).get("versionId", "")
        for r in server.everything()
    }


def counts(server: FhirServer) -> dict[str, int]:
    found: dict[str, int] = {}
    for resource in server.everything():
        found[resource["resourceType"]] = found.get(resource["resourceType"], 0) + 1
    return found


def assert_all_references_resolve(server: FhirServer) -> None:
    """Literal references name a stored resource; logical ones (by identifier) find exactly one."""
    assert server.unresolved_references() == []
    for resource in server.everything():
        for reference in [*resource.get("derivedFrom", []), *resource.get("hasMember", [])]:
            if "identifier" in reference and "reference" not in reference:
                system, value = reference["identifier"]["system"], reference["identifier"]["value"]
                found = server.search(reference["type"], {"identifier": f"{system}|{value}"})
                assert len(found) == 1, reference
