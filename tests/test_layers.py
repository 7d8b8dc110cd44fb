"""The package map holds: arrows point down, no circles, no package reads another's private modules.

Every import counts, at module level, inside functions and under TYPE_CHECKING alike: a circle
hidden in a function is still a circle. The layers, from the bottom (gearshift/__init__.py draws
them): values and rules every part shares; the strategies; auto; the engine (map, imap, Executor,
amap); the products built on it; the CLI. The root package's face may import anything (lazily).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# From the bottom up. A module belongs to the first group whose prefix names it (or its package).
LAYERS: list[list[str]] = [
    ["gearshift.errors", "gearshift.values", "gearshift.units", "gearshift.machine"],
    ["gearshift.chunking"],
    ["gearshift.strategies"],
    ["gearshift.auto"],
    ["gearshift.api", "gearshift._window", "gearshift.executor", "gearshift.aio"],
    ["gearshift.lab", "gearshift.downloader", "gearshift.serverless"],
    ["gearshift.cli"],
    ["gearshift.__main__"],
]
ENGINE = {"gearshift.api", "gearshift._window", "gearshift.executor", "gearshift.aio"}
ENGINE_SHARED = {"gearshift._progress"}  # the engine's own helpers, private to it


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "gearshift").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> set[str]:
    """Every gearshift module `name` imports, wherever the import statement stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            names = len(submodules) < len(node.names)  # names taken from `base` itself
            targets = submodules + ([base] if names else [])
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def group(name: str) -> tuple[int, str]:
    """(layer, package) of a module; the engine's modules form one package."""
    if name in ENGINE or name in ENGINE_SHARED:
        return 4, "engine"
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return level, prefix
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS in tests/test_layers.py")


def is_private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def owner(name: str) -> str:
    """The package whose private module `name` is: the parent of its first private part."""
    parts = name.split(".")
    first = next(i for i, part in enumerate(parts) if part.startswith("_"))
    return ".".join(parts[:first])


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        if name != "gearshift":
            group(name)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "gearshift"))
def test_imports_point_down(name: str) -> None:
    level, package = group(name)
    upward = []
    for target in GRAPH[name]:
        if target == "gearshift":
            upward.append(f"{target} (the root face: import the module that defines the name)")
            continue
        their_level, their_package = group(target)
        if their_package != package and their_level >= level:
            upward.append(target)
    assert not upward, f"{name} imports upward or sideways: {sorted(upward)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_package_imports_another_packages_private_modules(name: str) -> None:
    foreign = []
    for target in GRAPH[name]:
        if not is_private(target):
            continue
        home = owner(target)
        inside = name == home or name.startswith(home + ".")
        if not inside and not (name in ENGINE and target in ENGINE_SHARED | ENGINE):
            foreign.append(target)
    assert not foreign, f"{name} imports private modules of other packages: {sorted(foreign)}"


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components: a component of two or more is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_at_most_a_dozen_top_level_modules() -> None:
    top = [p.name for p in (SRC / "gearshift").glob("*.py")]
    assert len(top) <= 12, sorted(top)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 320, f"{name} has {lines} lines: split it by responsibility"
