"""The layers hold: no import circle, and no import from a lower layer to a higher one.

Every import counts, also those inside functions (kept there only to start faster), so a circle
cannot hide in a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("adapter.instrument", "adapter.provenance", "adapter.settings", "adapter.report_codes"),
    ("mappings", "adapter.formulas", "adapter.model", "adapter.outcome", "adapter.ids"),
    (
        "adapter.registry",
        "adapter.scoring",
        "adapter.rules",
        "adapter.schemas",
        "adapter.fhir",
        "adapter.jsonio",
        "adapter.bundle",
        "adapter.links",
        "adapter.outputs",
        "adapter.config",
    ),
    (
        "adapter.terminology",
        "adapter.answers",
        "adapter.questionnaire",
        "adapter.response",
        "adapter.observations",
        "adapter.medication",
        "adapter.resources",
        "adapter.validation",
        "adapter.summary",
    ),
    ("adapter.sheets",),
    ("adapter.api",),
    ("adapter.report",),
    ("adapter.web",),
    ("adapter.package",),
    ("adapter.cli",),
)
"""Lowest first. A module may import its own layer and those below, never above."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for folder in ("adapter", "mappings"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, by their full names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _layer(name: str) -> int:
    if name == "adapter":
        return 0  # the package's face: its version only
    for index, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # importing a.b.c runs the __init__ of a and a.b: a package imports nothing of its own
    # subpackages' callers, so only edges between modules are counted (packages are their faces).
    return graph


def test_every_module_has_a_layer():
    for name in _modules():
        _layer(name)


def test_no_import_runs_up_a_layer():
    upward = [
        f"{name} -> {target}"
        for name, targets in _graph().items()
        for target in sorted(targets)
        if _layer(target) > _layer(name)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if target in path and _is_package_of(target, node):
                continue  # a module of a package importing the package's face
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def _is_package_of(package: str, module: str) -> bool:
    return module.startswith(package + ".")
