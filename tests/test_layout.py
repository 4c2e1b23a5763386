"""The package's shape: imports flow one way through the layers, and the repository
stands on its own (no reference to documents outside it)."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "breastlib"

#: Layers from the bottom up: a module may import from its own layer and those below.
LAYERS: list[tuple[str, ...]] = [
    ("breastlib._atomic", "breastlib._chunks", "breastlib._nifti", "breastlib._regions",
     "breastlib._sampling",
     "breastlib.errors",
     "breastlib.device", "breastlib.grid", "breastlib.volume", "breastlib.displacement",
     "breastlib.points",
     "breastlib.intensity", "breastlib.smoothing", "breastlib.tissues", "breastlib.manifest",
     "breastlib.profiles", "breastlib.datasets", "breastlib.landmark_groups"),
    ("breastlib.phantom", "breastlib.encoders"),
    ("breastlib.features",),
    ("breastlib.register",),
    ("breastlib.evaluate",),
    ("breastlib.study",),
    ("breastlib.viz",),
    ("breastlib.workflows",),
    ("breastlib.booktools",),
    ("breastlib.cli", "breastlib.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every ``import`` / ``from ... import`` between breastlib modules, lazy ones included."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> int:
    if name == "breastlib":  # the package's own __init__ re-exports core types
        return 0
    for level, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert "breastlib.evaluate.metrics" in graph  # the graph really reads the package
    assert cycles(graph) == []


def test_cycle_detection_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_from_a_higher_layer():
    upward = [f"{name} -> {target}" for name, targets in import_graph().items()
              for target in targets
              if layer_of(target) > layer_of(name)]
    assert upward == []


def test_repository_cites_no_outside_document():
    """Conventions live in the repository (book/conventions.md); nothing cites the team's
    handbook, and only the tests and CI may use ../shared, as a local data mirror."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    offending = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".yml", ".toml", ".txt", ".cfg", ".json") \
                or name == "tests/test_layout.py" or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if re.search(r"\b(DESIGN|STUDY)\.md\b", text):
            offending.append(f"{name}: cites DESIGN.md/STUDY.md")
        if "../shared" in text and not name.startswith(("tests/", ".ci/")):
            offending.append(f"{name}: reads ../shared")
    assert offending == []
