"""The package's layers, checked on its import graph (function-level imports included).

    cli -> services -> core, adapters;  adapters -> core;  core -> core;  node -> node + stdlib

Every module lives in a layer (the package root holds only the entry point, the version and the
error root); imports go one way; there is no import cycle, hidden or not; no module takes another
module's private names.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "envctl"
ROOT_MODULES = {"envctl", "envctl.__main__", "envctl.errors"}
LAYERS = ("cli", "services", "core", "adapters", "node")

#: layer -> the layers it may import (besides itself, ``envctl`` (the version) and ``envctl.errors``).
ALLOWED: dict[str, set[str]] = {
    "cli": {"services", "core", "adapters"},
    "services": {"core", "adapters", "node"},
    "adapters": {"core"},
    "core": set(),
    "node": set(),
}

#: (importer, imported) pairs allowed against the rules above, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, tree: ast.Module) -> list[tuple[str, tuple[str, ...]]]:
    """Every module ``name`` imports (anywhere in its body), with the names taken from it."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if sub in MODULES:  # `from envctl.services.deliver import push`: a module
                    found.append((sub, ()))
                else:
                    found.append((module, (alias.name,)))
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "envctl" and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer() -> None:
    homeless = [m for m in MODULES if m not in ROOT_MODULES and layer_of(m) is None]
    assert homeless == []


def test_imports_go_one_way() -> None:
    wrong = []
    for importer, tree in MODULES.items():
        source = layer_of(importer)
        for imported, _ in imports_of(importer, tree):
            if source == "node":
                top = imported.split(".")[0]
                if layer_of(imported) != "node" and top not in sys.stdlib_module_names:
                    wrong.append(f"{importer} -> {imported} (node: standard library only)")
                continue
            if not imported.startswith("envctl") or imported in ROOT_MODULES:
                continue
            target = layer_of(imported)
            if source is None or target is None or target == source:
                continue
            if target not in ALLOWED[source] and (importer, imported) not in EXCEPTIONS:
                wrong.append(f"{importer} -> {imported}")
    assert wrong == []


def test_no_private_names_across_modules() -> None:
    taken = [
        f"{importer} takes {name} from {imported}"
        for importer, tree in MODULES.items()
        for imported, names in imports_of(importer, tree)
        if imported.startswith("envctl") and imported != importer
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert taken == []


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for importer, tree in MODULES.items():
        for imported, _ in imports_of(importer, tree):
            if imported in MODULES and imported != importer and not importer.startswith(imported + "."):
                graph[importer].add(imported)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles() -> None:
    assert find_cycles(_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert find_cycles(graph) == expected


def test_the_checks_see_function_level_imports() -> None:
    tree = ast.parse("def f():\n    from envctl.cli.output import emit_json\n")
    assert ("envctl.cli.output", ("emit_json",)) in imports_of("envctl.core.x", tree)
